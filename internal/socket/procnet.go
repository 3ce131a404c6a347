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
	// Warnings are conditions that do not make the result wrong, such as ErrNoIPv6.
	Warnings []error
}

// ReadProcNet reads the listening sockets from the tcp, tcp6, udp and udp6 tables in dir
// (normally /proc/net or /proc/PID/net). It fails when a table cannot be read or has no header
// line: an unreadable table must never read as "nothing listens". A missing tcp6 or udp6 table
// is a warning (ErrNoIPv6), since kernels booted with ipv6.disable=1 have none.
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
// listening sockets (TCP in LISTEN, UDP unconnected) to res. Malformed lines are recorded in
// res and skipped. It fails when r cannot be read, is empty, or its first line is not the
// table header.
func ParseProcNet(r io.Reader, name string, t Table, res *ProcNetResult) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxLine)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if line == 1 {
			if f := bytes.Fields(b); len(f) < 2 || string(f[0]) != "sl" || string(f[1]) != "local_address" {
				return fmt.Errorf("procnet: %s:1: not a /proc/net socket table (header %q)", name, clipBytes(b, 64))
			}
			continue
		}
		s, ok, err := parseProcNetLine(b, t)
		if err != nil {
			res.Skipped++
			if len(res.Problems) < MaxLineProblems {
				res.Problems = append(res.Problems, &LineError{File: name, Line: line, Msg: err.Error()})
			}
			continue
		}
		if ok {
			res.Sockets = append(res.Sockets, s)
		}
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

// parseProcNetLine parses one table row. ok is false for sockets that do not listen.
func parseProcNetLine(b []byte, t Table) (s observed.Socket, ok bool, err error) {
	f := bytes.Fields(b)
	if len(f) < 10 {
		return s, false, fmt.Errorf("%d fields, want at least 10", len(f))
	}
	if len(f[0]) < 2 || f[0][len(f[0])-1] != ':' {
		return s, false, fmt.Errorf("slot %q does not end in ':'", clipBytes(f[0], 32))
	}
	local, lport, err := parseHexAddrPort(f[1], t.Family)
	if err != nil {
		return s, false, fmt.Errorf("local_address: %w", err)
	}
	remote, rport, err := parseHexAddrPort(f[2], t.Family)
	if err != nil {
		return s, false, fmt.Errorf("rem_address: %w", err)
	}
	st, err := strconv.ParseUint(string(f[3]), 16, 8)
	if err != nil || len(f[3]) != 2 {
		return s, false, fmt.Errorf("state %q is not two hex digits", clipBytes(f[3], 32))
	}
	uid, err := strconv.ParseUint(string(f[7]), 10, 32)
	if err != nil {
		return s, false, fmt.Errorf("uid %q is not a number", clipBytes(f[7], 32))
	}
	inode, err := strconv.ParseUint(string(f[9]), 10, 64)
	if err != nil {
		return s, false, fmt.Errorf("inode %q is not a number", clipBytes(f[9], 32))
	}
	switch t.Protocol {
	case observed.TCP:
		if st != stateListen {
			return s, false, nil
		}
	case observed.UDP:
		if st != stateClose || !remote.IsUnspecified() || rport != 0 {
			return s, false, nil
		}
	}
	s = observed.Socket{Protocol: t.Protocol, Family: t.Family, Addr: local, Port: lport, UID: uint32(uid), Inode: inode, V6Only: observed.V6OnlyNA}
	if t.Family == observed.IPv6 {
		s.V6Only = observed.V6OnlyUnknown
	}
	return s, true, nil
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
