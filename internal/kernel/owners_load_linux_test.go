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

// FuzzRawBTF: the fast loader's reading of raw BTF (header, type table, the search for the
// program's structs and attach function, the conversion of what it finds) returns an error or
// a result for any bytes, never a panic or a hang. Seeded with BTF cilium/ebpf writes.
func FuzzRawBTF(f *testing.F) {
	inner := &btf.Struct{Name: "inner", Size: 8, Members: []btf.Member{{Name: "f_inode", Type: &btf.Int{Name: "int", Size: 4}}}}
	outer := &btf.Struct{Name: "task_struct", Size: 24, Members: []btf.Member{
		{Name: "", Type: inner}, {Name: "files", Type: &btf.Pointer{Target: inner}, Offset: 64},
		{Name: "tail", Type: &btf.Array{Type: &btf.Int{Name: "char", Size: 1}, Index: &btf.Int{Name: "int", Size: 4}, Nelems: 8}, Offset: 128},
	}}
	fn := &btf.Func{Name: "bpf_iter_task_file", Type: &btf.FuncProto{Return: &btf.Int{Name: "int", Size: 4}}}
	b, err := btf.NewBuilder([]btf.Type{outer, fn, &btf.Typedef{Name: "t", Type: outer}, &btf.Enum{Name: "e", Size: 4}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	seed, err := b.Marshal(nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:30])
	f.Fuzz(func(t *testing.T, raw []byte) {
		structs := map[string]bool{"task_struct": true, "inner": true}
		kb, found, err := parseRawBTF(raw, structs, "bpf_iter_task_file")
		if err != nil {
			return
		}
		c := &btfConv{kb: kb, members: map[string]bool{"f_inode": true, "files": true}}
		for _, id := range found.structs {
			_, _ = c.typ(id, 0)
		}
		for id := uint32(1); id < uint32(len(kb.offs)) && id < 4096; id++ {
			_, _ = c.typ(id, 0)
		}
	})
}
