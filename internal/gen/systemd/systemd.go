// Package systemd writes units that carry a policy's binding into systemd: the seed's
// hardening, IPAddressDeny=any with IPAddressAllow= from the service's access class and allow
// list (plus the upstreams the operator names: the filter applies to egress too),
// SocketBindDeny=any with SocketBindAllow= for exactly the service's protocol and port,
// RestrictAddressFamilies=, and the seed's BIND_ADDRESS/SERVICE_PORT environment. It also
// writes bindguard's own monitor unit with the least capabilities it needs.
package systemd

import (
	"bytes"
	_ "embed"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"unicode"

	"github.com/bindguard/bindguard/internal/text"
	"github.com/bindguard/bindguard/policy"
)

//go:embed unit.tmpl
var unitText string

var unitTmpl = sync.OnceValue(func() *template.Template { return template.Must(template.New("unit").Parse(unitText)) })

// DefaultSelfPort is where `bindguard serve` listens when the policy does not declare bindguard.
const DefaultSelfPort = 9847

// SelfService is the policy service name that declares bindguard's own listener.
const SelfService = "bindguard"

// Options say what to generate.
type Options struct {
	// Service is the policy service the unit runs (ignored with Self).
	Service string
	// Exec is ExecStart's command line; it must start with an absolute path.
	Exec string
	// DropIn writes only the [Service] settings, for /etc/systemd/system/UNIT.d/bindguard.conf.
	DropIn bool
	// User runs the service as this user (none: systemd's default, root).
	User string
	// Egress lists addresses or prefixes the service may also talk to (upstreams, databases
	// elsewhere): IPAddressAllow= filters both directions.
	Egress []netip.Prefix
	// Self writes bindguard's own monitor unit.
	Self bool
	// PolicyPath is the policy file the self unit's bindguard reads, and with Run the one
	// `bindguard run` reads.
	PolicyPath string
	// Run starts the service through `bindguard run` (Exec is the command it execs); Guard
	// adds --guard. Bindguard is bindguard's path (DefaultBindguard when empty).
	Run, Guard bool
	Bindguard  string
	// Enforce adds ExecStartPre=/ExecStopPost= lines that attach bindguard's kernel bind
	// enforcement (the host scope of the policy at PolicyPath) to the unit's own cgroup before
	// the service starts, and detach it after it stopped. A drop-in may carry them too.
	Enforce bool
	// ServeArgs are more `bindguard serve` arguments for the self unit's ExecStart=, one token
	// each (nil: DefaultServeArgs). The caller checks that serve takes them.
	ServeArgs []string
}

// DefaultServeArgs are the self unit's serve arguments beyond policy, listener and data:
// every network namespace (the host's containers too), and the kernel event source, for
// which the unit has the capabilities (it polls, and says so, where it cannot load).
var DefaultServeArgs = []string{"--netns", "all", "--watch", "kernel"}

type unit struct {
	Header, Description, Exec, User, Access, BindAddress, Port string
	DropIn, Self                                               bool
	EnforceStart, EnforceStop                                  string
	Env                                                        []string
	Families                                                   string
	SocketBind                                                 string
	IPAllow                                                    []string // nil: no IP filter (public)
	IPFilterNote                                               string
	Caps                                                       string
}

var (
	execRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^/[^\x00-\x1f\x7f]*$`) })
	userRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`) })
	// The self unit's policy path goes into ExecStart=: nothing systemd would split, quote,
	// escape or expand ($VAR, %x, ";", quotes, backslashes, spaces).
	policyPathRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^/[A-Za-z0-9._/@+,:=~-]+$`) })
	// A serve argument of the self unit: the same characters, one token.
	serveArgRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._/@+,:=~-]+$`) })
	nameRE     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`) })
	accessRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z_]{1,30}$`) })
)

// comment renders a free-text value (the policy's file name) for a comment line: quoted, with
// control characters, quotes, backslashes and non-ASCII characters escaped, so that it can
// never end the line, continue it or start a directive.
func comment(s string) string { return strconv.QuoteToASCII(s) }

// printable reports whether s holds only printable characters (no control characters, no
// line or paragraph separators, no NEL).
func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) && r != ' ' {
			return false
		}
	}
	return true
}

