// Package cgrouptest gives tests a cgroup2 child of their own: Join moves the test process in
// and, at cleanup, back to where it was, then removes the cgroup (Linux only). It does not find
// the cgroup2 mount itself (internal/kernel.FindCgroup2 does), so that package kernel's own
// tests can use it without an import cycle.
package cgrouptest
