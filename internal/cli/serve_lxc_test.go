//go:build linux

package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bindguard/bindguard/internal/kernel"
	"github.com/bindguard/bindguard/internal/lxctest"
	"github.com/bindguard/bindguard/internal/monitor"
	"github.com/bindguard/bindguard/internal/netnstest"
)

// TestLXCServeBindChangeInOneContainer is issue 13 item 8's last part on real LXC containers:
// three containers, each with a scope of its own in the policy (matched by its LXC name) that
// declares the same service, web on 127.0.0.1:8080, and each running it there (python3's
// http.server under the container's systemd). `serve --netns all` runs; then, in one container
// only, web is restarted on 0.0.0.0:8080. That container's namespace score drops, the other
// two stay at 100, and exactly one drift event names the changed namespace (a "changed" event,
// 127.0.0.1 -> 0.0.0.0, valid -> invalid: the restart within the grace period is not a
// missing/valid pair), none the others, through two more reconciling audits. It runs with
// --watch poll and with --watch kernel, where the kernel's events are judged by (protocol,
// port) across every namespace: the same port in the other containers must not produce
// events there.
func TestLXCServeBindChangeInOneContainer(t *testing.T) {
	lxctest.Require(t)
	netnstest.Require(t)
	cts := []*lxctest.Container{
		lxctest.New(t, "drift1", lxctest.Options{}),
		lxctest.New(t, "drift2", lxctest.Options{}),
		lxctest.New(t, "drift3", lxctest.Options{}),
	}
	loopback := []lxctest.Listen{{Proto: "tcp", Local: netip.MustParseAddrPort("127.0.0.1:8080")}}
	wildcard := []lxctest.Listen{{Proto: "tcp", Local: netip.MustParseAddrPort("0.0.0.0:8080")}}
	pol := "version: 1\nservices:\n" +
		"  - {name: bindguard, port: 9847, address: 127.0.0.1, access: localhost_only, host_check: false}\nscopes:\n"
	for i, c := range cts {
		pol += fmt.Sprintf("  - name: drift%d\n    match: [%s]\n    services:\n"+
			"      - {name: web, port: 8080, address: 127.0.0.1, access: localhost_only, process: python3}\n", i+1, c.Name)
	}
	for _, mode := range []string{"poll", "kernel"} {
		t.Run(mode, func(t *testing.T) {
			// Every container starts (again) with web on loopback.
			for _, c := range cts {
				c.Attach(t, "sh", "-c", "systemctl stop 'bg-web*' 2>/dev/null; systemd-run --unit=bg-web-"+mode+
					" --property=User=www-data --property=WorkingDirectory=/tmp /usr/bin/python3 -m http.server --bind 127.0.0.1 8080 >/dev/null 2>&1")
				if err := c.WaitListening(t.Context(), loopback, 0); err != nil {
					t.Fatal(err)
				}
			}
			serveBindChange(t, mode, pol, cts, wildcard)
		})
	}
}

