package kernel

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkEnforceBind measures bind() of a TCP socket on 127.0.0.1:6379 (a
// declared localhost_only port: allowed) by this process in a cgroup of its own, in a network
// namespace of its own, without enforcement and then with it in the same run, then the denial
// path (0.0.0.0:6379, refused: the record is written to the ring buffer, which nobody reads,
// and dropped once full) and an undeclared port. The difference between "none" and "allowed"
// is what enforcement adds to an allowed bind.
func BenchmarkEnforceBind(b *testing.B) {
	requireRoot(b)
	cg, cgID := testCgroup(b)
	nsPath, _ := testNetns(b)
	if err := ensureBPFFS("/sys/fs/bpf"); err != nil {
		b.Skip("no BPF file system:", err)
	}
	pins := filepath.Join("/sys/fs/bpf", randomName("bindguard-bench"))
	b.Cleanup(func() {
		if err := RemoveEnforcement(cgID, EnforceOptions{PinRoot: pins}); err != nil && !errors.Is(err, ErrNotEnforced) {
			b.Errorf("remove: %v", err)
		}
		_ = os.RemoveAll(pins)
	})
	// Only bind() is timed: sockets are made (SO_REUSEPORT, so that they can share the
	// port) and closed in batches outside the timer.
	bindLoop := func(b *testing.B, addr [4]byte, port int, wantErr error) {
		inNetns(b, nsPath, func() {
			sa := &unix.SockaddrInet4{Addr: addr, Port: port}
			const batch = 64
			fds := make([]int, 0, batch)
			b.ResetTimer()
			b.StopTimer()
			for done := 0; done < b.N; {
				n := min(batch, b.N-done)
				fds = fds[:0]
				for range n {
					fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
					if err != nil {
						b.Error(err)
						return
					}
					_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
					fds = append(fds, fd)
				}
				b.StartTimer()
				var bad error
				for _, fd := range fds {
					if err := unix.Bind(fd, sa); err != wantErr {
						bad = err
					}
				}
				b.StopTimer()
				for _, fd := range fds {
					_ = unix.Close(fd)
				}
				if bad != nil || (wantErr != nil && bad != nil) {
					b.Errorf("bind: %v, want %v", bad, wantErr)
					return
				}
				done += n
			}
		})
	}
	lo := [4]byte{127, 0, 0, 1}
	b.Run("none", func(b *testing.B) { bindLoop(b, lo, 6379, nil) })
	e := compileTest(b, enforceTestPolicy, EnforceDeny, nil)
	if _, err := ApplyEnforcement(cg, e, EnforceOptions{PinRoot: pins}); err != nil {
		b.Fatal(err)
	}
	b.Run("allowed", func(b *testing.B) { bindLoop(b, lo, 6379, nil) })
	b.Run("undeclared", func(b *testing.B) { bindLoop(b, lo, 7000, nil) })
	b.Run("denied", func(b *testing.B) { bindLoop(b, [4]byte{}, 6379, unix.EPERM) })
	// And without again, after remove, to see the drift of a shared machine within the run.
	if err := RemoveEnforcement(cgID, EnforceOptions{PinRoot: pins}); err != nil {
		b.Fatal(err)
	}
	b.Run("none-again", func(b *testing.B) { bindLoop(b, lo, 6379, nil) })
}
