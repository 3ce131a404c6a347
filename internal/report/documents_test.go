package report_test

import (
	"bytes"
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bindguard/bindguard/internal/golden"
	"github.com/bindguard/bindguard/internal/report"
	"github.com/bindguard/bindguard/policy"
)

var update = flag.Bool("update", false, "rewrite golden files")

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name), got, *update)
}

// TestAuditDocumentGolden: bindguard.audit.v1, as /api/v1/audit writes it: unchanged by v2.
func TestAuditDocumentGolden(t *testing.T) {
	m, r := sample(t)
	var b bytes.Buffer
	if err := report.JSONv1(&b, m, r); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "audit.json", b.String())
}

// TestPolicyDocumentGolden: bindguard.policy.v1, decoded back.
func TestPolicyDocumentGolden(t *testing.T) {
	p, err := policy.Parse("t.yaml", []byte(`version: 1
networks:
  lan: [10.1.1.0/24]
services:
  - {name: core, protocol: tcp, port: 8001, address: 127.0.0.1, access: localhost_only, process: core}
  - {name: zabbix-agent, protocol: tcp, port: 10050, access: restricted, allow: [10.1.1.103], description: the agent}
  - {name: dns, protocol: udp, port: 53, address: "::", v6only: true, access: public}
`))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := report.NewPolicyDoc(p).Encode(&b); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "policy.json", b.String())
	back, err := report.DecodePolicyDoc(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(report.NewPolicyDoc(p), *back); diff != "" {
		t.Errorf("decoded view differs (-want +got):\n%s", diff)
	}
	if _, err := report.DecodePolicyDoc(strings.NewReader(`{"schema":"bindguard.audit.v1"}`)); err == nil {
		t.Error("an audit document was read as a policy view")
	}
}
