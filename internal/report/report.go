// Package report renders an audit report: a table for people (grouped by status, worst first,
// colour only when asked), versioned JSON (bindguard.audit.v2, and v1 for old readers), Prometheus text exposition and
// zabbix_sender input with low-level discovery.
//
// It owns every versioned document bindguard writes and reads: the audit (bindguard.audit.v2 and v1),
// the drift events' envelope (bindguard.events.v1), the Zabbix values (bindguard.zabbix.v1)
// and the policy view (bindguard.policy.v1), and the one Zabbix key scheme (zabbix.go).
package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/bindguard/bindguard/internal/audit"
)

// SchemaAudit names the JSON document's version that `--format json` and /api/v2/audit write.
const SchemaAudit = SchemaAuditV2

// The audit document's versions: v2 (per namespace) and v1 (one flat list, for /api/v1/audit).
const (
	SchemaAuditV1 = "bindguard.audit.v1"
	SchemaAuditV2 = "bindguard.audit.v2"
)

// Formats are the output formats of an audit.
var Formats = []string{"table", "json", "prometheus", "zabbix"}

// Meta is what a report says about the audit beyond its findings.
type Meta struct {
	Host   string
	Time   time.Time
	Policy string
	// Namespaces are the labels of the audited network namespaces.
	Namespaces []string
	// Warnings are observation problems that did not stop the audit.
	Warnings []string
	// ZabbixPrefix starts the item keys of the zabbix format ("" is DefaultZabbixPrefix).
	ZabbixPrefix string
}

// warnings are the observation's warnings, then the judge's.
func warnings(m Meta, r *audit.Report) []string {
	out := append([]string{}, m.Warnings...)
	return append(out, r.Warnings...)
}

// Render writes r in the named format.
func Render(w io.Writer, format string, m Meta, r *audit.Report, color bool) error {
	switch format {
	case "table":
		return Table(w, m, r, color)
	case "json":
		return JSON(w, m, r)
	case "prometheus":
		return Prometheus(w, m, r)
	case "zabbix":
		return Zabbix(w, m, r)
	}
	return fmt.Errorf("report: unknown format %q", format)
}

// Document is the JSON form of a report in schema bindguard.audit.v1: one flat list of
// findings. Fields are only ever added within a schema version.
type Document struct {
	Schema     string          `json:"schema"`
	Host       string          `json:"host"`
	Time       string          `json:"time"`
	Policy     string          `json:"policy"`
	Score      int             `json:"score"`
	Summary    audit.Summary   `json:"summary"`
	Findings   []audit.Finding `json:"findings"`
	Namespaces []string        `json:"namespaces"`
	Notes      []string        `json:"notes"`
	Warnings   []string        `json:"warnings"`
}

// NewDocument builds the v1 JSON document of a report. Findings is nil when there are none;
// JSON writes it as [].
func NewDocument(m Meta, r *audit.Report) Document {
	return Document{
		Schema: SchemaAuditV1, Host: m.Host, Time: m.Time.UTC().Format(time.RFC3339), Policy: m.Policy,
		Score: r.Score, Summary: r.Summary, Findings: r.Findings,
		Namespaces: nonNil(m.Namespaces), Notes: nonNil(r.Notes), Warnings: nonNil(warnings(m, r)),
	}
}

// DocumentV2 is the JSON form of a report in schema bindguard.audit.v2: the host's score and
// summary, one entry per namespace with its own, every finding naming its namespace, and
// whether the observation was complete. Fields are only ever added within a schema version.
type DocumentV2 struct {
	Schema string `json:"schema"`
	Host   string `json:"host"`
	Time   string `json:"time"`
	Policy string `json:"policy"`
	// Score is the host's score; ScoreRule says how it is made from the namespaces'.
	Score     int           `json:"score"`
	ScoreRule string        `json:"score_rule"`
	Summary   audit.Summary `json:"summary"`
	// Complete is false when something could not be observed; Unseen says what.
	Complete   bool          `json:"complete"`
	Unseen     []string      `json:"unseen"`
	Namespaces []NamespaceV2 `json:"namespaces"`
	Findings   []FindingV2   `json:"findings"`
	Notes      []string      `json:"notes"`
	Warnings   []string      `json:"warnings"`
}

// NamespaceV2 is one audited namespace of a v2 document.
type NamespaceV2 struct {
	Label     string `json:"label"`
	Netns     string `json:"netns"`
	Container string `json:"container"`
	Host      bool   `json:"host"`
	// Scope is the policy scope that judged it; Matched false: no named scope matched it and
	// it was held to the host's services.
	Scope   string        `json:"scope"`
	Matched bool          `json:"matched"`
	Score   int           `json:"score"`
	Summary audit.Summary `json:"summary"`
}

// FindingV2 is a finding of a v2 document: v1's fields and the namespace's label.
type FindingV2 struct {
	audit.Finding
	Netns string `json:"netns"`
}

// NewDocumentV2 builds the v2 JSON document of a report.
func NewDocumentV2(m Meta, r *audit.Report) DocumentV2 {
	d := newHeadV2(m, r)
	d.Findings = make([]FindingV2, 0, len(r.Findings))
	for _, f := range r.Findings {
		d.Findings = append(d.Findings, FindingV2{Finding: f, Netns: f.Netns})
	}
	if len(d.Findings) == 0 {
		d.Findings = nil
	}
	return d
}

