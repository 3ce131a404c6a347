package socket_test

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"

	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/internal/socket"
)

const header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

func line(local, remote, st, uid, inode string) string {
	return "   0: " + local + " " + remote + " " + st + " 00000000:00000000 00:00000000 00000000 " + uid + " 0 " + inode + " 1 0000000000000000 100 0 0 10 0\n"
}

func TestParseProcNet(t *testing.T) {
	tcp := socket.Tables[0]
	tcp6 := socket.Tables[1]
	udp := socket.Tables[2]
	for _, tc := range []struct {
		name  string
		table socket.Table
		in    string
		want  []string // "addr:port v6only uid inode"
		probs []string
	}{
		{"listen only", tcp, header +
			line("0100007F:1F90", "00000000:0000", "0A", "0", "100") +
			line("0100007F:1F90", "0100007F:D431", "01", "0", "101"),
			[]string{"127.0.0.1:8080 3 0 100"}, nil},
		{"ipv6 any and mapped", tcp6, header +
			line("00000000000000000000000000000000:0050", "00000000000000000000000000000000:0000", "0A", "33", "7") +
			line("0000000000000000FFFF00000100007F:0051", "00000000000000000000000000000000:0000", "0A", "0", "8"),
			[]string{"[::]:80 0 33 7", "[::ffff:127.0.0.1]:81 0 0 8"}, nil},
		{"udp bound vs connected", udp, header +
			line("00000000:0035", "00000000:0000", "07", "0", "5") +
			line("0100007F:0035", "0100007F:A000", "07", "0", "6") +
			line("0100007F:0036", "00000000:0000", "01", "0", "9"),
			[]string{"0.0.0.0:53 3 0 5"}, nil},
		{"malformed lines skipped", tcp, header +
			"garbage\n" +
			line("0100007G:1F90", "00000000:0000", "0A", "0", "1") +
			line("0100007F:1F9", "00000000:0000", "0A", "0", "1") +
			line("0100007F:1F90", "00000000:0000", "AAA", "0", "1") +
			"   0 0100007F:1F90 00000000:0000 0A 0 0 0 0 0 1\n" +
			line("0100007F:0000", "00000000:0000", "0A", "0", "3") +
			line("0100007F:1F91", "00000000:0000", "0A", "0", "2"),
			[]string{"127.0.0.1:8081 3 0 2"},
			[]string{
				"t:2: 1 fields, want at least 10",
				`t:3: local_address: address "0100007G" is not hex`,
				`t:4: local_address: port "1F9": want 4 hex digits`,
				`t:5: state "AAA" is not two hex digits`,
				`t:6: slot "0" does not end in ':'`,
				`t:7: listener on port 0: corrupt record`,
			}},
		{"port 0 only matters for listeners", tcp, header +
			line("0100007F:0000", "0100007F:1F90", "01", "0", "4"),
			nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := &socket.ProcNetResult{}
			if err := socket.ParseProcNet(strings.NewReader(tc.in), "t", tc.table, res); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range res.Sockets {
				got = append(got, s.AddrPort().String()+" "+itoa(int(s.V6Only))+" "+itoa(int(s.UID))+" "+itoa(int(s.Inode)))
				if s.Protocol != tc.table.Protocol || s.Family != tc.table.Family {
					t.Errorf("%v: protocol/family %s/%s", s, s.Protocol, s.Family)
				}
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("sockets (-want +got):\n%s", d)
			}
			var probs []string
			for _, p := range res.Problems {
				probs = append(probs, p.Error())
			}
			if d := cmp.Diff(tc.probs, probs); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestParseProcNetKeepsUnownedListeners: only address, port and state decide exposure; a line
// whose uid or inode does not parse keeps its listener, warned, with the owner unknown.
func TestParseProcNetKeepsUnownedListeners(t *testing.T) {
	in := header +
		line("00000000:0016", "00000000:0000", "0A", "-1", "100") +
		line("00000000:0017", "00000000:0000", "0A", "0", "x") +
		line("00000000:0018", "00000000:0000", "0A", "zz", "") + // the inode field is then "1"
		line("0100007F:1F90", "0100007F:D431", "01", "bad", "bad") // not listening: ignored
	res := &socket.ProcNetResult{}
	if err := socket.ParseProcNet(strings.NewReader(in), "t", socket.Tables[0], res); err != nil {
		t.Fatal(err)
	}
	type sock struct {
		AddrPort     string
		UID          uint32
		Inode        uint64
		OwnerUnknown bool
	}
	var got []sock
	for _, s := range res.Sockets {
		got = append(got, sock{s.AddrPort().String(), s.UID, s.Inode, s.OwnerUnknown})
	}
	want := []sock{
		{"0.0.0.0:22", socket.UnknownUID, 100, false},
		{"0.0.0.0:23", 0, 0, true},
		{"0.0.0.0:24", socket.UnknownUID, 1, false},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("sockets (-want +got):\n%s", d)
	}
	var warns []string
	for _, w := range res.Warnings {
		warns = append(warns, w.Error())
	}
	wantWarns := []string{
		`t:2: kept tcp 0.0.0.0:22; owner unknown: uid "-1" is not a number`,
		`t:3: kept tcp 0.0.0.0:23; owner unknown: inode "x" is not a number`,
		`t:4: kept tcp 0.0.0.0:24; owner unknown: uid "zz" is not a number`,
	}
	if d := cmp.Diff(wantWarns, warns); d != "" {
		t.Errorf("warnings (-want +got):\n%s", d)
	}
	if len(res.Problems) != 0 || res.Skipped != 0 || res.Unowned != 3 {
		t.Errorf("problems %v, skipped %d, unowned %d", res.Problems, res.Skipped, res.Unowned)
	}
}

// TestParseProcNetWithoutHeader: a table is recognised by content; a missing header line is
// a warning, not a refusal.
func TestParseProcNetWithoutHeader(t *testing.T) {
	in := line("0100007F:1F90", "00000000:0000", "0A", "0", "100") +
		line("00000000:0016", "00000000:0000", "0A", "0", "101")
	res := &socket.ProcNetResult{}
	if err := socket.ParseProcNet(strings.NewReader(in), "t", socket.Tables[0], res); err != nil {
		t.Fatal(err)
	}
	if len(res.Sockets) != 2 || res.Sockets[1].AddrPort().String() != "0.0.0.0:22" {
		t.Errorf("sockets %v, want both rows", res.Sockets)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0].Error(), "no header line") {
		t.Errorf("warnings %v, want one about the missing header", res.Warnings)
	}
}

func TestParseProcNetCapsUnownedWarnings(t *testing.T) {
	in := header + strings.Repeat(line("00000000:0016", "00000000:0000", "0A", "x", "1"), 50)
	res := &socket.ProcNetResult{}
	if err := socket.ParseProcNet(strings.NewReader(in), "t", socket.Tables[0], res); err != nil {
		t.Fatal(err)
	}
	if len(res.Sockets) != 50 || len(res.Warnings) != socket.MaxLineProblems || res.Unowned != 50 {
		t.Errorf("%d sockets, %d warnings, %d unowned; want 50, %d, 50", len(res.Sockets), len(res.Warnings), res.Unowned, socket.MaxLineProblems)
	}
}

func TestParseProcNetRefusesNonTables(t *testing.T) {
	for name, in := range map[string]string{
		"empty":              "",
		"not a table":        "hello world\n",
		"long line":          header + strings.Repeat("x", 5000) + "\n",
		"no header, bad row": line("0100007G:1F90", "00000000:0000", "0A", "0", "1") + line("0100007F:1F90", "00000000:0000", "0A", "0", "1"),
		"blank first line":   "\n" + header,
	} {
		t.Run(name, func(t *testing.T) {
			if err := socket.ParseProcNet(strings.NewReader(in), "t", socket.Tables[0], &socket.ProcNetResult{}); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestParseProcNetCapsProblems(t *testing.T) {
	in := header + strings.Repeat("bad line\n", 100)
	res := &socket.ProcNetResult{}
	if err := socket.ParseProcNet(strings.NewReader(in), "t", socket.Tables[0], res); err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) != socket.MaxLineProblems || res.Skipped != 100 {
		t.Errorf("%d problems, %d skipped; want %d and 100", len(res.Problems), res.Skipped, socket.MaxLineProblems)
	}
}

// diagMsg builds an inet_diag_msg as the kernel sends it.
func diagMsg(family, state uint8, addr netip.Addr, port uint16, uid, inode uint32, attrs []netlink.Attribute) []byte {
	b := make([]byte, 72)
	b[0], b[1] = family, state
	binary.BigEndian.PutUint16(b[4:], port)
	a := addr.AsSlice()
	copy(b[8:], a)
	binary.NativeEndian.PutUint32(b[64:], uid)
	binary.NativeEndian.PutUint32(b[68:], inode)
	if attrs != nil {
		ab, err := netlink.MarshalAttributes(attrs)
		if err != nil {
			panic(err)
		}
		b = append(b, ab...)
	}
	return b
}

func TestDecodeDiagMsg(t *testing.T) {
	tcp4 := socket.DiagRequests[0]
	tcp6 := socket.DiagRequests[1]
	udp4 := socket.DiagRequests[2]
	v6only := func(v uint8) []netlink.Attribute {
		return []netlink.Attribute{{Type: 1, Data: []byte{0}}, {Type: 11, Data: []byte{v}}}
	}
	for _, tc := range []struct {
		name string
		req  socket.DiagRequest
		msg  []byte
		want observed.Socket
		err  string
	}{
		{"tcp4", tcp4, diagMsg(2, 10, netip.MustParseAddr("127.0.0.1"), 8080, 1000, 42, nil),
			observed.Socket{Protocol: observed.TCP, Family: observed.IPv4, Addr: netip.MustParseAddr("127.0.0.1"), Port: 8080, UID: 1000, Inode: 42, V6Only: observed.V6OnlyNA}, ""},
		{"tcp6 dual-stack", tcp6, diagMsg(10, 10, netip.IPv6Unspecified(), 80, 0, 7, v6only(0)),
			observed.Socket{Protocol: observed.TCP, Family: observed.IPv6, Addr: netip.IPv6Unspecified(), Port: 80, Inode: 7, V6Only: observed.V6OnlyNo}, ""},
		{"tcp6 v6only", tcp6, diagMsg(10, 10, netip.IPv6Unspecified(), 80, 0, 7, v6only(1)),
			observed.Socket{Protocol: observed.TCP, Family: observed.IPv6, Addr: netip.IPv6Unspecified(), Port: 80, Inode: 7, V6Only: observed.V6OnlyYes}, ""},
		{"tcp6 no attribute", tcp6, diagMsg(10, 10, netip.IPv6Loopback(), 80, 0, 7, nil),
			observed.Socket{Protocol: observed.TCP, Family: observed.IPv6, Addr: netip.IPv6Loopback(), Port: 80, Inode: 7, V6Only: observed.V6OnlyUnknown}, ""},
		{"udp4 close", udp4, diagMsg(2, 7, netip.IPv4Unspecified(), 53, 0, 9, nil),
			observed.Socket{Protocol: observed.UDP, Family: observed.IPv4, Addr: netip.IPv4Unspecified(), Port: 53, Inode: 9, V6Only: observed.V6OnlyNA}, ""},
		{"short", tcp4, make([]byte, 71), observed.Socket{}, "71 bytes"},
		{"wrong family", tcp4, diagMsg(10, 10, netip.IPv6Loopback(), 1, 0, 0, nil), observed.Socket{}, "family 10"},
		{"wrong state", tcp4, diagMsg(2, 1, netip.MustParseAddr("127.0.0.1"), 1, 0, 0, nil), observed.Socket{}, "state 1"},
		{"bad v6only size", tcp6, diagMsg(10, 10, netip.IPv6Loopback(), 1, 0, 0, []netlink.Attribute{{Type: 11, Data: []byte{1, 0}}}), observed.Socket{}, "SKV6ONLY is 2 bytes"},
		{"truncated attribute", tcp6, append(diagMsg(10, 10, netip.IPv6Loopback(), 1, 0, 0, nil), 0xff, 0x00, 0x0b, 0x00), observed.Socket{}, "attributes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := socket.DecodeDiagMsg(tc.msg, tc.req)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestDiagRequestEncode(t *testing.T) {
	b := socket.DiagRequests[1].Encode() // tcp6
	if len(b) != 56 || b[0] != 10 || b[1] != 6 || binary.NativeEndian.Uint32(b[4:]) != 1<<10 {
		t.Errorf("tcp6 request % x", b[:8])
	}
	b = socket.DiagRequests[2].Encode() // udp4
	if b[0] != 2 || b[1] != 17 || binary.NativeEndian.Uint32(b[4:]) != 1<<7 {
		t.Errorf("udp4 request % x", b[:8])
	}
}
