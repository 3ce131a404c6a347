package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bindguard/bindguard/internal/kernel"
	"github.com/bindguard/bindguard/internal/lxctest"
)

// TestLXCEnforceContainer: a real LXC container is enforced from the host by its name
// (`enforce apply --container NAME`, the scope that matches it): the container's own systemd
// starts redis-server configured `bind 0.0.0.0` and it fails with EPERM in its log (the container's journal), counted
// under its rule; configured `bind 127.0.0.1` it runs; after `enforce remove --container`
// the wildcard bind works again. Both a privileged container and an unprivileged one (its
// uids mapped to 100000 and up on the host).
func TestLXCEnforceContainer(t *testing.T) {
	lxctest.Require(t)
	for _, unpriv := range []bool{false, true} {
		name := "privileged"
		if unpriv {
			name = "unprivileged"
		}
		t.Run(name, func(t *testing.T) {
			lxcEnforce(t, lxctest.New(t, "enf", lxctest.Options{Unprivileged: unpriv}))
		})
	}
}

func lxcEnforce(t *testing.T, c *lxctest.Container) {
	ctx := context.Background()
	pol := filepath.Join(t.TempDir(), "bindguard.yaml")
	src := "version: 1\nservices:\n  - {name: sshd, port: 22, access: public}\nscopes:\n  - name: cache\n    match: [\"" + c.Name + "\"]\n" +
		"    services:\n      - {name: redis, port: 6379, address: 127.0.0.1, access: localhost_only}\n"
	if err := os.WriteFile(pol, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	pins := filepath.Join("/sys/fs/bpf", "bindguard-lxc-test-"+c.Name)
	opts := kernel.EnforceOptions{PinRoot: pins}
	t.Cleanup(func() {
		sts, _ := kernel.EnforcementStatus(opts)
		for _, st := range sts {
			if err := kernel.RemoveEnforcement(st.ID, opts); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		_ = os.RemoveAll(pins)
	})
	cli := func(args ...string) string {
		t.Helper()
		var o bytes.Buffer
		if err := Run(ctx, append(args, "--pin-root", pins), Streams{Out: &o, Err: &o}); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, o.String())
		}
		return o.String()
	}
	// redis-server started by the container's systemd with `bind ADDR`; the error if it fails.
	redis := func(addr string) error {
		t.Helper()
		script := `set -e
sed -i '/^bind /d; /^protected-mode /d; /^logfile /d' /etc/redis/redis.conf
printf 'bind ` + addr + `\nprotected-mode no\nlogfile ""\n' >> /etc/redis/redis.conf
systemctl stop redis-server.service
systemctl reset-failed redis-server.service 2>/dev/null || true
systemctl start redis-server.service
`
		if _, err := c.Run(ctx, strings.NewReader(script), "sh"); err != nil {
			journal, _ := c.Run(ctx, nil, "journalctl", "-u", "redis-server.service", "-n", "15", "--no-pager")
			return fmt.Errorf("%w\n%s", err, journal)
		}
		return c.WaitListening(ctx, []lxctest.Listen{{Proto: "tcp", Local: netip.MustParseAddrPort(addr + ":6379")}}, 30*time.Second)
	}

	if err := redis("0.0.0.0"); err != nil { // before: the test can fail
		t.Fatalf("redis on 0.0.0.0 before enforcement: %v", err)
	}
	if out := cli("enforce", "apply", "--container", c.Name, "--policy", pol); !strings.Contains(out, "lxc.payload."+c.Name+": scope cache, mode deny, 1 rules") {
		t.Fatalf("apply: %s", out)
	}
	if err := redis("0.0.0.0"); err == nil {
		t.Error("redis bound 0.0.0.0:6379 under enforcement")
	}
	// Its log (logfile "": standard output, the container's journal).
	log := c.Attach(t, "journalctl", "-u", "redis-server.service", "--no-pager", "-o", "cat")
	if !strings.Contains(log, "0.0.0.0:6379: bind: Operation not permitted") {
		t.Errorf("redis's log does not show the EPERM:\n%s", log)
	}
	sts, err := kernel.EnforcementStatus(opts)
	if err != nil || len(sts) != 1 || !sts[0].OK() || len(sts[0].Rules) != 1 || sts[0].Rules[0].Denials == 0 {
		t.Errorf("status: %+v %v; want the container's cgroup enforced and the denial counted", sts, err)
	}
	if err := redis("127.0.0.1"); err != nil {
		t.Errorf("redis on 127.0.0.1 under enforcement: %v", err)
	}
	if out := cli("enforce", "remove", "--container", c.Name); !strings.Contains(out, "removed enforcement") {
		t.Errorf("remove: %s", out)
	}
	if err := redis("0.0.0.0"); err != nil {
		t.Errorf("redis on 0.0.0.0 after remove: %v", err)
	}
}
