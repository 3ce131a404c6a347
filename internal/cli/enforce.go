package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bindguard/bindguard/internal/kernel"
	"github.com/bindguard/bindguard/internal/monitor"
	"github.com/bindguard/bindguard/policy"
)

func newEnforceCmd(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "enforce",
		Short: "Deny in the kernel the binds the policy forbids, per cgroup, unit or container",
		Long: `Enforce the policy in the kernel: cgroup BPF programs on a cgroup's bind()
refuse (EPERM) every bind of a declared port to an address the policy does not
allow, and every bind in the policy's guarded port ranges (enforce.guard) that
no service declares. Links and maps are pinned under /sys/fs/bpf/bindguard, so
enforcement stays when bindguard exits; apply again to update it in place,
remove to detach it. See docs/enforce.md for what is and is not covered.`,
		Example: `  sudo bindguard enforce apply --unit redis-server
  sudo bindguard enforce status
  sudo bindguard enforce remove --unit redis-server`,
	}
	cmd.AddCommand(newEnforceApplyCmd(s), newEnforceStatusCmd(s), newEnforceRemoveCmd(s))
	return cmd
}

// enforceTarget is what --cgroup, --unit and --container name.
type enforceTarget struct {
	cgroup, unit, container string
	pinRoot                 string
}

func (t *enforceTarget) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&t.cgroup, "cgroup", "", "a cgroup2 directory (absolute, or relative to the cgroup2 mount)")
	cmd.Flags().StringVar(&t.unit, "unit", "", "a systemd unit (NAME or NAME.service): its cgroup")
	cmd.Flags().StringVar(&t.container, "container", "", "an LXC container: its payload cgroup (lxc.payload.NAME)")
	cmd.Flags().StringVar(&t.pinRoot, "pin-root", kernel.DefaultPinRoot, "where links and maps are pinned (on the BPF file system)")
	_ = cmd.Flags().MarkHidden("pin-root")
	cmd.MarkFlagsMutuallyExclusive("cgroup", "unit", "container")

}

var errNoTarget = errors.New("give --cgroup PATH, --unit NAME, --container NAME or --all")

// resolve returns the cgroup directory the target names.
func (t *enforceTarget) resolve() (string, error) {
	mount, err := kernel.FindCgroup2()
	if err != nil {
		return "", err
	}
	var dir string
	switch {
	case t.cgroup == "" && t.unit == "" && t.container == "":
		return "", errNoTarget
	case t.cgroup != "":
		dir = t.cgroup
		if !strings.HasPrefix(filepath.Clean(dir)+"/", filepath.Clean(mount)+"/") {
			dir = filepath.Join(mount, dir)
		}
	case t.unit != "":
		name := t.unit
		if !strings.Contains(name, ".") {
			name += ".service"
		}
		if strings.ContainsRune(name, '/') {
			return "", fmt.Errorf("unit %q: a unit name has no /", t.unit)
		}
		dir = filepath.Join(mount, "system.slice", name)
		if _, err := os.Stat(dir); err != nil {
			if dir, err = findCgroupDir(mount, name); err != nil {
				return "", fmt.Errorf("unit %s: %w (is it running?)", name, err)
			}
		}
	case t.container != "":
		if strings.ContainsRune(t.container, '/') {
			return "", fmt.Errorf("container %q: a container name has no /", t.container)
		}
		if dir, err = findCgroupDir(mount, "lxc.payload."+t.container); err != nil {
			return "", fmt.Errorf("container %s: %w (is it running?)", t.container, err)
		}
	}
	st, err := os.Stat(dir)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return "", fmt.Errorf("%s is not a cgroup directory", dir)
	}
	return dir, nil
}

// findCgroupDir finds the cgroup directory called name under mount (the first, in walk order).
func findCgroupDir(mount, name string) (string, error) {
	var found string
	stop := errors.New("found")
	err := filepath.WalkDir(mount, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == mount {
				return err
			}
			return fs.SkipDir
		}
		if d.IsDir() && d.Name() == name {
			found = path
			return stop
		}
		return nil
	})
	if found != "" {
		return found, nil
	}
	if err != nil && !errors.Is(err, stop) {
		return "", err
	}
	return "", fmt.Errorf("no cgroup %s under %s", name, mount)
}

