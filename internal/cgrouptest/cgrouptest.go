//go:build linux

package cgrouptest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Join creates a cgroup named prefix plus a random suffix under mount (the cgroup2 mount),
// moves the test process into it and returns its path.
func Join(t testing.TB, mount, prefix string) string {
	t.Helper()
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var back string
	for line := range strings.Lines(string(own)) {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			back = filepath.Join(mount, strings.TrimSpace(rest))
		}
	}
	if back == "" {
		t.Fatalf("no cgroup2 line in /proc/self/cgroup:\n%s", own)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	dir := filepath.Join(mount, prefix+"-"+hex.EncodeToString(b))
	if err := os.Mkdir(dir, 0o755); err != nil { // #nosec G301 -- a cgroup directory
		t.Fatal(err)
	}
	pid := []byte(strconv.Itoa(os.Getpid()))
	t.Cleanup(func() {
		if err := os.WriteFile(filepath.Join(back, "cgroup.procs"), pid, 0); err != nil {
			t.Errorf("move back to %s: %v", back, err)
		}
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove test cgroup: %v", err)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), pid, 0); err != nil {
		t.Fatal(err)
	}
	return dir
}
