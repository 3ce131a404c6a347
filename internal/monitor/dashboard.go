package monitor

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bindguard/bindguard/internal/audit"
)

// The dashboard at /: the latest audit per namespace (the binding matrix), each namespace's
// score over time from the store's history, its drift timeline and each finding's detail. The
// page is rendered whole on the server (it works without JavaScript); a small script re-reads
// its live part (GET dashboard/live with the same filters) every few seconds and swaps it in
// when it changed. Everything it loads comes from this server (DashboardCSP).

//go:embed web
var webFS embed.FS

var dashboardTmpl = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("").Funcs(template.FuncMap{
		"glyph": statusGlyph,
	}).ParseFS(webFS, "web/dashboard.html"))
})

// DashboardCSP is the page's Content-Security-Policy: its own script, style and images only,
// no inline script or style, requests to this server only, never framed.
const DashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// DashboardWindow is how far back the page's charts and timelines look.
const DashboardWindow = 24 * time.Hour

// DashboardEvents is how many drift events each namespace's timeline shows (the newest), out
// of the newest DashboardEventScan events of the window: a refresh decodes at most that many.
const (
	DashboardEvents    = 50
	DashboardEventScan = 2000
)

// RefreshSeconds is how often the page's script re-reads its live part.
const RefreshSeconds = 5

// dashFilter is the page's filters, from its query.
type dashFilter struct {
	NS       string         // a namespace label, "" for all
	Severity string         // the least severity shown, "" for all
	Status   string         // a status, "violations" (all but valid), "" for all
	least    audit.Severity // Severity parsed (parseFilter), so admits does not parse it per finding
}

var statusFilters = []string{"violations", string(audit.Invalid), string(audit.Unexpected), string(audit.Missing), string(audit.Valid)}

// parseFilter reads ns, severity and status; a value outside their vocabularies is an error
// naming the parameter.
func parseFilter(q url.Values) (dashFilter, error) {
	f := dashFilter{NS: q.Get("ns"), Severity: q.Get("severity"), Status: q.Get("status")}
	for _, name := range []string{"ns", "severity", "status"} {
		if len(q[name]) > 1 {
			return f, fmt.Errorf("query parameter %s is given %d times: give it once", name, len(q[name]))
		}
	}
	if f.Severity != "" {
		least, err := audit.ParseSeverity(f.Severity)
		if err != nil {
			return f, fmt.Errorf("query parameter severity: %w", err)
		}
		f.least = least
	}
	if f.Status != "" && !slices.Contains(statusFilters, f.Status) {
		return f, fmt.Errorf("query parameter status: unknown status %q (want one of %s)", f.Status, strings.Join(statusFilters, ", "))
	}
	if len(f.NS) > 256 {
		return f, fmt.Errorf("query parameter ns: %d bytes is longer than any namespace label", len(f.NS))
	}
	return f, nil
}

func (f dashFilter) admits(fd *audit.Finding) bool {
	if f.Severity != "" && fd.Severity < f.least {
		return false
	}
	switch f.Status {
	case "":
	case "violations":
		return fd.Status != audit.Valid
	default:
		return string(fd.Status) == f.Status
	}
	return true
}

// dashView is what the template renders.
type dashView struct {
	Version, Host, Policy, Time string
	Healthy                     bool
	Health                      string
	Score                       int
	HasReport                   bool
	Filter                      dashFilter
	NSOptions                   []string
	Severities                  []string
	Statuses                    []string
	Namespaces                  []nsView
	Warnings                    []string
	Refresh                     int
	// Digest names the live part's content: the script swaps the part in only when it changes.
	Digest string
}

type nsView struct {
	ID, Label, Container, Scope string
	Host, Matched               bool
	Score                       int
	Summary                     audit.Summary
	Rows                        []rowView
	Hidden                      int
	Chart                       chartView
	Events                      []eventView
}

type rowView struct {
	ID, Key, Service, Protocol, Declared, Listens, Owner, Status, Severity, Reason, JSON string
	Detail                                                                               []kv
}

type kv struct{ K, V string }

type eventView struct {
	Time, Kind, Service, Where, Change, Severity, Reason string
}

