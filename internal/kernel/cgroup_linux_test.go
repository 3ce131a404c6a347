package kernel

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestCgroupPath(t *testing.T) {
	requireRoot(t)
	mount, err := FindCgroup2()
	if err != nil {
		t.Fatal(err)
	}
	dir, id := testCgroup(t)
	got, err := CgroupPath(mount, id)
	if err != nil || got != "/"+filepath.Base(dir) {
		t.Errorf("CgroupPath(%d) = %q, %v; want %q", id, got, err, "/"+filepath.Base(dir))
	}
	rootID, err := CgroupID(mount)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := CgroupPath(mount, rootID); err != nil || got != "/" {
		t.Errorf("CgroupPath(root) = %q, %v; want /", got, err)
	}
	if _, err := CgroupPath(mount, 1<<62); !errors.Is(err, ErrCgroupNotFound) {
		t.Errorf("an unknown id: %v, want ErrCgroupNotFound", err)
	}
}
