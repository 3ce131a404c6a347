package zabbix_test

import (
	"strings"
	"testing"

	"github.com/bindguard/bindguard/internal/gen/zabbix"
)

// TestHostileOptions: every value that reaches the agent's file or the template (the key
// prefix, the bindguard path, serve's URL) is refused when it holds anything that could end a
// line, a UserParameter, a YAML scalar or a shell word.
func TestHostileOptions(t *testing.T) {
	hostile := []string{
		"a\nUserParameter=x,/bin/evil", "a\rb", "a\r\nb", "a;b", "a{b", "a}b", "a#b", "a$b", "a`b`", `a"b`, "a'b",
		`a\b`, "a\x00b", "a\u2028b", "a\u2029b", "a\u0085b", "a b", "a|b", "a&b", strings.Repeat("a", 5000),
	}
	for _, h := range hostile {
		for field, o := range map[string]zabbix.Options{
			"--prefix":    {Prefix: h},
			"--bindguard": {Bindguard: "/usr/bin/" + h},
			"--url":       {URL: "http://127.0.0.1:9847/" + h},
		} {
			_, err := zabbix.Generate(o)
			if err == nil || !strings.Contains(err.Error(), field) || strings.ContainsAny(err.Error(), "\n\r\x00\u2028\u2029\u0085") {
				t.Errorf("%s %.40q: %v; want a one-line error naming %s", field, h, err, field)
			}
		}
	}
	files, err := zabbix.Generate(zabbix.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.ContainsAny(string(f.Content), "\r\x00\u2028\u2029\u0085") {
			t.Errorf("%s holds a control character or separator", f.Name)
		}
	}
}
