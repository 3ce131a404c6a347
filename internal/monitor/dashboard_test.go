package monitor

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/html"

	"github.com/bindguard/bindguard/internal/kernel"
	"github.com/bindguard/bindguard/internal/report"
)

func TestScoreHistoryStore(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	pt := func(min, score int) ScorePoint {
		return ScorePoint{Time: t0.Add(time.Duration(min) * time.Minute), Score: score, Namespaces: map[string]int{"host": score}}
	}
	record := func(p ScorePoint, keep int, before time.Time) bool {
		t.Helper()
		w, err := s.RecordScore(p, keep, before)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	scores := func(since time.Time) []int {
		t.Helper()
		ps, err := s.Scores(since)
		if err != nil {
			t.Fatal(err)
		}
		var out []int
		for _, p := range ps {
			out = append(out, p.Score)
		}
		return out
	}
	if !record(pt(0, 100), 5, time.Time{}) {
		t.Fatal("the first point was not written")
	}
	if record(pt(1, 100), 5, time.Time{}) {
		t.Error("an unchanged score was written")
	}
	// Another namespace's score alone is a change.
	two := pt(2, 100)
	two.Namespaces["ct1"] = 40
	if !record(two, 5, time.Time{}) {
		t.Error("a new namespace's score was not written")
	}
	for i, sc := range []int{80, 60, 40, 20} {
		record(pt(3+i, sc), 5, time.Time{})
	}
	// keep 5: the oldest (100 at minute 0) is gone.
	if d := cmp.Diff([]int{100, 80, 60, 40, 20}, scores(time.Time{})); d != "" {
		t.Errorf("after 6 points, keep 5 (-want +got):\n%s", d)
	}
	// since: led by the point in force when the window opens.
	if d := cmp.Diff([]int{60, 40, 20}, scores(t0.Add(4*time.Minute+30*time.Second))); d != "" {
		t.Errorf("since 4m30s (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]int{20}, scores(t0.Add(time.Hour))); d != "" {
		t.Errorf("since after the newest: the newest is in force (-want +got):\n%s", d)
	}
	// Age: points before `before` go, the newest stays even when it is older.
	record(pt(10, 10), 100, t0.Add(time.Hour))
	if d := cmp.Diff([]int{10}, scores(time.Time{})); d != "" {
		t.Errorf("all older than the retention (-want +got):\n%s", d)
	}
	// A clock that went back keeps the order.
	record(pt(5, 30), 100, time.Time{})
	if d := cmp.Diff([]int{10, 30}, scores(time.Time{})); d != "" {
		t.Errorf("clock went back (-want +got):\n%s", d)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A restart: the history is there and the newest is known (an equal point is not written).
	s, err = OpenStore(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if d := cmp.Diff([]int{10, 30}, scores(time.Time{})); d != "" {
		t.Errorf("after reopening (-want +got):\n%s", d)
	}
	if record(pt(20, 30), 100, time.Time{}) {
		t.Error("after a restart an unchanged score was written again")
	}
}

// The monitor records a point when an audit changes a score, none when it does not, and the
// history survives a restart of the monitor on the same store.
func TestScoreHistoryFromAudits(t *testing.T) {
	r := newRig(t, policyRedisWeb, func(c *Config) { c.Retention = 24 * time.Hour })
	r.obs.set(tcp("127.0.0.1", 6379, 10, "redis"), tcp("127.0.0.1", 8080, 11, "web"))
	r.audit(t)
	r.clock.advance(time.Minute)
	r.audit(t)
	r.obs.set(tcp("0.0.0.0", 6379, 10, "redis"), tcp("127.0.0.1", 8080, 11, "web"))
	r.clock.advance(time.Minute)
	r.audit(t)
	ps, err := r.m.Scores(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Score != 100 || ps[1].Score >= 100 || ps[1].Namespaces["host"] != ps[1].Score {
		t.Fatalf("score history %+v: want 100 then lower", ps)
	}
	if !ps[1].Time.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("second point at %v, want the third audit's %v", ps[1].Time, t0.Add(2*time.Minute))
	}
	if err := r.store.Close(); err != nil {
		t.Fatal(err)
	}
	store, err := OpenStore(r.dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	m, err := New(Config{Interval: 10 * time.Second, Observer: r.obs, Host: "web1", Now: r.clock.Now, PolicyPath: r.policy}, store)
	if err != nil {
		t.Fatal(err)
	}
	r.clock.advance(time.Minute)
	if err := m.Audit(t.Context()); err != nil {
		t.Fatal(err)
	}
	after, err := m.Scores(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(ps, after); d != "" {
		t.Errorf("history after a restart and an unchanged audit (-want +got):\n%s", d)
	}
}

// node helpers over x/net/html.
func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func walk(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

// pageRows parses the page and returns its matrix rows (data-service -> data-status, with the
// row's JSON link), failing on anything the CSP would block: inline script or style, event
// handler attributes, javascript: URLs, or anything loaded from elsewhere.
type pageRow struct{ Netns, Service, Status, JSON string }

func pageRows(t *testing.T, body string) []pageRow {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var rows []pageRow
	var netns string
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		for _, a := range n.Attr {
			if a.Key == "style" || strings.HasPrefix(a.Key, "on") {
				t.Errorf("<%s %s=%q>: inline style or handler, which the CSP refuses", n.Data, a.Key, a.Val)
			}
			if (a.Key == "href" || a.Key == "src") && (strings.Contains(a.Val, "//") || strings.HasPrefix(a.Val, "/") || strings.Contains(a.Val, ":")) {
				t.Errorf("<%s %s=%q>: not a relative link to this server", n.Data, a.Key, a.Val)
			}
		}
		switch n.Data {
		case "style":
			t.Error("an inline <style> element")
		case "script":
			if _, ok := attr(n, "src"); !ok || n.FirstChild != nil {
				t.Error("an inline <script>")
			}
		case "section":
			netns, _ = attr(n, "data-netns")
		case "tr":
			if svc, ok := attr(n, "data-service"); ok {
				st, _ := attr(n, "data-status")
				row := pageRow{Netns: netns, Service: svc, Status: st}
				walk(n, func(c *html.Node) {
					if cl, _ := attr(c, "class"); c.Data == "a" && cl == "json" {
						row.JSON, _ = attr(c, "href")
					}
				})
				rows = append(rows, row)
			}
		}
	})
	return rows
}

func TestDashboardPage(t *testing.T) {
	r := newRig(t, policyWithStray, nil)
	h := r.m.HandlerWith(HandlerOptions{Version: "1.2.3"})
	// Before the first audit the page says so.
	w := get(t, h, "/")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "No audit yet") {
		t.Fatalf("before any audit: %d %s", w.Code, w.Body)
	}
	hostile := tcp("0.0.0.0", 7777, 12, `<script>alert(1)</script>`)
	r.obs.set(tcp("127.0.0.1", 6379, 10, "redis"), tcp("0.0.0.0", 8080, 11, "web"), hostile)
	r.audit(t)
	w = get(t, h, "/")
	if w.Code != http.StatusOK {
		t.Fatalf("/: %d", w.Code)
	}
	if got := w.Header().Get("Content-Security-Policy"); got != DashboardCSP {
		t.Errorf("CSP %q, want %q", got, DashboardCSP)
	}
	if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q", got)
	}
	body := w.Body.String()
	if strings.Contains(body, "<script>alert") {
		t.Error("a process name reached the page unescaped")
	}
	rows := pageRows(t, body)
	var doc report.DocumentV2
	if err := json.Unmarshal(get(t, h, "/api/v2/audit").Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	var want []pageRow
	for _, r := range auditRows(doc) {
		want = append(want, pageRow{Netns: r.Netns, Service: r.Service, Status: r.Status})
	}
	strip := func(rs []pageRow) []pageRow {
		out := make([]pageRow, len(rs))
		for i, r := range rs {
			out[i] = pageRow{Netns: r.Netns, Service: r.Service, Status: r.Status}
		}
		return out
	}
	if d := cmp.Diff(want, strip(rows)); d != "" {
		t.Errorf("the page's matrix against /api/v2/audit (-want +got):\n%s", d)
	}
	for _, svc := range []string{"redis", "web", "stray"} {
		found := false
		for _, r := range rows {
			found = found || r.Service == svc
		}
		if !found {
			t.Errorf("service %s of the policy is not on the page", svc)
		}
	}
	// Each row's JSON link answers that finding, as the audit document has it.
	for i, row := range rows {
		w := get(t, h, "/"+row.JSON)
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s", row.JSON, w.Code, w.Body)
			continue
		}
		var got, exp any
		_ = json.Unmarshal(w.Body.Bytes(), &got)
		b, _ := json.Marshal(doc.Findings[i])
		_ = json.Unmarshal(b, &exp)
		if d := cmp.Diff(exp, got); d != "" {
			t.Errorf("%s (-audit +finding):\n%s", row.JSON, d)
		}
	}
	// The live part is the same matrix, alone.
	live := get(t, h, "/dashboard/live")
	if live.Code != http.StatusOK || strings.Contains(live.Body.String(), "<html") {
		t.Errorf("/dashboard/live: %d, a whole page: %v", live.Code, strings.Contains(live.Body.String(), "<html"))
	}
	if d := cmp.Diff(strip(rows), strip(pageRows(t, live.Body.String()))); d != "" {
		t.Errorf("live part against the page (-page +live):\n%s", d)
	}
	for _, asset := range []struct{ path, ctype string }{
		{"/static/dashboard.js", "text/javascript; charset=utf-8"},
		{"/static/dashboard.css", "text/css; charset=utf-8"},
		{"/static/favicon.svg", "image/svg+xml"},
	} {
		w := get(t, h, asset.path)
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != asset.ctype || w.Body.Len() == 0 {
			t.Errorf("%s: %d %q %d bytes", asset.path, w.Code, w.Header().Get("Content-Type"), w.Body.Len())
		}
	}
	for _, p := range []string{"/static/nothing.js", "/static/dashboard", "/static/..%2fdashboard.html", "/static/"} {
		if w := get(t, h, p); w.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, w.Code)
		}
	}
}

func TestDashboardFilters(t *testing.T) {
	r := newRig(t, policyRedisWeb, nil)
	h := r.m.Handler()
	r.obs.set(tcp("127.0.0.1", 6379, 10, "redis"), tcp("0.0.0.0", 8080, 11, "web"), tcp("0.0.0.0", 9000, 12, "stray"))
	r.audit(t)
	statuses := func(q string) map[string]string {
		t.Helper()
		w := get(t, h, "/?"+q)
		if w.Code != http.StatusOK {
			t.Fatalf("?%s: %d %s", q, w.Code, w.Body)
		}
		out := map[string]string{}
		for _, row := range pageRows(t, w.Body.String()) {
			out[row.Service] = row.Status
		}
		return out
	}
	for _, tc := range []struct {
		q    string
		want map[string]string
	}{
		{"", map[string]string{"redis": "valid", "web": "invalid", "(undeclared)": "unexpected"}},
		{"status=violations", map[string]string{"web": "invalid", "(undeclared)": "unexpected"}},
		{"status=valid", map[string]string{"redis": "valid"}},
		{"status=invalid&ns=host", map[string]string{"web": "invalid"}},
		{"severity=low", map[string]string{"web": "invalid", "(undeclared)": "unexpected"}},
		{"ns=elsewhere", map[string]string{}},
	} {
		if d := cmp.Diff(tc.want, statuses(tc.q)); d != "" {
			t.Errorf("?%s (-want +got):\n%s", tc.q, d)
		}
	}
	for _, tc := range []struct{ q, msg string }{
		{"severity=bogus", "query parameter severity"},
		{"status=broken", `unknown status "broken"`},
		{"status=valid&status=invalid", "status is given 2 times"},
		{"ns=" + strings.Repeat("x", 300), "longer than any namespace label"},
	} {
		for _, p := range []string{"/?", "/dashboard/live?"} {
			w := get(t, h, p+tc.q)
			if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), tc.msg) {
				t.Errorf("%s%s: %d %q, want 400 with %q", p, tc.q, w.Code, w.Body, tc.msg)
			}
		}
	}
	for _, tc := range []struct {
		q    url.Values
		code int
	}{
		{url.Values{"netns": {"host"}, "protocol": {"tcp"}, "port": {"6379"}, "address": {"127.0.0.1"}}, 200},
		{url.Values{"netns": {"host"}, "protocol": {"tcp"}, "port": {"6379"}, "address": {"127.0.0.2"}}, 404},
		{url.Values{"netns": {"host"}, "protocol": {"tcp"}, "port": {"70000"}, "address": {"127.0.0.1"}}, 400},
		{url.Values{"netns": {"host"}, "protocol": {"tcp"}, "port": {"6379"}}, 400},
		{url.Values{"netns": {"host"}, "protocol": {"tcp"}, "port": {"6379"}, "address": {"127.0.0.1"}, "service": {"redis"}}, 400},
		{url.Values{"protocol": {"tcp"}, "port": {"6379"}, "address": {"127.0.0.1"}}, 400},
	} {
		if w := get(t, h, "/api/v2/finding?"+tc.q.Encode()); w.Code != tc.code {
			t.Errorf("/api/v2/finding?%s: %d, want %d (%s)", tc.q.Encode(), w.Code, tc.code, w.Body)
		}
	}
}

