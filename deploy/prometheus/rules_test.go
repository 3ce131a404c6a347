// Package prometheus_test runs promtool over the shipped alerting rules.
package prometheus_test

import (
	"os/exec"
	"testing"

	"github.com/bindguard/bindguard/internal/netnstest"
)

func TestAlertRules(t *testing.T) {
	promtool := netnstest.RequireTool(t, "promtool", "prometheus")
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		out, err := exec.Command(promtool, args...).CombinedOutput() // #nosec G204 -- promtool on our own files
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
