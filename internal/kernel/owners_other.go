//go:build !linux

package kernel

import "fmt"

// SocketFDs is the kernel-side owner scan; it needs Linux (BPF iterators) and fails elsewhere.
func SocketFDs() ([]SocketFD, error) {
	return nil, fmt.Errorf("%w: BPF needs Linux", ErrSocketScan)
}

// SocketScanner is the owner scan's loaded program; it needs Linux.
type SocketScanner struct{}

// NewSocketScanner fails: BPF needs Linux.
func NewSocketScanner() (*SocketScanner, error) {
	return nil, fmt.Errorf("%w: BPF needs Linux", ErrSocketScan)
}

// Scan fails: BPF needs Linux.
func (*SocketScanner) Scan() ([]SocketFD, error) {
	return nil, fmt.Errorf("%w: BPF needs Linux", ErrSocketScan)
}

// ScanEach fails: BPF needs Linux.
func (*SocketScanner) ScanEach(func([]SocketFD)) error {
	return fmt.Errorf("%w: BPF needs Linux", ErrSocketScan)
}

// Close does nothing on this system.
func (*SocketScanner) Close() error { return nil }