// bindguard_events_total counts the stored drift events by kind and severity.
func TestEventsTotal(t *testing.T) {
	r := newRig(t, policyRedisWeb, nil)
	h := r.m.Handler()
	r.obs.set(tcp("127.0.0.1", 6379, 10, "redis"))
	r.audit(t)
	r.obs.set(tcp("0.0.0.0", 6379, 10, "redis"), tcp("0.0.0.0", 9000, 12, "stray"))
	r.audit(t)
	want := map[string]float64{}
	for _, e := range r.stored(t) {
		want[e.Kind+"/"+e.Severity]++
	}
	got := map[string]float64{}
	for _, s := range metrics(t, h) {
		if s.name == "bindguard_events_total" {
			got[s.labels["kind"]+"/"+s.labels["severity"]] = s.value
		}
	}
	if len(want) < 2 {
		t.Fatalf("the scripted audits made too few kinds of events: %v", want)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("bindguard_events_total against the stored events (-want +got):\n%s", d)
	}
}

// browserRow is a matrix row as the browser test reads it, or as the API's finding makes it.
type browserRow struct {
	Netns   string `json:"netns"`
	Service string `json:"service"`
	Status  string `json:"status"`
	Key     string `json:"key"`
}

// auditRows is a v2 document's findings as the matrix's rows, in its order.
func auditRows(doc report.DocumentV2) []browserRow {
	var out []browserRow
	for _, f := range doc.Findings {
		svc := f.ServiceName()
		if svc == "" {
			svc = "(undeclared)"
		}
		f.Finding.Netns = f.Netns // the document writes it beside the finding
		out = append(out, browserRow{Netns: f.Netns, Service: svc, Status: string(f.Status), Key: findingRef(&f.Finding).Encode()})
	}
	return out
}

