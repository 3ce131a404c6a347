package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
)

// socketRecordSize is the size of one iterator record: {u32 tgid, u32 fd, u64 inode}.
const socketRecordSize = 16

// headerFD marks the record the program writes first: its pid is the reader's own.
const headerFD = ^uint32(0)

// SocketFDs runs the owner scan once: a BPF task_file iterator walks every open file of every
// process in the kernel and returns only the sockets, in one read(2) instead of a readlinkat
// per open file. Pids are the kernel's task_tgid_nr_ns() for the caller's pid namespace, so
// inside a container they are the container's pids; processes not visible from the caller's
// namespace are left out. It needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) and a kernel with
// BTF and BPF iterators (5.8+); every failure wraps ErrSocketScan and says why. It loads the
// program and frees it again; a daemon that scans repeatedly keeps a SocketScanner instead.
func SocketFDs() ([]SocketFD, error) {
	s, err := NewSocketScanner()
	if err != nil {
		return nil, err
	}
	defer func() { _ = s.Close() }()
	return s.Scan()
}

// SocketScanner is the owner scan's program loaded once and run by Scan as often as needed:
// loading (relocating the program against the kernel's BTF, verifying it) costs tens of
// milliseconds, a scan only the walk. It is safe for concurrent use (scans run one at a time).
type SocketScanner struct {
	mu   sync.Mutex
	objs ownersObjects
}

// NewSocketScanner loads the owner scan's program. Close frees it.
func NewSocketScanner() (*SocketScanner, error) {
	if prog, err := loadOwnersProgram(); err == nil {
		return &SocketScanner{objs: ownersObjects{ownersPrograms: ownersPrograms{BindguardSocks: prog}}}, nil
	}
	// Whatever the fast load does not handle, cilium/ebpf's load does, and says why it fails.
	spec, err := loadOwners()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSocketScan, err)
	}
	opts, err := loadOptions()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSocketScan, err)
	}
	s := &SocketScanner{}
	if err := spec.LoadAndAssign(&s.objs, opts); err != nil {
		return nil, fmt.Errorf("%w: load task_file iterator: %w", ErrSocketScan, explain(err))
	}
	return s, nil
}

// Scan walks every open file of every process visible in the caller's pid namespace and
// returns the sockets (see SocketFDs).
func (s *SocketScanner) Scan() ([]SocketFD, error) {
	var recs []SocketFD
	err := s.ScanEach(func(batch []SocketFD) { recs = append(recs, batch...) })
	if err != nil {
		return nil, err
	}
	if recs == nil {
		recs = []SocketFD{}
	}
	return recs, nil
}

// ScanEach is Scan handing over the sockets in batches as the kernel's walk produces them
// (in process order), so that a caller can work on the first processes while the kernel walks
// the rest. A batch is valid only during the call. When ScanEach fails, the batches handed
// over so far are not the complete scan and must be discarded.
func (s *SocketScanner) ScanEach(fn func(batch []SocketFD)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.objs.BindguardSocks == nil {
		return fmt.Errorf("%w: scanner closed", ErrSocketScan)
	}
	it, err := link.AttachIter(link.IterOptions{Program: s.objs.BindguardSocks})
	if err != nil {
		return fmt.Errorf("%w: attach task_file iterator: %w", ErrSocketScan, explain(err))
	}
	defer func() { _ = it.Close() }()
	rd, err := it.Open()
	if err != nil {
		return fmt.Errorf("%w: open task_file iterator: %w", ErrSocketScan, err)
	}
	defer func() { _ = rd.Close() }()
	return decodeSocketFDsEach(rd, os.Getpid(), fn)
}

// Close frees the program; Scan fails afterwards.
func (s *SocketScanner) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.objs.Close()
	s.objs = ownersObjects{}
	return err
}

// decodeSocketFDs reads the iterator's output: the header record, then socket records. The
// header carries the reader's pid as the program computed it; it must be os.Getpid(), or the
// program's pid namespace logic does not hold on this kernel and the pids cannot be trusted.
func decodeSocketFDs(r io.Reader, self int) ([]SocketFD, error) {
	var recs []SocketFD
	if err := decodeSocketFDsEach(r, self, func(b []SocketFD) { recs = append(recs, b...) }); err != nil {
		return nil, err
	}
	if recs == nil {
		recs = []SocketFD{}
	}
	return recs, nil
}

// iterReadSize is what one read(2) of the iterator asks for: the kernel hands over its seq
// buffer (8 pages) at a time.
const iterReadSize = 64 << 10

// decodeSocketFDsEach is decodeSocketFDs handing each read's records to fn, after the header
// has been checked.
func decodeSocketFDsEach(r io.Reader, self int, fn func([]SocketFD)) error {
	buf := make([]byte, iterReadSize)
	var batch []SocketFD
	have, total := 0, 0 // bytes in buf not yet decoded; bytes read
	header := false
	for {
		n, err := r.Read(buf[have:])
		have += n
		total += n
		whole := have - have%socketRecordSize
		batch = batch[:0]
		for off := 0; off < whole; off += socketRecordSize {
			rec := SocketFD{
				PID:   binary.NativeEndian.Uint32(buf[off:]),
				FD:    binary.NativeEndian.Uint32(buf[off+4:]),
				Inode: binary.NativeEndian.Uint64(buf[off+8:]),
			}
			if rec.FD == headerFD {
				if int64(rec.PID) != int64(self) {
					return fmt.Errorf("%w: the iterator numbers this process %d, getpid %d", ErrSocketScan, rec.PID, self)
				}
				header = true
				continue
			}
			if !header {
				return fmt.Errorf("%w: iterator wrote no header", ErrSocketScan)
			}
			batch = append(batch, rec)
		}
		if len(batch) > 0 {
			fn(batch)
		}
		have = copy(buf, buf[whole:have])
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: read task_file iterator: %w", ErrSocketScan, err)
		}
	}
	if have != 0 {
		return fmt.Errorf("%w: iterator output of %d bytes is not whole records", ErrSocketScan, total)
	}
	if !header {
		return fmt.Errorf("%w: iterator wrote no header", ErrSocketScan)
	}
	return nil
}

// kernelTypes holds the running kernel's BTF once parsed (about 15 ms of CPU), for every load
// in this process: CO-RE relocations and attach targets are resolved against it. It is a
// cache safe for concurrent use, not state: what it holds never changes.
var kernelTypes = btf.NewCache()

// loadOptions shares the kernel's BTF across loads.
func loadOptions() (*ebpf.CollectionOptions, error) {
	if _, err := kernelTypes.Kernel(); err != nil {
		return nil, fmt.Errorf("kernel BTF (/sys/kernel/btf/vmlinux): %w", explain(err))
	}
	return &ebpf.CollectionOptions{Cache: kernelTypes}, nil
}

// explain adds what a load or attach failure usually means; the error stays wrapped.
func explain(err error) error {
	var ve *ebpf.VerifierError
	switch {
	case errors.As(err, &ve):
		return fmt.Errorf("the kernel's verifier refused the program: %w", err)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%w (needs root, or CAP_BPF and CAP_PERFMON, and CAP_NET_ADMIN for the cgroup programs)", err)
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("%w (kernel too old or built without BTF at /sys/kernel/btf/vmlinux)", err)
	}
	return err
}
