package systemd_test

import (
	"flag"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bindguard/bindguard/internal/netnstest"

	"github.com/bindguard/bindguard/internal/gen/systemd"
	"github.com/bindguard/bindguard/internal/golden"
	"github.com/bindguard/bindguard/policy"
)

var update = flag.Bool("update", false, "rewrite golden files")

const seed = "../../../testdata/seed/service-bindings.yaml"

func load(t *testing.T, path string) *policy.Policy {
	t.Helper()
	p, err := policy.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	p.Source = filepath.Base(path)
	return p
}

type genCase struct {
	golden string
	opts   systemd.Options
}

var cases = []genCase{
	// The seed's core unit (section 2.3), from the seed's policy.
	{"seed-core.service", systemd.Options{Service: "intelligent_core_service", Exec: "/usr/bin/python3 /opt/aktienanalyse/services/intelligent-core-service/src/app.py", User: "aktien",
		Egress: []netip.Prefix{netip.MustParsePrefix("10.1.1.50/32")}}},
	{"seed-zabbix-agent.service", systemd.Options{Service: "zabbix_agent", Exec: "/usr/sbin/zabbix_agentd --foreground"}},
	{"seed-nginx-https.service", systemd.Options{Service: "nginx_proxy_https", Exec: "/usr/sbin/nginx -g 'daemon off;'"}},
	{"seed-redis.conf", systemd.Options{Service: "redis", DropIn: true}},
	{"self.service", systemd.Options{Self: true, PolicyPath: "/etc/bindguard/bindguard.yaml"}},
	// Kernel enforcement of the unit's cgroup, in a drop-in and in a whole unit.
	{"seed-redis-enforce.conf", systemd.Options{Service: "redis", DropIn: true, Enforce: true, PolicyPath: "/etc/bindguard/bindguard.yaml"}},
	{"seed-zabbix-agent-enforce.service", systemd.Options{Service: "zabbix_agent", Exec: "/usr/sbin/zabbix_agentd --foreground", Enforce: true,
		PolicyPath: "/etc/bindguard/bindguard.yaml", Bindguard: "/usr/local/bin/bindguard"}},
}

func TestGolden(t *testing.T) {
	p := load(t, seed)
	for _, c := range cases {
		out, err := systemd.Generate(p, c.opts)
		if err != nil {
			t.Fatalf("%s: %v", c.golden, err)
		}
		golden.Check(t, filepath.Join("testdata", c.golden), string(out), *update)
	}
}

func TestErrors(t *testing.T) {
	p := load(t, seed)
	for _, c := range []struct {
		opts systemd.Options
		want string
	}{
		{systemd.Options{Service: "nope", Exec: "/bin/true"}, `declares no service "nope"`},
		{systemd.Options{Service: "redis"}, "needs --exec"},
		{systemd.Options{Service: "redis", Exec: "redis-server"}, "absolute path"},
		{systemd.Options{Service: "redis", Exec: "/bin/x\nExecStartPre=/bin/evil"}, "absolute path"},
		{systemd.Options{Service: "redis", Exec: "/bin/true", User: "root\nUser=x"}, "not a user name"},
		{systemd.Options{Self: true, PolicyPath: "/etc/x y.yaml"}, "without spaces"},
		{systemd.Options{Self: true, PolicyPath: "/etc/$HOME/p.yaml"}, "policy path"},
		{systemd.Options{Self: true, Enforce: true}, "not bindguard's own"},
		{systemd.Options{Service: "redis", DropIn: true, Enforce: true, PolicyPath: "bindguard.yaml"}, "policy path"},
		{systemd.Options{Service: "redis", DropIn: true, Enforce: true, Bindguard: "bindguard"}, "bindguard path"},
	} {
		if _, err := systemd.Generate(p, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.opts, err, c.want)
		}
	}
}

// TestSystemdAnalyzeVerify runs systemd-analyze verify on every generated unit; any warning
// fails (verify exits 0 on directives it ignores).
func TestSystemdAnalyzeVerify(t *testing.T) {
	bin := netnstest.RequireTool(t, "systemd-analyze", "systemd")
	p := load(t, seed)
	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			o := c.opts
			o.Bindguard = "/bin/true" // ExecStartPre='s program must exist too
			// verify checks that ExecStart's program exists: run /bin/true with the arguments.
			if o.Exec != "" || o.Self {
				o.Exec = "/bin/true " + strings.Join(strings.Fields(o.Exec), " ")
				o.Exec = strings.TrimSpace(strings.ReplaceAll(o.Exec, "'", ""))
			}
			out, err := systemd.Generate(p, o)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			unit := filepath.Join(dir, "bg-test.service")
			if o.DropIn {
				base := "[Unit]\nDescription=base\n[Service]\nExecStart=/bin/true\n"
				if err := os.WriteFile(unit, []byte(base), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(unit+".d", 0o750); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(unit+".d", "bindguard.conf"), out, 0o600); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(unit, out, 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "verify", unit) // #nosec G204 -- systemd-analyze on our own file
			cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=notice")
			res, err := cmd.CombinedOutput()
			if err != nil || strings.TrimSpace(string(res)) != "" {
				t.Fatalf("systemd-analyze verify: %v\n%s\n--- unit:\n%s", err, res, out)
			}
		})
	}
}
