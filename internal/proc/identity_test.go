//go:build linux

package proc

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bindguard/bindguard/internal/observed"
)

func TestParseStatus(t *testing.T) {
	st := parseStatus([]byte("Name:\tredis\nUid:\t100101\t100101\t100101\t100101\nGid:\t100104 100104 100104 100104\nNSpid:\t4242\t57\n"))
	if st.uid != 100101 || st.gid != 100104 || st.nspid != 57 {
		t.Errorf("got %+v", st)
	}
	st = parseStatus([]byte("Uid:\tbogus\nNSpid:\t12\n"))
	if st.uid != -1 || st.gid != -1 || st.nspid != 0 {
		t.Errorf("malformed: got %+v, want unknown ids and no inner pid", st)
	}
}

func TestIDMap(t *testing.T) {
	m := parseIDMap([]byte("         0     100000      65536\n  garbage line\n 70000 300000 x\n"))
	for _, tc := range []struct {
		out, in int
		ok      bool
	}{{100000, 0, true}, {100101, 101, true}, {165535, 65535, true}, {165536, 0, false}, {99999, 0, false}, {-1, 0, false}} {
		in, ok := inside(m, tc.out)
		if ok != tc.ok || (ok && in != tc.in) {
			t.Errorf("inside(%d) = %d, %v; want %d, %v", tc.out, in, ok, tc.in, tc.ok)
		}
	}
	if identity(m) || !identity(parseIDMap([]byte("0 0 4294967295\n"))) {
		t.Error("identity misjudged")
	}
}

func TestParseIDNames(t *testing.T) {
	got := parseIDNames([]byte("root:x:0:0:root:/root:/bin/bash\n#comment:x:5:5\nredis:x:101:104::/var/lib/redis:/usr/sbin/nologin\nshadow:x:101:1\nbad:x:notanumber\n:x:7:7\n"))
	if got[0] != "root" || got[101] != "redis" || len(got) != 2 {
		t.Errorf("got %v", got)
	}
}

// fakeContainer builds a /proc tree with one process in another mount and user namespace
// whose root holds its own passwd and group, and an absolute symlink that points at the
// host's files.
func fakeContainer(t *testing.T, passwd string) (procRoot string, rootfs string) {
	t.Helper()
	procRoot = t.TempDir()
	rootfs = t.TempDir()
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if passwd != "" {
		if err := os.WriteFile(filepath.Join(rootfs, "etc", "passwd"), []byte(passwd), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc", "group"), []byte("root:x:0:\nredis:x:104:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(procRoot, "4242")
	for _, d := range []string{filepath.Join(procRoot, "self", "ns"), filepath.Join(dir, "ns")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		filepath.Join(procRoot, "self", "ns", "mnt"): "mnt:[4026531841]",
		filepath.Join(dir, "ns", "mnt"):              "mnt:[4026532999]",
		filepath.Join(dir, "ns", "user"):             "user:[4026532998]",
		filepath.Join(dir, "root"):                   rootfs,
	}
	for l, target := range links {
		if err := os.Symlink(target, l); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "uid_map"), []byte("0 100000 65536\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "gid_map"), []byte("0 100000 65536\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return procRoot, rootfs
}

// TestContainerNames: a process of another mount namespace is named from its own root, with
// its ids mapped through its user namespace; the host's database is never asked for it.
func TestContainerNames(t *testing.T) {
	procRoot, _ := fakeContainer(t, "root:x:0:0::/root:/bin/sh\nredis:x:101:104::/var/lib/redis:/usr/sbin/nologin\n")
	host := func(id int) string { t.Errorf("the host's database was asked for id %d", id); return "host" }
	n := (&Scanner{Root: procRoot, Users: host, Groups: host}).newNamer()
	p := observed.Process{PID: 4242, UID: 100101, GID: 100104}
	n.name(&p)
	if p.User != "redis" || p.Group != "redis" || p.ContainerUID == nil || *p.ContainerUID != 101 {
		t.Errorf("got user %q group %q container uid %v; want redis, redis, 101", p.User, p.Group, p.ContainerUID)
	}
	// An id outside the map is shown as bindguard sees it.
	p = observed.Process{PID: 4242, UID: 5, GID: -1}
	n.name(&p)
	if p.User != "5" || p.ContainerUID != nil {
		t.Errorf("unmapped uid: got %q, %v", p.User, p.ContainerUID)
	}
}

// TestContainerPasswdSymlinkStaysInside: an absolute symlink in a container's /etc/passwd
// resolves inside the container's root, never to the host's file at that path.
func TestContainerPasswdSymlinkStaysInside(t *testing.T) {
	procRoot, rootfs := fakeContainer(t, "")
	// A host file, outside the container's root, names uid 0 "escaped"; inside the root the
	// link's absolute target does not exist, so following the link out would wrongly name it.
	outside := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(outside, []byte("escaped:x:0:0::/:/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(rootfs, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	n := (&Scanner{Root: procRoot}).newNamer()
	p := observed.Process{PID: 4242, UID: 100000, GID: -1}
	n.name(&p)
	if p.User != "0" {
		t.Errorf("user %q: the symlink was followed out of the container's root (want the number 0)", p.User)
	}
	if _, err := readInRoot(rootfs, "../../../../etc/passwd", maxUserDB); err == nil {
		t.Error("a path with .. left the root")
	}
}

// TestReadInRootRefusesFIFOAndBigFiles: a FIFO cannot hang the audit, and a file over the cap
// is refused rather than read.
func TestReadInRootRefusesFIFOAndBigFiles(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "etc", "passwd"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readInRoot(root, "etc/passwd", maxUserDB); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("FIFO: err %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "group"), make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readInRoot(root, "etc/group", 99); err == nil {
		t.Error("a file over the cap was read")
	}
	if b, err := readInRoot(root, "etc/group", 100); err != nil || len(b) != 100 {
		t.Errorf("a file at the cap: %d bytes, %v", len(b), err)
	}
}
