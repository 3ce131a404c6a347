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

// Table writes the report for people: a header with the score, then the findings grouped by
// status (invalid, unexpected, missing, valid), worst first, then notes and warnings.
func Table(w io.Writer, m Meta, r *audit.Report, color bool) error {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return code + s + ansiReset
	}
	ew := &errWriter{w: w}
	ew.printf("bindguard audit of %s at %s against %s\n", m.Host, m.Time.UTC().Format(time.RFC3339), m.Policy)
	scoreColour := ansiGreen
	switch {
	case r.Score < 50:
		scoreColour = ansiBold + ansiRed
	case r.Score < 100:
		scoreColour = ansiYellow
	}
	ew.printf("score %s   invalid %d   unexpected %d   missing %d   valid %d\n",
		paint(scoreColour, fmt.Sprintf("%d/100", r.Score)), r.Summary.Invalid, r.Summary.Unexpected, r.Summary.Missing, r.Summary.Valid)
	showNetns := len(m.Namespaces) > 1
	for _, st := range audit.Statuses() {
		n := r.Summary.Count(st)
		if n == 0 {
			continue
		}
		ew.printf("\n%s (%d)\n", strings.ToUpper(string(st)), n)
		// The columns are laid out without colour, and the severity painted afterwards:
		// tabwriter would count escape codes (of different lengths per severity) as text.
		var laid bytes.Buffer
		tw := tabwriter.NewWriter(&laid, 0, 0, 2, ' ', 0)
		var sevs []audit.Severity
		cols := []string{"SEVERITY", "PROTO", "LOCAL ADDRESS"}
		if showNetns {
			cols = append(cols, "NETNS")
		}
		cols = append(cols, "SERVICE", "PROCESS", "REASON")
		_, _ = fmt.Fprintln(tw, "  "+strings.Join(cols, "\t"))
		for _, f := range r.Findings {
			if f.Status != st {
				continue
			}
			sevs = append(sevs, f.Severity)
			row := []string{f.Severity.String(), string(f.Protocol), local(f)}
			if showNetns {
				row = append(row, dash(netns(f)))
			}
			row = append(row, dash(f.ServiceName()), dash(process(f)), f.Reason)
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
	if len(r.Findings) == 0 {
		ew.printf("\nnothing listens, and the policy declares nothing\n")
	}
	for _, n := range r.Notes {
		ew.printf("\nnote: %s\n", n)
	}
	for _, wn := range m.Warnings {
		ew.printf("warning: %s\n", wn)
	}
	return ew.err
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

func netns(f audit.Finding) string {
	if f.Actual == nil {
		return ""
	}
	return f.Actual.Netns
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
