package oauth

import (
	"strings"
	"sync"
	"time"
)

// Failed-login backoff: after freeFailures wrong passwords for one
// username, each further attempt must wait 1 s, 2 s, 4 s, … up to
// maxBackoff; the counter is forgotten after forgetAfter without failures
// and reset by a successful login. It applies to unknown usernames as
// well, so it tells nothing about which usernames exist.
const (
	freeFailures = 3
	maxBackoff   = time.Minute
	forgetAfter  = 15 * time.Minute
)

// failures counts failed logins per username. Safe for concurrent use.
type failures struct {
	mu    sync.Mutex
	max   int
	users map[string]*failure
}

type failure struct {
	count int
	last  time.Time // of the last failure
	until time.Time // no attempt before this
}

func newFailures(max int) *failures {
	return &failures{max: max, users: map[string]*failure{}}
}

func failureKey(username string) string { return strings.ToLower(strings.TrimSpace(username)) }

// wait returns how long the username must still wait before trying again.
func (f *failures) wait(username string, now time.Time) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.users[failureKey(username)]
	if e == nil || !now.Before(e.until) {
		return 0
	}
	return e.until.Sub(now)
}

// fail records a failed attempt.
func (f *failures) fail(username string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := failureKey(username)
	e := f.users[k]
	if e != nil && now.Sub(e.last) > forgetAfter {
		e = nil
	}
	if e == nil {
		if len(f.users) >= f.max {
			f.sweepLocked(now)
		}
		e = &failure{}
		f.users[k] = e
	}
	e.count++
	e.last = now
	if n := e.count - freeFailures; n > 0 {
		d := maxBackoff
		if n <= 6 {
			d = min(time.Duration(1<<(n-1))*time.Second, maxBackoff)
		}
		e.until = now.Add(d)
	}
}

// succeed forgets the failures of a username.
func (f *failures) succeed(username string) {
	f.mu.Lock()
	delete(f.users, failureKey(username))
	f.mu.Unlock()
}

// sweepLocked drops forgotten entries; if the map is still full it drops
// the entries with the fewest failures, keeping the ones under attack.
func (f *failures) sweepLocked(now time.Time) {
	for k, e := range f.users {
		if now.Sub(e.last) > forgetAfter {
			delete(f.users, k)
		}
	}
	for k, e := range f.users {
		if len(f.users) < f.max {
			break
		}
		if e.count <= freeFailures {
			delete(f.users, k)
		}
	}
	for k := range f.users {
		if len(f.users) < f.max {
			break
		}
		delete(f.users, k)
	}
}
