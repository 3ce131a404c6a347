// Package observed holds the types of what bindguard observes on a host: listening sockets,
// the processes that hold them, and where they were seen. It has no I/O and no kernel
// dependency, so the judge (internal/audit) and the renderers build on any OS; the packages
// that read the kernel (internal/socket, internal/proc, internal/observe) produce these values.
package observed

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Protocol is a transport protocol as the kernel reports it: "tcp" or "udp". Its values are
// spelled as policy.Protocol's, so the judge converts one to the other.
type Protocol string

// The transport protocols observed.
const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// Family is an address family.
type Family string

// The address families.
const (
	IPv4 Family = "ipv4"
	IPv6 Family = "ipv6"
)

// V6Only says whether an IPv6 socket has IPV6_V6ONLY set. For IPv4 sockets it is V6OnlyNA.
type V6Only int8

// The V6Only states.
const (
	// V6OnlyUnknown: the source cannot tell (the /proc/net tables). A "::" socket of unknown
	// v6only must be judged dual-stack.
	V6OnlyUnknown V6Only = iota
	// V6OnlyYes: IPV6_V6ONLY is set; the socket accepts IPv6 only.
	V6OnlyYes
	// V6OnlyNo: IPV6_V6ONLY is clear; a "::" socket also accepts IPv4.
	V6OnlyNo
	// V6OnlyNA: an IPv4 socket.
	V6OnlyNA
)

// Socket is one listening socket as the kernel reports it.
type Socket struct {
	Protocol Protocol
	Family   Family
	// Addr is the bound address as reported, zone-less. An AF_INET6 socket bound to an
	// IPv4-mapped address keeps the mapped form here; judges unmap it.
	Addr   netip.Addr
	Port   uint16
	V6Only V6Only
	// UID owns the socket; Inode identifies it across the whole host (all namespaces).
	UID   uint32
	Inode uint64
	// OwnerUnknown says the source's inode for the socket was unreadable (a corrupt /proc/net
	// line): Inode is 0 but the kernel does not hold it, and its owner cannot be looked up.
	OwnerUnknown bool
	// Interface is the index of the device the socket is bound to (SO_BINDTODEVICE), 0 if none.
	// Only the netlink source reports it.
	Interface uint32
}

// AddrPort returns the socket's address and port.
func (s Socket) AddrPort() netip.AddrPort { return netip.AddrPortFrom(s.Addr, s.Port) }

// String is "tcp 127.0.0.1:8080", "udp [::]:53".
func (s Socket) String() string { return fmt.Sprintf("%s %s", s.Protocol, s.AddrPort()) }

// Sort orders sockets by protocol, port, family, address and inode, so output is stable.
func Sort(s []Socket) {
	// The keys are compared one at a time, not all first (cmp.Or's arguments): most pairs
	// differ in the port already.
	slices.SortFunc(s, func(a, b Socket) int { return compareSockets(&a, &b) })
}

// compareSockets is Sort's order.
func compareSockets(a, b *Socket) int {
	if a.Protocol != b.Protocol {
		return cmp.Compare(a.Protocol, b.Protocol)
	}
	if a.Port != b.Port {
		return cmp.Compare(a.Port, b.Port)
	}
	if a.Family != b.Family {
		return cmp.Compare(a.Family, b.Family)
	}
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c
	}
	return cmp.Compare(a.Inode, b.Inode)
}

