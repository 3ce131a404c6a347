package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/bindguard/bindguard/access"
	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/observe"
	"github.com/bindguard/bindguard/internal/proc"
	"github.com/bindguard/bindguard/internal/report"
	"github.com/bindguard/bindguard/policy"
)

// ScreenshotEnv, when set to a path, makes TestDashboardBrowser write its screenshot of the
// page there (make screenshot: docs/dashboard.png).
const ScreenshotEnv = "BINDGUARD_DASHBOARD_SCREENSHOT"

// dashPolicy is the browser test's policy, for the services in its namespace: redis valid,
// web bound wider than its class allows, postgres and metrics missing until the test starts
// postgres.
const dashPolicy = `version: 1
services:
  - {name: redis, port: 6379, address: 127.0.0.1, access: localhost_only}
  - {name: web, port: 8080, address: 127.0.0.1, access: proxy_only}
  - {name: postgres, port: 5432, address: 127.0.0.1, access: localhost_only}
  - {name: metrics, port: 9100, address: 0.0.0.0, access: public}
`

// realServe runs the monitor on a real observation of ns (sock_diag, /proc) and serves it
// through the front on a loopback port of the host, as serve does; it returns the base URL.
func realServe(t *testing.T, ns *netnstest.NS) (string, *Monitor) {
	t.Helper()
	pol := filepath.Join(t.TempDir(), "bindguard.yaml")
	writePolicy(t, pol, dashPolicy)
	store, err := OpenStore(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	m, err := New(Config{PolicyPath: pol, Interval: 300 * time.Millisecond, Retention: time.Hour, Host: "web1.example",
		Observer: HostObserver(observe.Options{Netns: ns.Name})}, store)
	if err != nil {
		t.Fatal(err)
	}
	// The guard is serve's own: its service on the port it listens on (the Host check).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	gp, err := policy.Parse("self.yaml", fmt.Appendf(nil, "version: 1\ntrusted_proxies: []\nservices:\n  - {name: bindguard, port: %d, address: 127.0.0.1, access: localhost_only, host_check: true}\n", port))
	if err != nil {
		t.Fatal(err)
	}
	g, err := access.NewGuard(gp, "bindguard")
	if err != nil {
		t.Fatal(err)
	}
	front, err := NewFront(FrontConfig{Guard: g, MaxConns: 64, MaxRefusedConns: 4}, m.HandlerWith(HandlerOptions{Version: "test"}))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{}
	served := make(chan error, 1)
	go func() { served <- front.Serve(l, srv) }()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-ran
		_ = srv.Close()
		<-served
	})
	return "http://" + l.Addr().String(), m
}

// browser starts Debian's chromium, headless, at 1280x900, resolving no name but loopback's.
func browser(t *testing.T) context.Context {
	t.Helper()
	exe := netnstest.RequireTool(t, "chromium", "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	return ctx
}

// pageLog is what the browser reported: console calls, exceptions, log entries, requests.
type pageLog struct {
	mu       sync.Mutex
	problems []string
	requests []string
}

func (p *pageLog) add(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning || e.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range e.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			p.problems = append(p.problems, fmt.Sprintf("console.%s: %s", e.Type, strings.Join(args, " ")))
		}
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		p.problems = append(p.problems, "exception: "+msg)
	case *cdplog.EventEntryAdded:
		if e.Entry.Level == cdplog.EntryLevelError || e.Entry.Level == cdplog.EntryLevelWarning {
			p.problems = append(p.problems, fmt.Sprintf("log %s (%s): %s %s", e.Entry.Level, e.Entry.Source, e.Entry.Text, e.Entry.URL))
		}
	case *network.EventRequestWillBeSent:
		p.requests = append(p.requests, e.Request.URL)
	}
}

func (p *pageLog) snapshot() ([]string, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.problems), slices.Clone(p.requests)
}

