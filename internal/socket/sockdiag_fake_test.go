package socket_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"

	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/internal/socket"
)

// Dump against a fake kernel (nltest): no root, no netlink socket.

const sockDiagByFamily = 20

// fakeKernel answers each sock_diag request with the reply its test scripts for that table
// ("tcp", "tcp6", "udp", "udp6"), and records the requests.
type fakeKernel struct {
	t       *testing.T
	replies map[string]func(req netlink.Message) []netlink.Message
	reqs    []netlink.Message
}

// table names a request by its family and protocol bytes.
func table(data []byte) string {
	if len(data) < 2 {
		return fmt.Sprintf("short request (%d bytes)", len(data))
	}
	name := map[byte]string{6: "tcp", 17: "udp"}[data[1]]
	if data[0] == 10 {
		name += "6"
	}
	return name
}

func (k *fakeKernel) fn(reqs []netlink.Message) ([]netlink.Message, error) {
	if len(reqs) != 1 {
		k.t.Errorf("the kernel was asked %d messages at once (a read with nothing sent?), want 1", len(reqs))
		return nil, errors.New("fake kernel: no request")
	}
	req := reqs[0]
	k.reqs = append(k.reqs, req)
	reply, ok := k.replies[table(req.Data)]
	if !ok {
		return done(req), nil // an empty dump
	}
	return reply(req), nil
}

func (k *fakeKernel) dump(t *testing.T) ([]observed.Socket, error) {
	t.Helper()
	c := nltest.Dial(k.fn)
	defer func() { _ = c.Close() }()
	return socket.Dump(c)
}

// done is the end of a dump: NLMSG_DONE, multi-part, errno 0.
func done(req netlink.Message) []netlink.Message {
	return []netlink.Message{{Header: netlink.Header{Type: netlink.Done, Flags: netlink.Multi, Sequence: req.Header.Sequence, PID: nltest.PID}, Data: make([]byte, 4)}}
}

// multipart is a dump's reply: each payload as a SOCK_DIAG_BY_FAMILY part, then done.
func multipart(payloads ...[]byte) func(netlink.Message) []netlink.Message {
	return func(req netlink.Message) []netlink.Message {
		var out []netlink.Message
		for _, p := range payloads {
			out = append(out, netlink.Message{Header: netlink.Header{Type: sockDiagByFamily, Flags: netlink.Multi, Sequence: req.Header.Sequence, PID: nltest.PID}, Data: p})
		}
		return append(out, done(req)...)
	}
}

var (
	lo4     = netip.MustParseAddr("127.0.0.1")
	any4    = netip.IPv4Unspecified()
	any6    = netip.IPv6Unspecified()
	lo6     = netip.IPv6Loopback()
	addrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
)

func v6only(v uint8) []netlink.Attribute { return []netlink.Attribute{{Type: 11, Data: []byte{v}}} }

// A host's four tables: two TCP4 listeners, a dual-stack TCP6 one, no UDP4, a v6only UDP6 one.
func hostReplies() map[string]func(netlink.Message) []netlink.Message {
	return map[string]func(netlink.Message) []netlink.Message{
		"tcp":  multipart(diagMsg(2, 10, lo4, 8080, 1000, 11, nil), diagMsg(2, 10, any4, 22, 0, 12, nil)),
		"tcp6": multipart(diagMsg(10, 10, any6, 80, 33, 13, v6only(0))),
		"udp6": multipart(diagMsg(10, 7, lo6, 53, 0, 14, v6only(1))),
	}
}

var (
	sockTCP8080 = observed.Socket{Protocol: observed.TCP, Family: observed.IPv4, Addr: lo4, Port: 8080, UID: 1000, Inode: 11, V6Only: observed.V6OnlyNA}
	sockTCP22   = observed.Socket{Protocol: observed.TCP, Family: observed.IPv4, Addr: any4, Port: 22, Inode: 12, V6Only: observed.V6OnlyNA}
	sockTCP6_80 = observed.Socket{Protocol: observed.TCP, Family: observed.IPv6, Addr: any6, Port: 80, UID: 33, Inode: 13, V6Only: observed.V6OnlyNo}
	sockUDP6_53 = observed.Socket{Protocol: observed.UDP, Family: observed.IPv6, Addr: lo6, Port: 53, Inode: 14, V6Only: observed.V6OnlyYes}
)

