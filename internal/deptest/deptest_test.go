// Package deptest holds a test of the layers: the pure packages must not pull in the kernel,
// the store or Redis, on any OS (the model is tailscale's tstest/deptest).
package deptest

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// forbidden are the module paths the pure packages must not import, directly or not.
// golang.org/x/sys/unix (socket options) is allowed.
var forbidden = []string{
	"github.com/cilium/ebpf",
	"github.com/mdlayher/netlink",
	"go.etcd.io/bbolt",
	"github.com/redis/go-redis",
	"github.com/prometheus/client_golang",
}

// pure are the packages judged and linked into services: the policy, the library and the judge.
var pure = []string{
	"github.com/bindguard/bindguard/policy",
	"github.com/bindguard/bindguard/listen",
	"github.com/bindguard/bindguard/access",
	"github.com/bindguard/bindguard/internal/audit",
	"github.com/bindguard/bindguard/internal/observed",
}

func TestPurePackagesHaveNoKernelDependencies(t *testing.T) {
	goCmd := goCommand(t)
	for _, goos := range []string{"linux", "darwin"} {
		t.Run(goos, func(t *testing.T) {
			cmd := exec.Command(goCmd, append([]string{"list", "-deps", "-json=ImportPath,Imports"}, pure...)...) // #nosec G204 -- fixed arguments
			cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list: %v", err)
			}
			importers := map[string]string{} // package -> a package importing it
			dec := json.NewDecoder(strings.NewReader(string(out)))
			var pkgs []string
			for dec.More() {
				var p struct {
					ImportPath string
					Imports    []string
				}
				if err := dec.Decode(&p); err != nil {
					t.Fatalf("go list output: %v", err)
				}
				pkgs = append(pkgs, p.ImportPath)
				for _, imp := range p.Imports {
					if _, ok := importers[imp]; !ok {
						importers[imp] = p.ImportPath
					}
				}
			}
			for _, p := range pkgs {
				for _, f := range forbidden {
					if p == f || strings.HasPrefix(p, f+"/") {
						t.Errorf("%s is linked into a pure package (imported by %s)", p, importers[p])
					}
				}
			}
			if len(pkgs) < len(pure) {
				t.Fatalf("go list listed %d packages, want at least %d", len(pkgs), len(pure))
			}
		})
	}
}

// goCommand finds the go command on PATH (go test and .ci/run put it there); without it the
// dependencies cannot be listed, which is a failure, not a reason to skip.
func goCommand(t *testing.T) string {
	p, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH, so the dependencies cannot be listed: %v", err)
	}
	return p
}
