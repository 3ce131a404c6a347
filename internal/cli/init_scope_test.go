package cli

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/policy"
)

// specNS is a fresh namespace listening on specs.
func specNS(t *testing.T, prefix string, specs ...string) *netnstest.NS {
	t.Helper()
	ns := netnstest.New(t, prefix)
	var sp []netnstest.Spec
	for _, s := range specs {
		x, err := netnstest.ParseSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		sp = append(sp, x)
	}
	ns.Listen(t, sp...)
	return ns
}

// TestInitThenAuditInNamespace: on real sockets in a namespace, init writes a policy that
// validates (dual-stack pairs, the same port twice), and the audit right after exits 0
// exactly when nothing dangerous is exposed (1 when it is).
func TestInitThenAuditInNamespace(t *testing.T) {
	for _, tc := range []struct {
		name  string
		specs []string
		code  int
	}{
		{"postgres on 0.0.0.0 and :: v6only", []string{"tcp4:0.0.0.0:5432", "tcp6:[::]:5432:v6only", "tcp4:127.0.0.1:8080"}, ExitViolation},
		{"redis on 0.0.0.0 and loopback ::1", []string{"tcp4:0.0.0.0:6379", "tcp6:[::1]:6379:v6only"}, ExitViolation},
		{"a web server dual-stack and an app on loopback", []string{"tcp4:0.0.0.0:8080", "tcp6:[::]:8080:v6only", "tcp4:127.0.0.1:6379", "udp4:0.0.0.0:5353"}, ExitOK},
		{"dual-stack :: alone", []string{"tcp6:[::]:8443", "udp6:[::]:53"}, ExitOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := specNS(t, "bginit", tc.specs...)
			path := filepath.Join(t.TempDir(), "bindguard.yaml")
			if _, errOut, code := runAt(t, "init", "--netns", ns.Name, "-o", path); code != ExitOK {
				t.Fatalf("init: exit %d: %s", code, errOut)
			}
			if _, err := policy.Load(path); err != nil {
				t.Fatalf("the written policy does not load: %v", err)
			}
			out, errOut, code := runAt(t, "audit", "--netns", ns.Name, "--policy", path, "--format", "json")
			if code != tc.code {
				t.Errorf("audit after init: exit %d, want %d\n%s\n%s", code, tc.code, errOut, out)
			}
		})
	}
}

// TestInitAllNamespacesScopes: with the same port on loopback in one namespace and on a
// wildcard in another (the case that made init exit 2), init --netns all succeeds and writes
// a scope for each, matched by its ip netns name, the wildcard one with its safe class.
func TestInitAllNamespacesScopes(t *testing.T) {
	a := specNS(t, "bgscopea", "tcp4:127.0.0.1:6379")
	b := specNS(t, "bgscopeb", "tcp4:0.0.0.0:6379", "tcp6:[::]:6379:v6only")
	out, errOut, code := runAt(t, "init", "--netns", "all")
	if code != ExitOK {
		t.Fatalf("init --netns all: exit %d: %s", code, errOut)
	}
	for _, ns := range []*netnstest.NS{a, b} {
		if !strings.Contains(out, "    match: [\""+ns.Name+"\"]\n") {
			t.Errorf("no scope matching %s:\n%s", ns.Name, out)
		}
	}
	_, scopes, ok := strings.Cut(out, "scopes:\n")
	if !ok {
		t.Fatalf("no scopes:\n%s", out)
	}
	_, bScope, _ := strings.Cut(scopes, "match: [\""+b.Name+"\"]")
	bScope, _, _ = strings.Cut(bScope, "\n  #") // the next scope
	if !strings.Contains(bScope, "access: localhost_only") || !strings.Contains(bScope, "WARNING: redis") || strings.Contains(bScope, "address:") {
		t.Errorf("the wildcard redis is not declared with its safe class:\n%s", bScope)
	}
}

