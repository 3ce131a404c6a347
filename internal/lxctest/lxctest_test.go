package lxctest

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSS(t *testing.T) {
	out := `udp   UNCONN 0      0          127.0.0.1%lo:53         0.0.0.0:*    users:(("dnsmasq",pid=12,fd=4))
tcp   LISTEN 0      511          0.0.0.0:6379       0.0.0.0:*    users:(("redis-server",pid=85,fd=6))
tcp   LISTEN 0      511             [::]:6379          [::]:*    users:(("redis-server",pid=85,fd=7))
tcp   LISTEN 0      128                *:8080             *:*    users:(("python3",pid=90,fd=3),("python3",pid=91,fd=3))
tcp   LISTEN 0      128   [::ffff:127.0.0.1]:9000         *:*
`
	got, err := ParseSS(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []Socket{
		{"tcp", netip.MustParseAddrPort("0.0.0.0:6379"), "redis-server", 85},
		{"tcp", netip.MustParseAddrPort("127.0.0.1:9000"), "", 0},
		{"tcp", netip.MustParseAddrPort("[::]:6379"), "redis-server", 85},
		{"tcp", netip.MustParseAddrPort("[::]:8080"), "python3", 90},
		{"udp", netip.MustParseAddrPort("127.0.0.1:53"), "dnsmasq", 12},
	}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); d != "" {
		t.Errorf("(-want +got)\n%s", d)
	}
	if _, err := ParseSS("tcp LISTEN 0 1 nonsense 0.0.0.0:*\n"); err == nil {
		t.Error("ParseSS accepted a local address without a port")
	}
}

func TestAptMirrors(t *testing.T) {
	m, s := aptMirrors()
	if !strings.HasPrefix(m, "http") || !strings.HasPrefix(s, "http") {
		t.Errorf("mirrors %q %q", m, s)
	}
}

// TestUnprivileged makes an unprivileged container: its root is IDMapBase on the host, and
// /etc/subuid and /etc/subgid are as they were once it is gone.
func TestUnprivileged(t *testing.T) {
	Require(t)
	// The files are read under the harness's lock, and only mean "as they were" when no other
	// unprivileged container of the harness (another test binary's) holds the ids already.
	unlock, err := lock()
	if err != nil {
		t.Fatal(err)
	}
	before, shared := map[string]string{}, unprivileged()
	for _, f := range subidFiles {
		b, err := os.ReadFile(f)
		before[f] = fmt.Sprintf("%q %v", b, err)
	}
	unlock()
	t.Run("new", func(t *testing.T) {
		c := New(t, "unpriv", Options{Unprivileged: true})
		m, err := os.ReadFile(filepath.Join("/proc", itoa(c.InitPID()), "uid_map"))
		if err != nil || !strings.Contains(strings.Join(strings.Fields(string(m)), " "), fmt.Sprintf("0 %d %d", IDMapBase, IDMapSize)) {
			t.Errorf("init's uid_map: %q, %v", m, err)
		}
		if got := strings.TrimSpace(c.Attach(t, "id", "-u")); got != "0" {
			t.Errorf("id -u inside: %q", got)
		}
		if got := strings.TrimSpace(c.Attach(t, "stat", "-c", "%u", "/usr/bin/passwd")); got != "0" {
			t.Errorf("/usr/bin/passwd inside is owned by %s, want 0", got)
		}
	})
	if shared || unprivileged() {
		// Another test binary (go test runs packages in parallel) had or still has an
		// unprivileged container: the ids stay until the last one is gone, as
		// restoreSubidsIfUnused says, so "before" is not the machine's own state.
		t.Log("another unprivileged container of the harness existed; the restore is checked by the last one out")
		return
	}
	for _, f := range subidFiles {
		b, err := os.ReadFile(f)
		if got := fmt.Sprintf("%q %v", b, err); got != before[f] {
			t.Errorf("%s after cleanup: %s, before: %s", f, got, before[f])
		}
	}
}

// TestContainer makes one container and checks what the harness promises: booted, its address
// on the bridge, commands run inside, the init pid and namespace are the host's view of it, and
// everything is gone after cleanup.
func TestContainer(t *testing.T) {
	var name string
	t.Run("new", func(t *testing.T) {
		c := New(t, "self", Options{})
		name = c.Name
		if !strings.HasPrefix(c.Name, NamePrefix+"self-") {
			t.Errorf("name %q", c.Name)
		}
		if out := c.Attach(t, "ip", "-4", "-o", "addr", "show", "eth0"); !strings.Contains(out, c.Address.String()+"/24") {
			t.Errorf("eth0 inside: %s, want %s", out, c.Address)
		}
		if out := c.Attach(t, "ip", "route"); strings.Contains(out, "default") {
			t.Errorf("the container has a route out: %s", out)
		}
		if got := strings.TrimSpace(c.Attach(t, "cat", "/proc/1/comm")); got != "systemd" {
			t.Errorf("init inside is %q", got)
		}
		if comm, err := os.ReadFile(filepath.Join("/proc", itoa(c.InitPID()), "comm")); err != nil || strings.TrimSpace(string(comm)) != "systemd" {
			t.Errorf("host pid %d is %q (%v), want systemd", c.InitPID(), comm, err)
		}
		self, _ := os.Readlink("/proc/self/ns/net")
		if ns, err := os.Readlink(c.NetnsPath()); err != nil || ns == self {
			t.Errorf("netns %s: %q, %v (host: %s)", c.NetnsPath(), ns, err, self)
		}
		if out := c.Attach(t, "ss", "-Htulnp"); strings.TrimSpace(out) != "" {
			t.Errorf("a fresh container listens already:\n%s", out)
		}
		c.WriteFile(t, "/tmp/x", "hello\n")
		if got := c.Attach(t, "cat", "/tmp/x"); got != "hello\n" {
			t.Errorf("WriteFile then cat: %q", got)
		}
	})
	if name == "" {
		return
	}
	if _, err := os.Stat(filepath.Join(lxcPath(), name)); err == nil {
		t.Errorf("%s still exists after cleanup", name)
	}
}

// unprivileged tells whether an unprivileged container of the harness exists.
func unprivileged() bool {
	for _, conf := range ours() {
		if strings.Contains(conf, "lxc.idmap") {
			return true
		}
	}
	return false
}
