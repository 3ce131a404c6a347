package report_test

import (
	"bytes"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/observed"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/report"
	"github.com/bindguard/bindguard/policy"
)

func sample(t *testing.T) (report.Meta, *audit.Report) {
	t.Helper()
	p, err := policy.Parse("t.yaml", []byte(`version: 1
services:
  - {name: redis, protocol: tcp, port: 6379, address: 127.0.0.1, access: localhost_only}
  - {name: web, protocol: tcp, port: 80, address: 0.0.0.0, access: public}
  - {name: gone, protocol: udp, port: 53, address: 127.0.0.1, access: localhost_only}
`))
	if err != nil {
		t.Fatal(err)
	}
	o := func(addr string, port uint16, name string) observed.Listener {
		return observed.Listener{Socket: observed.Socket{Protocol: "tcp", Family: observed.IPv4, Addr: netip.MustParseAddr(addr), Port: port, V6Only: observed.V6OnlyNA, Inode: 1},
			Netns: "host", Owner: observed.OwnerKnown, Owners: []observed.Process{{PID: 7, Name: name}}}
	}
	r := audit.Judge(p, []observed.Listener{o("0.0.0.0", 6379, "redis-server"), o("0.0.0.0", 80, "nginx"), o("0.0.0.0", 5432, "postgres \"evil\"\\")})
	return report.Meta{Host: "h", Time: time.Unix(1795000000, 0), Policy: "t.yaml", Namespaces: []string{"host"}}, r
}

func TestPrometheusParsesBack(t *testing.T) {
	m, r := sample(t)
	var b bytes.Buffer
	if err := report.Prometheus(&b, m, r); err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		mf := mfs[name]
		if mf == nil {
			t.Fatalf("no metric %s", name)
		}
	next:
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			return mt.GetGauge().GetValue()
		}
		t.Fatalf("no %s%v", name, labels)
		return 0
	}
	// 1 of 3 valid = 33, minus 20 (redis exposed), minus 15 (unexpected wildcard) = -1 -> 0.
	if v := value("bindguard_audit_score", nil); v != float64(r.Score) || r.Score != 0 {
		t.Errorf("score %v (report %d)", v, r.Score)
	}
	for st, want := range map[string]float64{"valid": 1, "invalid": 1, "missing": 1, "unexpected": 1} {
		if v := value("bindguard_audit_findings", map[string]string{"status": st}); v != want {
			t.Errorf("findings{%s} = %v, want %v", st, v, want)
		}
	}
	if v := value("bindguard_audit_violations", map[string]string{"severity": "critical"}); v != 2 {
		t.Errorf("critical violations = %v, want 2", v)
	}
	if v := value("bindguard_service_compliant", map[string]string{"service": "web"}); v != 1 {
		t.Errorf("web compliant = %v", v)
	}
	if v := value("bindguard_service_compliant", map[string]string{"service": "redis"}); v != 0 {
		t.Errorf("redis compliant = %v", v)
	}
	if v := value("bindguard_service_listening", map[string]string{"service": "gone"}); v != 0 {
		t.Errorf("gone listening = %v", v)
	}
	if v := value("bindguard_audit_timestamp_seconds", nil); v != 1795000000 {
		t.Errorf("timestamp %v", v)
	}
}

func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := netnstest.RequireTool(t, "promtool", "prometheus")
	m, r := sample(t)
	var b bytes.Buffer
	if err := report.Prometheus(&b, m, r); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "check", "metrics") // #nosec G204 -- promtool from PATH
	cmd.Stdin = &b
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestZabbixQuoting(t *testing.T) {
	m, r := sample(t)
	var b bytes.Buffer
	if err := report.Zabbix(&b, m, r); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		f := splitSender(t, line)
		if len(f) != 3 || f[0] != "-" {
			t.Errorf("line %q splits into %q, want 3 fields starting with -", line, f)
		}
	}
	if !strings.Contains(b.String(), "- bindguard.binding.security.score 0\n") {
		t.Errorf("no score line:\n%s", b.String())
	}
}

// splitSender splits a zabbix_sender input line as zabbix_sender does: whitespace-separated
// fields, double quotes around a field with \" and \\ escapes.
func splitSender(t *testing.T, line string) []string {
	var out []string
	for i := 0; i < len(line); {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i >= len(line) {
			break
		}
		var f strings.Builder
		if line[i] == '"' {
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) {
					i++
				}
				f.WriteByte(line[i])
			}
			if i >= len(line) {
				t.Fatalf("unterminated quote in %q", line)
			}
			i++
		} else {
			for ; i < len(line) && line[i] != ' '; i++ {
				f.WriteByte(line[i])
			}
		}
		out = append(out, f.String())
	}
	return out
}

func TestTableColour(t *testing.T) {
	m, r := sample(t)
	// One group with severities whose escape codes differ in length.
	r.Findings = append(r.Findings, audit.Finding{
		Status: audit.Unexpected, Severity: audit.Low, Protocol: policy.TCP, Reason: "loopback",
		Actual: &audit.Actual{Address: "127.0.0.1", Port: 9999, Family: observed.IPv4, Exposure: audit.ExposureLoopback, Netns: "host"},
	})
	r.Summary.Unexpected++
	var plain, colour bytes.Buffer
	if err := report.Table(&plain, m, r, false); err != nil {
		t.Fatal(err)
	}
	if err := report.Table(&colour, m, r, true); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b[") {
		t.Error("escape codes without colour")
	}
	if !strings.Contains(colour.String(), "\x1b[1m\x1b[31mcritical") {
		t.Errorf("no red critical in colour output:\n%s", colour.String())
	}
	// Escape codes of different lengths per severity must not move the columns: without
	// them, the coloured table is the plain one.
	if got := ansiRE.ReplaceAllString(colour.String(), ""); got != plain.String() {
		t.Errorf("coloured table, codes removed, differs from the plain one:\n%s\nplain:\n%s", got, plain.String())
	}
}

var ansiRE = regexp.MustCompile("\x1b\\[[0-9;]*m")
