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
	"cmp"
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
	"syscall"

	"github.com/bindguard/bindguard/internal/cgroup"
	"github.com/bindguard/bindguard/internal/observed"
)

// DefaultRoot is where procfs is mounted.
const DefaultRoot = "/proc"

// Owners maps socket inodes to the processes holding them.
type Owners struct {
	// ByInode lists, for each wanted inode, the pids holding it, ascending.
	ByInode map[uint64][]int
	// Procs describes every pid in ByInode.
	Procs map[int]observed.Process
	// Scanned counts the processes whose fd tables were read (by the kernel scan: every
	// process); Denied those that could not be read for lack of privilege.
	Scanned, Denied int
	// Method is the owner scan that ran: OwnerScanProcfs or OwnerScanBPF.
	Method OwnerScan
	// KernelErr, when OwnerScanAuto tried the kernel scan and fell back to /proc, says why the
	// kernel scan could not run.
	KernelErr error

	mu   sync.Mutex
	slab []observed.Process // what All hands out
}

// Owner returns the lowest-numbered process holding inode (for a forking server, usually the
// parent), and whether there is one.
func (o *Owners) Owner(inode uint64) (observed.Process, bool) {
	pids := o.ByInode[inode]
	if len(pids) == 0 {
		return observed.Process{}, false
	}
	return o.Procs[pids[0]], true
}

// All returns every process holding inode, by pid. Each call returns a slice of its own.
func (o *Owners) All(inode uint64) []observed.Process {
	pids := o.ByInode[inode]
	o.mu.Lock()
	defer o.mu.Unlock()
	// Carved from a slab (an audit asks for every socket's owners: one allocation per
	// socket otherwise); the capacity is cut, so an append copies instead of overwriting.
	if cap(o.slab)-len(o.slab) < len(pids) {
		o.slab = make([]observed.Process, 0, max(256, len(pids)))
	}
	start := len(o.slab)
	for _, pid := range pids {
		o.slab = append(o.slab, o.Procs[pid])
	}
	return o.slab[start:len(o.slab):len(o.slab)]
}

// Scanner scans a /proc tree.
type Scanner struct {
	// Root is the procfs mount, DefaultRoot when empty.
	Root string
	// Workers bounds the parallel scan; 0 means twice GOMAXPROCS, at most 16.
	Workers int
	// Users and Groups map the uids and gids of processes in bindguard's own mount namespace
	// to names; nil uses the system's databases. Processes of other mount namespaces
	// (containers) are named from their own root's /etc/passwd and /etc/group.
	Users, Groups func(id int) string
	// Scan chooses the owner scan; empty is OwnerScanAuto.
	Scan OwnerScan

	// kernelScan and kernelMin replace kernelSockets and KernelScanMinProcs in tests.
	kernelScan func() ([]kernelRecord, error)
	kernelMin  int
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
	scan := cmp.Or(s.Scan, OwnerScanAuto)
	realProc := filepath.Clean(root) == DefaultRoot
	var (
		early *earlyScan
		read  map[int]procDetails // owners read during the early walk
	)
	if realProc && s.kernelScan == nil && s.kernelMin == 0 && slices.Contains(OwnerScans(), scan) {
		early = takeEarlyScan(scan, want)
	}
	if early != nil && early.tried {
		defer early.close()
	}
	// An early auto scan listed /proc to choose the kernel scan: its count stands for this
	// listing unless /proc has to be scanned after all (listing 2,000 processes costs as
	// much CPU as loading the program, taken from the walk on a small machine).
	var pids []int
	procs := 0
	if early != nil && early.tried && early.procs > 0 {
		procs = early.procs
	} else {
		var err error
		if pids, err = listPIDs(root); err != nil {
			return nil, err
		}
		procs = len(pids)
	}
	if !slices.Contains(OwnerScans(), scan) {
		return nil, fmt.Errorf("proc: unknown owner scan %q", scan)
	}
	if scan == OwnerScanBPF && !realProc {
		return nil, fmt.Errorf("proc: the bpf owner scan reads the kernel, not %s", root)
	}
	var kernelErr error
	kernelScan, kernelMin := s.kernelScan, KernelScanMinProcs
	if kernelScan == nil {
		kernelScan = kernelSockets
	}
	if s.kernelMin > 0 {
		kernelMin = s.kernelMin
	}
	if early != nil && early.tried {
		kernelScan = func() (recs []kernelRecord, err error) {
			recs, read, err = early.records(want)
			return recs, err
		}
	}
	if (early != nil && early.tried) || scan == OwnerScanBPF || (scan == OwnerScanAuto && realProc && procs >= kernelMin) {
		recs, err := kernelScan()
		if err == nil {
			o := s.collect(kernelHolders(recs, want), read)
			o.Scanned, o.Method = procs, OwnerScanBPF
			return o, nil
		}
		if scan == OwnerScanBPF {
			return nil, err
		}
		kernelErr = err
	}
	if pids == nil {
		var err error
		if pids, err = listPIDs(root); err != nil {
			return nil, err
		}
	}
	o := s.collect(procfsHolders(root, pids, want, s.workers(len(pids))), nil)
	o.Method, o.KernelErr = OwnerScanProcfs, kernelErr
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
	parallelWith(n, workers, func() []byte { return make([]byte, 64) }, fn)
}

