package main

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExitCodes builds the real binary and checks the exit codes main derives from errors.
func TestExitCodes(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bindguard")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tests := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"policy", "check", "../../testdata/seed/service-bindings.yaml"}, 0, "ok (10 services, seed format)"},
		{[]string{"policy", "check", "../../testdata/policy/invalid/port-hex.yaml"}, 1, "services[0].port: 0x1F41 is not a port"},
		{[]string{"policy", "check", "missing.yaml"}, 2, "no such file or directory"},
		{[]string{"no-such-command"}, 2, "unknown command"},
		{[]string{"version"}, 0, "bindguard "},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, err := exec.Command(bin, tt.args...).CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code || !strings.Contains(string(out), tt.out) {
				t.Errorf("exit %d, output %q; want exit %d and %q", code, out, tt.code, tt.out)
			}
		})
	}
}
