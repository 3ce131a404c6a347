// Package prometheus_test runs promtool over the shipped alerting rules.
package prometheus_test

import (
	"os"
	"os/exec"
	"testing"
)

func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Geteuid() == 0 {
			t.Fatal("promtool not found; make deps installs it (Debian package prometheus)")
		}
		t.Skip("promtool not found (Debian package prometheus)")
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		out, err := exec.Command(promtool, args...).CombinedOutput() // #nosec G204 -- promtool on our own files
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
