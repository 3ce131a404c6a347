package kernel

import (
	"bytes"
	"os"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// TestOwnersProgramRelocation: the owner scan's program relocated against the small spec
// relocateOwners builds from the raw kernel BTF is, instruction for instruction, the program
// relocated by cilium/ebpf against the whole kernel BTF, and the attach target is the same id.
func TestOwnersProgramRelocation(t *testing.T) {
	raw, err := os.ReadFile(vmlinuxBTF)
	if err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	spec, err := loadOwners()
	if err != nil {
		t.Fatal(err)
	}
	ps := spec.Programs[ownersProgBindguardSocks]
	got, attachID, err := relocateOwners(spec, ps, raw)
	if err != nil {
		t.Fatal(err)
	}

	kernel, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := append(asm.Instructions(nil), ps.Instructions...)
	var relos []*btf.CORERelocation
	var at []int
	for i := range want {
		if r := btf.CORERelocationMetadata(&want[i]); r != nil {
			relos = append(relos, r)
			at = append(at, i)
		}
	}
	if len(relos) == 0 {
		t.Fatal("the program has no CO-RE relocations: the test tests nothing")
	}
	var local btf.Builder
	fixups, err := btf.CORERelocate(relos, []*btf.Spec{kernel}, spec.ByteOrder, local.Add)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range fixups {
		if err := f.Apply(&want[at[i]]); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d instructions, cilium/ebpf's %d", len(got), len(want))
	}
	for i := range want {
		if got[i].OpCode != want[i].OpCode || got[i].Dst != want[i].Dst || got[i].Src != want[i].Src ||
			got[i].Offset != want[i].Offset || got[i].Constant != want[i].Constant {
			t.Errorf("instruction %d: %v, cilium/ebpf's %v", i, got[i], want[i])
		}
	}

	var fn *btf.Func
	if err := kernel.TypeByName("bpf_iter_"+ps.AttachTo, &fn); err != nil {
		t.Fatal(err)
	}
	if id, err := kernel.TypeID(fn); err != nil || id != attachID {
		t.Errorf("attach target id %d, cilium/ebpf's %d (%v)", attachID, id, err)
	}
}

// TestOwnersProgramLoads: on this kernel the fast load works (NewSocketScanner falls back to
// cilium/ebpf's silently, so this is what says it is taken), and its program runs.
func TestOwnersProgramLoads(t *testing.T) {
	requireRoot(t)
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Close(p[0]); _ = unix.Close(p[1]) }()
	prog, err := loadOwnersProgram()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = prog.Close() }()
	it, err := link.AttachIter(link.IterOptions{Program: prog})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = it.Close() }()
	rd, err := it.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rd.Close() }()
	mine := map[uint32]uint64{}
	err = decodeSocketFDsEach(rd, os.Getpid(), func(b []SocketFD) {
		for _, rec := range b {
			if int(rec.PID) == os.Getpid() {
				mine[rec.FD] = rec.Inode
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range p {
		if ino, want := mine[uint32(fd)], fdInode(t, fd); ino != want {
			t.Errorf("fd %d: inode %d, want %d", fd, ino, want)
		}
	}
}
