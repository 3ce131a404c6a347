package monitor

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var descEvents = prometheus.NewDesc("bindguard_events_total",
	"Drift events stored since the daemon started, by kind (appeared, changed, disappeared, resolved) and severity.", []string{"kind", "severity"}, nil)

// eventCounter counts stored drift events by kind and severity (bindguard_events_total):
// both label sets are closed vocabularies, so the cardinality is bounded.
type eventCounter struct {
	mu sync.Mutex
	n  map[[2]string]uint64
}

func (c *eventCounter) add(events []Event) {
	if len(events) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[[2]string]uint64{}
	}
	for _, e := range events {
		c.n[[2]string{e.Kind, e.Severity}]++
	}
}

func (c *eventCounter) collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.n {
		ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(v), k[0], k[1])
	}
}

// noteScore records the latest report's scores in the store's score history when they
// changed (the store compares with its newest point, so an unchanged audit writes nothing).
// Points older than the event retention, and beyond ScoreHistoryPoints, are dropped.
func (m *Monitor) noteScore() {
	rep, _ := m.Latest()
	if rep == nil {
		return
	}
	p := ScorePoint{Time: m.now().UTC(), Score: rep.Score, Namespaces: make(map[string]int, len(rep.Namespaces))}
	for _, ns := range rep.Namespaces {
		p.Namespaces[ns.Label] = ns.Score
	}
	var before time.Time
	if m.cfg.Retention > 0 {
		before = p.Time.Add(-m.cfg.Retention)
	}
	if _, err := m.store.RecordScore(p, ScoreHistoryPoints, before); err != nil {
		m.log.Warn("recording the score history failed", "error", err.Error())
	}
}

// Scores returns the stored score history since t (led by the point in force at t).
func (m *Monitor) Scores(since time.Time) ([]ScorePoint, error) { return m.store.Scores(since) }
