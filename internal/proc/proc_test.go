package proc_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bindguard/bindguard/internal/proc"
)

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
