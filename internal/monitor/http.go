package monitor

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bindguard/bindguard/internal/audit"
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
	descBuild = prometheus.NewDesc("bindguard_build_info",
		"Always 1, labelled with bindguard's version, VCS revision and Go version.", []string{"version", "revision", "goversion"}, nil)
	descReloadOK = prometheus.NewDesc("bindguard_config_last_reload_successful",
		"1 when the last policy reload (SIGHUP) succeeded, or none failed since start; 0 when it was refused and the old policy stays.", nil, nil)
	descWatchMode = prometheus.NewDesc("bindguard_watch_mode",
		"1 for the event source that runs (kernel: live socket events with audits as reconciliation; poll: audits only), 0 for the other.", []string{"mode"}, nil)
	descWatchFallback = prometheus.NewDesc("bindguard_watch_fallback",
		"1 when kernel mode was asked for (--watch kernel or auto) and the daemon polls instead; /health says why.", []string{"asked"}, nil)
	descWatchLost = prometheus.NewDesc("bindguard_watch_lost_records_total",
		"Kernel socket events lost because the ring buffer was full (each loss triggers a full audit).", nil, nil)
	descWatchEvents = prometheus.NewDesc("bindguard_watch_events_total",
		"Kernel socket events read.", nil, nil)
	descReloadTime = prometheus.NewDesc("bindguard_config_last_reload_success_timestamp_seconds",
		"When the policy in force was loaded, in seconds since the Unix epoch.", nil, nil)
)

// HandlerOptions add to the monitor's endpoints.
type HandlerOptions struct {
	// Version and Revision label bindguard_build_info and head the dashboard.
	Version, Revision string
	// Reloads, when set, is reported in /health's body and as bindguard_config_last_reload_*.
	Reloads *ReloadStatus
	// Probe, when set, answers /probe (the multi-target exporter endpoint, internal/probe).
	Probe http.Handler
}

