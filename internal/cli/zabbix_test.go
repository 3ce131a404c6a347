package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/observe"
	"github.com/bindguard/bindguard/internal/report"
	"github.com/bindguard/bindguard/policy"
)

// zabbixPolicy is the golden tests' policy plus a service whose name has a "-", so that the
// discovery naming is exercised.
func zabbixPolicy(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(auditPolicy)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, "  - {name: zabbix-agent, protocol: tcp, port: 10050, address: 0.0.0.0, access: restricted, allow: [192.168.10.3]}\n"...)
	p := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// senderItems parses zabbix_sender input into its keys, in order, and values.
func senderItems(t *testing.T, out string) ([]string, map[string]string) {
	t.Helper()
	var keys []string
	values := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		host, rest, ok := strings.Cut(line, " ")
		key, value, ok2 := strings.Cut(rest, " ")
		if !ok || !ok2 || host != "-" {
			t.Fatalf("sender line %q", line)
		}
		if strings.HasPrefix(value, `"`) {
			value = strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(strings.TrimSuffix(strings.TrimPrefix(value, `"`), `"`))
		}
		keys = append(keys, key)
		values[key] = value
	}
	return keys, values
}

// zabbixTemplate is the part of gen zabbix's template the key scheme touches.
type zabbixTemplate struct {
	Export struct {
		Templates []struct {
			Items []struct {
				Key      string `yaml:"key"`
				Triggers []struct {
					Expression string `yaml:"expression"`
				} `yaml:"triggers"`
			} `yaml:"items"`
			DiscoveryRules []struct {
				Key            string `yaml:"key"`
				ItemPrototypes []struct {
					Key               string `yaml:"key"`
					TriggerPrototypes []struct {
						Expression string `yaml:"expression"`
					} `yaml:"trigger_prototypes"`
				} `yaml:"item_prototypes"`
			} `yaml:"discovery_rules"`
		} `yaml:"templates"`
	} `yaml:"zabbix_export"`
}