// newHeadV2 is the v2 document of a report without its findings (nil).
func newHeadV2(m Meta, r *audit.Report) DocumentV2 {
	d := DocumentV2{
		Schema: SchemaAuditV2, Host: m.Host, Time: m.Time.UTC().Format(time.RFC3339), Policy: m.Policy,
		Score: r.Score, ScoreRule: audit.HostScoreRule, Summary: r.Summary,
		Complete: r.Complete, Unseen: nonNil(r.Unseen), Namespaces: []NamespaceV2{},
		Notes: nonNil(r.Notes), Warnings: nonNil(warnings(m, r)),
	}
	for _, n := range r.Namespaces {
		d.Namespaces = append(d.Namespaces, NamespaceV2{
			Label: n.Label, Netns: n.Netns, Container: n.Container, Host: n.Host,
			Scope: n.Scope, Matched: n.Matched, Score: n.Score, Summary: n.Summary,
		})
	}
	return d
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// JSON writes the report as one indented bindguard.audit.v2 document. The findings are
// encoded straight from the report (no copy of them as FindingV2), in chunks on every CPU,
// and written in order as they are ready, so memory stays flat however many sockets listen.
func JSON(w io.Writer, m Meta, r *audit.Report) error {
	return writeDocumentV2(w, newHeadV2(m, r), r.Findings)
}

// JSONv1 writes the report as one indented bindguard.audit.v1 document, for readers of the
// first schema (/api/v1/audit).
func JSONv1(w io.Writer, m Meta, r *audit.Report) error {
	doc := NewDocument(m, r)
	findings := doc.Findings
	doc.Findings = nil
	return writeDocument(w, doc, len(findings), func(k int) any { return &findings[k] })
}

// writeDocument writes head (whose findings are null) with the n findings spliced in.
func writeDocument(w io.Writer, head any, n int, finding func(int) any) error {
	before, after, err := splice(head)
	if err != nil {
		return err
	}
	// bufio.Writer errors are sticky: Flush returns the first.
	bw := bufio.NewWriterSize(w, 64<<10)
	_, _ = bw.Write(before)
	_, _ = bw.WriteString("\n  \"findings\": [")
	for k := range n {
		b, err := json.MarshalIndent(finding(k), "    ", "  ")
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		if k > 0 {
			_ = bw.WriteByte(',')
		}
		_, _ = bw.WriteString("\n    ")
		_, _ = bw.Write(b)
	}
	return finishDocument(bw, n, after)
}

// finishDocument closes the findings' list of n and writes the rest of the document.
func finishDocument(bw *bufio.Writer, n int, after []byte) error {
	if n > 0 {
		_, _ = bw.WriteString("\n  ")
	}
	_, _ = bw.WriteString("],")
	_, _ = bw.Write(after)
	_ = bw.WriteByte('\n')
	return bw.Flush()
}

// splice encodes head, whose findings are null, and returns what goes before the findings'
// list and what comes after it.
func splice(head any) (before, after []byte, err error) {
	hb, err := json.MarshalIndent(head, "", "  ")
	if err != nil {
		return nil, nil, fmt.Errorf("report: %w", err)
	}
	const marker = "\n  \"findings\": null,"
	i := bytes.Index(hb, []byte(marker))
	if i < 0 {
		return nil, nil, fmt.Errorf("report: findings placeholder not found")
	}
	return hb[:i], hb[i+len(marker):], nil
}

// findingChunk is how many findings one worker of writeDocumentV2 encodes at a time (~180 KiB
// of JSON): large enough that handing chunks over costs nothing, small enough that the few in
// flight keep memory flat.
const findingChunk = 256

// writeDocumentV2 writes head (whose findings are nil) with the findings spliced in, byte for
// byte what writeDocument writes with them as FindingV2. Chunks of findings are encoded by a
// worker per CPU into buffers of their own and written in order, a bounded number ahead.
func writeDocumentV2(w io.Writer, head DocumentV2, findings []audit.Finding) error {
	before, after, err := splice(head)
	if err != nil {
		return err
	}
	// bufio.Writer errors are sticky: Flush returns the first.
	bw := bufio.NewWriterSize(w, 64<<10)
	_, _ = bw.Write(before)
	_, _ = bw.WriteString("\n  \"findings\": [")
	encode := func(b []byte, from, to int) []byte {
		for k := from; k < to; k++ {
			if k > 0 {
				b = append(b, ',')
			}
			b = append(b, "\n    "...)
			b = appendFinding(b, &findings[k], findings[k].Netns)
		}
		return b
	}
	n := len(findings)
	workers := min(runtime.GOMAXPROCS(0), 4, (n+findingChunk-1)/findingChunk)
	if workers <= 1 {
		buf := make([]byte, 0, 4<<10)
		for k := 0; k < n; k += findingChunk {
			buf = encode(buf[:0], k, min(k+findingChunk, n))
			_, _ = bw.Write(buf)
		}
	} else {
		type job struct {
			from int
			out  chan []byte
		}
		// Chunks go to the workers in order, and their results are written in the same
		// order; at most 2*workers are encoded ahead of the writer. Buffers are reused.
		jobs := make(chan job)
		pending := make(chan chan []byte, 2*workers)
		free := make(chan []byte, 3*workers)
		for range workers {
			go func() {
				for j := range jobs {
					var b []byte
					select {
					case b = <-free:
					default:
						b = make([]byte, 0, findingChunk*1024)
					}
					j.out <- encode(b[:0], j.from, min(j.from+findingChunk, n))
				}
			}()
		}
		go func() {
			for k := 0; k < n; k += findingChunk {
				out := make(chan []byte, 1)
				pending <- out
				jobs <- job{k, out}
			}
			close(jobs)
			close(pending)
		}()
		for out := range pending {
			b := <-out
			_, _ = bw.Write(b)
			select {
			case free <- b:
			default:
			}
		}
	}
	return finishDocument(bw, n, after)
}
