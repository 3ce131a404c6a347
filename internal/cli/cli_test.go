package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bindguard/bindguard/internal/golden"
	"github.com/bindguard/bindguard/policy"
)

var update = flag.Bool("update", false, "rewrite golden files")

const seed = "../../testdata/seed/service-bindings.yaml"

// run executes a command line in-process.
func run(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(context.Background(), args, Streams{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return out.String(), errb.String(), ExitCode(err)
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name), got, *update)
}

func TestGoldenOutputs(t *testing.T) {
	tests := []struct {
		golden string
		args   []string
		code   int
	}{
		{"show-seed.table", []string{"policy", "show", seed}, 0},
		{"show-seed.json", []string{"policy", "show", "--format", "json", seed}, 0},
		{"show-full.table", []string{"policy", "show", "../../testdata/policy/valid/full.yaml"}, 0},
		{"show-builtin.table", []string{"policy", "show"}, 0},
		{"convert-seed.yaml", []string{"policy", "convert", seed}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			out, errs, code := run(t, "", tt.args...)
			if code != tt.code || errs != "" {
				t.Fatalf("exit %d, stderr %q; want exit %d and no stderr", code, errs, tt.code)
			}
			checkGolden(t, tt.golden, out)
		})
	}
}

func TestPolicyShowJSONSchema(t *testing.T) {
	out, _, code := run(t, "", "policy", "show", "--format", "json", seed)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var v struct {
		Schema   string `json:"schema"`
		Services []struct {
			Name     string   `json:"name"`
			Protocol string   `json:"protocol"`
			Address  *string  `json:"address"`
			Port     int      `json:"port"`
			Access   string   `json:"access"`
			Allow    []string `json:"allow"`
		} `json:"services"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if v.Schema != "bindguard.policy.v1" || len(v.Services) != 10 {
		t.Fatalf("schema %q with %d services", v.Schema, len(v.Services))
	}
	z := v.Services[9]
	if z.Name != "zabbix_agent" || *z.Address != "0.0.0.0" || z.Port != 10050 || z.Access != "restricted" || cmp.Diff([]string{"10.1.1.103/32"}, z.Allow) != "" {
		t.Errorf("zabbix entry %+v", z)
	}
	if v.Services[0].Allow == nil {
		t.Error("allow is null; want [] for services without an allow list")
	}
	out, _, _ = run(t, "", "policy", "show", "--format", "json")
	if !strings.Contains(out, `"address": null`) {
		t.Error("catalogue entries without an address must show address null")
	}
}

func TestPolicyCheck(t *testing.T) {
	out, errs, code := run(t, "", "policy", "check", seed, "../../testdata/policy/valid/full.yaml")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d stderr %q", code, errs)
	}
	want := seed + ": ok (10 services, seed format)\n../../testdata/policy/valid/full.yaml: ok (9 services)\n"
	if out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}

	bad := "../../testdata/policy/invalid/port-hex.yaml"
	out, errs, code = run(t, "", "policy", "check", seed, bad)
	if code != 1 {
		t.Errorf("invalid file: exit %d, want 1", code)
	}
	if !strings.HasPrefix(errs, bad+":4:11: services[0].port: 0x1F41 is not a port") {
		t.Errorf("stderr %q", errs)
	}
	if !strings.Contains(out, "ok (10 services") {
		t.Error("the valid file was not reported when checked beside an invalid one")
	}

	_, errs, code = run(t, "", "policy", "check", bad, "does-not-exist.yaml")
	if code != 2 || !strings.Contains(errs, "bindguard: policy: open does-not-exist.yaml: no such file or directory") {
		t.Errorf("unreadable file: exit %d stderr %q", code, errs)
	}

	out, _, code = run(t, "version: 1\nservices: []\n", "policy", "check", "-")
	if code != 0 || out != "-: ok (0 services)\n" {
		t.Errorf("stdin: exit %d out %q", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"policy", "check"}, "Run 'bindguard policy check --help' for usage."},
		{[]string{"policy", "show", "a", "b"}, "takes at most 1 argument(s), got 2"},
		{[]string{"policy", "show", "--format", "xml"}, `invalid argument "xml" for "--format" flag: must be one of table, json`},
		{[]string{"policy", "show", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"nope"}, `unknown command "nope" for "bindguard"`},
		{[]string{"version", "extra"}, "takes 0 argument(s)"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, errs, code := run(t, "", tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.HasPrefix(errs, "bindguard: ") || !strings.Contains(errs, tt.want) || !strings.Contains(errs, "--help' for usage.") {
				t.Errorf("stderr %q, want it to contain %q and a --help hint", errs, tt.want)
			}
		})
	}
	_, errs, code := run(t, "", "policy", "show", "../../testdata/policy/invalid/localhost-wildcard.yaml")
	if code != 2 || !strings.Contains(errs, "services[0].address: 0.0.0.0 (every IPv4 interface) is not a loopback address") || strings.Contains(errs, "--help") {
		t.Errorf("show of an invalid policy: exit %d stderr %q", code, errs)
	}
}

func TestConvert(t *testing.T) {
	out, _, code := run(t, "", "policy", "convert", seed)
	if code != 0 {
		t.Fatal(code)
	}
	orig, err := policy.Load(seed)
	if err != nil {
		t.Fatal(err)
	}
	back, err := policy.Parse("converted", []byte(out))
	if err != nil {
		t.Fatalf("converted output does not load: %v", err)
	}
	if back.Format != policy.FormatNative {
		t.Errorf("converted format %q", back.Format)
	}
	show := func(p *policy.Policy) string {
		var b bytes.Buffer
		p.Source, p.Format = "", ""
		if err := writePolicyJSON(&b, p); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	if diff := cmp.Diff(show(orig), show(back)); diff != "" {
		t.Errorf("converted policy differs (-seed +converted):\n%s", diff)
	}

	dir := t.TempDir()
	dst := filepath.Join(dir, "bindguard.yaml")
	if _, errs, code := run(t, "", "policy", "convert", "-o", dst, seed); code != 0 {
		t.Fatalf("convert -o: %d %s", code, errs)
	}
	if _, errs, code := run(t, "", "policy", "convert", "-o", dst, seed); code != 2 || !strings.Contains(errs, "exists; use --force") {
		t.Errorf("overwrite without --force: exit %d %q", code, errs)
	}
	if _, errs, code := run(t, "", "policy", "convert", "--force", "-o", dst, seed); code != 0 {
		t.Errorf("--force: exit %d %q", code, errs)
	}
	if out, _, code := run(t, "", "policy", "check", dst); code != 0 || !strings.Contains(out, "ok (10 services)") {
		t.Errorf("converted file does not check: %d %q", code, out)
	}
}

func TestSchemaAndVersion(t *testing.T) {
	out, _, code := run(t, "", "policy", "schema")
	var schema map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &schema) != nil || schema["$schema"] == nil {
		t.Fatalf("policy schema: exit %d, not a JSON Schema: %.80q", code, out)
	}
	out, _, code = run(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "bindguard ") {
		t.Errorf("version: %d %q", code, out)
	}
	if o2, _, _ := run(t, "", "--version"); o2 != out {
		t.Errorf("--version %q differs from version %q", o2, out)
	}
}

// TestHelpHasExamples checks that every command documents itself with an example.
func TestHelpHasExamples(t *testing.T) {
	var walk func(args []string)
	walk = func(args []string) {
		root := newRoot(Streams{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
		cmd, _, err := root.Find(args)
		if err != nil {
			t.Fatal(err)
		}
		if cmd.Example == "" && cmd.Name() != "help" && !strings.HasPrefix(cmd.CommandPath(), "bindguard completion") {
			t.Errorf("%q has no Example", cmd.CommandPath())
		}
		out, _, code := run(t, "", append(args, "--help")...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("%v --help: exit %d", args, code)
		}
		for _, c := range cmd.Commands() {
			if c.Name() != "help" && c.Name() != "completion" {
				walk(append(append([]string{}, args...), c.Name()))
			}
		}
	}
	walk(nil)
	out, _, code := run(t, "", "completion", "bash")
	if code != 0 || !strings.Contains(out, "bash completion") {
		t.Errorf("completion bash: exit %d", code)
	}
}
