//go:build !linux

package proc

import "fmt"

// readInRoot needs openat2's RESOLVE_IN_ROOT to read inside a container's root safely; off
// Linux there are no containers to read, so it always fails and names are the reader's own.
func readInRoot(root, path string, _ int) ([]byte, error) {
	return nil, fmt.Errorf("%s/%s: %w", root, path, errNotLinux)
}
