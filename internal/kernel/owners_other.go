//go:build !linux

package kernel

import "fmt"

// SocketFDs is the kernel-side owner scan; it needs Linux (BPF iterators) and fails elsewhere.
func SocketFDs() ([]SocketFD, error) {
	return nil, fmt.Errorf("%w: BPF needs Linux", ErrSocketScan)
}
