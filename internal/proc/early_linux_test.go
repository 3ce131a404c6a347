package proc

import (
	"net"
	"os"
	"syscall"
	"testing"
)

// listenInode opens a loopback listener on port 0 and returns its socket inode.
func listenInode(t *testing.T) uint64 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Fstat(int(fd), &st) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	return st.Ino
}

// TestEarlyOwnerScan: the kernel scan started before the sockets are read (StartOwnerScan)
// is taken by the next Owners, and a socket opened after its walk is still found (Owners
// walks again), so starting early never loses an owner.
func TestEarlyOwnerScan(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to load the BPF owner scan (run as root, as .ci/run does)")
	}
	before := listenInode(t)
	discard := StartOwnerScan(OwnerScanBPF)
	defer discard()
	pendingScan.Lock()
	e := pendingScan.e
	pendingScan.Unlock()
	<-e.done
	if e.err != nil {
		t.Fatalf("early scan: %v", e.err)
	}
	after := listenInode(t) // opened after the early walk: not in it
	for _, r := range e.recs {
		if r.inode == after {
			t.Fatal("the early walk saw a socket opened after it")
		}
	}
	o, err := (&Scanner{Scan: OwnerScanBPF}).Owners(map[uint64]bool{before: true, after: true})
	if err != nil {
		t.Fatal(err)
	}
	if o.Method != OwnerScanBPF {
		t.Errorf("method %s, want bpf", o.Method)
	}
	for _, ino := range []uint64{before, after} {
		if p, ok := o.Owner(ino); !ok || p.PID != os.Getpid() {
			t.Errorf("socket %d: owner %+v %v, want this process (%d)", ino, p, ok, os.Getpid())
		}
	}
	pendingScan.Lock()
	left := pendingScan.e
	pendingScan.Unlock()
	if left != nil {
		t.Error("Owners left the early scan pending")
	}
	if _, err := e.sc.Scan(); err == nil {
		t.Error("the early scan's program is still loaded after Owners")
	}
}

// TestEarlyOwnerScanDiscarded: an early scan nobody took is freed by its discard function,
// and is not taken by an Owners of another owner scan or root.
func TestEarlyOwnerScanDiscarded(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to load the BPF owner scan (run as root, as .ci/run does)")
	}
	discard := StartOwnerScan(OwnerScanBPF)
	pendingScan.Lock()
	e := pendingScan.e
	pendingScan.Unlock()
	if _, err := (&Scanner{Scan: OwnerScanProcfs}).Owners(nil); err != nil {
		t.Fatal(err)
	}
	pendingScan.Lock()
	still := pendingScan.e == e
	pendingScan.Unlock()
	if !still {
		t.Error("a procfs scan took the bpf early scan")
	}
	discard()
	pendingScan.Lock()
	left := pendingScan.e
	pendingScan.Unlock()
	if left != nil {
		t.Error("discard left the early scan pending")
	}
	if e.sc != nil {
		if _, err := e.sc.Scan(); err == nil {
			t.Error("discard did not free the early scan's program")
		}
	}
	if got := StartOwnerScan(OwnerScanProcfs); got == nil {
		t.Error("nil discard for procfs")
	} else {
		got()
	}
}

// TestEarlyOwnerScanReadsOwnersDuringTheWalk: when the wanted sockets are known before the walk
// ends, their owners are read during it, and Owners reports them exactly as a scan of its own.
func TestEarlyOwnerScanReadsOwnersDuringTheWalk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to load the BPF owner scan (run as root, as .ci/run does)")
	}
	ino := listenInode(t)
	want := map[uint64]bool{ino: true}
	defer StartOwnerScan(OwnerScanBPF)()
	pendingScan.Lock()
	e := pendingScan.e
	pendingScan.Unlock()
	e.want.Store(&want) // known from the start, as when the dump ends before the walk
	<-e.done
	if e.err != nil {
		t.Fatal(e.err)
	}
	if d, ok := e.details[os.Getpid()]; !ok || d.gone || d.p.PID != os.Getpid() || d.mnt == "" {
		t.Fatalf("this process was not read during the walk: %+v %v", d, ok)
	}
	got, err := (&Scanner{Scan: OwnerScanBPF}).Owners(want)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := (&Scanner{Scan: OwnerScanBPF}).Owners(want) // nothing pending: a scan of its own
	if err != nil {
		t.Fatal(err)
	}
	if g, r := got.Procs[os.Getpid()], ref.Procs[os.Getpid()]; g != r || len(got.ByInode[ino]) != len(ref.ByInode[ino]) {
		t.Errorf("owner read during the walk %+v, by a scan of its own %+v", g, r)
	}
}