type collector struct {
	m    *Monitor
	opts HandlerOptions
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	report.Collector{}.Describe(ch)
	for _, d := range []*prometheus.Desc{descEvents, descDuration, descErrors, descLastOK, descUp, descBuild, descWatchMode, descWatchFallback, descWatchLost, descWatchEvents} {
		ch <- d
	}
	if c.opts.Reloads != nil {
		ch <- descReloadOK
		ch <- descReloadTime
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	rep, meta := c.m.Latest()
	if rep != nil {
		report.Collector{Meta: meta, Report: rep}.Collect(ch)
	}
	c.m.mu.RLock()
	dur, errs, lastOK, ws := c.m.duration, c.m.errors, c.m.lastOK, c.m.watch
	c.m.mu.RUnlock()
	for _, mode := range []WatchMode{WatchKernel, WatchPoll} {
		v := 0.0
		if ws.mode == mode {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descWatchMode, prometheus.GaugeValue, v, string(mode))
	}
	fb := 0.0
	if ws.fallback != "" {
		fb = 1
	}
	ch <- prometheus.MustNewConstMetric(descWatchFallback, prometheus.GaugeValue, fb, string(ws.asked))
	c.m.events.collect(ch)
	ch <- prometheus.MustNewConstMetric(descWatchLost, prometheus.CounterValue, float64(ws.lost))
	ch <- prometheus.MustNewConstMetric(descWatchEvents, prometheus.CounterValue, float64(ws.events))
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
	v, rev := c.opts.Version, c.opts.Revision
	if v == "" {
		v = "devel"
	}
	ch <- prometheus.MustNewConstMetric(descBuild, prometheus.GaugeValue, 1, v, rev, runtime.Version())
	if c.opts.Reloads != nil {
		ok, last, _, _ := c.opts.Reloads.Last()
		okv := 0.0
		if ok {
			okv = 1
		}
		ch <- prometheus.MustNewConstMetric(descReloadOK, prometheus.GaugeValue, okv)
		ch <- prometheus.MustNewConstMetric(descReloadTime, prometheus.GaugeValue, float64(last.Unix()))
	}
}

// Handler serves /metrics, /health, /api/v1/audit, /api/v1/zabbix, /api/v2/events and
// /api/v1/events; the documents are report's (bindguard.audit.v1, bindguard.zabbix.v1,
// bindguard.events.v2 and v1).
func (m *Monitor) Handler() http.Handler { return m.HandlerWith(HandlerOptions{}) }

// HandlerWith is Handler with build information, the reload status, Go and process metrics,
// the dashboard at / (dashboard.go) and one finding's JSON at /api/v2/finding.
func (m *Monitor) HandlerWith(opts HandlerOptions) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{m, opts}, enforceCollector{m}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if opts.Probe != nil {
		mux.Handle("GET /probe", opts.Probe)
	}
	m.handleDashboard(mux, opts)
	mux.HandleFunc("GET /api/v2/finding", func(w http.ResponseWriter, r *http.Request) {
		rep, meta, ok := m.latestOr503(w)
		if !ok {
			return
		}
		f, err := lookupFinding(rep, r.URL.Query())
		switch {
		case err != nil:
			httpError(w, http.StatusBadRequest, err.Error())
		case f == nil:
			httpError(w, http.StatusNotFound, "no such finding in the audit of "+meta.Time.UTC().Format(time.RFC3339))
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(report.FindingV2{Finding: *f, Netns: f.Netns})
		}
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := m.Health()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, why)
		switch asked, mode, fallback := m.Watch(); {
		case fallback != "":
			fmt.Fprintf(w, "watch: poll (--watch %s asked for the kernel event source, which is unavailable: %s)\n", asked, fallback)
		default:
			fmt.Fprintf(w, "watch: %s\n", mode)
		}
		if line := m.enforceHealth(); line != "" {
			fmt.Fprintln(w, line)
		}
		// A refused reload is reported, still 200: a liveness probe must not restart the
		// daemon for it; the old policy is in force.
		if opts.Reloads != nil {
			if rok, _, at, err := opts.Reloads.Last(); !rok {
				fmt.Fprintf(w, "policy reload failed at %s, the previous policy stays in force: %s\n", at.UTC().Format(time.RFC3339), err)
			}
		}
	})
	for path, write := range map[string]func(io.Writer, report.Meta, *audit.Report) error{
		"GET /api/v1/audit": report.JSONv1, // bindguard.audit.v1, for its readers
		"GET /api/v2/audit": report.JSON,   // bindguard.audit.v2: per namespace
	} {
		mux.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) {
			rep, meta, ok := m.latestOr503(w)
			if !ok {
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = write(w, meta, rep)
		})
	}
	mux.HandleFunc("GET /api/v1/zabbix", func(w http.ResponseWriter, _ *http.Request) {
		rep, _, ok := m.latestOr503(w)
		if !ok {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = report.NewZabbixDoc(rep).Encode(w)
	})
	events := func(w http.ResponseWriter, r *http.Request) ([]Event, time.Time, bool) {
		since, err := ParseSince(r.URL.Query().Get("since"), time.Now())
		if err != nil {
			httpError(w, http.StatusBadRequest, err.Error())
			return nil, since, false
		}
		events, err := m.Events(since)
		if err != nil {
			httpError(w, http.StatusInternalServerError, "reading events failed")
			m.log.Error("reading events", "error", err.Error())
			return nil, since, false
		}
		w.Header().Set("Content-Type", "application/json")
		return events, since, true
	}
	mux.HandleFunc("GET /api/v2/events", func(w http.ResponseWriter, r *http.Request) {
		if evs, since, ok := events(w, r); ok {
			_ = report.NewEventsV2(since, evs).Encode(w, false)
		}
	})
	mux.HandleFunc("GET /api/v1/events", func(w http.ResponseWriter, r *http.Request) {
		if evs, since, ok := events(w, r); ok {
			v1 := make([]EventV1, 0, len(evs))
			for _, e := range evs {
				if e.Kind != KindDenied { // v1 has no denied kind
					v1 = append(v1, e.V1())
				}
			}
			_ = report.NewEvents(since, v1).Encode(w, false)
		}
	})
	return mux
}

// latestOr503 is the latest report, or false after answering 503 with why there is none.
func (m *Monitor) latestOr503(w http.ResponseWriter) (*audit.Report, report.Meta, bool) {
	rep, meta := m.Latest()
	if rep == nil {
		_, why := m.Health()
		httpError(w, http.StatusServiceUnavailable, why)
		return nil, meta, false
	}
	return rep, meta, true
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
