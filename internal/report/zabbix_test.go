package report_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/report"
)

// TestZabbixDocumentGolden: bindguard.zabbix.v1, the monitor's /api/v1/zabbix, and its
// zabbix_sender form with the seed's prefix; decoded back, it answers every key as sent.
func TestZabbixDocumentGolden(t *testing.T) {
	m, r := sample(t)
	var b bytes.Buffer
	if err := report.NewZabbixDoc(r).Encode(&b); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "zabbix.json", b.String())
	doc, err := report.DecodeZabbixDoc(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(report.NewZabbixDoc(r), *doc); diff != "" {
		t.Errorf("decoded document differs (-want +got):\n%s", diff)
	}

	m.ZabbixPrefix = "aktienanalyse"
	var sender bytes.Buffer
	if err := report.Zabbix(&sender, m, r); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "zabbix-aktienanalyse.sender", sender.String())
	k, err := report.NewZabbixKeys("aktienanalyse")
	if err != nil {
		t.Fatal(err)
	}
	items, err := doc.Items(k)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(sender.String()), "\n")
	if len(lines) != len(items) {
		t.Fatalf("%d sender lines, %d items", len(lines), len(items))
	}
	for i, it := range items {
		f := splitSender(t, lines[i])
		if len(f) != 3 || f[1] != it.Key || f[2] != it.Value {
			t.Errorf("sender line %q, item %+v", lines[i], it)
		}
		if v, err := doc.Value(k, it.Key); err != nil || v != it.Value {
			t.Errorf("Value(%s) = %q, %v; sent %q", it.Key, v, err, it.Value)
		}
	}

	if _, err := report.DecodeZabbixDoc(strings.NewReader(`{"schema":"bindguard.zabbix.v2","fields":{}}`)); err == nil {
		t.Error("a v2 document was read as v1")
	}
}

func TestZabbixKeys(t *testing.T) {
	k, err := report.NewZabbixKeys("")
	if err != nil || k.Prefix != "bindguard" {
		t.Fatalf("default prefix %q, %v", k.Prefix, err)
	}
	k, _ = report.NewZabbixKeys("aktienanalyse")
	for got, want := range map[string]string{
		k.PortBindings("*"):                 "aktienanalyse.port.bindings[*]",
		k.ServiceBinding("*"):               "aktienanalyse.service.binding[*]",
		k.Score():                           "aktienanalyse.binding.security.score",
		k.Discovery():                       "aktienanalyse.service.discovery",
		k.ServicePrototype():                "aktienanalyse.service.binding[{#SERVICE}]",
		report.ServiceField("zabbix-agent"): "service_binding_correct_zabbix_agent",
	} {
		if got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
	for _, bad := range []string{"Bad", "a b", "x.", ".x", "x[1]", "x,y", strings.Repeat("a", 40)} {
		if _, err := report.NewZabbixKeys(bad); err == nil {
			t.Errorf("prefix %q accepted", bad)
		}
	}
}

func TestZabbixValue(t *testing.T) {
	_, r := sample(t)
	r.Services = append(r.Services, audit.ServiceState{Name: "zabbix-agent", Protocol: "tcp", Port: 10050, Compliant: true})
	doc := report.NewZabbixDoc(r)
	k, _ := report.NewZabbixKeys("aktienanalyse")
	for key, want := range map[string]string{
		"aktienanalyse.binding.security.score":          "0",
		"aktienanalyse.port.bindings[invalid]":          "1",
		`aktienanalyse.port.bindings["missing"]`:        "1",
		"aktienanalyse.service.binding[zabbix_agent]":   "1",
		"aktienanalyse.service.binding[zabbix-agent]":   "1",
		`aktienanalyse.service.binding["zabbix-agent"]`: "1",
		"aktienanalyse.service.binding[redis]":          "0",
		"aktienanalyse.service.binding[nope]":           "error",
		"aktienanalyse.port.bindings[bogus]":            "error",
		"aktienanalyse.port.bindings[valid,x]":          "error",
		"aktienanalyse.port.bindings":                   "error",
		"bindguard.binding.security.score":              "error",
		"aktienanalyse.binding.security.score[x]":       "error",
	} {
		got, err := doc.Value(k, key)
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	// A v1 document from before discovery rows were added discovers its services by name.
	old := report.ZabbixDoc{Schema: report.SchemaZabbix, Fields: map[string]int{"service_binding_correct_zabbix_agent": 1}, Services: []string{"zabbix-agent"}}
	if v, err := old.Value(k, "aktienanalyse.service.discovery"); err != nil || v != `[{"{#SERVICE}":"zabbix_agent"}]` {
		t.Errorf("discovery of an older document: %s %v", v, err)
	}
	// A field the document lacks is an error, not a made-up 0.
	if v, err := old.Value(k, "aktienanalyse.binding.security.score"); err == nil {
		t.Errorf("score of a document without it: %q", v)
	}
}