func TestDumpFakeKernel(t *testing.T) {
	k := &fakeKernel{t: t, replies: hostReplies()}
	got, err := k.dump(t)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]observed.Socket{sockTCP8080, sockTCP22, sockTCP6_80, sockUDP6_53}, got, addrCmp); d != "" {
		t.Errorf("sockets (-want +got):\n%s", d)
	}
	// The four requests, in order: SOCK_DIAG_BY_FAMILY dumps of an inet_diag_req_v2 each, the
	// kernel filtering TCP to LISTEN (1<<10) and UDP to CLOSE (1<<7).
	type req struct {
		Type          netlink.HeaderType
		Flags         netlink.HeaderFlags
		Len           int
		Family, Proto byte
		Ext           byte
		States        uint32
	}
	want := []req{
		{sockDiagByFamily, netlink.Request | netlink.Dump, 56, 2, 6, 0, 1 << 10},
		{sockDiagByFamily, netlink.Request | netlink.Dump, 56, 10, 6, 0, 1 << 10},
		{sockDiagByFamily, netlink.Request | netlink.Dump, 56, 2, 17, 0, 1 << 7},
		{sockDiagByFamily, netlink.Request | netlink.Dump, 56, 10, 17, 0, 1 << 7},
	}
	var reqs []req
	for _, m := range k.reqs {
		d := m.Data
		if len(d) != 56 {
			t.Fatalf("request of %d bytes, want 56", len(d))
		}
		reqs = append(reqs, req{m.Header.Type, m.Header.Flags, len(d), d[0], d[1], d[2], binary.NativeEndian.Uint32(d[4:8])})
		if rest := d[8:]; strings.Trim(string(rest), "\x00") != "" {
			t.Errorf("%s request: the socket id and cookie are not zero: % x", table(d), rest)
		}
	}
	if d := cmp.Diff(want, reqs); d != "" {
		t.Errorf("requests (-want +got):\n%s", d)
	}
}

// diagErrors unpacks Dump's joined error into its DiagErrors.
func diagErrors(t *testing.T, err error) []*socket.DiagError {
	t.Helper()
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %v (%T) is not a joined error", err, err)
	}
	var out []*socket.DiagError
	for _, e := range j.Unwrap() {
		var de *socket.DiagError
		if !errors.As(e, &de) {
			t.Fatalf("%v is not a *socket.DiagError", e)
		}
		out = append(out, de)
	}
	return out
}

// TestDumpKernelError: a kernel without udp_diag answers the UDP dumps with ENOENT; the TCP
// tables are still returned, with one DiagError per failed table.
func TestDumpKernelError(t *testing.T) {
	replies := hostReplies()
	// NLMSG_ERROR as the kernel sends it without extended acks: the negative errno, then the
	// request echoed. (nltest.Error copies the request's flags, whose Dump bits read as
	// NLM_F_ACK_TLVS on an error message.)
	enoent := func(req netlink.Message) []netlink.Message {
		echo, err := req.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		errno := -int32(syscall.ENOENT)
		data := binary.NativeEndian.AppendUint32(nil, uint32(errno))
		return []netlink.Message{{Header: netlink.Header{Type: netlink.Error, Sequence: req.Header.Sequence, PID: nltest.PID}, Data: append(data, echo...)}}
	}
	replies["udp"], replies["udp6"] = enoent, enoent
	got, err := (&fakeKernel{t: t, replies: replies}).dump(t)
	if d := cmp.Diff([]observed.Socket{sockTCP8080, sockTCP22, sockTCP6_80}, got, addrCmp); d != "" {
		t.Errorf("sockets (-want +got):\n%s", d)
	}
	if !errors.Is(err, syscall.ENOENT) {
		t.Errorf("error %v is not ENOENT", err)
	}
	des := diagErrors(t, err)
	if len(des) != 2 || des[0].Request != socket.DiagRequests[2] || des[1].Request != socket.DiagRequests[3] {
		t.Fatalf("DiagErrors %v, want udp and udp6", des)
	}
	if msg := des[0].Error(); !strings.HasPrefix(msg, "sockdiag: dump udp: ") {
		t.Errorf("message %q", msg)
	}
	var oe *netlink.OpError
	if !errors.As(des[0], &oe) {
		t.Errorf("%v does not unwrap to netlink's OpError", des[0])
	}
}

