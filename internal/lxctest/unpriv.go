package lxctest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// An unprivileged container maps its uids and gids 0..IDMapSize-1 to IDMapBase.. on the host.
const (
	IDMapBase = 100000
	IDMapSize = 65536
)

// UnprivBaseName is the base of unprivileged containers: a full copy of the base whose files
// are owned by the mapped ids, built from the base the first time one is asked for, and kept.
const UnprivBaseName = BaseName + "-u100000"

// subidLine is what /etc/subuid and /etc/subgid must hold for root to start an unprivileged
// container (newuidmap checks it).
var subidLine = fmt.Sprintf("root:%d:%d", IDMapBase, IDMapSize)

// subidFiles are the files subidLine is added to while an unprivileged container of ours exists;
// their original contents are kept in CacheDir and put back after.
var subidFiles = []string{"/etc/subuid", "/etc/subgid"}

// ensureUnprivBase builds UnprivBaseName unless it is complete (under the lock; the base must
// exist).
func ensureUnprivBase(ctx context.Context, logf Logf) error {
	dir := filepath.Join(lxcPath(), UnprivBaseName)
	marker := filepath.Join(dir, "bindguard-ready")
	if b, err := os.ReadFile(marker); err == nil && strings.TrimSpace(string(b)) == Version { // #nosec G304 -- our own file
		return nil
	}
	if _, err := os.Stat(dir); err == nil {
		if out, err := exec.CommandContext(ctx, "lxc-destroy", "-f", "-n", UnprivBaseName).CombinedOutput(); err != nil { // #nosec G204 -- our own name
			return fmt.Errorf("lxctest: lxc-destroy %s: %w\n%s", UnprivBaseName, err, out)
		}
	}
	logf("lxctest: building %s (a copy of %s owned by the ids from %d)", UnprivBaseName, BaseName, IDMapBase)
	if out, err := exec.CommandContext(ctx, "lxc-copy", "-n", BaseName, "-N", UnprivBaseName).CombinedOutput(); err != nil { // #nosec G204 -- our own names
		return fmt.Errorf("lxctest: lxc-copy %s: %w\n%s", UnprivBaseName, err, out)
	}
	rootfs := filepath.Join(dir, "rootfs")
	if err := shiftOwners(rootfs, IDMapBase); err != nil {
		return err
	}
	// The container's root must reach its rootfs (overlayfs is mounted in its user namespace).
	if err := os.Chown(dir, 0, IDMapBase); err != nil {
		return fmt.Errorf("lxctest: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "config"), os.O_APPEND|os.O_WRONLY, 0) // #nosec G304 -- LXC's config
	if err != nil {
		return fmt.Errorf("lxctest: %w", err)
	}
	_, err = fmt.Fprintf(f, "lxc.idmap = u 0 %d %d\nlxc.idmap = g 0 %d %d\n", IDMapBase, IDMapSize, IDMapBase, IDMapSize)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("lxctest: %w", err)
	}
	return os.WriteFile(marker, []byte(Version+"\n"), 0o600)
}

// shiftOwners adds base to the owner and group of every file under root (without following
// symlinks), keeping the modes that chown clears (setuid, setgid).
func shiftOwners(root string, base int) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok || st.Uid >= IDMapSize || st.Gid >= IDMapSize {
			return nil // already shifted
		}
		// The tree is a fresh copy no container runs on yet: nothing can swap a path for a
		// symlink under the walk.
		if err := os.Lchown(path, int(st.Uid)+base, int(st.Gid)+base); err != nil { // #nosec G122 -- see above
			return fmt.Errorf("lxctest: shift %s: %w", path, err)
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			if err := syscall.Chmod(path, uint32(st.Mode)&0o7777); err != nil { // #nosec G122 -- see above
				return fmt.Errorf("lxctest: shift %s: %w", path, err)
			}
		}
		return nil
	})
}

// addSubids makes sure /etc/subuid and /etc/subgid allow root the mapping, keeping the files'
// original contents in CacheDir the first time (under the lock).
func addSubids() error {
	for _, f := range subidFiles {
		b, err := os.ReadFile(f) // #nosec G304 -- a fixed system file
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("lxctest: %w", err)
		}
		if slicesContainsLine(string(b), subidLine) {
			continue
		}
		orig := filepath.Join(CacheDir, filepath.Base(f)+".orig")
		if _, serr := os.Stat(orig); errors.Is(serr, fs.ErrNotExist) {
			saved := "absent\n"
			if err == nil {
				saved = "present\n" + string(b)
			}
			if err := os.WriteFile(orig, []byte(saved), 0o600); err != nil { // #nosec G703 -- in our own cache directory
				return fmt.Errorf("lxctest: %w", err)
			}
		}
		content := string(b)
		if content != "" && !strings.HasSuffix(content, "\n") {
			content += "\n"
		}
		if err := os.WriteFile(f, []byte(content+subidLine+"\n"), 0o644); err != nil { // #nosec G306 G703 -- /etc/subuid or /etc/subgid, world-readable
			return fmt.Errorf("lxctest: %w", err)
		}
	}
	return nil
}

func slicesContainsLine(s, line string) bool {
	for l := range strings.SplitSeq(s, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

// restoreSubidsIfUnused puts /etc/subuid and /etc/subgid back as they were when no unprivileged
// container of ours is left (under the lock).
func restoreSubidsIfUnused() error {
	for _, conf := range ours() {
		if strings.Contains(conf, "lxc.idmap") {
			return nil
		}
	}
	var errs []error
	for _, f := range subidFiles {
		orig := filepath.Join(CacheDir, filepath.Base(f)+".orig")
		b, err := os.ReadFile(orig) // #nosec G304 -- our own file
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		state, content, _ := strings.Cut(string(b), "\n")
		if state == "absent" {
			err = os.Remove(f)
		} else {
			err = os.WriteFile(f, []byte(content), 0o644) // #nosec G306 G703 -- /etc/subuid or /etc/subgid, world-readable
		}
		if err == nil {
			err = os.Remove(orig)
		}
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lxctest: restore subordinate ids: %w", err)
	}
	return nil
}
