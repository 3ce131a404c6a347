package monitor

import (
	"golang.org/x/sys/unix"

	"github.com/bindguard/bindguard/internal/kernel"
)

// CgroupPaths resolves a kernel event's cgroup id to its path under the cgroup2 mount
// (HostResolver.CgroupPath); nil when there is no cgroup2 mount.
func CgroupPaths() func(id uint64) (string, error) {
	mount, err := kernel.FindCgroup2()
	if err != nil {
		return nil
	}
	return func(id uint64) (string, error) { return kernel.CgroupPath(mount, id) }
}

// monotonicNow is CLOCK_MONOTONIC in nanoseconds, the clock of kernel.Event.Monotonic; 0 if it
// cannot be read (then every event counts as after it).
func monotonicNow() int64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return 0
	}
	return ts.Nano()
}
