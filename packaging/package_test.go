package packaging

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bindguard/bindguard/policy"
)

// TestExampleIsTheREADMEs: the example policy the package ships is the README's "A policy"
// block (after its header comment), and it is valid.
func TestExampleIsTheREADMEs(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "\n## A policy\n")
	_, block, ok2 := strings.Cut(after, "```yaml\n")
	block, _, ok3 := strings.Cut(block, "```\n")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README.md has no yaml block under \"## A policy\"")
	}
	ex, err := os.ReadFile("bindguard.yaml.example")
	if err != nil {
		t.Fatal(err)
	}
	var body []string
	for _, l := range strings.SplitAfter(string(ex), "\n") {
		if len(body) == 0 && strings.HasPrefix(l, "#") {
			continue // the header comment
		}
		body = append(body, l)
	}
	if got := strings.Join(body, ""); got != block {
		t.Errorf("bindguard.yaml.example differs from README.md's policy:\n%s\nwant:\n%s", got, block)
	}
	if _, err := policy.Load("bindguard.yaml.example"); err != nil {
		t.Errorf("the example does not load: %v", err)
	}
}

// installed reports whether dpkg has the package installed (or half-installed).
func installed(t *testing.T, pkg string) bool {
	t.Helper()
	out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Status}", pkg).Output() // #nosec G204 -- fixed package name
	return err == nil && len(out) > 0 && string(out) != "not-installed"
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// TestDebianPackage builds the package with `make package`, installs it with dpkg -i, runs
// /usr/bin/bindguard audit from it, checks the man pages, completions, unit and directories,
// checks that nothing was started, then purges it and checks it is gone. It needs root and
// dpkg, and fails without touching anything where bindguard is installed already (it would
// replace and then remove the operator's copy). The purge runs even when a check fails.
func TestDebianPackage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: installs the package with dpkg -i (runs as root in CI)")
	}
	for _, tool := range []string{"dpkg", "dpkg-query", "make", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian): %v", tool, err)
		}
	}
	if testing.Short() {
		t.Skip("-short: builds and installs a package")
	}
	if installed(t, "bindguard") || exists("/usr/bin/bindguard") {
		// Not a missing prerequisite to skip over silently: the host is unfit for this test,
		// and saying so is the answer (-short leaves it out).
		t.Fatal("bindguard is installed on this host (the dpkg package or /usr/bin/bindguard): this test installs and purges its own copy and will not replace the operator's; run it on a host without bindguard, or with -short")
	}
	// Paths the purge must remove, unless they were there before.
	owned := []string{"/usr/bin/bindguard", "/etc/bindguard", "/var/lib/bindguard",
		"/usr/share/man/man1/bindguard.1.gz", "/usr/lib/systemd/system/bindguard.service",
		"/usr/share/bash-completion/completions/bindguard", "/usr/share/zsh/vendor-completions/_bindguard",
		"/usr/share/fish/vendor_completions.d/bindguard.fish", "/usr/share/doc/bindguard"}
	before := map[string]bool{}
	for _, p := range owned {
		before[p] = exists(p)
	}

	out := t.TempDir()
	build := exec.Command("make", "--no-print-directory", "-C", "..", "package", "BIN="+out) // #nosec G204 -- fixed arguments
	var berr bytes.Buffer
	build.Stderr = &berr
	pkgPath, err := build.Output()
	if err != nil {
		t.Fatalf("make package: %v\n%s", err, berr.String())
	}
	lines := strings.Fields(string(pkgPath))
	if len(lines) == 0 {
		t.Fatalf("make package printed no path; stderr:\n%s", berr.String())
	}
	deb := lines[len(lines)-1]
	if !strings.HasSuffix(deb, ".deb") || !exists(deb) {
		t.Fatalf("make package: %q is not a package", deb)
	}

	t.Cleanup(func() {
		if !installed(t, "bindguard") {
			return
		}
		if out, err := dpkg("--purge", "bindguard"); err != nil {
			t.Errorf("dpkg --purge: %v\n%s", err, out)
		}
	})
	if out, err := dpkg("-i", deb); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}

	for _, p := range []string{"/usr/bin/bindguard", "/usr/lib/systemd/system/bindguard.service",
		"/usr/share/bash-completion/completions/bindguard", "/usr/share/zsh/vendor-completions/_bindguard",
		"/usr/share/fish/vendor_completions.d/bindguard.fish", "/etc/bindguard/bindguard.yaml.example",
		"/usr/share/doc/bindguard/README.md"} {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Errorf("%s: missing or empty (%v)", p, err)
		}
	}
	for _, d := range []string{"/etc/bindguard", "/var/lib/bindguard"} {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			t.Errorf("%s: not a directory (%v)", d, err)
		}
	}
	if exists("/etc/bindguard/bindguard.yaml") && !before["/etc/bindguard"] {
		t.Error("the package installed an active policy /etc/bindguard/bindguard.yaml; it must ship the example only")
	}
	for _, page := range []string{"bindguard.1.gz", "bindguard-audit.1.gz", "bindguard-serve.1.gz", "bindguard-policy-check.1.gz"} {
		checkManPage(t, filepath.Join("/usr/share/man/man1", page))
	}
	if b, err := os.ReadFile("/usr/share/bash-completion/completions/bindguard"); err != nil || !bytes.Contains(b, []byte("__start_bindguard")) {
		t.Errorf("bash completion is not cobra's for bindguard (%v)", err)
	}
	if b, err := os.ReadFile("/usr/lib/systemd/system/bindguard.service"); err != nil || !bytes.Contains(b, []byte("\nExecStart=/usr/bin/bindguard serve ")) {
		t.Errorf("unit does not run /usr/bin/bindguard serve (%v)", err)
	}
	if pids := running("/usr/bin/bindguard"); len(pids) > 0 {
		t.Errorf("installing started /usr/bin/bindguard (pids %v); the package must not start the daemon", pids)
	}
	if exists("/etc/systemd/system/multi-user.target.wants/bindguard.service") {
		t.Error("installing enabled bindguard.service; the package must leave that to the operator")
	}

	audit := exec.Command("/usr/bin/bindguard", "audit", "--format", "table")
	audit.Dir = t.TempDir() // no ./bindguard.yaml: the installed default is the catalogue
	var stdout, stderr bytes.Buffer
	audit.Stdout, audit.Stderr = &stdout, &stderr
	err = audit.Run()
	var ee *exec.ExitError
	if err != nil && (!errors.As(err, &ee) || ee.ExitCode() != 1) {
		t.Errorf("bindguard audit: %v (want exit 0 or 1)\nstderr: %s", err, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "bindguard audit of ") || !strings.Contains(stdout.String(), "\nscore ") {
		t.Errorf("bindguard audit printed no table:\n%s\nstderr: %s", stdout.String(), stderr.String())
	}

	if out, err := exec.Command("dpkg", "--purge", "bindguard").CombinedOutput(); err != nil {
		t.Fatalf("dpkg --purge: %v\n%s", err, out)
	}
	if installed(t, "bindguard") {
		t.Error("dpkg still lists bindguard after --purge")
	}
	for _, p := range owned {
		if !before[p] && exists(p) {
			t.Errorf("%s is left after dpkg --purge", p)
		}
	}
}

// checkManPage checks that path is a gzip'd man page.
func checkManPage(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path) // #nosec G304 -- fixed paths under /usr/share/man
	if err != nil {
		t.Errorf("man page: %v", err)
		return
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Errorf("%s: not gzip: %v", path, err)
		return
	}
	b, err := io.ReadAll(io.LimitReader(zr, 1<<20))
	if err != nil || !bytes.Contains(b, []byte(".TH \"BINDGUARD\" \"1\"")) || !bytes.Contains(b, []byte(".SH NAME")) {
		t.Errorf("%s: not a section 1 bindguard man page (%v)", path, err)
	}
}

// running lists the pids whose executable is exe.
func running(exe string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		if target, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && (target == exe || target == exe+" (deleted)") {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// dpkg runs dpkg, waiting (at most two minutes) while another process holds dpkg's lock: an
// apt-get elsewhere on the machine is not a failure of the package.
func dpkg(args ...string) ([]byte, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := exec.Command("dpkg", args...).CombinedOutput() // #nosec G204 -- our package and fixed arguments
		if err == nil || !bytes.Contains(out, []byte("lock")) || time.Now().After(deadline) {
			return out, err
		}
		time.Sleep(2 * time.Second)
	}
}
