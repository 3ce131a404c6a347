package kernel

import (
	"errors"
	"log/slog"
)

// ErrUnavailable is wrapped by every error of OpenWatcher: the kernel event source cannot run
// here, and the error says why (not root, no BTF, a program the kernel refuses, no cgroup2,
// not Linux). A daemon falls back to polling and reports the reason.
var ErrUnavailable = errors.New("kernel event source unavailable")

// WatchOptions configures OpenWatcher.
type WatchOptions struct {
	// Cgroup is the cgroup2 directory the cgroup programs (UDP bind and release, and the
	// listen of a socket that called listen() without bind()) attach to; they see sockets
	// created by processes in it and below it. Empty means the root of the cgroup2 mount
	// (FindCgroup2), which sees every socket: what production wants. Tests pass a cgroup of
	// their own.
	Cgroup string
	// RingBufferBytes is the ring buffer's size: a power of two, a multiple of the page
	// size. Zero means 1 MiB (about 13,000 events). When it is full, events are lost and
	// counted (Watcher.Lost).
	RingBufferBytes uint32
	// Logger receives debug messages about what was attached; nil discards them.
	Logger *slog.Logger
}
