package cli

import (
	"os"
	"strings"
	"testing"
)

const seedCore = "intelligent_core_service"

func TestAccessCheckLines(t *testing.T) {
	in, err := os.ReadFile("../../testdata/access/requests.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, string(in), "access", "check", "-p", seed, "--service", seedCore)
	if code != 1 || errOut != "" {
		t.Errorf("exit %d, stderr %q; want 1 (some denied), nothing on stderr", code, errOut)
	}
	checkGolden(t, "access-check.jsonl", out)
}

func TestAccessCheckOne(t *testing.T) {
	out, _, code := run(t, "", "access", "check", "-p", seed, "--service", seedCore,
		"--remote", "127.0.0.1:40000", "--host", "localhost", "-H", "X-Forwarded-For: 127.0.0.1, 10.1.1.50")
	want := `{"client_ip":"10.1.1.50","allowed":false,"reason":"client 10.1.1.50 (via proxy 127.0.0.1) denied by localhost_only: the client is not on this host"}` + "\n"
	if code != 1 || out != want {
		t.Errorf("exit %d, out %q; want 1, %q", code, out, want)
	}
	out, _, code = run(t, "", "access", "check", "-p", seed, "--service", seedCore,
		"--remote", "127.0.0.1:40000", "--host", "127.0.0.1:8001", "-H", "X-Forwarded-For:127.0.0.1")
	if code != 0 || !strings.Contains(out, `"allowed":true`) {
		t.Errorf("allowed request: exit %d, out %q", code, out)
	}
	out, _, code = run(t, "", "access", "check", "-p", seed, "--service", seedCore, "--remote", "garbage")
	if code != 1 || !strings.Contains(out, `"client_ip":null`) {
		t.Errorf("bad peer: exit %d, out %q; want 1 with a null client", code, out)
	}
}

func TestAccessCheckErrors(t *testing.T) {
	for _, tc := range []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"no service", "", []string{"access", "check", "-p", seed}, "--service is required"},
		{"unknown service", "", []string{"access", "check", "-p", seed, "--service", "nope"}, `declares no service "nope"`},
		{"host without remote", "", []string{"access", "check", "-p", seed, "--service", seedCore, "--host", "x"}, "give --remote too"},
		{"bad -H", "", []string{"access", "check", "-p", seed, "--service", seedCore, "--remote", "1.2.3.4:5", "-H", "novalue"}, "want 'Name: value'"},
		{"bad header name", "", []string{"access", "check", "-p", seed, "--service", seedCore, "--remote", "1.2.3.4:5", "-H", "X Y: 1"}, "not a token"},
		{"not json", "{nope\n", []string{"access", "check", "-p", seed, "--service", seedCore}, "stdin:1:"},
		{"unknown field", `{"remote_addr":"1.2.3.4:5","hots":"x"}` + "\n", []string{"access", "check", "-p", seed, "--service", seedCore}, `unknown field "hots"`},
		{"missing remote", `{"host":"x"}` + "\n", []string{"access", "check", "-p", seed, "--service", seedCore}, "remote_addr is required"},
		{"header triple", `{"remote_addr":"1.2.3.4:5","headers":[["a","b","c"]]}` + "\n", []string{"access", "check", "-p", seed, "--service", seedCore}, "want [name, value], got 3"},
		{"CR in value", `{"remote_addr":"1.2.3.4:5","headers":[["X-Forwarded-For","1.2.3.4\r\nX: y"]]}` + "\n", []string{"access", "check", "-p", seed, "--service", seedCore}, "CR, LF or NUL"},
		{"two values", `{"remote_addr":"1.2.3.4:5"} {}` + "\n", []string{"access", "check", "-p", seed, "--service", seedCore}, "more than one JSON value"},
		{"line too long", strings.Repeat("x", maxAccessLine+1), []string{"access", "check", "-p", seed, "--service", seedCore}, "stdin:1: line longer than"},
		{"second line bad", `{"remote_addr":"1.2.3.4:5"}` + "\n[]\n", []string{"access", "check", "-p", seed, "--service", seedCore}, "stdin:2:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := run(t, tc.stdin, tc.args...)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut, tc.want)
			}
		})
	}
}