// parallelWith runs fn(i, w) for i in [0, n) on workers goroutines, each with its own w.
func parallelWith[W any](n, workers int, newW func() W, fn func(i int, w W)) {
	next, wg := make(chan int, workers), sync.WaitGroup{}
	for range workers {
		wg.Go(func() {
			w := newW()
			for i := range next {
				fn(i, w)
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

// collect reads the processes that hold wanted sockets and builds the result; read has the
// processes already read.
func (s *Scanner) collect(res []holders, read map[int]procDetails) *Owners {
	names := s.newNamer()
	var owning []int
	for i := range res {
		if len(res[i].inodes) > 0 {
			owning = append(owning, i)
		}
	}
	procs := make([]observed.Process, len(owning))
	gone := make([]bool, len(owning))
	mnts := make([]string, len(owning))
	var unread []int // indexes into owning
	for i, idx := range owning {
		if d, ok := read[res[idx].pid]; ok {
			procs[i], gone[i], mnts[i] = d.p, d.gone, d.mnt
		} else {
			unread = append(unread, i)
		}
	}
	parallelWith(len(unread), s.workers(len(unread)), newProcReader, func(k int, r *procReader) {
		i := unread[k]
		d := s.readDetails(res[owning[i]].pid, r)
		procs[i], gone[i], mnts[i] = d.p, d.gone, d.mnt
	})

	o := &Owners{ByInode: map[uint64][]int{}, Procs: map[int]observed.Process{}}
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
		// Names are looked up here, in one goroutine, through the caches.
		p := procs[i]
		names.nameIn(&p, mnts[i])
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

// socketInode parses "socket:[12345]".
func socketInode(link []byte) (uint64, bool) { return bracketNumber(link, "socket:[") }

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

// procReader is one worker's buffers for readProcess, and its cache of parsed cgroup files:
// the processes of one service, or of one container, share the same file.
type procReader struct {
	file, name []byte
	cgroups    map[string]cgroupInfo
}

type cgroupInfo struct{ unit, container string }

func newProcReader() *procReader {
	return &procReader{file: make([]byte, 0, 4096), name: make([]byte, 0, 256), cgroups: map[string]cgroupInfo{}}
}

// read reads a small /proc file into the reader's buffer; the result is valid until the next read.
func (r *procReader) read(path string) ([]byte, error) {
	b, err := readSmallInto(path, r.file[:0])
	if cap(b) > cap(r.file) {
		r.file = b[:0]
	}
	return b, err
}

// link reads a symbolic link; "" when it cannot.
func (r *procReader) link(path string) string {
	s, _ := r.readlink(path)
	return s
}

func (r *procReader) readlink(path string) (string, error) {
	buf := r.name[:cap(r.name)]
	n, err := readlinkInto(path, buf)
	if err != nil {
		return "", err
	}
	if n >= len(buf) { // perhaps truncated: let os.Readlink size it
		return os.Readlink(path)
	}
	return string(buf[:n]), nil
}

// cgroup parses a cgroup file, once per distinct content.
func (r *procReader) cgroup(b []byte) (unit, container string) {
	if c, ok := r.cgroups[string(b)]; ok {
		return c.unit, c.container
	}
	unit, container = cgroup.Parse(b)
	if len(r.cgroups) < maxCachedCgroups {
		r.cgroups[string(b)] = cgroupInfo{unit, container}
	}
	return unit, container
}

// maxCachedCgroups bounds a worker's cgroup cache.
const maxCachedCgroups = 1024

// readProcess reads what can be read about pid; missing pieces stay empty. gone says the
// process no longer exists.
func (s *Scanner) readProcess(pid int, r *procReader) (p observed.Process, gone bool) {
	dir := filepath.Join(s.root(), strconv.Itoa(pid))
	p = observed.Process{PID: pid, UID: -1, GID: -1}
	b, err := r.read(filepath.Join(dir, "comm"))
	switch {
	case err == nil:
		p.Name = cgroup.Sanitize(strings.TrimSuffix(string(b), "\n"))
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH):
		return p, true
	}
	if exe, err := r.readlink(filepath.Join(dir, "exe")); err == nil {
		p.Exe = cgroup.Sanitize(strings.TrimSuffix(exe, " (deleted)"))
	}
	if b, err := r.read(filepath.Join(dir, "status")); err == nil {
		st := parseStatus(b)
		p.UID, p.GID = st.uid, st.gid
		if st.nspid != 0 && st.nspid != pid {
			p.ContainerPID = st.nspid
		}
	}
	if b, err := r.read(filepath.Join(dir, "cgroup")); err == nil {
		p.Unit, p.Container = r.cgroup(b)
	}
	return p, false
}
