// Package proc reads /proc: which process owns each socket inode (scanning /proc/*/fd in
// parallel, with a bounded number of workers), what that process is (name, executable, user,
// systemd unit, container), and which network namespaces exist on the host.
//
// The /proc root is a parameter so that tests can point at fixture trees. Processes that vanish
// mid-scan are skipped; directories the caller may not read are counted (Owners.Denied), never
// an error: without privilege the answer is "owner unknown", not a failed audit.
package proc

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// DefaultRoot is where procfs is mounted.
const DefaultRoot = "/proc"

// Process is what bindguard reports about a socket's owner. Fields it could not read are empty.
type Process struct {
	PID  int    `json:"pid"`
	Name string `json:"name"`
	Exe  string `json:"exe"`
	// User is the login name of the real uid, or the uid as a number when it has no name.
	User string `json:"user"`
	UID  int    `json:"-"`
	// Unit is the innermost systemd unit in the process's cgroup (.service or .scope).
	Unit string `json:"unit"`
	// Container is a container id (Docker, Podman, containerd, CRI-O; 12 hex digits) or an
	// LXC container name, from the cgroup.
	Container string `json:"container"`
}

// Label is "name (pid N, unit U)" for messages.
func (p Process) Label() string {
	var b strings.Builder
	b.WriteString(cmp.Or(p.Name, "?"))
	fmt.Fprintf(&b, " (pid %d", p.PID)
	if p.Unit != "" && (p.Container == "" || !strings.Contains(p.Unit, p.Container)) {
		fmt.Fprintf(&b, ", unit %s", p.Unit)
	}
	if p.Container != "" {
		fmt.Fprintf(&b, ", container %s", p.Container)
	}
	b.WriteString(")")
	return b.String()
}

// Owners maps socket inodes to the processes holding them.
type Owners struct {
	// ByInode lists, for each wanted inode, the pids holding it, ascending.
	ByInode map[uint64][]int
	// Procs describes every pid in ByInode.
	Procs map[int]Process
	// Scanned counts the processes whose fd tables were read; Denied those that could not be
	// read for lack of privilege.
	Scanned, Denied int
}

// Owner returns the lowest-numbered process holding inode (for a forking server, usually the
// parent), and whether there is one.
func (o *Owners) Owner(inode uint64) (Process, bool) {
	pids := o.ByInode[inode]
	if len(pids) == 0 {
		return Process{}, false
	}
	return o.Procs[pids[0]], true
}

// All returns every process holding inode, by pid.
func (o *Owners) All(inode uint64) []Process {
	pids := o.ByInode[inode]
	out := make([]Process, 0, len(pids))
	for _, pid := range pids {
		out = append(out, o.Procs[pid])
	}
	return out
}

// Scanner scans a /proc tree.
type Scanner struct {
	// Root is the procfs mount, DefaultRoot when empty.
	Root string
	// Workers bounds the parallel scan; 0 means twice GOMAXPROCS, at most 16.
	Workers int
	// Users maps uids to names; nil uses the system's user database.
	Users func(uid int) string
}

func (s *Scanner) root() string { return cmp.Or(s.Root, DefaultRoot) }

// Owners scans every /proc/PID/fd for the socket inodes in want and reads the processes that
// hold them. It fails only when the /proc root itself cannot be listed.
func (s *Scanner) Owners(want map[uint64]bool) (*Owners, error) {
	root := s.root()
	pids, err := listPIDs(root)
	if err != nil {
		return nil, err
	}
	workers := s.Workers
	if workers <= 0 {
		workers = min(2*runtime.GOMAXPROCS(0), 16)
	}
	workers = min(workers, max(len(pids), 1))

	users := s.Users
	if users == nil {
		users = newUserCache()
	}
	type result struct {
		pid    int
		proc   Process
		inodes []uint64
		read   bool
		denied bool
	}
	results := make([]result, len(pids))
	var next, wg = make(chan int, workers), sync.WaitGroup{}
	for range workers {
		wg.Go(func() {
			buf := make([]byte, 64)
			for i := range next {
				r := &results[i]
				r.pid = pids[i]
				dir := filepath.Join(root, strconv.Itoa(pids[i]))
				r.inodes, r.read, r.denied = scanFDs(filepath.Join(dir, "fd"), want, buf)
				if len(r.inodes) > 0 {
					r.proc = s.readProcess(r.pid)
				}
			}
		})
	}
	for i := range pids {
		next <- i
	}
	close(next)
	wg.Wait()

	o := &Owners{ByInode: map[uint64][]int{}, Procs: map[int]Process{}}
	for _, r := range results {
		if r.read {
			o.Scanned++
		}
		if r.denied {
			o.Denied++
		}
		if len(r.inodes) == 0 {
			continue
		}
		for _, ino := range r.inodes {
			o.ByInode[ino] = append(o.ByInode[ino], r.pid)
		}
		// User names are looked up here, in one goroutine, through the cache.
		if r.proc.UID >= 0 {
			r.proc.User = users(r.proc.UID)
		}
		o.Procs[r.pid] = r.proc
	}
	for _, v := range o.ByInode {
		slices.Sort(v)
	}
	return o, nil
}