// lxcNamespaces reads the namespaces of serve's /api/v2/audit by label.
func lxcNamespaces(c *http.Client) (map[string]int, string) {
	code, body, err := httpGet(c, "http://127.0.0.1:9847/api/v2/audit")
	if err != nil || code != 200 {
		return nil, fmt.Sprint(code, err, body)
	}
	var doc struct {
		Schema     string `json:"schema"`
		Namespaces []struct {
			Label string `json:"label"`
			Scope string `json:"scope"`
			Score int    `json:"score"`
		} `json:"namespaces"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.Schema != "bindguard.audit.v2" {
		return nil, fmt.Sprint(err, body)
	}
	scores := map[string]int{}
	for _, n := range doc.Namespaces {
		scores[n.Label] = n.Score
	}
	return scores, body
}

// lxcEvents reads serve's /api/v2/events of the last hour.
func lxcEvents(c *http.Client) ([]monitor.Event, error) {
	code, body, err := httpGet(c, "http://127.0.0.1:9847/api/v2/events?since=1h")
	if err != nil || code != 200 {
		return nil, fmt.Errorf("events: %d %v %s", code, err, body)
	}
	var doc struct {
		Schema string          `json:"schema"`
		Events []monitor.Event `json:"events"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.Schema != "bindguard.events.v2" {
		return nil, fmt.Errorf("events document %q: %v", body, err)
	}
	return doc.Events, nil
}

func serveBindChange(t *testing.T, mode, pol string, cts []*lxctest.Container, wildcard []lxctest.Listen) {
	ns := netnstest.New(t, "bglxc")
	dir := t.TempDir()
	polPath := filepath.Join(dir, "bindguard.yaml")
	if err := os.WriteFile(polPath, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	const interval = 2 * time.Second
	args := []string{"--policy", polPath, "--data", filepath.Join(dir, "data"), "--netns", "all",
		"--interval", interval.String(), "--grace", "30s", "--watch", mode}
	if mode == "kernel" {
		mount, err := kernel.FindCgroup2()
		if err != nil {
			t.Skipf("no cgroup2: %v", err)
		}
		// The UDP programs attach to an empty cgroup of the test's; TCP listeners are seen
		// host-wide by the tracepoint.
		cg := filepath.Join(mount, "bindguard-lxc-serve-"+strings.TrimPrefix(ns.Name, "bglxc"))
		if err := os.Mkdir(cg, 0o755); err != nil { // #nosec G301 -- a cgroup directory
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Remove(cg) })
		args = append(args, "--watch.cgroup", cg)
	}
	d := startDaemon(t, ns, args...)
	// --netns all audits every namespace of the host, whose other work may be heavy: the
	// documents can be slow to come, so wait longer than the other serve tests do.
	c := nsClient(ns)
	c.Timeout = 30 * time.Second
	waitLong(t, "health 200 in "+mode+" mode", func() (bool, string) {
		code, body, err := httpGet(c, "http://127.0.0.1:9847/health")
		return err == nil && code == 200 && strings.Contains(body, "watch: "+mode+"\n"), fmt.Sprint(code, body, err, d.logs)
	})
	// Every container compliant: web valid on loopback, score 100.
	waitLong(t, "each container's namespace at score 100", func() (bool, string) {
		scores, body := lxcNamespaces(c)
		for _, ct := range cts {
			if s, ok := scores[ct.Name]; !ok || s != 100 {
				return false, body
			}
		}
		return true, ""
	})
	// The report is judged before its events are durable (the group commit follows; on a busy
	// host the first audit's events, one per socket of the host, take a while): wait for the
	// events that put each container's web there, or they would count as the change's below.
	var before []monitor.Event
	waitLong(t, "each container's web in the stored events", func() (bool, string) {
		var err error
		if before, err = lxcEvents(c); err != nil {
			return false, err.Error()
		}
		for _, ct := range cts {
			if !slices.ContainsFunc(before, func(e monitor.Event) bool { return e.Netns == ct.Name && e.Port == 8080 && e.Service == "web" }) {
				return false, ct.Name + " has no event for web yet"
			}
		}
		return true, ""
	})
	var last uint64
	for _, e := range before {
		last = max(last, e.ID)
	}

	// In the first container only, web restarts on the wildcard.
	changed := cts[0]
	changed.Attach(t, "sh", "-c", "systemctl stop bg-web-"+mode+" && systemd-run --unit=bg-web-"+mode+"-wild"+
		" --property=User=www-data --property=WorkingDirectory=/tmp /usr/bin/python3 -m http.server --bind 0.0.0.0 8080 >/dev/null 2>&1")
	if err := changed.WaitListening(t.Context(), wildcard, 0); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitLong(t, "the changed container's score to drop", func() (bool, string) {
		scores, body := lxcNamespaces(c)
		return scores[changed.Name] < 100, body
	})
	t.Logf("%s: score dropped %s after the new listener was seen inside", mode, time.Since(start).Round(time.Millisecond))
	// Two more reconciling audits: nothing they find may add events in any container.
	time.Sleep(2*interval + time.Second)

	scores, body := lxcNamespaces(c)
	for i, ct := range cts {
		s, ok := scores[ct.Name]
		switch {
		case !ok:
			t.Errorf("%s: not in the audit's namespaces:\n%s", ct.Name, body)
		case i == 0 && s >= 100:
			t.Errorf("%s: score %d after web moved to 0.0.0.0, want below 100", ct.Name, s)
		case i > 0 && s != 100:
			t.Errorf("%s: score %d, want 100: nothing changed in it", ct.Name, s)
		}
	}
	after, err := lxcEvents(c)
	if err != nil {
		t.Fatal(err)
	}
	ours := map[string]bool{}
	for _, ct := range cts {
		ours[ct.Name] = true
	}
	var mine []monitor.Event
	for _, e := range after {
		if e.ID > last && ours[e.Netns] {
			mine = append(mine, e)
		}
	}
	if len(mine) != 1 {
		t.Fatalf("%d events in the containers' namespaces after the bind changed in %s, want exactly 1: %s", len(mine), changed.Name, eventList(mine))
	}
	e := mine[0]
	wantSource := monitor.SourceAudit
	if mode == "kernel" {
		wantSource = monitor.SourceKernel
	}
	if e.Netns != changed.Name || e.Kind != monitor.KindChanged || e.Port != 8080 || e.Service != "web" ||
		e.OldAddress != "127.0.0.1" || e.Address != "0.0.0.0" || e.OldStatus != "valid" || e.NewStatus != "invalid" || e.Source != wantSource {
		t.Errorf("the event: %s; want %s changed web 127.0.0.1 -> 0.0.0.0, valid -> invalid, from %s", eventList(mine), changed.Name, wantSource)
	}
}

// waitLong polls until cond holds or 90 s pass (a guard against a hang on a loaded host, not a
// timing assertion).
func waitLong(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
	}
	t.Fatalf("%s: not within 90 s; last: %s", what, last)
}

func eventList(evs []monitor.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "\n  #%d %s %s %s %s %s->%s:%d %s %s->%s (%s)", e.ID, e.Source, e.Kind, e.Netns, e.Service, e.OldAddress, e.Address, e.Port, e.Protocol, e.OldStatus, e.NewStatus, e.Reason)
	}
	return b.String()
}
