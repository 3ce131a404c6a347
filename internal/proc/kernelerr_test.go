package proc

import (
	"errors"
	"testing"
)

// TestAutoKeepsWhyTheKernelScanFailed: when auto tries the kernel scan and falls back to /proc,
// the reason is kept (observe turns it into a report warning), not lost.
func TestAutoKeepsWhyTheKernelScanFailed(t *testing.T) {
	why := errors.New("bpf: operation not permitted")
	s := &Scanner{Root: DefaultRoot, kernelMin: 1, kernelScan: func() ([]kernelRecord, error) { return nil, why }}
	o, err := s.Owners(map[uint64]bool{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Method != OwnerScanProcfs || !errors.Is(o.KernelErr, why) {
		t.Errorf("method %s, kernel error %v; want procfs and the reason", o.Method, o.KernelErr)
	}
	// bpf asked for explicitly fails with the reason instead.
	s.Scan = OwnerScanBPF
	if _, err := s.Owners(map[uint64]bool{}); !errors.Is(err, why) {
		t.Errorf("bpf: err %v, want the reason", err)
	}
	// procfs never tries it.
	s.Scan, s.kernelScan = OwnerScanProcfs, func() ([]kernelRecord, error) { t.Error("procfs ran the kernel scan"); return nil, why }
	if o, err := s.Owners(map[uint64]bool{}); err != nil || o.KernelErr != nil {
		t.Errorf("procfs: %v, kernel error %v", err, o.KernelErr)
	}
}