// BenchmarkDashboardLive is the cost of one refresh of the page's live part (what each open
// page asks every RefreshSeconds) with a store of 10,000 events and 1,000 score points.
func BenchmarkDashboardLive(b *testing.B) {
	dir := b.TempDir()
	store, err := OpenStore(dir, false)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	obs := &fakeObserver{}
	clock := &fakeClock{t: t0}
	pol := filepath.Join(b.TempDir(), "bindguard.yaml")
	if err := os.WriteFile(pol, []byte(policyRedisWeb), 0o600); err != nil {
		b.Fatal(err)
	}
	m, err := New(Config{Interval: 10 * time.Second, Observer: obs, Host: "web1", Now: clock.Now, PolicyPath: pol}, store)
	if err != nil {
		b.Fatal(err)
	}
	obs.set(tcp("127.0.0.1", 6379, 10, "redis"), tcp("0.0.0.0", 8080, 11, "web"), tcp("0.0.0.0", 9000, 12, "stray"))
	if err := m.Audit(context.Background()); err != nil {
		b.Fatal(err)
	}
	evs := make([]Event, 1000)
	for round := range 10 {
		for i := range evs {
			evs[i] = Event{Time: t0.Add(time.Duration(round*1000+i) * time.Second), Kind: KindAppeared, Netns: "host", Protocol: "tcp", Address: "0.0.0.0", Port: uint16(10000 + i), NewStatus: "unexpected", Severity: "high", Reason: "an unexpected listener"}
		}
		if _, err := store.Record(evs, nil); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 1000 {
		if _, err := store.RecordScore(ScorePoint{Time: t0.Add(time.Duration(i) * time.Minute), Score: i % 100, Namespaces: map[string]int{"host": i % 100}}, ScoreHistoryPoints, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	clock.advance(20 * time.Hour)
	h := m.Handler()
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/dashboard/live", nil))
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}

func TestStoreRecent(t *testing.T) {
	s, err := OpenStore(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var evs []Event
	for i := range 10 {
		evs = append(evs, Event{Time: t0.Add(time.Duration(i) * time.Minute), Kind: KindAppeared, Port: uint16(i)})
	}
	if _, err := s.Record(evs, nil); err != nil {
		t.Fatal(err)
	}
	ports := func(since time.Time, limit int) []uint16 {
		t.Helper()
		got, err := s.Recent(since, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []uint16
		for _, e := range got {
			out = append(out, e.Port)
		}
		return out
	}
	if d := cmp.Diff([]uint16{9, 8, 7}, ports(time.Time{}, 3)); d != "" {
		t.Errorf("newest 3 (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]uint16{9, 8, 7, 6}, ports(t0.Add(6*time.Minute), 100)); d != "" {
		t.Errorf("since minute 6 (-want +got):\n%s", d)
	}
}

// In kernel mode a score changed by a socket event is in the history at once, not at the next
// reconciliation (an hour away here).
func TestScoreHistoryKernelMode(t *testing.T) {
	k := startKernel(t, func(c *Config) { c.ReconcileInterval = time.Hour })
	waitUntil(t, "the first score point", func() bool { ps, _ := k.m.Scores(time.Time{}); return len(ps) == 1 })
	ps, _ := k.m.Scores(time.Time{})
	before := ps[0].Score
	k.send(t, kev(kernel.KindListen, 1, "0.0.0.0", 6379, 10, 77, t0))
	waitUntil(t, "a lower score in the history", func() bool {
		ps, _ := k.m.Scores(time.Time{})
		return len(ps) == 2 && ps[1].Score < before
	})
}
