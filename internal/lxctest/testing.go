package lxctest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// Require skips the test when it does not run as root, saying so. As root (as in .ci/run,
// where make deps installs lxc, lxc-templates, debootstrap and rsync) a missing tool fails the test,
// naming its package, and so does any failure of what follows (Base, New): CI never passes by
// skipping.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("LXC containers take minutes to build the first time: skipped in -short")
	}
	if why := Missing(); why != "" {
		if os.Geteuid() == 0 {
			t.Fatal(why)
		}
		t.Skip(why)
	}
}

// Base makes sure the base container exists, building it the first time on this machine (minutes;
// it logs how long), and returns its name.
func Base(t testing.TB) string {
	t.Helper()
	Require(t)
	start := time.Now()
	built, err := EnsureBase(context.Background(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if built {
		t.Logf("lxctest: base %s built in %s", BaseName, time.Since(start).Round(time.Second))
	}
	return BaseName
}

// New makes a started container from the base (building the base first if needed), named
// NamePrefix+name+"-"+random; it is stopped and destroyed at cleanup, whether the test passes
// or fails.
func New(t testing.TB, name string, opts Options) *Container {
	t.Helper()
	Base(t)
	start := time.Now()
	c, err := Create(context.Background(), name, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Destroy(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	t.Logf("lxctest: %s (%s) cloned and booted in %s", c.Name, c.Address, time.Since(start).Round(time.Millisecond))
	return c
}

// Attach runs a command inside the container and returns its standard output; a failure fails
// the test with the command's stderr.
func (c *Container) Attach(t testing.TB, args ...string) string {
	t.Helper()
	out, err := c.Run(context.Background(), nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// WriteFile writes a file inside the container (through sh and cat, as root there).
func (c *Container) WriteFile(t testing.TB, path, content string) {
	t.Helper()
	if _, err := c.Run(context.Background(), strings.NewReader(content), "sh", "-c", `cat > "$1"`, "sh", path); err != nil {
		t.Fatal(err)
	}
}

// StartLayout runs a layout in the container (Start), failing the test if it does not come up.
func (c *Container) StartLayout(t testing.TB, l Layout) {
	t.Helper()
	if err := c.Start(context.Background(), l, 0); err != nil {
		t.Fatal(err)
	}
}
