// Command probetarget is the target of bench/probe-vs-nmap.sh: it listens on 127.0.0.1 ports
// FIRST..FIRST+N-1, accepts every connection and closes it at once (so repeated scans never
// fill an accept queue), prints "ready", and exits when its standard input closes. Run it
// inside the bench's own network namespace.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: probetarget FIRST N")
		os.Exit(2)
	}
	first, err1 := strconv.Atoi(os.Args[1])
	n, err2 := strconv.Atoi(os.Args[2])
	if err1 != nil || err2 != nil || first < 1 || n < 0 || first+n > 65536 {
		fmt.Fprintln(os.Stderr, "probetarget: FIRST and N must make ports 1-65535")
		os.Exit(2)
	}
	for p := first; p < first+n; p++ {
		l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "probetarget:", err)
			os.Exit(1)
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				_ = c.Close()
			}
		}()
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
}
