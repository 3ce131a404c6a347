//go:build linux

package cli

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bindguard/bindguard/internal/kernel"
	"github.com/bindguard/bindguard/internal/monitor"
	"github.com/bindguard/bindguard/internal/netnstest"
)

// TestServeKernelMode (root) runs the real daemon with --watch kernel in a namespace of its own,
// its cgroup programs attached to an (empty) cgroup the test creates: /health and the metrics
// say kernel, and a listener opened in the namespace is a v2 event from the kernel, with its
// latency fields, long before the next reconciling audit (the default 60 s).
func TestServeKernelMode(t *testing.T) {
	ns := netnstest.New(t, "bgkern")
	mount, err := kernel.FindCgroup2()
	if err != nil {
		t.Skipf("no cgroup2: %v", err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	cg := filepath.Join(mount, "bindguard-cli-test-"+hex.EncodeToString(b))
	if err := os.Mkdir(cg, 0o755); err != nil { // #nosec G301 -- a cgroup directory
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(cg) })
	dir := t.TempDir()
	pol := filepath.Join(dir, "bindguard.yaml")
	if err := os.WriteFile(pol, []byte(servePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, ns, "--policy", pol, "--data", filepath.Join(dir, "data"), "--watch", "kernel", "--watch.cgroup", cg)
	c := nsClient(ns)
	waitFor(t, "health 200 in kernel mode", func() (bool, string) {
		code, body, err := httpGet(c, "http://127.0.0.1:9847/health")
		return err == nil && code == 200 && strings.Contains(body, "watch: kernel\n"), fmt.Sprint(code, body, err, d.logs)
	})
	_, metrics, _ := httpGet(c, "http://127.0.0.1:9847/metrics")
	if !strings.Contains(metrics, `bindguard_watch_mode{mode="kernel"} 1`) {
		t.Errorf("metrics lack the kernel mode")
	}
	ns.Listen(t, netnstest.MustSpec(t, "tcp4:0.0.0.0:7312"))
	waitFor(t, "the listener's kernel event", func() (bool, string) {
		code, body, err := httpGet(c, "http://127.0.0.1:9847/api/v2/events?since=1h")
		if err != nil || code != 200 {
			return false, fmt.Sprint(code, err)
		}
		var doc struct {
			Schema string          `json:"schema"`
			Events []monitor.Event `json:"events"`
		}
		if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.Schema != "bindguard.events.v2" {
			return false, body
		}
		for _, e := range doc.Events {
			if e.Port == 7312 && e.Kind == monitor.KindAppeared && e.Source == monitor.SourceKernel && e.Netns == ns.Name &&
				!e.JudgedAt.IsZero() && !e.StoredAt.IsZero() && e.NewStatus == "unexpected" {
				return true, ""
			}
		}
		return false, body
	})
}
