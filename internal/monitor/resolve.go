package monitor

import (
	"net/netip"
	"sync"
	"time"

	"github.com/bindguard/bindguard/internal/cgroup"
	"github.com/bindguard/bindguard/internal/kernel"
	"github.com/bindguard/bindguard/internal/observe"
	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/internal/proc"
)

// HostResolver resolves kernel events on this host, the way observe.Observe sees the same
// socket: the namespace's label from the namespace finder (the last audit's namespaces, found
// again for an inode not seen yet when every namespace is watched), the owner from /proc/PID
// (internal/proc, as the owner scan reads it), or, when the process is gone or not visible, the
// event's comm and the unit and container of its cgroup (internal/cgroup).
type HostResolver struct {
	// Options are the serve's observe options: the proc root, the netns directory and which
	// namespaces are watched.
	Options observe.Options
	// CgroupPath resolves a cgroup id to its path ("/system.slice/nginx.service"); nil leaves
	// unit and container empty for a process that is gone.
	CgroupPath func(id uint64) (string, error)
	// Now is the clock of the caches (time.Now when nil).
	Now func() time.Time

	mu       sync.Mutex
	labels   map[uint64]string // netns inode -> label
	refresh  time.Time         // when All was last asked for an unknown inode
	procs    map[int]cachedProc
	cgroups  map[uint64]string
	scanner  proc.Scanner
	scanInit bool
}

type cachedProc struct {
	p  observed.Process
	at time.Time
}

// procTTL is how long a pid's details are reused (a process that opens many sockets is read
// once).
const procTTL = time.Second

func (r *HostResolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Namespaces implements Resolver.
func (r *HostResolver) Namespaces(ns []proc.Namespace) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.labels = map[uint64]string{}
	for _, n := range ns {
		r.labels[n.Inode] = n.Label
	}
}

// Listener implements Resolver.
func (r *HostResolver) Listener(ev kernel.Event) (observed.Listener, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	label, ok := r.labels[ev.NetnsIno]
	if !ok && r.Options.Netns == observe.NetnsAll && r.now().Sub(r.refresh) > time.Second {
		r.refresh = r.now()
		if all, err := (proc.NamespaceFinder{Root: r.Options.ProcRoot, NetnsDir: r.Options.NetnsDir}).All(); err == nil {
			for _, n := range all {
				if r.labels == nil {
					r.labels = map[uint64]string{}
				}
				r.labels[n.Inode] = n.Label
			}
			label, ok = r.labels[ev.NetnsIno]
		}
	}
	if !ok {
		return observed.Listener{}, false
	}
	return r.listener(ev, label), true
}

func (r *HostResolver) listener(ev kernel.Event, label string) observed.Listener {
	s := observed.Socket{Protocol: observed.Protocol(ev.Protocol), Family: observed.Family(ev.Family), Addr: ev.Addr, Port: ev.Port, V6Only: observed.V6OnlyNA}
	if s.Family == observed.IPv6 {
		// sock_diag reports an IPv6 socket on an IPv4 address in its mapped form: so must we.
		s.Addr = netip.AddrFrom16(ev.Addr.As16())
		s.V6Only = observed.V6OnlyNo
		if ev.V6Only {
			s.V6Only = observed.V6OnlyYes
		}
	}
	l := observed.Listener{Socket: s, Netns: label, Owner: observed.OwnerGone}
	if !ev.Kind.Opens() || ev.PID == 0 {
		return l // a close needs no owner; pid 0 is a process not visible here
	}
	now := r.now()
	c, ok := r.procs[ev.PID]
	if !ok || now.Sub(c.at) > procTTL {
		if !r.scanInit {
			r.scanner, r.scanInit = proc.Scanner{Root: r.Options.ProcRoot}, true
		}
		p, alive := r.scanner.Process(ev.PID)
		if !alive {
			// Gone already: what the event itself says.
			p = observed.Process{PID: ev.PID, Name: cgroup.Sanitize(ev.Comm), UID: -1, GID: -1}
			p.Unit, p.Container = r.cgroupOf(ev.CgroupID)
		}
		c = cachedProc{p, now}
		if r.procs == nil || len(r.procs) > 4096 {
			r.procs = map[int]cachedProc{}
		}
		r.procs[ev.PID] = c
	}
	l.Owner, l.Owners = observed.OwnerKnown, []observed.Process{c.p}
	return l
}

// cgroupOf is the unit and container of a cgroup id, through its path.
func (r *HostResolver) cgroupOf(id uint64) (unit, container string) {
	if r.CgroupPath == nil || id == 0 {
		return "", ""
	}
	path, ok := r.cgroups[id]
	if !ok {
		p, err := r.CgroupPath(id)
		if err != nil {
			return "", ""
		}
		if r.cgroups == nil || len(r.cgroups) > 4096 {
			r.cgroups = map[uint64]string{}
		}
		path, r.cgroups[id] = p, p
	}
	return cgroup.Parse([]byte("0::" + path + "\n"))
}