// Process is what bindguard reports about a socket's owner. Fields it could not read are empty.
type Process struct {
	PID  int    `json:"pid"`
	Name string `json:"name"`
	Exe  string `json:"exe"`
	// User is the login name of the real uid, or the uid as a number when it has no name.
	User string `json:"user"`
	UID  int    `json:"-"`
	// Group is the name of the real gid, named like User.
	Group string `json:"group,omitempty"`
	GID   int    `json:"-"`
	// ContainerPID is the pid inside the process's own pid namespace (a container's view),
	// when that differs from PID (the host's view); 0 otherwise.
	ContainerPID int `json:"container_pid,omitempty"`
	// ContainerUID is the uid inside the process's user namespace (an unprivileged
	// container's view), when that differs from the uid bindguard sees; nil otherwise.
	ContainerUID *int `json:"container_uid,omitempty"`
	// Unit is the innermost systemd unit in the process's cgroup (.service or .scope).
	Unit string `json:"unit"`
	// Container is a container id (Docker, Podman, containerd, CRI-O; 12 hex digits) or an
	// LXC container name, from the cgroup.
	Container string `json:"container"`
}

// Label is "name (pid N, unit U)" for messages.
func (p Process) Label() string {
	var b strings.Builder
	b.WriteString(cmp.Or(p.Name, "?"))
	fmt.Fprintf(&b, " (pid %d", p.PID)
	if p.ContainerPID != 0 && p.ContainerPID != p.PID {
		fmt.Fprintf(&b, ", pid %d inside", p.ContainerPID)
	}
	if p.Unit != "" && (p.Container == "" || !strings.Contains(p.Unit, p.Container)) {
		fmt.Fprintf(&b, ", unit %s", p.Unit)
	}
	if p.Container != "" {
		fmt.Fprintf(&b, ", container %s", p.Container)
	}
	b.WriteString(")")
	return b.String()
}

// OwnerState says what is known of a socket's owning process.
type OwnerState int

// The owner states.
const (
	// OwnerKnown: Owners lists the processes holding the socket.
	OwnerKnown OwnerState = iota
	// OwnerHidden: some processes could not be inspected (not root), so the owner is unknown.
	OwnerHidden
	// OwnerKernel: the socket has no inode; the kernel itself holds it (nfsd, WireGuard, ...).
	OwnerKernel
	// OwnerGone: no visible process holds it: its owner is in another PID namespace, or it
	// closed during the scan.
	OwnerGone
	// OwnerUnknown: the socket table's record of the owner is unreadable (a /proc/net line
	// whose inode does not parse), so it cannot be looked up.
	OwnerUnknown
)

// Listener is one listening socket with where it was seen and who holds it: what the judge
// compares with the policy.
type Listener struct {
	Socket
	// Netns labels the network namespace it was seen in.
	Netns  string
	Owners []Process
	Owner  OwnerState
}

// HostLabel is the label of the host's own network namespace (PID 1's).
const HostLabel = "host"

// Namespace is a network namespace that was audited, with the names a policy scope may match.
type Namespace struct {
	// Label is how reports name it: "host", its `ip netns` name, a container, or "net:[N]".
	Label string
	// Netns is its `ip netns` name, if it has one.
	Netns string
	// Container is the LXC name or container id of a process inside it, if any.
	Container string
	// Host says it is the host's own namespace (PID 1's).
	Host bool
	// Inode identifies it while it exists (not across reboots); 0 when unknown.
	Inode uint64
}

// Stable reports whether the namespace has a name that survives a reboot (a host, an
// `ip netns` name or a container), as opposed to only an inode.
func (n Namespace) Stable() bool { return n.Host || n.Netns != "" || n.Container != "" }

// Observation is everything one audit judges: the listening sockets, the namespaces they were
// read from (every audited namespace, those where nothing listens too), and what could not be
// seen for lack of privilege or because it vanished.
type Observation struct {
	Listeners []Listener
	// Namespaces lists the audited namespaces. When it is empty the judge takes them from
	// the listeners' labels (a label "host" or "" being the host's).
	Namespaces []Namespace
	// Unseen says, one sentence each, what could not be observed: a namespace that could not
	// be entered, processes whose namespace or files could not be read. Empty means complete.
	Unseen []string
	// AllNamespaces says every namespace of the host was asked for (--netns all), so a
	// policy scope that matches none of them is worth a warning.
	AllNamespaces bool
}