type chartView struct {
	Path              string // the SVG path of the score's steps in a 600x100 box
	Now, Low, High, N int
	From, To          string
	Changes           []kv
	Empty             bool
}

// statusGlyph is a status's shape, shown with its word (never colour alone).
func statusGlyph(status string) string {
	switch status {
	case string(audit.Valid):
		return "✔"
	case string(audit.Invalid):
		return "✖"
	case string(audit.Unexpected):
		return "▲"
	case string(audit.Missing):
		return "○"
	}
	return "•"
}

// findingRef is the query that names one finding in GET /api/v2/finding: its namespace,
// protocol and port, with its address for a socket or its service for a missing one.
func findingRef(f *audit.Finding) url.Values {
	q := url.Values{"netns": {f.Netns}, "protocol": {string(f.Protocol)}}
	if a := f.Actual; a != nil {
		q.Set("address", a.Address)
		q.Set("port", strconv.Itoa(int(a.Port)))
	} else {
		q.Set("service", f.ServiceName())
		if f.Expected != nil {
			q.Set("port", strconv.Itoa(int(f.Expected.Port)))
		}
	}
	return q
}

// lookupFinding finds the finding q names (findingRef) in r.
func lookupFinding(r *audit.Report, q url.Values) (*audit.Finding, error) {
	for _, name := range []string{"netns", "protocol", "port"} {
		if q.Get(name) == "" {
			return nil, fmt.Errorf("query parameter %s is missing (want netns, protocol, port and address or service)", name)
		}
	}
	port, err := strconv.ParseUint(q.Get("port"), 10, 16)
	if err != nil {
		return nil, fmt.Errorf("query parameter port %q: want a number from 0 to 65535", q.Get("port"))
	}
	addr, svc := q.Get("address"), q.Get("service")
	if (addr == "") == (svc == "") {
		return nil, fmt.Errorf("give one of address (a socket's finding) or service (a missing service's)")
	}
	for i := range r.Findings {
		f := &r.Findings[i]
		if f.Netns != q.Get("netns") || string(f.Protocol) != q.Get("protocol") {
			continue
		}
		if a := f.Actual; a != nil && addr != "" && a.Address == addr && uint64(a.Port) == port {
			return f, nil
		}
		if f.Actual == nil && svc != "" && f.ServiceName() == svc && f.Expected != nil && uint64(f.Expected.Port) == port {
			return f, nil
		}
	}
	return nil, nil
}

func htmlID(prefix, s string) string {
	h := sha256.Sum256([]byte(s))
	return prefix + hex.EncodeToString(h[:6])
}

func rowOf(f *audit.Finding) rowView {
	r := rowView{Service: f.ServiceName(), Protocol: string(f.Protocol), Status: string(f.Status), Severity: f.Severity.String(), Reason: f.Reason}
	ref := findingRef(f)
	r.Key = ref.Encode()
	r.ID = htmlID("f-", r.Key)
	r.JSON = "api/v2/finding?" + r.Key
	if r.Service == "" {
		r.Service = "(undeclared)"
	}
	r.Declared = "not declared"
	if e := f.Expected; e != nil {
		r.Declared = fmt.Sprintf("%s %s port %d (%s)", e.Address, f.Protocol, e.Port, e.Access)
		r.Detail = append(r.Detail, kv{"access", string(e.Access)}, kv{"declared address", e.Address}, kv{"declared port", strconv.Itoa(int(e.Port))})
	}
	r.Listens, r.Owner = "nothing listens", "—"
	if a := f.Actual; a != nil {
		r.Listens = fmt.Sprintf("%s %s (%s)", net.JoinHostPort(a.Address, strconv.Itoa(int(a.Port))), f.Protocol, a.Exposure)
		r.Detail = append(r.Detail, kv{"address", a.Address}, kv{"port", strconv.Itoa(int(a.Port))}, kv{"family", string(a.Family)}, kv{"exposure", string(a.Exposure)})
		if a.V6Only != nil {
			r.Detail = append(r.Detail, kv{"v6only", strconv.FormatBool(*a.V6Only)})
		}
		r.Owner = "unknown"
		if p := a.Process; p != nil {
			r.Owner = fmt.Sprintf("%s (pid %d)", cmp.Or(p.Name, "?"), p.PID)
			r.Detail = append(r.Detail, kv{"process", p.Name}, kv{"pid", strconv.Itoa(p.PID)}, kv{"executable", p.Exe}, kv{"user", p.User})
			if p.Unit != "" {
				r.Owner += ", " + p.Unit
				r.Detail = append(r.Detail, kv{"unit", p.Unit})
			}
			if p.Container != "" {
				r.Detail = append(r.Detail, kv{"container", p.Container})
			}
		}
	}
	r.Detail = append(r.Detail, kv{"namespace", f.Netns}, kv{"reason", f.Reason})
	return r
}

