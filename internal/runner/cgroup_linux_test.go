package runner

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/bindguard/bindguard/internal/cgrouptest"
	"github.com/bindguard/bindguard/internal/kernel"
)

func TestNewCgroupRefusesNames(t *testing.T) {
	for _, name := range []string{"", "../x", "a/b", ".", "..", ".hidden", "a\x00b"} {
		if _, err := NewCgroup("/nonexistent", name); err == nil || !strings.Contains(err.Error(), "cannot name a cgroup") {
			t.Errorf("service %q: %v", name, err)
		}
	}
}

// TestCgroupLeftovers (root): in a cgroup of the test's own, NewCgroup makes
// bindguard-run.NAME.PID beside the test, Join and Leave move the process in and out, and
// Leftovers lists exactly the empty cgroups of ended runs: not one whose pid lives, not one
// that holds a process, not a name without a pid or of another prefix.
func TestCgroupLeftovers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups (run as root, as .ci/run does)")
	}
	mount, err := kernel.FindCgroup2()
	if err != nil {
		t.Fatal("no cgroup2:", err)
	}
	parent := cgrouptest.Join(t, mount, "bindguard-runner-test")
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("sleep", "60")
	mk := func(name string) string {
		t.Helper()
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil { // #nosec G301 -- a cgroup directory
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Remove(dir) })
		return dir
	}
	deadPID := strconv.Itoa(dead.Process.Pid)
	gone := mk(CgroupPrefix + "svc." + deadPID)
	mk(CgroupPrefix + "svc.1") // pid 1 lives
	mk(CgroupPrefix + "nopid")
	mk("other." + deadPID)
	busy := mk(CgroupPrefix + "busy." + deadPID)
	bf, err := os.Open(busy)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = bf.Close() }()
	sleeper.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(bf.Fd())} // #nosec G115 -- an fd
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })

	c, err := NewCgroup(mount, "svc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Remove() })
	if c.Parent != parent || c.Dir != filepath.Join(parent, CgroupPrefix+"svc."+strconv.Itoa(os.Getpid())) || c.Unmanaged {
		t.Errorf("NewCgroup: %+v", c)
	}
	if err := c.Join(); err != nil {
		t.Fatal(err)
	}
	if busy, err := c.Populated(); err != nil || !busy {
		t.Errorf("joined: populated %v %v", busy, err)
	}
	if err := c.Remove(); err == nil {
		t.Error("removed a cgroup with this process in it")
	}
	if err := c.Leave(); err != nil {
		t.Fatal(err)
	}
	got, err := Leftovers(mount)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{gone}) {
		t.Errorf("Leftovers = %v, want only %s", got, gone)
	}
	if err := RemoveLeftover(gone); err != nil {
		t.Error(err)
	}
	if err := c.Remove(); err != nil {
		t.Errorf("after Leave: %v", err)
	}
}
