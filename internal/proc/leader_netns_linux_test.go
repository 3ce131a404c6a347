package proc_test

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/proc"
)

// leaderEnv names the namespace the helper process moves its main thread into.
const leaderEnv = "BINDGUARD_TEST_LEADER_NETNS"

func init() {
	if os.Getenv(leaderEnv) != "" {
		runtime.LockOSThread() // the main goroutine keeps the main thread (the leader)
	}
}

func TestMain(m *testing.M) {
	if path := os.Getenv(leaderEnv); path != "" {
		os.Exit(leaderHelper(path))
	}
	os.Exit(m.Run())
}

// leaderHelper moves the main thread into path's namespace, as a goroutine locked to it
// would, and prints what Current and All say from another goroutine (another thread, in the
// process's own namespace).
func leaderHelper(path string) int {
	before, err := proc.NamespaceFinder{}.Current()
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		err = unix.Setns(fd, unix.CLONE_NEWNET)
	}
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	out := make(chan string)
	go func() {
		cur, err := proc.NamespaceFinder{}.Current()
		if err != nil {
			out <- "error " + err.Error()
			return
		}
		all, err := proc.NamespaceFinder{}.All()
		if err != nil {
			out <- "error " + err.Error()
			return
		}
		current := []string{}
		for _, ns := range all {
			if ns.Current {
				current = append(current, fmt.Sprint(ns.Inode))
			}
		}
		out <- fmt.Sprintf("before %d current %d all-current %s", before.Inode, cur.Inode, strings.Join(current, ","))
	}()
	fmt.Println(<-out)
	return 0
}

// TestCurrentNamespaceIsTheThreads: with the process's main thread moved into another network
// namespace (as a goroutine locked to it may do for a while), the current namespace is still
// the one the process's other threads run in, not the main thread's (/proc/self/ns/net follows
// the main thread: an audit then observed the host's sockets under another namespace's name).
func TestCurrentNamespaceIsTheThreads(t *testing.T) {
	netnstest.Require(t)
	ns := netnstest.New(t, "bglead")
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), leaderEnv+"="+ns.Path)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	var before, cur uint64
	var all string
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "before %d current %d all-current %s", &before, &cur, &all); err != nil {
		t.Fatalf("helper said %q: %v", b, err)
	}
	if cur != before || all != fmt.Sprint(before) {
		t.Errorf("current namespace %d (All: %s), want the process's own %d, not the moved main thread's", cur, all, before)
	}
}
