package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const scopesPolicy = "../../testdata/policy/valid/scopes.yaml"

func TestPolicyScopesOutputs(t *testing.T) {
	for _, tt := range []struct {
		golden string
		args   []string
	}{
		{"show-scopes.table", []string{"policy", "show", scopesPolicy}},
		{"show-scopes.json", []string{"policy", "show", "--format", "json", scopesPolicy}},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			out, errs, code := run(t, "", tt.args...)
			if code != 0 || errs != "" {
				t.Fatalf("exit %d, stderr %q", code, errs)
			}
			checkGolden(t, tt.golden, out)
		})
	}
	out, _, code := run(t, "", "policy", "check", scopesPolicy)
	if code != 0 || out != scopesPolicy+": ok (2 services, 3 scopes)\n" {
		t.Errorf("check: exit %d, %q", code, out)
	}
	// convert writes the scopes, and what it writes loads back to the same view.
	converted, _, code := run(t, "", "policy", "convert", scopesPolicy)
	if code != 0 || !strings.Contains(converted, "scopes:\n  - name: \"web\"\n    match: [\"web-*\", \"4f2a9c1be3d5\"]\n") {
		t.Fatalf("convert: exit %d\n%s", code, converted)
	}
	want, _, _ := run(t, "", "policy", "show", "--format", "json", scopesPolicy)
	back, _, code := run(t, converted, "policy", "show", "--format", "json", "-")
	if code != 0 || strings.Replace(back, `"source": "\u003cstdin\u003e"`, `"source": "`+scopesPolicy+`"`, 1) != want {
		t.Errorf("the converted policy shows differently:\n%s\nwant\n%s", back, want)
	}
}

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPolicySearchDropIns: the default search reads bindguard.d/*.yaml beside bindguard.yaml,
// --policy takes a directory, and drop-ins without their main file are an error.
func TestPolicySearchDropIns(t *testing.T) {
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc")
	writeTree(t, etc, map[string]string{
		"bindguard.yaml":            "version: 1\nservices:\n  - {name: sshd, port: 22, access: public}\n",
		"bindguard.d/web-1.yaml":    "scopes:\n  - {name: web-1, match: [web-1], services: [{name: nginx, port: 443, access: public}]}\n",
		"bindguard.d/web-2.yaml":    "scopes:\n  - {name: web-2, match: [web-2], services: []}\n",
		"bindguard.d/readme.txt":    "not read",
		"other/bindguard.yaml":      "version: 1\nservices: []\n",
		"lonely/bindguard.d/a.yaml": "scopes: []\n",
	})
	s := Streams{PolicyPaths: []string{filepath.Join(dir, "absent.yaml"), filepath.Join(etc, "bindguard.yaml")}}
	path, err := findPolicyPath(s, "")
	if err != nil || path != etc {
		t.Fatalf("findPolicyPath = %q, %v; want the directory %s", path, err, etc)
	}
	p, err := findPolicy(s, "")
	if err != nil || len(p.Services) != 1 || len(p.Scopes) != 2 || p.Scopes[1].Name != "web-2" {
		t.Fatalf("findPolicy: %v, %+v", err, p)
	}
	// Without bindguard.d the main file is found as itself.
	other := Streams{PolicyPaths: []string{filepath.Join(etc, "other", "bindguard.yaml")}}
	if path, err := findPolicyPath(other, ""); err != nil || path != filepath.Join(etc, "other", "bindguard.yaml") {
		t.Errorf("findPolicyPath without drop-ins = %q, %v", path, err)
	}
	lonely := Streams{PolicyPaths: []string{filepath.Join(etc, "lonely", "bindguard.yaml"), filepath.Join(etc, "other", "bindguard.yaml")}}
	if _, err := findPolicyPath(lonely, ""); err == nil || !strings.Contains(err.Error(), "has drop-ins (a.yaml) but") {
		t.Errorf("drop-ins without a main file: %v", err)
	}
	// --policy DIR, and an error in a drop-in named by its file and line.
	out, errs, code := run(t, "", "policy", "check", etc)
	if code != 0 || out != etc+": ok (1 service, 2 scopes)\n" {
		t.Errorf("check DIR: exit %d, %q %q", code, out, errs)
	}
	writeTree(t, etc, map[string]string{"bindguard.d/web-3.yaml": "networks: {lan: [10.0.0.0/8]}\nscopes:\n  - {name: web-3, match: [web-*], services: []}\n"})
	var o, e bytes.Buffer
	err = Run(context.Background(), []string{"audit", "--proc-root", t.TempDir()}, Streams{Out: &o, Err: &e, PolicyPaths: s.PolicyPaths})
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	f := filepath.Join(etc, "bindguard.d", "web-3.yaml")
	for _, want := range []string{f + ":1:1: networks: a drop-in holds only scopes:", f + `:3:27: scopes[0].match[0]: "web-*" overlaps scope "web-1"'s pattern "web-1"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("audit with a bad drop-in: %d %q\nwant %q", ExitCode(err), msg, want)
		}
	}
}
