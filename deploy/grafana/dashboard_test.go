// Package grafana_test checks the shipped Grafana dashboard (bindguard.json) against the
// series bindguard really exports.
package grafana_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/bindguard/bindguard/internal/monitor"
	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/observe"
	"github.com/bindguard/bindguard/internal/probe"
)

// query is one PromQL expression of the dashboard and where it is.
type query struct{ where, expr string }

// queries walks the dashboard's JSON for every panel target's expr and every query variable's
// query (label_values(SELECTOR, LABEL) is given back as its selector).
func queries(t *testing.T, path string) []query {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	labelValues := regexp.MustCompile(`^label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)
	var out []query
	var walk func(v any, where string)
	walk = func(v any, where string) {
		switch v := v.(type) {
		case map[string]any:
			if title, ok := v["title"].(string); ok {
				where += "/" + title
			} else if name, ok := v["name"].(string); ok {
				where += "/$" + name
			}
			for k, c := range v {
				switch s, str := c.(string); {
				case k == "expr" && str:
					out = append(out, query{where, s})
				case k == "query" && str && v["type"] != "datasource":
					m := labelValues.FindStringSubmatch(s)
					if m == nil {
						t.Errorf("%s: variable query %q: want label_values(SELECTOR, LABEL)", where, s)
						continue
					}
					out = append(out, query{where, m[1]})
				default:
					walk(c, where)
				}
			}
		case []any:
			for _, c := range v {
				walk(c, where)
			}
		}
	}
	walk(doc, "")
	sort.Slice(out, func(i, j int) bool { return out[i].where+out[i].expr < out[j].where+out[j].expr })
	return out
}

// grafanaVars replaces Grafana's variables with what PromQL parses: its interval variables by
// a duration, the dashboard's own ($job, ${instance}) by a regexp matching anything.
func grafanaVars(expr string) string {
	expr = regexp.MustCompile(`\$\{?__(rate_interval|interval|range)\}?`).ReplaceAllString(expr, "5m")
	return regexp.MustCompile(`\$\{?[a-zA-Z_][a-zA-Z0-9_]*(:[a-z]+)?\}?`).ReplaceAllString(expr, ".*")
}

// exported scrapes one exposition into metric name -> its label names.
func exported(t *testing.T, h http.Handler, path string, into map[string]map[string]bool) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	if w.Code != http.StatusOK {
		t.Fatalf("%s: %d %s", path, w.Code, w.Body)
	}
	tp := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := tp.TextToMetricFamilies(w.Body)
	if err != nil {
		t.Fatalf("%s does not parse: %v", path, err)
	}
	for name, f := range mf {
		if into[name] == nil {
			into[name] = map[string]bool{}
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				into[name][l.GetName()] = true
			}
		}
	}
}

const testPolicy = `version: 1
services:
  - {name: redis, port: 6379, address: 127.0.0.1, access: localhost_only}
  - {name: web, port: 8080, address: 127.0.0.1, access: proxy_only}
`

// TestDashboardQueries: every query of bindguard.json parses as PromQL and names only series,
// and labels of those series, that a real monitor's /metrics (auditing a test namespace with
// real listeners, with drift recorded) and a real /probe scrape (probing that namespace)
// export, with Prometheus's own job and instance; and the dashboard covers the series the
// fleet view is made of.
func TestDashboardQueries(t *testing.T) {
	qs := queries(t, "bindguard.json")
	if len(qs) < 10 {
		t.Fatalf("bindguard.json has %d queries: the walk found too few", len(qs))
	}
	ns := netnstest.New(t, "bggraf")
	for _, s := range []string{"tcp:127.0.0.1:6379", "tcp:0.0.0.0:8080"} {
		sp, err := netnstest.ParseSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		ns.Listen(t, sp)
	}
	polFile := filepath.Join(t.TempDir(), "bindguard.yaml")
	if err := os.WriteFile(polFile, []byte(testPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := monitor.OpenStore(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	m, err := monitor.New(monitor.Config{PolicyPath: polFile, Interval: time.Hour, Observer: monitor.HostObserver(observe.Options{Netns: ns.Name})}, store)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Audit(context.Background()); err != nil { // the first audit's findings are drift events
		t.Fatal(err)
	}
	series := map[string]map[string]bool{}
	exported(t, m.HandlerWith(monitor.HandlerOptions{Version: "test"}), "/metrics", series)
	ph, err := probe.NewHandler(probe.HandlerOptions{Policy: m.Policy, Targets: []probe.Target{{Host: "127.0.0.1"}}, Netns: ns.Path, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	exported(t, ph, "/probe?target=127.0.0.1", series)
	for _, want := range []string{"bindguard_events_total", "bindguard_namespace_audit_score", "bindguard_probe_port_state"} {
		if series[want] == nil {
			t.Fatalf("the scrapes have no %s: the test's serve is not what it should be", want)
		}
	}

	used := map[string]bool{}
	p := parser.NewParser(parser.Options{})
	for _, q := range qs {
		expr, err := p.ParseExpr(grafanaVars(q.expr))
		if err != nil {
			t.Errorf("%s: %q does not parse: %v", q.where, q.expr, err)
			continue
		}
		var names []string
		parser.Inspect(expr, func(n parser.Node, path []parser.Node) error {
			vs, ok := n.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			if vs.Name == "" {
				t.Errorf("%s: %q selects by matchers alone: name the series", q.where, q.expr)
				return nil
			}
			names = append(names, vs.Name)
			labels, ok := series[vs.Name]
			if !ok {
				t.Errorf("%s: %q names %s, which neither /metrics nor /probe exports", q.where, q.expr, vs.Name)
				return nil
			}
			used[vs.Name] = true
			for _, lm := range vs.LabelMatchers {
				if n := lm.Name; n != model.MetricNameLabel && n != "job" && n != "instance" && !labels[n] {
					t.Errorf("%s: %q matches label %s, which %s does not have", q.where, q.expr, n, vs.Name)
				}
			}
			return nil
		})
		// Grouping labels must be on the series grouped.
		parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
			ag, ok := n.(*parser.AggregateExpr)
			if !ok || ag.Without {
				return nil
			}
			var inner []string
			parser.Inspect(ag.Expr, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok {
					inner = append(inner, vs.Name)
				}
				return nil
			})
			for _, g := range ag.Grouping {
				for _, name := range inner {
					if l := series[name]; l != nil && g != "job" && g != "instance" && !l[g] {
						t.Errorf("%s: %q groups by %s, which %s does not have", q.where, q.expr, g, name)
					}
				}
			}
			return nil
		})
		if len(names) == 0 {
			t.Errorf("%s: %q names no series", q.where, q.expr)
		}
	}
	// The fleet view's parts: per-host and per-namespace score, findings by severity, the
	// drift rate and the probe's results.
	for _, want := range []string{"bindguard_audit_score", "bindguard_namespace_audit_score", "bindguard_audit_violations",
		"bindguard_events_total", "bindguard_probe_success", "bindguard_probe_port_violation"} {
		if !used[want] {
			t.Errorf("the dashboard does not use %s", want)
		}
	}
	var names []string
	for n := range used {
		names = append(names, n)
	}
	slices.Sort(names)
	t.Logf("%d queries over %d series: %s", len(qs), len(names), strings.Join(names, ", "))
}
