package cli

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bindguard/bindguard/internal/monitor"
	"github.com/bindguard/bindguard/internal/report"
)

// TestEventsDocument: bindguard.events.v1 as events --format json writes it (golden), read
// back through report.DecodeEvents, and served to events --url, which shows what the store
// holds; a document of another schema is refused.
func TestEventsDocument(t *testing.T) {
	dir := t.TempDir()
	st, err := monitor.OpenStore(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	events := []monitor.Event{
		{Time: fixedTime.Add(-2 * time.Hour), Kind: monitor.KindAppeared, Netns: "host", Protocol: "tcp", Address: "0.0.0.0", Port: 22, NewStatus: "unexpected", Severity: "medium"},
		{Time: fixedTime.Add(-30 * time.Minute), Kind: monitor.KindAppeared, Netns: "host", Protocol: "tcp", Address: "0.0.0.0", Port: 5432, Service: "postgresql",
			NewStatus: "invalid", Severity: "critical", Process: &monitor.Process{PID: 1200, Name: "postgres", Unit: "postgresql.service"}, Reason: "postgres listens on 0.0.0.0:5432"},
		{Time: fixedTime.Add(-10 * time.Minute), JudgedAt: fixedTime.Add(-10*time.Minute + 1500), Kind: monitor.KindChanged, Netns: "host", Protocol: "tcp", Port: 6379, Service: "redis", OldStatus: "valid", NewStatus: "missing", Severity: "high"},
	}
	st.SetClock(func() time.Time { return fixedTime.Add(-time.Minute + 123456789) })
	if _, err := st.Record(events, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runAt(t, "events", "--data", dir, "--since", "1h", "--format", "json")
	if code != 0 {
		t.Fatalf("events: exit %d: %s", code, errOut)
	}
	checkGolden(t, "events.json", out)
	doc, err := report.DecodeEventsV2[monitor.Event](strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	want := events[1:]
	for i := range want {
		want[i].Time = want[i].Time.UTC()
	}
	if diff := cmp.Diff(want, doc.Events); diff != "" || doc.Since != "2026-11-22T09:00:00Z" {
		t.Errorf("decoded events, since %s (-want +got):\n%s", doc.Since, diff)
	}

	// A serve of this version answers v2; an older one only v1 (404 for v2), which is asked next.
	schema, path := report.SchemaEventsV2, "/api/v2/events"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path || r.URL.Query().Get("since") != "2026-11-22T09:00:00Z" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(strings.Replace(out, report.SchemaEventsV2, schema, 1)))
	}))
	defer srv.Close()
	fromStore, _, _ := runAt(t, "events", "--data", dir, "--since", "1h")
	fromURL, errOut, code := runAt(t, "events", "--url", srv.URL, "--since", "1h")
	if code != 0 || fromURL != fromStore {
		t.Errorf("events --url: exit %d %s\n%s\nwant\n%s", code, errOut, fromURL, fromStore)
	}
	schema, path = report.SchemaEvents, "/api/v1/events"
	if fromV1, errOut, code := runAt(t, "events", "--url", srv.URL, "--since", "1h"); code != 0 || fromV1 != fromStore {
		t.Errorf("an older serve (v1 only): exit %d %s\n%s", code, errOut, fromV1)
	}
	schema, path = "bindguard.events.v9", "/api/v2/events"
	if _, errOut, code := runAt(t, "events", "--url", srv.URL, "--since", "1h"); code != 2 || !strings.Contains(errOut, "bindguard.events.v9") {
		t.Errorf("a v9 document: exit %d: %s", code, errOut)
	}
}
