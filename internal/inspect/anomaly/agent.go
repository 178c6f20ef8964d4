package anomaly

import (
	"math"
	"strings"
	"time"
)

// agent is one agent's baselines and open window. Its Monitor shard's lock
// guards it.
type agent struct {
	name, team string
	lastSeen   int64 // Unix nanoseconds of the latest event

	// The open window.
	cur     int64 // index: start = cur × window
	active  bool  // had at least one event
	calls   int64
	errors  int64
	bytes   int64
	tools   int64 // distinct tools
	labels  int64 // distinct labels
	alerted uint8 // bit i: baselined[i] alerted in this window
	warm    bool  // past warm-up when the window opened
	thr     [nBase]float64

	// Closed windows.
	windows int // active windows closed
	base    [nBase]float64

	// seenTools and seenLabels map a name to the index of the last window
	// it was seen in; a label's presence also means "touched before". The
	// values are pointers so a hit only reads the map: assigning to an
	// existing string key also replaces the stored key with the caller's
	// string, which could keep a whole request buffer alive.
	seenTools  map[string]*int64
	seenLabels map[string]*int64
}

func newAgent(s *settings, name string, t time.Time) *agent {
	a := &agent{
		name:       strings.Clone(name),
		seenTools:  make(map[string]*int64),
		seenLabels: make(map[string]*int64),
	}
	if !t.IsZero() {
		a.lastSeen = t.UnixNano()
		a.cur = floorDiv(a.lastSeen, s.window)
	}
	a.open(s, a.cur)
	return a
}

// observe counts one event and appends the alerts it raises.
func (a *agent) observe(s *settings, ev *Event, alerts []Alert) []Alert {
	idx := a.cur // an event without a time counts in the open window
	if !ev.Time.IsZero() {
		ns := ev.Time.UnixNano()
		idx = floorDiv(ns, s.window)
		a.lastSeen = max(a.lastSeen, ns)
	}
	if idx > a.cur {
		alerts = a.roll(s, idx, alerts)
	}
	if ev.Team != a.team {
		a.team = strings.Clone(ev.Team)
	}
	a.active = true
	a.calls++
	if ev.Error {
		a.errors++
	}
	a.bytes += max(ev.BytesOut, 0)
	if ev.Tool != "" {
		a.touchTool(s, ev.Tool)
	}
	for _, l := range ev.Labels {
		alerts = a.touchLabel(s, l, alerts)
	}
	if a.warm && !s.late {
		alerts = a.check(s, alerts)
	}
	return alerts
}

func (a *agent) touchTool(s *settings, tool string) {
	if w, ok := a.seenTools[tool]; ok {
		if *w != a.cur {
			*w = a.cur
			a.tools++
		}
		return
	}
	if len(a.seenTools) >= s.maxKeys {
		// Only this window's tools matter for the count: forget the rest.
		for k, w := range a.seenTools {
			if *w != a.cur {
				delete(a.seenTools, k)
			}
		}
	}
	a.tools++
	if len(a.seenTools) < s.maxKeys {
		w := a.cur
		a.seenTools[strings.Clone(tool)] = &w
	}
	// else: more than MaxKeys tools in one window; the count may run high,
	// which only makes an already extraordinary window look so.
}

func (a *agent) touchLabel(s *settings, label string, alerts []Alert) []Alert {
	if w, ok := a.seenLabels[label]; ok {
		if *w != a.cur {
			*w = a.cur
			a.labels++
		}
		return alerts
	}
	if len(a.seenLabels) >= s.maxKeys {
		// Labels are a small vocabulary; an agent past MaxKeys of them is
		// not tracked for further labels rather than forgetting known ones
		// (which would re-alert them as new).
		return alerts
	}
	w := a.cur
	label = strings.Clone(label)
	known := len(a.seenLabels)
	a.seenLabels[label] = &w
	a.labels++
	if a.warm && s.newLabel {
		start, end := a.span(s)
		alerts = append(alerts, Alert{Agent: a.name, Team: a.team, Metric: NewLabel, Value: 1,
			Baseline: float64(known), Label: label, WindowStart: start, WindowEnd: end})
	}
	return alerts
}

// values returns the open window's metrics, in baselined order.
func (a *agent) values() [nBase]float64 {
	rate := 0.0
	if a.calls > 0 {
		rate = float64(a.errors) / float64(a.calls)
	}
	return [nBase]float64{float64(a.calls), float64(a.tools), float64(a.bytes), rate, float64(a.labels)}
}

// check appends an alert for each metric of the open window over its
// threshold that has not alerted in this window yet.
func (a *agent) check(s *settings, alerts []Alert) []Alert {
	v := a.values()
	for i := range nBase {
		if a.alerted&(1<<i) != 0 || !(v[i] > a.thr[i]) {
			continue
		}
		if baselined[i] == ErrorRate && a.calls < s.minCalls {
			continue
		}
		a.alerted |= 1 << i
		start, end := a.span(s)
		alerts = append(alerts, Alert{Agent: a.name, Team: a.team, Metric: baselined[i], Value: v[i],
			Baseline: a.base[i], Factor: s.factor[i], Threshold: a.thr[i], WindowStart: start, WindowEnd: end})
	}
	return alerts
}

// roll closes the open window, if it had events, and opens window idx.
func (a *agent) roll(s *settings, idx int64, alerts []Alert) []Alert {
	if a.active {
		if a.warm {
			alerts = a.check(s, alerts) // late alerts, or ones no event re-checked
		}
		v := a.values()
		// Weight 1/n until that is below alpha: the first windows make a
		// plain mean instead of the first one dominating.
		w := max(s.alpha, 1/float64(a.windows+1))
		for i := range nBase {
			x := v[i]
			if a.warm {
				x = min(x, a.thr[i]) // an outlier moves the baseline at most to the threshold
			}
			a.base[i] += w * (x - a.base[i])
		}
		a.windows++
	}
	a.open(s, idx)
	return alerts
}

// open starts window idx with empty counters.
func (a *agent) open(s *settings, idx int64) {
	a.cur = idx
	a.active = false
	a.calls, a.errors, a.bytes, a.tools, a.labels = 0, 0, 0, 0, 0
	a.alerted = 0
	a.warm = a.windows >= s.warmup
	for i := range nBase {
		if s.factor[i] <= 0 {
			a.thr[i] = math.Inf(1)
			continue
		}
		a.thr[i] = s.factor[i] * max(a.base[i], s.floor[i])
	}
}

// span returns the open window's start and end.
func (a *agent) span(s *settings) (time.Time, time.Time) {
	start := time.Unix(0, a.cur*s.window).UTC()
	return start, start.Add(s.windowSpan)
}
