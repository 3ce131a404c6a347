package probe_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/bindguard/bindguard/internal/probe"
	"github.com/bindguard/bindguard/policy"
)

// series is one sample of a parsed answer.
type series struct {
	labels map[string]string
	value  float64
}

// families parses a Prometheus text answer into its samples by metric name.
func families(t *testing.T, body string) map[string][]series {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	out := map[string][]series{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			ls := map[string]string{}
			for _, lp := range m.GetLabel() {
				ls[lp.GetName()] = lp.GetValue()
			}
			out[name] = append(out[name], series{ls, m.GetGauge().GetValue()})
		}
	}
	return out
}

// sample returns the value of the series of name whose labels include want, and whether
// there is one.
func sample(fams map[string][]series, name string, want map[string]string) (float64, bool) {
next:
	for _, s := range fams[name] {
		for k, v := range want {
			if s.labels[k] != v {
				continue next
			}
		}
		return s.value, true
	}
	return 0, false
}

func TestHandlerNetns(t *testing.T) {
	l := newLab(t)
	var logs bytes.Buffer
	h, err := probe.NewHandler(probe.HandlerOptions{
		Policy:  func() *policy.Policy { return l.pol },
		Targets: []probe.Target{{Host: "10.77.3.1"}, {Host: "fd77:3::1", Scope: "host"}},
		Netns:   l.outside.Path, Timeout: 400 * time.Millisecond, Rate: 1000,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(query string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + "/probe?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}

	for _, q := range []string{"target=10.77.3.2", "target=10.77.1.1", "target=10.77.3.1&scope=web", "target=10.0.0.0/8"} {
		if code, _ := get(q); code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", q, code)
		}
	}
	for _, q := range []string{"", "target=10.77.3.1&target=fd77:3::1", "scope=host"} {
		if code, _ := get(q); code != http.StatusBadRequest {
			t.Errorf("%q: %d, want 400", q, code)
		}
	}
	if strings.Contains(logs.String(), "msg=probe ") {
		t.Fatalf("refused requests sent probes:\n%s", logs.String())
	}

	code, body := get("target=10.77.3.1")
	if code != http.StatusOK {
		t.Fatalf("%d: %s", code, body)
	}
	fams := families(t, body)
	base := map[string]string{"target": "10.77.3.1", "scope": "host"}
	if v, ok := sample(fams, "bindguard_probe_success", base); !ok || v != 1 {
		t.Errorf("success %v %v", v, ok)
	}
	for _, tt := range []struct {
		service, proto, port, state string
		violation, contradiction    float64
	}{
		{"zabbix", "tcp", "10050", "open", 1, 1},
		{"web", "tcp", "8080", "open", 0, 0},
		{"db", "tcp", "5432", "closed", 0, 0},
		{"echo", "udp", "5353", "open", 1, 1},
	} {
		lv := map[string]string{"target": "10.77.3.1", "scope": "host", "service": tt.service, "protocol": tt.proto, "address": "10.77.3.1", "port": tt.port}
		withState := map[string]string{"state": tt.state}
		for k, v := range lv {
			withState[k] = v
		}
		if v, ok := sample(fams, "bindguard_probe_port_state", withState); !ok || v != 1 {
			t.Errorf("%s: no state %s series", tt.service, tt.state)
		}
		if v, ok := sample(fams, "bindguard_probe_port_violation", lv); !ok || v != tt.violation {
			t.Errorf("%s: violation %v (%v), want %v", tt.service, v, ok, tt.violation)
		}
		if v, ok := sample(fams, "bindguard_probe_port_contradiction", lv); !ok || v != tt.contradiction {
			t.Errorf("%s: contradiction %v (%v), want %v", tt.service, v, ok, tt.contradiction)
		}
	}
	if v, _ := sample(fams, "bindguard_probe_violations", base); v != 3 { // zabbix, agent, echo
		t.Errorf("violations %v, want 3", v)
	}

	// The IPv6 target, declared with its scope spelt out, and asked for by another spelling.
	code, body = get("target=FD77:3:0::1")
	if code != http.StatusOK {
		t.Fatalf("%d: %s", code, body)
	}
	if v, ok := sample(families(t, body), "bindguard_probe_port_state", map[string]string{"service": "web6", "state": "open", "address": "fd77:3::1"}); !ok || v != 1 {
		t.Errorf("web6 over IPv6 not open:\n%s", body)
	}
}

func TestHandlerRefusesBadTargets(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte(reachPolicy))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"10.0.0.0/8", "", "10.0.0.1-9"} {
		if _, err := probe.NewHandler(probe.HandlerOptions{Policy: func() *policy.Policy { return p }, Targets: []probe.Target{{Host: bad}}}); err == nil {
			t.Errorf("target %q accepted", bad)
		}
	}
	h, err := probe.NewHandler(probe.HandlerOptions{Policy: func() *policy.Policy { return p }})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/probe?target=127.0.0.1", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/probe?target=127.0.0.1", nil))
	if rec.Code != http.StatusForbidden {
		t.Errorf("no targets declared: %d, want 403", rec.Code)
	}
}

func TestParseTargetSpec(t *testing.T) {
	got, err := probe.ParseTargetSpec("fd00::1=web:1-10,udp:53")
	if err != nil {
		t.Fatal(err)
	}
	if got.Host != "fd00::1" || got.Scope != "web" || len(got.Ports) != 2 || got.Ports[1].Protocol != policy.UDP {
		t.Errorf("%+v", got)
	}
	for _, bad := range []string{"10.0.0.0/24=web", "h=web:0", ""} {
		if _, err := probe.ParseTargetSpec(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
