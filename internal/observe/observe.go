// Package observe collects what an audit judges: the listening sockets of one or every network
// namespace (through sock_diag, or /proc/net as the fallback) and the processes that own them.
// It does the I/O; package audit does the judging.
package observe

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/mdlayher/netlink"

	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/internal/proc"
	"github.com/bindguard/bindguard/internal/socket"
)

// Source chooses where sockets are read from.
type Source string

// The sources.
const (
	// SourceAuto uses netlink, falling back to /proc/net for a namespace where a dump fails.
	SourceAuto Source = "auto"
	// SourceNetlink uses NETLINK_SOCK_DIAG only.
	SourceNetlink Source = "netlink"
	// SourceProcfs reads /proc/net/{tcp,tcp6,udp,udp6} only (v6only is unknown there).
	SourceProcfs Source = "procfs"
)

// Sources lists the sources.
func Sources() []Source { return []Source{SourceAuto, SourceNetlink, SourceProcfs} }

// Netns selectors besides a name or path.
const (
	NetnsCurrent = ""    // the namespace bindguard runs in
	NetnsAll     = "all" // every distinct namespace of the host
)

// Options say what to observe.
type Options struct {
	// ProcRoot is the procfs mount (proc.DefaultRoot when empty). With a root other than
	// /proc, only the procfs source can be used.
	ProcRoot string
	// NetnsDir holds named namespaces (proc.DefaultNetnsDir when empty).
	NetnsDir string
	Source   Source
	// Netns is NetnsCurrent, NetnsAll, an iproute2 name, a label or a namespace file path.
	Netns string
	// OwnerScan chooses how socket owners are found (proc.OwnerScanAuto when empty).
	OwnerScan proc.OwnerScan
	// Dial opens the NETLINK_SOCK_DIAG connection of a namespace (socket.Dial when nil);
	// tests give fakes from mdlayher/netlink/nltest.
	Dial func(netnsFD int) (*netlink.Conn, error)
}

// Snapshot is what was observed.
type Snapshot struct {
	Sockets    []observed.Listener
	Namespaces []proc.Namespace
	// Warnings did not stop the observation but may make it incomplete: skipped /proc/net
	// lines, a namespace that vanished, a netlink table that fell back to /proc/net.
	Warnings []string
	// OwnerScan is the owner scan that ran (procfs or bpf).
	OwnerScan proc.OwnerScan
	// Unseen says what could not be observed (a namespace not entered, processes whose
	// namespace or files could not be read): the audit is then incomplete. Each entry is also
	// in Warnings.
	Unseen []string
	// Skipped are the labels of the namespaces found but not read (they are not in Sockets).
	Skipped []string
	// All says every namespace was asked for (--netns all).
	All bool
}

// Observation is the snapshot as the judge takes it: the sockets, every namespace read (not
// the skipped ones), and what could not be seen.
func (s *Snapshot) Observation() observed.Observation {
	o := observed.Observation{Listeners: s.Sockets, Unseen: s.Unseen, AllNamespaces: s.All}
	for _, ns := range s.Namespaces {
		if slices.Contains(s.Skipped, ns.Label) {
			continue
		}
		o.Namespaces = append(o.Namespaces, NamespaceOf(ns))
	}
	return o
}

// NamespaceOf is a namespace's names, for the judge.
func NamespaceOf(ns proc.Namespace) observed.Namespace {
	return observed.Namespace{Label: ns.Label, Netns: ns.Name, Container: ns.Container, Host: ns.Label == observed.HostLabel, Inode: ns.Inode}
}

// unseen records what could not be observed, as a warning too.
func (s *Snapshot) unseen(msg string) {
	s.Unseen = append(s.Unseen, msg)
	s.Warnings = append(s.Warnings, msg)
}

