package observe

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"

	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/internal/proc"
	"github.com/bindguard/bindguard/internal/socket"
)

// The choice between sock_diag and /proc/net, on a fake kernel (nltest) and a fixture /proc:
// no root, no netlink socket.

const fixtureRoot = "../../testdata/proc/basic"

// fakeDial is a sock_diag connection whose kernel answers the TCP dumps with one listener
// (tcp4) or none, and the UDP dumps with udpErrno (0: an empty dump).
func fakeDial(t *testing.T, udpErrno syscall.Errno) func(int) (*netlink.Conn, error) {
	return func(fd int) (*netlink.Conn, error) {
		if fd != 0 {
			t.Errorf("dialled netns fd %d for the current namespace, want 0", fd)
		}
		return nltest.Dial(func(reqs []netlink.Message) ([]netlink.Message, error) {
			if len(reqs) != 1 {
				return nil, errors.New("fake kernel: no request")
			}
			req := reqs[0]
			h := netlink.Header{Flags: netlink.Multi, Sequence: req.Header.Sequence, PID: nltest.PID}
			done := netlink.Message{Header: h, Data: make([]byte, 4)}
			done.Header.Type = netlink.Done
			family, proto := req.Data[0], req.Data[1]
			switch {
			case proto == 17 && udpErrno != 0:
				echo, err := req.MarshalBinary()
				if err != nil {
					return nil, err
				}
				errno := -int32(udpErrno)
				data := append(binary.NativeEndian.AppendUint32(nil, uint32(errno)), echo...)
				return []netlink.Message{{Header: netlink.Header{Type: netlink.Error, Sequence: req.Header.Sequence}, Data: data}}, nil
			case proto == 6 && family == 2:
				m := make([]byte, 72)
				m[0], m[1] = 2, 10 // AF_INET, LISTEN
				binary.BigEndian.PutUint16(m[4:], 8080)
				copy(m[8:], []byte{127, 0, 0, 1})
				binary.NativeEndian.PutUint32(m[68:], 42)
				part := netlink.Message{Header: h, Data: m}
				part.Header.Type = 20
				return []netlink.Message{part, done}, nil
			}
			return []netlink.Message{done}, nil
		}), nil
	}
}

func TestReadNamespaceSources(t *testing.T) {
	host := proc.Namespace{Label: "host", Current: true}
	fixture, err := socket.ReadProcNet(filepath.Join(fixtureRoot, "net"))
	if err != nil || len(fixture.Sockets) == 0 {
		t.Fatalf("fixture: %v, %d sockets", err, len(fixture.Sockets))
	}
	fromKernel := []observed.Socket{{Protocol: observed.TCP, Family: observed.IPv4, Addr: netip.MustParseAddr("127.0.0.1"), Port: 8080, Inode: 42, V6Only: observed.V6OnlyNA}}
	dialFails := func(int) (*netlink.Conn, error) {
		return nil, errors.New("sockdiag: open netlink socket: operation not permitted")
	}
	for _, tc := range []struct {
		name   string
		src    Source
		dial   func(int) (*netlink.Conn, error)
		want   []observed.Socket
		warn   string // the first warning's prefix
		errMsg string
	}{
		{"auto, netlink works", SourceAuto, fakeDial(t, 0), fromKernel, "", ""},
		{"auto, no udp_diag", SourceAuto, fakeDial(t, syscall.ENOENT), fixture.Sockets,
			"netns host: netlink failed (sockdiag: dump udp: netlink receive: no such file or directory", ""},
		{"auto, netlink refused", SourceAuto, dialFails, fixture.Sockets,
			"netns host: netlink failed (sockdiag: open netlink socket: operation not permitted); read /proc/net instead, v6only unknown", ""},
		{"netlink only, no udp_diag", SourceNetlink, fakeDial(t, syscall.ENOENT), nil, "",
			"netns host: sockdiag: dump udp: netlink receive: no such file or directory"},
		{"procfs", SourceProcfs, dialFails, fixture.Sockets, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, warns, err := readNamespace(fixtureRoot, host, tc.src, tc.dial)
			if tc.errMsg != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.errMsg) {
					t.Fatalf("error %v, want %q", err, tc.errMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
				t.Errorf("sockets (-want +got):\n%s", d)
			}
			switch {
			case tc.warn == "" && len(warns) > 0 && tc.src != SourceProcfs:
				t.Errorf("warnings %q, want none", warns)
			case tc.warn != "" && (len(warns) == 0 || !strings.HasPrefix(warns[0], tc.warn)):
				t.Errorf("warnings %q, want the first to start %q", warns, tc.warn)
			}
		})
	}
}

// TestObserveDialOption: Observe uses Options.Dial for the netlink source.
func TestObserveDialOption(t *testing.T) {
	snap, err := Observe(Options{Source: SourceNetlink, Dial: fakeDial(t, 0), OwnerScan: proc.OwnerScanProcfs})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Sockets) != 1 || snap.Sockets[0].Port != 8080 || snap.Sockets[0].Netns == "" {
		t.Errorf("sockets %+v, want the fake kernel's one", snap.Sockets)
	}
}
