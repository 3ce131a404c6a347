package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWriteDocs: a man page for the root and every subcommand, and the three completions.
func TestWriteDocs(t *testing.T) {
	dir := t.TempDir()
	if err := WriteDocs(dir, time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"man1/bindguard.1", "man1/bindguard-audit.1", "man1/bindguard-policy-check.1", "man1/bindguard-completion.1"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !strings.Contains(string(b), `.TH "BINDGUARD" "1" "Nov 2026"`) {
			t.Errorf("%s: %v\n%.200s", f, err, b)
		}
	}
	for f, want := range map[string]string{"bindguard.bash": "__start_bindguard", "_bindguard": "#compdef bindguard", "bindguard.fish": "complete -c bindguard"} {
		b, err := os.ReadFile(filepath.Join(dir, "completions", f))
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("%s: %v, want %q in it", f, err, want)
		}
	}
}
