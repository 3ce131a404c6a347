//go:build linux

package proc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func record(tgid, fd uint32, inode uint64) []byte {
	b := make([]byte, kernelRecordSize)
	binary.NativeEndian.PutUint32(b, tgid)
	binary.NativeEndian.PutUint32(b[4:], fd)
	binary.NativeEndian.PutUint64(b[8:], inode)
	return b
}

func TestDecodeKernelRecords(t *testing.T) {
	good := bytes.Join([][]byte{record(42, headerFD, 0), record(7, 3, 1001), record(8, 10, 1002)}, nil)
	recs, err := decodeKernelRecords(bytes.NewReader(good), 42)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0] != (kernelRecord{7, 3, 1001}) || recs[1] != (kernelRecord{8, 10, 1002}) {
		t.Errorf("records %+v", recs)
	}
	for _, tc := range []struct {
		name, data, want string
	}{
		{"child pid namespace", string(good), "child pid namespace"},
		{"no header", string(record(7, 3, 1001)), "no header"},
		{"torn record", string(good[:20]), "not whole records"},
	} {
		_, err := decodeKernelRecords(strings.NewReader(tc.data), 43)
		if tc.name != "child pid namespace" {
			_, err = decodeKernelRecords(strings.NewReader(tc.data), 42)
		}
		if err == nil || !errors.Is(err, ErrKernelScan) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want ErrKernelScan with %q", tc.name, err, tc.want)
		}
	}
}

// TestKernelSocketsSeesOwnSocket runs the iterator (root, BTF and BPF iterators needed) and
// looks for a socket this test holds.
func TestKernelSocketsSeesOwnSocket(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to load a BPF iterator (run as root, as .ci/run does)")
	}
	r, w, err := os.Pipe() // not a socket: must not be reported
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close(); _ = w.Close() }()
	fds, err := socketpair()
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(fds)
	recs, err := kernelSockets()
	if err != nil {
		t.Fatal(err)
	}
	mine := map[uint32]uint64{}
	for _, rec := range recs {
		if int(rec.tgid) == os.Getpid() {
			mine[rec.fd] = rec.inode
		}
	}
	for _, fd := range fds {
		ino, ok := mine[uint32(fd)]
		want := fdInode(t, fd)
		if !ok || ino != want {
			t.Errorf("fd %d: kernel scan inode %d (found %v), want %d", fd, ino, ok, want)
		}
	}
	if _, ok := mine[uint32(r.Fd())]; ok {
		t.Errorf("the pipe's fd %d was reported as a socket", r.Fd())
	}
}
func socketpair() ([]int, error) {
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	return p[:], err
}

func closeAll(fds []int) {
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
}

func fdInode(t *testing.T, fd int) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}