// TestZabbixOneKeyScheme: with --prefix aktienanalyse, audit --format zabbix, the template and
// UserParameters of gen zabbix, and zabbix get (from the document the monitor serves for the
// same state) agree on every key, the discovery macros and every value.
func TestZabbixOneKeyScheme(t *testing.T) {
	pol := zabbixPolicy(t)
	args := append([]string{"audit", "--host", "fixture", "--policy", pol, "--format", "zabbix", "--prefix", "aktienanalyse"}, fixtureArgs("basic")...)
	out, errOut, code := runAt(t, args...)
	if code != 1 {
		t.Fatalf("audit exit %d: %s", code, errOut)
	}
	keys, values := senderItems(t, out)
	for _, k := range keys {
		if !strings.HasPrefix(k, "aktienanalyse.") {
			t.Errorf("audit key %q lacks the prefix", k)
		}
	}
	// The seed's three keys are there.
	for _, k := range []string{"aktienanalyse.binding.security.score", "aktienanalyse.port.bindings[invalid]", "aktienanalyse.service.binding[zabbix_agent]"} {
		if _, ok := values[k]; !ok {
			t.Errorf("audit --format zabbix has no %s:\n%s", k, out)
		}
	}

	// The discovery rows name the services as the keys do, with the template's macros.
	var rows []map[string]any
	if err := json.Unmarshal([]byte(values["aktienanalyse.service.discovery"]), &rows); err != nil {
		t.Fatalf("discovery value: %v", err)
	}
	if len(rows) != 7 {
		t.Errorf("%d discovered services, want 7: %v", len(rows), rows)
	}

	gen, errOut, code := run(t, "", "gen", "zabbix", "--prefix", "aktienanalyse")
	if code != 0 {
		t.Fatalf("gen zabbix: %s", errOut)
	}
	const marker = "# ==> bindguard_template.yaml <==\n"
	userParams, tmplText, _ := strings.Cut(gen, marker)
	var tmpl zabbixTemplate
	if err := yaml.Unmarshal([]byte(tmplText), &tmpl); err != nil {
		t.Fatal(err)
	}
	// Two discovery rules: the policy's services and the audited network namespaces.
	if len(tmpl.Export.Templates) != 1 || len(tmpl.Export.Templates[0].DiscoveryRules) != 2 {
		t.Fatalf("template shape: %+v", tmpl)
	}
	tp := tmpl.Export.Templates[0]
	// Every template item, and each discovery rule, has a value.
	var templateKeys []string
	for _, dr := range tp.DiscoveryRules {
		templateKeys = append(templateKeys, dr.Key)
	}
	for _, it := range tp.Items {
		templateKeys = append(templateKeys, it.Key)
		for _, tr := range it.Triggers {
			if !strings.Contains(tr.Expression, "/"+it.Key+")") && !strings.Contains(tr.Expression, "/"+it.Key+",") {
				t.Errorf("trigger %q is not on its item %s", tr.Expression, it.Key)
			}
		}
	}
	for _, k := range templateKeys {
		if _, ok := values[k]; !ok {
			t.Errorf("template key %s has no value in audit --format zabbix", k)
		}
	}
	// Each rule's item prototype, with each discovered row's macros, is a key with a value;
	// and every macro the prototype uses is in every row.
	protoKeys := 0
	for _, dr := range tp.DiscoveryRules {
		if len(dr.ItemPrototypes) != 1 {
			t.Fatalf("discovery rule %s: %d item prototypes, want 1", dr.Key, len(dr.ItemPrototypes))
		}
		var drRows []map[string]any
		if err := json.Unmarshal([]byte(values[dr.Key]), &drRows); err != nil {
			t.Fatalf("discovery value of %s: %v", dr.Key, err)
		}
		if len(drRows) == 0 {
			t.Errorf("%s discovers nothing", dr.Key)
		}
		proto := dr.ItemPrototypes[0].Key
		macros := regexp.MustCompile(`\{#[A-Z]+\}`).FindAllString(proto, -1)
		if len(macros) == 0 {
			t.Fatalf("prototype %s uses no macro", proto)
		}
		for _, row := range drRows {
			k := proto
			for _, m := range macros {
				v, ok := row[m].(string)
				if !ok {
					t.Fatalf("discovery row %v lacks %s", row, m)
				}
				k = strings.ReplaceAll(k, m, v)
			}
			if _, ok := values[k]; !ok {
				t.Errorf("prototype %s for %v: no value for %s", proto, row, k)
			}
			protoKeys++
		}
	}
	// Nothing audit sends is outside the template.
	if got, want := len(keys), len(templateKeys)+protoKeys; got != want {
		t.Errorf("audit sends %d items, the template knows %d:\n%s", got, want, out)
	}
	// Every key audit sends is one the agent's UserParameters answer.
	var params []*regexp.Regexp
	for _, line := range strings.Split(userParams, "\n") {
		if k, ok := strings.CutPrefix(line, "UserParameter="); ok {
			k, _, _ = strings.Cut(k, ",")
			params = append(params, regexp.MustCompile("^"+strings.ReplaceAll(regexp.QuoteMeta(k), `\[\*\]`, `\[[^\],]*\]`)+"$"))
		}
	}
	if len(params) != 6 {
		t.Fatalf("%d UserParameters:\n%s", len(params), userParams)
	}
	for _, k := range keys {
		if !slices.ContainsFunc(params, func(re *regexp.Regexp) bool { return re.MatchString(k) }) {
			t.Errorf("no UserParameter answers %s", k)
		}
	}

	// zabbix get, from the monitor's document for the same state, answers every key audit
	// sends with the same value.
	p, err := policy.Load(pol)
	if err != nil {
		t.Fatal(err)
	}
	o := observeFlags{procRoot: filepath.Join("..", "..", "testdata", "proc", "basic"), netnsDir: filepath.Join("..", "..", "testdata", "proc", "no-netns")}
	o.source.value, o.ownerScan.value = string(observe.SourceAuto), "auto"
	snap, err := observe.Observe(o.options())
	if err != nil {
		t.Fatal(err)
	}
	rep := audit.Judge(p, snap.Sockets)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/zabbix" {
			http.NotFound(w, r)
			return
		}
		_ = report.NewZabbixDoc(rep).Encode(w)
	}))
	defer srv.Close()
	for _, k := range keys {
		got, errOut, code := run(t, "", "zabbix", "get", "--prefix", "aktienanalyse", "--url", srv.URL, k)
		if code != 0 || strings.TrimSuffix(got, "\n") != values[k] {
			t.Errorf("zabbix get %s = %q (exit %d, %s), audit sends %q", k, got, code, errOut, values[k])
		}
	}
	// The policy's spelling of a service is answered too; another prefix is not.
	if got, _, code := run(t, "", "zabbix", "get", "--prefix", "aktienanalyse", "--url", srv.URL, "aktienanalyse.service.binding[zabbix-agent]"); code != 0 || got != values["aktienanalyse.service.binding[zabbix_agent]"]+"\n" {
		t.Errorf("zabbix get service.binding[zabbix-agent] = %q, exit %d", got, code)
	}
	if _, _, code := run(t, "", "zabbix", "get", "--url", srv.URL, "aktienanalyse.binding.security.score"); code != 2 {
		t.Errorf("zabbix get with the default prefix answered an aktienanalyse key: exit %d", code)
	}
	if got, _, code := run(t, "", "zabbix", "get", "--url", srv.URL, "bindguard.binding.security.score"); code != 0 || got != values["aktienanalyse.binding.security.score"]+"\n" {
		t.Errorf("zabbix get with the default prefix: %q exit %d", got, code)
	}
}

// TestZabbixDefaultPrefix: the one default prefix is bindguard, for all three commands.
func TestZabbixDefaultPrefix(t *testing.T) {
	out, _, _ := runAt(t, append([]string{"audit", "--policy", auditPolicy, "--format", "zabbix"}, fixtureArgs("basic")...)...)
	gen, _, code := run(t, "", "gen", "zabbix")
	if code != 0 {
		t.Fatal("gen zabbix failed")
	}
	for _, want := range []string{"- bindguard.binding.security.score ", "- bindguard.service.discovery "} {
		if !strings.Contains(out, want) {
			t.Errorf("audit --format zabbix lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{"UserParameter=bindguard.binding.security.score,/usr/local/bin/bindguard zabbix get --prefix bindguard bindguard.binding.security.score", "key: 'bindguard.service.discovery'"} {
		if !strings.Contains(gen, want) {
			t.Errorf("gen zabbix lacks %q", want)
		}
	}
	if _, _, code := run(t, "", "audit", "--format", "zabbix", "--prefix", "Bad Prefix"); code != 2 {
		t.Errorf("audit --prefix 'Bad Prefix' exit %d, want 2", code)
	}
}
