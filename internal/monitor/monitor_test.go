package monitor

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func TestDiff(t *testing.T) {
	sock := func(ns, addr string, port uint16, svc, status string) (string, Entry) {
		return fmt.Sprintf("sock|%s|tcp|%s|%d", ns, addr, port), Entry{Netns: ns, Protocol: "tcp", Address: addr, Port: port, Service: svc, Status: status, Severity: "info"}
	}
	missing := func(svc string, port uint16) (string, Entry) {
		return fmt.Sprintf("missing|host|%s|tcp|%d", svc, port), Entry{Netns: "host", Protocol: "tcp", Address: "127.0.0.1", Port: port, Service: svc, Status: "missing", Severity: "medium", Reason: svc + " missing"}
	}
	state := func(kvs ...any) State {
		s := State{}
		for i := 0; i < len(kvs); i += 2 {
			s[kvs[i].(string)] = kvs[i+1].(Entry)
		}
		return s
	}
	k1, redisValid := sock("host", "127.0.0.1", 6379, "redis", "valid")
	_, redisInvalid := sock("host", "127.0.0.1", 6379, "redis", "invalid")
	km, redisMissing := missing("redis", 6379)
	k2, stray := sock("ct1", "0.0.0.0", 9000, "", "unexpected")

	type ev struct{ Kind, Netns, Service, Old, New string }
	short := func(es []Event) []ev {
		var out []ev
		for _, e := range es {
			out = append(out, ev{e.Kind, e.Netns, e.Service, e.OldStatus, e.NewStatus})
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		prev, next State
		want       []ev
	}{
		{"nothing changed", state(k1, redisValid), state(k1, redisValid), nil},
		{"first audit", nil, state(k1, redisValid, k2, stray), []ev{{"appeared", "ct1", "", "", "unexpected"}, {"appeared", "host", "redis", "", "valid"}}},
		{"status changed", state(k1, redisValid), state(k1, redisInvalid), []ev{{"changed", "host", "redis", "valid", "invalid"}}},
		{"stray gone", state(k1, redisValid, k2, stray), state(k1, redisValid), []ev{{"resolved", "ct1", "", "unexpected", ""}}},
		{"service stops", state(k1, redisValid), state(km, redisMissing), []ev{{"changed", "host", "redis", "valid", "missing"}}},
		{"service starts", state(km, redisMissing), state(k1, redisValid), []ev{{"changed", "host", "redis", "missing", "valid"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Diff(tc.prev, tc.next, t0)
			if d := cmp.Diff(tc.want, short(got)); d != "" {
				t.Errorf("events (-want +got):\n%s", d)
			}
			for _, e := range got {
				if !e.Time.Equal(t0) {
					t.Errorf("event time %v", e.Time)
				}
			}
		})
	}
}

func TestStore(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := s.Record([]Event{{Time: t0, Kind: KindAppeared, Port: 1}, {Time: t0.Add(time.Hour), Kind: KindAppeared, Port: 2}}, State{"k": {Status: "valid"}})
	if err != nil {
		t.Fatal(err)
	}
	if evs[0].ID != 1 || evs[1].ID != 2 {
		t.Fatalf("ids %d %d, want 1 2", evs[0].ID, evs[1].ID)
	}
	// A second process cannot open it while this one holds it.
	if _, err := OpenStore(dir, true); err == nil {
		t.Error("a reader opened the store a writer holds")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened (as after a restart): state, events and the sequence survive.
	s, err = OpenStore(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	st, err := s.LastState()
	if err != nil || st["k"].Status != "valid" {
		t.Errorf("state after reopen: %v %v", st, err)
	}
	more, err := s.Record([]Event{{Time: t0.Add(2 * time.Hour), Kind: KindChanged}}, nil)
	if err != nil || more[0].ID != 3 {
		t.Errorf("id after reopen %v %v, want 3", more, err)
	}
	since, _ := s.Since(t0.Add(30*time.Minute), 0)
	if len(since) != 2 || since[0].ID != 2 {
		t.Errorf("Since: %+v", since)
	}
	after, _ := s.After(1, 10)
	if len(after) != 2 || after[0].ID != 2 {
		t.Errorf("After(1): %+v", after)
	}
	// Pruning keeps what a sink has not been given.
	if err := s.SetCursor("redis", 1); err != nil {
		t.Fatal(err)
	}
	n, err := s.Prune(t0.Add(10*time.Hour), []string{"redis"})
	if err != nil || n != 1 {
		t.Errorf("pruned %d (%v), want 1 (only the delivered event)", n, err)
	}
	if c, _ := s.Cursor("redis"); c != 1 {
		t.Errorf("cursor %d", c)
	}
}

func TestParseSince(t *testing.T) {
	for in, want := range map[string]time.Time{
		"": t0.Add(-24 * time.Hour), "1h": t0.Add(-time.Hour), "30m": t0.Add(-30 * time.Minute), "7d": t0.Add(-7 * 24 * time.Hour),
		"2026-11-21T09:00:00Z": time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC),
	} {
		got, err := ParseSince(in, t0)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "-1h", "1x", "2026-11-21"} {
		if _, err := ParseSince(bad, t0); err == nil {
			t.Errorf("ParseSince(%q) accepted", bad)
		}
	}
}