func newEnforceApplyCmd(s Streams) *cobra.Command {
	var t enforceTarget
	var policyPath, scope, allUnder string
	var dryRun, all bool
	cmd := &cobra.Command{
		Use:   "apply [--policy F] (--cgroup PATH | --unit NAME | --container NAME | --all) [--scope NAME] [--dry-run]",
		Short: "Attach enforcement to a cgroup, or update it in place",
		Long: `Compile the services of one scope of the policy into kernel rules and attach
them to the cgroup: --cgroup and --unit use --scope (default: the host's),
--container the scope that matches the container. --all applies each LXC
container's scope to its payload cgroup and the host's scope to every other
cgroup directly under the cgroup2 root (descending into those that hold
containers); processes in the root cgroup itself and cgroups created later
are not covered. The policy's enforce: mode
applies (deny, dry-run or rewrite); --dry-run records would-be denials and
denies nothing. Applying again to the same cgroup updates the pinned maps in
place and switches the pinned links to the new programs atomically.`,
		Example: `  sudo bindguard enforce apply --unit redis-server
  sudo bindguard enforce apply --container web1 --dry-run
  sudo bindguard enforce apply --cgroup /system.slice/app.service --scope app`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := loadPolicyFor(s, policyPath)
			if err != nil {
				return err
			}
			spec := enforceSpec{target: t, scope: scope, all: all, allUnder: allUnder, dryRun: dryRun}
			if err := spec.check(); err != nil {
				return &usageError{cmd: cmd.CommandPath(), err: err}
			}
			applied, err := spec.apply(p)
			for _, a := range applied {
				_, _ = fmt.Fprintf(s.Out, "enforcing %s: scope %s, mode %s, %d rules, %d guarded ranges; pinned in %s\n",
					a.dir, a.scope, a.e.Mode, len(a.e.Rules), len(a.e.Guard), a.pins)
			}
			if errors.Is(err, errNoTarget) {
				return &usageError{cmd: cmd.CommandPath(), err: err}
			}
			return err
		},
	}
	t.flags(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "every container with its scope, every other top-level cgroup with the host's")
	cmd.Flags().StringVar(&allUnder, "all-under", "", "with --all: the cgroup directory to cover instead of the cgroup2 root")
	_ = cmd.Flags().MarkHidden("all-under")
	cmd.Flags().StringVarP(&policyPath, "policy", "p", "", "policy file or directory (default ./bindguard.yaml, then /etc/bindguard/bindguard.yaml with its bindguard.d)")
	cmd.Flags().StringVar(&scope, "scope", "", "the policy scope for --cgroup and --unit (default: host)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "record would-be denials, deny nothing")
	return cmd
}

// compileScope compiles a scope with the policy's enforce section (--dry-run overriding its mode).
func compileScope(p *policy.Policy, sc policy.Scope, dryRun bool) (kernel.Enforcement, error) {
	mode := kernel.EnforceMode(p.Enforce.EffectiveMode())
	if dryRun {
		mode = kernel.EnforceDryRun
	}
	var guard []kernel.PortRange
	if p.Enforce != nil {
		for _, g := range p.Enforce.Guard {
			guard = append(guard, kernel.PortRange{Protocol: g.Protocol, Lo: g.Lo, Hi: g.Hi})
		}
	}
	return kernel.CompileEnforcement(sc.Services, mode, guard)
}

// allTarget is one cgroup --all enforces, with its scope.
type allTarget struct{ dir, scope string }

// allTargets covers root: every lxc.payload.NAME directory with the scope matching NAME, and
// every other child with the host's scope, descending into children that hold containers.
func allTargets(p *policy.Policy, root string) ([]allTarget, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []allTarget
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		if ct, ok := strings.CutPrefix(e.Name(), "lxc.payload."); ok {
			name, _, _ := p.ScopeFor(policy.NamespaceNames{Label: ct, Container: ct})
			out = append(out, allTarget{dir, name})
			continue
		}
		if _, err := findCgroupDirPrefix(dir, "lxc.payload."); err == nil {
			sub, err := allTargets(p, dir)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		out = append(out, allTarget{dir, policy.HostScope})
	}
	return out, nil
}

// findCgroupDirPrefix finds a directory under root whose name starts with prefix.
func findCgroupDirPrefix(root, prefix string) (string, error) {
	var found string
	stop := errors.New("found")
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fs.SkipDir
		}
		if d.IsDir() && path != root && strings.HasPrefix(d.Name(), prefix) {
			found = path
			return stop
		}
		return nil
	})
	if found == "" {
		return "", fs.ErrNotExist
	}
	return found, nil
}

