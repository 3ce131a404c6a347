package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/bindguard/bindguard/internal/probe"
	"github.com/bindguard/bindguard/internal/text"
)

// SchemaProbe names the version of the probe document, `bindguard probe --format json`.
const SchemaProbe = "bindguard.probe.v1"

// ProbeDoc is the JSON view of a probe run (schema bindguard.probe.v1): what a vantage reached
// on a target, judged by the policy. Fields are only ever added within a schema version.
type ProbeDoc struct {
	Schema      string    `json:"schema"`
	GeneratedAt time.Time `json:"generated_at"`
	Target      string    `json:"target"`
	Scope       string    `json:"scope"`
	// Vantage is the network namespace probed from ("" is bindguard's own).
	Vantage   string   `json:"vantage"`
	Addresses []string `json:"addresses"`
	// Verdict is "violation" when any result is one, else "ok".
	Verdict    string        `json:"verdict"`
	Probes     int           `json:"probes"`
	Violations int           `json:"violations"`
	Results    []ProbeResult `json:"results"`
	// Undeclared counts the undeclared ports probed and not open, by state; they are not listed.
	Undeclared map[string]int `json:"undeclared"`
}

// ProbeResult is one (address, protocol, port) probed.
type ProbeResult struct {
	// Service is the declared service, "" for an undeclared port found open (unexpected).
	Service  string `json:"service"`
	Access   string `json:"access,omitempty"`
	Protocol string `json:"protocol"`
	// Address is the target address probed, IPv4 or IPv6.
	Address string `json:"address"`
	Port    uint16 `json:"port"`
	// Source is the vantage's address the verdict was judged by.
	Source string `json:"source"`
	// State is open, closed, filtered or open|filtered.
	State string `json:"state"`
	// Verdict is ok or violation.
	Verdict string `json:"verdict"`
	Reason  string `json:"reason"`
	// Contradiction marks an allow-list service reached from outside its allow list: the
	// audit, which judges binds, can call it valid.
	Contradiction bool `json:"contradiction"`
}

// NewProbeDoc builds the document of a probe run.
func NewProbeDoc(r *probe.Report, at time.Time) ProbeDoc {
	d := ProbeDoc{
		Schema: SchemaProbe, GeneratedAt: at.UTC(), Target: r.Target, Scope: r.Scope, Vantage: r.Netns,
		Verdict: string(probe.OK), Probes: r.Probes, Violations: r.Violations(),
		Addresses: []string{}, Results: []ProbeResult{}, Undeclared: map[string]int{},
	}
	if d.Violations > 0 {
		d.Verdict = string(probe.Violation)
	}
	for _, a := range r.Addresses {
		d.Addresses = append(d.Addresses, a.String())
	}
	for st, n := range r.Undeclared {
		d.Undeclared[string(st)] = n
	}
	for _, res := range r.Results {
		src := ""
		if res.Source.IsValid() {
			src = res.Source.String()
		}
		d.Results = append(d.Results, ProbeResult{
			Service: res.Service, Access: string(res.Access), Protocol: string(res.Protocol),
			Address: res.Address.String(), Port: res.Port, Source: src, State: string(res.State),
			Verdict: string(res.Verdict), Reason: res.Reason, Contradiction: res.Contradiction,
		})
	}
	return d
}

// Encode writes the document as two-space indented JSON.
func (d ProbeDoc) Encode(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(d)
}

// WriteProbeTable writes the probe document as a table: a header line, then one row per
// result.
func WriteProbeTable(w io.Writer, d ProbeDoc) error {
	vantage := d.Vantage
	if vantage == "" {
		vantage = "this host"
	}
	if _, err := fmt.Fprintf(w, "bindguard probe of %s (scope %s) from %s at %s\n%s   %d probes   %d violations\n\n",
		text.Sanitize(d.Target, '?'), d.Scope, text.Sanitize(vantage, '?'), d.GeneratedAt.Format(time.RFC3339), d.Verdict, d.Probes, d.Violations); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERDICT\tPROTO\tADDRESS\tPORT\tSTATE\tSERVICE\tSOURCE\tREASON")
	for _, r := range d.Results {
		svc := r.Service
		if svc == "" {
			svc = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Verdict, r.Protocol, r.Address, strconv.Itoa(int(r.Port)), r.State, svc, r.Source, r.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if n := len(d.Undeclared); n > 0 {
		_, err := fmt.Fprintf(w, "\nundeclared ports not open: %s\n", undeclaredWords(d.Undeclared))
		return err
	}
	return nil
}

func undeclaredWords(m map[string]int) string {
	out := ""
	for _, st := range []probe.State{probe.Closed, probe.Filtered, probe.OpenFiltered} {
		if n := m[string(st)]; n > 0 {
			if out != "" {
				out += ", "
			}
			out += fmt.Sprintf("%d %s", n, st)
		}
	}
	return out
}
