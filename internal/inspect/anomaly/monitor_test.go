package anomaly

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"
)

// t0 starts window 0 of the tests' synthetic traffic.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// at returns a time i windows (of a minute) after t0, plus off.
func at(i int, off time.Duration) time.Time { return t0.Add(time.Duration(i)*time.Minute + off) }

// recorder collects alerts.
type recorder struct {
	mu     sync.Mutex
	alerts []Alert
}

func (r *recorder) add(a Alert) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.alerts = append(r.alerts, a)
}

// take returns the alerts so far and forgets them.
func (r *recorder) take() []Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.alerts
	r.alerts = nil
	return out
}

func newMonitor(tb testing.TB, c Config) (*Monitor, *recorder) {
	tb.Helper()
	r := &recorder{}
	c.OnAlert = r.add
	m, err := New(c)
	if err != nil {
		tb.Fatal(err)
	}
	return m, r
}

// window describes one window of an agent's traffic.
type window struct {
	calls  int
	tools  int   // distinct tools, called round robin; 1 if 0
	bytes  int64 // per call
	errors int   // the first errors calls fail
	labels []string
}

// feed sends window w's traffic for agent, calls spread over the window.
func feed(m *Monitor, agent string, w int, x window) {
	tools := max(x.tools, 1)
	for i := range x.calls {
		m.Observe(Event{
			Agent: agent, Team: "support", Tool: fmt.Sprintf("tool%d", i%tools),
			BytesOut: x.bytes, Error: i < x.errors, Labels: x.labels,
			Time: at(w, time.Duration(i)*time.Minute/time.Duration(x.calls)),
		})
	}
}

// steady is the tests' usual traffic: well under every floor × factor.
var steady = window{calls: 10, tools: 2, bytes: 1000, labels: []string{"crm"}}

// warm feeds windows [0, n) of steady traffic.
func warm(m *Monitor, agent string, n int) {
	for w := range n {
		feed(m, agent, w, steady)
	}
}

func metrics(alerts []Alert) []Metric {
	var out []Metric
	for _, a := range alerts {
		out = append(out, a.Metric)
	}
	return out
}

func TestBurstAlertsOnce(t *testing.T) {
	m, r := newMonitor(t, Config{})
	warm(m, "bot", 40)
	if got := r.take(); len(got) != 0 {
		t.Fatalf("steady traffic alerted: %v", got)
	}
	burst := steady
	burst.calls, burst.bytes = 200, 100 // 20× the calls, bytes still under their floor
	feed(m, "bot", 40, burst)
	got := r.take()
	if len(got) != 1 {
		t.Fatalf("burst: %d alerts, want 1: %v", len(got), got)
	}
	want := Alert{Agent: "bot", Team: "support", Metric: Calls, Value: 101, Baseline: 10, Factor: 10, Threshold: 100,
		WindowStart: at(40, 0), WindowEnd: at(41, 0)}
	if got[0] != want {
		t.Errorf("alert:\n got %+v\nwant %+v", got[0], want)
	}
	for w := 41; w < 60; w++ {
		feed(m, "bot", w, steady)
	}
	if got := r.take(); len(got) != 0 {
		t.Errorf("steady traffic after the burst alerted: %v", got)
	}
	// The burst moved the baseline only up to its threshold's pull.
	st, _ := m.Agent("bot")
	if b := st.Baseline[Calls]; b < 10 || b > 14.5 {
		t.Errorf("calls baseline %v after the burst, want in [10, 14.5]", b)
	}
}

func TestLateAlerts(t *testing.T) {
	m, r := newMonitor(t, Config{LateAlerts: true})
	warm(m, "bot", 35)
	burst := steady
	burst.calls, burst.bytes = 200, 100
	feed(m, "bot", 35, burst)
	if got := r.take(); len(got) != 0 {
		t.Fatalf("late alerts raised before the window closed: %v", got)
	}
	m.Tick(at(36, -time.Nanosecond))
	if got := r.take(); len(got) != 0 {
		t.Fatalf("Tick inside the window closed it: %v", got)
	}
	m.Tick(at(36, 0)) // no further event: Tick closes the window
	got := r.take()
	if len(got) != 1 || got[0].Metric != Calls || got[0].Value != 200 || !got[0].WindowEnd.Equal(at(36, 0)) {
		t.Fatalf("after Tick: %v, want one calls alert of value 200 for window 35", got)
	}
	m.Tick(at(37, 0))
	if got := r.take(); len(got) != 0 {
		t.Errorf("a second Tick alerted again: %v", got)
	}
}

