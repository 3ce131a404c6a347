// Package netnstest gives tests network namespaces of their own: created with `ip netns add`,
// with loopback up and optional veth addresses, deleted when the test ends. Sockets are opened
// inside them from the test process itself (Listen) or from a helper process (StartListener),
// so tests never touch the host's own listeners.
//
// Tests that use it need root and iproute2; Require skips them with the reason otherwise.
package netnstest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bindguard/bindguard/internal/proc"
)

// HelperEnv, when set in a test binary's environment, makes RunHelper listen on the sockets it
// names ("tcp:0.0.0.0:7000,udp:[::1]:53") and wait for its stdin to close.
const HelperEnv = "BINDGUARD_NETNSTEST_LISTEN"

// Require skips the test unless it runs as root with the ip command (iproute2).
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces (run as root, as .ci/run does)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) not found: needed to create network namespaces")
	}
}

// RequireTool returns the path of an external program a test runs. Without it the test
// skips, naming the Debian package; as root (as in .ci/run, where make deps installs it) it
// fails instead, so that CI never passes by skipping.
func RequireTool(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Geteuid() == 0 {
		t.Fatalf("%s not found; make deps installs it (Debian package %s)", name, pkg)
	}
	t.Skipf("%s not found (Debian package %s; make deps installs it as root)", name, pkg)
	return ""
}

// NS is a network namespace made for one test.
type NS struct {
	Name string
	Path string // /run/netns/NAME
}

// New creates a namespace named prefix-RANDOM with loopback up, deleted at cleanup.
func New(t testing.TB, prefix string) *NS {
	t.Helper()
	Require(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := prefix + "-" + hex.EncodeToString(b)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() }) // #nosec G204 -- our own random name
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return &NS{Name: name, Path: filepath.Join(proc.DefaultNetnsDir, name)}
}

// AddAddress gives the namespace addr/bits on one end of a veth pair whose both ends live in
// it (this kernel has no dummy links). The address is usable at once (no DAD for IPv6).
func (n *NS) AddAddress(t testing.TB, prefix netip.Prefix) {
	t.Helper()
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	a, z := "va"+hex.EncodeToString(b), "vb"+hex.EncodeToString(b)
	run(t, "ip", "-n", n.Name, "link", "add", a, "type", "veth", "peer", "name", z)
	args := []string{"-n", n.Name, "addr", "add", prefix.String(), "dev", a}
	if prefix.Addr().Is6() {
		args = append(args, "nodad")
	}
	run(t, "ip", args...)
	run(t, "ip", "-n", n.Name, "link", "set", a, "up")
	run(t, "ip", "-n", n.Name, "link", "set", z, "up")
}

// Connect joins namespaces a and b with a veth pair, giving a the addresses aAddrs and b the
// addresses bAddrs (with their prefix lengths): hosts on one link.
func Connect(t testing.TB, a, b *NS, aAddrs, bAddrs []netip.Prefix) {
	t.Helper()
	r := make([]byte, 2)
	_, _ = rand.Read(r)
	ea, eb := "va"+hex.EncodeToString(r), "vb"+hex.EncodeToString(r)
	run(t, "ip", "-n", a.Name, "link", "add", ea, "type", "veth", "peer", "name", eb, "netns", b.Name)
	for _, side := range []struct {
		ns    *NS
		dev   string
		addrs []netip.Prefix
	}{{a, ea, aAddrs}, {b, eb, bAddrs}} {
		for _, addr := range side.addrs {
			args := []string{"-n", side.ns.Name, "addr", "add", addr.String(), "dev", side.dev}
			if addr.Addr().Is6() {
				args = append(args, "nodad")
			}
			run(t, "ip", args...)
		}
		run(t, "ip", "-n", side.ns.Name, "link", "set", side.dev, "up")
	}
}

// Spec is a socket to open: "tcp", "tcp4", "tcp6", "udp", "udp4" or "udp6", an address and
// port, and for "::" whether to set IPV6_V6ONLY.
type Spec struct {
	Network string
	Addr    netip.AddrPort
	V6Only  bool
}

