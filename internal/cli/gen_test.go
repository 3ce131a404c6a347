package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	} {
		if _, errOut, code := run(t, "", tc.args...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d: %s; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestGenNeedsAPolicy(t *testing.T) {
	t.Chdir(t.TempDir()) // no ./bindguard.yaml
	if _, err := os.Stat("/etc/bindguard/bindguard.yaml"); err == nil {
		t.Skip("/etc/bindguard/bindguard.yaml exists on this machine")
	}
	if _, errOut, code := run(t, "", "gen", "nginx"); code != 2 || !strings.Contains(errOut, "not the built-in catalogue") {
		t.Errorf("no policy: exit %d: %s", code, errOut)
	}
}
