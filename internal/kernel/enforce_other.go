//go:build !linux

package kernel

import (
	"context"
	"fmt"
)

// DefaultPinRoot is where enforcement pins its links and maps (Linux only).
const DefaultPinRoot = "/sys/fs/bpf/bindguard"

// EnforceOptions configure enforcement (Linux only).
type EnforceOptions struct {
	PinRoot string
}

// ApplyEnforcement fails: enforcement needs Linux.
func ApplyEnforcement(string, Enforcement, EnforceOptions) (string, error) {
	return "", fmt.Errorf("%w: enforcement needs Linux", ErrEnforcement)
}

// RemoveEnforcement fails: enforcement needs Linux.
func RemoveEnforcement(uint64, EnforceOptions) error {
	return fmt.Errorf("%w: enforcement needs Linux", ErrEnforcement)
}

// EnforcementStatus fails: enforcement needs Linux.
func EnforcementStatus(EnforceOptions) ([]EnforceStatus, error) {
	return nil, fmt.Errorf("%w: enforcement needs Linux", ErrEnforcement)
}

// EnforcementHealth fails: enforcement needs Linux.
func EnforcementHealth(_ string, id uint64, _ EnforceOptions) (EnforceStatus, error) {
	return EnforceStatus{ID: id}, fmt.Errorf("%w: enforcement needs Linux", ErrEnforcement)
}

// DenialReader reads denial records (Linux only).
type DenialReader struct{}

// OpenDenials fails: enforcement needs Linux.
func OpenDenials(uint64, EnforceOptions) (*DenialReader, error) {
	return nil, fmt.Errorf("%w: enforcement needs Linux", ErrEnforcement)
}

// Read is never reached.
func (*DenialReader) Read(context.Context) (Denial, error) {
	return Denial{}, fmt.Errorf("%w: enforcement needs Linux", ErrEnforcement)
}

// Close does nothing.
func (*DenialReader) Close() error { return nil }

// FindCgroup2 fails: cgroup2 needs Linux.
func FindCgroup2() (string, error) {
	return "", fmt.Errorf("kernel: find cgroup2: %w: needs Linux", ErrEnforcement)
}

// CgroupID fails: cgroup2 needs Linux.
func CgroupID(dir string) (uint64, error) {
	return 0, fmt.Errorf("kernel: cgroup id of %s: %w: needs Linux", dir, ErrEnforcement)
}