// listPIDs returns the numeric entries of root, ascending.
func listPIDs(root string) ([]int, error) {
	d, err := os.Open(root) // #nosec G304 -- the procfs root is an operator option
	if err != nil {
		return nil, fmt.Errorf("proc: %w", err)
	}
	defer func() { _ = d.Close() }()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("proc: list %s: %w", root, err)
	}
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil && pid > 0 && n[0] != '0' && n[0] != '+' {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// scanFDs reads the fd directory and returns the wanted socket inodes it holds. read is false
// when the directory could not be listed; denied says that was for lack of permission. It uses
// raw system calls (open, getdents64, readlinkat): at thousands of processes the os.File
// bookkeeping (fcntl, epoll registration) would add a fifth to the system calls.
func scanFDs(fdDir string, want map[uint64]bool, buf []byte) (inodes []uint64, read, denied bool) {
	fd, err := unix.Open(fdDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false, err == unix.EACCES || err == unix.EPERM
	}
	defer func() { _ = unix.Close(fd) }()
	var dents [8192]byte
	for {
		n, err := unix.Getdents(fd, dents[:])
		if err != nil {
			return inodes, false, err == unix.EACCES || err == unix.EPERM
		}
		if n <= 0 {
			return inodes, true, false
		}
		for off := 0; off+19 <= n; {
			// struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, char name[]
			reclen := int(binary.NativeEndian.Uint16(dents[off+16:]))
			if reclen < 19 || off+reclen > n {
				return inodes, false, false
			}
			name := dents[off+19 : off+reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			off += reclen
			if len(name) == 0 || name[0] == '.' {
				continue
			}
			k, err := unix.Readlinkat(fd, string(name), buf)
			if err != nil || k >= len(buf) {
				continue // closed since listed, or not a socket link
			}
			if ino, ok := socketInode(buf[:k]); ok && want[ino] {
				inodes = append(inodes, ino)
			}
		}
	}
}

// socketInode parses "socket:[12345]".
func socketInode(link []byte) (uint64, bool) { return bracketNumber(link, "socket:[") }

// netnsInode reads PID/ns/net ("net:[4026531840]"); 0 when it cannot.
func netnsInode(pidDir string, buf []byte) uint64 {
	k, err := unix.Readlink(filepath.Join(pidDir, "ns", "net"), buf)
	if err != nil || k >= len(buf) {
		return 0
	}
	n, _ := bracketNumber(buf[:k], "net:[")
	return n
}

// bracketNumber parses the N of a /proc link target "PREFIXN]", such as "socket:[N]".
func bracketNumber(link []byte, prefix string) (uint64, bool) {
	if len(link) < len(prefix)+2 || string(link[:len(prefix)]) != prefix || link[len(link)-1] != ']' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(link[len(prefix):len(link)-1]), 10, 64)
	return n, err == nil
}

// maxSmallFile bounds the /proc files read for a process (comm, status, cgroup).
const maxSmallFile = 64 << 10

func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path) // #nosec G304 -- a path under the procfs root
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	return io.ReadAll(io.LimitReader(f, maxSmallFile))
}

// readProcess reads what can be read about pid; missing pieces stay empty.
func (s *Scanner) readProcess(pid int) Process {
	dir := filepath.Join(s.root(), strconv.Itoa(pid))
	p := Process{PID: pid, UID: -1}
	if b, err := readSmall(filepath.Join(dir, "comm")); err == nil {
		p.Name = sanitize(strings.TrimSuffix(string(b), "\n"))
	}
	if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		p.Exe = sanitize(strings.TrimSuffix(exe, " (deleted)"))
	}
	if b, err := readSmall(filepath.Join(dir, "status")); err == nil {
		if uid, ok := parseStatusUID(b); ok {
			p.UID = uid
		}
	}
	if b, err := readSmall(filepath.Join(dir, "cgroup")); err == nil {
		p.Unit, p.Container = ParseCgroup(b)
	}
	return p
}

// parseStatusUID returns the real uid from a /proc/PID/status "Uid:" line.
func parseStatusUID(b []byte) (int, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("Uid:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return 0, false
		}
		uid, err := strconv.ParseUint(string(f[0]), 10, 32)
		return int(uid), err == nil
	}
	return 0, false
}

// sanitize replaces control characters, bidirectional overrides and invalid UTF-8, so a process cannot forge report
// lines or terminal escapes through its name.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0xFFFD ||
			(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x2028 || r == 0x2029 {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}
