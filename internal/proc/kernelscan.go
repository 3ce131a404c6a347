package proc

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/bindguard/bindguard/internal/kernel"
	"github.com/bindguard/bindguard/internal/observed"
)

// The kernel-side owner scan lives in internal/kernel (kernel.SocketFDs): a BPF task_file
// iterator that lists every socket every process holds, with pids as bindguard's own pid
// namespace numbers them. This is its call site; the owners' details (name, exe, user, unit,
// container) still come from /proc, and a process that exited since the iterator saw it is
// dropped, as a /proc scan would drop it.

// kernelRecord is one socket held by a process.
type kernelRecord struct {
	tgid  uint32
	fd    uint32
	inode uint64
}

// ErrKernelScan wraps every reason the kernel-side scan could not run.
var ErrKernelScan = kernel.ErrSocketScan

// openKernelScanner loads the kernel scan's program. Its pids are those of bindguard's pid
// namespace; it refuses when /proc is another namespace's (a /proc mounted outside a
// container), whose pids would not name the same processes.
func openKernelScanner() (*kernel.SocketScanner, error) {
	self, err := os.Readlink(filepath.Join(DefaultRoot, "self"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKernelScan, err)
	}
	if self != strconv.Itoa(os.Getpid()) {
		return nil, fmt.Errorf("%w: %s/self is %s, getpid %d: /proc belongs to another pid namespace", ErrKernelScan, DefaultRoot, self, os.Getpid())
	}
	return kernel.NewSocketScanner()
}

// kernelRecords runs a loaded kernel scan once.
func kernelRecords(sc *kernel.SocketScanner) ([]kernelRecord, error) {
	fds, err := sc.Scan()
	if err != nil {
		return nil, err
	}
	recs := make([]kernelRecord, len(fds))
	for i, f := range fds {
		recs[i] = kernelRecord{tgid: f.PID, fd: f.FD, inode: f.Inode}
	}
	return recs, nil
}

// kernelSockets loads the kernel scan, runs it once and frees it.
func kernelSockets() ([]kernelRecord, error) {
	sc, err := openKernelScanner()
	if err != nil {
		return nil, err
	}
	defer func() { _ = sc.Close() }()
	return kernelRecords(sc)
}

// An early owner scan (StartOwnerScan) runs the kernel part of the next /proc owner scan in
// the background, so that loading the program (the kernel's BTF, relocation, the verifier)
// and the walk overlap with reading the sockets instead of following it. When Owners asks
// (gives the wanted sockets) while the kernel still walks, the processes already seen holding
// one are read from /proc meanwhile, by a few workers.
type earlyScan struct {
	scan OwnerScan
	done chan struct{}
	// Set before done is closed: tried says the kernel scan was attempted (OwnerScanBPF, or
	// auto with at least KernelScanMinProcs processes); recs or err is its result; sc is the
	// loaded program, kept for a second walk, nil when loading failed.
	tried bool
	procs int // the processes auto counted to choose the kernel scan (0: not counted)
	recs  []kernelRecord
	err   error
	sc    *kernel.SocketScanner

	// want is the sockets Owners asks about, once it has; details are the processes read
	// during the walk, by pid (complete when done is closed).
	want    atomic.Pointer[map[uint64]bool]
	mu      sync.Mutex
	details map[int]procDetails
}

// procDetails is what collect reads about one process.
type procDetails struct {
	p    observed.Process
	gone bool
	mnt  string // its mount namespace link
}

// readDetails reads what collect needs about pid.
func (s *Scanner) readDetails(pid int, r *procReader) procDetails {
	var d procDetails
	d.p, d.gone = s.readProcess(pid, r)
	if !d.gone {
		d.mnt = r.link(filepath.Join(s.root(), strconv.Itoa(pid), "ns", "mnt"))
	}
	return d
}

