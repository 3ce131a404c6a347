package monitor

import "github.com/bindguard/bindguard/internal/kernel"

// CgroupPaths resolves a kernel event's cgroup id to its path under the cgroup2 mount
// (HostResolver.CgroupPath); nil when there is no cgroup2 mount.
func CgroupPaths() func(id uint64) (string, error) {
	mount, err := kernel.FindCgroup2()
	if err != nil {
		return nil
	}
	return func(id uint64) (string, error) { return kernel.CgroupPath(mount, id) }
}
