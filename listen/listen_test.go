package listen

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bindguard/bindguard/policy"
)

const testPolicy = `version: 1
networks:
  lan: [10.1.1.0/24]
services:
  - {name: core, port: 8001, address: 127.0.0.1, access: localhost_only}
  - {name: anyloop, port: 8002, access: localhost_only}
  - {name: dash, port: 8080, access: lan, allow: [lan]}
  - {name: web, port: 443, access: public}
  - {name: dns, protocol: udp, port: 53, address: 0.0.0.0, access: public}
  - {name: web6, port: 8443, address: "::", v6only: true, access: public}
  - {name: dual, port: 8444, address: "::", access: public}
`

func mustPolicy(t testing.TB, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("listen.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolve(t *testing.T) {
	pol := mustPolicy(t, testPolicy)
	a := netip.MustParseAddr
	for _, tc := range []struct {
		service string
		opts    []Option
		want    string // network and address, or the error's words
		v6only  bool
	}{
		{"core", nil, "tcp4 127.0.0.1:8001", false},
		{"anyloop", nil, "tcp4 127.0.0.1:8002", false},                        // default: loopback
		{"anyloop", []Option{WithAddress(a("::1"))}, "tcp6 [::1]:8002", true}, // another loopback
		{"anyloop", []Option{WithAddress(a("::ffff:127.0.0.5"))}, "tcp4 127.0.0.5:8002", false},
		{"web", nil, "tcp4 127.0.0.1:443", false}, // a wildcard is never a default
		{"web", []Option{WithAddress(a("0.0.0.0"))}, "tcp4 0.0.0.0:443", false},
		{"web", []Option{WithAddress(a("::"))}, "tcp6 [::]:443", false}, // "::" as the policy reads it: dual-stack
		{"dash", []Option{WithAddress(a("10.1.1.120"))}, "tcp4 10.1.1.120:8080", false},
		{"dns", nil, "udp4 0.0.0.0:53", false},
		{"web6", nil, "tcp6 [::]:8443", true},
		{"dual", nil, "tcp6 [::]:8444", false},
		{"core", []Option{WithAddress(a("0.0.0.0"))}, "the policy declares address 127.0.0.1", false},
		{"anyloop", []Option{WithAddress(a("0.0.0.0"))}, "localhost_only allows loopback addresses only", false},
		{"anyloop", []Option{WithAddress(a("10.1.1.5"))}, "localhost_only allows loopback addresses only", false},
		{"dash", []Option{WithAddress(a("0.0.0.0"))}, "never a wildcard", false},
		{"dash", []Option{WithAddress(a("192.168.1.1"))}, "inside its allow list", false},
		{"anyloop", []Option{WithAddress(a("fe80::1%eth0"))}, "zone", false},
	} {
		p, err := Resolve(pol, tc.service, tc.opts...)
		got := ""
		if err != nil {
			got = err.Error()
			var le *Error
			if !errors.Is(err, ErrForbidden) || !errors.As(err, &le) || le.Service != tc.service {
				t.Errorf("%s: error %v is not a *Error matching ErrForbidden", tc.service, err)
			}
		} else {
			got = p.Network + " " + p.Addr.String()
			if p.V6Only != tc.v6only {
				t.Errorf("%s: v6only %v, want %v", tc.service, p.V6Only, tc.v6only)
			}
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s %v: %q, want %q", tc.service, tc.opts, got, tc.want)
		}
	}
	if _, err := Resolve(pol, "nope"); err == nil || !strings.Contains(err.Error(), `no service "nope"`) {
		t.Errorf("unknown service: %v", err)
	}
	if _, err := Listen(context.Background(), pol, "dns"); err == nil || !strings.Contains(err.Error(), "use ListenPacket") {
		t.Errorf("Listen on a UDP service: %v", err)
	}
	if _, err := ListenPacket(context.Background(), pol, "core"); err == nil || !strings.Contains(err.Error(), "use Listen") {
		t.Errorf("ListenPacket on a TCP service: %v", err)
	}
}

// TestRefusedBeforeBind: a refused address never reaches bind(2). The policy's port is one
// this test holds, so a bind would fail with EADDRINUSE instead of the policy error.
func TestRefusedBeforeBind(t *testing.T) {
	held, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = held.Close() }()
	port := netip.MustParseAddrPort(held.Addr().String()).Port()
	pol := mustPolicy(t, "version: 1\nservices:\n  - {name: s, port: "+itoa(port)+", access: localhost_only}\n")
	_, err = Listen(context.Background(), pol, "s", WithAddress(netip.MustParseAddr("0.0.0.0")))
	if !errors.Is(err, ErrForbidden) {
		t.Fatalf("error %v, want the policy's refusal", err)
	}
}

func itoa(p uint16) string {
	return netip.AddrPortFrom(netip.IPv4Unspecified(), p).String()[len("0.0.0.0:"):]
}

