package monitor

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bindguard/bindguard/internal/report"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// get serves one request through the monitor's handler, with no socket.
func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return w
}

// sample is one parsed metric.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// metrics scrapes /metrics and parses it back with the Prometheus text parser.
func metrics(t *testing.T, h http.Handler) []sample {
	t.Helper()
	w := get(t, h, "/metrics")
	if w.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", w.Code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(w.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	var out []sample
	for name, f := range mf {
		for _, m := range f.GetMetric() {
			s := sample{name: name, labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			// The getters are nil-safe: a gauge has no counter value, and the reverse.
			s.value = m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out = append(out, s)
		}
	}
	return out
}

// value is the value of the metric with the given labels (name, value pairs).
func value(t *testing.T, ss []sample, name string, labels ...string) float64 {
	t.Helper()
next:
	for _, s := range ss {
		if s.name != name {
			continue
		}
		for i := 0; i < len(labels); i += 2 {
			if s.labels[labels[i]] != labels[i+1] {
				continue next
			}
		}
		return s.value
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

func has(ss []sample, name string) bool {
	for _, s := range ss {
		if s.name == name {
			return true
		}
	}
	return false
}

type problem struct {
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder, ctype string) T {
	t.Helper()
	if got := w.Header().Get("Content-Type"); got != ctype {
		t.Errorf("Content-Type %q, want %q", got, ctype)
	}
	var v T
	if err := json.NewDecoder(w.Body).Decode(&v); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return v
}

func TestHandlerBeforeFirstAudit(t *testing.T) {
	r := newRig(t, policyRedisWeb, nil)
	h := r.m.Handler()
	if w := get(t, h, "/health"); w.Code != http.StatusServiceUnavailable || w.Body.String() != "no audit has run yet\nwatch: poll\n" {
		t.Errorf("/health: %d %q", w.Code, w.Body)
	}
	for _, path := range []string{"/api/v1/audit", "/api/v1/zabbix"} {
		w := get(t, h, path)
		p := decode[problem](t, w, "application/problem+json")
		if w.Code != http.StatusServiceUnavailable || p.Status != 503 || p.Detail != "no audit has run yet" {
			t.Errorf("%s: %d %+v", path, w.Code, p)
		}
	}
	mf := metrics(t, h)
	if has(mf, "bindguard_audit_score") {
		t.Error("a score before any audit")
	}
	for name, want := range map[string]float64{"bindguard_audit_up": 0, "bindguard_audit_last_success_timestamp_seconds": 0, "bindguard_audit_errors_total": 0} {
		if got := value(t, mf, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

func TestHandler(t *testing.T) {
	// The events endpoint reads "since" against the wall clock: the fake clock starts now.
	start := time.Now().UTC().Truncate(time.Second)
	r := newRig(t, policyRedisWeb, nil)
	r.clock.t = start
	r.obs.set(tcp("127.0.0.1", 6379, 10, "redis-server"), tcp("0.0.0.0", 9000, 20, "nc"))
	r.audit(t)
	h := r.m.Handler()

	if w := get(t, h, "/health"); w.Code != http.StatusOK || !strings.HasPrefix(w.Body.String(), "ok: last audit 0s ago, score ") {
		t.Errorf("/health: %d %q", w.Code, w.Body)
	}

	rep, _ := r.m.Latest()
	mf := metrics(t, h)
	if got := value(t, mf, "bindguard_audit_score"); got != float64(rep.Score) {
		t.Errorf("score %v, want %d", got, rep.Score)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"bindguard_audit_up", nil, 1},
		{"bindguard_audit_last_success_timestamp_seconds", nil, float64(start.Unix())},
		{"bindguard_audit_findings", []string{"status", "valid"}, 1},
		{"bindguard_audit_findings", []string{"status", "missing"}, 1},
		{"bindguard_audit_findings", []string{"status", "unexpected"}, 1},
		{"bindguard_service_compliant", []string{"service", "redis"}, 1},
		{"bindguard_service_compliant", []string{"service", "web"}, 0},
	} {
		if got := value(t, mf, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	w := get(t, h, "/api/v1/audit")
	doc := decode[struct {
		Schema   string `json:"schema"`
		Findings []any  `json:"findings"`
	}](t, w, "application/json")
	if w.Code != http.StatusOK || doc.Schema != "bindguard.audit.v1" || len(doc.Findings) != 3 {
		t.Errorf("/api/v1/audit: %d %q, %d findings", w.Code, doc.Schema, len(doc.Findings))
	}

	w = get(t, h, "/api/v1/zabbix")
	zd := decode[report.ZabbixDoc](t, w, "application/json")
	if w.Code != http.StatusOK || zd.Schema != "bindguard.zabbix.v1" || zd.Fields["port_bindings_unexpected"] != 1 ||
		zd.Fields["service_binding_correct_redis"] != 1 || strings.Join(zd.Services, ",") != "redis,web" {
		t.Errorf("/api/v1/zabbix: %d %+v", w.Code, zd)
	}

	type eventsDoc struct {
		Schema string  `json:"schema"`
		Since  string  `json:"since"`
		Events []Event `json:"events"`
	}
	w = get(t, h, "/api/v1/events")
	ed := decode[eventsDoc](t, w, "application/json")
	if w.Code != http.StatusOK || ed.Schema != "bindguard.events.v1" || len(ed.Events) != 3 {
		t.Errorf("/api/v1/events: %d %q, %d events", w.Code, ed.Schema, len(ed.Events))
	}
	later := start.Add(time.Second).Format(time.RFC3339)
	w = get(t, h, "/api/v1/events?since="+url.QueryEscape(later))
	ed = decode[eventsDoc](t, w, "application/json")
	if w.Code != http.StatusOK || ed.Since != later || ed.Events == nil || len(ed.Events) != 0 {
		t.Errorf("/api/v1/events?since=%s: %d %+v (want an empty list, not null)", later, w.Code, ed)
	}
	w = get(t, h, "/api/v1/events?since=yesterday")
	if p := decode[problem](t, w, "application/problem+json"); w.Code != http.StatusBadRequest || !strings.Contains(p.Detail, `since "yesterday"`) {
		t.Errorf("/api/v1/events?since=yesterday: %d %+v", w.Code, p)
	}

	// A failed audit: health and up say so, the errors counter counts it, the last report stays.
	r.obs.fail(errors.New("boom"))
	_ = r.m.Audit(t.Context())
	if w := get(t, h, "/health"); w.Code != http.StatusServiceUnavailable || w.Body.String() != "the last audit failed: boom\nwatch: poll\n" {
		t.Errorf("/health after a failure: %d %q", w.Code, w.Body)
	}
	mf = metrics(t, h)
	if up, errs := value(t, mf, "bindguard_audit_up"), value(t, mf, "bindguard_audit_errors_total"); up != 0 || errs != 1 {
		t.Errorf("up %v errors %v after a failure, want 0 and 1", up, errs)
	}
	if w := get(t, h, "/api/v1/audit"); w.Code != http.StatusOK {
		t.Errorf("/api/v1/audit after a failure: %d, want the last report", w.Code)
	}

	// A store that cannot be read is a 500 that tells the client nothing more.
	if err := r.store.Close(); err != nil {
		t.Fatal(err)
	}
	w = get(t, h, "/api/v1/events")
	if p := decode[problem](t, w, "application/problem+json"); w.Code != http.StatusInternalServerError || p.Detail != "reading events failed" {
		t.Errorf("/api/v1/events on a closed store: %d %+v", w.Code, p)
	}
}
