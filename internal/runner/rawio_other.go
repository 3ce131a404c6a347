//go:build !linux

package runner

import "net"

// newFrontListener is l: raw system calls are the Linux build's (rawio_linux.go).
func newFrontListener(l net.Listener) net.Listener { return l }

// dialUpstream connects to the Unix socket at addr.
func dialUpstream(addr *net.UnixAddr) (net.Conn, error) { return net.DialUnix("unix", nil, addr) }
