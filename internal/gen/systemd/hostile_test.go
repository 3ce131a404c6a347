package systemd_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bindguard/bindguard/internal/gen/systemd"
	"github.com/bindguard/bindguard/internal/netnstest"
)

var hostile = []string{
	"a\nExecStartPre=/bin/evil",
	"a\rExecStartPre=/bin/evil",
	"a\r\n[Service]\nUser=root",
	"a;b", "a{b", "a}b", "a#b", "a$HOME", "a%n", `a"b`, "a'b", `a\b`, "a\\", "a\x00b",
	"a\u2028ExecStartPre=/bin/evil", "a\u2029x", "a\u0085ExecStartPre=/bin/evil",
	"a\tb", strings.Repeat("x", 5000) + "\nExecStartPre=/bin/evil",
}

// settings is the unit without comment lines: what systemd reads.
func settings(b []byte) string {
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if t := strings.TrimSpace(l); !strings.HasPrefix(t, "#") && !strings.HasPrefix(t, ";") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// TestHostileSource: the policy's file name reaches only the header comment, quoted and
// escaped; a hostile description is flattened to one printable line.
func TestHostileSource(t *testing.T) {
	for _, c := range cases {
		p := load(t, seed)
		p.Source = "/etc/bindguard/bindguard.yaml"
		base, err := systemd.Generate(p, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range hostile {
			p.Source = "/tmp/" + name + "/p.yaml"
			out, err := systemd.Generate(p, c.opts)
			if err != nil {
				t.Fatalf("%s, source %q: %v", c.golden, name, err)
			}
			if got, want := settings(out), settings(base); got != want {
				t.Errorf("%s: source %.60q changes the settings:\n%.2000s", c.golden, name, got)
			}
			if strings.ContainsAny(string(out), "\r\x00\u2028\u2029\u0085") {
				t.Errorf("%s: source %q left a control character or separator in the unit", c.golden, name)
			}
		}
	}
	p := load(t, seed)
	for _, name := range hostile {
		for i := range p.Services {
			p.Services[i].Description = name
		}
		out, err := systemd.Generate(p, cases[0].opts)
		if err != nil {
			t.Fatal(err)
		}
		desc, sections, injected := 0, 0, 0
		for _, l := range strings.Split(string(out), "\n") {
			switch {
			case strings.HasPrefix(l, "Description="):
				desc++
			case l == "[Service]":
				sections++
			case strings.HasPrefix(l, "ExecStartPre=") || l == "User=root":
				injected++
			}
		}
		if desc != 1 || sections != 1 || injected != 0 || strings.ContainsAny(string(out), "\r\x00\u2028\u2029\u0085") {
			t.Errorf("description %.60q: %d Description= lines, %d injected", name, desc, injected)
		}
	}
}

// TestHostileValues: a value that would change ExecStart= or another setting is refused,
// with a one-line error.
func TestHostileValues(t *testing.T) {
	p := load(t, seed)
	for _, name := range hostile {
		for what, o := range map[string]systemd.Options{
			"policy path": {Self: true, PolicyPath: "/etc/" + name + "/p.yaml"},
			"--exec":      {Service: "redis", Exec: "/bin/" + name},
			"--user":      {Service: "redis", Exec: "/bin/true", User: name},
		} {
			if what == "--exec" && !strings.ContainsAny(name, "\n\r\x00\\\u2028\u2029\u0085\t") {
				continue // quotes, $VAR and % are ExecStart='s own syntax for the operator's command line (% is escaped)
			}
			_, err := systemd.Generate(p, o)
			if err == nil || !strings.Contains(err.Error(), what) || strings.ContainsAny(err.Error(), "\n\r\x00") {
				t.Errorf("%s %q: %v; want a one-line error naming %s", what, name, err, what)
			}
		}
	}
	// The paths --enforce writes into ExecStartPre= and ExecStopPost=.
	for _, name := range hostile {
		for what, o := range map[string]systemd.Options{
			"policy path":    {Service: "redis", DropIn: true, Enforce: true, PolicyPath: "/etc/" + name + "/p.yaml"},
			"bindguard path": {Service: "redis", DropIn: true, Enforce: true, Bindguard: "/usr/bin/" + name},
		} {
			out, err := systemd.Generate(p, o)
			if err == nil || !strings.Contains(err.Error(), what) || strings.ContainsAny(err.Error(), "\n\r\x00") {
				t.Errorf("--enforce, %s %q: %v; want a one-line error naming %s\n%s", what, name, err, what, out)
			}
		}
	}
	q := load(t, seed)
	for i, s := range q.Services {
		if s.Name == "redis" {
			q.Services[i].Name = "redis\nExecStartPre=/bin/evil"
		}
	}
	if _, err := systemd.Generate(q, systemd.Options{Service: "redis\nExecStartPre=/bin/evil", DropIn: true}); err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("hostile service name: %v", err)
	}
}

// TestHostileSourceVerify: systemd-analyze verify reads the unit generated from a hostile
// file name with no warning (before, a newline in it made ExecStartPre= a setting).
func TestHostileSourceVerify(t *testing.T) {
	bin := netnstest.RequireTool(t, "systemd-analyze", "systemd")
	p := load(t, seed)
	p.Source = "/tmp/x\nExecStartPre=/bin/true\r\n[Install]\u2028\u0085%n$HOME\"'\\;\x00/p.yaml"
	out, err := systemd.Generate(p, systemd.Options{Service: "redis", Exec: "/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "\nExecStartPre=") {
		t.Fatalf("the file name became a setting:\n%s", out)
	}
	unit := filepath.Join(t.TempDir(), "bg-hostile.service")
	if err := os.WriteFile(unit, out, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "verify", unit) // #nosec G204 -- systemd-analyze on our own file
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=notice")
	if res, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(res)) != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s\n--- unit:\n%s", err, res, out)
	}
}
