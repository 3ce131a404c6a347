package nginx_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bindguard/bindguard/internal/gen/nginx"
	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/testcert"
	"github.com/bindguard/bindguard/policy"
)

// hostile are names an attacker who controls a directory name, or a policy built by another
// program, could hand the generator.
var hostile = []string{
	"a\nset_real_ip_from 0.0.0.0/0;",
	"a\rset_real_ip_from 0.0.0.0/0;",
	"a\r\nserver { listen 1; }",
	"a;b", "a{b", "a}b", "a#b", "a$host", `a"b`, "a'b", `a\b`, "a\x00b",
	"a\u2028allow all;", "a\u2029deny all;", "a\u0085include /etc/shadow;",
	"a\\", "a\t;", strings.Repeat("x", 5000) + "\n}",
}

// directives is the configuration without its comment lines: what nginx reads.
func directives(b []byte) string {
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// TestHostileSource: the policy's file name reaches only comments, quoted and escaped, so
// whatever it holds, the directives are those of a plain name and no comment line ends early.
func TestHostileSource(t *testing.T) {
	p, err := policy.Load(seedProxy)
	if err != nil {
		t.Fatal(err)
	}
	p.Source = "/etc/bindguard/bindguard.yaml"
	base, err := nginx.Generate(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range hostile {
		p.Source = "/tmp/" + name + "/bindguard.yaml"
		files, err := nginx.Generate(p)
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		for i, f := range files {
			if got, want := directives(f.Content), directives(base[i].Content); got != want {
				t.Errorf("source %q changes the directives of %s:\n%s", name, f.Name, got)
			}
			for _, r := range []string{"\r", "\x00", "\u2028", "\u2029", "\u0085"} {
				if strings.Contains(string(f.Content), r) {
					t.Errorf("source %q: %s holds %q", name, f.Name, r)
				}
			}
		}
	}
}

// TestHostileValues: a value that would reach a directive is refused, naming the field and the
// value, escaped.
func TestHostileValues(t *testing.T) {
	for _, name := range hostile {
		for field, set := range map[string]func(*policy.Proxy, string){
			"server_names":   func(px *policy.Proxy, v string) { px.ServerNames = []string{"localhost", v} },
			"certificate":    func(px *policy.Proxy, v string) { px.Certificate = "/etc/" + v },
			"key":            func(px *policy.Proxy, v string) { px.Key = "/etc/" + v },
			"blocked":        func(px *policy.Proxy, v string) { px.Blocked = []string{"/" + v + "/"} },
			"health":         func(px *policy.Proxy, v string) { px.Health = "/" + v },
			"body_size":      func(px *policy.Proxy, v string) { px.BodySize = "1m" + v },
			"routes.path":    func(px *policy.Proxy, v string) { px.Routes[0].Path = "/" + v },
			"routes.methods": func(px *policy.Proxy, v string) { px.Routes[1].Methods = []string{"GET" + v} },
			"routes.allow":   func(px *policy.Proxy, v string) { px.Routes[2].Allow = []string{v} },
			"status.path":    func(px *policy.Proxy, v string) { px.Status.Path = "/" + v },
			"status.detail.path": func(px *policy.Proxy, v string) {
				px.Status.DetailPath = "/" + v
			},
			"status.detail.upstream_path": func(px *policy.Proxy, v string) { px.Status.DetailUpstream = "/" + v },
		} {
			p, err := policy.Load(seedProxy)
			if err != nil {
				t.Fatal(err)
			}
			set(p.Proxy, name)
			_, err = nginx.Generate(p)
			if err == nil || !strings.Contains(err.Error(), field) || strings.ContainsAny(err.Error(), "\n\r\x00") {
				t.Errorf("%s %q: %v; want a one-line error naming %s", field, name, err, field)
			}
		}
	}
	// A service name that is not one (only a policy built by a program can hold it).
	p, err := policy.Load(seedProxy)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range p.Services {
		if s.Name == p.Proxy.HTTP {
			p.Services[i].Name = "x\nset_real_ip_from 0.0.0.0/0;"
			p.Proxy.HTTP = p.Services[i].Name
		}
	}
	if _, err := nginx.Generate(p); err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("hostile service name: %v", err)
	}
}

// TestHostileSourceNginxAccepts: nginx -t reads the site generated from a hostile file name as
// the plain one (the name stays in its comments).
func TestHostileSourceNginxAccepts(t *testing.T) {
	bin := netnstest.RequireTool(t, "nginx", "nginx")
	dir := t.TempDir()
	p, err := policy.Load("../../../testdata/gen/e2e-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p.Source = "/tmp/x\nset_real_ip_from 0.0.0.0/0;\r\n}\u2028{\u0085#\"'\\$host;\x00/p.yaml"
	p.Proxy.Certificate, p.Proxy.Key = testcert.Write(t, dir)
	files, err := nginx.Generate(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(files[0].Content), "\nset_real_ip_from") {
		t.Fatalf("the file name became a directive:\n%s", files[0].Content)
	}
	main := WriteConfig(t, dir, files)
	out, err := exec.Command(bin, "-t", "-c", main, "-p", dir, "-e", filepath.Join(dir, "error.log")).CombinedOutput() // #nosec G204 G702 -- nginx on our own files
	if err != nil || !strings.Contains(string(out), "test is successful") {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}
