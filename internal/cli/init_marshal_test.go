package cli

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goccy/go-yaml"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/policy"
)

// TestMarshalDraftScopes: init's output is YAML with the host's services and a scopes: list
// (the unstable namespace's commented out), each scope's services in the policy's own form.
func TestMarshalDraftScopes(t *testing.T) {
	l := func(ns, addr string, port uint16) observed.Listener {
		a := observed.Listener{Netns: ns, Owner: observed.OwnerKnown, Owners: []observed.Process{{PID: 5, Name: "redis-server"}}}
		a.Protocol, a.Port, a.Family, a.V6Only = observed.TCP, port, observed.IPv4, observed.V6OnlyNA
		a.Addr = netip.MustParseAddr(addr)
		return a
	}
	d := audit.DraftPolicy(observed.Observation{
		Namespaces: []observed.Namespace{{Label: "host", Host: true}, {Label: "web[1]", Container: "web[1]"}, {Label: "net:[77]", Inode: 77}},
		Listeners:  []observed.Listener{l("host", "0.0.0.0", 22), l("web[1]", "0.0.0.0", 6379), l("net:[77]", "127.0.0.1", 9000)},
	})
	policy.Defaults(d.Policy)
	if err := policy.Validate(d.Policy); err != nil {
		t.Fatal(err)
	}
	data, err := marshalDraft(d, []string{"a header"})
	if err != nil {
		t.Fatal(err)
	}
	out := string(data)
	var doc struct {
		Services []map[string]any `yaml:"services"`
		Scopes   []struct {
			Name     string           `yaml:"name"`
			Match    []string         `yaml:"match"`
			Services []map[string]any `yaml:"services"`
		} `yaml:"scopes"`
	}
	if err := yaml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, out)
	}
	if len(doc.Services) != 1 || len(doc.Scopes) != 1 || doc.Scopes[0].Name != "web-1" || doc.Scopes[0].Match[0] != `web\[1\]` ||
		len(doc.Scopes[0].Services) != 1 || doc.Scopes[0].Services[0]["access"] != "localhost_only" {
		t.Errorf("decoded %+v from\n%s", doc, out)
	}
	if !strings.Contains(out, "\n#   - name: \"netns-77\"\n") || !strings.Contains(out, "\n#       - name: ") {
		t.Errorf("the unstable scope is not written commented out:\n%s", out)
	}
	// The whole file reads back as the drafted policy, scopes included.
	back, err := policy.Parse("init.yaml", data)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(back.Scopes) != 1 || back.Scopes[0].Name != "web-1" || len(back.Scopes[0].Services) != 1 ||
		back.Scopes[0].Services[0].Port != 6379 || !back.Scopes[0].Matches(policy.NamespaceNames{Container: "web[1]"}) {
		t.Errorf("read back %+v", back.Scopes)
	}
}

// TestInitUnstableNamespace: a namespace with no name (a process in a namespace of its own,
// as unshare makes it) is written as a commented-out scope, with a warning on stderr.
func TestInitUnstableNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a network namespace (unshare --net)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare (util-linux) not found")
	}
	cmd := exec.Command(unshare, "--net", "sleep", "600") // #nosec G204 -- a fixed command
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	nsPath := fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
	var st unix.Stat_t
	for range 200 { // until unshare has exec'd sleep in its new namespace
		self, _ := os.Readlink("/proc/self/ns/net")
		if link, err := os.Readlink(nsPath); err == nil && link != self {
			if err := unix.Stat(nsPath, &st); err != nil {
				t.Fatal(err)
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st.Ino == 0 {
		t.Fatal("the unshared namespace did not appear")
	}
	out, errOut, code := runAt(t, "init", "--netns", "all")
	if code != ExitOK {
		t.Fatalf("init --netns all: exit %d: %s", code, errOut)
	}
	label := fmt.Sprintf("net:[%d]", st.Ino)
	if !strings.Contains(errOut, "warning: netns "+label+" has no stable name") {
		t.Errorf("no warning for %s on stderr:\n%s", label, errOut)
	}
	if !strings.Contains(out, fmt.Sprintf("\n#   - name: \"netns-%d\"\n", st.Ino)) || strings.Contains(out, fmt.Sprintf("\n  - name: \"netns-%d\"\n", st.Ino)) {
		t.Errorf("%s is not a commented-out scope:\n%s", label, out)
	}
}
