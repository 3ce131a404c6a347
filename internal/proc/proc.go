// Package proc reads /proc: which process owns each socket inode (scanning /proc/*/fd in
// parallel, with a bounded number of workers, or, on large hosts, walking open files in the
// kernel with a BPF iterator: kernelscan.go), what that process is (name, executable, user,
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
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/bindguard/bindguard/internal/cgroup"
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
	// Scanned counts the processes whose fd tables were read (by the kernel scan: every
	// process); Denied those that could not be read for lack of privilege.
	Scanned, Denied int
	// Method is the owner scan that ran: OwnerScanProcfs or OwnerScanBPF.
	Method OwnerScan
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
	// Scan chooses the owner scan; empty is OwnerScanAuto.
	Scan OwnerScan
	// KernelErr is set by Owners when OwnerScanAuto tried the kernel scan and fell back to
	// /proc: why the kernel scan could not run.
	KernelErr error
}

func (s *Scanner) root() string { return cmp.Or(s.Root, DefaultRoot) }

// OwnerScan chooses how Owners finds the processes holding sockets.
type OwnerScan string

// The owner scans.
const (
	// OwnerScanAuto uses the kernel scan on hosts with at least KernelScanMinProcs processes
	// when it is available (root, a kernel with BTF and BPF iterators), and /proc otherwise.
	OwnerScanAuto OwnerScan = "auto"
	// OwnerScanProcfs reads every /proc/PID/fd link.
	OwnerScanProcfs OwnerScan = "procfs"
	// OwnerScanBPF walks open files in the kernel with a BPF task_file iterator, then reads
	// the owning processes from /proc; it is an error when that cannot run.
	OwnerScanBPF OwnerScan = "bpf"
)

// OwnerScans lists the owner scans.
func OwnerScans() []OwnerScan { return []OwnerScan{OwnerScanAuto, OwnerScanProcfs, OwnerScanBPF} }

// KernelScanMinProcs is the number of processes from which OwnerScanAuto tries the kernel
// scan: below it, loading the kernel's type information and the program (about 35 ms) costs
// more than the readlinks it saves. Measured: at 1,100 processes of 20 files both take 70 ms
// for a whole audit, at 2,100 the kernel scan is 0.7x of the /proc scan (docs/performance.md).
const KernelScanMinProcs = 1000

// Owners scans for the socket inodes in want and reads the processes that hold them. It fails
// only when the /proc root itself cannot be listed, or when OwnerScanBPF was asked for and
// cannot run.
func (s *Scanner) Owners(want map[uint64]bool) (*Owners, error) {
	root := s.root()
	pids, err := listPIDs(root)
	if err != nil {
		return nil, err
	}
	scan := cmp.Or(s.Scan, OwnerScanAuto)
	if !slices.Contains(OwnerScans(), scan) {
		return nil, fmt.Errorf("proc: unknown owner scan %q", scan)
	}
	realProc := filepath.Clean(root) == DefaultRoot
	if scan == OwnerScanBPF && !realProc {
		return nil, fmt.Errorf("proc: the bpf owner scan reads the kernel, not %s", root)
	}
	if scan == OwnerScanBPF || (scan == OwnerScanAuto && realProc && len(pids) >= KernelScanMinProcs) {
		recs, err := kernelSockets()
		if err == nil {
			o := s.collect(kernelHolders(recs, want))
			o.Scanned, o.Method = len(pids), OwnerScanBPF
			return o, nil
		}
		if scan == OwnerScanBPF {
			return nil, err
		}
		s.KernelErr = err
	}
	o := s.collect(procfsHolders(root, pids, want, s.workers(len(pids))))
	o.Method = OwnerScanProcfs
	return o, nil
}

func (s *Scanner) workers(n int) int {
	w := s.Workers
	if w <= 0 {
		w = min(2*runtime.GOMAXPROCS(0), 16)
	}
	return min(w, max(n, 1))
}

// holders is what one process was found to hold.
type holders struct {
	pid    int
	inodes []uint64
	read   bool
	denied bool
}

