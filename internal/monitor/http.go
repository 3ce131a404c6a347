package monitor

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bindguard/bindguard/internal/report"
)

var (
	descDuration = prometheus.NewDesc("bindguard_audit_duration_seconds",
		"How long the last audit took.", nil, nil)
	descErrors = prometheus.NewDesc("bindguard_audit_errors_total",
		"Audits that failed since the daemon started.", nil, nil)
	descLastOK = prometheus.NewDesc("bindguard_audit_last_success_timestamp_seconds",
		"When the last successful audit ran, in seconds since the Unix epoch (0: none yet).", nil, nil)
	descUp = prometheus.NewDesc("bindguard_audit_up",
		"1 when the last audit succeeded and is fresh, else 0.", nil, nil)
)

type collector struct{ m *Monitor }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	report.Collector{}.Describe(ch)
	for _, d := range []*prometheus.Desc{descDuration, descErrors, descLastOK, descUp} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	rep, meta := c.m.Latest()
	if rep != nil {
		report.Collector{Meta: meta, Report: rep}.Collect(ch)
	}
	c.m.mu.RLock()
	dur, errs, lastOK := c.m.duration, c.m.errors, c.m.lastOK
	c.m.mu.RUnlock()
	ok, _ := c.m.Health()
	last := 0.0
	if !lastOK.IsZero() {
		last = float64(lastOK.Unix())
	}
	up := 0.0
	if ok {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(descDuration, prometheus.GaugeValue, dur.Seconds())
	ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(errs))
	ch <- prometheus.MustNewConstMetric(descLastOK, prometheus.GaugeValue, last)
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up)
}

// Handler serves /metrics, /health, /api/v1/audit, /api/v1/zabbix and /api/v1/events; the
// documents are report's (bindguard.audit.v1, bindguard.zabbix.v1, bindguard.events.v1).
func (m *Monitor) Handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{m})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := m.Health()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, why)
	})
	mux.HandleFunc("GET /api/v1/audit", func(w http.ResponseWriter, _ *http.Request) {
		rep, meta := m.Latest()
		if rep == nil {
			_, why := m.Health()
			httpError(w, http.StatusServiceUnavailable, why)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = report.JSON(w, meta, rep)
	})
	mux.HandleFunc("GET /api/v1/zabbix", func(w http.ResponseWriter, _ *http.Request) {
		rep, _ := m.Latest()
		if rep == nil {
			_, why := m.Health()
			httpError(w, http.StatusServiceUnavailable, why)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = report.NewZabbixDoc(rep).Encode(w)
	})
	mux.HandleFunc("GET /api/v1/events", func(w http.ResponseWriter, r *http.Request) {
		since, err := ParseSince(r.URL.Query().Get("since"), time.Now())
		if err != nil {
			httpError(w, http.StatusBadRequest, err.Error())
			return
		}
		events, err := m.Events(since)
		if err != nil {
			httpError(w, http.StatusInternalServerError, "reading events failed")
			m.log.Error("reading events", "error", err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = report.NewEvents(since, events).Encode(w, false)
	})
	return mux
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": http.StatusText(code), "status": code, "detail": msg})
}

// ParseSince reads a duration back from now ("1h", "30m", "7d") or an RFC 3339 time; empty is
// 24 hours.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return now.Add(-24 * time.Hour), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if days, ok := strings.CutSuffix(s, "d"); ok && err != nil {
		d, err = time.ParseDuration(days + "h")
		d *= 24
	}
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("since %q: want a duration such as 1h, 30m or 7d, or an RFC 3339 time", s)
	}
	return now.Add(-d), nil
}
