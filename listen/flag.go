package listen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bindguard/bindguard/internal/cgroup"
)

// Flag is a --listen option for command-line tools (flag.Value and pflag.Value): an address
// and port, 127.0.0.1 unless the user writes another. A wildcard (0.0.0.0, ::) is taken only
// when written out; ":8000", which Go would read as every interface, is refused with a hint.
type Flag struct {
	addr netip.AddrPort
	// root and getenv are where container detection looks ("/" and os.Getenv; tests change them).
	root   string
	getenv func(string) string
}

// NewFlag returns a Flag defaulting to 127.0.0.1:port.
func NewFlag(port uint16) *Flag {
	return &Flag{addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port)}
}

// String is the current value.
func (f *Flag) String() string {
	if f == nil {
		return ""
	}
	return f.addr.String()
}

// Type names the value for pflag's help.
func (f *Flag) Type() string { return "addr" }

// AddrPort is the chosen address and port.
func (f *Flag) AddrPort() netip.AddrPort { return f.addr }

// Set parses "PORT", "IP:PORT", "[IPv6]:PORT" or "localhost:PORT".
func (f *Flag) Set(s string) error {
	ap, err := ParseListen(s)
	if err != nil {
		return err
	}
	f.addr = ap
	return nil
}

// ParseListen parses a --listen value: "PORT" (on 127.0.0.1), "IP:PORT", "[IPv6]:PORT" or
// "localhost:PORT". Host names other than localhost, zones and an empty host are refused.
func ParseListen(s string) (netip.AddrPort, error) {
	if !strings.Contains(s, ":") {
		p, err := parsePort(s)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("%q: want PORT, IP:PORT or [IPv6]:PORT: %w", s, err)
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), p), nil
	}
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: want PORT, IP:PORT or [IPv6]:PORT", s)
	}
	port, err := parsePort(portStr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: %w", s, err)
	}
	switch {
	case host == "":
		return netip.AddrPort{}, fmt.Errorf("%q: an empty host means every interface; write 127.0.0.1:%d for this host only, or 0.0.0.0:%d to choose every interface", s, port, port)
	case strings.EqualFold(host, "localhost"):
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port), nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: %s is not an IP address (names other than localhost are not resolved)", s, host)
	}
	if a.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("%q: zones are not supported", s)
	}
	return netip.AddrPortFrom(a.Unmap(), port), nil
}

func parsePort(s string) (uint16, error) {
	if s == "" || len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("port %q: want a decimal number 1-65535", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q: want a decimal number 1-65535", s)
	}
	return uint16(n), nil
}

// Listen opens a TCP listener on the flag's address, IPv4 with "tcp4" and "::" IPv6-only,
// and logs what it did: a wildcard as the user's explicit choice, and, inside a container, that
// a loopback address is reachable only from inside it (never widening on its own).
func (f *Flag) Listen(ctx context.Context, logger *slog.Logger) (net.Listener, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := f.addr.Addr()
	network := "tcp4"
	if a.Is6() {
		network = "tcp6" // Go sets IPV6_V6ONLY on tcp6 sockets
	}
	root, getenv := f.root, f.getenv
	if root == "" {
		root, getenv = "/", os.Getenv
	}
	if where := Container(root, getenv); where != "" && a.IsLoopback() {
		logger.Warn("running in a container: the loopback address is reachable only from inside it; pass --listen 0.0.0.0:PORT to publish the port, knowing it then listens on every interface of the container",
			"addr", f.addr.String(), "container", where)
	}
	if a.IsUnspecified() {
		logger.Warn("listening on every interface, as chosen with --listen", "addr", f.addr.String())
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, network, f.addr.String())
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	logger.Info("listening", "addr", l.Addr().String())
	return l, nil
}

// Container says whether the process runs in a container, and how it can tell: "docker"
// (/.dockerenv), "podman" (/run/.containerenv), "kubernetes" (KUBERNETES_SERVICE_HOST), or
// "cgroup CONTAINER" (a container id or LXC name in /proc/self/cgroup). root is the filesystem
// root ("/" outside tests). It returns "" outside a container.
func Container(root string, getenv func(string) string) string {
	exists := func(p string) bool {
		_, err := os.Stat(filepath.Join(root, p))
		return err == nil
	}
	switch {
	case exists(".dockerenv"):
		return "docker"
	case exists("run/.containerenv"):
		return "podman"
	case getenv("KUBERNETES_SERVICE_HOST") != "":
		return "kubernetes"
	}
	b, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup")) // #nosec G304 -- a fixed path under root
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if _, c := cgroup.Parse(b); c != "" {
		return "cgroup " + c
	}
	return ""
}
