// Package anomaly keeps a baseline of each agent's activity and raises an
// alert when a window of it departs from the baseline by a configured
// factor (an agent that usually makes 5 calls a minute making 500, or
// touching a data label it never touched before).
//
// # Windows
//
// Time is cut into fixed windows (default one minute) aligned on the Unix
// epoch, the same for every agent. [Monitor.Observe] counts one tools/call
// into its agent's open window; a window closes when the agent's next
// event falls in a later window, or when [Monitor.Tick] passes its end, so
// an agent that went quiet still has its last window closed. Time only
// ever comes from events and Tick, never from the clock, so replaying
// traffic gives the same alerts. An event older than the agent's open
// window (events from concurrent calls arrive slightly out of order) is
// counted in the open window.
//
// # Metrics
//
// Per agent and window: calls, distinct tools, bytes out, error rate
// (errors / calls) and distinct data labels, each with a baseline; and
// new_label, raised the first time an agent touches a label, which has
// none.
//
// # Baselines
//
// A baseline is an exponentially weighted moving average of the metric
// over closed windows. While fewer windows than 1/Alpha have been seen the
// weight of a window is 1/n instead, so the baseline starts as the plain
// mean rather than leaning on the first window. Until Warmup windows have
// closed nothing alerts: the baseline is still being learnt, and so is the
// set of labels the agent touches.
//
// Idle windows (no calls) do not count: they neither advance the warm-up
// nor move the baseline. The baseline is thus what a window of this
// agent's activity looks like, not an average over the clock, so an agent
// used once an hour keeps the baseline of its busy minutes, and its next
// busy minute is compared with those rather than with the empty minutes
// in between (which would drag every baseline to zero and make each busy
// minute an alert). The cost: an agent becoming active more often at its
// usual rate per active window is not an anomaly here.
//
// # Alerts
//
// A metric alerts when its value exceeds Factor × max(baseline, Floor):
// the floor keeps a baseline near zero from making any activity an
// infinite departure (0 calls then 3 is not an attack). By default the
// alert is raised as soon as the running window crosses the threshold,
// once per metric per window; with LateAlerts it is raised when the
// window closes, carrying the whole window's value. A window that
// alerted still feeds the baseline, but capped at the threshold, so one
// huge burst cannot raise the baseline enough to hide the next one, while
// a lasting change of habit is learnt in a few windows.
//
// # Memory
//
// Agents idle for longer than IdleEvict are forgotten on Tick; past
// MaxAgents, adding an agent forgets the least recently seen one of its
// shard. Each agent remembers at most MaxKeys tools and MaxKeys labels.
// [Monitor.Snapshot] and [Monitor.Restore] carry baselines across
// restarts (the open windows are not saved).
package anomaly

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Metric names a measured quantity. The names are used in configuration,
// alerts and snapshots.
type Metric string

// Metrics.
const (
	Calls          Metric = "calls"           // tools/call requests in the window
	DistinctTools  Metric = "distinct_tools"  // different tools called in the window
	BytesOut       Metric = "bytes_out"       // response bytes sent to the agent in the window
	ErrorRate      Metric = "error_rate"      // failed calls / calls, 0 to 1
	DistinctLabels Metric = "distinct_labels" // different data labels touched in the window
	NewLabel       Metric = "new_label"       // a label the agent never touched before
)

// nBase is the number of metrics with a baseline (all but NewLabel).
const nBase = 5

// baselined lists the metrics with a baseline, in index order.
var baselined = [nBase]Metric{Calls, DistinctTools, BytesOut, ErrorRate, DistinctLabels}

// ParseMetric reads a metric name.
func ParseMetric(s string) (Metric, error) {
	for _, m := range baselined {
		if string(m) == s {
			return m, nil
		}
	}
	if s == string(NewLabel) {
		return NewLabel, nil
	}
	return "", fmt.Errorf("anomaly metric %q: want one of calls, distinct_tools, bytes_out, error_rate, distinct_labels, new_label", s)
}

// Event is one tools/call as the engine saw it.
type Event struct {
	Agent    string
	Team     string
	Tool     string
	BytesOut int64
	Error    bool
	Labels   []string // data labels the call touched
	// Time is when the call happened. It should always be set: an event
	// without one is counted in the agent's open window, and an agent only
	// ever seen without times is evicted on the next Tick.
	Time time.Time
}

