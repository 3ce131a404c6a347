package kernel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// Watcher reads socket events from the kernel: BPF programs report TCP listeners opening and
// closing and UDP sockets binding and closing into a ring buffer. Open one with OpenWatcher,
// read with Read from one goroutine, and Close it to detach every program.
//
// What it sees and misses (docs/kernel.md): TCP listeners in every network namespace of the
// host; UDP binds and releases, and listen() without bind(), only for sockets created in
// WatchOptions.Cgroup's subtree; not sockets that existed before it opened, not a UDP socket
// that got its port implicitly (sendto without bind), not fd passing. A full audit reconciles.
type Watcher struct {
	objs  liveObjects
	links []link.Link
	rd    *ringbuf.Reader
	log   *slog.Logger

	rec ringbuf.Record // reused by Read

	// clock converts CLOCK_MONOTONIC to the wall clock; refreshed at most once a second.
	clockAt time.Time // when offset was measured (with Go's monotonic reading)
	offset  int64     // wall - monotonic, ns

	closeOnce sync.Once
	closeErr  error
}

// OpenWatcher loads the programs, attaches them (tp_btf/inet_sock_set_state globally, the
// cgroup programs at opts.Cgroup) and returns a Watcher reading their events. It needs root,
// or CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN (cgroup attach), a kernel with BTF
// (/sys/kernel/btf/vmlinux) and cgroup2. On failure nothing stays attached, and the error wraps
// ErrUnavailable and the cause (os.ErrPermission, ebpf.ErrNotSupported, a verifier error).
func OpenWatcher(opts WatchOptions) (w *Watcher, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fail := func(stage string, err error) (*Watcher, error) {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, stage, explain(err))
	}
	cg := opts.Cgroup
	if cg == "" {
		if cg, err = FindCgroup2(); err != nil {
			return fail("find the cgroup2 mount", err)
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(cg, &st); err != nil {
		return fail("cgroup "+cg, err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return fail("cgroup "+cg, errors.New("not a cgroup2 directory"))
	}
	var nsStat unix.Stat_t
	if err := unix.Stat("/proc/self/ns/pid", &nsStat); err != nil {
		return fail("own pid namespace", err)
	}
	spec, err := loadLive()
	if err != nil {
		return fail("read the programs", err)
	}
	if err := spec.Variables[liveVarReaderPidns].Set(uint32(nsStat.Ino)); err != nil { // #nosec G115 -- namespace inodes are 32-bit
		return fail("configure the programs", err)
	}
	if opts.RingBufferBytes != 0 {
		spec.Maps[liveMapEvents].MaxEntries = opts.RingBufferBytes
	}
	lopts, err := loadOptions()
	if err != nil {
		return fail("load", err)
	}
	w = &Watcher{log: log}
	if err := spec.LoadAndAssign(&w.objs, lopts); err != nil {
		return fail("load", err)
	}
	defer func() {
		if err != nil {
			_ = w.Close()
			w = nil
		}
	}()
	tp, err := link.AttachTracing(link.TracingOptions{Program: w.objs.BindguardTcpState, AttachType: ebpf.AttachTraceRawTp})
	if err != nil {
		return fail("attach tp_btf/inet_sock_set_state", err)
	}
	w.links = append(w.links, tp)
	for _, c := range []struct {
		name   string
		prog   *ebpf.Program
		attach ebpf.AttachType
	}{
		{"sockops", w.objs.BindguardSockops, ebpf.AttachCGroupSockOps},
		{"post_bind4", w.objs.BindguardPostBind4, ebpf.AttachCGroupInet4PostBind},
		{"post_bind6", w.objs.BindguardPostBind6, ebpf.AttachCGroupInet6PostBind},
		{"sock_release", w.objs.BindguardSockRelease, ebpf.AttachCgroupInetSockRelease},
	} {
		l, err := link.AttachCgroup(link.CgroupOptions{Path: cg, Attach: c.attach, Program: c.prog})
		if err != nil {
			return fail(fmt.Sprintf("attach cgroup/%s to %s", c.name, cg), err)
		}
		w.links = append(w.links, l)
	}
	if w.rd, err = ringbuf.NewReader(w.objs.Events); err != nil {
		return fail("open the ring buffer", err)
	}
	log.Debug("kernel event source attached", "cgroup", cg, "programs", len(w.links), "ring_buffer_bytes", w.objs.Events.MaxEntries())
	return w, nil
}

// Read waits for the next event and returns it. It returns ctx's error when ctx ends first,
// an error wrapping ErrBadRecord for a record it cannot decode (the Watcher stays usable: read
// on), and os.ErrClosed once the Watcher is closed. Read is not safe for concurrent use.
func (w *Watcher) Read(ctx context.Context) (Event, error) {
	if err := ctx.Err(); err != nil {
		return Event{}, err
	}
	dl, _ := ctx.Deadline()
	w.rd.SetDeadline(dl)
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(done)
		w.rd.SetDeadline(time.Unix(1, 0)) // in the past: wakes the blocked read
	})
	err := w.rd.ReadInto(&w.rec)
	if !stop() {
		<-done
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		if ctx.Err() != nil {
			return Event{}, ctx.Err()
		}
		return Event{}, context.DeadlineExceeded
	case errors.Is(err, ringbuf.ErrClosed):
		return Event{}, fmt.Errorf("kernel: read events: %w", os.ErrClosed)
	case err != nil:
		return Event{}, fmt.Errorf("kernel: read events: %w", err)
	}
	e, err := decodeEvent(w.rec.RawSample)
	if err != nil {
		return Event{}, err
	}
	e.Time = time.Unix(0, w.wallOffset()+e.Monotonic)
	return e, nil
}

// wallOffset is wall clock minus CLOCK_MONOTONIC in nanoseconds, measured afresh each second
// (so a stepped wall clock is followed), bracketing time.Now between two monotonic readings.
func (w *Watcher) wallOffset() int64 {
	if !w.clockAt.IsZero() && time.Since(w.clockAt) < time.Second {
		return w.offset
	}
	var a, b unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &a) != nil {
		return w.offset
	}
	now := time.Now()
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &b) != nil {
		return w.offset
	}
	w.clockAt = now
	w.offset = now.UnixNano() - (a.Nano()+b.Nano())/2
	return w.offset
}

// Lost is the number of events the programs could not write because the ring buffer was
// full, since OpenWatcher. When it grows, events were missed: run a full audit.
func (w *Watcher) Lost() uint64 {
	var perCPU []uint64
	if err := w.objs.Lost.Lookup(uint32(0), &perCPU); err != nil {
		return 0
	}
	var n uint64
	for _, v := range perCPU {
		n += v
	}
	return n
}

// Close detaches every program and frees the maps; a Read blocked in another goroutine
// returns os.ErrClosed. It is safe to call more than once.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() {
		var errs []error
		if w.rd != nil {
			errs = append(errs, w.rd.Close())
		}
		for _, l := range w.links {
			errs = append(errs, l.Close())
		}
		errs = append(errs, w.objs.Close())
		w.closeErr = errors.Join(errs...)
	})
	return w.closeErr
}

var _ io.Closer = (*Watcher)(nil)
