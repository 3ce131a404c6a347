//go:build !linux

package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/bindguard/bindguard/policy"
)

var errLinux = fmt.Errorf("run needs Linux (socket passing, execve in place): %w", errors.ErrUnsupported)

// Reserve needs Linux.
func Reserve(int) error { return errLinux }

// Exec needs Linux.
func Exec(context.Context, *policy.Policy, string, string, []string, []string) error {
	return errLinux
}

// GuardConfig is what Guard runs.
type GuardConfig struct {
	Policy         *policy.Policy
	Service        string
	Path           string
	Argv, Env      []string
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Logger         *slog.Logger
	Routes         []Route
}

// Guard needs Linux.
func Guard(context.Context, GuardConfig) (int, error) { return 0, errLinux }
