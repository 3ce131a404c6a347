package observe

import (
	"errors"
	"testing"
)

func TestRequireLinux(t *testing.T) {
	if err := requireLinux("linux", ""); err != nil {
		t.Errorf("linux: %v", err)
	}
	if err := requireLinux("darwin", "testdata/proc"); err != nil {
		t.Errorf("a fixture tree off Linux: %v", err)
	}
	if err := requireLinux("darwin", "/proc/"); err == nil {
		t.Error("darwin with /proc: no error")
	}
	err := requireLinux("darwin", "")
	if !errors.Is(err, errors.ErrUnsupported) || err.Error() != "observing listening sockets needs Linux (this is darwin): unsupported operation" {
		t.Errorf("darwin: %v", err)
	}
}
