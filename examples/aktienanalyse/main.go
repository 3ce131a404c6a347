// Command aktienanalyse runs the seed's five services in Go, each bound through bindguard's
// listen package and guarded by its access middleware, from the seed's own policy:
//
//	frontend    HTTPS 127.0.0.1:8443 (proxy_only: nginx in front); a page, /health, and
//	            /api/proxy/* forwarded to core
//	core        127.0.0.1:8001 (localhost_only): /health, /api/portfolio (reached through
//	            the proxy), /internal/metrics (local clients only)
//	broker      127.0.0.1:8002: /health, /api/orders
//	event-bus   127.0.0.1:8003: /health, POST and GET /events
//	monitoring  127.0.0.1:8004: /health, /status (the health of the other four)
//
// Usage:
//
//	go run ./examples/aktienanalyse [--policy FILE] [--data DIR] [SERVICE...]
//
// With no SERVICE, all five start. The frontend's self-signed certificate is generated on
// first run under --data. The process says "ready" on standard output when every listener is
// open and stops cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "aktienanalyse:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("aktienanalyse", flag.ContinueOnError)
	policyPath := fs.String("policy", "examples/aktienanalyse/service-bindings.yaml", "the seed's policy (service-bindings.yaml)")
	dataDir := fs.String("data", defaultDataDir(), "where the frontend's certificate and key are kept")
	verbose := fs.Bool("v", false, "log every access decision (debug level)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: aktienanalyse [--policy FILE] [--data DIR] [-v] [SERVICE...]\nServices: %v (default: all)\n", serviceNames())
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	st, err := newStack(*policyPath, *dataDir, logger)
	if err != nil {
		return err
	}
	return st.run(ctx, fs.Args(), func() { fmt.Println("ready") })
}

func defaultDataDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return d + "/aktienanalyse"
	}
	return "aktienanalyse-data"
}