const rowsJS = `Array.from(document.querySelectorAll('tr.row')).map(r => ({netns: r.closest('section').dataset.netns, service: r.dataset.service, status: r.dataset.status, key: r.dataset.key}))`

// apiRows is the audit as /api/v2/audit gives it, as rows.
func apiRows(t *testing.T, base string) []browserRow {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/audit")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc report.DocumentV2
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return auditRows(doc)
}

// TestDashboardBrowser loads the page in headless Chromium against a real monitor watching a
// namespace with real listeners: every service of the policy is on it with the API's verdict;
// a listener started later appears without a reload; the page logs no error, makes no request
// beyond the serve's address, works by keyboard, at phone width and without JavaScript.
func TestDashboardBrowser(t *testing.T) {
	ns := netnstest.New(t, "bgdash")
	ctx := browser(t)
	ns.Listen(t, netnstest.MustSpec(t, "tcp:127.0.0.1:6379"), netnstest.MustSpec(t, "tcp:0.0.0.0:9999"))
	// web's listener binds wider than its class allows; the test closes it later.
	var wide net.Listener
	if err := proc.InNetNS(ns.Path, func() (err error) { wide, err = net.Listen("tcp", "0.0.0.0:8080"); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wide.Close() })
	base, m := realServe(t, ns)
	waitFor(t, 10*time.Second, "the first audit", func() bool { r, _ := m.Latest(); return r != nil })
	if resp, err := http.Get(base + "/"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / through the front: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	var plog pageLog
	if err := chromedp.Listen(ctx, plog.add); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible("tr.row")); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
		t.Fatalf("%v; the page: %.2000s", err, html)
	}
	rows, err := chromedp.Run(tctx, chromedp.Evaluate[[]browserRow](rowsJS))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(apiRows(t, base), rows); d != "" {
		t.Errorf("the page's matrix against /api/v2/audit (-api +page):\n%s", d)
	}
	status := map[string]string{}
	for _, r := range rows {
		status[r.Service] = r.Status
	}
	if d := cmp.Diff(map[string]string{"redis": "valid", "web": "invalid", "postgres": "missing", "metrics": "missing", "(undeclared)": "unexpected"}, status); d != "" {
		t.Errorf("verdicts by service (-want +got):\n%s", d)
	}

	// A reload would lose this mark.
	if err := chromedp.Do(tctx, chromedp.Evaluate[chromedp.Void](`window.bindguardMark = 42`)); err != nil {
		t.Fatal(err)
	}
	// New listeners: postgres starts, a stray one on 7000, and web moves to loopback.
	_ = wide.Close()
	ns.Listen(t, netnstest.MustSpec(t, "tcp:127.0.0.1:5432"), netnstest.MustSpec(t, "tcp:0.0.0.0:7000"), netnstest.MustSpec(t, "tcp:127.0.0.1:8080"))
	js := `(() => { const st = s => (document.querySelector('tr.row[data-service="' + s + '"]') || {dataset: {}}).dataset.status; return st('postgres') === 'valid' && st('web') === 'valid' && !!document.querySelector('tr.row[data-key*="port=7000"]') })()`
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("postgres and web valid and the listener on 7000 did not appear on the page: %v", err)
	}
	if mark, err := chromedp.Run(tctx, chromedp.Evaluate[int](`window.bindguardMark || 0`)); err != nil || mark != 42 {
		t.Errorf("the page was reloaded (mark %d, %v)", mark, err)
	}
	rows, err = chromedp.Run(tctx, chromedp.Evaluate[[]browserRow](rowsJS))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(apiRows(t, base), rows); d != "" {
		t.Errorf("after the new listeners, the page against /api/v2/audit (-api +page):\n%s", d)
	}

	// The score history has the rise (the chart's steps, and its table of changes).
	if ps, err := m.Scores(time.Time{}); err != nil || len(ps) < 2 || ps[0].Score >= ps[len(ps)-1].Score {
		t.Errorf("score history %+v, %v: want a rise", ps, err)
	}
	// Keyboard: a finding's detail opens from its summary with Enter, and stays open across a
	// refresh of the live part.
	id, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.querySelector('tr.row[data-service="metrics"] summary').id`))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tctx, chromedp.Focus("#"+id), chromedp.KeyEvent("\r")); err != nil {
		t.Fatal(err)
	}
	open := `document.getElementById('` + id + `').parentElement.open`
	if o, err := chromedp.Run(tctx, chromedp.Evaluate[bool](open)); err != nil || !o {
		t.Errorf("Enter on the detail's summary did not open it (%v, %v)", o, err)
	}
	// Filters: choosing a status filters the matrix, without a reload.
	if err := chromedp.Do(tctx, chromedp.SetValue(`select[name="status"]`, "missing"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('select[name="status"]').dispatchEvent(new Event('change', {bubbles: true}))`)); err != nil {
		t.Fatal(err)
	}
	only := `(() => { const rs = Array.from(document.querySelectorAll('tr.row')); return rs.length > 0 && rs.every(r => r.dataset.status === 'missing') && location.search === '?status=missing' })()`
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](only, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Errorf("the status filter did not apply: %v", err)
	}
	if mark, _ := chromedp.Run(tctx, chromedp.Evaluate[int](`window.bindguardMark || 0`)); mark != 42 {
		t.Error("filtering reloaded the page")
	}
	// Widths: nothing wider than the window at 1280 px and at a phone's 390 px.
	for _, w := range []int64{1280, 390} {
		if err := chromedp.Do(tctx, chromedp.EmulateViewport(w, 844), chromedp.Navigate(base+"/"), chromedp.WaitVisible("tr.row")); err != nil {
			t.Fatal(err)
		}
		sw, err := chromedp.Run(tctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`))
		if err != nil || sw > w {
			wide, _ := chromedp.Run(tctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > window.innerWidth).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).slice(0, 8)`))
			t.Errorf("at %d px the page is %d px wide (%v); wider: %v", w, sw, err, wide)
		}
	}
	if err := chromedp.Do(tctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(base+"/"), chromedp.WaitVisible("tr.row")); err != nil {
		t.Fatal(err)
	}
	if path := os.Getenv(ScreenshotEnv); path != "" {
		png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(png, []byte("\x89PNG")) {
			t.Fatal("the screenshot is not a PNG")
		}
		if err := os.WriteFile(path, png, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", path, len(png))
	}

	// Without JavaScript the matrix is there, rendered by the server.
	nctx, ncancel := chromedp.NewContext(ctx)
	defer ncancel()
	var nlog pageLog
	if err := chromedp.Do(nctx); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Listen(nctx, nlog.add); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(nctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	n2, ncancel2 := context.WithTimeout(nctx, 30*time.Second)
	defer ncancel2()
	if err := chromedp.Do(n2, chromedp.Navigate(base+"/"), chromedp.WaitVisible("tr.row")); err != nil {
		t.Fatal(err)
	}
	// The DOM is read through the protocol (no script runs in the page).
	nodes, err := chromedp.Run(n2, chromedp.Nodes("tr.row"))
	if err != nil {
		t.Fatal(err)
	}
	if want := len(apiRows(t, base)); len(nodes) != want {
		t.Errorf("without JavaScript: %d rows, the API has %d findings", len(nodes), want)
	}

	for _, l := range []*pageLog{&plog, &nlog} {
		problems, requests := l.snapshot()
		for _, p := range problems {
			t.Errorf("the browser reported: %s", p)
		}
		if len(requests) == 0 {
			t.Error("no request was seen: the network listener saw nothing")
		}
		u0, _ := url.Parse(base)
		for _, r := range requests {
			u, err := url.Parse(r)
			if err != nil || u.Host != u0.Host || u.Scheme != "http" {
				t.Errorf("a request left the serve's address %s: %s", u0.Host, r)
			}
		}
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen in %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