// enforceSpec is what enforce apply and serve --enforce apply: one target (--cgroup, --unit,
// --container, with --scope) or --all (under the cgroup2 root, or allUnder).
type enforceSpec struct {
	target   enforceTarget
	scope    string
	all      bool
	allUnder string
	dryRun   bool
}

// check refuses contradicting flags.
func (sp enforceSpec) check() error {
	t := sp.target
	switch {
	case sp.all && (t.cgroup != "" || t.unit != "" || t.container != "" || sp.scope != ""):
		return errors.New("--all takes no --cgroup, --unit, --container or --scope")
	case t.container != "" && sp.scope != "":
		return errors.New("--scope is for --cgroup and --unit; --container uses the scope that matches it")
	case !sp.all && t.cgroup == "" && t.unit == "" && t.container == "":
		return errNoTarget
	}
	return nil
}

// targets resolves the cgroups the spec covers, each with its scope.
func (sp enforceSpec) targets(p *policy.Policy) ([]allTarget, error) {
	if sp.all {
		root := sp.allUnder
		if root == "" {
			var err error
			if root, err = kernel.FindCgroup2(); err != nil {
				return nil, err
			}
		}
		return allTargets(p, root)
	}
	name := sp.scope
	if sp.target.container != "" {
		name, _, _ = p.ScopeFor(policy.NamespaceNames{Label: sp.target.container, Container: sp.target.container})
	}
	if name == "" {
		name = policy.HostScope
	}
	if _, ok := p.Scope(name); !ok {
		return nil, fmt.Errorf("the policy has no scope %q", name)
	}
	dir, err := sp.target.resolve()
	if err != nil {
		return nil, err
	}
	return []allTarget{{dir, name}}, nil
}

// appliedTarget is one cgroup applied to: its directory, id, scope, rules and pin directory,
// or why it failed.
type appliedTarget struct {
	dir, scope, pins string
	id               uint64
	e                kernel.Enforcement
	err              error
}

// apply finds the spec's targets and applies them (applyTargets); it returns those applied
// and the failures, joined.
func (sp enforceSpec) apply(p *policy.Policy) ([]appliedTarget, error) {
	targets, err := sp.targets(p)
	if err != nil {
		return nil, err
	}
	res, err := sp.applyTargets(p, targets)
	if err != nil {
		return nil, err
	}
	var ok []appliedTarget
	var errs []error
	for _, r := range res {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		ok = append(ok, r)
	}
	return ok, errors.Join(errs...)
}

// applyTargets compiles each target's scope (the policy's enforce section, --dry-run
// overriding its mode) and applies it (in place where it is applied already), each with its
// outcome. A scope that does not compile applies nothing.
func (sp enforceSpec) applyTargets(p *policy.Policy, targets []allTarget) ([]appliedTarget, error) {
	res := make([]appliedTarget, len(targets))
	for i, tg := range targets {
		sc, _ := p.Scope(tg.scope)
		e, err := compileScope(p, sc, sp.dryRun)
		if err != nil {
			return nil, fmt.Errorf("scope %s: %w", tg.scope, err)
		}
		res[i] = appliedTarget{dir: tg.dir, scope: tg.scope, e: e}
	}
	opts := kernel.EnforceOptions{PinRoot: sp.target.pinRoot}
	for i := range res {
		r := &res[i]
		r.id, r.err = kernel.CgroupID(r.dir)
		if r.err == nil {
			r.pins, r.err = kernel.ApplyEnforcement(r.dir, r.e, opts)
		}
	}
	return res, nil
}

