package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bindguard/bindguard/policy"
)

// Target is one host the /probe endpoint may be asked for: its name as the scrape gives it, the
// policy scope it runs, and extra ports to probe besides the scope's.
type Target struct {
	Host  string
	Scope string
	Ports []PortRange
}

// HandlerOptions configure the /probe endpoint.
type HandlerOptions struct {
	// Policy returns the policy in force (serve reloads it); it must not return nil.
	Policy func() *policy.Policy
	// Targets are the only hosts answered; every other target is refused (403), so the
	// endpoint never probes a host whoever reaches it names.
	Targets []Target
	// PolicyTargets adds the targets of the policy's probe: section, read from Policy at each
	// request, so a reloaded policy takes effect at once.
	PolicyTargets bool
	// Netns is the vantage's network namespace ("" is the caller's own).
	Netns string
	// Concurrency, Rate and Timeout bound each run as in Options; zero is the default.
	Concurrency, Rate int
	Timeout           time.Duration
	// MaxInFlight is how many runs may go at once (default 2); more are refused with 503.
	MaxInFlight int
	// MaxDuration bounds one run (default 30s), and the scrape's own timeout
	// (X-Prometheus-Scrape-Timeout-Seconds) less half a second when it is shorter.
	MaxDuration time.Duration
	// Logger gets each refused request at info and every probe at debug; nil discards.
	Logger *slog.Logger
}

// Handler is the multi-target exporter endpoint, /probe?target=HOST[&scope=NAME], in the manner
// of blackbox_exporter: each scrape probes one declared target from this vantage and answers
// Prometheus text with the bindguard_probe_* series.
type Handler struct {
	o       HandlerOptions
	targets []Target
	slots   chan struct{}
}

// NewHandler checks the declared targets (each one host, as ParseTarget wants it) and returns
// the endpoint.
func NewHandler(o HandlerOptions) (*Handler, error) {
	if o.Policy == nil {
		return nil, errors.New("probe: handler: no policy")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 2
	}
	if o.MaxDuration <= 0 {
		o.MaxDuration = 30 * time.Second
	}
	h := &Handler{o: o, slots: make(chan struct{}, o.MaxInFlight)}
	for _, t := range o.Targets {
		if _, _, err := ParseTarget(t.Host); err != nil {
			return nil, fmt.Errorf("probe: handler: %w", err)
		}
		t.Host = policy.CanonicalHost(t.Host)
		if t.Scope == "" {
			t.Scope = policy.HostScope
		}
		h.targets = append(h.targets, t)
	}
	return h, nil
}

// lookup finds the declared target for host and scope ("" scope: the target's only scope, or
// host when it is declared with several). A host declared more than once for the scope (by the
// policy and by a flag) is probed on the ports of every declaration.
func (h *Handler) lookup(host, scope string) (Target, bool) {
	host = policy.CanonicalHost(host)
	targets := h.targets
	if h.o.PolicyTargets {
		targets = append(PolicyTargets(h.o.Policy()), targets...)
	}
	scopes := map[string]bool{}
	for _, t := range targets {
		if t.Host == host && (scope == "" || t.Scope == scope) {
			scopes[t.Scope] = true
		}
	}
	switch {
	case len(scopes) == 0:
		return Target{}, false
	case scope != "":
	case len(scopes) == 1:
		for s := range scopes {
			scope = s
		}
	case scopes[policy.HostScope]:
		scope = policy.HostScope
	default:
		return Target{}, false
	}
	out := Target{Host: host, Scope: scope}
	for _, t := range targets {
		if t.Host == host && t.Scope == scope {
			out.Ports = append(out.Ports, t.Ports...)
		}
	}
	return out, true
}

