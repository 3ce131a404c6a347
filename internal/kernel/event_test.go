package kernel

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// rawEvent is struct event of bpf/live.c, for encoding test records.
type rawEvent struct {
	ts, cgroup, cookie            uint64
	pid, netns                    uint32
	kind, family, protocol, flags uint8
	port                          uint16
	addr                          [16]byte
	comm                          string
}

func (r rawEvent) encode() []byte {
	b := make([]byte, eventSize)
	ne := binary.NativeEndian
	ne.PutUint64(b[offTS:], r.ts)
	ne.PutUint64(b[offCgroup:], r.cgroup)
	ne.PutUint64(b[offCookie:], r.cookie)
	ne.PutUint32(b[offPID:], r.pid)
	ne.PutUint32(b[offNetns:], r.netns)
	b[offKind], b[offFamily], b[offProtocol], b[offFlags] = r.kind, r.family, r.protocol, r.flags
	ne.PutUint16(b[offPort:], r.port)
	copy(b[offAddr:], r.addr[:])
	copy(b[offComm:offComm+16], r.comm)
	return b
}

func addr16(s string) [16]byte {
	a := netip.MustParseAddr(s)
	if a.Is4() {
		var b [16]byte
		v4 := a.As4()
		copy(b[:], v4[:])
		return b
	}
	return a.As16()
}

func TestDecodeEvent(t *testing.T) {
	base := rawEvent{ts: 123456789, cgroup: 77, cookie: 4096, pid: 42, netns: 4026531840,
		kind: 1, family: afInet, protocol: ipprotoTCP, port: 8080, addr: addr16("127.0.0.1"), comm: "nginx"}
	for _, tc := range []struct {
		name   string
		edit   func(r *rawEvent)
		want   func(e *Event)
		errMsg string
	}{
		{name: "tcp4 listen", edit: func(*rawEvent) {}, want: func(*Event) {}},
		{name: "tcp6 v6only", edit: func(r *rawEvent) { r.family, r.addr, r.flags = afInet6, addr16("::"), flagV6Only },
			want: func(e *Event) { e.Family, e.Addr, e.V6Only = "ipv6", netip.IPv6Unspecified(), true }},
		{name: "dual-stack :: stays ::", edit: func(r *rawEvent) { r.family, r.addr = afInet6, addr16("::") },
			want: func(e *Event) { e.Family, e.Addr = "ipv6", netip.IPv6Unspecified() }},
		{name: "v4-mapped is unmapped", edit: func(r *rawEvent) { r.family, r.addr = afInet6, addr16("::ffff:127.0.0.1") },
			want: func(e *Event) { e.Family = "ipv6" }},
		{name: "udp unbind", edit: func(r *rawEvent) { r.kind, r.protocol = 4, ipprotoUDP },
			want: func(e *Event) { e.Kind, e.Protocol = KindUnbind, "udp" }},
		{name: "comm of 16 bytes", edit: func(r *rawEvent) { r.comm = "abcdefghijklmnop" },
			want: func(e *Event) { e.Comm = "abcdefghijklmnop" }},
		{name: "kind 0", edit: func(r *rawEvent) { r.kind = 0 }, errMsg: "kind 0"},
		{name: "kind 5", edit: func(r *rawEvent) { r.kind = 5 }, errMsg: "kind 5"},
		{name: "tcp bind", edit: func(r *rawEvent) { r.kind = 3 }, errMsg: "tcp bind"},
		{name: "udp listen", edit: func(r *rawEvent) { r.protocol = ipprotoUDP }, errMsg: "udp listen"},
		{name: "protocol", edit: func(r *rawEvent) { r.protocol = 132 }, errMsg: "protocol 132"},
		{name: "family", edit: func(r *rawEvent) { r.family = 1 }, errMsg: "family 1"},
		{name: "v6only on ipv4", edit: func(r *rawEvent) { r.flags = flagV6Only }, errMsg: "v6only on an IPv4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			tc.edit(&r)
			got, err := decodeEvent(r.encode())
			if tc.errMsg != "" {
				if err == nil || !errors.Is(err, ErrBadRecord) || !strings.Contains(err.Error(), tc.errMsg) {
					t.Fatalf("error %v, want ErrBadRecord with %q", err, tc.errMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Event{Kind: KindListen, Monotonic: 123456789, PID: 42, Comm: "nginx", CgroupID: 77,
				NetnsIno: 4026531840, Protocol: "tcp", Family: "ipv4", Addr: netip.MustParseAddr("127.0.0.1"),
				Port: 8080, Cookie: 4096}
			tc.want(&want)
			if got != want {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
	for _, n := range []int{0, 1, eventSize - 1} {
		if _, err := decodeEvent(make([]byte, n)); err == nil || !errors.Is(err, ErrBadRecord) {
			t.Errorf("%d bytes: error %v, want ErrBadRecord", n, err)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindListen: "listen", KindClose: "close", KindBind: "bind", KindUnbind: "unbind", 9: "kind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d) = %q, want %q", k, got, want)
		}
	}
	if !KindListen.Opens() || !KindBind.Opens() || KindClose.Opens() || KindUnbind.Opens() {
		t.Error("Opens is wrong")
	}
}

// FuzzDecodeEvent: no record makes the decoder panic, and whatever it accepts is consistent
// and survives a round trip through the record format.
func FuzzDecodeEvent(f *testing.F) {
	f.Add(rawEvent{kind: 1, family: afInet, protocol: ipprotoTCP, port: 80, addr: addr16("0.0.0.0"), comm: "sshd"}.encode())
	f.Add(rawEvent{kind: 3, family: afInet6, protocol: ipprotoUDP, port: 53, flags: 1, addr: addr16("::"), comm: "dnsmasq"}.encode())
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEvent(b)
		if err != nil {
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("error %v does not wrap ErrBadRecord", err)
			}
			return
		}
		if e.Protocol != "tcp" && e.Protocol != "udp" || !e.Addr.IsValid() || e.Addr.Is4In6() ||
			(e.V6Only && e.Family != "ipv6") || (e.Family == "ipv4" && !e.Addr.Is4()) || len(e.Comm) > 16 {
			t.Fatalf("inconsistent event %+v", e)
		}
		again, err := decodeEvent(b[:eventSize])
		if err != nil || again != e {
			t.Fatalf("decoding the first %d bytes again: %+v, %v; first %+v", eventSize, again, err, e)
		}
	})
}
