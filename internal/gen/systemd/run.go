package systemd

import (
	"fmt"
	"strings"

	"github.com/bindguard/bindguard/policy"
)

// DefaultBindguard is the bindguard a unit that starts its service through `bindguard run`
// calls (the Debian package's).
const DefaultBindguard = "/usr/bin/bindguard"

// runExec is ExecStart= for a service started through `bindguard run` (Options.Run): bindguard
// binds the service's socket as the policy declares and execs the command on it, or with
// Options.Guard serves it behind the access guard. The command is passed literally: "$" is
// doubled so that systemd does not expand $BINDGUARD_UPSTREAM (bindguard sets it at run time);
// Generate doubles "%".
func runExec(svc policy.Service, o Options) (string, error) {
	if o.DropIn {
		return "", fmt.Errorf("--run writes a whole unit (its ExecStart=), not a --drop-in")
	}
	if o.Guard {
		if svc.Protocol != policy.TCP || !svc.Access.Confined() {
			return "", fmt.Errorf("--run-guard: service %s is %s %s: only a TCP service of a class that limits its clients can be guarded", svc.Name, svc.Protocol, svc.Access)
		}
	}
	bg, pol, err := bindguardPaths(o)
	if err != nil {
		return "", err
	}
	exec := bg + " run --service " + svc.Name + " --policy " + pol
	if o.Guard {
		exec += " --guard"
	}
	return exec + " -- " + strings.ReplaceAll(o.Exec, "$", "$$"), nil
}

// bindguardPaths are the bindguard binary and the policy path a unit's command lines name
// (Options.Bindguard and PolicyPath, or their defaults), each one token systemd takes as it is.
func bindguardPaths(o Options) (bg, pol string, err error) {
	bg, pol = o.Bindguard, o.PolicyPath
	if bg == "" {
		bg = DefaultBindguard
	}
	if pol == "" {
		pol = "/etc/bindguard/bindguard.yaml"
	}
	for _, v := range []struct{ what, path string }{{"bindguard path", bg}, {"policy path", pol}} {
		if !policyPathRE().MatchString(v.path) || strings.Contains(v.path, "..") {
			return "", "", fmt.Errorf("%s %s: want an absolute path of [A-Za-z0-9._/@+,:=~-] (without spaces, quotes, $, %%, ; or backslashes) for a command line", v.what, comment(v.path))
		}
	}
	return bg, pol, nil
}

// enforceExecs are the lines that enforce the unit's own cgroup (Options.Enforce): before the
// service starts, `bindguard enforce apply` with full privileges ("+": no User=, no sandbox)
// on the cgroup of the unit (%n, the unit's own name, whatever file it was installed as);
// after it stopped, `enforce remove` (its failure, when apply never ran, is ignored: "-").
func enforceExecs(o Options) (start, stop string, err error) {
	bg, pol, err := bindguardPaths(o)
	if err != nil {
		return "", "", err
	}
	return "+" + bg + " enforce apply --policy " + pol + " --unit %n", "-+" + bg + " enforce remove --unit %n", nil
}
