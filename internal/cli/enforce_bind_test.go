package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
)

// enforceBindEnv makes the test binary bind the address it names ("tcp 0.0.0.0:6379") and
// print "ok" or "EPERM" (or the error).
const enforceBindEnv = "BINDGUARD_CLI_ENFORCE_BIND"

func runEnforceBind(spec string) int {
	network, addr, _ := strings.Cut(spec, " ")
	var err error
	if network == "udp" {
		var c net.PacketConn
		if c, err = net.ListenPacket("udp", addr); err == nil {
			_ = c.Close()
		}
	} else {
		// Without Multipath TCP: Go's listeners try an MPTCP socket first and fall back to
		// TCP, so a refused bind is refused (and counted) twice.
		var lc net.ListenConfig
		lc.SetMultipathTCP(false)
		var l net.Listener
		if l, err = lc.Listen(context.Background(), "tcp", addr); err == nil {
			_ = l.Close()
		}
	}
	switch {
	case err == nil:
		fmt.Println("ok")
	case errors.Is(err, syscall.EPERM):
		fmt.Println("EPERM")
	default:
		fmt.Println(err)
	}
	return 0
}
