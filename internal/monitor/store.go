package monitor

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// StoreFile is the store's file name under the data directory.
const StoreFile = "bindguard.db"

var (
	bucketEvents  = []byte("events")   // id (8 bytes, big endian) -> Event JSON
	bucketState   = []byte("state")    // format 1: "last" -> State JSON
	bucketFinding = []byte("findings") // format 2: state key -> Entry JSON
	keyStateSet   = []byte("state")    // in meta: a state has been recorded
	bucketCursors = []byte("cursors")  // sink name -> last delivered id
	bucketMeta    = []byte("meta")     // "format" -> the store's format, one byte
	keyLast       = []byte("last")
	keyFormat     = []byte("format")
)

// StoreFormat is the format this version writes. Format 1 (no meta bucket) had v1 events and
// missing services keyed without a namespace; OpenStore migrates it in place.
const StoreFormat = 2

// migratedNetns is the namespace a v1 store's missing services are given: v1 judged every
// namespace by the host's one flat policy.
const migratedNetns = "host"

// ErrLocked is returned when another process (a running bindguard serve) holds the store.
var ErrLocked = errors.New("the store is in use by another process (is bindguard serve running? ask it with --url)")

// Store keeps drift events and the last audit's state in a bbolt file. Events are written
// before they are sent anywhere; sinks read them after their cursor, so each is delivered at
// least once, with its stable ID.
type Store struct {
	db *bolt.DB
	// now stamps stored_at; time.Now unless a test sets it.
	now func() time.Time
	// scoreMu serialises RecordScore; lastScore is the newest score point (nil: not read yet).
	scoreMu   sync.Mutex
	lastScore *ScorePoint
}

// OpenStore opens (creating) DIR/bindguard.db. readOnly opens it shared, for readers.
func OpenStore(dir string, readOnly bool) (*Store, error) {
	if !readOnly {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	path := filepath.Join(dir, StoreFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: readOnly})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	if !readOnly {
		err = db.Update(func(tx *bolt.Tx) error {
			fresh := tx.Bucket(bucketEvents) == nil && tx.Bucket(bucketState) == nil
			for _, b := range [][]byte{bucketEvents, bucketState, bucketCursors, bucketMeta, bucketFinding} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			meta := tx.Bucket(bucketMeta)
			switch v := meta.Get(keyFormat); {
			case len(v) == 1 && v[0] == StoreFormat:
				return nil
			case len(v) == 1 && v[0] > StoreFormat:
				return fmt.Errorf("format %d was written by a newer bindguard (this one reads up to %d)", v[0], StoreFormat)
			case v != nil:
				return fmt.Errorf("unknown format %q", v)
			case !fresh:
				if err := migrateV1(tx); err != nil {
					return fmt.Errorf("migrate from format 1: %w", err)
				}
			}
			return meta.Put(keyFormat, []byte{StoreFormat})
		})
		if err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("store %s: %w", path, err)
		}
	}
	return &Store{db: db, now: time.Now}, nil
}

// migrateV1 rewrites a format 1 store: a missing service's events get the host's namespace, and
// its state entry the key "missing|host|SERVICE|PROTO|PORT"; the state moves from one value
// (state/last) to one key per finding (findings), so that a kernel event's commit writes only
// what changed. Events keep their IDs and kinds (history stays what was recorded); they have no
// judged_at or stored_at.
func migrateV1(tx *bolt.Tx) error {
	b := tx.Bucket(bucketEvents)
	type kv struct{ k, v []byte }
	var rewrite []kv
	err := b.ForEach(func(k, v []byte) error {
		var e Event
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("event %d: %w", binary.BigEndian.Uint64(k), err)
		}
		if e.Netns != "" || e.Kind == KindPolicyReloaded {
			return nil
		}
		e.Netns = migratedNetns
		nv, err := json.Marshal(e)
		rewrite = append(rewrite, kv{append([]byte(nil), k...), nv})
		return err
	})
	if err != nil {
		return err
	}
	for _, r := range rewrite {
		if err := b.Put(r.k, r.v); err != nil {
			return err
		}
	}
	v := tx.Bucket(bucketState).Get(keyLast)
	if v == nil {
		return nil
	}
	var old State
	if err := json.Unmarshal(v, &old); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	st := State{}
	for k, e := range old {
		if rest, ok := strings.CutPrefix(k, "missing|"); ok {
			e.Netns = migratedNetns
			k = "missing|" + migratedNetns + "|" + rest
		}
		st[k] = e
	}
	if err := putState(tx, st); err != nil {
		return err
	}
	return tx.Bucket(bucketState).Delete(keyLast)
}

