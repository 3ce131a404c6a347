//go:build !linux

package monitor

// CgroupPaths is nil where there is no cgroup2: HostResolver then leaves a gone process's unit
// and container empty.
func CgroupPaths() func(id uint64) (string, error) { return nil }
