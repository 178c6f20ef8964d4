package oauth

import (
	"sync"
	"time"
)

// Bounds of the in-memory sets.
const (
	maxSeenJTIs        = 100_000
	maxUsedForms       = 100_000
	maxTrackedUsers    = 10_000
	maxCachedDocuments = 1_000
)

// onceSet remembers single-use values (client-assertion ids, login-form
// tokens) until they expire, so a second use is refused. It is bounded:
// when full of unexpired entries it refuses new ones rather than forget
// old ones, which would reopen them to replay. Safe for concurrent use.
type onceSet struct {
	mu   sync.Mutex
	max  int
	seen map[string]time.Time // value -> expiry
}

func newOnceSet(max int) *onceSet {
	return &onceSet{max: max, seen: map[string]time.Time{}}
}

// onceResult is the outcome of onceSet.use.
type onceResult int

const (
	onceFirst  onceResult = iota // first use: recorded
	onceReplay                   // seen before
	onceFull                     // set full: not recorded, refuse
)

// use records key until exp and says whether it was new.
func (o *onceSet) use(key string, exp, now time.Time) onceResult {
	o.mu.Lock()
	defer o.mu.Unlock()
	if e, ok := o.seen[key]; ok && now.Before(e) {
		return onceReplay
	}
	if len(o.seen) >= o.max {
		for k, e := range o.seen {
			if !now.Before(e) {
				delete(o.seen, k)
			}
		}
		if len(o.seen) >= o.max {
			return onceFull
		}
	}
	o.seen[key] = exp
	return onceFirst
}
