package systemd_test

import (
	"strings"
	"testing"

	"github.com/bindguard/bindguard/internal/gen/systemd"
	"github.com/bindguard/bindguard/policy"
)

// TestSelfServeArgs: the self unit runs serve over every namespace with the kernel event source
// by default, takes other serve arguments, and refuses one that is not a single safe token.
func TestSelfServeArgs(t *testing.T) {
	p := policy.Builtin()
	unit := func(args []string) (string, error) {
		b, err := systemd.Generate(p, systemd.Options{Self: true, ServeArgs: args})
		return string(b), err
	}
	got, err := unit(nil)
	if err != nil || !strings.Contains(got, "--data /var/lib/bindguard --netns all --watch kernel\n") || !strings.Contains(got, " CAP_NET_ADMIN\n") {
		t.Errorf("default self unit: %v\n%s", err, got)
	}
	got, err = unit([]string{"--netns", "all", "--watch", "auto", "--grace=30s"})
	if err != nil || !strings.Contains(got, "--data /var/lib/bindguard --netns all --watch auto --grace=30s\n") {
		t.Errorf("self unit with args: %v\n%s", err, got)
	}
	for _, bad := range []string{"--redis redis://x", "$HOME", "a;b", "100%", `a"b`, "", "x\ny"} {
		if _, err := unit([]string{bad}); err == nil || !strings.Contains(err.Error(), "serve argument") {
			t.Errorf("serve argument %q: %v", bad, err)
		}
	}
}