// TestAuditIncompleteAsNobody: without privilege (uid 65534, no capabilities), --netns all
// cannot enter a named namespace: the report says so on stderr and as complete false with
// what was unseen, the exit code stays the findings' (never 2), and --require-complete makes
// it 2. As root the same namespace is seen.
func TestAuditIncompleteAsNobody(t *testing.T) {
	ns := specNS(t, "bgnobody", "tcp4:0.0.0.0:6379")
	bin := copyTestBinary(t)
	type result struct {
		Out, Err string
		Code     int
	}
	// The test binary runs the command line as uid 65534 (TestMain's cliHelperEnv).
	asNobody := func(args ...string) result {
		t.Helper()
		cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", bin) // #nosec G204 -- the test binary itself
		cmd.Env = append(os.Environ(), cliHelperEnv+"="+strings.Join(args, "\x1f"))
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("child: %v", err)
		}
		return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
	}
	r := asNobody("audit", "--netns", "all", "--format", "json", "--fail-on", "never")
	if r.Code != ExitOK {
		t.Errorf("exit %d, want 0 (the findings', with --fail-on never): %s", r.Code, r.Err)
	}
	var doc struct {
		Schema   string   `json:"schema"`
		Complete bool     `json:"complete"`
		Unseen   []string `json:"unseen"`
	}
	if err := json.Unmarshal([]byte(r.Out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, r.Out)
	}
	joined := strings.Join(doc.Unseen, "\n")
	if doc.Complete || !strings.Contains(joined, "netns "+ns.Name+" skipped") {
		t.Errorf("complete %v, unseen %q: want false, naming %s", doc.Complete, doc.Unseen, ns.Name)
	}
	if !strings.Contains(r.Err, "the audit is incomplete") || !strings.Contains(r.Err, ns.Name) {
		t.Errorf("stderr does not say what was not seen:\n%s", r.Err)
	}
	tbl := asNobody("audit", "--netns", "all", "--format", "table", "--fail-on", "never")
	if head, _, _ := strings.Cut(tbl.Out, "score "); !strings.Contains(head, "INCOMPLETE") || !strings.Contains(head, ns.Name) {
		t.Errorf("the table's header does not say what was not seen:\n%s", head)
	}
	prom := asNobody("audit", "--netns", "all", "--format", "prometheus", "--fail-on", "never")
	if !strings.Contains(prom.Out, "\nbindguard_audit_complete 0\n") {
		t.Errorf("metrics lack bindguard_audit_complete 0:\n%s", prom.Out)
	}
	if r := asNobody("audit", "--netns", "all", "--format", "json", "--fail-on", "never", "--require-complete"); r.Code != ExitError || !strings.Contains(r.Err, "--require-complete") {
		t.Errorf("--require-complete: exit %d, want 2: %s", r.Code, r.Err)
	}

	// As root: that namespace is audited, its exposed redis found.
	out, errOut, code := runAt(t, "audit", "--netns", ns.Name, "--format", "json", "--require-complete")
	if code != ExitViolation {
		t.Errorf("as root: exit %d, want 1: %s", code, errOut)
	}
	var rootDoc struct {
		Complete   bool `json:"complete"`
		Namespaces []struct {
			Label string `json:"label"`
		} `json:"namespaces"`
	}
	if err := json.Unmarshal([]byte(out), &rootDoc); err != nil {
		t.Fatal(err)
	}
	if !rootDoc.Complete || len(rootDoc.Namespaces) != 1 || rootDoc.Namespaces[0].Label != ns.Name {
		t.Errorf("as root: complete %v, namespaces %+v", rootDoc.Complete, rootDoc.Namespaces)
	}
}

// copyTestBinary copies the test binary where uid 65534 may run it.
func copyTestBinary(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the audit as uid 65534 with setpriv")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) not found")
	}
	dir, err := os.MkdirTemp("", "bindguard-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // #nosec G302 -- uid 65534 must enter it
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self) // #nosec G304 -- the test binary itself
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	bin := filepath.Join(dir, "cli.test")
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755) // #nosec G302 G304 -- an executable for uid 65534
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}
