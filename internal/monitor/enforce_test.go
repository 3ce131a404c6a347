package monitor

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bindguard/bindguard/internal/kernel"
	"github.com/bindguard/bindguard/internal/observe"
	"github.com/bindguard/bindguard/policy"
)

const enforceUnitPolicy = `version: 1
services:
  - {name: redis, port: 6379, address: 127.0.0.1, access: localhost_only}
enforce:
  guard: [tcp/7000-7099]
`

// enforceMonitor is a monitor with enforcement whose apply is scripted (one cgroup, id 42,
// scope host, the directory enforcedDir(m)) and whose /proc is procRoot: no kernel, no root.
func enforceMonitor(t testing.TB, procRoot string, now *time.Time) (*Monitor, *Store) {
	t.Helper()
	dir := t.TempDir()
	cg := filepath.Join(dir, "enforced")
	if err := os.Mkdir(cg, 0o750); err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(dir, "bindguard.yaml")
	if err := os.WriteFile(pol, []byte(enforceUnitPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(filepath.Join(dir, "data"), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cfg := Config{PolicyPath: pol, Interval: time.Second, Now: func() time.Time { return *now },
		Observer: ObserverFunc(func(context.Context) (*observe.Snapshot, error) { return nil, context.Canceled }),
		Enforce: &EnforceConfig{
			Apply: func(*policy.Policy) ([]EnforceTarget, error) {
				return []EnforceTarget{{Cgroup: cg, ID: 42, Scope: "host", Mode: "deny"}}, nil
			},
			Options:  kernel.EnforceOptions{PinRoot: filepath.Join(dir, "pins")},
			ProcRoot: procRoot,
			CgroupPath: func(id uint64) (string, error) {
				switch id {
				case 77:
					return "/system.slice/redis-server.service", nil
				case 78:
					return "/user.slice/evil\x1b]0;x\a.scope", nil
				}
				return "", errors.New("no such cgroup")
			},
		}}
	m, err := New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := m.ApplyEnforcement(); n != 1 || err != nil {
		t.Fatalf("apply: %d %v", n, err)
	}
	return m, st
}

// enforcedDir is the directory of enforceMonitor's one cgroup.
func enforcedDir(m *Monitor) string { return m.enf.targets[0].Cgroup }

func redisDenial(pid uint32, cg uint64) kernel.Denial {
	return kernel.Denial{Time: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC), PID: pid, Comm: "redis-server", CgroupID: cg, Protocol: policy.TCP,
		Family: "ipv4", Addr: netip.IPv4Unspecified(), Port: 6379, Rule: 1, RuleName: "redis tcp/6379", Errno: 1}
}

func deniedEvents(t *testing.T, st *Store) []Event {
	t.Helper()
	evs, err := st.Since(time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []Event
	for _, e := range evs {
		if e.Kind == KindDenied {
			out = append(out, e)
		}
	}
	return out
}

// TestDenialGoneProcess: a denial whose process has exited names it from the record (comm,
// pid) and its unit from the record's cgroup, and says it is gone; one whose process runs is
// resolved through /proc (its cgroup file: unit and container).
func TestDenialGoneProcess(t *testing.T) {
	procRoot := t.TempDir()
	if err := os.MkdirAll(filepath.Join(procRoot, "4242"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"comm": "redis-server\n", "cgroup": "0::/lxc.payload.web1/system.slice/redis.service\n"} {
		if err := os.WriteFile(filepath.Join(procRoot, "4242", name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 12, 2, 10, 0, 1, 0, time.UTC)
	m, st := enforceMonitor(t, procRoot, &now)
	m.recordDenials([]denialIn{{d: redisDenial(999999, 77), tgt: 42, scope: "host"}})
	m.recordDenials([]denialIn{{d: redisDenial(4242, 0), tgt: 42, scope: "host"}})
	evs := deniedEvents(t, st)
	if len(evs) != 2 {
		t.Fatalf("%d denied events, want 2: %+v", len(evs), evs)
	}
	gone, alive := evs[0], evs[1]
	if gone.Process == nil || gone.Process.PID != 999999 || gone.Process.Name != "redis-server" || gone.Process.Unit != "redis-server.service" ||
		gone.Denial == nil || !gone.Denial.ProcessGone || gone.Denial.Cgroup != "/system.slice/redis-server.service" || gone.Denial.Enforced != enforcedDir(m) ||
		gone.Service != "redis" || gone.Denial.Rule != "redis tcp/6379" || gone.Denial.Error != "EPERM" || gone.Denial.Mode != "deny" || gone.Severity != "high" ||
		!strings.Contains(gone.Reason, "had exited") || !strings.Contains(gone.Reason, "0.0.0.0:6379") || gone.Source != SourceEnforce {
		t.Errorf("gone: %+v %+v", gone, gone.Denial)
	}
	// A cgroup name chosen by the binder is made inert.
	m.recordDenials([]denialIn{{d: redisDenial(999998, 78), tgt: 42, scope: "host"}})
	if evs := deniedEvents(t, st); len(evs) != 3 || strings.ContainsAny(evs[2].Denial.Cgroup+evs[2].Process.Unit+evs[2].Reason, "\x1b\a") {
		t.Errorf("a cgroup name with escapes: %+v", evs[len(evs)-1].Denial)
	}
	if alive.Process.PID != 4242 || alive.Process.Unit != "redis.service" || alive.Denial.Container != "web1" || alive.Denial.ProcessGone || strings.Contains(alive.Reason, "exited") {
		t.Errorf("alive: %+v %+v", alive.Process, alive.Denial)
	}
}

// TestDenialBudget: identical denials in a batch are one event with their count; beyond the
// event budget the rest of a batch is folded into one event per rule; the metrics count every
// record, and report the cgroup asked for and not attached (nothing is pinned here).
func TestDenialBudget(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 1, 0, time.UTC)
	m, st := enforceMonitor(t, t.TempDir(), &now)
	var batch []denialIn
	for range 5 {
		batch = append(batch, denialIn{d: redisDenial(10, 77), tgt: 42, scope: "host"})
	}
	m.recordDenials(batch)
	evs := deniedEvents(t, st)
	if len(evs) != 1 || evs[0].Denial.Count != 5 || !strings.HasSuffix(evs[0].Reason, "(5 times)") {
		t.Fatalf("5 identical denials: %+v", evs)
	}
	// 300 distinct: the budget left (199) are events, the rest one folded event per rule.
	batch = nil
	for i := range 300 {
		d := redisDenial(uint32(100+i), 77) // #nosec G115 -- small
		if i%2 == 1 {
			d.Port, d.RuleName, d.Rule = 7050, "guard tcp/7000-7099", 2
		}
		batch = append(batch, denialIn{d: d, tgt: 42, scope: "host"})
	}
	m.recordDenials(batch)
	evs = deniedEvents(t, st)[1:]
	var plain, folded int
	total := 0
	for _, e := range evs {
		if e.Denial.Folded {
			folded++
			total += e.Denial.Count
			if !strings.Contains(e.Reason, "folded") {
				t.Errorf("folded event: %s", e.Reason)
			}
		} else {
			plain++
			total++
		}
	}
	if plain != int(enforceEventBurst)-1 || folded != 2 || total != 300 {
		t.Errorf("300 distinct denials: %d events, %d folded, %d denials in all; want %d, 2, 300", plain, folded, total, int(enforceEventBurst)-1)
	}
	// The budget refills at enforceEventRate a second.
	now = now.Add(time.Second)
	batch = nil
	for i := range 50 {
		batch = append(batch, denialIn{d: redisDenial(uint32(1000+i), 77), tgt: 42, scope: "host"}) // #nosec G115 -- small
	}
	m.recordDenials(batch)
	evs = deniedEvents(t, st)[1+plain+folded:]
	if len(evs) != int(enforceEventRate)+1 || !evs[len(evs)-1].Denial.Folded || evs[len(evs)-1].Denial.Count != 50-int(enforceEventRate) {
		t.Errorf("after a second: %d events, want %d and one folded", len(evs), int(enforceEventRate)+1)
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		"bindguard_enforce_enabled 1",
		`bindguard_enforce_cgroups{scope="host"} 1`,
		`bindguard_enforce_attached{scope="host"} 0`,
		"bindguard_enforce_last_apply_successful 1",
		`bindguard_enforce_denials_total{mode="deny",scope="host",service="redis"} 205`,
		`bindguard_enforce_denials_total{mode="deny",scope="host",service=""} 150`,
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	rec = httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/health", nil))
	if h := rec.Body.String(); !strings.Contains(h, "enforce: 0 of 1 cgroups attached; not attached: "+enforcedDir(m)+" (scope host): kernel: cgroup 42: not enforced by bindguard\n") {
		t.Errorf("health:\n%s", h)
	}
	states, ok, _ := m.Enforcement()
	if len(states) != 1 || states[0].Attached || !strings.Contains(states[0].Why, "not enforced") || !ok {
		t.Errorf("enforcement state %+v %v", states, ok)
	}

	// The cgroup is removed (its container stopped): it is no longer asked for, so nothing
	// reads as detached, and /health says it went.
	if err := os.Remove(enforcedDir(m)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(enforceHealthTTL) // health is read again at most every enforceHealthTTL
	rec = httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ = io.ReadAll(rec.Body)
	if strings.Contains(string(body), "bindguard_enforce_cgroups{") || strings.Contains(string(body), "bindguard_enforce_attached{") {
		t.Errorf("a removed cgroup is still counted:\n%s", body)
	}
	rec = httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/health", nil))
	if h := rec.Body.String(); !strings.Contains(h, "enforce: 0 of 0 cgroups attached (1 removed since they were applied)\n") {
		t.Errorf("health with the cgroup removed:\n%s", h)
	}
	if states, _, _ := m.Enforcement(); len(states) != 1 || !states[0].Gone {
		t.Errorf("enforcement state with the cgroup removed: %+v", states)
	}
}

// BenchmarkRecordDenials: the drain path of one batch of 64 distinct denials (coalescing, the
// event budget, resolving each process through /proc, one store transaction); the budget is
// refilled every batch so that every denial is an event of its own.
func BenchmarkRecordDenials(b *testing.B) {
	now := time.Date(2026, 12, 2, 10, 0, 1, 0, time.UTC)
	m, _ := enforceMonitor(b, b.TempDir(), &now)
	batch := make([]denialIn, 64)
	for i := range batch {
		batch[i] = denialIn{d: redisDenial(uint32(100+i), 77), tgt: 42, scope: "host"} // #nosec G115 -- small
	}
	b.ResetTimer()
	for range b.N {
		now = now.Add(time.Hour)
		m.recordDenials(batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/denial")
}
