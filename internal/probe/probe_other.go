//go:build !linux

package probe

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// newDialer fails off Linux: the probe's sockets and namespaces are Linux's.
func newDialer(string) (dialer, error) {
	return nil, errors.Join(errors.New("probe: needs Linux"), errors.ErrUnsupported)
}

func systemResolve(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}
