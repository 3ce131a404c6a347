//go:build !linux

package kernel

import (
	"context"
	"fmt"
)

// Watcher reads socket events from the kernel; it needs Linux.
type Watcher struct{}

// OpenWatcher fails: the kernel event source needs Linux.
func OpenWatcher(WatchOptions) (*Watcher, error) {
	return nil, fmt.Errorf("%w: BPF needs Linux", ErrUnavailable)
}

// Read is never reached: OpenWatcher fails on this system.
func (*Watcher) Read(context.Context) (Event, error) {
	return Event{}, fmt.Errorf("%w: BPF needs Linux", ErrUnavailable)
}

// Lost is 0: nothing is read on this system.
func (*Watcher) Lost() uint64 { return 0 }

// Close does nothing on this system.
func (*Watcher) Close() error { return nil }
