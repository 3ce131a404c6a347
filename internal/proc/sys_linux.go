package proc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"golang.org/x/sys/unix"
)

// scanFDs reads the fd directory and returns the wanted socket inodes it holds. read is false
// when the directory could not be listed; denied says that was for lack of permission. It uses
// raw system calls (open, getdents64, readlinkat): at thousands of processes the os.File
// bookkeeping (fcntl, epoll registration) would add a fifth to the system calls.
func scanFDs(fdDir string, want map[uint64]bool, buf []byte) (inodes []uint64, read, denied bool) {
	fd, err := unix.Open(fdDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false, err == unix.EACCES || err == unix.EPERM
	}
	defer func() { _ = unix.Close(fd) }()
	var dents [8192]byte
	for {
		n, err := unix.Getdents(fd, dents[:])
		if err != nil {
			return inodes, false, err == unix.EACCES || err == unix.EPERM
		}
		if n <= 0 {
			return inodes, true, false
		}
		for off := 0; off+19 <= n; {
			// struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, char name[]
			reclen := int(binary.NativeEndian.Uint16(dents[off+16:]))
			if reclen < 19 || off+reclen > n {
				return inodes, false, false
			}
			name := dents[off+19 : off+reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			off += reclen
			if len(name) == 0 || name[0] == '.' {
				continue
			}
			k, err := unix.Readlinkat(fd, string(name), buf)
			if err != nil || k >= len(buf) {
				continue // closed since listed, or not a socket link
			}
			if ino, ok := socketInode(buf[:k]); ok && want[ino] {
				inodes = append(inodes, ino)
			}
		}
	}
}

// netnsInode reads PID/ns/net ("net:[4026531840]"); 0 when it cannot.
func netnsInode(pidDir string, buf []byte) uint64 {
	k, err := unix.Readlink(filepath.Join(pidDir, "ns", "net"), buf)
	if err != nil || k >= len(buf) {
		return 0
	}
	n, _ := bracketNumber(buf[:k], "net:[")
	return n
}

// readSmall reads a small /proc file whole, with raw system calls: os.Open's poller
// registration costs more than the read for files the kernel generates on open.
func readSmall(path string) ([]byte, error) { return readSmallInto(path, make([]byte, 0, 512)) }

// readSmallInto is readSmall into buf (from its start), grown when the file is larger, up to
// maxSmallFile.
func readSmallInto(path string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer func() { _ = unix.Close(fd) }()
	buf = buf[:0]
	if cap(buf) == 0 {
		buf = make([]byte, 0, 512)
	}
	for len(buf) < maxSmallFile {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(cap(buf), maxSmallFile-len(buf)))
		}
		n, err := unix.Read(fd, buf[len(buf):min(cap(buf), maxSmallFile)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			break
		}
		buf = buf[:len(buf)+n]
	}
	return buf, nil
}

// readlinkInto reads a symbolic link into buf and returns its length (len(buf) or more: perhaps
// truncated).
func readlinkInto(path string, buf []byte) (int, error) {
	n, err := unix.Readlink(path, buf)
	if err != nil {
		return 0, &fs.PathError{Op: "readlink", Path: path, Err: err}
	}
	return n, nil
}

// fileInode returns the namespace inode of a namespace file, failing when it is not one.
func fileInode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		return 0, &fs.PathError{Op: "statfs", Path: path, Err: err}
	}
	if sfs.Type != unix.NSFS_MAGIC && sfs.Type != unix.PROC_SUPER_MAGIC {
		return 0, fmt.Errorf("%s is not a namespace file", path)
	}
	return st.Ino, nil
}

// InNetNS runs fn on an OS thread that has entered the network namespace at path, then returns
// the thread to the namespace it came from. Entering needs CAP_SYS_ADMIN. If the thread cannot
// be returned it is left locked, so the runtime retires it instead of reusing it.
func InNetNS(path string, fn func() error) error {
	target, err := os.Open(path) // #nosec G304 -- a namespace file the operator chose
	if err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	defer func() { _ = target.Close() }()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: %w", err)
			return
		}
		defer func() { _ = orig.Close() }()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: enter %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("netns: return from %s: %w", path, err))
			return // thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
