package kernel

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/bindguard/bindguard/internal/cgrouptest"
	"golang.org/x/sys/unix"
)

func randomName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// testNetns creates a network namespace with loopback up (ip netns add), deleted at cleanup.
// It returns its path and inode.
func testNetns(t testing.TB) (string, uint64) {
	t.Helper()
	name := randomName("bgk")
	for _, args := range [][]string{{"netns", "add", name}, {"-n", name, "link", "set", "lo", "up"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil { // #nosec G204 -- fixed args, our own name
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
		if args[0] == "netns" {
			t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() }) // #nosec G204 -- our own name
		}
	}
	path := filepath.Join("/run/netns", name)
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return path, st.Ino
}

// inNetns runs fn on an OS thread switched into the network namespace at path; sockets fn
// creates live there. The thread is switched back before it is released.
func inNetns(t testing.TB, path string, fn func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer func() { _ = self.Close() }()
		ns, err := os.Open(path) // #nosec G304 -- our own test namespace
		if err != nil {
			errc <- err
			return
		}
		defer func() { _ = ns.Close() }()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		fn()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err // the thread stays locked and exits with the goroutine
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// testCgroup creates a cgroup2 child of the mount, moves this test process into it and
// returns its path and id; at cleanup the process goes back and the cgroup is removed.
func testCgroup(t testing.TB) (string, uint64) {
	t.Helper()
	mount, err := FindCgroup2()
	if err != nil {
		t.Fatal(err)
	}
	dir := cgrouptest.Join(t, mount, "bindguard-test")
	id, err := CgroupID(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, id
}

// sockSpec is a socket the tests open: SOCK_STREAM listeners or SOCK_DGRAM binds.
type sockSpec struct {
	name    string
	network string // tcp or udp
	addr    netip.Addr
	v6only  bool
	noBind  bool // listen() without bind()
}

// open creates, binds (port 0) and listens as the spec says; it returns the fd and the port.
func (s sockSpec) open() (int, uint16, error) {
	fd, port, _, err := s.openTimed()
	return fd, port, err
}

// openTimed is open, and also returns when listen() (or for UDP bind()) returned.
func (s sockSpec) openTimed() (int, uint16, time.Time, error) {
	family := unix.AF_INET
	if s.addr.Is6() {
		family = unix.AF_INET6
	}
	typ := unix.SOCK_STREAM
	if s.network == "udp" {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, 0, time.Time{}, err
	}
	var at time.Time
	fail := func(err error) (int, uint16, time.Time, error) { _ = unix.Close(fd); return -1, 0, at, err }
	if family == unix.AF_INET6 {
		v := 0
		if s.v6only {
			v = 1
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v); err != nil {
			return fail(err)
		}
	}
	if !s.noBind {
		var sa unix.Sockaddr
		if s.addr.Is6() {
			sa = &unix.SockaddrInet6{Addr: s.addr.As16()}
		} else {
			sa = &unix.SockaddrInet4{Addr: s.addr.As4()}
		}
		if err := unix.Bind(fd, sa); err != nil {
			return fail(err)
		}
		at = time.Now()
	}
	if typ == unix.SOCK_STREAM {
		if err := unix.Listen(fd, 16); err != nil {
			return fail(err)
		}
		at = time.Now()
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return fail(err)
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return fd, uint16(a.Port), at, nil // #nosec G115 -- a port
	case *unix.SockaddrInet6:
		return fd, uint16(a.Port), at, nil // #nosec G115 -- a port
	}
	return fail(os.ErrInvalid)
}