// checkService refuses a service whose name, access class or protocol would not be one token
// in a unit file (only a policy built by a program can hold one).
func checkService(s policy.Service) error {
	if !nameRE().MatchString(s.Name) || !accessRE().MatchString(string(s.Access)) || (s.Protocol != policy.TCP && s.Protocol != policy.UDP) {
		return fmt.Errorf("service %s (access %s, protocol %s): not a name, access class and protocol a unit file can carry", comment(s.Name), comment(string(s.Access)), comment(string(s.Protocol)))
	}
	return nil
}

// Generate renders the unit (or drop-in).
func Generate(p *policy.Policy, o Options) ([]byte, error) {
	if o.Exec != "" && (!execRE().MatchString(o.Exec) || strings.ContainsAny(o.Exec, "\\") || !printable(o.Exec)) {
		return nil, fmt.Errorf("--exec %s: want an absolute path and arguments on one line, without backslashes or unprintable characters", comment(o.Exec))
	}
	if o.User != "" && !userRE().MatchString(o.User) {
		return nil, fmt.Errorf("--user %s is not a user name", comment(o.User))
	}
	if o.Self {
		if o.Enforce {
			return nil, fmt.Errorf("--enforce enforces a policy service's unit, not bindguard's own (--self)")
		}
		return self(p, o)
	}
	svc, ok := p.Lookup(o.Service)
	if !ok {
		return nil, fmt.Errorf("policy %s declares no service %q", p.Source, o.Service)
	}
	if err := checkService(svc); err != nil {
		return nil, err
	}
	if o.Exec == "" && !o.DropIn {
		return nil, fmt.Errorf("a unit needs --exec (the service's command line); or write a --drop-in for an existing unit")
	}
	if o.Run || o.Guard {
		exec, err := runExec(svc, o)
		if err != nil {
			return nil, err
		}
		o.Exec = exec
	}
	var err error
	u := unit{
		Header:      fmt.Sprintf("Generated by bindguard from %s for service %s; do not edit: change the policy and run `bindguard gen systemd`.", comment(p.Source), svc.Name),
		Description: description(svc),
		Exec:        strings.ReplaceAll(o.Exec, "%", "%%"), User: o.User, DropIn: o.DropIn,
		Access: string(svc.Access), Port: fmt.Sprint(svc.Port),
	}
	if o.Enforce {
		if u.EnforceStart, u.EnforceStop, err = enforceExecs(o); err != nil {
			return nil, err
		}
	}
	bind := "127.0.0.1"
	if svc.Address.IsValid() {
		bind = svc.Address.String()
	}
	u.BindAddress = bind
	u.Env = []string{"SERVICE_BINDING_TYPE=" + string(svc.Access), "BIND_ADDRESS=" + bind, "SERVICE_PORT=" + fmt.Sprint(svc.Port)}
	u.SocketBind = socketBind(svc)
	u.Families = serviceFamilies
	u.IPAllow, u.IPFilterNote = ipAllow(p, svc, o.Egress)
	var b bytes.Buffer
	if err := unitTmpl().Execute(&b, u); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func description(s policy.Service) string {
	where := "any address its class allows"
	if s.Address.IsValid() {
		where = netip.AddrPortFrom(s.Address, s.Port).String()
	} else {
		where = fmt.Sprintf("port %d", s.Port)
	}
	d := fmt.Sprintf("%s (%s, %s %s)", s.Name, s.Access, s.Protocol, where)
	if s.Description != "" {
		d = s.Description + " — " + d
	}
	// A unit file line: no control characters (C0, C1 with NEL, DEL), no line or paragraph
	// separators, and % is systemd's specifier character.
	d = text.Sanitize(d, ' ')
	return strings.ReplaceAll(d, "%", "%%")
}

// socketBind is SocketBindAllow='s value: the family (when the address fixes it), protocol and
// port. A dual-stack "::" socket is still an AF_INET6 socket.
func socketBind(s policy.Service) string {
	v := string(s.Protocol) + ":" + fmt.Sprint(s.Port)
	switch {
	case !s.Address.IsValid():
		return v
	case s.Address.Is4():
		return "ipv4:" + v
	default:
		return "ipv6:" + v
	}
}

// serviceFamilies is RestrictAddressFamilies= for a service: AF_UNIX (the journal) and IP,
// both families, since it may reach upstreams of either.
const serviceFamilies = "AF_UNIX AF_INET AF_INET6"

// ipAllow is the IPAddressAllow= list; nil means no IP filter (a public service).
func ipAllow(p *policy.Policy, s policy.Service, egress []netip.Prefix) ([]string, string) {
	reach, anyone := p.ReachPrefixes(s)
	if anyone {
		return nil, fmt.Sprintf("%s: reachable by anyone, so no IP filter", s.Access)
	}
	allow := []string{"localhost"}
	for _, r := range reach {
		allow = append(allow, r.String())
	}
	note := fmt.Sprintf("%s: loopback only", s.Access)
	switch s.Access.Reach() {
	case policy.ReachProxies:
		note = fmt.Sprintf("%s: loopback and the trusted proxies", s.Access)
	case policy.ReachAllowList:
		note = fmt.Sprintf("%s: loopback and the allow list", s.Access)
	}
	for _, e := range egress {
		allow = append(allow, e.String())
	}
	if len(egress) > 0 {
		note += ", plus the upstreams given with --allow-egress"
	} else {
		note += "; the filter applies to connections the service makes too: name upstreams with --allow-egress"
	}
	return allow, note
}

// self is bindguard's own monitor unit.
func self(p *policy.Policy, o Options) ([]byte, error) {
	policyPath := o.PolicyPath
	if policyPath == "" {
		policyPath = "/etc/bindguard/bindguard.yaml"
	}
	if !policyPathRE().MatchString(policyPath) || strings.Contains(policyPath, "..") {
		return nil, fmt.Errorf("policy path %s: want an absolute path of [A-Za-z0-9._/@+,:=~-] (without spaces, quotes, $, %%, ; or backslashes) for ExecStart=", comment(policyPath))
	}
	port, addr := uint16(DefaultSelfPort), netip.AddrFrom4([4]byte{127, 0, 0, 1})
	svc, declared := p.Lookup(SelfService)
	if declared {
		if err := checkService(svc); err != nil {
			return nil, err
		}
		port = svc.Port
		if svc.Address.IsValid() {
			addr = svc.Address
		}
	} else {
		svc = policy.Service{Name: SelfService, Protocol: policy.TCP, Port: port, Address: addr, Access: policy.LocalhostOnly}
	}
	args := o.ServeArgs
	if args == nil {
		args = DefaultServeArgs
	}
	for _, a := range args {
		if !serveArgRE().MatchString(a) {
			return nil, fmt.Errorf("serve argument %s: want one token of [A-Za-z0-9._/@+,:=~-] (without spaces, quotes, $, %%, ; or backslashes) for ExecStart=", comment(a))
		}
	}
	exec := o.Exec
	if exec == "" {
		exec = strings.Join(append([]string{"/usr/local/bin/bindguard", "serve", "--policy", policyPath, "--web.listen-address", netip.AddrPortFrom(addr, port).String(), "--data", "/var/lib/bindguard"}, args...), " ")
	}
	u := unit{
		Header:      fmt.Sprintf("Generated by bindguard from %s: bindguard's own monitor; do not edit: run `bindguard gen systemd --self`.", comment(p.Source)),
		Description: "bindguard: audit listening sockets against the policy, continuously",
		Exec:        strings.ReplaceAll(exec, "%", "%%"), User: o.User, Self: true, DropIn: o.DropIn,
		Access: string(svc.Access), Port: fmt.Sprint(port), BindAddress: addr.String(),
		SocketBind: socketBind(svc),
		// AF_NETLINK: sock_diag dumps.
		Families: "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
		// Reading every process's fds (ptrace read access), /proc entries of other users,
		// entering other network namespaces, the BPF owner scan and event source, and the
		// event source's cgroup programs (NET_ADMIN).
		Caps: "CAP_SYS_PTRACE CAP_DAC_READ_SEARCH CAP_SYS_ADMIN CAP_BPF CAP_PERFMON CAP_NET_ADMIN",
	}
	u.IPAllow, u.IPFilterNote = ipAllow(p, svc, o.Egress)
	var b bytes.Buffer
	if err := unitTmpl().Execute(&b, u); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