// putState replaces the recorded state with st.
func putState(tx *bolt.Tx, st State) error {
	if err := tx.DeleteBucket(bucketFinding); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
		return err
	}
	b, err := tx.CreateBucket(bucketFinding)
	if err != nil {
		return err
	}
	return changeState(tx, b, st, nil)
}

// changeState writes upsert's entries and deletes drop's keys.
func changeState(tx *bolt.Tx, b *bolt.Bucket, upsert State, drop []string) error {
	for k, e := range upsert {
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(k), v); err != nil {
			return err
		}
	}
	for _, k := range drop {
		if err := b.Delete([]byte(k)); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketMeta).Put(keyStateSet, []byte{1})
}

// SetClock sets the clock that stamps stored_at (tests); nil is time.Now.
func (s *Store) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.now = now
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

func idKey(id uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, id)
	return k
}

// Record appends events (assigning their IDs and stamping stored_at) and, when state is not
// nil, replaces the last state, in one transaction: after a crash either both are there or
// neither. It returns once the transaction is durable (bbolt syncs on commit).
func (s *Store) Record(events []Event, state State) ([]Event, error) {
	return s.record(events, state, nil, nil)
}

// RecordChange is Record with the state changed, not replaced: upsert's entries written and
// drop's keys deleted.
func (s *Store) RecordChange(events []Event, upsert State, drop []string) ([]Event, error) {
	if upsert == nil {
		upsert = State{}
	}
	return s.record(events, nil, upsert, drop)
}

func (s *Store) record(events []Event, state, upsert State, drop []string) ([]Event, error) {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		stored := s.now().UTC()
		for i := range events {
			events[i].StoredAt = stored
			id, err := b.NextSequence()
			if err != nil {
				return err
			}
			events[i].ID = id
			v, err := json.Marshal(events[i])
			if err != nil {
				return err
			}
			if err := b.Put(idKey(id), v); err != nil {
				return err
			}
		}
		switch {
		case state != nil:
			return putState(tx, state)
		case upsert != nil:
			return changeState(tx, tx.Bucket(bucketFinding), upsert, drop)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: record: %w", err)
	}
	return events, nil
}

// LastState is the state the last audit left, nil when there is none.
func (s *Store) LastState() (State, error) {
	var st State
	err := s.db.View(func(tx *bolt.Tx) error {
		if m := tx.Bucket(bucketMeta); m == nil || m.Get(keyStateSet) == nil {
			// Format 1 (a reader of a store not migrated yet), or none recorded.
			if b := tx.Bucket(bucketState); b != nil {
				if v := b.Get(keyLast); v != nil {
					return json.Unmarshal(v, &st)
				}
			}
			return nil
		}
		st = State{}
		b := tx.Bucket(bucketFinding)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			st[string(k)] = e
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: state: %w", err)
	}
	return st, nil
}

// Since returns the events at or after t, oldest first, at most limit (0: all).
func (s *Store) Since(t time.Time, limit int) ([]Event, error) {
	var out []Event
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("event %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if e.Time.Before(t) {
				continue
			}
			out = append(out, e)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return out, nil
}

// After returns up to limit events with IDs after id, oldest first.
func (s *Store) After(id uint64, limit int) ([]Event, error) {
	var out []Event
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Seek(idKey(id + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// Cursor is the last event ID delivered to sink.
func (s *Store) Cursor(sink string) (uint64, error) {
	var id uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketCursors).Get([]byte(sink)); len(v) == 8 {
			id = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return id, err
}

// SetCursor records that sink has every event up to id.
func (s *Store) SetCursor(sink string, id uint64) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketCursors).Put([]byte(sink), idKey(id)) })
}