// parallel runs fn(i) for i in [0, n) on workers goroutines, each with its own 64-byte buffer.
func parallel(n, workers int, fn func(i int, buf []byte)) {
	next, wg := make(chan int, workers), sync.WaitGroup{}
	for range workers {
		wg.Go(func() {
			buf := make([]byte, 64)
			for i := range next {
				fn(i, buf)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// procfsHolders reads every /proc/PID/fd.
func procfsHolders(root string, pids []int, want map[uint64]bool, workers int) []holders {
	res := make([]holders, len(pids))
	parallel(len(pids), workers, func(i int, buf []byte) {
		r := &res[i]
		r.pid = pids[i]
		r.inodes, r.read, r.denied = scanFDs(filepath.Join(root, strconv.Itoa(pids[i]), "fd"), want, buf)
	})
	return res
}

// kernelHolders groups the kernel's records of wanted sockets by process.
func kernelHolders(recs []kernelRecord, want map[uint64]bool) []holders {
	byPID := map[int][]uint64{}
	for _, r := range recs {
		if want[r.inode] {
			byPID[int(r.tgid)] = append(byPID[int(r.tgid)], r.inode)
		}
	}
	res := make([]holders, 0, len(byPID))
	for _, pid := range slices.Sorted(maps.Keys(byPID)) {
		res = append(res, holders{pid: pid, inodes: byPID[pid], read: true})
	}
	return res
}

// collect reads the processes that hold wanted sockets and builds the result.
func (s *Scanner) collect(res []holders) *Owners {
	users := s.Users
	if users == nil {
		users = newUserCache()
	}
	var owning []int
	for i := range res {
		if len(res[i].inodes) > 0 {
			owning = append(owning, i)
		}
	}
	procs := make([]Process, len(owning))
	gone := make([]bool, len(owning))
	parallel(len(owning), s.workers(len(owning)), func(i int, _ []byte) {
		procs[i], gone[i] = s.readProcess(res[owning[i]].pid)
	})

	o := &Owners{ByInode: map[uint64][]int{}, Procs: map[int]Process{}}
	for _, r := range res {
		if r.read {
			o.Scanned++
		}
		if r.denied {
			o.Denied++
		}
	}
	for i, idx := range owning {
		if gone[i] {
			continue // exited since its sockets were seen: it holds nothing now
		}
		r := res[idx]
		for _, ino := range r.inodes {
			o.ByInode[ino] = append(o.ByInode[ino], r.pid)
		}
		// User names are looked up here, in one goroutine, through the cache.
		p := procs[i]
		if p.UID >= 0 {
			p.User = users(p.UID)
		}
		o.Procs[r.pid] = p
	}
	for _, v := range o.ByInode {
		slices.Sort(v)
	}
	return o
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
const maxSmallFile = cgroup.MaxFile

// readSmall reads a small /proc file whole, with raw system calls: os.Open's poller
// registration costs more than the read for files the kernel generates on open.
func readSmall(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer func() { _ = unix.Close(fd) }()
	buf := make([]byte, 0, 512)
	for len(buf) < maxSmallFile {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(cap(buf), maxSmallFile-len(buf)))
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			break
		}
		buf = buf[:len(buf)+n]
	}
	return buf, nil
}

// readProcess reads what can be read about pid; missing pieces stay empty. gone says the
// process no longer exists.
func (s *Scanner) readProcess(pid int) (p Process, gone bool) {
	dir := filepath.Join(s.root(), strconv.Itoa(pid))
	p = Process{PID: pid, UID: -1}
	b, err := readSmall(filepath.Join(dir, "comm"))
	switch {
	case err == nil:
		p.Name = cgroup.Sanitize(strings.TrimSuffix(string(b), "\n"))
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH):
		return p, true
	}
	if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		p.Exe = cgroup.Sanitize(strings.TrimSuffix(exe, " (deleted)"))
	}
	if b, err := readSmall(filepath.Join(dir, "status")); err == nil {
		if uid, ok := parseStatusUID(b); ok {
			p.UID = uid
		}
	}
	if b, err := readSmall(filepath.Join(dir, "cgroup")); err == nil {
		p.Unit, p.Container = cgroup.Parse(b)
	}
	return p, false
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