// Observe collects the listening sockets and their owners.
func Observe(o Options) (*Snapshot, error) {
	if err := requireLinux(goos, o.ProcRoot); err != nil {
		return nil, err
	}
	if o.Source == "" {
		o.Source = SourceAuto
	}
	root := o.ProcRoot
	if root == "" {
		root = proc.DefaultRoot
	}
	if filepath.Clean(root) != proc.DefaultRoot && o.Source != SourceProcfs {
		if o.Source == SourceNetlink {
			return nil, fmt.Errorf("--source netlink reads the kernel, not %s: use --source procfs with a proc root", root)
		}
		o.Source = SourceProcfs
	}
	if o.Dial == nil {
		o.Dial = socket.Dial
	}
	finder := proc.NamespaceFinder{Root: root, NetnsDir: o.NetnsDir}
	var namespaces []proc.Namespace
	unreadable := 0
	switch o.Netns {
	case NetnsCurrent:
		ns, err := finder.Current()
		if err != nil {
			return nil, err
		}
		namespaces = []proc.Namespace{ns}
	case NetnsAll:
		all, err := finder.All()
		if err != nil {
			return nil, err
		}
		namespaces = all
		unreadable = unreadableNetns(root)
	default:
		ns, err := finder.Find(o.Netns)
		if err != nil {
			return nil, err
		}
		namespaces = []proc.Namespace{ns}
	}

	snap := &Snapshot{Namespaces: namespaces, All: o.Netns == NetnsAll}
	if unreadable > 0 {
		snap.unseen(fmt.Sprintf("the network namespaces of %d processes could not be read (run as root to see every namespace): they are not audited", unreadable))
	}
	type nsSockets struct {
		ns      proc.Namespace
		sockets []observed.Socket
	}
	var got []nsSockets
	for _, ns := range namespaces {
		socks, warns, err := readNamespace(root, ns, o.Source, o.Dial)
		snap.Warnings = append(snap.Warnings, warns...)
		if err != nil {
			if o.Netns == NetnsAll && !ns.Current {
				// A container that stopped since the namespace list was made is not an error,
				// but what was not read is named: the audit is incomplete.
				snap.Skipped = append(snap.Skipped, ns.Label)
				snap.unseen(fmt.Sprintf("netns %s skipped: %v", ns.Label, err))
				continue
			}
			return nil, err
		}
		observed.Sort(socks)
		got = append(got, nsSockets{ns, socks})
	}

	want := map[uint64]bool{}
	for _, g := range got {
		for _, s := range g.sockets {
			if s.Inode != 0 {
				want[s.Inode] = true
			}
		}
	}
	owners, err := (&proc.Scanner{Root: root, Scan: o.OwnerScan}).Owners(want)
	if err != nil {
		return nil, err
	}
	snap.OwnerScan = owners.Method
	if owners.KernelErr != nil {
		snap.Warnings = append(snap.Warnings, fmt.Sprintf("the BPF owner scan could not run, so /proc was scanned instead: %v", owners.KernelErr))
	}
	hidden, total := 0, 0
	for _, g := range got {
		total += len(g.sockets)
	}
	if total > 0 {
		snap.Sockets = make([]observed.Listener, 0, total)
	}
	for _, g := range got {
		for _, s := range g.sockets {
			ob := observed.Listener{Socket: s, Netns: g.ns.Label}
			switch {
			case s.OwnerUnknown:
				ob.Owner = observed.OwnerUnknown
			case s.Inode == 0:
				ob.Owner = observed.OwnerKernel
			case len(owners.ByInode[s.Inode]) > 0:
				ob.Owner = observed.OwnerKnown
				ob.Owners = owners.All(s.Inode)
			case owners.Denied > 0:
				ob.Owner = observed.OwnerHidden
				hidden++
			default:
				ob.Owner = observed.OwnerGone
			}
			snap.Sockets = append(snap.Sockets, ob)
		}
	}
	if hidden > 0 {
		snap.unseen(fmt.Sprintf("the owners of %d sockets are hidden: %d processes could not be read (run as root to see every owner)", hidden, owners.Denied))
	}
	return snap, nil
}

// readNamespace reads one namespace's sockets from the chosen source.
func readNamespace(root string, ns proc.Namespace, src Source, dial func(int) (*netlink.Conn, error)) ([]observed.Socket, []string, error) {
	if src == SourceProcfs {
		return readProcfs(root, ns)
	}
	fd, closeNS, err := openNS(ns)
	if err != nil {
		return nil, nil, err
	}
	defer closeNS()
	socks, err := dump(dial, fd)
	if err == nil {
		return socks, nil, nil
	}
	if src == SourceNetlink {
		return nil, nil, fmt.Errorf("netns %s: %w", ns.Label, err)
	}
	// auto: a dump failed (no udp_diag, netlink refused by a seccomp filter, ...): read the
	// namespace's /proc/net tables instead, saying why.
	socks, warns, perr := readProcfs(root, ns)
	if perr != nil {
		return nil, nil, fmt.Errorf("netns %s: %w; fallback: %w", ns.Label, err, perr)
	}
	return socks, append([]string{fmt.Sprintf("netns %s: netlink failed (%v); read /proc/net instead, v6only unknown", ns.Label, err)}, warns...), nil
}

// readProcfs reads a namespace's /proc/net tables: through a process inside it, or, for a
// named namespace with no process, by entering it.
func readProcfs(root string, ns proc.Namespace) ([]observed.Socket, []string, error) {
	var (
		res *socket.ProcNetResult
		err error
	)
	switch {
	case ns.Current:
		// The calling thread's tables: /proc/net is the main thread's, which a locked
		// goroutine may have moved to another namespace for a while.
		res, err = socket.ReadProcNet(proc.CurrentNetDir(root))
	case ns.PID > 0:
		res, err = socket.ReadProcNet(filepath.Join(root, strconv.Itoa(ns.PID), "net"))
	default:
		err = proc.InNetNS(ns.Path, func() error {
			var e error
			res, e = socket.ReadProcNet("/proc/thread-self/net")
			return e
		})
	}
	if err != nil {
		return nil, nil, fmt.Errorf("netns %s: %w", ns.Label, err)
	}
	var warns []string
	for _, p := range res.Problems {
		warns = append(warns, "skipped malformed line: "+p.Error())
	}
	if n := res.Skipped - len(res.Problems); n > 0 {
		warns = append(warns, fmt.Sprintf("skipped %d more malformed lines", n))
	}
	for _, w := range res.Warnings {
		warns = append(warns, w.Error())
	}
	if n := res.Unowned - socket.MaxLineProblems; n > 0 {
		warns = append(warns, fmt.Sprintf("kept %d more listeners whose uid or inode did not parse (owner unknown)", n))
	}
	return res.Sockets, warns, nil
}

// dump reads a namespace's sockets through sock_diag.
func dump(dial func(int) (*netlink.Conn, error), netnsFD int) ([]observed.Socket, error) {
	c, err := dial(netnsFD)
	if err != nil {
		return nil, err
	}
	defer func() { _ = c.Close() }()
	return socket.Dump(c)
}

// unreadableNetns counts the processes whose network namespace link cannot be read for lack of
// privilege: namespaces that --netns all cannot see (a process that exits meanwhile is not
// counted).
func unreadableNetns(root string) int {
	entries, err := os.ReadDir(root)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if _, err := os.Readlink(filepath.Join(root, e.Name(), "ns", "net")); errors.Is(err, fs.ErrPermission) {
			n++
		}
	}
	return n
}
