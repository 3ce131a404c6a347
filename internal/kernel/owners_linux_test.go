package kernel

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"golang.org/x/sys/unix"
)

func record(pid, fd uint32, inode uint64) []byte {
	b := make([]byte, socketRecordSize)
	binary.NativeEndian.PutUint32(b, pid)
	binary.NativeEndian.PutUint32(b[4:], fd)
	binary.NativeEndian.PutUint64(b[8:], inode)
	return b
}

func TestDecodeSocketFDs(t *testing.T) {
	good := bytes.Join([][]byte{record(42, headerFD, 0), record(7, 3, 1001), record(8, 10, 1002)}, nil)
	recs, err := decodeSocketFDs(bytes.NewReader(good), 42)
	if err != nil {
		t.Fatal(err)
	}
	if want := []SocketFD{{7, 3, 1001}, {8, 10, 1002}}; !slices.Equal(recs, want) {
		t.Errorf("records %+v, want %+v", recs, want)
	}
	// Read a byte at a time, records arrive torn across reads: the same records, in order.
	var streamed []SocketFD
	if err := decodeSocketFDsEach(iotest.OneByteReader(bytes.NewReader(good)), 42, func(b []SocketFD) { streamed = append(streamed, b...) }); err != nil {
		t.Fatal(err)
	}
	if want := []SocketFD{{7, 3, 1001}, {8, 10, 1002}}; !slices.Equal(streamed, want) {
		t.Errorf("streamed records %+v, want %+v", streamed, want)
	}
	for _, tc := range []struct {
		name, data string
		self       int
		want       string
	}{
		{"a record before the header", string(bytes.Join([][]byte{record(7, 3, 1001), record(42, headerFD, 0)}, nil)), 42, "no header"},
		{"header is another pid", string(good), 43, "numbers this process 42, getpid 43"},
		{"no header", string(record(7, 3, 1001)), 42, "no header"},
		{"torn record", string(good[:20]), 42, "not whole records"},
	} {
		_, err := decodeSocketFDs(strings.NewReader(tc.data), tc.self)
		if err == nil || !errors.Is(err, ErrSocketScan) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want ErrSocketScan with %q", tc.name, err, tc.want)
		}
	}
}

// requireRoot skips unless the test runs as root; as root the kernel tests must run.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF programs (run as root, as .ci/run does)")
	}
}

// TestSocketFDsSeesOwnSocket runs the iterator and looks for sockets this test holds.
func TestSocketFDsSeesOwnSocket(t *testing.T) {
	requireRoot(t)
	r, w, err := os.Pipe() // not a socket: must not be reported
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close(); _ = w.Close() }()
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Close(p[0]); _ = unix.Close(p[1]) }()
	recs, err := SocketFDs()
	if err != nil {
		t.Fatal(err)
	}
	mine := map[uint32]uint64{}
	for _, rec := range recs {
		if int(rec.PID) == os.Getpid() {
			mine[rec.FD] = rec.Inode
		}
	}
	for _, fd := range p {
		ino, ok := mine[uint32(fd)]
		if want := fdInode(t, fd); !ok || ino != want {
			t.Errorf("fd %d: kernel scan inode %d (found %v), want %d", fd, ino, ok, want)
		}
	}
	if _, ok := mine[uint32(r.Fd())]; ok {
		t.Errorf("the pipe's fd %d was reported as a socket", r.Fd())
	}
}

// TestSocketScannerRepeats: a loaded scanner scans again and again with fresh results, and
// fails clearly once closed.
func TestSocketScannerRepeats(t *testing.T) {
	requireRoot(t)
	s, err := NewSocketScanner()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	has := func(fd int) bool {
		recs, err := s.Scan()
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(recs, SocketFD{PID: uint32(os.Getpid()), FD: uint32(fd), Inode: fdInode(t, fd)})
	}
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !has(p[0]) {
		t.Error("first scan misses the socket")
	}
	ino := fdInode(t, p[1])
	_ = unix.Close(p[0])
	_ = unix.Close(p[1])
	recs, err := s.Scan()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Inode == ino {
			t.Errorf("second scan still reports the closed socket %+v", r)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scan(); !errors.Is(err, ErrSocketScan) {
		t.Errorf("Scan after Close: %v", err)
	}
}

func fdInode(t testing.TB, fd int) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// procfsSocketFDs is the reference: every socket link under /proc/*/fd.
func procfsSocketFDs() ([]SocketFD, error) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []SocketFD
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", d.Name(), "fd"))
		if err != nil {
			continue // exited
		}
		for _, f := range fds {
			fd, err := strconv.Atoi(f.Name())
			if err != nil {
				continue
			}
			l, err := os.Readlink(filepath.Join("/proc", d.Name(), "fd", f.Name()))
			if err != nil {
				continue
			}
			if s, ok := strings.CutPrefix(l, "socket:["); ok {
				ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
				if err == nil {
					out = append(out, SocketFD{PID: uint32(pid), FD: uint32(fd), Inode: ino})
				}
			}
		}
	}
	return out, nil
}

