package anomaly

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// snapshotVersion is written in snapshots and checked on Restore.
const snapshotVersion = 1

// snapshot is the JSON form of a Monitor's baselines.
type snapshot struct {
	Version int          `json:"version"`
	Window  string       `json:"window"` // a time.Duration; baselines are per window
	Agents  []AgentState `json:"agents"`
}

// AgentState is what is known of an agent across windows: what a snapshot
// keeps of it, and what [Monitor.Agent] reports.
type AgentState struct {
	Agent    string    `json:"agent"`
	Team     string    `json:"team,omitempty"`
	LastSeen time.Time `json:"last_seen"`
	// Windows is the number of active windows closed so far; the agent
	// alerts once it reaches the warm-up.
	Windows  int                `json:"windows"`
	Baseline map[Metric]float64 `json:"baseline"`
	Labels   []string           `json:"labels,omitempty"` // labels touched so far, sorted
}

func (a *agent) state() AgentState {
	st := AgentState{Agent: a.name, Team: a.team, Windows: a.windows, Baseline: make(map[Metric]float64, nBase)}
	if a.lastSeen != 0 {
		st.LastSeen = time.Unix(0, a.lastSeen).UTC()
	}
	for i, m := range baselined {
		st.Baseline[m] = a.base[i]
	}
	for l := range a.seenLabels {
		st.Labels = append(st.Labels, l)
	}
	slices.Sort(st.Labels)
	return st
}

// Agent returns what is known of one agent; false if it is not tracked.
// The open window is not included.
func (m *Monitor) Agent(name string) (AgentState, bool) {
	s := m.shard(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.agents[name]
	if a == nil {
		return AgentState{}, false
	}
	return a.state(), true
}

// Snapshot writes every agent's baselines, warm-up progress and known
// labels as JSON, agents sorted by name. Open windows are left out: a
// restart loses at most one window of counting per agent.
func (m *Monitor) Snapshot() ([]byte, error) {
	snap := snapshot{Version: snapshotVersion, Window: m.set.windowSpan.String(), Agents: []AgentState{}}
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for _, a := range s.agents {
			snap.Agents = append(snap.Agents, a.state())
		}
		s.mu.Unlock()
	}
	slices.SortFunc(snap.Agents, func(a, b AgentState) int { return strings.Compare(a.Agent, b.Agent) })
	b, err := json.Marshal(snap)
	if err != nil {
		return nil, fmt.Errorf("writing anomaly snapshot: %w", err)
	}
	return b, nil
}

// Restore loads a Snapshot, replacing what the Monitor knows of the agents
// in it (agents not in it are kept). A snapshot taken with another window
// length is refused: its baselines count per window and would be
// compared with windows of another size. Nothing is loaded if any part of
// the snapshot is invalid.
func (m *Monitor) Restore(data []byte) error {
	var snap snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("reading anomaly snapshot: %w", err)
	}
	if snap.Version != snapshotVersion {
		return fmt.Errorf("anomaly snapshot version %d: want %d", snap.Version, snapshotVersion)
	}
	if w, err := time.ParseDuration(snap.Window); err != nil || w != m.set.windowSpan {
		return fmt.Errorf("anomaly snapshot window %q: this monitor's window is %v", snap.Window, m.set.windowSpan)
	}
	agents := make([]*agent, 0, len(snap.Agents))
	for _, st := range snap.Agents {
		a, err := m.fromState(st)
		if err != nil {
			return fmt.Errorf("anomaly snapshot: agent %q: %w", st.Agent, err)
		}
		agents = append(agents, a)
	}
	for _, a := range agents {
		s := m.shard(a.name)
		s.mu.Lock()
		if _, ok := s.agents[a.name]; !ok {
			m.makeRoom(s)
		}
		s.agents[a.name] = a
		s.mu.Unlock()
	}
	return nil
}

func (m *Monitor) fromState(st AgentState) (*agent, error) {
	if st.Agent == "" {
		return nil, errors.New("no agent name")
	}
	if st.Windows < 0 {
		return nil, fmt.Errorf("windows %d", st.Windows)
	}
	a := newAgent(&m.set, st.Agent, st.LastSeen)
	a.team = st.Team
	a.windows = st.Windows
	for metric, v := range st.Baseline {
		i := index(metric)
		if i < 0 || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return nil, fmt.Errorf("baseline %v of metric %q: want a known metric and a non-negative number", v, metric)
		}
		a.base[i] = v
	}
	for _, l := range st.Labels {
		if len(a.seenLabels) >= m.set.maxKeys {
			break
		}
		never := int64(math.MinInt64) // known, not seen in any window we count
		a.seenLabels[l] = &never
	}
	a.open(&m.set, a.cur) // thresholds from the restored baselines
	return a, nil
}