// chartOf draws one namespace's score over [from, to] as steps (the score holds until it
// changes); points lacks the namespace where it was not audited.
func chartOf(label string, points []ScorePoint, from, to time.Time) chartView {
	c := chartView{From: from.UTC().Format("2006-01-02 15:04"), To: to.UTC().Format("15:04:05"), Low: 100, High: 0}
	span := to.Sub(from).Seconds()
	if span <= 0 {
		span = 1
	}
	x := func(t time.Time) float64 {
		if t.Before(from) {
			t = from
		}
		return 600 * t.Sub(from).Seconds() / span
	}
	y := func(s int) int { return 100 - max(0, min(100, s)) }
	var b strings.Builder
	on := false
	for i, p := range points {
		s, ok := p.Namespaces[label]
		end := to
		if i+1 < len(points) {
			end = points[i+1].Time
		}
		if !ok {
			on = false
			continue
		}
		if !on {
			fmt.Fprintf(&b, "M%.1f %d", x(p.Time), y(s))
			on = true
		} else {
			fmt.Fprintf(&b, "V%d", y(s))
		}
		fmt.Fprintf(&b, "H%.1f", x(end))
		c.Now, c.N = s, c.N+1
		c.Low, c.High = min(c.Low, s), max(c.High, s)
		c.Changes = append(c.Changes, kv{p.Time.UTC().Format(time.RFC3339), strconv.Itoa(s)})
	}
	c.Path, c.Empty = b.String(), c.N == 0
	// Newest first, at most 20: the table is the chart's words.
	slices.Reverse(c.Changes)
	if len(c.Changes) > 20 {
		c.Changes = c.Changes[:20]
	}
	return c
}

func eventOf(e Event) eventView {
	v := eventView{Time: e.Time.UTC().Format("2006-01-02 15:04:05"), Kind: e.Kind, Service: cmp.Or(e.Service, "—"), Severity: e.Severity, Reason: e.Reason}
	if e.Address != "" || e.Port != 0 {
		v.Where = fmt.Sprintf("%s %s", net.JoinHostPort(e.Address, strconv.Itoa(int(e.Port))), e.Protocol)
	}
	switch {
	case e.OldStatus != "" && e.NewStatus != "":
		v.Change = e.OldStatus + " → " + e.NewStatus
	case e.NewStatus != "":
		v.Change = "→ " + e.NewStatus
	case e.OldStatus != "":
		v.Change = e.OldStatus + " → gone"
	}
	return v
}

