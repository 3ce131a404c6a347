package monitor

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/bindguard/bindguard/internal/kernel"
	"github.com/bindguard/bindguard/internal/observe"
	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/internal/proc"
)

// TestHostResolver: a kernel event becomes the listener an audit would see: the namespace's
// label, the owner from /proc (or, when the process is gone, its comm and its cgroup's unit),
// the mapped form of an IPv6 socket's IPv4 address; a namespace not watched is refused.
func TestHostResolver(t *testing.T) {
	var asked []uint64
	r := &HostResolver{Options: observe.Options{}, CgroupPath: func(id uint64) (string, error) {
		asked = append(asked, id)
		return "/system.slice/nginx.service", nil
	}}
	r.Namespaces([]proc.Namespace{{Inode: 11, Label: "host", Current: true}, {Inode: 12, Label: "ct1"}})
	ev := kernel.Event{Kind: kernel.KindListen, NetnsIno: 12, Protocol: "tcp", Family: "ipv4", Addr: netip.MustParseAddr("0.0.0.0"), Port: 80, PID: os.Getpid(), Comm: "x", CgroupID: 7}
	l, ok := r.Listener(ev)
	self, alive := (&proc.Scanner{}).Process(os.Getpid())
	if !ok || !alive || l.Netns != "ct1" || l.Owner != observed.OwnerKnown || len(l.Owners) != 1 || l.Owners[0].Name != self.Name || l.Owners[0].PID != os.Getpid() || l.V6Only != observed.V6OnlyNA {
		t.Errorf("own process: %+v %v (want owner %q)", l, ok, self.Name)
	}
	// Cached: the same pid is not read again within procTTL, and gives the same owner.
	if l2, _ := r.Listener(ev); l2.Owners[0] != l.Owners[0] {
		t.Errorf("cached owner %+v", l2.Owners[0])
	}
	gone := ev
	gone.PID, gone.Comm, gone.NetnsIno = 1<<30, "nginx\x01", 11
	l, ok = r.Listener(gone)
	if !ok || l.Netns != "host" || !strings.HasPrefix(l.Owners[0].Name, "nginx") || strings.ContainsRune(l.Owners[0].Name, 1) || l.Owners[0].Unit != "nginx.service" || len(asked) != 1 {
		t.Errorf("gone process: %+v (cgroup asked %v)", l.Owners, asked)
	}
	v6 := ev
	v6.Family, v6.Addr, v6.V6Only, v6.Kind = "ipv6", netip.MustParseAddr("127.0.0.1"), false, kernel.KindClose
	l, ok = r.Listener(v6)
	if !ok || l.Addr != netip.MustParseAddr("::ffff:127.0.0.1") || l.V6Only != observed.V6OnlyNo || l.Owners != nil {
		t.Errorf("ipv6 close: %+v", l)
	}
	v6.Addr, v6.V6Only = netip.IPv6Unspecified(), true
	if l, _ = r.Listener(v6); l.V6Only != observed.V6OnlyYes {
		t.Errorf("v6only: %+v", l)
	}
	other := ev
	other.NetnsIno = 99
	if _, ok := r.Listener(other); ok {
		t.Error("a namespace not watched was resolved")
	}
}
