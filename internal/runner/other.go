//go:build !linux

package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

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
	Cgroup         *os.File
}

// Guard needs Linux.
func Guard(context.Context, GuardConfig) (int, error) { return 0, errLinux }

// CgroupPrefix starts the name of every cgroup run makes.
const CgroupPrefix = "bindguard-run."

// Cgroup is a cgroup2 directory run made for a service (Linux only).
type Cgroup struct {
	Dir, Parent string
	Unmanaged   bool
}

// NewCgroup needs Linux.
func NewCgroup(string, string) (*Cgroup, error) { return nil, errLinux }

// Join needs Linux.
func (*Cgroup) Join() error { return errLinux }

// Open needs Linux.
func (*Cgroup) Open() (*os.File, error) { return nil, errLinux }

// Populated needs Linux.
func (*Cgroup) Populated() (bool, error) { return false, errLinux }

// Remove needs Linux.
func (*Cgroup) Remove() error { return errLinux }

// Leftovers needs Linux.
func Leftovers(string) ([]string, error) { return nil, errLinux }

// RemoveLeftover needs Linux.
func RemoveLeftover(string) error { return errLinux }

// Leave needs Linux.
func (*Cgroup) Leave() error { return errLinux }
