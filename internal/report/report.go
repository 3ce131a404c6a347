// Package report renders an audit report: a table for people (grouped by status, worst first,
// colour only when asked), versioned JSON (bindguard.audit.v1), Prometheus text exposition and
// zabbix_sender input with low-level discovery.
//
// It owns every versioned document bindguard writes and reads: the audit (bindguard.audit.v1),
// the drift events' envelope (bindguard.events.v1), the Zabbix values (bindguard.zabbix.v1)
// and the policy view (bindguard.policy.v1), and the one Zabbix key scheme (zabbix.go).
package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/bindguard/bindguard/internal/audit"
)

// SchemaAudit names the JSON document's version.
const SchemaAudit = "bindguard.audit.v1"

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

// Document is the JSON form of a report (schema bindguard.audit.v1). Fields are only ever
// added within a schema version.
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

// NewDocument builds the JSON document of a report. Findings is nil when there are none; JSON
// writes it as [].
func NewDocument(m Meta, r *audit.Report) Document {
	return Document{
		Schema: SchemaAudit, Host: m.Host, Time: m.Time.UTC().Format(time.RFC3339), Policy: m.Policy,
		Score: r.Score, Summary: r.Summary, Findings: r.Findings,
		Namespaces: nonNil(m.Namespaces), Notes: nonNil(r.Notes), Warnings: nonNil(m.Warnings),
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// JSON writes the report as one indented JSON document. Findings are encoded one at a time,
// so memory stays flat however many sockets listen.
func JSON(w io.Writer, m Meta, r *audit.Report) error {
	doc := NewDocument(m, r)
	findings := doc.Findings
	doc.Findings = nil
	head, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	// Splice the findings in where the empty list was encoded.
	const marker = "\n  \"findings\": null,"
	i := bytes.Index(head, []byte(marker))
	if i < 0 {
		return fmt.Errorf("report: findings placeholder not found")
	}
	// bufio.Writer errors are sticky: Flush returns the first.
	bw := bufio.NewWriterSize(w, 64<<10)
	_, _ = bw.Write(head[:i])
	_, _ = bw.WriteString("\n  \"findings\": [")
	for k := range findings {
		b, err := json.MarshalIndent(&findings[k], "    ", "  ")
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		if k > 0 {
			_ = bw.WriteByte(',')
		}
		_, _ = bw.WriteString("\n    ")
		_, _ = bw.Write(b)
	}
	if len(findings) > 0 {
		_, _ = bw.WriteString("\n  ")
	}
	_, _ = bw.WriteString("],")
	_, _ = bw.Write(head[i+len(marker):])
	_ = bw.WriteByte('\n')
	return bw.Flush()
}
