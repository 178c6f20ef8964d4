package policy

import (
	"slices"
	"sync"
	"time"
)

// History keeps what policy knows of callers without a session: requests
// of the stateless protocol revision (2026-07-28) carry no session, so
// workflow rules would never see what such a caller has read. Keyed by the
// caller's identity, the history is stricter than a session's (everything
// the agent read recently counts), which errs on the safe side. It is kept
// per replica and forgotten after idle time.
type History struct {
	mu      sync.Mutex
	idle    time.Duration
	entries map[string]*historyEntry
	swept   time.Time
}

type historyEntry struct {
	labels []string
	calls  int
	used   time.Time
}

// maxHistory bounds the callers remembered; beyond it the least recently
// active are dropped first at the next sweep.
const maxHistory = 100_000

// NewHistory returns a history that forgets a caller idle for idle.
func NewHistory(idle time.Duration) *History {
	if idle <= 0 {
		idle = 30 * time.Minute
	}
	return &History{idle: idle, entries: map[string]*historyEntry{}}
}

// Session returns the caller's history as a Session.
func (h *History) Session(key string) Session {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.entries[key]
	if e == nil || time.Since(e.used) > h.idle {
		return Session{}
	}
	return Session{Labels: slices.Clone(e.labels), Calls: e.calls}
}

// Note records a call of the caller: its count, and the labels of what it
// read when the call succeeded.
func (h *History) Note(key string, labels []string, succeeded bool) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.entries[key]
	if e == nil || now.Sub(e.used) > h.idle {
		e = &historyEntry{}
		h.entries[key] = e
	}
	e.used = now
	e.calls++
	if succeeded {
		for _, l := range labels {
			if !slices.Contains(e.labels, l) {
				e.labels = append(e.labels, l)
			}
		}
		slices.Sort(e.labels)
	}
	if now.Sub(h.swept) > h.idle/4 || len(h.entries) > maxHistory {
		h.sweepLocked(now)
	}
}

func (h *History) sweepLocked(now time.Time) {
	h.swept = now
	for k, e := range h.entries {
		if now.Sub(e.used) > h.idle {
			delete(h.entries, k)
		}
	}
	for len(h.entries) > maxHistory {
		var oldest string
		var at time.Time
		for k, e := range h.entries {
			if oldest == "" || e.used.Before(at) {
				oldest, at = k, e.used
			}
		}
		delete(h.entries, oldest)
	}
}
