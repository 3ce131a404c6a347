package cgroup_test

import (
	"testing"

	"github.com/bindguard/bindguard/internal/cgroup"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, unit, container string
	}{
		{"0::/system.slice/redis-server.service\n", "redis-server.service", ""},
		{"0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-foo.scope\n", "app-foo.scope", ""},
		{"0::/system.slice/docker-4f2a9c1be3d5a7f60c8e1d2b3a4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e.scope\n", "docker-4f2a9c1be3d5a7f60c8e1d2b3a4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e.scope", "4f2a9c1be3d5"},
		{"0::/docker/4f2a9c1be3d5a7f60c8e1d2b3a4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e\n", "", "4f2a9c1be3d5"},
		{"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-aa2a9c1be3d5a7f60c8e1d2b3a4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e.scope\n", "cri-containerd-aa2a9c1be3d5a7f60c8e1d2b3a4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e.scope", "aa2a9c1be3d5"},
		{"0::/lxc.payload.web1/system.slice/nginx.service\n", "nginx.service", "web1"},
		{"0::/lxc.monitor.web1\n", "", "web1"},
		{"12:pids:/lxc/db2/init.scope\n1:name=systemd:/lxc/db2/system.slice/postgresql.service\n0::/\n", "postgresql.service", "db2"},
		{"0::/\n", "", ""},
		{"", "", ""},
		{"garbage without colons\n0:\n", "", ""},
		{"0::/system.slice/evil\x1b[31m.service\n", "evil?[31m.service", ""},
	} {
		unit, container := cgroup.Parse([]byte(tc.in))
		if unit != tc.unit || container != tc.container {
			t.Errorf("Parse(%q) = %q, %q; want %q, %q", tc.in, unit, container, tc.unit, tc.container)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("0::/system.slice/redis-server.service\n"))
	f.Add([]byte("0::/lxc.payload.web1/x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		unit, container := cgroup.Parse(b)
		for _, s := range []string{unit, container} {
			for _, r := range s {
				if r < 0x20 || r == 0x7f {
					t.Fatalf("control character in %q", s)
				}
			}
		}
	})
}
