package monitor

import (
	"context"
	"testing"

	"github.com/bindguard/bindguard/internal/kernel"
)

// TestKernelModeReplaysOnlyEventsAfterTheAuditStarted: a full audit replays over its snapshot
// only the events the kernel saw after the audit started. An event from before (still queued
// in the ring buffer when the audit began, read while it observes) is already in the snapshot's
// view: replaying it would bring back a socket that closed before the snapshot when its close
// record was lost, which is the very case that starts such an audit (issue 14: the storm with
// a 16 KiB ring never converged). An event from after the start is replayed, as before. And
// once the snapshot is in, an event from before the audit read only then is not applied.
func TestKernelModeReplaysOnlyEventsAfterTheAuditStarted(t *testing.T) {
	k := startKernel(t, nil)
	stale := monotonicNow() // redis opened before the audit; its close was lost
	entered, gate := k.gobs.hold()
	audited := make(chan error, 1)
	go func() { audited <- k.m.Audit(context.Background()) }()
	<-entered
	// The snapshot being taken has web only: redis closed before it, memcached opens while it
	// observes (after it started).
	old := kev(kernel.KindListen, 1, "127.0.0.1", 6379, 10, 7, t0)
	old.Monotonic = stale
	k.send(t, old)
	fresh := kev(kernel.KindListen, 1, "127.0.0.1", 11211, 11, 8, t0)
	fresh.Monotonic = monotonicNow()
	k.send(t, fresh)
	n := len(k.stored(t))
	waitUntil(t, "both events judged during the audit", func() bool {
		st, err := k.store.LastState()
		_, r := st[sockKey("host", "tcp", "127.0.0.1", 6379)]
		_, m := st[sockKey("host", "tcp", "127.0.0.1", 11211)]
		return err == nil && r && m
	})
	k.gobs.release(gate)
	if err := <-audited; err != nil {
		t.Fatal(err)
	}
	st, err := k.store.LastState()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st[sockKey("host", "tcp", "127.0.0.1", 6379)]; ok {
		t.Errorf("redis, whose open the kernel saw before the audit started and which the snapshot does not have, is in the state after the audit: %v", st)
	}
	if _, ok := st[sockKey("host", "tcp", "127.0.0.1", 11211)]; !ok {
		t.Errorf("memcached, opened after the audit started, is not in the state after it: %v", st)
	}
	if d := shorten(k.stored(t)[n:]); len(d) == 0 {
		t.Errorf("no event after the audit; want redis resolved (it was reported while the audit observed)")
	}

	// After the audit, an event from before it started that the reader gets to only now (it
	// was behind) is in the snapshot the live set is built on: it is not applied again. A
	// newer one is.
	late := kev(kernel.KindListen, 1, "127.0.0.1", 5432, 12, 9, t0)
	late.Monotonic = stale
	k.send(t, late)
	marker := kev(kernel.KindListen, 1, "127.0.0.1", 6380, 13, 10, t0)
	marker.Monotonic = monotonicNow()
	k.send(t, marker)
	waitUntil(t, "the newer event judged", func() bool {
		st, err := k.store.LastState()
		_, ok := st[sockKey("host", "tcp", "127.0.0.1", 6380)]
		return err == nil && ok
	})
	if st, _ := k.store.LastState(); st != nil {
		if _, ok := st[sockKey("host", "tcp", "127.0.0.1", 5432)]; ok {
			t.Errorf("a listener the kernel saw before the last audit started, read after the audit, is in the state: %v", st)
		}
	}
}
