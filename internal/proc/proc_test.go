package proc_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/internal/proc"
)

func TestOwnersFixture(t *testing.T) {
	sc := proc.Scanner{Root: "../../testdata/proc/basic", Workers: 3, Users: func(uid int) string { return map[int]string{0: "root", 65534: "nobody"}[uid] }, Groups: func(gid int) string { return map[int]string{0: "root"}[gid] }}
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
	wantP := observed.Process{PID: 1200, Name: "postgres", Exe: "/usr/lib/postgresql/15/bin/postgres", User: "nobody", UID: 65534, Group: "root",
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

// TestOwnersVanishingProcesses: processes that end between the listing of /proc and the reads
// (their fd directory or comm gone) are skipped, not an error; a process seen holding a socket
// but gone before its details are read holds nothing.
func TestOwnersVanishingProcesses(t *testing.T) {
	root := t.TempDir()
	if out, err := exec.Command("cp", "-a", "../../testdata/proc/basic/.", root).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	// 812 (holding 1001) ended before its fds were read; 1200 (holding 1003) after, before
	// its comm was read.
	if err := os.RemoveAll(filepath.Join(root, "812", "fd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "1200", "comm")); err != nil {
		t.Fatal(err)
	}
	sc := proc.Scanner{Root: root, Users: func(int) string { return "" }}
	o, err := sc.Owners(map[uint64]bool{1001: true, 1002: true, 1003: true})
	if err != nil {
		t.Fatalf("a vanished process failed the scan: %v", err)
	}
	if _, ok := o.Owner(1001); ok {
		t.Error("1001 still owned by a process whose fds vanished")
	}
	if _, ok := o.Owner(1003); ok {
		t.Error("1003 still owned by a process that ended before it was read")
	}
	if p, ok := o.Owner(1002); !ok || p.PID != 900 {
		t.Errorf("1002: %+v %v, want pid 900", p, ok)
	}
	if o.Scanned != 8 {
		t.Errorf("scanned %d, want 8 (one fd directory gone)", o.Scanned)
	}
}
