package systemd_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bindguard/bindguard/internal/gen/systemd"
	"github.com/bindguard/bindguard/internal/golden"
	"github.com/bindguard/bindguard/internal/netnstest"
)

// runCases are units that start their service through `bindguard run`.
var runCases = []genCase{
	{"seed-core-run.service", systemd.Options{Service: "intelligent_core_service", Run: true, PolicyPath: "/etc/bindguard/bindguard.yaml",
		Exec: "/usr/bin/gunicorn --chdir /opt/core app:app", User: "aktien"}},
	{"seed-core-run-guard.service", systemd.Options{Service: "intelligent_core_service", Run: true, Guard: true, PolicyPath: "/etc/bindguard/bindguard.yaml",
		Exec: `/bin/sh -c "exec /usr/bin/gunicorn --bind unix:$BINDGUARD_UPSTREAM --chdir /opt/core app:app 100%"`}},
	// The unit's own cgroup enforced (ExecStartPre=+), the service started through run.
	{"seed-core-run-enforce.service", systemd.Options{Service: "intelligent_core_service", Run: true, Enforce: true, PolicyPath: "/etc/bindguard/bindguard.yaml",
		Exec: "/usr/bin/gunicorn --chdir /opt/core app:app", User: "aktien"}},
}

func TestRunUnits(t *testing.T) {
	p := load(t, seed)
	for _, c := range runCases {
		t.Run(c.golden, func(t *testing.T) {
			out, err := systemd.Generate(p, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", c.golden), string(out), *update)
		})
	}
}

// TestRunUnitsVerify: systemd-analyze verify accepts the units (bindguard is /bin/true here,
// which verify needs to exist).
func TestRunUnitsVerify(t *testing.T) {
	bin := netnstest.RequireTool(t, "systemd-analyze", "systemd")
	p := load(t, seed)
	for _, c := range runCases {
		t.Run(c.golden, func(t *testing.T) {
			o := c.opts
			o.Bindguard = "/bin/true"
			out, err := systemd.Generate(p, o)
			if err != nil {
				t.Fatal(err)
			}
			unit := filepath.Join(t.TempDir(), "bg-test.service")
			if err := os.WriteFile(unit, out, 0o600); err != nil {
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

func TestRunUnitErrors(t *testing.T) {
	p := load(t, seed)
	for _, tc := range []struct {
		name string
		o    systemd.Options
		want string
	}{
		{"drop-in", systemd.Options{Service: "redis", Run: true, DropIn: true}, "not a --drop-in"},
		{"no exec", systemd.Options{Service: "redis", Run: true}, "needs --exec"},
		{"guard public", systemd.Options{Service: "nginx_proxy_https", Run: true, Guard: true, Exec: "/usr/sbin/nginx"}, "only a TCP service of a class that limits its clients"},
		{"bindguard path with a space", systemd.Options{Service: "redis", Run: true, Exec: "/usr/bin/redis-server", Bindguard: "/usr/bin/bind guard"}, "bindguard path"},
		{"bindguard path with a newline", systemd.Options{Service: "redis", Run: true, Exec: "/usr/bin/redis-server", Bindguard: "/usr/bin/bg\nExecStartPre=/bin/evil"}, "bindguard path"},
		{"relative policy path", systemd.Options{Service: "redis", Run: true, Exec: "/usr/bin/redis-server", PolicyPath: "bindguard.yaml"}, "policy path"},
		{"policy path with $", systemd.Options{Service: "redis", Run: true, Exec: "/usr/bin/redis-server", PolicyPath: "/etc/$HOME.yaml"}, "policy path"},
		{"exec with a control character", systemd.Options{Service: "redis", Run: true, Exec: "/usr/bin/redis-server\r\nUser=root"}, "--exec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := systemd.Generate(p, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q; unit:\n%s", err, tc.want, out)
			}
		})
	}
}
