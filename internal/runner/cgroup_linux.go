package runner

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// CgroupPrefix starts the name of every cgroup run makes (CgroupPrefix+SERVICE+"."+PID).
const CgroupPrefix = "bindguard-run."

// Cgroup is a cgroup2 directory run made for a service, a child of the cgroup run was
// started in.
type Cgroup struct {
	// Dir is its absolute path, Parent the cgroup run was started in.
	Dir, Parent string
	// Unmanaged is set when Parent is a systemd unit's cgroup that systemd did not delegate
	// (no trusted.delegate or user.delegate attribute): systemd regards it as its own.
	Unmanaged bool
}

// ownCgroup is this process's cgroup2 directory under mount, from /proc/self/cgroup.
func ownCgroup(mount string) (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("run --enforce: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "0::")
		if !ok {
			continue
		}
		if !strings.HasPrefix(rest, "/") || strings.Contains(rest, "/..") {
			return "", fmt.Errorf("run --enforce: this process's cgroup %q lies outside the cgroup2 mount %s (another cgroup namespace)", rest, mount)
		}
		return filepath.Join(mount, rest), nil
	}
	return "", errors.New("run --enforce: /proc/self/cgroup has no cgroup2 line (0::): the cgroup2 hierarchy is not in use here")
}

// NewCgroup creates the cgroup PARENT/bindguard-run.SERVICE.PID, PARENT being this process's
// cgroup under mount (the cgroup2 mount). It does not join it (Join). The new cgroup has no
// controllers, so it may hold processes whatever its parent enables ("no internal
// processes" concerns cgroups with controllers in cgroup.subtree_control, which run never
// writes). Errors say what is missing: root, delegation, a writable cgroup2.
func NewCgroup(mount, service string) (*Cgroup, error) {
	if service == "" || strings.ContainsAny(service, "/\x00") || strings.HasPrefix(service, ".") {
		return nil, fmt.Errorf("run --enforce: service name %q cannot name a cgroup", service)
	}
	parent, err := ownCgroup(mount)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(parent, CgroupPrefix+service+"."+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil { // #nosec G301 -- a cgroup directory, as systemd makes them
		return nil, fmt.Errorf("run --enforce: create cgroup %s: %w%s", dir, unwrapPath(err), cgroupHint(err))
	}
	c := &Cgroup{Dir: dir, Parent: parent}
	base := filepath.Base(parent)
	if strings.HasSuffix(base, ".service") || strings.HasSuffix(base, ".scope") {
		c.Unmanaged = !delegated(parent)
	}
	return c, nil
}

// delegated reports whether systemd marked the cgroup delegated (systemd 251 and later set
// trusted.delegate, or user.delegate in a user manager).
func delegated(dir string) bool {
	buf := make([]byte, 8)
	for _, attr := range []string{"trusted.delegate", "user.delegate"} {
		if n, err := unix.Getxattr(dir, attr, buf); err == nil && n > 0 && buf[0] == '1' {
			return true
		}
	}
	return false
}

// Join moves this process (every thread of it) into the cgroup. Sockets it creates from now
// on belong to the cgroup, and so does every process it starts or execs.
func (c *Cgroup) Join() error {
	return c.join(os.Getpid())
}

func (c *Cgroup) join(pid int) error {
	if err := moveTo(c.Dir, pid); err != nil {
		return fmt.Errorf("run --enforce: join cgroup %s: %w%s", c.Dir, unwrapPath(err), cgroupHint(err))
	}
	return nil
}

// moveTo moves process pid into the cgroup at dir.
func moveTo(dir string, pid int) error {
	return os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
}

// Open opens the cgroup directory, for starting a process inside it (SysProcAttr.CgroupFD).
func (c *Cgroup) Open() (*os.File, error) {
	f, err := os.Open(c.Dir)
	if err != nil {
		return nil, fmt.Errorf("run --enforce: %w", err)
	}
	return f, nil
}

// Populated reports whether a process is in the cgroup or below it (cgroup.events).
func (c *Cgroup) Populated() (bool, error) {
	return populated(c.Dir)
}

func populated(dir string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.events")) // #nosec G304 -- a cgroup's events file
	if err != nil {
		return false, err
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("populated ")); ok {
			return string(v) != "0", nil
		}
	}
	return false, fmt.Errorf("%s/cgroup.events has no populated line", dir)
}

// Remove removes the cgroup; it fails while a process is in it.
func (c *Cgroup) Remove() error {
	if err := unix.Rmdir(c.Dir); err != nil {
		return fmt.Errorf("run --enforce: remove cgroup %s: %w", c.Dir, err)
	}
	return nil
}

// Leftovers lists the cgroups earlier runs made beside the one run is in now (in this
// process's cgroup under mount) that are empty and whose run has ended: what a service run
// in place leaves when it exits. A cgroup whose pid is still alive, or that holds anything,
// is not listed.
func Leftovers(mount string) ([]string, error) {
	parent, err := ownCgroup(mount)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(parent)
	if err != nil {
		return nil, fmt.Errorf("run --enforce: %w", err)
	}
	var out []string
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), CgroupPrefix)
		if !e.IsDir() || !ok {
			continue
		}
		dot := strings.LastIndexByte(rest, '.')
		pid, err := strconv.Atoi(rest[dot+1:])
		if dot < 0 || err != nil || pid <= 0 {
			continue
		}
		if err := unix.Kill(pid, 0); err == nil || errors.Is(err, unix.EPERM) {
			continue // its run (or the service it became) is alive, or the pid is someone else's now
		}
		dir := filepath.Join(parent, e.Name())
		if busy, err := populated(dir); err != nil || busy {
			continue
		}
		out = append(out, dir)
	}
	return out, nil
}

// RemoveLeftover removes a cgroup Leftovers listed.
func RemoveLeftover(dir string) error {
	return (&Cgroup{Dir: dir}).Remove()
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// cgroupHint says what an errno from creating or joining a cgroup usually means.
func cgroupHint(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return ""
	}
	switch errno {
	case unix.EACCES, unix.EPERM:
		return " (run --enforce needs root, or a cgroup delegated to its user: under systemd, Delegate=yes; or enforce the unit's own cgroup with `bindguard gen systemd --enforce`)"
	case unix.EROFS:
		return " (the cgroup2 file system is read-only here: a container without a writable cgroup namespace?)"
	case unix.EBUSY:
		return " (cgroup2's no-internal-processes rule: the target has controllers enabled in cgroup.subtree_control)"
	case unix.EOPNOTSUPP:
		return " (a threaded cgroup: run --enforce needs a domain cgroup)"
	case unix.ENOENT:
		return " (the cgroup was removed meanwhile)"
	}
	return ""
}

// Leave moves this process back to the cgroup it was started in (Parent), so that the cgroup
// can be removed after a failed start.
func (c *Cgroup) Leave() error {
	if err := moveTo(c.Parent, os.Getpid()); err != nil {
		return fmt.Errorf("run --enforce: back to cgroup %s: %w", c.Parent, unwrapPath(err))
	}
	return nil
}