func TestSlowDriftDoesNotAlert(t *testing.T) {
	m, r := newMonitor(t, Config{})
	warm(m, "bot", 30)
	// 3% more calls and bytes every window for 150 windows: 10 → 850 calls
	// a minute, far past the first window's threshold, but gradually.
	calls := 10.0
	for w := 30; w < 180; w++ {
		calls *= 1.03
		feed(m, "bot", w, window{calls: int(calls), tools: 2, bytes: 1000, labels: []string{"crm"}})
	}
	if got := r.take(); len(got) != 0 {
		t.Errorf("slow drift alerted %d times: first %v", len(got), got[0])
	}
	if st, _ := m.Agent("bot"); st.Baseline[Calls] < 100 {
		t.Errorf("calls baseline %v did not follow the drift", st.Baseline[Calls])
	}
}

func TestWarmupDoesNotAlert(t *testing.T) {
	m, r := newMonitor(t, Config{})
	// A new agent's first windows are wild: nothing to compare with yet.
	feed(m, "new", 0, window{calls: 5000, tools: 80, bytes: 1 << 20, errors: 4000, labels: []string{"pii", "finance"}})
	for w := 1; w < DefaultWarmup; w++ {
		feed(m, "new", w, window{calls: 10 * w, tools: w, labels: []string{fmt.Sprint("label", w)}})
	}
	if got := r.take(); len(got) != 0 {
		t.Errorf("alerts during warm-up: %v", got)
	}
	st, _ := m.Agent("new")
	if st.Windows != DefaultWarmup-1 {
		t.Errorf("windows = %d, want %d (the open one not yet closed)", st.Windows, DefaultWarmup-1)
	}
}

func TestNewLabel(t *testing.T) {
	m, r := newMonitor(t, Config{})
	warm(m, "bot", 31)
	ev := Event{Agent: "bot", Team: "support", Tool: "tool0", Labels: []string{"crm", "finance"}, Time: at(31, time.Second)}
	m.Observe(ev)
	got := r.take()
	want := []Alert{{Agent: "bot", Team: "support", Metric: NewLabel, Value: 1, Baseline: 1, Label: "finance",
		WindowStart: at(31, 0), WindowEnd: at(32, 0)}}
	if !slices.Equal(got, want) {
		t.Fatalf("new label:\n got %+v\nwant %+v", got, want)
	}
	ev.Time = at(31, 2*time.Second)
	m.Observe(ev)
	ev.Time = at(40, 0)
	m.Observe(ev)
	if got := r.take(); len(got) != 0 {
		t.Errorf("a known label alerted again: %v", got)
	}
}

func TestIdleWindowsDoNotCount(t *testing.T) {
	m, r := newMonitor(t, Config{})
	// Five calls in one minute every hour, with the engine ticking every
	// minute in between, for 40 hours.
	for hour := range 40 {
		w := hour * 60
		feed(m, "hourly", w, window{calls: 5, labels: []string{"crm"}})
		for i := 1; i < 60; i++ {
			m.Tick(at(w+i, 0))
		}
	}
	if got := r.take(); len(got) != 0 {
		t.Errorf("an hourly agent alerted: %v", got)
	}
	st, _ := m.Agent("hourly")
	if st.Windows != 40 {
		t.Errorf("windows = %d, want 40: idle windows must not count", st.Windows)
	}
	if b := st.Baseline[Calls]; math.Abs(b-5) > 1e-9 {
		t.Errorf("calls baseline %v, want 5: idle windows must not drag it down", b)
	}
}

