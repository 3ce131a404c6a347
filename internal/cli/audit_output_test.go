package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAuditOutputFile: --output writes the report to the file, atomically (no temporary file
// is left, an existing file is replaced whole), and prints nothing on standard output.
func TestAuditOutputFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "bindguard.prom")
	if err := os.WriteFile(out, []byte("stale content that is longer than nothing\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"audit", "--host", "fixture", "--policy", auditPolicy, "--format", "prometheus", "--output", out}, fixtureArgs("basic")...)
	stdout, stderr, code := runAt(t, args...)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (findings at medium); stderr: %s", code, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout is not empty with --output: %q", stdout)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, _, _ := runAt(t, append([]string{"audit", "--host", "fixture", "--policy", auditPolicy, "--format", "prometheus"}, fixtureArgs("basic")...)...)
	if string(got) != want {
		t.Errorf("file holds:\n%s\nwant what standard output gets:\n%s", got, want)
	}
	st, err := os.Stat(out)
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v (%v), want 0644 for the collector", st.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d files, want only the report (a temporary file was left?)", len(entries))
	}
	// A directory that does not exist is an error, not a silent success.
	_, stderr, code = runAt(t, append([]string{"audit", "--policy", auditPolicy, "--output", filepath.Join(dir, "no", "such", "x.prom")}, fixtureArgs("basic")...)...)
	if code != ExitError || !strings.Contains(stderr, "--output") {
		t.Errorf("missing directory: exit %d, stderr %q", code, stderr)
	}
}

// TestAuditFailOnNever: findings of any severity exit 0 with --fail-on never (for cron), and
// a bad --fail-on names the choices.
func TestAuditFailOnNever(t *testing.T) {
	base := append([]string{"audit", "--host", "fixture", "--policy", auditPolicy}, fixtureArgs("basic")...)
	if _, stderr, code := runAt(t, append(base, "--fail-on", "info")...); code != ExitViolation {
		t.Fatalf("--fail-on info: exit %d, want 1; stderr %s", code, stderr)
	}
	if _, stderr, code := runAt(t, append(base, "--fail-on", "never")...); code != ExitOK {
		t.Errorf("--fail-on never: exit %d, want 0; stderr %s", code, stderr)
	}
	_, stderr, code := runAt(t, append(base, "--fail-on", "sometimes")...)
	if code != ExitError || !strings.Contains(stderr, "never") {
		t.Errorf("--fail-on sometimes: exit %d, stderr %q", code, stderr)
	}
}
