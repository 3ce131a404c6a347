// Command bindguard audits which services listen where on a host against a policy that says
// where they may, and generates the configuration that keeps them there.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/bindguard/bindguard/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(cli.ExitCode(err))
}
