package monitor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
)

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := OpenStore(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func ids(es []Event) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func TestStoreLocked(t *testing.T) {
	dir := t.TempDir()
	openStore(t, dir)
	_, err := OpenStore(dir, false)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), filepath.Join(dir, StoreFile)) {
		t.Errorf("a second writer: %v, want ErrLocked naming the file", err)
	}
}

func TestStoreOpenFails(t *testing.T) {
	dir := t.TempDir()
	// A reader of a store that was never written has nothing to open.
	if _, err := OpenStore(dir, true); err == nil {
		t.Error("a reader opened a store that does not exist")
	}
	// The data directory is a file.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(file, false); err == nil || !strings.HasPrefix(err.Error(), "store: ") {
		t.Errorf("OpenStore(a file) = %v", err)
	}
	// The store file is not a bbolt file.
	bad := filepath.Join(dir, "bad")
	if err := os.Mkdir(bad, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, StoreFile), []byte(strings.Repeat("not a database ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(bad, false); err == nil {
		t.Error("opened a file that is not a store")
	}
}

func TestStoreReadOnly(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := s.LastState(); err != nil || st != nil {
		t.Errorf("LastState of a new store = %v, %v; want nil", st, err)
	}
	if _, err := s.Record([]Event{{Time: t0, Kind: KindAppeared}, {Time: t0.Add(time.Minute), Kind: KindDisappeared}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// bindguard events opens it read-only while serve is not running.
	ro, err := OpenStore(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ro.Close() }()
	got, err := ro.Since(t0, 1)
	if err != nil || len(got) != 1 || got[0].ID != 1 || got[0].Kind != KindAppeared {
		t.Errorf("Since(t0, limit 1) = %+v, %v", got, err)
	}
	if _, err := ro.Record([]Event{{Time: t0}}, nil); err == nil {
		t.Error("a read-only store recorded")
	}
}

func TestStorePrune(t *testing.T) {
	s := openStore(t, t.TempDir())
	var evs []Event
	for i := range 5 {
		evs = append(evs, Event{Time: t0.Add(time.Duration(i) * time.Hour), Kind: KindAppeared})
	}
	if _, err := s.Record(evs, nil); err != nil {
		t.Fatal(err)
	}
	for sink, c := range map[string]uint64{"redis": 4, "slow": 2} {
		if err := s.SetCursor(sink, c); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing is older than t0.
	if n, err := s.Prune(t0, []string{"redis", "slow"}); err != nil || n != 0 {
		t.Errorf("Prune(t0) = %d, %v", n, err)
	}
	// The slowest sink holds the floor: 1 and 2 go although 3 and 4 are old and given to redis.
	if n, err := s.Prune(t0.Add(10*time.Hour), []string{"redis", "slow"}); err != nil || n != 2 {
		t.Errorf("Prune = %d, %v; want 2", n, err)
	}
	left, _ := s.Since(time.Time{}, 0)
	if d := cmp.Diff([]uint64{3, 4, 5}, ids(left)); d != "" {
		t.Errorf("left (-want +got):\n%s", d)
	}
	// Age stops pruning too: event 3 is at t0+2h.
	if err := s.SetCursor("slow", 5); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Prune(t0.Add(2*time.Hour), []string{"redis", "slow"}); err != nil || n != 0 {
		t.Errorf("Prune(t0+2h) = %d, %v; want 0", n, err)
	}
	// A sink never given anything keeps everything.
	if n, err := s.Prune(t0.Add(10*time.Hour), []string{"redis", "new"}); err != nil || n != 0 {
		t.Errorf("Prune with a new sink = %d, %v; want 0", n, err)
	}
	if c, err := s.Cursor("new"); err != nil || c != 0 {
		t.Errorf("Cursor(new) = %d, %v", c, err)
	}
}

// TestStoreCorrupt: a damaged record is an error naming it, never a panic or a silent skip.
func TestStoreCorrupt(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Record([]Event{{Time: t0, Kind: KindAppeared}}, State{"k": {Status: "valid"}}); err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketEvents).Put(idKey(2), []byte("{")); err != nil {
			return err
		}
		return tx.Bucket(bucketFinding).Put([]byte("k"), []byte("["))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Since(time.Time{}, 0); err == nil || !strings.Contains(err.Error(), "event 2") {
		t.Errorf("Since over a damaged event = %v", err)
	}
	if _, err := s.After(0, 10); err == nil {
		t.Error("After over a damaged event succeeded")
	}
	if _, err := s.LastState(); err == nil || !strings.HasPrefix(err.Error(), "store: state: ") {
		t.Errorf("LastState over a damaged state = %v", err)
	}
	if _, err := New(Config{Interval: time.Second, Observer: &fakeObserver{}}, s); err == nil {
		t.Error("New over a damaged state succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Record([]Event{{Time: t0}}, nil); err == nil || !strings.HasPrefix(err.Error(), "store: record: ") {
		t.Errorf("Record on a closed store = %v", err)
	}
}
