package proc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/bindguard/bindguard/internal/kernel"
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

// kernelSockets runs the kernel scan. Its pids are those of bindguard's pid namespace; it
// refuses when /proc is another namespace's (a /proc mounted outside a container), whose pids
// would not name the same processes.
func kernelSockets() ([]kernelRecord, error) {
	self, err := os.Readlink(filepath.Join(DefaultRoot, "self"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKernelScan, err)
	}
	if self != strconv.Itoa(os.Getpid()) {
		return nil, fmt.Errorf("%w: %s/self is %s, getpid %d: /proc belongs to another pid namespace", ErrKernelScan, DefaultRoot, self, os.Getpid())
	}
	fds, err := kernel.SocketFDs()
	if err != nil {
		return nil, err
	}
	recs := make([]kernelRecord, len(fds))
	for i, f := range fds {
		recs[i] = kernelRecord{tgid: f.PID, fd: f.FD, inode: f.Inode}
	}
	return recs, nil
}
