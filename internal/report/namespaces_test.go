package report_test

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/internal/report"
	"github.com/bindguard/bindguard/policy"
)

// perNamespace is an audit of the host and two containers, web1 with its own scope (whose
// redis is careless) and db1 with none, one namespace not entered.
func perNamespace(t *testing.T) (report.Meta, *audit.Report) {
	t.Helper()
	p := &policy.Policy{Format: policy.FormatNative, Version: 1, Services: []policy.Service{
		{Name: "sshd", Protocol: policy.TCP, Port: 22, Address: netip.IPv4Unspecified(), Access: policy.Public},
	}, Scopes: []policy.Scope{
		{Name: "web", Match: []string{"web*"}, Services: []policy.Service{
			{Name: "redis", Protocol: policy.TCP, Port: 6379, Address: netip.MustParseAddr("127.0.0.1"), Access: policy.LocalhostOnly},
			{Name: "app", Protocol: policy.TCP, Port: 8080, Address: netip.MustParseAddr("127.0.0.1"), Access: policy.LocalhostOnly},
		}},
		{Name: "mail", Match: []string{"mx*"}},
	}}
	policy.Defaults(p)
	if err := policy.Validate(p); err != nil {
		t.Fatal(err)
	}
	l := func(ns, addr string, port uint16, name string, pid int) observed.Listener {
		return observed.Listener{Socket: observed.Socket{Protocol: "tcp", Family: observed.IPv4, Addr: netip.MustParseAddr(addr), Port: port, V6Only: observed.V6OnlyNA, Inode: 1},
			Netns: ns, Owner: observed.OwnerKnown, Owners: []observed.Process{{PID: pid, Name: name}, {PID: pid, Name: name}}}
	}
	r := audit.JudgeObservation(p, observed.Observation{
		Listeners: []observed.Listener{
			l("host", "0.0.0.0", 22, "sshd", 1),
			l("web1", "0.0.0.0", 6379, "redis-server", 200),
			l("db1", "127.0.0.1", 8080, "app", 300),
		},
		Namespaces: []observed.Namespace{
			{Label: "host", Host: true},
			{Label: "web1", Container: "web1", Inode: 4026532201},
			{Label: "db1", Container: "db1", Inode: 4026532202},
		},
		Unseen:        []string{"netns net:[4026532300] skipped: permission denied"},
		AllNamespaces: true,
	})
	return report.Meta{Host: "h", Time: time.Unix(1795000000, 0), Policy: "t.yaml", Namespaces: []string{"host", "web1", "db1"}}, r
}

// TestAuditV2Golden: bindguard.audit.v2, per namespace, complete false, netns on every
// finding; and the table grouped by namespace.
func TestAuditV2Golden(t *testing.T) {
	m, r := perNamespace(t)
	var b bytes.Buffer
	if err := report.JSON(&b, m, r); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "audit-v2.json", b.String())
	var doc report.DocumentV2
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Schema != "bindguard.audit.v2" || doc.Complete || len(doc.Unseen) != 1 {
		t.Errorf("schema %q complete %v unseen %v", doc.Schema, doc.Complete, doc.Unseen)
	}
	var raw struct {
		Findings []map[string]any `json:"findings"`
	}
	if err := json.Unmarshal(b.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, f := range raw.Findings {
		if ns, _ := f["netns"].(string); ns == "" {
			t.Errorf("finding without netns: %v", f)
		}
	}
	var tb bytes.Buffer
	if err := report.Table(&tb, m, r, false); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "audit-namespaces.table", tb.String())
	for _, want := range []string{"INCOMPLETE", "netns net:[4026532300] skipped", "== netns web1", "== netns db1", "scope mail matches no audited network namespace"} {
		if !strings.Contains(tb.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
}

func TestNamespaceMetrics(t *testing.T) {
	m, r := perNamespace(t)
	var b bytes.Buffer
	if err := report.Prometheus(&b, m, r); err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mt := range mfs["bindguard_namespace_audit_score"].GetMetric() {
		var k []string
		for _, lp := range mt.GetLabel() {
			k = append(k, lp.GetName()+"="+lp.GetValue())
		}
		got[strings.Join(k, ",")] = mt.GetGauge().GetValue()
	}
	want := map[string]float64{
		"container=,netns=host,scope=host":    100,
		"container=web1,netns=web1,scope=web": 0,   // redis exposed (-20), app missing: 0/2
		"container=db1,netns=db1,scope=host":  100, // no scope: the host's services, none owed
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("namespace scores (-want +got):\n%s", diff)
	}
	if v := mfs["bindguard_audit_score"].GetMetric()[0].GetGauge().GetValue(); v != 0 {
		t.Errorf("host score %v, want 0 (the lowest namespace's)", v)
	}
	if v := mfs["bindguard_audit_complete"].GetMetric()[0].GetGauge().GetValue(); v != 0 {
		t.Errorf("complete %v, want 0", v)
	}
	n := 0
	for _, mt := range mfs["bindguard_namespace_audit_findings"].GetMetric() {
		for _, lp := range mt.GetLabel() {
			if lp.GetName() == "netns" && lp.GetValue() == "web1" {
				n += int(mt.GetGauge().GetValue())
			}
		}
	}
	if n != 2 {
		t.Errorf("web1 findings %d, want 2 (redis invalid, app missing)", n)
	}

	// A namespace gone from the next report has no series left.
	r2 := *r
	r2.Namespaces = r.Namespaces[:1]
	b.Reset()
	if err := report.Prometheus(&b, m, &r2); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), `netns="web1"`) {
		t.Error("web1's series outlived it")
	}
}

func TestZabbixNamespaces(t *testing.T) {
	m, r := perNamespace(t)
	doc := report.NewZabbixDoc(r)
	k, _ := report.NewZabbixKeys("")
	disc, err := doc.Value(k, "bindguard.namespace.discovery")
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]string
	if err := json.Unmarshal([]byte(disc), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[1]["{#NETNS}"] != "web1" || rows[1]["{#SCOPE}"] != "web" {
		t.Errorf("discovery %s", disc)
	}
	for key, want := range map[string]string{"bindguard.namespace.score[web1]": "0", `bindguard.namespace.score["host"]`: "100", "bindguard.binding.security.score": "0"} {
		if v, err := doc.Value(k, key); err != nil || v != want {
			t.Errorf("%s = %q, %v; want %s", key, v, err, want)
		}
	}
	if _, err := doc.Value(k, "bindguard.namespace.score[nope]"); err == nil {
		t.Error("an unknown namespace got a value")
	}
	var sender bytes.Buffer
	if err := report.Zabbix(&sender, m, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"- bindguard.namespace.score[web1] 0\n", "- bindguard.namespace.discovery "} {
		if !strings.Contains(sender.String(), want) {
			t.Errorf("zabbix_sender input lacks %q:\n%s", want, sender.String())
		}
	}
	f := report.SeedFields(r)
	for field, want := range map[string]int{"port_binding_security_score": 0, "netns_web1_score": 0, "netns_host_score": 100, "netns_web1_port_bindings_missing": 1, "port_bindings_invalid": 1, "audit_complete": 0} {
		if got, ok := f[field]; !ok || got != want {
			t.Errorf("field %s = %d (%v), want %d", field, got, ok, want)
		}
	}
}
