package monitor

import (
	"sync"
	"time"
)

// ReloadStatus is the outcome of the last policy (re)load, for /health and /metrics, as
// Prometheus's own config_last_reload_successful. The load at start counts as a success.
type ReloadStatus struct {
	mu          sync.Mutex
	ok          bool
	lastSuccess time.Time
	lastFailure time.Time
	lastErr     string
}

// NewReloadStatus records the successful load at start, at now.
func NewReloadStatus(now time.Time) *ReloadStatus {
	return &ReloadStatus{ok: true, lastSuccess: now}
}

// Record records a reload at now: loaded says whether the new policy is in force; err, when
// it is not, why.
func (s *ReloadStatus) Record(now time.Time, loaded bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ok = loaded
	if loaded {
		s.lastSuccess, s.lastErr = now, ""
		return
	}
	s.lastFailure = now
	s.lastErr = "unknown error"
	if err != nil {
		s.lastErr = err.Error()
	}
}

// Last is the last reload's outcome: whether it succeeded, when the last success was, and,
// when it failed, when and why.
func (s *ReloadStatus) Last() (ok bool, lastSuccess, lastFailure time.Time, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ok, s.lastSuccess, s.lastFailure, s.lastErr
}