func newEnforceRemoveCmd(s Streams) *cobra.Command {
	var t enforceTarget
	var all, gone bool
	cmd := &cobra.Command{
		Use:   "remove (--cgroup PATH | --unit NAME | --container NAME | --all | --gone)",
		Short: "Detach bindguard's enforcement from a cgroup",
		Long: `Detach exactly the programs bindguard attached to the cgroup and remove their
pins; other programs on the cgroup stay. --all removes every enforcement
bindguard pinned; --gone only the pins left by cgroups that were removed (the
kernel detached their programs with them).`,
		Example: `  sudo bindguard enforce remove --unit redis-server`,
		Args:    args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all && gone {
				return &usageError{cmd: cmd.CommandPath(), err: errors.New("give --all or --gone, not both")}
			}
			if all || gone {
				if t.cgroup != "" || t.unit != "" || t.container != "" {
					return &usageError{cmd: cmd.CommandPath(), err: errors.New("--all and --gone take no --cgroup, --unit or --container")}
				}
				sts, err := kernel.EnforcementStatus(kernel.EnforceOptions{PinRoot: t.pinRoot})
				if err != nil {
					return err
				}
				var errs []error
				for _, st := range sts {
					if gone && st.Cgroup != "" {
						continue
					}
					if err := kernel.RemoveEnforcement(st.ID, kernel.EnforceOptions{PinRoot: t.pinRoot}); err != nil {
						errs = append(errs, err)
						continue
					}
					cg := st.Cgroup
					if cg == "" {
						cg = "a removed cgroup"
					}
					_, _ = fmt.Fprintf(s.Out, "removed enforcement from %s (id %d)\n", cg, st.ID)
				}
				return errors.Join(errs...)
			}
			dir, err := t.resolve()
			if errors.Is(err, errNoTarget) {
				return &usageError{cmd: cmd.CommandPath(), err: err}
			}
			if err != nil {
				return err
			}
			id, err := kernel.CgroupID(dir)
			if err != nil {
				return err
			}
			if err := kernel.RemoveEnforcement(id, kernel.EnforceOptions{PinRoot: t.pinRoot}); err != nil {
				return err
			}
			_, _ = fmt.Fprintf(s.Out, "removed enforcement from %s\n", dir)
			return nil
		},
	}
	t.flags(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "every cgroup bindguard enforces")
	cmd.Flags().BoolVar(&gone, "gone", false, "only the pins of cgroups that no longer exist")
	return cmd
}

func newEnforceStatusCmd(s Streams) *cobra.Command {
	var pinRoot string
	var f *formatFlag
	cmd := &cobra.Command{
		Use:   "status [--format table|json]",
		Short: "Show the enforced cgroups, whether bindguard's programs are effective, and the denial counts",
		Long: `List every cgroup bindguard enforces (from the pins), its mode, which of its four
programs are attached and among the cgroup's effective programs, and the
pinned per-rule denial counters (kept while no reader runs). Exit status 1
when a program is missing or not effective.`,
		Example: `  sudo bindguard enforce status
  sudo bindguard enforce status --format json`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			sts, err := kernel.EnforcementStatus(kernel.EnforceOptions{PinRoot: pinRoot})
			if err != nil {
				return err
			}
			// A cgroup that is gone took its programs with it: nothing can bind there, so its
			// leftover pins are reported, not counted as enforcement that failed.
			bad := false
			for _, st := range sts {
				bad = bad || (st.Cgroup != "" && !st.OK())
			}
			if f.value == "json" {
				type rule struct {
					ID      uint32 `json:"id"`
					Name    string `json:"name"`
					Denials uint64 `json:"denials"`
				}
				type entry struct {
					Cgroup    string   `json:"cgroup"`
					ID        uint64   `json:"cgroup_id"`
					PinDir    string   `json:"pin_dir"`
					Mode      string   `json:"mode"`
					Links     []string `json:"links"`
					Effective []string `json:"effective"`
					OK        bool     `json:"ok"`
					Gone      bool     `json:"gone"`
					Lost      uint64   `json:"lost"`
					Rules     []rule   `json:"rules"`
				}
				out := struct {
					Schema   string  `json:"schema"`
					Enforced []entry `json:"enforced"`
				}{Schema: "bindguard.enforce.v1", Enforced: []entry{}}
				for _, st := range sts {
					e := entry{Cgroup: st.Cgroup, ID: st.ID, PinDir: st.PinDir, Mode: string(st.Mode), Links: st.Links, Effective: st.Effective,
						OK: st.OK(), Gone: st.Cgroup == "", Lost: st.Lost, Rules: []rule{}}
					for _, r := range st.Rules {
						e.Rules = append(e.Rules, rule{r.ID, r.Name, r.Denials})
					}
					out.Enforced = append(out.Enforced, e)
				}
				enc := json.NewEncoder(s.Out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(out); err != nil {
					return err
				}
			} else {
				if len(sts) == 0 {
					_, _ = fmt.Fprintln(s.Out, "no cgroup is enforced")
				}
				tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
				for _, st := range sts {
					state := "ok"
					if !st.OK() {
						state = fmt.Sprintf("NOT EFFECTIVE (attached %s; effective %s)", strings.Join(st.Links, ","), strings.Join(st.Effective, ","))
					}
					cg := st.Cgroup
					if cg == "" {
						cg, state = "(gone)", "cgroup removed, its programs with it (enforce remove --gone clears the pins)"
					}
					_, _ = fmt.Fprintf(tw, "%s\tid %d\tmode %s\t%s\tlost %d\n", cg, st.ID, st.Mode, state, st.Lost)
					for _, r := range st.Rules {
						_, _ = fmt.Fprintf(tw, "  %s\t\tdenials %d\t\t\n", r.Name, r.Denials)
					}
				}
				_ = tw.Flush()
			}
			if bad {
				return &exitError{Code: ExitViolation}
			}
			return nil
		},
	}
	f = addFormatFlag(cmd, "table", "table", "json")
	cmd.Flags().StringVar(&pinRoot, "pin-root", kernel.DefaultPinRoot, "where links and maps are pinned")
	_ = cmd.Flags().MarkHidden("pin-root")
	return cmd
}