// ServeHTTP answers GET (and HEAD) /probe?target=HOST[&scope=NAME].
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	host, scope := q.Get("target"), q.Get("scope")
	if host == "" || len(q["target"]) != 1 || len(q["scope"]) > 1 {
		http.Error(w, "give one target=HOST (and at most one scope=NAME)", http.StatusBadRequest)
		return
	}
	t, ok := h.lookup(host, scope)
	if !ok {
		h.o.Logger.Info("probe: refused an undeclared target", "target", host, "scope", scope)
		http.Error(w, "target not declared for probing", http.StatusForbidden)
		return
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		http.Error(w, "too many probes in flight", http.StatusServiceUnavailable)
		return
	}
	limit := h.o.MaxDuration
	if v, err := strconv.ParseFloat(r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"), 64); err == nil && v > 1 {
		if d := time.Duration((v - 0.5) * float64(time.Second)); d < limit {
			limit = d
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), limit)
	defer cancel()
	start := time.Now()
	rep, err := Run(ctx, Options{
		Policy: h.o.Policy(), Scope: t.Scope, Target: t.Host, Netns: h.o.Netns, Ports: t.Ports,
		Concurrency: h.o.Concurrency, Rate: h.o.Rate, Timeout: h.o.Timeout, Logger: h.o.Logger,
	})
	if err != nil {
		h.o.Logger.Warn("probe failed", "target", t.Host, "scope", t.Scope, "err", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(reportCollector{target: t, rep: rep, ok: err == nil, took: time.Since(start)})
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

var (
	probeLabels      = []string{"target", "scope", "service", "protocol", "address", "port"}
	descSuccess      = prometheus.NewDesc("bindguard_probe_success", "Whether the probe run completed (1) or failed (0).", []string{"target", "scope"}, nil)
	descDuration     = prometheus.NewDesc("bindguard_probe_duration_seconds", "How long the probe run took.", []string{"target", "scope"}, nil)
	descViolations   = prometheus.NewDesc("bindguard_probe_violations", "Results of the run whose verdict is a violation.", []string{"target", "scope"}, nil)
	descPortState    = prometheus.NewDesc("bindguard_probe_port_state", "1 for the state each probed port was found in (open, closed, filtered, open|filtered).", append(probeLabels, "state"), nil)
	descPortViolates = prometheus.NewDesc("bindguard_probe_port_violation", "1 when the port's state is a violation of the policy from this vantage, else 0.", probeLabels, nil)
	descContradicts  = prometheus.NewDesc("bindguard_probe_port_contradiction", "1 when a lan or restricted service is reached from outside its allow list (the audit can call it valid).", probeLabels, nil)
	descUndeclared   = prometheus.NewDesc("bindguard_probe_undeclared_ports", "Undeclared ports probed and not open, by state.", []string{"target", "scope", "state"}, nil)
)

// reportCollector exposes one run.
type reportCollector struct {
	target Target
	rep    *Report
	ok     bool
	took   time.Duration
}

func (c reportCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c reportCollector) Collect(ch chan<- prometheus.Metric) {
	t, s := c.target.Host, c.target.Scope
	success := 0.0
	if c.ok {
		success = 1
	}
	ch <- prometheus.MustNewConstMetric(descSuccess, prometheus.GaugeValue, success, t, s)
	ch <- prometheus.MustNewConstMetric(descDuration, prometheus.GaugeValue, c.took.Seconds(), t, s)
	if !c.ok || c.rep == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descViolations, prometheus.GaugeValue, float64(c.rep.Violations()), t, s)
	for _, r := range c.rep.Results {
		lv := []string{t, s, r.Service, string(r.Protocol), r.Address.String(), strconv.Itoa(int(r.Port))}
		ch <- prometheus.MustNewConstMetric(descPortState, prometheus.GaugeValue, 1, append(lv, string(r.State))...)
		ch <- prometheus.MustNewConstMetric(descPortViolates, prometheus.GaugeValue, b2f(r.Verdict == Violation), lv...)
		ch <- prometheus.MustNewConstMetric(descContradicts, prometheus.GaugeValue, b2f(r.Contradiction), lv...)
	}
	for _, st := range []State{Closed, Filtered, OpenFiltered} {
		ch <- prometheus.MustNewConstMetric(descUndeclared, prometheus.GaugeValue, float64(c.rep.Undeclared[st]), t, s, string(st))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// PolicyTargets are the targets of p's probe: section, hosts in canonical form; a port range
// without a protocol is TCP.
func PolicyTargets(p *policy.Policy) []Target {
	out := make([]Target, 0, len(p.Probe))
	for _, pt := range p.Probe {
		t := Target{Host: policy.CanonicalHost(pt.Target), Scope: pt.Scope}
		if t.Scope == "" {
			t.Scope = policy.HostScope
		}
		for _, r := range pt.Ports {
			proto := r.Protocol
			if proto == "" {
				proto = policy.TCP
			}
			t.Ports = append(t.Ports, PortRange{Protocol: proto, Lo: r.Lo, Hi: r.Hi})
		}
		out = append(out, t)
	}
	return out
}

// ParseTargetSpec reads a declared target as a flag gives it: HOST, HOST=SCOPE, or
// HOST=SCOPE:PORTS (PORTS as ParsePorts reads them).
func ParseTargetSpec(s string) (Target, error) {
	host, rest, _ := strings.Cut(s, "=")
	scope, ports, _ := strings.Cut(rest, ":")
	if _, _, err := ParseTarget(host); err != nil {
		return Target{}, err
	}
	t := Target{Host: host, Scope: scope}
	if ports != "" {
		pr, err := ParsePorts(ports)
		if err != nil {
			return Target{}, err
		}
		t.Ports = pr
	}
	return t, nil
}
