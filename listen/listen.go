// Package listen opens a service's sockets only where a bindguard policy allows.
//
// Listen and ListenPacket bind the protocol, address and port the policy declares for a
// service, and refuse — before bind(2) — any address its access class forbids, with an *Error
// that says why (errors.Is(err, ErrForbidden)). Addresses are bound exactly: an IPv4 address
// with "tcp4"/"udp4" (Go's "tcp" on 0.0.0.0 would make a dual-stack :: socket), an IPv6 one
// with "tcp6"/"udp6", and "::" with IPV6_V6ONLY set as the policy says.
//
// Sockets handed over by systemd socket activation (Activated) or inherited otherwise
// (FromFiles) are validated against the policy the same way; a mismatch is refused, never
// silently used.
//
// For command-line tools without a policy, Flag is a --listen option that defaults to
// 127.0.0.1, takes a wildcard only when it is written out, and says so in the log when it runs
// in a container instead of widening on its own (the second seed's guideline).
package listen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/bindguard/bindguard/policy"
)

// ErrForbidden is matched (errors.Is) by every *Error: the policy does not allow the socket.
var ErrForbidden = errors.New("forbidden by the policy")

// Error is a socket the policy does not allow: refused before bind(2), or an inherited socket
// that does not match its service.
type Error struct {
	Service  string
	Protocol policy.Protocol
	// Addr is the address and port that was asked for or inherited.
	Addr   netip.AddrPort
	Access policy.Access
	// Reason says why, in words.
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("listen: service %s: %s %s refused: %s", e.Service, e.Protocol, e.Addr, e.Reason)
}

// Is makes errors.Is(err, ErrForbidden) true.
func (e *Error) Is(target error) bool { return target == ErrForbidden }

// Option changes how a socket is opened.
type Option func(*config)

type config struct {
	addr    netip.Addr
	sockets *Sockets
	logger  *slog.Logger
}

// WithAddress binds addr when the policy leaves the service's address to its access class. It
// is refused when the class forbids addr, or when the policy declares another address.
func WithAddress(addr netip.Addr) Option { return func(c *config) { c.addr = addr } }

// WithSockets takes the service's socket from s (socket activation or inheritance) when s
// holds one for it, validating it against the policy.
func WithSockets(s *Sockets) Option { return func(c *config) { c.sockets = s } }

// WithLogger logs, at info level, which socket was opened or taken over (nil discards).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Plan is what Listen would bind for a service.
type Plan struct {
	Service policy.Service
	Addr    netip.AddrPort
	// Network is "tcp4", "tcp6", "udp4" or "udp6".
	Network string
	// V6Only is the IPV6_V6ONLY value set on an IPv6 socket.
	V6Only bool
}

// Resolve returns what Listen would bind for the named service, or why it may not. With the
// address left to the class and no WithAddress, the address is 127.0.0.1: a wildcard is never a
// default.
func Resolve(pol *policy.Policy, service string, opts ...Option) (Plan, error) {
	c := options(opts)
	if pol == nil {
		return Plan{}, errors.New("listen: no policy")
	}
	svc, ok := pol.Lookup(service)
	if !ok {
		return Plan{}, fmt.Errorf("listen: policy %s declares no service %q", pol.Source, service)
	}
	addr := svc.Address
	switch {
	case c.addr.IsValid() && addr.IsValid() && c.addr.Unmap() != addr:
		return Plan{}, refuse(svc, netip.AddrPortFrom(c.addr, svc.Port),
			fmt.Sprintf("the policy declares address %s for it", addr))
	case c.addr.IsValid():
		addr = c.addr
	case !addr.IsValid():
		addr = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	if addr.Zone() != "" {
		return Plan{}, refuse(svc, netip.AddrPortFrom(addr, svc.Port), "an address with a zone cannot be declared in a policy")
	}
	addr = addr.Unmap()
	ap := netip.AddrPortFrom(addr, svc.Port)
	if !svc.PermitsBind(addr) {
		return Plan{}, refuse(svc, ap, svc.BindRefusal(addr))
	}
	p := Plan{Service: svc, Addr: ap}
	net := string(svc.Protocol)
	if addr.Is4() {
		p.Network = net + "4"
	} else {
		p.Network = net + "6"
		// "::" is dual-stack unless the policy says v6only; other addresses are IPv6 only.
		p.V6Only = addr != netip.IPv6Unspecified() || svc.V6Only
	}
	return p, nil
}

func refuse(svc policy.Service, ap netip.AddrPort, reason string) *Error {
	return &Error{Service: svc.Name, Protocol: svc.Protocol, Addr: ap, Access: svc.Access, Reason: reason}
}

func options(opts []Option) config {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Listen opens the TCP listener of the named service of pol: an inherited one when
// WithSockets holds it (validated), else a new socket bound where the policy says. It refuses
// a UDP service, and any address the service's class forbids, before bind(2).
func Listen(ctx context.Context, pol *policy.Policy, service string, opts ...Option) (net.Listener, error) {
	return open(ctx, pol, service, policy.TCP, "ListenPacket", opts, net.FileListener,
		func(lc *net.ListenConfig, network, addr string) (net.Listener, error) {
			return lc.Listen(ctx, network, addr)
		},
		net.Listener.Addr)
}

// ListenPacket is Listen for a UDP service.
func ListenPacket(ctx context.Context, pol *policy.Policy, service string, opts ...Option) (net.PacketConn, error) {
	return open(ctx, pol, service, policy.UDP, "Listen", opts, net.FilePacketConn,
		func(lc *net.ListenConfig, network, addr string) (net.PacketConn, error) {
			return lc.ListenPacket(ctx, network, addr)
		},
		net.PacketConn.LocalAddr)
}

// open is Listen and ListenPacket: fromFile takes over an inherited socket, bind makes a new one.
func open[T any](ctx context.Context, pol *policy.Policy, service string, proto policy.Protocol, other string, opts []Option,
	fromFile func(*os.File) (T, error), bind func(*net.ListenConfig, string, string) (T, error), addrOf func(T) net.Addr) (T, error) {
	var zero T
	p, err := Resolve(pol, service, opts...)
	if err != nil {
		return zero, err
	}
	if p.Service.Protocol != proto {
		return zero, fmt.Errorf("listen: service %s is %s: use %s", service, p.Service.Protocol, other)
	}
	c := options(opts)
	if c.sockets != nil {
		f, ok, err := c.sockets.take(p)
		if err != nil {
			return zero, err
		}
		if ok {
			defer func() { _ = f.Close() }()
			conn, err := fromFile(f)
			if err != nil {
				return zero, fmt.Errorf("listen: service %s: inherited socket: %w", service, err)
			}
			c.logger.Info("listening on an inherited socket", "service", service, "addr", addrOf(conn).String())
			return conn, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	conn, err := bind(&net.ListenConfig{Control: p.control}, p.Network, p.Addr.String())
	if err != nil {
		return zero, fmt.Errorf("listen: service %s: %w", service, err)
	}
	c.logger.Info("listening", "service", service, "network", p.Network, "addr", addrOf(conn).String())
	return conn, nil
}

// control sets IPV6_V6ONLY on IPv6 sockets before bind(2), overriding Go's default.
func (p Plan) control(network, _ string, rc syscall.RawConn) error {
	if p.Addr.Addr().Is4() {
		return nil
	}
	v := 0
	if p.V6Only {
		v = 1
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("set IPV6_V6ONLY=%s on %s: %w", strconv.Itoa(v), network, serr)
	}
	return nil
}
