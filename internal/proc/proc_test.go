package proc_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bindguard/bindguard/internal/proc"
)

func TestParseCgroup(t *testing.T) {
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
		unit, container := proc.ParseCgroup([]byte(tc.in))
		if unit != tc.unit || container != tc.container {
			t.Errorf("ParseCgroup(%q) = %q, %q; want %q, %q", tc.in, unit, container, tc.unit, tc.container)
		}
	}
}

func FuzzParseCgroup(f *testing.F) {
	f.Add([]byte("0::/system.slice/redis-server.service\n"))
	f.Add([]byte("0::/lxc.payload.web1/x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		unit, container := proc.ParseCgroup(b)
		for _, s := range []string{unit, container} {
			for _, r := range s {
				if r < 0x20 || r == 0x7f {
					t.Fatalf("control character in %q", s)
				}
			}
		}
	})
}

func TestOwnersFixture(t *testing.T) {
	sc := proc.Scanner{Root: "../../testdata/proc/basic", Workers: 3, Users: func(uid int) string { return map[int]string{0: "root", 65534: "nobody"}[uid] }}
	o, err := sc.Owners(map[uint64]bool{1001: true, 1002: true, 1003: true, 1004: true, 1007: true})
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64][]int{}
	for k, v := range o.ByInode {
		got[k] = v
	}
	want := map[uint64][]int{1001: {812}, 1002: {900, 901}, 1003: {1200}, 1007: {1300}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("owners (-want +got):\n%s", d)
	}
	p, ok := o.Owner(1003)
	wantP := proc.Process{PID: 1200, Name: "postgres", Exe: "/usr/lib/postgresql/15/bin/postgres", User: "nobody", UID: 65534,
		Unit: "docker-4f2a9c1be3d5a7f60c8e1d2b3a4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e.scope", Container: "4f2a9c1be3d5"}
	if !ok || p != wantP {
		t.Errorf("Owner(1003) = %+v, want %+v", p, wantP)
	}
	if o.Scanned != 9 || o.Denied != 0 {
		t.Errorf("scanned %d denied %d, want 9 and 0", o.Scanned, o.Denied)
	}
	if _, ok := o.Owner(1004); ok {
		t.Error("inode 1004 has no owner in the fixture")
	}
}

func TestOwnersMissingRoot(t *testing.T) {
	if _, err := (&proc.Scanner{Root: "/nonexistent"}).Owners(nil); err == nil {
		t.Error("no error for a missing /proc root")
	}
}

func TestNamespacesFixture(t *testing.T) {
	f := proc.NamespaceFinder{Root: "../../testdata/proc/basic", NetnsDir: "../../testdata/proc/no-netns"}
	all, err := f.All()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].Label != "host" || all[0].Inode != 4026531840 || !all[0].Current || all[0].PID != 1 {
		t.Errorf("namespaces %+v, want one: host, current, inode 4026531840, pid 1", all)
	}
	if _, err := f.Find("nope"); err == nil {
		t.Error("Find(nope) succeeded")
	}
}

func TestOwnersLive(t *testing.T) {
	// The real /proc: this process's own fds are readable, so the scan must at least see us.
	o, err := (&proc.Scanner{}).Owners(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Scanned == 0 {
		t.Error("scanned no process in /proc")
	}
}