func TestOtherMetrics(t *testing.T) {
	tests := []struct {
		name  string
		burst window
		want  []Metric
	}{
		{"distinct_tools", window{calls: 40, tools: 40, bytes: 100, labels: []string{"crm"}}, []Metric{DistinctTools}},
		{"bytes_out", window{calls: 10, tools: 2, bytes: 100 << 10, labels: []string{"crm"}}, []Metric{BytesOut}},
		{"error_rate", window{calls: 20, tools: 2, bytes: 100, errors: 15, labels: []string{"crm"}}, []Metric{ErrorRate}},
		{"errors_below_min_calls", window{calls: 3, tools: 2, bytes: 100, errors: 3, labels: []string{"crm"}}, nil},
		{"under_every_threshold", window{calls: 90, tools: 20, bytes: 7000, errors: 2, labels: []string{"crm"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, r := newMonitor(t, Config{})
			warm(m, "bot", 30)
			feed(m, "bot", 30, tt.burst)
			feed(m, "bot", 31, steady)
			if got := metrics(r.take()); !slices.Equal(got, tt.want) {
				t.Errorf("alerts %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDistinctLabels(t *testing.T) {
	m, r := newMonitor(t, Config{})
	var all []string
	for w := range 30 { // learn 25 labels, one or two a window
		l := fmt.Sprint("label", w%25)
		if !slices.Contains(all, l) {
			all = append(all, l)
		}
		feed(m, "bot", w, window{calls: 10, labels: []string{l}})
	}
	feed(m, "bot", 30, window{calls: 10, labels: all}) // every known label at once
	if got := r.take(); !slices.Equal(metrics(got), []Metric{DistinctLabels}) || got[0].Value != 25 {
		t.Errorf("alerts %v, want one distinct_labels alert at 25", got)
	}
}

func TestFactorsAndFloors(t *testing.T) {
	burst := window{calls: 200, labels: []string{"crm", "new"}}
	tests := []struct {
		name string
		cfg  Config
		want []Metric
	}{
		{"defaults", Config{}, []Metric{NewLabel, Calls}},
		{"calls_disabled", Config{Factors: map[Metric]float64{Calls: 0}}, []Metric{NewLabel}},
		{"new_label_disabled", Config{Factors: map[Metric]float64{NewLabel: -1}}, []Metric{Calls}},
		{"higher_factor", Config{Factors: map[Metric]float64{Calls: 25}}, []Metric{NewLabel}},
		{"higher_floor", Config{Floors: map[Metric]float64{Calls: 30}}, []Metric{NewLabel}},
		{"shorter_warmup", Config{Warmup: 5}, []Metric{NewLabel, Calls}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, r := newMonitor(t, tt.cfg)
			warm(m, "bot", 30)
			feed(m, "bot", 30, burst)
			if got := metrics(r.take()); !slices.Equal(got, tt.want) {
				t.Errorf("alerts %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOutOfOrderEvents(t *testing.T) {
	m, _ := newMonitor(t, Config{})
	m.Observe(Event{Agent: "bot", Tool: "a", Time: at(5, 0)})
	m.Observe(Event{Agent: "bot", Tool: "b", Time: at(4, 59*time.Second)}) // late: counts in window 5
	m.Observe(Event{Agent: "bot", Tool: "c"})                              // no time: counts in window 5
	m.Tick(at(6, 0))
	st, _ := m.Agent("bot")
	if st.Windows != 1 || st.Baseline[Calls] != 3 || st.Baseline[DistinctTools] != 3 {
		t.Errorf("state %+v, want one window of 3 calls to 3 tools", st)
	}
	if !st.LastSeen.Equal(at(5, 0)) {
		t.Errorf("last seen %v, want %v", st.LastSeen, at(5, 0))
	}
}

func TestEviction(t *testing.T) {
	m, _ := newMonitor(t, Config{IdleEvict: 24 * time.Hour, MaxAgents: 3})
	for i, name := range []string{"a", "b", "c"} {
		m.Observe(Event{Agent: name, Time: at(i, 0)})
	}
	m.Observe(Event{Agent: "d", Time: at(3, 0)}) // over the cap: "a", the least recently seen, goes
	if _, ok := m.Agent("a"); ok || m.Len() != 3 {
		t.Errorf("after a 4th agent: %d agents, a tracked: %v", m.Len(), ok)
	}
	m.Observe(Event{Agent: "c", Time: at(24*60+2, 0)})
	m.Tick(at(24*60+4, 0)) // b and d idle for more than a day
	if m.Len() != 1 {
		t.Errorf("after Tick: %d agents, want 1", m.Len())
	}
	if _, ok := m.Agent("c"); !ok {
		t.Error("the recently seen agent was evicted")
	}
}

func TestManyToolsBounded(t *testing.T) {
	m, _ := newMonitor(t, Config{MaxKeys: 8})
	for w := range 5 {
		feed(m, "bot", w, window{calls: 20, tools: 20, labels: []string{fmt.Sprint("l", w)}})
	}
	m.Tick(at(5, 0))
	st, _ := m.Agent("bot")
	if st.Baseline[DistinctTools] < 20 {
		t.Errorf("distinct tools baseline %v: past MaxKeys the count must not run low", st.Baseline[DistinctTools])
	}
	s := m.shard("bot")
	if n := len(s.agents["bot"].seenTools); n > 8 {
		t.Errorf("%d tools remembered, want at most 8", n)
	}
}

func TestConcurrentObserve(t *testing.T) {
	m, r := newMonitor(t, Config{})
	agents := []string{"a", "b", "c", "d"}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				m.Observe(Event{Agent: agents[(g+i)%len(agents)], Tool: fmt.Sprint("t", i%3), BytesOut: 10,
					Labels: []string{"crm"}, Time: at(0, time.Duration(i)*time.Millisecond)})
			}
		})
	}
	wg.Add(1)
	go func() { // Tick and Snapshot alongside, for the race detector
		defer wg.Done()
		for range 50 {
			m.Tick(at(0, 0))
			if _, err := m.Snapshot(); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	m.Tick(at(1, 0))
	for _, a := range agents {
		st, _ := m.Agent(a)
		if st.Baseline[Calls] != 1000 || st.Baseline[BytesOut] != 10000 || st.Baseline[DistinctTools] != 3 {
			t.Errorf("agent %s: baseline %v, want 1000 calls, 10000 bytes, 3 tools", a, st.Baseline)
		}
	}
	if got := r.take(); len(got) != 0 {
		t.Errorf("alerts: %v", got)
	}
}

func TestIgnoresEmptyAgent(t *testing.T) {
	m, _ := newMonitor(t, Config{})
	m.Observe(Event{Tool: "t", Time: t0})
	if m.Len() != 0 {
		t.Errorf("an event without an agent is tracked")
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"negative_window", Config{Window: -time.Second}},
		{"negative_warmup", Config{Warmup: -1}},
		{"alpha_too_big", Config{Alpha: 1.5}},
		{"unknown_factor", Config{Factors: map[Metric]float64{"latency": 3}}},
		{"nan_factor", Config{Factors: map[Metric]float64{Calls: math.NaN()}}},
		{"negative_floor", Config{Floors: map[Metric]float64{Calls: -1}}},
		{"floor_of_new_label", Config{Floors: map[Metric]float64{NewLabel: 1}}},
		{"negative_max_agents", Config{MaxAgents: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestParseMetric(t *testing.T) {
	for _, m := range append(baselined[:], NewLabel) {
		if got, err := ParseMetric(string(m)); err != nil || got != m {
			t.Errorf("ParseMetric(%q) = %q, %v", m, got, err)
		}
	}
	if _, err := ParseMetric("latency"); err == nil {
		t.Error("ParseMetric(latency): no error")
	}
}

func TestFloorDiv(t *testing.T) {
	tests := []struct{ a, b, want int64 }{{7, 2, 3}, {-7, 2, -4}, {-8, 2, -4}, {0, 5, 0}, {-1, 60, -1}}
	for _, tt := range tests {
		if got := floorDiv(tt.a, tt.b); got != tt.want {
			t.Errorf("floorDiv(%d, %d) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
