package kernel

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// benchEnv is a cgroup holding this process, a network namespace and a pin root, all the
// benchmark's own (enforcement is removed at cleanup).
type benchEnv struct {
	cg, nsPath, pins string
	cgID             uint64
}

func newBenchEnv(b *testing.B) *benchEnv {
	requireRoot(b)
	env := &benchEnv{}
	env.cg, env.cgID = testCgroup(b)
	env.nsPath, _ = testNetns(b)
	if err := ensureBPFFS("/sys/fs/bpf"); err != nil {
		b.Skip("no BPF file system:", err)
	}
	env.pins = filepath.Join("/sys/fs/bpf", randomName("bindguard-bench"))
	b.Cleanup(func() {
		if err := RemoveEnforcement(env.cgID, env.opts()); err != nil && !errors.Is(err, ErrNotEnforced) {
			b.Errorf("remove: %v", err)
		}
		_ = os.RemoveAll(env.pins)
	})
	return env
}

func (env *benchEnv) opts() EnforceOptions { return EnforceOptions{PinRoot: env.pins} }

// bindLoop times b.N bind() calls of TCP sockets (SO_REUSEPORT, so that they can share the
// port) to addr:port in the benchmark's namespace; the sockets are made and closed in batches
// outside the timer. Every bind must end with wantErr.
func (env *benchEnv) bindLoop(b *testing.B, addr [4]byte, port int, wantErr error) {
	inNetns(b, env.nsPath, func() {
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
				if err := unix.Bind(fd, sa); !errors.Is(err, wantErr) && err != wantErr {
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

// BenchmarkEnforceBind measures bind() of a TCP socket on 127.0.0.1:6379 (a
// declared localhost_only port: allowed) by this process in a cgroup of its own, in a network
// namespace of its own, without enforcement and then with it in the same run, then an
// undeclared port, then the denial path (0.0.0.0:6379, refused: the record is written to the
// ring buffer, which nobody reads, and dropped once full). The difference between "none" and
// "allowed" is what enforcement adds to an allowed bind. With -count N every round applies
// and removes enforcement again, so the cases alternate.
func BenchmarkEnforceBind(b *testing.B) {
	env := newBenchEnv(b)
	lo := [4]byte{127, 0, 0, 1}
	b.Run("none", func(b *testing.B) { env.bindLoop(b, lo, 6379, nil) })
	e := compileTest(b, enforceTestPolicy, EnforceDeny, nil)
	if _, err := ApplyEnforcement(env.cg, e, env.opts()); err != nil {
		b.Fatal(err)
	}
	b.Run("allowed", func(b *testing.B) { env.bindLoop(b, lo, 6379, nil) })
	b.Run("undeclared", func(b *testing.B) { env.bindLoop(b, lo, 7000, nil) })
	b.Run("denied", func(b *testing.B) { env.bindLoop(b, [4]byte{}, 6379, unix.EPERM) })
	// And without again, after remove, to see the drift of a shared machine within the run.
	if err := RemoveEnforcement(env.cgID, env.opts()); err != nil {
		b.Fatal(err)
	}
	b.Run("none-again", func(b *testing.B) { env.bindLoop(b, lo, 6379, nil) })
}

// hookStats reads run_time_ns and run_cnt of the program behind each pinned link of dir.
func hookStats(b *testing.B, dir string) map[string]ebpf.ProgramStats {
	out := map[string]ebpf.ProgramStats{}
	for _, h := range enforceHooks {
		l, err := link.LoadPinnedLink(filepath.Join(dir, "link_"+h.name), nil)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		info, err := l.Info()
		_ = l.Close()
		if err != nil {
			b.Fatal(err)
		}
		p, err := ebpf.NewProgramFromID(info.Program)
		if err != nil {
			b.Fatal(err)
		}
		st, err := p.Stats()
		_ = p.Close()
		if err != nil {
			b.Fatal(err)
		}
		out[h.name] = *st
	}
	return out
}

// BenchmarkEnforcePrograms reports what each attached program itself costs, from the
// kernel's own accounting (BPF_ENABLE_STATS for the benchmark's duration: run_time_ns and
// run_cnt of each program, which the load of the machine does not inflate the way it does
// wall-clock time): "HOOK-ns/run" is the program's mean run time, "HOOK-runs/op" how often it
// ran per bind. ns/op is the wall-clock time of a bind with the statistics on (which add two
// clock reads per program run).
func BenchmarkEnforcePrograms(b *testing.B) {
	env := newBenchEnv(b)
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Skip("BPF_ENABLE_STATS:", err)
	}
	defer func() { _ = stats.Close() }()
	e := compileTest(b, enforceTestPolicy, EnforceDeny, nil)
	dir, err := ApplyEnforcement(env.cg, e, env.opts())
	if err != nil {
		b.Fatal(err)
	}
	run := func(name string, addr [4]byte, port int, wantErr error) {
		b.Run(name, func(b *testing.B) {
			before := hookStats(b, dir)
			env.bindLoop(b, addr, port, wantErr)
			after := hookStats(b, dir)
			for _, h := range enforceHooks {
				a, ok := after[h.name]
				if !ok {
					continue
				}
				p := before[h.name]
				runs := a.RunCount - p.RunCount
				b.ReportMetric(float64(runs)/float64(b.N), h.name+"-runs/op")
				if runs > 0 {
					b.ReportMetric(float64(a.Runtime-p.Runtime)/float64(runs), h.name+"-ns/run")
				}
			}
		})
	}
	run("allowed", [4]byte{127, 0, 0, 1}, 6379, nil)
	run("undeclared", [4]byte{127, 0, 0, 1}, 7000, nil)
	run("denied", [4]byte{}, 6379, unix.EPERM)
	run("port0", [4]byte{}, 0, nil)
}