// TestDumpBadReplies: a garbled or unexpected reply fails its table with a clear error and
// never a panic; the table's sockets before it are dropped (all or nothing per table), the
// rest of its dump is not mistaken for the next table's, and the other tables are returned.
func TestDumpBadReplies(t *testing.T) {
	part := func(typ netlink.HeaderType, data []byte) func(netlink.Message) []netlink.Message {
		return func(req netlink.Message) []netlink.Message {
			m := netlink.Message{Header: netlink.Header{Type: typ, Flags: netlink.Multi, Sequence: req.Header.Sequence, PID: nltest.PID}, Data: data}
			ok := multipart(diagMsg(10, 10, lo6, 443, 0, 20, nil))(req)
			// a good socket, the bad part, a good socket, done
			return append([]netlink.Message{ok[0], m}, multipart(diagMsg(10, 10, lo6, 444, 0, 21, nil))(req)...)
		}
	}
	for _, tc := range []struct {
		name  string
		reply func(netlink.Message) []netlink.Message
		want  string
	}{
		{"truncated inet_diag_msg", part(sockDiagByFamily, diagMsg(10, 10, lo6, 80, 0, 1, nil)[:40]), "sockdiag: dump tcp6: inet_diag_msg: 40 bytes, want at least 72"},
		{"empty part", part(sockDiagByFamily, nil), "sockdiag: dump tcp6: inet_diag_msg: 0 bytes, want at least 72"},
		{"garbled attributes", part(sockDiagByFamily, append(diagMsg(10, 10, lo6, 80, 0, 1, nil), 0xff, 0x00, 0x0b)), "sockdiag: dump tcp6: inet_diag_msg attributes: "},
		{"another table's socket", part(sockDiagByFamily, diagMsg(2, 10, lo4, 80, 0, 1, nil)), "sockdiag: dump tcp6: inet_diag_msg: family 2, asked for 10"},
		{"unexpected message type", part(16, diagMsg(10, 10, lo6, 80, 0, 1, nil)), "sockdiag: dump tcp6: unexpected netlink message type 16"},
		{"short error message", part(netlink.Error, []byte{1, 2}), "sockdiag: dump tcp6: netlink receive: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			replies := hostReplies()
			replies["tcp6"] = tc.reply
			k := &fakeKernel{t: t, replies: replies}
			got, err := k.dump(t)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if des := diagErrors(t, err); len(des) != 1 || des[0].Request != socket.DiagRequests[1] {
				t.Errorf("DiagErrors %v, want tcp6's alone", des)
			}
			if d := cmp.Diff([]observed.Socket{sockTCP8080, sockTCP22, sockUDP6_53}, got, addrCmp); d != "" {
				t.Errorf("sockets (-want +got):\n%s", d)
			}
			if len(k.reqs) != 4 {
				t.Errorf("%d requests, want the four", len(k.reqs))
			}
		})
	}
}

// TestDumpReceiveError: a receive that fails (the socket's own error, not an NLMSG_ERROR)
// fails that table.
func TestDumpReceiveError(t *testing.T) {
	boom := errors.New("fake kernel: receive failed")
	k := &fakeKernel{t: t}
	c := nltest.Dial(func(reqs []netlink.Message) ([]netlink.Message, error) {
		if table(reqs[0].Data) == "tcp" {
			return nil, boom
		}
		return k.fn(reqs)
	})
	defer func() { _ = c.Close() }()
	got, err := socket.Dump(c)
	if !errors.Is(err, boom) || len(got) != 0 {
		t.Fatalf("Dump = %v, %v; want no sockets and the receive error", got, err)
	}
	if des := diagErrors(t, err); len(des) != 1 || des[0].Request != socket.DiagRequests[0] {
		t.Errorf("DiagErrors %v, want tcp's alone", des)
	}
}
