package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/bindguard/bindguard/internal/report"
)

const seedProxy = "../../testdata/seed/service-bindings-proxy.yaml"

func TestGenNginx(t *testing.T) {
	out, errOut, code := run(t, "", "gen", "nginx", "-p", seedProxy)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"# ==> bindguard.conf <==", "# ==> bindguard-security.conf <==", "proxy_pass http://127.0.0.1:8001;", "limit_req_zone"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	dir := t.TempDir()
	if _, errOut, code := run(t, "", "gen", "nginx", "-p", seedProxy, "-o", dir); code != 0 {
		t.Fatalf("--output: exit %d: %s", code, errOut)
	}
	site, err := os.ReadFile(filepath.Join(dir, "bindguard.conf"))
	if err != nil || !strings.Contains(out, string(site)) {
		t.Errorf("written site differs from standard output (%v)", err)
	}
	if _, errOut, code := run(t, "", "gen", "nginx", "-p", seedProxy, "-o", dir); code != 2 || !strings.Contains(errOut, "use --force") {
		t.Errorf("second write without --force: exit %d: %s", code, errOut)
	}
	if _, errOut, code := run(t, "", "gen", "nginx", "-p", seed); code != 2 || !strings.Contains(errOut, "has no proxy section") {
		t.Errorf("policy without proxy: exit %d: %s", code, errOut)
	}
}

