package report

import (
	"fmt"
	"io"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/bindguard/bindguard/internal/audit"
)

// Metric descriptions. Labels are bounded: statuses, severities, the policy's services and
// scopes, and the audited namespaces (whose series vanish with them: the metrics are made
// from the latest report alone); never pids or addresses.
var (
	descScore = prometheus.NewDesc("bindguard_audit_score",
		"Binding security score of the host in the last audit, 0 to 100 (the seed's formula): the lowest of its network namespaces' scores.", nil, nil)
	descNSScore = prometheus.NewDesc("bindguard_namespace_audit_score",
		"Binding security score of one network namespace in the last audit, 0 to 100, judged by its scope's services.", []string{"netns", "container", "scope"}, nil)
	descNSFindings = prometheus.NewDesc("bindguard_namespace_audit_findings",
		"Findings of the last audit in one network namespace by status.", []string{"netns", "container", "scope", "status"}, nil)
	descComplete = prometheus.NewDesc("bindguard_audit_complete",
		"1 when the last audit saw every namespace and owner it looked for, 0 when something could not be observed (not root).", nil, nil)
	descFindings = prometheus.NewDesc("bindguard_audit_findings",
		"Findings of the last audit by status.", []string{"status"}, nil)
	descViolations = prometheus.NewDesc("bindguard_audit_violations",
		"Invalid, missing and unexpected findings of the last audit by severity.", []string{"severity"}, nil)
	descCompliant = prometheus.NewDesc("bindguard_service_compliant",
		"1 when the declared service listens and every socket on its port is valid, else 0.", []string{"service", "protocol", "port"}, nil)
	descListening = prometheus.NewDesc("bindguard_service_listening",
		"1 when something listens on the declared service's protocol and port, else 0.", []string{"service", "protocol", "port"}, nil)
	descTime = prometheus.NewDesc("bindguard_audit_timestamp_seconds",
		"When the last audit ran, in seconds since the Unix epoch.", nil, nil)
)

// Collector is a prometheus.Collector over one audit report, as const metrics.
type Collector struct {
	Meta   Meta
	Report *audit.Report
}

// Describe sends the metric descriptions.
func (c Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descScore, descFindings, descViolations, descCompliant, descListening, descTime, descNSScore, descNSFindings, descComplete} {
		ch <- d
	}
}

// Collect sends the report's metrics.
func (c Collector) Collect(ch chan<- prometheus.Metric) {
	r := c.Report
	ch <- prometheus.MustNewConstMetric(descScore, prometheus.GaugeValue, float64(r.Score))
	for _, st := range audit.Statuses() {
		ch <- prometheus.MustNewConstMetric(descFindings, prometheus.GaugeValue, float64(r.Summary.Count(st)), string(st))
	}
	bySev := map[audit.Severity]int{}
	for _, f := range r.Findings {
		if f.Status != audit.Valid {
			bySev[f.Severity]++
		}
	}
	for _, s := range audit.Severities() {
		if s == audit.Info {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descViolations, prometheus.GaugeValue, float64(bySev[s]), s.String())
	}
	for _, s := range r.Services {
		port := strconv.Itoa(int(s.Port))
		ch <- prometheus.MustNewConstMetric(descCompliant, prometheus.GaugeValue, b2f(s.Compliant), s.Name, string(s.Protocol), port)
		ch <- prometheus.MustNewConstMetric(descListening, prometheus.GaugeValue, b2f(s.Listening), s.Name, string(s.Protocol), port)
	}
	ch <- prometheus.MustNewConstMetric(descTime, prometheus.GaugeValue, float64(c.Meta.Time.Unix()))
	ch <- prometheus.MustNewConstMetric(descComplete, prometheus.GaugeValue, b2f(r.Complete))
	seen := map[string]bool{}
	for _, n := range r.Namespaces {
		if seen[n.Label] {
			continue // one series per label
		}
		seen[n.Label] = true
		ch <- prometheus.MustNewConstMetric(descNSScore, prometheus.GaugeValue, float64(n.Score), n.Label, n.Container, n.Scope)
		for _, st := range audit.Statuses() {
			ch <- prometheus.MustNewConstMetric(descNSFindings, prometheus.GaugeValue, float64(n.Summary.Count(st)), n.Label, n.Container, n.Scope, string(st))
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Prometheus writes the report in the Prometheus text exposition format (for the node
// exporter's textfile collector, or a push).
func Prometheus(w io.Writer, m Meta, r *audit.Report) error {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(Collector{Meta: m, Report: r}); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("report: %w", err)
		}
	}
	return nil
}
