package policy_test

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bindguard/bindguard/policy"
)

func TestScopesDecoded(t *testing.T) {
	p, err := policy.Load("../testdata/policy/valid/scopes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Services) != 2 || len(p.Scopes) != 3 {
		t.Fatalf("%d services, %d scopes", len(p.Services), len(p.Scopes))
	}
	web := p.Scopes[0]
	if web.Name != "web" || !slicesEqual(web.Match, []string{"web-*", "4f2a9c1be3d5"}) || web.Pos.Line != 9 || len(web.Services) != 3 {
		t.Fatalf("web scope: %+v", web)
	}
	if s := web.Services[1]; s.Protocol != policy.TCP || !s.HostCheck || s.Pos.Line != 13 {
		t.Errorf("scope service defaults: %+v", s)
	}
	if got := web.Services[2].AllowPrefixes; len(got) != 1 || got[0] != netip.MustParsePrefix("10.1.1.0/24") {
		t.Errorf("scope allow list resolved to %v against the global networks", got)
	}
	if s := p.Scopes[1].Services[0]; s.HostCheck {
		t.Error("host_check: false in a scope was overridden")
	}
	if p.Scopes[2].Name != "lab" || len(p.Scopes[2].Services) != 0 {
		t.Errorf("lab scope: %+v", p.Scopes[2])
	}
	for ns, want := range map[policy.NamespaceNames]string{
		{Label: "web-3", Container: "web-3"}:                   "web",
		{Label: "net:[4026532200]", Container: "4f2a9c1be3d5"}: "web",
		{Label: "db7", Netns: "db7"}:                           "db",
		{Label: "other"}:                                       policy.HostScope,
		{Host: true, Label: "host"}:                            policy.HostScope,
	} {
		if name, _, _ := p.ScopeFor(ns); name != want {
			t.Errorf("ScopeFor(%+v) = %s, want %s", ns, name, want)
		}
	}
	// A scope that no namespace will ever match is not a policy problem (the audit warns).
	p.Scopes = append(p.Scopes, policy.Scope{Name: "gone", Match: []string{"nothing-runs-here"}})
	if err := policy.Validate(p); err != nil {
		t.Errorf("an unmatched scope is refused: %v", err)
	}
}

func TestScopesMarshalRoundTrip(t *testing.T) {
	p, err := policy.Load("../testdata/policy/valid/scopes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := policy.MarshalCommented(p, []string{"head"}, map[string][]string{"web/": {"the web containers"}, "web/redis": {"its own redis"}, "redis": {"the host's redis"}})
	for _, want := range []string{"scopes:\n  # the web containers\n  - name: \"web\"\n    match: [\"web-*\", \"4f2a9c1be3d5\"]\n    services:\n", "      # its own redis\n      - name: redis\n", "  # the host's redis\n  - name: redis\n", "    services: []\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("marshalled policy lacks %q:\n%s", want, out)
		}
	}
	back, err := policy.Parse("back.yaml", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if diff := cmp.Diff(p, back, meaning); diff != "" {
		t.Errorf("scopes changed by Marshal (-orig +back):\n%s", diff)
	}
}

// TestScopesBuilt validates scopes of a Policy built in code: field paths, no positions, and
// Validate leaves the value as it was.
func TestScopesBuilt(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	p := built()
	p.Scopes = []policy.Scope{
		{Name: "web", Match: []string{"web-*"}, Services: []policy.Service{{Name: "redis", Port: 6379, Address: lo, Access: policy.LocalhostOnly}, {Name: "metrics", Port: 9100, Access: policy.LAN, Allow: []string{"lan"}}}},
		{Name: "db", Match: []string{"db-*", "web-1"}, Services: []policy.Service{{Name: "redis", Port: 6379, Address: lo, Access: policy.LocalhostOnly}}},
		{Name: "host", Match: nil},
	}
	policy.Defaults(p)
	if got := p.Scopes[0].Services[1].AllowPrefixes; len(got) != 1 {
		t.Fatalf("Defaults did not resolve a scope's allow list: %v", got)
	}
	before := policy.Marshal(p)
	err := policy.Validate(p)
	var inv *policy.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("Validate: %v", err)
	}
	var paths []string
	for _, pr := range inv.Problems {
		paths = append(paths, pr.Path)
		if pr.Line != 0 {
			t.Errorf("a built policy's problem has a line: %v", pr)
		}
	}
	want := []string{"scopes[2].name", "scopes[2].match", "scopes[1].match[1]"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("problem paths (-want +got):\n%s\n%v", diff, err)
	}
	if !strings.Contains(err.Error(), `policy: scopes[1].match[1]: "web-1" overlaps scope "web"'s pattern "web-*" (scopes[0].match[0]): both match "web-1"`) {
		t.Errorf("overlap message: %v", err)
	}
	if string(policy.Marshal(p)) != string(before) {
		t.Error("Validate changed the policy")
	}
	// A stale AllowPrefixes in a scope is refused, as in the host's services.
	p.Scopes = p.Scopes[:1]
	p.Scopes[0].Services[1].Allow = []string{"10.9.0.0/16"}
	if err := policy.Validate(p); err == nil || !strings.Contains(err.Error(), "scopes[0].services[1].allow") {
		t.Errorf("stale AllowPrefixes in a scope: %v", err)
	}
	policy.Defaults(p)
	if err := policy.Validate(p); err != nil {
		t.Errorf("after Defaults: %v", err)
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const mainPolicy = `version: 1
networks:
  lan: [10.1.1.0/24]
services:
  - {name: sshd, port: 22, access: public}
scopes:
  - {name: lab, match: [lab], services: []}
`

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"bindguard.yaml": mainPolicy,
		"web.yml":        "not a drop-in: other files in the directory are not read",
		"bindguard.d/20-web.yaml": `version: 1
scopes:
  - name: web
    match: [web-*]
    services:
      - {name: metrics, port: 9100, access: lan, allow: [lan]}
`,
		"bindguard.d/10-db.yaml":   "scopes:\n  - {name: db, match: [db1], services: [{name: pg, port: 5432, address: 127.0.0.1, access: localhost_only}]}\n",
		"bindguard.d/.tmp.yaml":    "broken: [",
		"bindguard.d/notes.txt":    "broken: [",
		"bindguard.d/30-none.yaml": "scopes: []\n",
	})
	for _, load := range []func(string) (*policy.Policy, error){policy.LoadDir, policy.Load} {
		p, err := load(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range p.Scopes {
			names = append(names, s.Name)
		}
		if diff := cmp.Diff([]string{"lab", "db", "web"}, names); diff != "" {
			t.Errorf("scopes in file order (-want +got):\n%s", diff)
		}
		if p.Source != dir || len(p.Services) != 1 || len(p.Scopes[2].Services[0].AllowPrefixes) != 1 {
			t.Errorf("source %q, services %v, scope web %+v", p.Source, p.Services, p.Scopes[2])
		}
	}
	got, err := policy.DropIns(dir)
	want := []string{filepath.Join(dir, "bindguard.d/10-db.yaml"), filepath.Join(dir, "bindguard.d/20-web.yaml"), filepath.Join(dir, "bindguard.d/30-none.yaml")}
	if err != nil || !slicesEqual(got, want) {
		t.Errorf("DropIns = %v, %v", got, err)
	}
	if _, err := policy.LoadDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "has no bindguard.yaml") {
		t.Errorf("a directory without bindguard.yaml: %v", err)
	}
	// Without bindguard.d the directory is its main file alone.
	bare := t.TempDir()
	writeFiles(t, bare, map[string]string{"bindguard.yaml": mainPolicy})
	if p, err := policy.LoadDir(bare); err != nil || len(p.Scopes) != 1 {
		t.Errorf("a directory without drop-ins: %v", err)
	}
}