// Alert says that an agent's window departed from its baseline.
type Alert struct {
	Agent  string `json:"agent"`
	Team   string `json:"team,omitempty"`
	Metric Metric `json:"metric"`
	// Value is the window's value when the alert was raised: the running
	// value for an early alert, the whole window's for a late one. For
	// new_label it is 1.
	Value float64 `json:"value"`
	// Baseline is the agent's baseline for the metric; for new_label, the
	// number of labels the agent had touched before.
	Baseline float64 `json:"baseline"`
	// Factor and Threshold (Factor × max(Baseline, floor)) are what Value
	// exceeded; both 0 for new_label.
	Factor    float64 `json:"factor"`
	Threshold float64 `json:"threshold"`
	// Label is the new label, for new_label.
	Label       string    `json:"label,omitempty"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
}

func (a Alert) String() string {
	if a.Metric == NewLabel {
		return fmt.Sprintf("agent %q touched data label %q for the first time", a.Agent, a.Label)
	}
	return fmt.Sprintf("agent %q %s %g exceeds %g× baseline %g (threshold %g) in window %s",
		a.Agent, a.Metric, a.Value, a.Factor, a.Baseline, a.Threshold, a.WindowStart.Format(time.RFC3339))
}

// Config configures a Monitor. The zero value of a field means its default.
type Config struct {
	// Window is the length of a window. Default one minute.
	Window time.Duration
	// Warmup is the number of active windows an agent must have had before
	// it can alert. Default 30.
	Warmup int
	// Alpha is the weight of the newest window in a baseline (0 < Alpha ≤ 1).
	// Default 0.05: a baseline mostly forgets a window after about 60
	// active windows.
	Alpha float64
	// Factors maps a metric to how many times its baseline (or floor) a
	// window must exceed to alert. A metric not in the map uses 10; a
	// metric set to 0 or less is disabled. For new_label only enabled or
	// disabled matters.
	Factors map[Metric]float64
	// Floors maps a metric to the least baseline it is compared against,
	// per window. Defaults: calls 10, distinct_tools 3, bytes_out 65536,
	// error_rate 0.05, distinct_labels 2.
	Floors map[Metric]float64
	// ErrorRateMinCalls is the number of calls a window needs before its
	// error rate can alert (1 failed call of 1 is no pattern). Default 10.
	ErrorRateMinCalls int
	// LateAlerts raises alerts when windows close instead of as soon as
	// the running window crosses a threshold.
	LateAlerts bool
	// IdleEvict forgets agents with no event for this long (on Tick).
	// Default 7 days.
	IdleEvict time.Duration
	// MaxAgents bounds the agents tracked (approximately: the bound is
	// kept per shard). Default 100000.
	MaxAgents int
	// MaxKeys bounds the tools and the labels remembered per agent.
	// Default 1024.
	MaxKeys int
	// OnAlert receives alerts, on the goroutine that called Observe or
	// Tick, after the Monitor's locks are released. It should hand the
	// alert off quickly (a queue): Observe is on the request path.
	OnAlert func(Alert)
}

// Defaults.
const (
	DefaultWindow    = time.Minute
	DefaultWarmup    = 30
	DefaultAlpha     = 0.05
	DefaultFactor    = 10
	DefaultMinCalls  = 10
	DefaultIdleEvict = 7 * 24 * time.Hour
	DefaultMaxAgents = 100_000
	DefaultMaxKeys   = 1024
)

var defaultFloors = map[Metric]float64{
	Calls:          10,
	DistinctTools:  3,
	BytesOut:       64 << 10,
	ErrorRate:      0.05,
	DistinctLabels: 2,
}

// settings is a Config with defaults applied, in the shape the hot path
// reads.
type settings struct {
	window     int64 // nanoseconds
	warmup     int
	alpha      float64
	factor     [nBase]float64 // 0: disabled
	floor      [nBase]float64
	newLabel   bool
	minCalls   int64
	late       bool
	idleEvict  int64 // nanoseconds
	maxAgents  int
	maxKeys    int
	onAlert    func(Alert)
	windowSpan time.Duration
}

func compile(c Config) (settings, error) {
	s := settings{
		windowSpan: or(c.Window, DefaultWindow),
		warmup:     or(c.Warmup, DefaultWarmup),
		alpha:      or(c.Alpha, DefaultAlpha),
		minCalls:   int64(or(c.ErrorRateMinCalls, DefaultMinCalls)),
		late:       c.LateAlerts,
		maxAgents:  or(c.MaxAgents, DefaultMaxAgents),
		maxKeys:    or(c.MaxKeys, DefaultMaxKeys),
		onAlert:    c.OnAlert,
		newLabel:   true,
	}
	idle := or(c.IdleEvict, DefaultIdleEvict)
	s.window, s.idleEvict = int64(s.windowSpan), int64(idle)
	var errs []error
	if s.windowSpan <= 0 {
		errs = append(errs, fmt.Errorf("window %v: must be positive", s.windowSpan))
	}
	if s.warmup < 0 {
		errs = append(errs, fmt.Errorf("warmup %d: must not be negative", s.warmup))
	}
	if !(s.alpha > 0 && s.alpha <= 1) {
		errs = append(errs, fmt.Errorf("alpha %v: want 0 < alpha <= 1", s.alpha))
	}
	if s.minCalls < 0 || idle <= 0 || s.maxAgents <= 0 || s.maxKeys <= 0 {
		errs = append(errs, errors.New("error-rate minimum calls, idle eviction, max agents and max keys must be positive"))
	}
	for i, m := range baselined {
		s.factor[i], s.floor[i] = DefaultFactor, defaultFloors[m]
	}
	for m, f := range c.Factors {
		if math.IsNaN(f) {
			errs = append(errs, fmt.Errorf("factor of %s is NaN", m))
			continue
		}
		if m == NewLabel {
			s.newLabel = f > 0
			continue
		}
		i := index(m)
		if i < 0 {
			errs = append(errs, fmt.Errorf("factor of unknown metric %q", m))
			continue
		}
		s.factor[i] = max(f, 0)
	}
	for m, f := range c.Floors {
		i := index(m)
		if i < 0 || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			errs = append(errs, fmt.Errorf("floor %v of metric %q: want a known metric and a non-negative number", f, m))
			continue
		}
		s.floor[i] = f
	}
	if err := errors.Join(errs...); err != nil {
		return settings{}, fmt.Errorf("anomaly config: %w", err)
	}
	return s, nil
}

// index returns m's position in baselined, or -1.
func index(m Metric) int {
	for i, b := range baselined {
		if b == m {
			return i
		}
	}
	return -1
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
