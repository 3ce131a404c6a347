package cli

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/report"
)

const seedPolicy = "../../testdata/seed/service-bindings.yaml"

// seedLayout is the seed's service-bindings.yaml listening as declared.
var seedLayout = []string{
	"tcp4:0.0.0.0:80", "tcp4:0.0.0.0:443", "tcp4:127.0.0.1:8443",
	"tcp4:127.0.0.1:8001", "tcp4:127.0.0.1:8002", "tcp4:127.0.0.1:8003", "tcp4:127.0.0.1:8004",
	"tcp4:127.0.0.1:5432", "tcp4:0.0.0.0:10050",
}

func seedNS(t *testing.T, redis string) *netnstest.NS {
	ns := netnstest.New(t, "bgseed")
	var specs []netnstest.Spec
	for _, s := range append(seedLayout, redis) {
		sp, err := netnstest.ParseSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, sp)
	}
	ns.Listen(t, specs...)
	return ns
}

func auditNS(t *testing.T, ns *netnstest.NS) (report.DocumentV2, int) {
	t.Helper()
	out, errOut, code := runAt(t, "audit", "--policy", seedPolicy, "--netns", ns.Name, "--format", "json")
	if code == ExitError {
		t.Fatalf("audit: %s", errOut)
	}
	var doc report.DocumentV2
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return doc, code
}

func TestAuditSeedLayoutScores100(t *testing.T) {
	ns := seedNS(t, "tcp4:127.0.0.1:6379")
	doc, code := auditNS(t, ns)
	if code != ExitOK || doc.Score != 100 {
		t.Errorf("exit %d, score %d, want 0 and 100; findings: %+v", code, doc.Score, doc.Findings)
	}
	if doc.Summary.Valid != 10 || doc.Summary.Invalid+doc.Summary.Missing+doc.Summary.Unexpected != 0 {
		t.Errorf("summary %+v, want 10 valid and nothing else", doc.Summary)
	}
}

func TestAuditSeedRedisOnWildcardIsCritical(t *testing.T) {
	ns := seedNS(t, "tcp4:0.0.0.0:6379")
	doc, code := auditNS(t, ns)
	if code != ExitViolation {
		t.Errorf("exit %d, want 1", code)
	}
	var found bool
	for _, f := range doc.Findings {
		if f.ServiceName() != "redis" {
			continue
		}
		found = true
		if f.Status != "invalid" || f.Severity.String() != "critical" {
			t.Errorf("redis: %s %s, want invalid critical", f.Status, f.Severity)
		}
		if f.Actual == nil || f.Actual.Process == nil || f.Actual.Process.PID != os.Getpid() {
			t.Errorf("redis finding lacks the owning pid %d: %+v", os.Getpid(), f.Actual)
		}
		if f.Actual.Exposure != "wildcard-v4" || f.Actual.Netns != ns.Name {
			t.Errorf("redis: exposure %s netns %s", f.Actual.Exposure, f.Actual.Netns)
		}
	}
	if !found {
		t.Fatal("no finding for redis")
	}
	// 9 of 10 valid = 90, minus 20 for exposing a loopback-only service.
	if doc.Score != 70 {
		t.Errorf("score %d, want 70", doc.Score)
	}
}