// TestLoadFilesProblems: every problem of every file at once, each naming its own file and
// line, in file order.
func TestLoadFilesProblems(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "bindguard.yaml")
	a, b, c, d := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml"), filepath.Join(dir, "c.yaml"), filepath.Join(dir, "d.yaml")
	writeFiles(t, dir, map[string]string{
		"bindguard.yaml": mainPolicy,
		"a.yaml":         "services:\n  - {name: x, port: 1, access: public}\ntrusted_proxies: []\nscopes: []\n",
		"b.yaml":         "scopes:\n  - name: lab\n    match: [lab*]\n    services: [{name: r, port: 6379, allow: [nowhere], access: lan}]\n",
		"c.yaml":         "version: 2\nscope: []\n",
		"d.yaml":         "",
	})
	_, err := policy.LoadFiles(main, a, b, c, d)
	var inv *policy.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("LoadFiles: %v", err)
	}
	got := strings.ReplaceAll(err.Error(), dir+"/", "")
	want := `a.yaml:1:1: services: a drop-in holds only scopes: (and version: 1); services belongs in the main policy file, bindguard.yaml
a.yaml:3:1: trusted_proxies: a drop-in holds only scopes: (and version: 1); trusted_proxies belongs in the main policy file, bindguard.yaml
b.yaml:2:11: scopes[0].name: duplicate scope name "lab" (first at bindguard.yaml:7); scope names must be unique
b.yaml:3:13: scopes[0].match[0]: "lab*" overlaps scope "lab"'s pattern "lab" (scopes[0].match[0], bindguard.yaml:7): both match "lab"; a namespace must belong to one scope
b.yaml:4:46: scopes[0].services[0].allow[0]: "nowhere" is neither an IP, a CIDR nor a defined network (networks: lan)
c.yaml:1:1: scopes: missing; a drop-in declares scopes: (scopes: [] declares none)
c.yaml:1:10: version: unsupported version 2; this bindguard reads version 1
c.yaml:2:1: scope: unknown field "scope"; did you mean "scopes"? A drop-in holds only scopes: (and version: 1)
d.yaml:1:1: drop-in is empty: it must declare ` + "`scopes:`"
	if diff := cmp.Diff(strings.Split(want, "\n"), strings.Split(got, "\n")); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	for _, pr := range inv.Problems {
		if pr.Line == 0 {
			t.Errorf("problem without a line: %v", pr)
		}
	}
	// A missing drop-in is an error reading it, not a policy problem.
	if _, err := policy.LoadFiles(main, filepath.Join(dir, "absent.yaml")); err == nil || errors.As(err, &inv) {
		t.Errorf("a missing drop-in: %v", err)
	}
	// The main file's own problems name it, and the drop-ins' are still reported.
	writeFiles(t, dir, map[string]string{"bad-main.yaml": "version: 1\nservices: [{name: x, port: 0, access: public}]\n"})
	_, err = policy.LoadFiles(filepath.Join(dir, "bad-main.yaml"), c)
	got = strings.ReplaceAll(fmtErr(err), dir+"/", "")
	if !strings.HasPrefix(got, "bad-main.yaml:2:") || !strings.Contains(got, "\nc.yaml:1:10: version") {
		t.Errorf("main and drop-in problems:\n%s", got)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
