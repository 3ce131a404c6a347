package kernel

import (
	"errors"
	"strings"
	"testing"
)

func TestCgroup2Mount(t *testing.T) {
	for _, tc := range []struct {
		name, mountinfo, want string
		err                   error
	}{
		{name: "hybrid", want: "/sys/fs/cgroup/unified", mountinfo: `25 30 0:23 / /sys rw,nosuid shared:7 - sysfs sysfs rw
26 25 0:24 / /sys/fs/cgroup rw shared:8 - tmpfs tmpfs rw,mode=755
27 26 0:25 / /sys/fs/cgroup/unified rw,nosuid shared:9 - cgroup2 cgroup2 rw
28 26 0:26 / /sys/fs/cgroup/systemd rw shared:10 - cgroup cgroup rw,name=systemd
`},
		{name: "unified", want: "/sys/fs/cgroup", mountinfo: "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n"},
		{name: "optional fields and escapes", want: "/run/my cgroup", mountinfo: "35 24 0:30 / /run/my\\040cgroup rw shared:9 master:2 - cgroup2 none rw\n"},
		{name: "v1 only", err: ErrNoCgroup2, mountinfo: "28 26 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"},
		{name: "garbage", err: ErrNoCgroup2, mountinfo: "x - cgroup2\n - \n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Cgroup2Mount(strings.NewReader(tc.mountinfo))
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Errorf("Cgroup2Mount = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}
