package proc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
)

// A kernel-side scan: a BPF task_file iterator walks every open file of every process in the
// kernel and writes out only the sockets, as (tgid, fd, inode) records. Reading /proc/*/fd
// instead costs one readlinkat per open file (about 100,000 on a host with 2,000 processes of
// 50 files); the iterator replaces all of them with one read(2). The program's first record
// carries the reader's own pid as the kernel numbers it: when that differs from os.Getpid()
// (bindguard in a child pid namespace), the pids would name the wrong processes, and the scan
// refuses. The owners' details (name, exe, user, unit, container) still come from /proc, and a
// process that exited since the iterator saw it is dropped, as a /proc scan would drop it.
//
// The program is built here with cilium/ebpf's assembler, with field offsets read from the
// running kernel's BTF (/sys/kernel/btf/vmlinux), so no compiler or object file is needed and
// struct layout randomisation is honoured. It needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN).

// kernelRecord is one socket held by a process: 16 bytes as the program writes them.
type kernelRecord struct {
	tgid  uint32
	fd    uint32
	inode uint64
}

const kernelRecordSize = 16

// headerFD marks the record the program writes first: its tgid is the reader's (bindguard's)
// pid as the kernel's initial pid namespace numbers it.
const headerFD = ^uint32(0)

// ErrKernelScan wraps every reason the kernel-side scan could not run.
var ErrKernelScan = errors.New("kernel socket scan unavailable")

var (
	kernelOnce sync.Once
	kernelSpec *btf.Spec
	kernelErr  error
)

func kernelTypes() (*btf.Spec, error) {
	kernelOnce.Do(func() { kernelSpec, kernelErr = btf.LoadKernelSpec() })
	return kernelSpec, kernelErr
}

// memberOffset returns the byte offset of typ.field, checking that the field has the size the
// program loads.
func memberOffset(spec *btf.Spec, typ, field string, size int) (int16, error) {
	var s *btf.Struct
	if err := spec.TypeByName(typ, &s); err != nil {
		return 0, fmt.Errorf("BTF: struct %s: %w", typ, err)
	}
	for _, m := range s.Members {
		if m.Name != field {
			continue
		}
		if m.BitfieldSize != 0 || m.Offset%8 != 0 {
			return 0, fmt.Errorf("BTF: %s.%s is a bitfield", typ, field)
		}
		sz, err := btf.Sizeof(m.Type)
		if err != nil || sz != size {
			return 0, fmt.Errorf("BTF: %s.%s has size %d, want %d", typ, field, sz, size)
		}
		off := m.Offset.Bytes()
		if off > 1<<15-1 {
			return 0, fmt.Errorf("BTF: %s.%s offset %d out of range", typ, field, off)
		}
		return int16(off), nil
	}
	return 0, fmt.Errorf("BTF: struct %s has no member %s", typ, field)
}

