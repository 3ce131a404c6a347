package cli

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/bindguard/bindguard/internal/kernel"
	"github.com/bindguard/bindguard/internal/runner"
	"github.com/bindguard/bindguard/policy"
)

// runEnforcement is run --enforce: a cgroup of run's own, enforced with the host scope (the
// services run can bind) exactly as `enforce apply --cgroup` enforces one.
type runEnforcement struct {
	cg     *runner.Cgroup
	opts   kernel.EnforceOptions
	logger *slog.Logger
}

// startEnforcement removes what earlier runs in place left in this cgroup (empty cgroups of
// ended runs, and their enforcement), makes the service's cgroup and enforces it. Nothing is
// in the cgroup yet: Join or start the command there.
func startEnforcement(p *policy.Policy, service, pinRoot string, logger *slog.Logger) (*runEnforcement, error) {
	mount, err := kernel.FindCgroup2()
	if err != nil {
		return nil, fmt.Errorf("run --enforce: %w", err)
	}
	r := &runEnforcement{opts: kernel.EnforceOptions{PinRoot: pinRoot}, logger: logger}
	old, err := runner.Leftovers(mount)
	if err != nil {
		return nil, err
	}
	for _, dir := range old {
		if err := r.remove(dir); err != nil {
			logger.Warn("cannot remove a cgroup an earlier run left", "cgroup", dir, "err", err)
			continue
		}
		logger.Info("removed the cgroup an earlier run left, and its enforcement", "cgroup", dir)
	}
	if r.cg, err = runner.NewCgroup(mount, service); err != nil {
		return nil, err
	}
	if r.cg.Unmanaged {
		logger.Warn("run --enforce: this is a systemd unit's cgroup that systemd did not delegate; the cgroup run makes inside it is not systemd's to manage "+
			"(set Delegate=yes on the unit, or let the unit enforce its own cgroup: bindguard gen systemd --enforce)", "cgroup", r.cg.Parent)
	}
	sc, _ := p.Scope(policy.HostScope)
	e, err := compileScope(p, sc, false)
	if err == nil {
		_, err = kernel.ApplyEnforcement(r.cg.Dir, e, r.opts)
	}
	if err != nil {
		_ = r.cg.Remove()
		return nil, fmt.Errorf("run --enforce: %w", err)
	}
	logger.Info("enforcing", "cgroup", r.cg.Dir, "scope", policy.HostScope, "mode", e.Mode, "rules", len(e.Rules), "guarded_ranges", len(e.Guard))
	return r, nil
}

// remove detaches the enforcement of the cgroup dir (if any) and removes the cgroup.
func (r *runEnforcement) remove(dir string) error {
	id, err := kernel.CgroupID(dir)
	if err != nil {
		return err
	}
	if err := kernel.RemoveEnforcement(id, r.opts); err != nil && !errors.Is(err, kernel.ErrNotEnforced) {
		return err
	}
	return runner.RemoveLeftover(dir)
}

// abort undoes startEnforcement when the command did not start: run leaves the cgroup if it
// joined it, then removes it with its enforcement.
func (r *runEnforcement) abort(joined bool) {
	if joined {
		if err := r.cg.Leave(); err != nil {
			r.logger.Warn("cannot leave the cgroup; it stays, enforced", "cgroup", r.cg.Dir, "err", err)
			return
		}
	}
	if err := r.remove(r.cg.Dir); err != nil {
		r.logger.Warn("cannot remove the cgroup", "cgroup", r.cg.Dir, "err", err)
	}
}

// finish is the end of --guard: once the command and everything it started have left the
// cgroup, the enforcement is detached and the cgroup removed. While a process is still in it
// both stay (a process there must not become unenforced).
func (r *runEnforcement) finish() {
	busy, err := r.cg.Populated()
	switch {
	case err != nil:
		r.logger.Warn("cannot read the cgroup's state; it stays, enforced", "cgroup", r.cg.Dir, "err", err)
	case busy:
		r.logger.Warn("processes the command started are still in its cgroup: it stays, enforced (bindguard enforce remove --cgroup, then rmdir, once they are gone)", "cgroup", r.cg.Dir)
	default:
		if err := r.remove(r.cg.Dir); err != nil {
			r.logger.Warn("cannot remove the cgroup", "cgroup", r.cg.Dir, "err", err)
		}
	}
}
