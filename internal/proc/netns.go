package proc

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/bindguard/bindguard/internal/cgroup"
)

// DefaultNetnsDir is where iproute2 (`ip netns add`) pins named network namespaces.
const DefaultNetnsDir = "/run/netns"

// Namespace is one network namespace of the host.
type Namespace struct {
	// Inode identifies the namespace (the number in "net:[4026531840]").
	Inode uint64
	// Label names it in reports: "host" for the namespace of PID 1, else the iproute2 name,
	// else a container id or LXC name, else "net:[inode]".
	Label string
	// Name is its iproute2 name, if it has one.
	Name string
	// Container is the container a process inside it belongs to, if any.
	Container string
	// Path is a file that refers to it: /run/netns/NAME or /proc/PID/ns/net.
	Path string
	// PID is a process inside it (the lowest), 0 when none (a named namespace with no process).
	PID int
	// Current says it is the namespace bindguard runs in.
	Current bool
}

// NamespaceFinder finds network namespaces.
type NamespaceFinder struct {
	Root     string // procfs, DefaultRoot when empty
	NetnsDir string // named namespaces, DefaultNetnsDir when empty
}

// Current returns the namespace bindguard runs in. It is cheaper than All: it reads only
// bindguard's own process, PID 1 and the netns directory.
func (f NamespaceFinder) Current() (Namespace, error) {
	root := cmp.Or(f.Root, DefaultRoot)
	buf := make([]byte, 64)
	self := filepath.Join(root, "self")
	ino := netnsInode(SelfTask(root), buf)
	if ino == 0 {
		return Namespace{}, fmt.Errorf("proc: cannot read %s", filepath.Join(self, "ns", "net"))
	}
	ns := Namespace{Inode: ino, Path: filepath.Join(self, "ns", "net"), Current: true}
	if pid, err := os.Readlink(self); err == nil {
		if n, err := strconv.Atoi(pid); err == nil {
			ns.PID = n
			ns.Path = filepath.Join(root, pid, "ns", "net")
		}
	}
	if b, err := readSmall(filepath.Join(self, "cgroup")); err == nil {
		_, ns.Container = cgroup.Parse(b)
	}
	pins, err := f.pinned()
	if err != nil {
		return Namespace{}, err
	}
	ns.Name = pins[ino].name
	ns.setLabel(netnsInode(filepath.Join(root, "1"), buf))
	return ns, nil
}

// All returns every distinct network namespace: those of all processes and those pinned in the
// netns directory, ordered: the current one first, then by label.
func (f NamespaceFinder) All() ([]Namespace, error) {
	root := cmp.Or(f.Root, DefaultRoot)
	buf := make([]byte, 64)
	self := netnsInode(SelfTask(root), buf)
	hostIno := netnsInode(filepath.Join(root, "1"), buf)
	pids, err := listPIDs(root)
	if err != nil {
		return nil, err
	}
	byIno := map[uint64]*Namespace{}
	get := func(ino uint64) *Namespace {
		ns := byIno[ino]
		if ns == nil {
			ns = &Namespace{Inode: ino, Current: ino == self}
			byIno[ino] = ns
		}
		return ns
	}
	for _, pid := range pids {
		dir := filepath.Join(root, strconv.Itoa(pid))
		ino := netnsInode(dir, buf)
		if ino == 0 {
			continue // exited, or not ours to read
		}
		ns := get(ino)
		if ns.PID == 0 {
			ns.PID = pid
			ns.Path = filepath.Join(dir, "ns", "net")
			if b, err := readSmall(filepath.Join(dir, "cgroup")); err == nil {
				_, ns.Container = cgroup.Parse(b)
			}
		}
	}
	pins, err := f.pinned()
	if err != nil {
		return nil, err
	}
	for ino, p := range pins {
		ns := get(ino)
		ns.Name, ns.Path = p.name, p.path
	}
	out := make([]Namespace, 0, len(byIno))
	for _, ns := range byIno {
		ns.setLabel(hostIno)
		out = append(out, *ns)
	}
	slices.SortFunc(out, func(a, b Namespace) int {
		if a.Current != b.Current {
			if a.Current {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Label, b.Label)
	})
	return out, nil
}

// SelfTask is the procfs directory of the calling thread (/proc/thread-self) on the real
// procfs, and root/self in another tree (a fixture). The process's directory shows the
// namespaces of its main thread, which a goroutine locked to it may have moved for a while
// (InNetNS, a test's setns); a thread that runs unlocked goroutines is always in the process's
// own namespaces.
func SelfTask(root string) string {
	if filepath.Clean(root) == DefaultRoot {
		return filepath.Join(root, "thread-self")
	}
	return filepath.Join(root, "self")
}

// CurrentNetDir is the /proc/net directory of the namespace SelfTask is in: the calling
// thread's on the real procfs, root/net in another tree.
func CurrentNetDir(root string) string {
	if filepath.Clean(root) == DefaultRoot {
		return filepath.Join(SelfTask(root), "net")
	}
	return filepath.Join(root, "net")
}

// pin is a namespace pinned in the netns directory.
type pin struct{ name, path string }

// pinned lists the namespaces pinned in the netns directory by inode; where one is pinned under
// several names, the first in name order wins. A missing directory pins nothing.
func (f NamespaceFinder) pinned() (map[uint64]pin, error) {
	dir := cmp.Or(f.NetnsDir, DefaultNetnsDir)
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("proc: list named namespaces: %w", err)
	}
	out := map[uint64]pin{}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		ino, err := fileInode(p)
		if err != nil {
			continue // a stale or unmounted entry
		}
		if _, dup := out[ino]; !dup {
			out[ino] = pin{cgroup.Sanitize(e.Name()), p}
		}
	}
	return out, nil
}

// setLabel names the namespace for reports: "host" for PID 1's (or, where PID 1 cannot be
// read, for the current one when nothing else names it), else its iproute2 name, else its
// container, else "net:[inode]".
func (ns *Namespace) setLabel(hostIno uint64) {
	switch {
	case ns.Inode == hostIno, hostIno == 0 && ns.Current && ns.Name == "" && ns.Container == "":
		ns.Label = "host"
	case ns.Name != "":
		ns.Label = ns.Name
	case ns.Container != "":
		ns.Label = ns.Container
	default:
		ns.Label = nsLabel(ns.Inode)
	}
}

// Find returns the namespace named by arg: an iproute2 name, a path to a namespace file
// (/proc/PID/ns/net, /run/netns/NAME, a bind mount), or a label as All gives it.
func (f NamespaceFinder) Find(arg string) (Namespace, error) {
	all, err := f.All()
	if err != nil {
		return Namespace{}, err
	}
	if filepath.IsAbs(arg) || filepath.Base(arg) != arg {
		ino, err := fileInode(arg)
		if err != nil {
			return Namespace{}, fmt.Errorf("netns %s: %w", arg, err)
		}
		for _, ns := range all {
			if ns.Inode == ino {
				ns.Path = arg
				return ns, nil
			}
		}
		return Namespace{Inode: ino, Label: nsLabel(ino), Path: arg}, nil
	}
	for _, ns := range all {
		if ns.Name == arg || ns.Label == arg || nsLabel(ns.Inode) == arg {
			return ns, nil
		}
	}
	return Namespace{}, fmt.Errorf("netns %q: no such network namespace (see `ip netns list`, or give a path such as /proc/PID/ns/net)", arg)
}

func nsLabel(ino uint64) string { return fmt.Sprintf("net:[%d]", ino) }