// walk runs the kernel scan, reading the wanted owners' details as their records arrive.
func (e *earlyScan) walk() {
	if e.sc, e.err = openKernelScanner(); e.err != nil {
		return
	}
	var (
		queue chan int
		wg    sync.WaitGroup
		next  int
		seen  = map[uint32]bool{}
	)
	dispatch := func() {
		want := e.want.Load()
		if want == nil {
			return
		}
		if queue == nil {
			queue = make(chan int, earlyQueue)
			e.details = map[int]procDetails{}
			for range max(1, runtime.GOMAXPROCS(0)-1) { // the walk, the critical path, keeps a CPU
				wg.Go(func() {
					s, r := &Scanner{}, newProcReader()
					for pid := range queue {
						d := s.readDetails(pid, r)
						e.mu.Lock()
						e.details[pid] = d
						e.mu.Unlock()
					}
				})
			}
		}
		for ; next < len(e.recs); next++ {
			r := e.recs[next]
			if (*want)[r.inode] && !seen[r.tgid] {
				seen[r.tgid] = true
				select {
				case queue <- int(r.tgid):
				default: // the queue is full: collect reads it
				}
			}
		}
	}
	e.err = e.sc.ScanEach(func(batch []kernel.SocketFD) {
		for _, f := range batch {
			e.recs = append(e.recs, kernelRecord{tgid: f.PID, fd: f.FD, inode: f.Inode})
		}
		dispatch()
	})
	if queue != nil {
		close(queue)
		wg.Wait()
	}
	if e.err != nil {
		e.recs, e.details = nil, nil
	}
}

// earlyQueue bounds the processes waiting to be read during the walk.
const earlyQueue = 4096

// pendingScan is the early scan not yet taken by Owners; one at a time.
var pendingScan struct {
	sync.Mutex
	e *earlyScan
}

// StartOwnerScan starts the kernel part of the owner scan that the next Scanner.Owners of
// /proc with the same OwnerScan (empty: auto) will need, and returns a function that discards
// it if Owners did not take it. It is for a command that audits once: call it before reading
// the sockets, and call the returned function when done. Owners then takes the early walk's
// sockets, and walks again when one of the sockets it is asked about is not in them (opened
// after the early walk), so every socket it reports was held during the audit. Owners of
// another root, with OwnerScanProcfs, or with test hooks never take it.
func StartOwnerScan(scan OwnerScan) (discard func()) {
	if scan == "" {
		scan = OwnerScanAuto
	}
	if scan == OwnerScanProcfs {
		return func() {}
	}
	e := &earlyScan{scan: scan, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		if scan == OwnerScanAuto {
			pids, err := listPIDs(DefaultRoot)
			if err != nil || len(pids) < KernelScanMinProcs {
				return // Owners decides, and lists /proc again
			}
			e.procs = len(pids)
		}
		e.tried = true
		e.walk()
	}()
	pendingScan.Lock()
	old := pendingScan.e
	pendingScan.e = e
	pendingScan.Unlock()
	if old != nil {
		old.close()
	}
	return func() {
		pendingScan.Lock()
		mine := pendingScan.e == e
		if mine {
			pendingScan.e = nil
		}
		pendingScan.Unlock()
		if mine {
			e.close()
		}
	}
}

// takeEarlyScan returns the pending early scan for scan, once it is done, or nil. want is
// what the caller will ask: processes holding those sockets are read while the walk goes on.
func takeEarlyScan(scan OwnerScan, want map[uint64]bool) *earlyScan {
	pendingScan.Lock()
	e := pendingScan.e
	if e != nil && e.scan == scan {
		pendingScan.e = nil
	} else {
		e = nil
	}
	pendingScan.Unlock()
	if e != nil {
		e.want.Store(&want)
		<-e.done
	}
	return e
}

// close waits for the early scan and frees its program.
func (e *earlyScan) close() {
	<-e.done
	if e.sc != nil {
		_ = e.sc.Close()
	}
}

// records is the early scan's result for want: its walk when every wanted inode is in it, with
// the details of the processes read during the walk; else a second walk with the loaded
// program, and no details (the processes are read again after it).
func (e *earlyScan) records(want map[uint64]bool) ([]kernelRecord, map[int]procDetails, error) {
	if e.err != nil {
		return nil, nil, e.err
	}
	seen := make(map[uint64]bool, len(want))
	for _, r := range e.recs {
		if want[r.inode] {
			seen[r.inode] = true
		}
	}
	if len(seen) == len(want) {
		return e.recs, e.details, nil
	}
	recs, err := kernelRecords(e.sc)
	return recs, nil, err
}
