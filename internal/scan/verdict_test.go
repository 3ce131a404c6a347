package scan_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bindguard/bindguard/internal/scan"
	"github.com/bindguard/bindguard/policy"
)

// summary is a finding's verdict in one line.
func summary(f scan.Finding) string {
	return fmt.Sprintf("%s:%d %s %s %s %s %s", f.File, f.Line, f.Kind, f.Status, f.Severity, f.Reach, f.Origin)
}

func scanDir(t *testing.T, dir string, p *policy.Policy) *scan.Result {
	t.Helper()
	res, err := scan.Scan(context.Background(), []string{dir}, scan.Options{Policy: p, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestVerdicts(t *testing.T) {
	pol, err := policy.Load("../../testdata/scan/policy/bindguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		dir  string
		pol  *policy.Policy
		want []string
	}{
		{"docker", nil, []string{
			"Dockerfile:4 dockerfile-cmd allowed info pod network ",
			"Dockerfile.worker:2 dockerfile-cmd allowed info pod network ",
		}},
		{"suppress", nil, []string{
			"docker-compose.yml:5 compose-port suppressed medium public ",
			"main.go:7 go-listen suppressed medium public ",
			"main.go:8 go-listen reported medium public ",
			"main.go:9 go-listen reported medium public ",
		}},
		{"policy", pol, []string{
			"docker-compose.yml:3 compose-port reported critical public ",
			"docker-compose.yml:5 compose-port allowed info public ",
			"docker-compose.yml:7 compose-port allowed info public ",
		}},
		{"go-basic", nil, []string{
			"freeport.go:23 go-listen reported medium public ",
			"freeport.go:32 go-listen reported medium public ",
			"main.go:24 go-http-listen reported critical public main.go:19: flag -addr default",
			"main.go:26 go-listen reported critical public const.go:4",
			"main.go:27 go-listen allowed info loopback const.go:5",
			"main.go:28 go-listen reported medium public ",
			"main.go:30 go-listen reported medium public ",
			"main.go:31 go-listen reported low private ",
			"main.go:33 go-http-server reported critical public ",
			"main_test.go:9 go-listen allowed info public ",
			"server.go:7 go-http-server reported medium public ",
			"server.go:9 go-http-server allowed info loopback ",
			"sockaddr.go:6 go-listen reported medium public ",
			"sockaddr.go:7 go-listen allowed info loopback ",
			"sockaddr.go:8 go-listen reported critical public ",
			"sockaddr.go:9 go-listen allowed info loopback ",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			res := scanDir(t, filepath.Join("../../testdata/scan", tt.dir), tt.pol)
			var got []string
			for _, f := range res.Findings {
				got = append(got, summary(f))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("verdicts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSuppressionWithoutReasonSaysSo(t *testing.T) {
	res := scanDir(t, "../../testdata/scan/suppress", nil)
	for _, f := range res.Findings {
		if f.Line == 8 && !strings.Contains(f.Note, "has no reason and does not suppress") {
			t.Errorf("line 8 note = %q", f.Note)
		}
		if f.Line == 9 && f.Note != "" {
			t.Errorf("a comment for another kind should leave no note, got %q", f.Note)
		}
	}
}

func TestSymlinksAreNotFollowed(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "docker-compose.yml"), []byte("services:\n  a:\n    ports: [\"1:1\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tree := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(tree, "dir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "docker-compose.yml"), filepath.Join(tree, "docker-compose.yml")); err != nil {
		t.Fatal(err)
	}
	res := scanDir(t, tree, nil)
	if len(res.Findings) != 0 || res.Files != 0 {
		t.Errorf("followed a symbolic link: %d files, findings %v", res.Files, res.Findings)
	}
}

func TestBadFilesAreProblemsNamingFileAndLine(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"bad.go":             "package main\nfunc main() {\n\tnet.Listen(\"tcp\", \":1\"\n}\n",
		"docker-compose.yml": "services:\n  a:\n    ports: [\"1:1\"\n",
		"Dockerfile":         "FROM x\nCMD [\"a\", \n",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	big := strings.Repeat("# x\n", 100)
	if err := os.WriteFile(filepath.Join(dir, "redis.conf"), []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := scan.Scan(context.Background(), []string{dir}, scan.Options{MaxFileSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range res.Problems {
		got = append(got, p.File+":"+fmt.Sprint(p.Line))
	}
	want := []string{"Dockerfile:2", "bad.go:3", "docker-compose.yml:3", "redis.conf:0"}
	if !cmp.Equal(got, want) {
		t.Errorf("problems at %v, want %v (%v)", got, want, res.Problems)
	}
}

func TestHelmTemplatesAreNamed(t *testing.T) {
	dir := t.TempDir()
	src := "apiVersion: v1\nkind: Service\nspec:\n  type: {{ .Values.type }}\n  ports:\n  {{- range .Values.ports }}\n  - port: {{ . }}\n  {{- end }}\n"
	if err := os.WriteFile(filepath.Join(dir, "svc.yaml"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	res := scanDir(t, dir, nil)
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0].Msg, "helm template") {
		t.Errorf("problems = %v, want one naming the template", res.Problems)
	}
}

// TestTableHostileNames: a scanned file's name with a newline and a terminal escape cannot
// forge a line of the table (nor a problem line); the JSON keeps the name, escaped.
func TestTableHostileNames(t *testing.T) {
	dir := t.TempDir()
	name := "x\x1b[31m\nreported  critical  forged.go"
	src := "package main\n\nimport \"net\"\n\nfunc f() { _, _ = net.Listen(\"tcp\", \":81\") }\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
		t.Skipf("this file system refuses the name: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad\nname.go"), []byte("package main\nfunc {"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := scanDir(t, dir, nil)
	var b strings.Builder
	if err := scan.WriteTable(&b, res, true); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.ContainsAny(out, "\x1b\r") || strings.Contains(out, "\nreported  critical  forged") || strings.Contains(out, "\nname.go") {
		t.Errorf("a file name forged table lines:\n%q", out)
	}
	if !strings.Contains(out, "x?[31m?reported  critical  forged.go:5") || !strings.Contains(out, "problem: bad?name.go:") {
		t.Errorf("finding or problem not shown with its name sanitized:\n%s", out)
	}
	var j strings.Builder
	if err := scan.WriteJSON(&j, res, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(j.String(), `x\u001b[31m\nreported  critical  forged.go`) {
		t.Errorf("JSON lost the exact name:\n%s", j.String())
	}
}
