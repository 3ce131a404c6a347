// Command accessbench serves the same small handler twice on loopback, bare and behind
// access.Middleware, for bench/access-middleware.sh to load with wrk. It prints
// "bare ADDR" and "guarded ADDR", then serves until killed.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/bindguard/bindguard/access"
	"github.com/bindguard/bindguard/policy"
)

// The guarded service is localhost_only behind the default trusted proxies (127.0.0.1, ::1):
// every request walks an X-Forwarded-For header and checks Host, the full decision path.
const benchPolicy = `version: 1
services:
  - {name: api, port: 8001, address: 127.0.0.1, access: localhost_only}
`

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "accessbench:", err)
		os.Exit(2)
	}
}

func run() error {
	pol, err := policy.Parse("bench.yaml", []byte(benchPolicy))
	if err != nil {
		return err
	}
	g, err := access.NewGuard(pol, "api")
	if err != nil {
		return err
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"ok":true}`)
	})
	for _, s := range []struct {
		name string
		h    http.Handler
	}{{"bare", handler}, {"guarded", access.Middleware(g, nil, handler)}} {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		fmt.Println(s.name, l.Addr())
		srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(l) }()
	}
	select {}
}