// dashboard builds the page's view.
func (m *Monitor) dashboard(opts HandlerOptions, f dashFilter) (dashView, error) {
	now := m.now()
	v := dashView{Version: cmp.Or(opts.Version, "devel"), Filter: f, Refresh: RefreshSeconds, Statuses: statusFilters}
	for _, s := range slices.Backward(audit.Severities()) {
		v.Severities = append(v.Severities, s.String())
	}
	v.Healthy, v.Health = m.Health()
	rep, meta := m.Latest()
	v.Host, v.Policy = meta.Host, meta.Policy
	if rep == nil {
		v.Digest = "none"
		return v, nil
	}
	v.HasReport, v.Score, v.Time = true, rep.Score, meta.Time.UTC().Format(time.RFC3339)
	v.Warnings = append(append(v.Warnings, meta.Warnings...), rep.Warnings...)
	from := now.Add(-DashboardWindow)
	points, err := m.Scores(from)
	if err != nil {
		return v, err
	}
	events, err := m.store.Recent(from, DashboardEventScan) // newest first
	if err != nil {
		return v, err
	}
	if len(points) > 0 && points[0].Time.After(from) {
		from = points[0].Time
	}
	byNS := map[string][]*audit.Finding{}
	for i := range rep.Findings {
		byNS[rep.Findings[i].Netns] = append(byNS[rep.Findings[i].Netns], &rep.Findings[i])
	}
	for _, n := range rep.Namespaces {
		v.NSOptions = append(v.NSOptions, n.Label)
		if f.NS != "" && f.NS != n.Label {
			continue
		}
		nv := nsView{ID: htmlID("ns-", n.Label), Label: n.Label, Container: n.Container, Scope: n.Scope, Host: n.Host, Matched: n.Matched, Score: n.Score, Summary: n.Summary}
		for _, fd := range byNS[n.Label] {
			if !f.admits(fd) {
				nv.Hidden++
				continue
			}
			nv.Rows = append(nv.Rows, rowOf(fd))
		}
		nv.Chart = chartOf(n.Label, points, from, now)
		for _, e := range events {
			if e.Netns == n.Label || e.Kind == KindPolicyReloaded {
				nv.Events = append(nv.Events, eventOf(e))
				if len(nv.Events) == DashboardEvents {
					break
				}
			}
		}
		v.Namespaces = append(v.Namespaces, nv)
	}
	// The digest covers what the live part shows but its clock-driven chart edge: the script
	// swaps the part in when a finding, event or score changed.
	var d bytes.Buffer
	for _, n := range v.Namespaces {
		fmt.Fprintf(&d, "%s|%d|%v|%d|%v|%v\n", n.Label, n.Score, n.Rows, n.Hidden, n.Chart.Changes, n.Events)
	}
	fmt.Fprintf(&d, "%v|%v|%v|%s", v.Warnings, v.Healthy, v.Score, now.Truncate(time.Minute))
	h := sha256.Sum256(d.Bytes())
	v.Digest = hex.EncodeToString(h[:8])
	return v, nil
}

// pageHeaders are the page's (and its assets') security headers.
func pageHeaders(h http.Header, contentType string) {
	h.Set("Content-Type", contentType)
	h.Set("Content-Security-Policy", DashboardCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// handleDashboard serves the page (GET /) and its live part (GET /dashboard/live), and the
// embedded script, style sheet and icon under /static/.
func (m *Monitor) handleDashboard(mux *http.ServeMux, opts HandlerOptions) {
	render := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			f, err := parseFilter(r.URL.Query())
			if err != nil {
				pageHeaders(w.Header(), "text/plain; charset=utf-8")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintln(w, err)
				return
			}
			v, err := m.dashboard(opts, f)
			if err != nil {
				m.log.Error("dashboard", "error", err.Error())
				pageHeaders(w.Header(), "text/plain; charset=utf-8")
				w.WriteHeader(http.StatusInternalServerError)
				fmt.Fprintln(w, "reading the store failed")
				return
			}
			var b bytes.Buffer
			if err := dashboardTmpl().ExecuteTemplate(&b, name, v); err != nil {
				m.log.Error("dashboard template", "error", err.Error())
				http.Error(w, "rendering failed", http.StatusInternalServerError)
				return
			}
			pageHeaders(w.Header(), "text/html; charset=utf-8")
			_, _ = w.Write(b.Bytes())
		}
	}
	mux.HandleFunc("GET /{$}", render("page"))
	mux.HandleFunc("GET /dashboard/live", render("live"))
	static, _ := fs.Sub(webFS, "web/static")
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	mux.HandleFunc("GET /static/{file}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		ct, known := types[path.Ext(name)]
		b, err := fs.ReadFile(static, name)
		if !known || err != nil {
			http.NotFound(w, r)
			return
		}
		pageHeaders(w.Header(), ct)
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(b) // #nosec G705 -- one of the embedded files, served as its own type with nosniff
	})
}
