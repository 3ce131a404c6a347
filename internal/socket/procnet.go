package socket

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bindguard/bindguard/internal/observed"
)

// Kernel socket states as /proc/net and sock_diag number them.
const (
	stateListen = 0x0A // TCP_LISTEN
	stateClose  = 0x07 // TCP_CLOSE: an unconnected UDP socket
)

// MaxLineProblems is how many malformed /proc/net lines a table reports in detail.
const MaxLineProblems = 20

// maxLine bounds one /proc/net line. Real lines are about 150 bytes.
const maxLine = 4096

// Table names one of the /proc/net socket tables.
type Table struct {
	Name     string // "tcp", "tcp6", "udp", "udp6"
	Protocol observed.Protocol
	Family   observed.Family
}

// Tables are the four tables ReadProcNet reads, in order.
var Tables = [4]Table{
	{"tcp", observed.TCP, observed.IPv4},
	{"tcp6", observed.TCP, observed.IPv6},
	{"udp", observed.UDP, observed.IPv4},
	{"udp6", observed.UDP, observed.IPv6},
}

// LineError is a malformed line in a /proc/net table. It is reported and the line skipped.
type LineError struct {
	File string
	Line int
	Msg  string
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// ErrNoIPv6 marks a missing tcp6/udp6 table: the kernel has IPv6 disabled.
var ErrNoIPv6 = errors.New("IPv6 tables absent (IPv6 disabled in this kernel?)")

// ProcNetResult is what ReadProcNet found.
type ProcNetResult struct {
	Sockets []observed.Socket
	// Problems are malformed lines, at most MaxLineProblems of them; Skipped counts them all.
	Problems []*LineError
	Skipped  int
	// Warnings are conditions that do not make the result wrong, such as ErrNoIPv6, a table
	// without its header line, or (as *LineError, at most MaxLineProblems of them) a line kept
	// whose uid or inode did not parse; Unowned counts those lines all.
	Warnings []error
	Unowned  int
}

// UnknownUID is the UID of a socket whose table line had no readable uid: (uid_t)-1, which
// the kernel never gives a user.
const UnknownUID = ^uint32(0)

// ReadProcNet reads the listening sockets from the tcp, tcp6, udp and udp6 tables in dir
// (normally /proc/net or /proc/PID/net). It fails when a table cannot be read, is empty, or is
// not a socket table: an unreadable table must never read as "nothing listens". A missing tcp6
// or udp6 table is a warning (ErrNoIPv6), since kernels booted with ipv6.disable=1 have none.
func ReadProcNet(dir string) (*ProcNetResult, error) {
	res := &ProcNetResult{}
	for _, t := range Tables {
		path := filepath.Join(dir, t.Name)
		f, err := os.Open(path) // #nosec G304 -- reading /proc tables is this function's job
		if err != nil {
			if t.Family == observed.IPv6 && errors.Is(err, fs.ErrNotExist) {
				res.Warnings = append(res.Warnings, fmt.Errorf("%s: %w", path, ErrNoIPv6))
				continue
			}
			return nil, fmt.Errorf("procnet: %w", err)
		}
		err = ParseProcNet(f, path, t, res)
		_ = f.Close()
		if err != nil {
			return nil, err
		}
	}
	return res, nil
}

// ParseProcNet reads one /proc/net table from r (named name in messages) and appends its
// listening sockets (TCP in LISTEN, UDP unconnected) to res.
//
// Only a line's address, port and state decide whether it is a listener: a line whose uid or
// inode does not parse is kept, with a warning, its UID UnknownUID and, for the inode, Inode 0
// and OwnerUnknown set. A line that cannot be read otherwise, or a listener on port 0 (no
// socket listens there: the record is corrupt), is recorded in res.Problems and skipped. The
// header line is recognised by its content; a table without one is read all the same, with a
// warning, when its first line is a well-formed row.
//
// It fails when r cannot be read, is empty, or its first line is neither the header nor a row.
func ParseProcNet(r io.Reader, name string, t Table, res *ProcNetResult) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxLine)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if line == 1 {
			if isHeader(b) {
				continue
			}
			if _, _, _, err := parseProcNetLine(b, t); err != nil {
				return fmt.Errorf("procnet: %s:1: not a /proc/net socket table: neither the header nor a row (%v): %q", name, err, clipBytes(b, 64))
			}
			res.Warnings = append(res.Warnings, fmt.Errorf("procnet: %s: no header line; read by content", name))
		}
		s, ok, warn, err := parseProcNetLine(b, t)
		if err != nil {
			res.Skipped++
			if len(res.Problems) < MaxLineProblems {
				res.Problems = append(res.Problems, &LineError{File: name, Line: line, Msg: err.Error()})
			}
			continue
		}
		if !ok {
			continue
		}
		if warn != "" {
			res.Unowned++
			if res.Unowned <= MaxLineProblems {
				res.Warnings = append(res.Warnings, &LineError{File: name, Line: line, Msg: warn})
			}
		}
		res.Sockets = append(res.Sockets, s)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("procnet: %s:%d: line longer than %d bytes", name, line+1, maxLine)
		}
		return fmt.Errorf("procnet: read %s: %w", name, err)
	}
	if line == 0 {
		return fmt.Errorf("procnet: %s: empty table (no header line)", name)
	}
	return nil
}

