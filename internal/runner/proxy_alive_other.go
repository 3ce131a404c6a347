//go:build !unix

package runner

import "net"

// alive cannot look without blocking here: a closed connection is found when it is used.
func alive(net.Conn) bool { return true }