// Prune deletes events older than before that every sink in sinks has been given.
func (s *Store) Prune(before time.Time, sinks []string) (int, error) {
	// Find what is due in a read transaction: most audits have nothing to prune, and a write
	// transaction would cost a file sync each time.
	var doomed [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		floor := ^uint64(0)
		for _, sk := range sinks {
			v := tx.Bucket(bucketCursors).Get([]byte(sk))
			c := uint64(0)
			if len(v) == 8 {
				c = binary.BigEndian.Uint64(v)
			}
			floor = min(floor, c)
		}
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if binary.BigEndian.Uint64(k) > floor {
				break
			}
			var e Event
			if err := json.Unmarshal(v, &e); err != nil || !e.Time.Before(before) {
				break
			}
			doomed = append(doomed, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil || len(doomed) == 0 {
		return 0, err
	}
	// This process is the only writer: what was due still is.
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(doomed), nil
}

// Score history: one point each time a score changes, so the dashboard's chart is exact and
// an unchanged audit writes nothing (a write costs a file sync).
var bucketScores = []byte("scores") // time (unix nanoseconds, 8 bytes big endian) -> ScorePoint JSON

// ScoreHistoryPoints bounds the score history: at most this many points are kept, and none
// older than serve's --retention (the newest is always kept, so the score in force is known
// after a restart however long the daemon was down).
const ScoreHistoryPoints = 10000

// ScorePoint is the scores of one audit: the host's and each namespace's, by label.
type ScorePoint struct {
	Time       time.Time      `json:"time"`
	Score      int            `json:"score"`
	Namespaces map[string]int `json:"namespaces"`
}

// sameScores reports whether two points have the same scores.
func sameScores(a, b ScorePoint) bool {
	return a.Score == b.Score && maps.Equal(a.Namespaces, b.Namespaces)
}

// RecordScore appends p unless the newest point has the same scores, then drops the oldest
// points beyond keep and those before before (the newest always stays). It reports whether
// p was written.
func (s *Store) RecordScore(p ScorePoint, keep int, before time.Time) (bool, error) {
	if keep < 1 {
		keep = 1
	}
	s.scoreMu.Lock()
	defer s.scoreMu.Unlock()
	if s.lastScore != nil && sameScores(*s.lastScore, p) {
		return false, nil // no write transaction (each costs a file sync)
	}
	written := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketScores)
		if err != nil {
			return err
		}
		c := b.Cursor()
		k, v := c.Last()
		if k != nil {
			var last ScorePoint
			if err := json.Unmarshal(v, &last); err != nil {
				return fmt.Errorf("score %x: %w", k, err)
			}
			if sameScores(last, p) {
				s.lastScore = &last
				return nil
			}
		}
		at := uint64(max(0, p.Time.UnixNano())) // #nosec G115 -- not negative
		if k != nil && binary.BigEndian.Uint64(k) >= at {
			at = binary.BigEndian.Uint64(k) + 1 // the clock went back: keep the order
		}
		val, err := json.Marshal(p)
		if err != nil {
			return err
		}
		if err := b.Put(idKey(at), val); err != nil {
			return err
		}
		written = true
		floor := uint64(0)
		if before.UnixNano() > 0 {
			floor = uint64(before.UnixNano()) // #nosec G115 -- positive
		}
		var keys []uint64
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			keys = append(keys, binary.BigEndian.Uint64(k))
		}
		var doomed [][]byte
		for i, k := range keys {
			if k == at || (len(keys)-i <= keep && k >= floor) {
				break
			}
			doomed = append(doomed, idKey(k))
		}
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: score: %w", err)
	}
	if written {
		s.lastScore = &p
	}
	return written, nil
}

// Scores returns the score points at or after since, oldest first, led by the last point
// before since (the score in force when the window opens), if there is one.
func (s *Store) Scores(since time.Time) ([]ScorePoint, error) {
	var out []ScorePoint
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketScores)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		from := uint64(0)
		if since.UnixNano() > 0 {
			from = uint64(since.UnixNano()) // #nosec G115 -- positive
		}
		var k, v []byte
		if sk, _ := c.Seek(idKey(from)); sk == nil {
			k, v = c.Last() // every point is older: the last is in force
		} else if pk, pv := c.Prev(); pk != nil {
			k, v = pk, pv
		} else {
			k, v = c.First()
		}
		for ; k != nil; k, v = c.Next() {
			var p ScorePoint
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("score %x: %w", k, err)
			}
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: scores: %w", err)
	}
	return out, nil
}

// Recent returns up to limit of the newest events, newest first, back to the first one before
// since (IDs follow the order of storing, so the walk stops there): the dashboard's timeline
// reads what it shows without decoding the whole history.
func (s *Store) Recent(since time.Time, limit int) ([]Event, error) {
	var out []Event
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("event %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if e.Time.Before(since) {
				break
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return out, nil
}