// serveEnforce is serve's --enforce and the flags choosing what it enforces: those of
// enforce apply, prefixed (no target: --all).
type serveEnforce struct {
	on   bool
	spec enforceSpec
}

func (f *serveEnforce) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.on, "enforce", false, "apply the policy's enforcement (as enforce apply --all, or the --enforce.* target) at start and on SIGHUP, and record its denials as events")
	fl.StringVar(&f.spec.target.cgroup, "enforce.cgroup", "", "with --enforce: only this cgroup2 directory (with --enforce.scope)")
	fl.StringVar(&f.spec.target.unit, "enforce.unit", "", "with --enforce: only this systemd unit's cgroup (with --enforce.scope)")
	fl.StringVar(&f.spec.target.container, "enforce.container", "", "with --enforce: only this LXC container (the scope that matches it)")
	fl.StringVar(&f.spec.scope, "enforce.scope", "", "with --enforce.cgroup or --enforce.unit: the policy scope (default: host)")
	fl.BoolVar(&f.spec.dryRun, "enforce.dry-run", false, "with --enforce: record would-be denials, deny nothing")
	fl.StringVar(&f.spec.target.pinRoot, "enforce.pin-root", kernel.DefaultPinRoot, "where links and maps are pinned (on the BPF file system)")
	fl.StringVar(&f.spec.allUnder, "enforce.all-under", "", "with --enforce and no target: the cgroup directory to cover instead of the cgroup2 root")
	_ = fl.MarkHidden("enforce.pin-root")
	_ = fl.MarkHidden("enforce.all-under")
	cmd.MarkFlagsMutuallyExclusive("enforce.cgroup", "enforce.unit", "enforce.container")
}

// config is the monitor's enforcement configuration, nil without --enforce.
func (f *serveEnforce) config(cmd *cobra.Command) (*monitor.EnforceConfig, error) {
	if !f.on {
		for _, n := range []string{"enforce.cgroup", "enforce.unit", "enforce.container", "enforce.scope", "enforce.dry-run", "enforce.all-under"} {
			if cmd.Flags().Changed(n) {
				return nil, fmt.Errorf("--%s needs --enforce", n)
			}
		}
		return nil, nil
	}
	spec := f.spec
	t := spec.target
	spec.all = t.cgroup == "" && t.unit == "" && t.container == ""
	if spec.scope != "" && t.cgroup == "" && t.unit == "" {
		// Said in serve's flags: check() would name enforce apply's.
		return nil, errors.New("--enforce.scope is for --enforce.cgroup and --enforce.unit (a container's scope is the one that matches it; without a target every cgroup gets its own)")
	}
	if err := spec.check(); err != nil {
		return nil, fmt.Errorf("--enforce: %w", err)
	}
	return &monitor.EnforceConfig{
		Options:    kernel.EnforceOptions{PinRoot: t.pinRoot},
		CgroupPath: monitor.CgroupPaths(),
		Apply: func(p *policy.Policy) ([]monitor.EnforceTarget, error) {
			targets, err := spec.targets(p)
			if err != nil {
				return nil, err
			}
			res, err := spec.applyTargets(p, targets)
			if err != nil {
				return nil, err
			}
			out := make([]monitor.EnforceTarget, len(res))
			for i, r := range res {
				out[i] = monitor.EnforceTarget{Cgroup: r.dir, ID: r.id, Scope: r.scope, Mode: string(r.e.Mode), Err: r.err}
			}
			return out, nil
		},
	}, nil
}
