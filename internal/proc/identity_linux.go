package proc

import (
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"
)

// readInRoot reads a file of a process's root filesystem (root is /proc/PID/root), resolving
// the path inside that root only: absolute symlinks and ".." cannot leave it (openat2 with
// RESOLVE_IN_ROOT, no magic links), so a container cannot point bindguard at the host's files.
// Only a regular file is read (O_NONBLOCK, then fstat: a FIFO cannot hang the audit), at most
// limit bytes; a larger file is an error.
func readInRoot(root, path string, limit int) ([]byte, error) {
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: root, Err: err}
	}
	defer func() { _ = unix.Close(dir) }()
	fd, err := unix.Openat2(dir, path, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, &fs.PathError{Op: "openat2", Path: root + "/" + path, Err: err}
	}
	defer func() { _ = unix.Close(fd) }()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "fstat", Path: root + "/" + path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s/%s is not a regular file", root, path)
	}
	if st.Size > int64(limit) {
		return nil, fmt.Errorf("%s/%s is %d bytes, more than the %d read", root, path, st.Size, limit)
	}
	buf := make([]byte, 0, st.Size+1)
	for len(buf) <= limit {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: root + "/" + path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
	return nil, fmt.Errorf("%s/%s grew past the %d read", root, path, limit)
}
