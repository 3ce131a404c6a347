//go:build !linux

package proc

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// errNotLinux is why the namespace operations fail off Linux.
var errNotLinux = fmt.Errorf("network namespaces need Linux (this is %s): %w", runtime.GOOS, errors.ErrUnsupported)

// scanFDs reads the fd directory of a /proc tree with the portable file API (the Linux build
// uses raw system calls); see the Linux version for the contract.
func scanFDs(fdDir string, want map[uint64]bool, _ []byte) (inodes []uint64, read, denied bool) {
	entries, err := os.ReadDir(fdDir)
	if err != nil {
		return nil, false, errors.Is(err, fs.ErrPermission)
	}
	for _, e := range entries {
		link, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err != nil {
			continue
		}
		if ino, ok := socketInode([]byte(link)); ok && want[ino] {
			inodes = append(inodes, ino)
		}
	}
	return inodes, true, false
}

// netnsInode reads PID/ns/net ("net:[4026531840]"); 0 when it cannot.
func netnsInode(pidDir string, _ []byte) uint64 {
	link, err := os.Readlink(filepath.Join(pidDir, "ns", "net"))
	if err != nil {
		return 0
	}
	n, _ := bracketNumber([]byte(link), "net:[")
	return n
}

// readSmall reads a small /proc file whole, at most maxSmallFile bytes.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path) // #nosec G304 -- a file of the /proc tree being scanned
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxSmallFile))
}

// readSmallInto is readSmall; buf is not reused off Linux.
func readSmallInto(path string, _ []byte) ([]byte, error) { return readSmall(path) }

// readlinkInto reads a symbolic link into buf and returns its length (more than len(buf) when
// it did not fit).
func readlinkInto(path string, buf []byte) (int, error) {
	link, err := os.Readlink(path)
	if err != nil {
		return 0, err
	}
	return max(copy(buf, link), len(link)), nil
}

// fileInode fails off Linux: there are no namespace files.
func fileInode(path string) (uint64, error) {
	return 0, &fs.PathError{Op: "stat", Path: path, Err: errNotLinux}
}

// InNetNS fails off Linux: there are no network namespaces to enter.
func InNetNS(path string, _ func() error) error {
	return fmt.Errorf("netns: enter %s: %w", path, errNotLinux)
}
