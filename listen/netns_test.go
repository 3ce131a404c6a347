//go:build linux

package listen

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/proc"
)

// helperEnv makes the test binary act as a socket-activated service (TestMain).
const helperEnv = "BINDGUARD_LISTEN_HELPER_POLICY"

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		os.Exit(activatedHelper(path))
	}
	os.Exit(m.Run())
}

// activatedHelper takes the sockets systemd would pass and listens for service "core".
func activatedHelper(path string) int {
	pol, err := loadPolicyFile(path)
	if err == nil {
		var socks *Sockets
		if socks, err = Activated(); err == nil {
			if os.Getenv("LISTEN_FDS") != "" {
				err = fmt.Errorf("LISTEN_FDS still set after Activated")
			} else {
				var l net.Listener
				if l, err = Listen(context.Background(), pol, "core", WithSockets(socks)); err == nil {
					fmt.Println("ok", l.Addr())
					return 0
				}
			}
		}
	}
	fmt.Println("error", err)
	return 1
}

// TestSocketActivation runs the test binary the way systemd starts a socket-activated service:
// fd 3 a listening socket, LISTEN_PID its own pid (set by the shell that execs it),
// LISTEN_FDS=1, LISTEN_FDNAMES=core.
func TestSocketActivation(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	port := netip.MustParseAddrPort(l.Addr().String()).Port()
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	run := func(address string) string {
		dir := t.TempDir()
		pf := dir + "/p.yaml"
		src := fmt.Sprintf("version: 1\nservices:\n  - {name: core, port: %d, address: %s, access: localhost_only}\n", port, address)
		if err := os.WriteFile(pf, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" -test.run='^$'`, os.Args[0]) // #nosec G204 G702 -- the test binary itself
		cmd.Env = append(os.Environ(), helperEnv+"="+pf, "LISTEN_FDS=1", "LISTEN_FDNAMES=core")
		cmd.ExtraFiles = []*os.File{f}
		out, _ := cmd.CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	if got := run("127.0.0.1"); got != "ok "+l.Addr().String() {
		t.Errorf("activated service: %q, want ok %s", got, l.Addr())
	}
	if got := run("127.0.0.2"); !strings.Contains(got, "bound to 127.0.0.1, the policy declares 127.0.0.2") {
		t.Errorf("mismatched activation: %q, want a refusal", got)
	}
}

// TestListenInNamespace binds for real, inside a namespace of the test's own: the declared
// ports, families and IPV6_V6ONLY as the policy says.
func TestListenInNamespace(t *testing.T) {
	ns := netnstest.New(t, "bglisten")
	pol := mustPolicy(t, testPolicy)
	type want struct {
		service string
		opts    []Option
		addr    string
		family  int
		v6only  int // -1: not IPv6
	}
	for _, w := range []want{
		{"core", nil, "127.0.0.1:8001", unix.AF_INET, -1},
		{"web", []Option{WithAddress(netip.MustParseAddr("0.0.0.0"))}, "0.0.0.0:443", unix.AF_INET, -1},
		{"web6", nil, "[::]:8443", unix.AF_INET6, 1},
		{"dual", nil, "[::]:8444", unix.AF_INET6, 0},
		{"dns", nil, "0.0.0.0:53", unix.AF_INET, -1},
	} {
		err := proc.InNetNS(ns.Path, func() error {
			var sc syscall.RawConn
			var got string
			if w.service == "dns" {
				pc, err := ListenPacket(context.Background(), pol, w.service, w.opts...)
				if err != nil {
					return err
				}
				defer func() { _ = pc.Close() }()
				got = pc.LocalAddr().String()
				sc, err = pc.(*net.UDPConn).SyscallConn()
				if err != nil {
					return err
				}
			} else {
				l, err := Listen(context.Background(), pol, w.service, w.opts...)
				if err != nil {
					return err
				}
				defer func() { _ = l.Close() }()
				got = l.Addr().String()
				sc, err = l.(*net.TCPListener).SyscallConn()
				if err != nil {
					return err
				}
			}
			if got != w.addr {
				t.Errorf("%s: listening on %s, want %s", w.service, got, w.addr)
			}
			if fam := sockopt(t, sc, unix.SOL_SOCKET, unix.SO_DOMAIN); fam != w.family {
				t.Errorf("%s: family %d, want %d", w.service, fam, w.family)
			}
			if w.v6only >= 0 {
				if v := sockopt(t, sc, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); v != w.v6only {
					t.Errorf("%s: IPV6_V6ONLY=%d, want %d", w.service, v, w.v6only)
				}
			}
			return nil
		})
		if err != nil {
			t.Errorf("%s: %v", w.service, err)
		}
	}
	// An inherited wildcard socket for a localhost_only service is refused.
	err := proc.InNetNS(ns.Path, func() error {
		l, err := net.Listen("tcp4", "0.0.0.0:8002")
		if err != nil {
			return err
		}
		defer func() { _ = l.Close() }()
		f, err := l.(*net.TCPListener).File()
		if err != nil {
			return err
		}
		socks, _ := FromFiles([]*os.File{f}, nil)
		_, err = Listen(context.Background(), pol, "anyloop", WithSockets(socks))
		if err == nil || !strings.Contains(err.Error(), "localhost_only allows loopback addresses only") {
			t.Errorf("inherited 0.0.0.0:8002 for a localhost_only service: %v", err)
		}
		_ = f.Close()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
