// Command bindguard audits which services listen where on a host against a policy that says
// where they may, and generates the configuration that keeps them there.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/bindguard/bindguard/internal/cli"
)

func main() {
	// An audit holds every socket of the host at once; a soft limit makes the collector work
	// harder before the heap grows past it (GOMEMLIMIT overrides it).
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(40 << 20)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(cli.ExitCode(err))
}