// socketIterProgram assembles the iterator program. The context is
//
//	struct bpf_iter__task_file { struct bpf_iter_meta *meta; struct task_struct *task;
//	                             u32 fd; struct file *file; }   // offsets 0, 8, 16, 24
//
// and struct bpf_iter_meta starts { struct seq_file *seq; u64 session_id; u64 seq_num; }.
func socketIterProgram(spec *btf.Spec) (asm.Instructions, error) {
	var off [4]int16
	for i, m := range []struct {
		typ, field string
		size       int
	}{{"file", "f_inode", 8}, {"inode", "i_mode", 2}, {"inode", "i_ino", 8}, {"task_struct", "tgid", 4}} {
		o, err := memberOffset(spec, m.typ, m.field, m.size)
		if err != nil {
			return nil, err
		}
		off[i] = o
	}
	fInode, iMode, iIno, tgid := off[0], off[1], off[2], off[3]
	const sIFMT, sIFSOCK = 0xf000, 0xc000
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // r6 = ctx
		// First object of the session: write the header record {current tgid, ^0, 0}.
		asm.LoadMem(asm.R1, asm.R6, 0, asm.DWord),  // meta
		asm.LoadMem(asm.R2, asm.R1, 16, asm.DWord), // meta->seq_num
		asm.JNE.Imm(asm.R2, 0, "files"),
		asm.FnGetCurrentPidTgid.Call(),
		asm.RSh.Imm(asm.R0, 32),
		asm.StoreMem(asm.RFP, -16, asm.R0, asm.Word),
		asm.Mov.Imm32(asm.R1, -1),
		asm.StoreMem(asm.RFP, -12, asm.R1, asm.Word),
		asm.Mov.Imm(asm.R1, 0),
		asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R6, 0, asm.DWord),
		asm.LoadMem(asm.R1, asm.R1, 0, asm.DWord), // meta->seq
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -16),
		asm.Mov.Imm(asm.R3, kernelRecordSize),
		asm.FnSeqWrite.Call(),
		// Every file: skip unless it is a socket.
		asm.LoadMem(asm.R7, asm.R6, 24, asm.DWord).WithSymbol("files"), // file
		asm.JEq.Imm(asm.R7, 0, "out"),
		asm.LoadMem(asm.R8, asm.R6, 8, asm.DWord), // task
		asm.JEq.Imm(asm.R8, 0, "out"),
		asm.LoadMem(asm.R2, asm.R7, fInode, asm.DWord),
		asm.JEq.Imm(asm.R2, 0, "out"),
		asm.LoadMem(asm.R3, asm.R2, iMode, asm.Half),
		asm.And.Imm(asm.R3, sIFMT),
		asm.JNE.Imm(asm.R3, sIFSOCK, "out"),
		asm.LoadMem(asm.R4, asm.R2, iIno, asm.DWord),
		asm.StoreMem(asm.RFP, -8, asm.R4, asm.DWord),
		asm.LoadMem(asm.R5, asm.R8, tgid, asm.Word),
		asm.StoreMem(asm.RFP, -16, asm.R5, asm.Word),
		asm.LoadMem(asm.R5, asm.R6, 16, asm.Word), // fd
		asm.StoreMem(asm.RFP, -12, asm.R5, asm.Word),
		asm.LoadMem(asm.R1, asm.R6, 0, asm.DWord),
		asm.LoadMem(asm.R1, asm.R1, 0, asm.DWord),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -16),
		asm.Mov.Imm(asm.R3, kernelRecordSize),
		asm.FnSeqWrite.Call(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	}, nil
}

// kernelSockets runs the iterator and returns every socket fd of every process in bindguard's
// pid namespace. It fails when the kernel numbers processes differently from bindguard's /proc
// (bindguard in a child pid namespace), since the pids would not name the right processes.
func kernelSockets() ([]kernelRecord, error) {
	spec, err := kernelTypes()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKernelScan, err)
	}
	insns, err := socketIterProgram(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKernelScan, err)
	}
	prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Name:         "bindguard_socks",
		Type:         ebpf.Tracing,
		AttachType:   ebpf.AttachTraceIter,
		AttachTo:     "task_file",
		Instructions: insns,
		License:      "GPL", // bpf_seq_write is a GPL-only helper
	}, ebpf.ProgramOptions{KernelTypes: spec})
	if err != nil {
		return nil, fmt.Errorf("%w: load task_file iterator: %v", ErrKernelScan, err)
	}
	defer func() { _ = prog.Close() }()
	it, err := link.AttachIter(link.IterOptions{Program: prog})
	if err != nil {
		return nil, fmt.Errorf("%w: attach task_file iterator: %v", ErrKernelScan, err)
	}
	defer func() { _ = it.Close() }()
	rd, err := it.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: open task_file iterator: %v", ErrKernelScan, err)
	}
	defer func() { _ = rd.Close() }()
	return decodeKernelRecords(rd, os.Getpid())
}

// decodeKernelRecords reads the iterator's output: the header record, then socket records.
func decodeKernelRecords(r io.Reader, self int) ([]kernelRecord, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%w: read task_file iterator: %v", ErrKernelScan, err)
	}
	if len(data)%kernelRecordSize != 0 {
		return nil, fmt.Errorf("%w: iterator output of %d bytes is not whole records", ErrKernelScan, len(data))
	}
	recs := make([]kernelRecord, 0, len(data)/kernelRecordSize)
	header := false
	for off := 0; off < len(data); off += kernelRecordSize {
		r := kernelRecord{
			tgid:  binary.NativeEndian.Uint32(data[off:]),
			fd:    binary.NativeEndian.Uint32(data[off+4:]),
			inode: binary.NativeEndian.Uint64(data[off+8:]),
		}
		if r.fd == headerFD {
			if int64(r.tgid) != int64(self) {
				return nil, fmt.Errorf("%w: the kernel numbers this process %d, /proc %d (a child pid namespace)", ErrKernelScan, r.tgid, self)
			}
			header = true
			continue
		}
		recs = append(recs, r)
	}
	if !header {
		return nil, fmt.Errorf("%w: iterator wrote no header", ErrKernelScan)
	}
	return recs, nil
}