// MustSpec is ParseSpec for a spec a test writes, failing the test on a bad one.
func MustSpec(t testing.TB, s string) Spec {
	t.Helper()
	sp, err := ParseSpec(s)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// ParseSpec reads "tcp:127.0.0.1:80", "udp6:[::]:53:v6only".
func ParseSpec(s string) (Spec, error) {
	network, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Spec{}, fmt.Errorf("spec %q: want NETWORK:ADDR:PORT", s)
	}
	sp := Spec{Network: network}
	if r, ok := strings.CutSuffix(rest, ":v6only"); ok {
		sp.V6Only, rest = true, r
	}
	ap, err := netip.ParseAddrPort(rest)
	if err != nil {
		return Spec{}, fmt.Errorf("spec %q: %w", s, err)
	}
	sp.Addr = ap
	return sp, nil
}

// String is the spec as ParseSpec reads it.
func (s Spec) String() string {
	out := s.Network + ":" + s.Addr.String()
	if s.V6Only {
		out += ":v6only"
	}
	return out
}

// open opens the socket in the calling thread's namespace.
func (s Spec) open() (io.Closer, error) {
	v6only := 0
	if s.V6Only {
		v6only = 1
	}
	lc := net.ListenConfig{Control: func(network, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if strings.HasSuffix(network, "6") || s.Addr.Addr().Is6() {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	if strings.HasPrefix(s.Network, "udp") {
		return lc.ListenPacket(context.Background(), s.Network, s.Addr.String())
	}
	return lc.Listen(context.Background(), s.Network, s.Addr.String())
}

// Listen opens the sockets inside the namespace from the test process; they close at cleanup.
func (n *NS) Listen(t testing.TB, specs ...Spec) {
	t.Helper()
	var closers []io.Closer
	err := proc.InNetNS(n.Path, func() error {
		for _, s := range specs {
			c, err := s.open()
			if err != nil {
				return fmt.Errorf("listen %s: %w", s, err)
			}
			closers = append(closers, c)
		}
		return nil
	})
	t.Cleanup(func() {
		for _, c := range closers {
			_ = c.Close()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// StartListener starts a helper process (the test binary, running RunHelper through testName)
// inside the namespace, holding the sockets, and returns its pid. It is killed, by pid, at
// cleanup.
func (n *NS) StartListener(t testing.TB, testName string, specs ...Spec) int {
	t.Helper()
	parts := make([]string, len(specs))
	for i, s := range specs {
		parts[i] = s.String()
	}
	cmd := exec.Command("nsenter", "--net="+n.Path, os.Args[0], "-test.run=^"+testName+"$") // #nosec G204 G702 -- the test binary itself
	cmd.Env = append(os.Environ(), HelperEnv+"="+strings.Join(parts, ","))
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
		t.Fatalf("start helper: %v", err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("helper said %q", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("helper: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("helper did not become ready in 10s")
	}
	return cmd.Process.Pid
}

// RunHelper is the body of the helper test: when HelperEnv is set it opens the sockets, says
// "ready", waits for stdin to close and exits; otherwise it returns at once.
func RunHelper() {
	v := os.Getenv(HelperEnv)
	if v == "" {
		return
	}
	var keep []io.Closer
	for _, p := range strings.Split(v, ",") {
		s, err := ParseSpec(p)
		if err == nil {
			var c io.Closer
			c, err = s.open()
			keep = append(keep, c)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(3)
		}
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range keep {
		_ = c.Close()
	}
	os.Exit(0)
}

// Exec runs a command inside the namespace and returns its standard output.
func (n *NS) Exec(t testing.TB, name string, args ...string) string {
	t.Helper()
	full := append([]string{"--net=" + n.Path, name}, args...)
	out, err := exec.Command("nsenter", full...).Output() // #nosec G204 G702 -- commands the tests choose
	if err != nil {
		t.Fatalf("nsenter %s %v: %v", name, args, err)
	}
	return string(out)
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput() // #nosec G204 -- test setup commands
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// UDPEcho answers every datagram sent to addr (e.g. "[::]:5353", dual-stack) inside the
// namespace, until the test ends.
func (n *NS) UDPEcho(t testing.TB, addr string) {
	t.Helper()
	var pc net.PacketConn
	if err := proc.InNetNS(n.Path, func() (err error) {
		pc, err = net.ListenPacket("udp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		for {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:k], from)
		}
	}()
	t.Cleanup(func() { _ = pc.Close(); <-done })
}