func TestInheritedSockets(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	port := itoa(netip.MustParseAddrPort(l.Addr().String()).Port())
	file := func() *os.File {
		f, err := l.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, tc := range []struct {
		name, policy string
		names        []string
		want         string // "" for success
	}{
		{"matches", "{name: core, port: " + port + ", address: 127.0.0.1, access: localhost_only}", nil, ""},
		{"matches by name", "{name: core, port: " + port + ", access: localhost_only}", []string{"core"}, ""},
		{"other address declared", "{name: core, port: " + port + ", address: 127.0.0.2, access: localhost_only}", nil, "bound to 127.0.0.1, the policy declares 127.0.0.2"},
		{"named, other port", "{name: core, port: 1, address: 127.0.0.1, access: localhost_only}", []string{"core"}, "it is on port " + port},
		{"named, udp declared", "{name: core, protocol: udp, port: " + port + ", address: 127.0.0.1, access: localhost_only}", []string{"core"}, "it is tcp, the policy declares udp"},
		{"lan class, loopback ok", "{name: core, port: " + port + ", access: lan, allow: [10.0.0.0/8]}", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol := mustPolicy(t, "version: 1\nservices:\n  - "+tc.policy+"\n")
			socks, err := FromFiles([]*os.File{file()}, tc.names)
			if err != nil {
				t.Fatal(err)
			}
			var ln net.Listener
			if pol.Services[0].Protocol == policy.UDP {
				_, err = ListenPacket(context.Background(), pol, "core", WithSockets(socks))
			} else {
				ln, err = Listen(context.Background(), pol, "core", WithSockets(socks))
			}
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = ln.Close() }()
				if ln.Addr().String() != l.Addr().String() {
					t.Errorf("listener on %s, want the inherited %s", ln.Addr(), l.Addr())
				}
				if len(socks.Remaining()) != 0 {
					t.Error("the socket was not taken")
				}
				return
			}
			if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want refusal with %q", err, tc.want)
			}
			for _, f := range socks.Remaining() {
				_ = f.Close()
			}
		})
	}
	// Not a socket at all, named for the service.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	socks, _ := FromFiles([]*os.File{r}, []string{"core"})
	pol := mustPolicy(t, "version: 1\nservices:\n  - {name: core, port: 8001, address: 127.0.0.1, access: localhost_only}\n")
	if _, err := Listen(context.Background(), pol, "core", WithSockets(socks)); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("pipe named core: %v", err)
	}
	if _, err := FromFiles([]*os.File{r}, []string{"a", "b"}); err == nil {
		t.Error("two names for one file accepted")
	}
}

func TestActivatedEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	unset := func(string) error { return nil }
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, ""},
		{map[string]string{"LISTEN_PID": "99", "LISTEN_FDS": "1"}, ""}, // another process's
		{map[string]string{"LISTEN_PID": "x", "LISTEN_FDS": "1"}, "not a pid"},
		{map[string]string{"LISTEN_PID": "42", "LISTEN_FDS": "-1"}, "not a count"},
		{map[string]string{"LISTEN_PID": "42", "LISTEN_FDS": "99999"}, "not a count"},
		{map[string]string{"LISTEN_PID": "42", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "a"}, "1 names for 2"},
		{map[string]string{"LISTEN_PID": "42", "LISTEN_FDS": "900"}, "is not open"},
	} {
		s, err := activated(env(tc.env), unset, 42)
		switch {
		case tc.want == "" && (err != nil || s != nil):
			t.Errorf("%v: %v %v, want nothing", tc.env, s, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want %q", tc.env, err, tc.want)
		}
	}
}

func TestParseListen(t *testing.T) {
	for in, want := range map[string]string{
		"8000": "127.0.0.1:8000", "127.0.0.1:80": "127.0.0.1:80", "localhost:80": "127.0.0.1:80",
		"0.0.0.0:8000": "0.0.0.0:8000", "[::]:8000": "[::]:8000", "[::1]:9": "[::1]:9", "[::ffff:10.0.0.1]:9": "10.0.0.1:9",
		":8000": "an empty host means every interface", "example.com:80": "not an IP address", "127.0.0.1": "want PORT",
		"0": "1-65535", "65536": "want PORT", "127.0.0.1:0x50": "decimal", "[fe80::1%eth0]:80": "zones", "08000": "want PORT",
	} {
		got, err := ParseListen(in)
		s := got.String()
		if err != nil {
			s = err.Error()
		}
		if !strings.Contains(s, want) {
			t.Errorf("ParseListen(%q) = %q, want %q", in, s, want)
		}
	}
	f := NewFlag(8000)
	if f.String() != "127.0.0.1:8000" || f.Type() != "addr" {
		t.Errorf("default %s", f)
	}
	if err := f.Set(":1"); err == nil {
		t.Error("Set(:1) accepted")
	}
}

func TestContainer(t *testing.T) {
	none := func(string) string { return "" }
	root := t.TempDir()
	if got := Container(root, none); got != "" {
		t.Errorf("empty root: %q", got)
	}
	if got := Container(root, func(k string) string { return map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1"}[k] }); got != "kubernetes" {
		t.Errorf("kubernetes: %q", got)
	}
	write := func(rel, content string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("proc/self/cgroup", "0::/lxc.payload.web1/system.slice/app.service\n")
	if got := Container(root, none); got != "cgroup web1" {
		t.Errorf("lxc cgroup: %q", got)
	}
	write(".dockerenv", "")
	if got := Container(root, none); got != "docker" {
		t.Errorf("docker: %q", got)
	}
}

func TestFlagListenLogsContainer(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, ".dockerenv"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	f := NewFlag(0) // port 0: the kernel picks a free one on loopback
	f.root, f.getenv = root, func(string) string { return "" }
	l, err := f.Listen(context.Background(), logger)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	if !strings.HasPrefix(l.Addr().String(), "127.0.0.1:") {
		t.Errorf("listening on %s, want loopback (never widened)", l.Addr())
	}
	if !strings.Contains(logs.String(), "running in a container") || !strings.Contains(logs.String(), "container=docker") {
		t.Errorf("no container warning in %q", logs.String())
	}
}

func sockopt(t *testing.T, sc interface{ Control(func(uintptr)) error }, level, opt int) int {
	t.Helper()
	v := -1
	var gerr error
	if err := sc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, opt) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	return v
}

func loadPolicyFile(path string) (*policy.Policy, error) { return policy.Load(path) }
