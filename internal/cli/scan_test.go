package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

const scanCorpus = "../../testdata/scan"

func TestScanExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"reported findings fail at medium", []string{"scan", scanCorpus + "/compose"}, 1},
		{"only allowed findings", []string{"scan", scanCorpus + "/docker"}, 0},
		{"fail-on critical passes medium findings", []string{"scan", "--fail-on", "critical", scanCorpus + "/suppress"}, 0},
		{"fail-on never", []string{"scan", "--fail-on", "never", scanCorpus + "/compose"}, 0},
		{"policy: redis published on every interface", []string{"scan", "--policy", scanCorpus + "/policy/bindguard.yaml", "--fail-on", "critical", scanCorpus + "/policy"}, 1},
		{"bad severity", []string{"scan", "--fail-on", "urgent", scanCorpus}, 2},
		{"missing path", []string{"scan", scanCorpus + "/does-not-exist"}, 2},
		{"sarif with --all", []string{"scan", "--format", "sarif", "--all", scanCorpus}, 2},
		{"bad policy", []string{"scan", "--policy", scanCorpus + "/compose/docker-compose.yml", scanCorpus}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs, code := run(t, "", tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errs)
			}
		})
	}
}

func TestScanJSONAll(t *testing.T) {
	out, errs, code := run(t, "", "scan", "--format", "json", "--all", "--fail-on", "never", scanCorpus+"/docker", scanCorpus+"/python")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var doc struct {
		Schema    string
		Findings  []struct{ Status, Reach, Kind string }
		Unscanned []string
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	// A cgo build scans the Flask app.run(host="") (127.0.0.1: allowed, loopback); a build
	// without cgo names python as not scanned, on standard error too.
	scanned := len(doc.Unscanned) == 0
	want := 2
	if scanned {
		want = 3
	}
	if doc.Schema != "bindguard.scan.v1" || len(doc.Findings) != want {
		t.Fatalf("schema %q, %d findings: %s", doc.Schema, len(doc.Findings), out)
	}
	for _, f := range doc.Findings {
		if f.Status != "allowed" || (f.Reach != "pod network" && !(f.Kind == "py-server-run" && f.Reach == "loopback")) {
			t.Errorf("finding %+v: want allowed on the pod network (or loopback for Flask)", f)
		}
	}
	if !scanned && (len(doc.Unscanned) != 1 || !strings.HasPrefix(doc.Unscanned[0], "python")) {
		t.Errorf("unscanned = %q", doc.Unscanned)
	}
	if !scanned && !strings.Contains(errs, "not scanned: python") {
		t.Errorf("stderr does not name the unscanned language: %q", errs)
	}
	// Without --all, allowed findings are not listed.
	out, _, _ = run(t, "", "scan", "--format", "json", scanCorpus+"/docker")
	if !strings.Contains(out, `"findings": []`) {
		t.Errorf("allowed findings listed without --all: %s", out)
	}
}

func TestScanTableAndSARIF(t *testing.T) {
	out, _, code := run(t, "", "scan", "--policy", scanCorpus+"/policy/bindguard.yaml", scanCorpus+"/policy")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"reported  critical", "docker-compose.yml:3", "compose-port", "tcp/0.0.0.0:6379", "localhost_only allows loopback addresses only"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = run(t, "", "scan", "--format", "sarif", "--category", "ci/scan", scanCorpus+"/suppress")
	var doc struct {
		Version string
		Runs    []struct {
			AutomationDetails struct{ ID string }
			Results           []struct{ RuleID string }
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != "2.1.0" || doc.Runs[0].AutomationDetails.ID != "ci/scan" || len(doc.Runs[0].Results) != 2 {
		t.Errorf("sarif: %s", out)
	}
	for _, r := range doc.Runs[0].Results {
		if r.RuleID != "BG101" {
			t.Errorf("ruleId %q, want BG101 (go-listen)", r.RuleID)
		}
	}
}
