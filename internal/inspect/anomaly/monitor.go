package anomaly

import (
	"hash/maphash"
	"sync"
	"time"
)

// Monitor holds every agent's baselines. It is safe for concurrent use.
type Monitor struct {
	set      settings
	seed     maphash.Seed
	shards   []shard
	perShard int // agents a shard holds before it evicts
}

// shard is a lock and the agents hashed to it. Observe holds the lock for
// a few counter updates and map lookups, so sharding by agent is enough
// to keep parallel calls from waiting on each other.
type shard struct {
	mu     sync.Mutex
	agents map[string]*agent
	_      [48]byte // keep neighbouring shards' locks off one cache line
}

// maxShards bounds the shards; minPerShard keeps small agent caps exact
// enough (the cap is enforced per shard).
const (
	maxShards   = 64
	minPerShard = 16
)

// New returns a Monitor, or an error for an invalid Config.
func New(c Config) (*Monitor, error) {
	s, err := compile(c)
	if err != nil {
		return nil, err
	}
	n := 1
	for n*2 <= maxShards && n*2*minPerShard <= s.maxAgents {
		n *= 2
	}
	m := &Monitor{set: s, seed: maphash.MakeSeed(), shards: make([]shard, n), perShard: s.maxAgents / n}
	for i := range m.shards {
		m.shards[i].agents = make(map[string]*agent)
	}
	return m, nil
}

func (m *Monitor) shard(agent string) *shard {
	return &m.shards[maphash.String(m.seed, agent)&uint64(len(m.shards)-1)]
}

// Observe counts one tools/call. Events without an agent are ignored.
func (m *Monitor) Observe(ev Event) {
	if ev.Agent == "" {
		return
	}
	s := m.shard(ev.Agent)
	s.mu.Lock()
	a := s.agents[ev.Agent]
	if a == nil {
		a = m.add(s, ev.Agent, ev.Time)
	}
	alerts := a.observe(&m.set, &ev, nil)
	s.mu.Unlock()
	m.emit(alerts)
}

// add starts tracking an agent, first making room for it. Called with
// s.mu held.
func (m *Monitor) add(s *shard, name string, t time.Time) *agent {
	m.makeRoom(s)
	a := newAgent(&m.set, name, t)
	s.agents[a.name] = a
	return a
}

// makeRoom forgets the shard's least recently seen agent if the shard is
// full. Called with s.mu held.
func (m *Monitor) makeRoom(s *shard) {
	if len(s.agents) < m.perShard {
		return
	}
	var oldest *agent
	for _, a := range s.agents {
		if oldest == nil || a.lastSeen < oldest.lastSeen {
			oldest = a
		}
	}
	delete(s.agents, oldest.name)
}

// Tick closes the windows that ended before now, so agents that went
// quiet have their last window counted (and, with LateAlerts, judged),
// and forgets agents idle for longer than IdleEvict. The engine calls it
// periodically, at least once a window.
func (m *Monitor) Tick(now time.Time) {
	ns := now.UnixNano()
	idx := floorDiv(ns, m.set.window)
	evictBefore := ns - m.set.idleEvict
	for i := range m.shards {
		s := &m.shards[i]
		var alerts []Alert
		s.mu.Lock()
		for name, a := range s.agents {
			if a.lastSeen < evictBefore {
				delete(s.agents, name)
				continue
			}
			if a.active && idx > a.cur {
				alerts = a.roll(&m.set, idx, alerts)
			}
		}
		s.mu.Unlock()
		m.emit(alerts)
	}
}

// Len returns the number of agents tracked.
func (m *Monitor) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.agents)
		s.mu.Unlock()
	}
	return n
}

func (m *Monitor) emit(alerts []Alert) {
	if m.set.onAlert == nil {
		return
	}
	for _, a := range alerts {
		m.set.onAlert(a)
	}
}

// floorDiv divides rounding toward minus infinity, so times before 1970
// still fall in the window that contains them.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
