package report

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bindguard/bindguard/internal/audit"
)

// ANSI colours for severities.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
	ansiGreen  = "\x1b[32m"
)

func severityColour(s audit.Severity) string {
	switch s {
	case audit.Critical:
		return ansiBold + ansiRed
	case audit.High:
		return ansiRed
	case audit.Medium:
		return ansiYellow
	case audit.Low:
		return ansiCyan
	}
	return ansiGreen
}

// Table writes the report for people: a header with the host's score (and, when the audit is
// incomplete, what it could not see), then, namespace by namespace when there are several
// (each with its scope and score), the findings grouped by status (invalid, unexpected,
// missing, valid), worst first, then notes and warnings.
func Table(w io.Writer, m Meta, r *audit.Report, color bool) error {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return code + s + ansiReset
	}
	scorePaint := func(score int) string {
		c := ansiGreen
		switch {
		case score < 50:
			c = ansiBold + ansiRed
		case score < 100:
			c = ansiYellow
		}
		return paint(c, fmt.Sprintf("%d/100", score))
	}
	ew := &errWriter{w: w}
	ew.printf("bindguard audit of %s at %s against %s\n", m.Host, m.Time.UTC().Format(time.RFC3339), m.Policy)
	if !r.Complete {
		ew.printf("%s: this audit could not see everything:\n", paint(ansiBold+ansiRed, "INCOMPLETE"))
		for _, u := range r.Unseen {
			ew.printf("  - %s\n", u)
		}
	}
	perNS := len(r.Namespaces) > 1
	rule := ""
	if perNS {
		rule = fmt.Sprintf(" (the lowest of %d namespaces)", len(r.Namespaces))
	}
	ew.printf("score %s%s   invalid %d   unexpected %d   missing %d   valid %d\n",
		scorePaint(r.Score), rule, r.Summary.Invalid, r.Summary.Unexpected, r.Summary.Missing, r.Summary.Valid)
	if !perNS {
		statusGroups(ew, r.Findings, r.Summary, color, paint)
	} else {
		for _, n := range r.Namespaces {
			ew.printf("\n== netns %s", n.Label)
			var about []string
			if n.Container != "" && n.Container != n.Label {
				about = append(about, "container "+n.Container)
			}
			scope := "scope " + n.Scope
			if !n.Matched {
				scope = "no scope names it: judged by the host's services"
			}
			about = append(about, scope)
			ew.printf(" (%s): score %s   invalid %d   unexpected %d   missing %d   valid %d\n",
				strings.Join(about, ", "), scorePaint(n.Score), n.Summary.Invalid, n.Summary.Unexpected, n.Summary.Missing, n.Summary.Valid)
			var fs []audit.Finding
			for _, f := range r.Findings {
				if f.Netns == n.Label {
					fs = append(fs, f)
				}
			}
			if len(fs) == 0 {
				ew.printf("  nothing listens, and its scope declares nothing\n")
			}
			statusGroups(ew, fs, n.Summary, color, paint)
		}
	}
	if len(r.Findings) == 0 && !perNS {
		ew.printf("\nnothing listens, and the policy declares nothing\n")
	}
	for _, n := range r.Notes {
		ew.printf("\nnote: %s\n", n)
	}
	for _, wn := range warnings(m, r) {
		ew.printf("warning: %s\n", wn)
	}
	return ew.err
}

// statusGroups writes findings grouped by status, a table each.
func statusGroups(ew *errWriter, findings []audit.Finding, sum audit.Summary, color bool, paint func(code, s string) string) {
	for _, st := range audit.Statuses() {
		n := sum.Count(st)
		if n == 0 {
			continue
		}
		ew.printf("\n%s (%d)\n", strings.ToUpper(string(st)), n)
		// The columns are laid out without colour, and the severity painted afterwards:
		// tabwriter would count escape codes (of different lengths per severity) as text.
		var laid bytes.Buffer
		tw := tabwriter.NewWriter(&laid, 0, 0, 2, ' ', 0)
		var sevs []audit.Severity
		cols := []string{"SEVERITY", "PROTO", "LOCAL ADDRESS", "SERVICE", "PROCESS", "REASON"}
		_, _ = fmt.Fprintln(tw, "  "+strings.Join(cols, "\t"))
		for _, f := range findings {
			if f.Status != st {
				continue
			}
			sevs = append(sevs, f.Severity)
			row := []string{f.Severity.String(), string(f.Protocol), local(f), dash(f.ServiceName()), dash(process(f)), f.Reason}
			_, _ = fmt.Fprintln(tw, "  "+strings.Join(row, "\t"))
		}
		_ = tw.Flush()
		for i, line := range strings.SplitAfter(laid.String(), "\n") {
			if i == 0 || i > len(sevs) || !color {
				ew.printf("%s", line)
				continue
			}
			sev := sevs[i-1].String()
			rest := strings.TrimPrefix(line, "  "+sev)
			ew.printf("  %s%s", paint(severityColour(sevs[i-1]), sev), rest)
		}
	}
}

func local(f audit.Finding) string {
	if f.Actual == nil {
		return fmt.Sprintf("%s:%d", f.Expected.Address, f.Expected.Port)
	}
	if strings.Contains(f.Actual.Address, ":") {
		return fmt.Sprintf("[%s]:%d", f.Actual.Address, f.Actual.Port)
	}
	return fmt.Sprintf("%s:%d", f.Actual.Address, f.Actual.Port)
}

func process(f audit.Finding) string {
	if f.Actual == nil || f.Actual.Process == nil {
		return ""
	}
	return fmt.Sprintf("%s/%d", f.Actual.Process.Name, f.Actual.Process.PID)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// errWriter remembers the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, a ...any) { _, _ = fmt.Fprintf(e, format, a...) }
