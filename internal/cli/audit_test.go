package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bindguard/bindguard/internal/report"
)

var fixedTime = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// runAt is run with a fixed clock.
func runAt(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(context.Background(), args, Streams{In: strings.NewReader(""), Out: &out, Err: &errb, Now: func() time.Time { return fixedTime }})
	return out.String(), errb.String(), ExitCode(err)
}

func fixtureArgs(tree string) []string {
	return []string{"--proc-root", filepath.Join("..", "..", "testdata", "proc", tree), "--netns-dir", filepath.Join("..", "..", "testdata", "proc", "no-netns")}
}

const auditPolicy = "../../testdata/audit/policy.yaml"

func TestAuditGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		golden string
	}{
		{"table", []string{"--policy", auditPolicy, "--format", "table"}, 1, "audit-basic.table"},
		{"json", []string{"--policy", auditPolicy, "--format", "json"}, 1, "audit-basic.json"},
		{"prometheus", []string{"--policy", auditPolicy, "--format", "prometheus"}, 1, "audit-basic.prom"},
		{"zabbix", []string{"--policy", auditPolicy, "--format", "zabbix"}, 1, "audit-basic.zabbix"},
		{"default is the table, piped or not", []string{"--policy", auditPolicy}, 1, "audit-basic.table"},
		{"catalogue", []string{"--policy", "", "--format", "table"}, 1, "audit-catalogue.table"},
		{"fail-on critical", []string{"--policy", auditPolicy, "--format", "json", "--fail-on", "critical"}, 1, "audit-basic.json"},
		{"malformed lines are skipped and reported", []string{"--policy", auditPolicy, "--format", "table", "--fail-on", "critical"}, 1, "audit-malformed.table"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := "basic"
			if strings.Contains(tc.golden, "malformed") {
				tree = "malformed"
			}
			args := append(append([]string{"audit", "--host", "fixture"}, tc.args...), fixtureArgs(tree)...)
			out, errOut, code := runAt(t, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, errOut)
			}
			checkGolden(t, tc.golden, strings.ReplaceAll(out, "../../testdata", "testdata"))
		})
	}
}

func TestAuditFailOnThreshold(t *testing.T) {
	// Only the fixture's high and critical findings remain above "high"; nothing is above
	// critical on a compliant policy.
	_, _, code := runAt(t, append([]string{"audit", "--policy", auditPolicy, "--fail-on", "high"}, fixtureArgs("basic")...)...)
	if code != ExitViolation {
		t.Errorf("--fail-on high: exit %d, want 1", code)
	}
}

func TestAuditJSONSchema(t *testing.T) {
	out, _, _ := runAt(t, append([]string{"audit", "--host", "fixture", "--policy", auditPolicy, "--format", "json"}, fixtureArgs("basic")...)...)
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["schema"] != report.SchemaAudit || doc["time"] != "2026-11-22T10:00:00Z" || doc["host"] != "fixture" {
		t.Errorf("header: %v %v %v", doc["schema"], doc["time"], doc["host"])
	}
	for _, f := range doc["findings"].([]any) {
		m := f.(map[string]any)
		for _, k := range []string{"status", "severity", "service", "protocol", "expected", "actual", "reason"} {
			if _, ok := m[k]; !ok {
				t.Errorf("finding lacks %q: %v", k, m)
			}
		}
		if a, ok := m["actual"].(map[string]any); ok {
			for _, k := range []string{"address", "port", "family", "v6only", "exposure", "netns", "process"} {
				if _, ok := a[k]; !ok {
					t.Errorf("actual lacks %q: %v", k, a)
				}
			}
		}
	}
}

func TestAuditErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"empty table", append([]string{"audit"}, fixtureArgs("empty-table")...), "empty table (no header line)"},
		{"missing proc root", []string{"audit", "--proc-root", "/nonexistent/proc"}, "/nonexistent/proc"},
		{"bad fail-on", append([]string{"audit", "--fail-on", "severe"}, fixtureArgs("basic")...), `unknown severity "severe"`},
		{"bad source", []string{"audit", "--source", "bpf"}, "must be one of auto, netlink, procfs"},
		{"netlink with a fixture", append([]string{"audit", "--source", "netlink"}, fixtureArgs("basic")...), "--source netlink reads the kernel"},
		{"bad owner scan", []string{"audit", "--owner-scan", "ebpf"}, "must be one of auto, procfs, bpf"},
		{"bpf owner scan with a fixture", append([]string{"audit", "--owner-scan", "bpf"}, fixtureArgs("basic")...), "bpf owner scan reads the kernel"},
		{"unknown netns", []string{"audit", "--netns", "no-such-ns-here", "--netns-dir", "../../testdata/proc/no-netns"}, `netns "no-such-ns-here": no such network namespace`},
		{"invalid policy", append([]string{"audit", "--policy", "../../testdata/policy/invalid/bad-port.yaml"}, fixtureArgs("basic")...), "bad-port.yaml:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := runAt(t, tc.args...)
			if code != ExitError {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(errOut, tc.want) || !strings.HasPrefix(errOut, "bindguard: ") {
				t.Errorf("stderr %q lacks %q", errOut, tc.want)
			}
		})
	}
}

func TestInitFromFixture(t *testing.T) {
	out, errOut, code := runAt(t, append([]string{"init"}, fixtureArgs("basic")...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	checkGolden(t, "init-basic.yaml", out)

	// The policy it writes loads, and auditing the same host against it leaves only the
	// sensitive service it refused to bless (postgres on 0.0.0.0) and the unowned socket.
	dir := t.TempDir()
	path := filepath.Join(dir, "bindguard.yaml")
	if _, errOut, code := runAt(t, append([]string{"init", "-o", path}, fixtureArgs("basic")...)...); code != 0 {
		t.Fatalf("init -o: exit %d: %s", code, errOut)
	}
	if _, errOut, code := runAt(t, append([]string{"init", "-o", path}, fixtureArgs("basic")...)...); code != ExitError || !strings.Contains(errOut, "use --force") {
		t.Errorf("init over an existing file: exit %d, %q", code, errOut)
	}
	if _, _, code := runAt(t, append([]string{"init", "-o", path, "--force"}, fixtureArgs("basic")...)...); code != 0 {
		t.Errorf("init --force: exit %d", code)
	}
	jsonOut, _, _ := runAt(t, append([]string{"audit", "--policy", path, "--format", "json"}, fixtureArgs("basic")...)...)
	var doc report.DocumentV2
	if err := json.Unmarshal([]byte(jsonOut), &doc); err != nil {
		t.Fatal(err)
	}
	var notValid []string
	for _, f := range doc.Findings {
		if f.Status != "valid" {
			notValid = append(notValid, f.Reason)
		}
	}
	if len(notValid) != 1 || !strings.Contains(notValid[0], "0.0.0.0:5432") {
		t.Errorf("audit against the generated policy: non-valid findings %q, want only postgres on 0.0.0.0:5432", notValid)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

func TestColourAllowed(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	for _, tc := range []struct {
		terminal bool
		env      map[string]string
		want     bool
	}{
		{true, nil, true},
		{false, nil, false},
		{true, map[string]string{"NO_COLOR": "1"}, false},
		{true, map[string]string{"NO_COLOR": ""}, true},
		{true, map[string]string{"TERM": "dumb"}, false},
	} {
		if got := colourAllowed(tc.terminal, env(tc.env)); got != tc.want {
			t.Errorf("colourAllowed(%v, %v) = %v, want %v", tc.terminal, tc.env, got, tc.want)
		}
	}
	// A buffer is not a terminal: the table has no escape codes.
	out, _, _ := runAt(t, append([]string{"audit", "--policy", auditPolicy, "--format", "table"}, fixtureArgs("basic")...)...)
	if strings.Contains(out, "\x1b[") {
		t.Error("escape codes in output to a non-terminal")
	}
}

// TestAuditGC: the collector is off during an audit only when a soft memory limit bounds the heap.
func TestAuditGC(t *testing.T) {
	if got := auditGC(math.MaxInt64); got != auditGCPercent {
		t.Errorf("without a memory limit: GOGC %d, want %d", got, auditGCPercent)
	}
	if got := auditGC(40 << 20); got != auditGCPercentLimited {
		t.Errorf("with a 40 MiB limit: GOGC %d, want %d", got, auditGCPercentLimited)
	}
}