// isHeader reports whether b is a /proc/net socket table's header line.
func isHeader(b []byte) bool {
	f := bytes.Fields(b)
	return len(f) >= 2 && string(f[0]) == "sl" && string(f[1]) == "local_address"
}

// parseProcNetLine parses one table row. ok is false for sockets that do not listen. warn says
// why the owner of a kept listener is unknown (its uid or inode did not parse).
func parseProcNetLine(b []byte, t Table) (s observed.Socket, ok bool, warn string, err error) {
	f := bytes.Fields(b)
	if len(f) < 10 {
		return s, false, "", fmt.Errorf("%d fields, want at least 10", len(f))
	}
	if len(f[0]) < 2 || f[0][len(f[0])-1] != ':' {
		return s, false, "", fmt.Errorf("slot %q does not end in ':'", clipBytes(f[0], 32))
	}
	local, lport, err := parseHexAddrPort(f[1], t.Family)
	if err != nil {
		return s, false, "", fmt.Errorf("local_address: %w", err)
	}
	remote, rport, err := parseHexAddrPort(f[2], t.Family)
	if err != nil {
		return s, false, "", fmt.Errorf("rem_address: %w", err)
	}
	st, err := strconv.ParseUint(string(f[3]), 16, 8)
	if err != nil || len(f[3]) != 2 {
		return s, false, "", fmt.Errorf("state %q is not two hex digits", clipBytes(f[3], 32))
	}
	switch t.Protocol {
	case observed.TCP:
		if st != stateListen {
			return s, false, "", nil
		}
	case observed.UDP:
		if st != stateClose || !remote.IsUnspecified() || rport != 0 {
			return s, false, "", nil
		}
	}
	if lport == 0 {
		return s, false, "", fmt.Errorf("listener on port 0: corrupt record")
	}
	s = observed.Socket{Protocol: t.Protocol, Family: t.Family, Addr: local, Port: lport, V6Only: observed.V6OnlyNA}
	if t.Family == observed.IPv6 {
		s.V6Only = observed.V6OnlyUnknown
	}
	var bad []string
	if uid, err := strconv.ParseUint(string(f[7]), 10, 32); err == nil {
		s.UID = uint32(uid)
	} else {
		s.UID = UnknownUID
		bad = append(bad, fmt.Sprintf("uid %q is not a number", clipBytes(f[7], 32)))
	}
	if inode, err := strconv.ParseUint(string(f[9]), 10, 64); err == nil {
		s.Inode = inode
	} else {
		s.OwnerUnknown = true
		bad = append(bad, fmt.Sprintf("inode %q is not a number", clipBytes(f[9], 32)))
	}
	if len(bad) > 0 {
		warn = fmt.Sprintf("kept %s; owner unknown: %s", s, strings.Join(bad, ", "))
	}
	return s, true, warn, nil
}

// parseHexAddrPort parses "0100007F:1F90": the address as the kernel's 32-bit words printed in
// host byte order, the port as big-endian hex.
func parseHexAddrPort(b []byte, fam observed.Family) (netip.Addr, uint16, error) {
	i := bytes.IndexByte(b, ':')
	if i < 0 {
		return netip.Addr{}, 0, fmt.Errorf("%q has no ':'", clipBytes(b, 64))
	}
	hexAddr, hexPort := b[:i], b[i+1:]
	want := 8
	if fam == observed.IPv6 {
		want = 32
	}
	if len(hexAddr) != want {
		return netip.Addr{}, 0, fmt.Errorf("address %q: want %d hex digits", clipBytes(hexAddr, 64), want)
	}
	if len(hexPort) != 4 {
		return netip.Addr{}, 0, fmt.Errorf("port %q: want 4 hex digits", clipBytes(hexPort, 32))
	}
	var raw [16]byte
	if _, err := hex.Decode(raw[:want/2], hexAddr); err != nil {
		return netip.Addr{}, 0, fmt.Errorf("address %q is not hex", clipBytes(hexAddr, 64))
	}
	// Each 32-bit word was printed as a host-order integer: undo that per word.
	for w := 0; w < want/8; w++ {
		word := binary.BigEndian.Uint32(raw[w*4:])
		binary.NativeEndian.PutUint32(raw[w*4:], word)
	}
	var pb [2]byte
	if _, err := hex.Decode(pb[:], hexPort); err != nil {
		return netip.Addr{}, 0, fmt.Errorf("port %q is not hex", clipBytes(hexPort, 32))
	}
	port := binary.BigEndian.Uint16(pb[:])
	if fam == observed.IPv4 {
		return netip.AddrFrom4([4]byte(raw[:4])), port, nil
	}
	return netip.AddrFrom16(raw), port, nil
}

// clipBytes shortens b for an error message.
func clipBytes(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
