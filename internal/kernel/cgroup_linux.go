package kernel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// FindCgroup2 returns the cgroup2 mount point of this process's mount namespace, from
// /proc/self/mountinfo.
func FindCgroup2() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("kernel: find cgroup2: %w", err)
	}
	defer func() { _ = f.Close() }()
	return Cgroup2Mount(f)
}

// CgroupID returns the cgroup2 id of a cgroup directory: its inode, which is the kernel's
// cgroup id (kernfs node id) on 64-bit systems.
func CgroupID(dir string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return 0, fmt.Errorf("kernel: cgroup id of %s: %w", dir, err)
	}
	return st.Ino, nil
}

// ErrCgroupNotFound is returned by CgroupPath when no cgroup under the mount has the id.
var ErrCgroupNotFound = errors.New("cgroup not found")

// CgroupPath resolves a cgroup2 id (Event.CgroupID) to its path relative to the cgroup2
// mount (mount from FindCgroup2), "/" for the root, e.g. "/system.slice/nginx.service", by
// walking the mount's directories. It costs one stat per cgroup: cache the answers.
func CgroupPath(mount string, id uint64) (string, error) {
	var found string
	errFound := errors.New("found")
	err := filepath.WalkDir(mount, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == mount {
				return err
			}
			return fs.SkipDir // a cgroup removed during the walk
		}
		if !d.IsDir() {
			return nil
		}
		var st unix.Stat_t
		if unix.Lstat(path, &st) != nil {
			return fs.SkipDir
		}
		if st.Ino == id {
			rel, err := filepath.Rel(mount, path)
			if err != nil {
				return err
			}
			found = "/" + filepath.ToSlash(rel)
			if rel == "." {
				found = "/"
			}
			return errFound
		}
		return nil
	})
	switch {
	case errors.Is(err, errFound):
		return found, nil
	case err != nil:
		return "", fmt.Errorf("kernel: cgroup %d under %s: %w", id, mount, err)
	}
	return "", fmt.Errorf("kernel: cgroup %d under %s: %w", id, mount, ErrCgroupNotFound)
}
