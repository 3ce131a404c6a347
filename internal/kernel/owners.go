package kernel

import "errors"

// SocketFD is one socket file held by a process, as the owner scan (SocketFDs) found it.
type SocketFD struct {
	// PID is the process (thread-group leader) as bindguard's own pid namespace numbers it.
	PID uint32
	// FD is the file descriptor number in that process.
	FD uint32
	// Inode is the socket's inode (the number in /proc/PID/fd/FD's "socket:[N]").
	Inode uint64
}

// ErrSocketScan wraps every reason the kernel-side owner scan could not run.
var ErrSocketScan = errors.New("kernel socket scan unavailable")