func sortFDs(s []SocketFD) {
	slices.SortFunc(s, func(a, b SocketFD) int {
		if a.PID != b.PID {
			return int(a.PID) - int(b.PID)
		}
		return int(a.FD) - int(b.FD)
	})
}

// pidnsHelperEnv makes TestMain run the child pid namespace helper instead of the tests.
const pidnsHelperEnv = "BINDGUARD_KERNEL_PIDNS_HELPER"

// pidnsReport is what the helper prints: its own pid, its socket's inode, and both scans.
type pidnsReport struct {
	Self   int        `json:"self"`
	Child  int        `json:"child"`
	Inode  uint64     `json:"inode"`
	Kernel []SocketFD `json:"kernel"`
	Procfs []SocketFD `json:"procfs"`
	Err    string     `json:"err"`
}

// runPidnsHelper runs inside `unshare --pid --fork --mount-proc`: it holds a socket, starts a
// child that holds one more, runs both scans, prints the report and waits for stdin to close.
func runPidnsHelper() int {
	rep := pidnsReport{Self: os.Getpid()}
	fail := func(err error) int {
		rep.Err = err.Error()
		_ = json.NewEncoder(os.Stdout).Encode(rep)
		return 1
	}
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(p[0], &st); err != nil {
		return fail(err)
	}
	rep.Inode = st.Ino
	child := exec.Command("sleep", "60")
	child.ExtraFiles = []*os.File{os.NewFile(uintptr(p[1]), "sock")}
	if err := child.Start(); err != nil {
		return fail(err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	rep.Child = child.Process.Pid
	if rep.Kernel, err = SocketFDs(); err != nil {
		return fail(err)
	}
	if rep.Procfs, err = procfsSocketFDs(); err != nil {
		return fail(err)
	}
	_ = json.NewEncoder(os.Stdout).Encode(rep)
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
	return 0
}

func TestMain(m *testing.M) {
	if os.Getenv(pidnsHelperEnv) != "" {
		os.Exit(runPidnsHelper())
	}
	if ns := os.Getenv(enforceHelperEnv); ns != "" {
		os.Exit(runEnforceHelper(ns))
	}
	if cg := os.Getenv(watchHelperEnv); cg != "" {
		os.Exit(runWatchHelper(cg))
	}
	os.Exit(m.Run())
}

// TestSocketFDsInChildPidNamespace runs the scan inside a new pid namespace (with its own
// /proc): it must report the pids that namespace sees, exactly the procfs scan there, and
// nothing from outside. From the host side, the same socket is held by the helper's host pid.
func TestSocketFDsInChildPidNamespace(t *testing.T) {
	requireRoot(t)
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatal("unshare (util-linux) not found")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// #nosec G204 -- our own test binary
	cmd := exec.Command(unshare, "--pid", "--fork", "--mount-proc", exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), pidnsHelperEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	var rep pidnsReport
	if err := json.Unmarshal(line, &rep); err != nil {
		t.Fatalf("helper said %q: %v", line, err)
	}
	if rep.Err != "" {
		t.Fatalf("helper: %s", rep.Err)
	}
	if rep.Self != 1 {
		t.Errorf("helper's pid in its namespace is %d, want 1", rep.Self)
	}
	sortFDs(rep.Kernel)
	sortFDs(rep.Procfs)
	if !slices.Equal(rep.Kernel, rep.Procfs) {
		t.Errorf("in the child pid namespace the kernel scan found\n%v\nthe procfs scan\n%v", rep.Kernel, rep.Procfs)
	}
	pids := map[uint32]bool{}
	for _, r := range rep.Kernel {
		pids[r.PID] = true
		if r.Inode == rep.Inode && r.PID != 1 {
			t.Errorf("the helper's socket is reported for pid %d, want 1", r.PID)
		}
	}
	if !pids[1] || !pids[uint32(rep.Child)] || len(pids) != 2 {
		t.Errorf("pids with sockets in the child namespace: %v, want exactly 1 (helper) and %d (its child)", pids, rep.Child)
	}

	// The host's view of the same socket: the helper's host pid, whose NSpid ends in 1.
	host, err := SocketFDs()
	if err != nil {
		t.Fatal(err)
	}
	var hostPID uint32
	for _, r := range host {
		if r.Inode == rep.Inode {
			hostPID = r.PID
		}
	}
	if hostPID == 0 {
		t.Fatalf("the host scan does not see the helper's socket %d", rep.Inode)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", hostPID))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("NSpid:\t%d\t1\n", hostPID)
	if !bytes.Contains(status, []byte(want)) {
		t.Errorf("host pid %d holds the helper's socket, but its status has no %q", hostPID, want)
	}
}
