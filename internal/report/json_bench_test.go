package report

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/policy"
)

// bigReport is the report of n unexpected listeners, each with an owner: the shape of an audit
// of a busy host.
func bigReport(n int) *audit.Report {
	ls := make([]observed.Listener, 0, n)
	for i := range n {
		ls = append(ls, observed.Listener{
			Socket: observed.Socket{Protocol: observed.TCP, Addr: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), Port: uint16(10000 + i%50000), Family: observed.IPv4, Inode: uint64(i + 1)},
			Owners: []observed.Process{{PID: 1000 + i, Name: fmt.Sprintf("svc-%d", i), Exe: "/usr/bin/svc", User: "svc", Unit: "svc.service"}},
		})
	}
	return audit.Judge(&policy.Policy{Version: 1}, ls)
}

// BenchmarkJSON: the v2 document of an audit of 10,000 listeners.
func BenchmarkJSON(b *testing.B) {
	r := bigReport(10000)
	m := Meta{Host: "h", Time: time.Unix(0, 0)}
	var buf bytes.Buffer
	if err := JSON(&buf, m, r); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if err := JSON(io.Discard, m, r); err != nil {
			b.Fatal(err)
		}
	}
}
