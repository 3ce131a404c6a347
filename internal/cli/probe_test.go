package cli

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/report"
)

const probePolicy = `version: 1
services:
  - {name: web, port: 8080, address: "::", access: public}
  - {name: zabbix, port: 10050, address: 0.0.0.0, access: restricted, allow: [10.78.1.9]}
  - {name: db, port: 5432, address: 127.0.0.1, access: localhost_only}
`

func writeProbePolicy(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bindguard.yaml")
	if err := os.WriteFile(path, []byte(probePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestProbeUsage(t *testing.T) {
	pol := writeProbePolicy(t)
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"probe", "-p", pol}, "--target is required"},
		{[]string{"probe", "-p", pol, "--target", "10.0.0.0/24"}, "not one host"},
		{[]string{"probe", "-p", pol, "--target", "10.0.0.1-20"}, "ranges of hosts"},
		{[]string{"probe", "-p", pol, "--target", "127.0.0.1", "--ports", "0-9"}, "not a port"},
		{[]string{"probe", "-p", pol, "--target", "127.0.0.1", "--rate", "0"}, "--rate"},
		{[]string{"probe", "-p", pol, "--target", "127.0.0.1", "--scope", "nosuch"}, `no scope "nosuch"`},
	} {
		t.Run(strings.Join(tt.args[3:], " "), func(t *testing.T) {
			_, errs, code := run(t, "", tt.args...)
			if code != ExitError || !strings.Contains(errs, tt.msg) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", code, errs, tt.msg)
			}
		})
	}
}

// TestProbeCommandNetns runs the command from an outside client namespace against a server
// namespace: the restricted port is reached from outside its allow list (exit 1, a
// contradiction), the public one is open and the localhost_only one closed.
func TestProbeCommandNetns(t *testing.T) {
	server := netnstest.New(t, "pcsrv")
	client := netnstest.New(t, "pccli")
	netnstest.Connect(t, server, client,
		[]netip.Prefix{netip.MustParsePrefix("10.78.1.1/24"), netip.MustParsePrefix("fd78:1::1/64")},
		[]netip.Prefix{netip.MustParsePrefix("10.78.1.2/24"), netip.MustParsePrefix("fd78:1::2/64")})
	var specs []netnstest.Spec
	for _, s := range []string{"tcp:[::]:8080", "tcp4:0.0.0.0:10050", "tcp4:127.0.0.1:5432"} {
		sp, err := netnstest.ParseSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, sp)
	}
	server.Listen(t, specs...)
	pol := writeProbePolicy(t)

	out, errs, code := run(t, "", "probe", "-p", pol, "--target", "10.78.1.1", "--from", client.Name, "--format", "json", "--timeout", "300ms", "--debug")
	if code != ExitViolation {
		t.Fatalf("exit %d, want 1; stderr %s", code, errs)
	}
	if strings.Count(errs, "msg=probe") != 3 {
		t.Errorf("want 3 probes logged at debug, got:\n%s", errs)
	}
	var doc report.ProbeDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Schema != "bindguard.probe.v1" || doc.Verdict != "violation" || doc.Violations != 1 || doc.Probes != 3 {
		t.Fatalf("doc %+v", doc)
	}
	type row struct{ Service, Protocol, Address, State, Verdict, Source string }
	var got []row
	for _, r := range doc.Results {
		got = append(got, row{r.Service, r.Protocol, r.Address, r.State, r.Verdict, r.Source})
		if r.Service == "zabbix" && (!r.Contradiction || !strings.Contains(r.Reason, "outside its allow list")) {
			t.Errorf("zabbix: %+v", r)
		}
	}
	want := []row{
		{"db", "tcp", "10.78.1.1", "closed", "ok", "10.78.1.2"},
		{"web", "tcp", "10.78.1.1", "open", "ok", "10.78.1.2"},
		{"zabbix", "tcp", "10.78.1.1", "open", "violation", "10.78.1.2"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("results (-want +got)\n%s", d)
	}

	// As if from the allowed host (--source): no violation, in a table.
	out, errs, code = run(t, "", "probe", "-p", pol, "--target", "10.78.1.1", "--from", client.Name, "--source", "10.78.1.9", "--timeout", "300ms")
	if code != ExitOK {
		t.Fatalf("exit %d, want 0; stderr %s\n%s", code, errs, out)
	}
	for _, w := range []string{"bindguard probe of 10.78.1.1 (scope host) from " + client.Path, "ok   3 probes   0 violations", "VERDICT", "zabbix"} {
		if !strings.Contains(out, w) {
			t.Errorf("table lacks %q:\n%s", w, out)
		}
	}

	// IPv6: the IPv4-only services are closed there, the dual-stack one open.
	out, errs, code = run(t, "", "probe", "-p", pol, "--target", "fd78:1::1", "--from", client.Name, "--format", "json", "--timeout", "300ms")
	if code != ExitOK {
		t.Fatalf("exit %d, want 0; stderr %s\n%s", code, errs, out)
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, r := range doc.Results {
		states[r.Service] = r.State
	}
	if d := cmp.Diff(map[string]string{"db": "closed", "web": "open", "zabbix": "closed"}, states); d != "" {
		t.Errorf("IPv6 (-want +got)\n%s", d)
	}
}

// TestProbeGenNftables: gen nftables writes the table for the restricted service only, and
// refuses an unknown scope.
func TestProbeGenNftables(t *testing.T) {
	pol := writeProbePolicy(t)
	out, errs, code := run(t, "", "gen", "nftables", "-p", pol)
	if code != ExitOK || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, w := range []string{"table inet bindguard {", "meta nfproto ipv4 tcp dport 10050 ip saddr @allow4_0 accept", "meta nfproto ipv4 tcp dport 10050 drop", "10.78.1.9"} {
		if !strings.Contains(out, w) {
			t.Errorf("ruleset lacks %q:\n%s", w, out)
		}
	}
	for _, no := range []string{"8080", "5432"} {
		if strings.Contains(out, "dport "+no) {
			t.Errorf("ruleset touches port %s:\n%s", no, out)
		}
	}
	if _, errs, code := run(t, "", "gen", "nftables", "-p", pol, "--scope", "nosuch"); code != ExitError || !strings.Contains(errs, `no scope "nosuch"`) {
		t.Errorf("unknown scope: exit %d, stderr %q", code, errs)
	}
}
