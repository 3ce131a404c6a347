package kernel

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// watchHelperEnv makes TestMain run the event helper (in a child pid namespace): it names the
// cgroup to attach to.
const watchHelperEnv = "BINDGUARD_KERNEL_WATCH_HELPER"

// watchReport is what the event helper prints after its events.
type watchReport struct {
	OwnPort   uint16 `json:"own_port"`
	OwnPID    int    `json:"own_pid"`    // the helper's listen as its watcher saw it
	OtherPID  int    `json:"other_pid"`  // the parent's listen as the helper's watcher saw it
	OtherSeen bool   `json:"other_seen"` // the parent's listen was reported at all
	Err       string `json:"err"`
}

// runWatchHelper: open a Watcher, say "ready", read the parent's listener port from stdin,
// open a listener of its own on 127.0.0.1:0, report the pids both events carry, and wait for
// stdin to close.
func runWatchHelper(cgroup string) int {
	var rep watchReport
	out := json.NewEncoder(os.Stdout)
	fail := func(err error) int { rep.Err = err.Error(); _ = out.Encode(rep); return 1 }
	w, err := OpenWatcher(WatchOptions{Cgroup: cgroup})
	if err != nil {
		return fail(err)
	}
	defer func() { _ = w.Close() }()
	fmt.Println("ready")
	in := bufio.NewReader(os.Stdin)
	line, err := in.ReadString('\n')
	if err != nil {
		return fail(err)
	}
	other, err := strconv.ParseUint(strings.TrimSpace(line), 10, 16)
	if err != nil {
		return fail(err)
	}
	fd, port, err := sockSpec{network: "tcp", addr: netip.MustParseAddr("127.0.0.1")}.open()
	if err != nil {
		return fail(err)
	}
	defer func() { _ = unix.Close(fd) }()
	rep.OwnPort = port
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for rep.OwnPID == 0 || !rep.OtherSeen {
		e, err := w.Read(ctx)
		if err != nil {
			return fail(fmt.Errorf("own listen seen as pid %d, other seen %v: %w", rep.OwnPID, rep.OtherSeen, err))
		}
		if e.Kind != KindListen {
			continue
		}
		switch e.Port {
		case port:
			rep.OwnPID = e.PID
		case uint16(other):
			rep.OtherPID, rep.OtherSeen = e.PID, true
		}
	}
	_ = out.Encode(rep)
	// Alive until the test closes stdin: it reads this process's /proc status after the
	// report (exiting at once made that read race the exit).
	_, _ = io.Copy(io.Discard, in)
	return 0
}

// TestWatcherPidsInChildPidNamespace: a Watcher inside a child pid namespace (a container)
// reports its own processes by the pids they have there, and a host process as not visible
// (pid 0); the host's Watcher reports the same container process by its host pid.
func TestWatcherPidsInChildPidNamespace(t *testing.T) {
	host, cgID := openTestWatcher(t, 0) // moves this process (and so the helper) into a test cgroup
	cg, err := FindCgroup2()
	if err != nil {
		t.Fatal(err)
	}
	cgPath, err := CgroupPath(cg, cgID)
	if err != nil {
		t.Fatal(err)
	}
	nsPath, nsIno := testNetns(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// #nosec G204 -- our own test binary, in a netns of our own
	cmd := exec.Command("nsenter", "--net="+nsPath, "unshare", "--pid", "--fork", "--mount-proc", exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), watchHelperEnv+"="+cg+cgPath)
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
	rd := bufio.NewReader(stdout)
	if line, err := rd.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	var fd int
	var port uint16
	inNetns(t, nsPath, func() { fd, port, err = sockSpec{network: "tcp", addr: netip.MustParseAddr("127.0.0.1")}.open() })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Close(fd) }()
	if _, err := fmt.Fprintln(stdin, port); err != nil {
		t.Fatal(err)
	}
	line, err := rd.ReadBytes('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	var rep watchReport
	if err := json.Unmarshal(line, &rep); err != nil || rep.Err != "" {
		t.Fatalf("helper said %s (%v)", line, err)
	}
	if rep.OwnPID != 1 {
		t.Errorf("inside the child pid namespace the helper's own listen has pid %d, want 1", rep.OwnPID)
	}
	if rep.OtherPID != 0 {
		t.Errorf("inside the child pid namespace the host's listen has pid %d, want 0 (not visible)", rep.OtherPID)
	}
	// The host's Watcher: this test's listen as os.Getpid(), the helper's as its host pid,
	// whose NSpid ends in 1.
	seen := map[uint16]int{}
	for len(seen) < 2 {
		e := nextIn(t, host, nsIno)
		if e.Kind == KindListen {
			seen[e.Port] = e.PID
		}
	}
	if seen[port] != os.Getpid() {
		t.Errorf("host watcher: this test's listen has pid %d, want %d", seen[port], os.Getpid())
	}
	hp := seen[rep.OwnPort]
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", hp))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("NSpid:\t%d\t1\n", hp); !strings.Contains(string(status), want) {
		t.Errorf("host watcher: the helper's listen has pid %d, whose status lacks %q", hp, want)
	}
}
