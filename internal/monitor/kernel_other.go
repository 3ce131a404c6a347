//go:build !linux

package monitor

// CgroupPaths is nil where there is no cgroup2: HostResolver then leaves a gone process's unit
// and container empty.
func CgroupPaths() func(id uint64) (string, error) { return nil }

// monotonicNow is 0 where there are no kernel events: every event counts as after it.
func monotonicNow() int64 { return 0 }
