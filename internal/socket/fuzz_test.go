package socket_test

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/mdlayher/netlink"

	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/internal/socket"
)

// FuzzParseProcNet: any bytes either fail cleanly or give sockets that are listening sockets
// of the table's protocol and family; never a panic.
func FuzzParseProcNet(f *testing.F) {
	f.Add([]byte(header + line("0100007F:1F90", "00000000:0000", "0A", "0", "100")))
	f.Add([]byte(header + line("00000000000000000000000000000000:0050", "00000000000000000000000000000000:0000", "0A", "0", "1")))
	f.Add([]byte(header + "garbage\n\x00\xff"))
	f.Add([]byte(""))
	f.Add([]byte(header + line("00000000:0016", "00000000:0000", "0A", "-1", "x")))
	f.Add([]byte(line("0100007F:1F90", "00000000:0000", "0A", "0", "100")))
	f.Add([]byte(header + line("0100007F:0000", "00000000:0000", "0A", "0", "1")))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, tb := range socket.Tables {
			res := &socket.ProcNetResult{}
			if err := socket.ParseProcNet(bytes.NewReader(data), "fuzz", tb, res); err != nil {
				continue
			}
			for _, s := range res.Sockets {
				if s.Protocol != tb.Protocol || s.Family != tb.Family || !s.Addr.IsValid() {
					t.Fatalf("bad socket %+v from table %s", s, tb.Name)
				}
				if tb.Family == observed.IPv4 != s.Addr.Is4() {
					t.Fatalf("family mismatch %+v", s)
				}
				if s.Port == 0 || s.OwnerUnknown && s.Inode != 0 {
					t.Fatalf("corrupt socket kept %+v", s)
				}
			}
			if len(res.Problems) > socket.MaxLineProblems || res.Skipped < len(res.Problems) || len(res.Warnings) > socket.MaxLineProblems+1 {
				t.Fatalf("problems %d skipped %d", len(res.Problems), res.Skipped)
			}
		}
	})
}

// FuzzDecodeDiagMsg: any message either fails cleanly or decodes to a socket of the requested
// family and protocol.
func FuzzDecodeDiagMsg(f *testing.F) {
	f.Add(diagMsg(2, 10, netip.MustParseAddr("127.0.0.1"), 80, 0, 1, nil), uint8(0))
	f.Add(diagMsg(10, 10, netip.IPv6Unspecified(), 80, 0, 1, nil), uint8(1))
	f.Add(append(diagMsg(10, 10, netip.IPv6Unspecified(), 80, 0, 1, nil), 5, 0, 11, 0, 1, 0, 0, 0), uint8(1))
	f.Add([]byte{}, uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		r := socket.DiagRequests[int(which)%len(socket.DiagRequests)]
		s, err := socket.DecodeDiagMsg(data, r)
		if err != nil {
			return
		}
		if s.Family != r.Family || s.Protocol != r.Protocol || !s.Addr.IsValid() {
			t.Fatalf("decoded %+v for %s", s, r)
		}
		// The attributes are walked by hand (no allocation per socket): whatever it accepts,
		// mdlayher/netlink's decoder must read the same v6only from.
		if len(data) <= 72 { // sizeof(struct inet_diag_msg): no attributes
			return
		}
		ad, err := netlink.NewAttributeDecoder(data[72:])
		if err != nil {
			t.Fatalf("accepted attributes netlink refuses: %v", err)
		}
		want := observed.V6OnlyNA
		if r.Family == observed.IPv6 {
			want = observed.V6OnlyUnknown
		}
		for ad.Next() {
			if r.Family == observed.IPv6 && ad.Type() == 11 { // INET_DIAG_SKV6ONLY
				want = observed.V6OnlyNo
				if ad.Uint8() != 0 {
					want = observed.V6OnlyYes
				}
			}
		}
		if err := ad.Err(); err != nil {
			t.Fatalf("accepted attributes netlink refuses: %v", err)
		}
		if s.V6Only != want {
			t.Fatalf("v6only %v, netlink's decoder reads %v", s.V6Only, want)
		}
	})
}
