package nginx_test

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/testcert"

	"github.com/bindguard/bindguard/internal/gen/nginx"
	"github.com/bindguard/bindguard/internal/golden"
	"github.com/bindguard/bindguard/policy"
)

var update = flag.Bool("update", false, "rewrite golden files")

const seedProxy = "../../../testdata/seed/service-bindings-proxy.yaml"

func TestGoldenSeed(t *testing.T) {
	p, err := policy.Load(seedProxy)
	if err != nil {
		t.Fatal(err)
	}
	p.Source = "service-bindings-proxy.yaml"
	files, err := nginx.Generate(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		golden.Check(t, filepath.Join("testdata", "seed-"+f.Name), string(f.Content), *update)
	}
}

func TestGenerateErrors(t *testing.T) {
	p, err := policy.Load(seedProxy)
	if err != nil {
		t.Fatal(err)
	}
	p.ClientIPHeader = policy.HeaderForwarded
	if _, err := nginx.Generate(p); err == nil || !strings.Contains(err.Error(), "use X-Forwarded-For") {
		t.Errorf("Forwarded: %v", err)
	}
	q, err := policy.Load("../../../testdata/seed/service-bindings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nginx.Generate(q); err == nil || !strings.Contains(err.Error(), "has no proxy section") {
		t.Errorf("no proxy section: %v", err)
	}
}

// TestNginxAcceptsIt runs the real nginx -t on the generated configuration.
func TestNginxAcceptsIt(t *testing.T) {
	bin := netnstest.RequireTool(t, "nginx", "nginx")
	for _, src := range []string{seedProxy, "../../../testdata/gen/e2e-policy.yaml"} {
		t.Run(filepath.Base(src), func(t *testing.T) {
			dir := t.TempDir()
			p, err := policy.Load(src)
			if err != nil {
				t.Fatal(err)
			}
			p.Proxy.Certificate, p.Proxy.Key = testcert.Write(t, dir)
			files, err := nginx.Generate(p)
			if err != nil {
				t.Fatal(err)
			}
			main := WriteConfig(t, dir, files)
			out, err := exec.Command(bin, "-t", "-c", main, "-p", dir, "-e", filepath.Join(dir, "error.log")).CombinedOutput() // #nosec G204 G702 -- nginx on our own files
			if err != nil || !strings.Contains(string(out), "test is successful") {
				t.Fatalf("nginx -t: %v\n%s", err, out)
			}
		})
	}
}

// WriteConfig writes the generated files and a standalone nginx.conf into dir.
func WriteConfig(t testing.TB, dir string, files []nginx.File) string {
	t.Helper()
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.Name), f.Content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "nobody nogroup"
	}
	main := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(main, nginx.Standalone(dir, files, user), 0o600); err != nil {
		t.Fatal(err)
	}
	return main
}

// TestProxyBind: with one dedicated loopback trusted proxy, nginx connects from it.
func TestProxyBind(t *testing.T) {
	src, err := os.ReadFile("../../../testdata/gen/e2e-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for trusted, want := range map[string]string{
		"trusted_proxies: [127.0.0.2/32]\n":              "proxy_bind 127.0.0.2;",
		"trusted_proxies: [127.0.0.1/32, \"::1/128\"]\n": "",
		"trusted_proxies: [10.1.1.5/32]\n":               "",
	} {
		p, err := policy.Parse("p.yaml", []byte(strings.Replace(string(src), "version: 1\n", "version: 1\n"+trusted, 1)))
		if err != nil {
			t.Fatal(err)
		}
		files, err := nginx.Generate(p)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Contains(string(files[0].Content), "proxy_bind")
		if got != (want != "") || (want != "" && !strings.Contains(string(files[0].Content), want)) {
			t.Errorf("%s: proxy_bind present %v, want %q", strings.TrimSpace(trusted), got, want)
		}
	}
}