func TestGenSystemd(t *testing.T) {
	out, errOut, code := run(t, "", "gen", "systemd", "-p", seed, "--service", "redis", "--exec", "/usr/bin/redis-server /etc/redis/redis.conf", "--allow-egress", "10.1.1.7", "--allow-egress", "10.2.0.0/16")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"SocketBindAllow=ipv4:tcp:6379", "IPAddressAllow=localhost", "IPAddressAllow=10.1.1.7/32", "IPAddressAllow=10.2.0.0/16", "Environment=BIND_ADDRESS=127.0.0.1"} {
		if !strings.Contains(out, want) {
			t.Errorf("unit lacks %q:\n%s", want, out)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"gen", "systemd", "-p", seed}, "give --service NAME, or --self"},
		{[]string{"gen", "systemd", "-p", seed, "--service", "redis", "--self"}, "give --service NAME, or --self"},
		{[]string{"gen", "systemd", "-p", seed, "--service", "redis", "--exec", "/bin/x", "--allow-egress", "nope"}, "want an IP address or CIDR"},
		{[]string{"gen", "systemd", "-p", seed, "--service", "redis"}, "needs --exec"},
		{[]string{"gen", "systemd", "-p", seed, "--self", "--", "--watch", "sometimes"}, "must be one of auto, kernel, poll"},
		{[]string{"gen", "systemd", "-p", seed, "--self", "--", "--data", "/x"}, "--data is set by the unit"},
		{[]string{"gen", "systemd", "-p", seed, "--self", "--", "--netns", "all", "stray"}, `unexpected argument "stray"`},
		{[]string{"gen", "systemd", "-p", seed, "--self", "extra"}, "serve flags for --self go after --"},
		{[]string{"gen", "systemd", "-p", seed, "--service", "redis", "--exec", "/bin/x", "--", "--netns", "all"}, "serve flags after -- are for --self"},
	} {
		if _, errOut, code := run(t, "", tc.args...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d: %s; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestGenSystemdSelfServeFlags: the self unit runs serve over every namespace with the kernel
// event source by default; serve flags after -- replace those.
func TestGenSystemdSelfServeFlags(t *testing.T) {
	seed := filepath.Join("..", "..", "testdata", "seed", "service-bindings.yaml")
	out, errOut, code := run(t, "", "gen", "systemd", "-p", seed, "--self", "--self-policy", "/etc/bindguard/bindguard.yaml")
	if code != 0 || !strings.Contains(out, "--data /var/lib/bindguard --netns all --watch kernel\n") {
		t.Errorf("default: exit %d %s\n%s", code, errOut, out)
	}
	out, errOut, code = run(t, "", "gen", "systemd", "-p", seed, "--self", "--self-policy", "/etc/bindguard/bindguard.yaml", "--", "--netns", "all", "--watch", "auto", "--grace=30s")
	if code != 0 || !strings.Contains(out, "--data /var/lib/bindguard --netns all --watch auto --grace=30s\n") {
		t.Errorf("with serve flags: exit %d %s\n%s", code, errOut, out)
	}
}

func TestGenNeedsAPolicy(t *testing.T) {
	// The search paths point at files that do not exist, whatever this machine has in /etc.
	dir := t.TempDir()
	var out, errb bytes.Buffer
	err := Run(context.Background(), []string{"gen", "nginx"}, Streams{In: strings.NewReader(""), Out: &out, Err: &errb,
		PolicyPaths: []string{filepath.Join(dir, "bindguard.yaml"), filepath.Join(dir, "etc.yaml")}})
	if code := ExitCode(err); code != 2 || !strings.Contains(errb.String(), "not the built-in catalogue") {
		t.Errorf("no policy: exit %d: %s", code, errb.String())
	}
}

func TestGenZabbix(t *testing.T) {
	out, errOut, code := run(t, "", "gen", "zabbix", "--prefix", "shop.bindings")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"UserParameter=shop.bindings.port.bindings[*],/usr/local/bin/bindguard zabbix get --prefix shop.bindings 'shop.bindings.port.bindings[$1]'",
		"UserParameter=shop.bindings.binding.security.score,",
		"key: 'shop.bindings.service.discovery'",
		"expression: 'last(/bindguard shop.bindings port bindings/shop.bindings.port.bindings[invalid])>0'",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	tmpl := out[strings.Index(out, "# ==> bindguard_template.yaml <==\n")+len("# ==> bindguard_template.yaml <==\n"):]
	var doc struct {
		Export struct {
			Version   string `yaml:"version"`
			Templates []struct {
				Items          []map[string]any `yaml:"items"`
				DiscoveryRules []map[string]any `yaml:"discovery_rules"`
			} `yaml:"templates"`
		} `yaml:"zabbix_export"`
	}
	if err := yaml.Unmarshal([]byte(tmpl), &doc); err != nil {
		t.Fatalf("template is not YAML: %v", err)
	}
	if doc.Export.Version != "6.0" || len(doc.Export.Templates) != 1 || len(doc.Export.Templates[0].Items) != 5 || len(doc.Export.Templates[0].DiscoveryRules) != 2 {
		t.Errorf("template shape: %+v", doc)
	}
	for _, bad := range [][]string{{"--prefix", "Bad Prefix"}, {"--bindguard", "bindguard"}, {"--url", "http://x/;rm"}} {
		if _, _, code := run(t, "", append([]string{"gen", "zabbix"}, bad...)...); code != 2 {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestZabbixValue(t *testing.T) {
	doc := &report.ZabbixDoc{Fields: map[string]int{"port_binding_security_score": 85, "port_bindings_invalid": 2, "service_binding_correct_zabbix_agent": 1}, Services: []string{"zabbix-agent"}}
	for key, want := range map[string]string{
		"aktienanalyse.binding.security.score":        "85",
		"aktienanalyse.port.bindings[invalid]":        "2",
		"aktienanalyse.service.binding[zabbix-agent]": "1",
		"aktienanalyse.service.binding[zabbix_agent]": "1",
		"aktienanalyse.service.discovery":             `[{"{#SERVICE}":"zabbix_agent"}]`,
		"aktienanalyse.service.binding[nope]":         "error",
		"aktienanalyse.port.bindings[bogus]":          "error",
		"other.binding.security.score":                "error",
		"aktienanalyse.port.bindings":                 "error",
	} {
		got, err := zabbixValue(doc, "aktienanalyse", key)
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
}
