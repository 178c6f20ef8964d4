// Package bench is gatehouse's load generator for MCP endpoints and the
// echo upstream it is usually pointed at.
//
// The load generator speaks MCP Streamable HTTP directly instead of going
// through an SDK client: it shares the machine (often two cores) with the
// server under test, so every microsecond it spends is taken from the thing
// being measured. Each session keeps exactly one tools/call in flight
// (closed loop), so throughput is bounded by latency times sessions.
//
// A run has three phases: all sessions initialize, then calls run for the
// warmup period uncounted, then for the measured window. Only calls that
// complete inside the window count, and CPU time of the process under test
// is sampled at the window's edges, so CPU per call is the server's cost of
// steady-state calls alone.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
)

// Defaults applied by Run to zero Config fields.
const (
	DefaultDuration        = 10 * time.Second
	DefaultTool            = "echo"
	DefaultArgs            = `{"message":"hello"}`
	DefaultProtocolVersion = "2025-11-25"
)

const (
	// initTimeout bounds the handshake of each session.
	initTimeout = 30 * time.Second
	// closeTimeout bounds the DELETE that ends each session.
	closeTimeout = 5 * time.Second
	// transportBackoff keeps a session from spinning on a dead endpoint,
	// which would burn the CPU the server under test is measured on.
	transportBackoff = 10 * time.Millisecond
	// maxErrorKinds is how many distinct error messages are kept.
	maxErrorKinds = 5
)

// Config describes one load run.
type Config struct {
	URL      string        // MCP endpoint; required
	Sessions int           // concurrent sessions; 0 means 1
	Duration time.Duration // measured window; 0 means DefaultDuration
	Warmup   time.Duration // uncounted lead-in; 0 means none
	Tool     string        // tool to call; "" means DefaultTool
	// Args is the tools/call arguments object; nil means DefaultArgs.
	Args json.RawMessage
	// Headers are sent on every request, e.g. Authorization.
	Headers http.Header
	// PID, if non-zero, is a process whose CPU time is measured over the
	// window, typically the server under test.
	PID             int
	ProtocolVersion string       // "" means DefaultProtocolVersion
	Logger          *slog.Logger // progress messages; nil discards them
}

// ErrorSample is one distinct error message and how often it occurred.
type ErrorSample struct {
	Message string `json:"message"`
	Count   int64  `json:"count"`
}

// ServerCPU is the CPU consumed by Config.PID during the measured window.
type ServerCPU struct {
	PID int `json:"pid"`
	// CPUSeconds is the preferred figure, from CPUSource.
	CPUSeconds float64 `json:"cpu_s"`
	// CPUSource is "schedstat" (per-thread ns, preferred) or "stat" (ticks).
	CPUSource string `json:"cpu_source"`
	// CPUStatSeconds is utime+stime from /proc/PID/stat, a coarse cross-check.
	CPUStatSeconds float64 `json:"cpu_stat_s"`
	CPUUsPerCall   float64 `json:"cpu_us_per_call"`
}

// ClientCPU is the CPU the load generator itself used during the window:
// useful to know how much of a shared machine it took.
type ClientCPU struct {
	CPUSeconds   float64 `json:"client_cpu_s"`
	CPUUsPerCall float64 `json:"client_cpu_us_per_call"`
}

// Result is the outcome of a run. Latencies cover every counted call,
// failed ones included; Errors also counts sessions that failed to
// initialize (the run goes on with the others). The embedded pointers are nil when not measured,
// and their JSON keys are then absent.
type Result struct {
	URL       string        `json:"url"`
	Tool      string        `json:"tool"`
	Sessions  int           `json:"sessions"`
	DurationS float64       `json:"duration_s"` // actual measured window
	WarmupS   float64       `json:"warmup_s"`
	Requests  int64         `json:"requests"`
	RPS       float64       `json:"rps"`
	MeanMs    float64       `json:"mean_ms"`
	P50Ms     float64       `json:"p50_ms"`
	P90Ms     float64       `json:"p90_ms"`
	P99Ms     float64       `json:"p99_ms"`
	MaxMs     float64       `json:"max_ms"`
	Errors    int64         `json:"errors"`
	ErrorList []ErrorSample `json:"error_samples"`
	*ServerCPU
	*ClientCPU
}

// Run performs a load run against cfg.URL and returns its measurements.
// If ctx is cancelled during the measured window, the partial window is
// reported; if it is cancelled earlier, Run returns ctx's error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger

	var server *cpuReader
	if cfg.PID != 0 {
		if server, err = newCPUReader(cfg.PID); err != nil {
			return nil, fmt.Errorf("measure pid %d: %w", cfg.PID, err)
		}
	}
	// The client's own CPU is a nice-to-have; without /proc it is skipped.
	self, _ := newCPUReader(os.Getpid())

	rt := newTransport(cfg.Sessions)
	defer rt.CloseIdleConnections()
	t, err := newTarget(rt, cfg.URL, cfg.Headers, cfg.ProtocolVersion, cfg.Tool, cfg.Args)
	if err != nil {
		return nil, err
	}

	sessions, initErrs := openSessions(ctx, t, cfg.Sessions)
	if len(sessions) == 0 {
		return nil, fmt.Errorf("no session initialized: %s", initErrs.kinds[0].Message)
	}
	defer closeSessions(ctx, sessions, log)
	log.Info("sessions ready", "sessions", len(sessions), "failed", initErrs.total)

	w := newWindow(time.Now(), cfg.Warmup, cfg.Duration)
	stats, m, err := drive(ctx, sessions, w, server, self, log)
	if err != nil {
		return nil, err
	}
	return summarize(cfg, stats, initErrs, m), nil
}

// normalize validates cfg and fills in defaults.
func (cfg Config) normalize() (Config, error) {
	if cfg.URL == "" {
		return cfg, errors.New("url is required")
	}
	if cfg.Sessions < 0 || cfg.Duration < 0 || cfg.Warmup < 0 {
		return cfg, errors.New("sessions, duration and warmup must not be negative")
	}
	if cfg.Sessions == 0 {
		cfg.Sessions = 1
	}
	if cfg.Duration == 0 {
		cfg.Duration = DefaultDuration
	}
	if cfg.Tool == "" {
		cfg.Tool = DefaultTool
	}
	if cfg.Args == nil {
		cfg.Args = json.RawMessage(DefaultArgs)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(cfg.Args, &obj); err != nil || obj == nil {
		return cfg, fmt.Errorf("tool arguments must be a JSON object: %s", cfg.Args)
	}
	if cfg.ProtocolVersion == "" {
		cfg.ProtocolVersion = DefaultProtocolVersion
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

// openSessions initializes n sessions concurrently and returns those that
// succeeded, with a tally of the failures.
func openSessions(ctx context.Context, t *target, n int) ([]*session, errorTally) {
	all := make([]*session, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ictx, cancel := context.WithTimeout(ctx, initTimeout)
			defer cancel()
			s, err := newSession(t)
			if err == nil {
				err = s.initialize(ictx)
			}
			all[i], errs[i] = s, err
		})
	}
	wg.Wait()

	var ok []*session
	var tally errorTally
	for i, s := range all {
		if errs[i] != nil {
			tally.add(errs[i].Error())
			continue
		}
		ok = append(ok, s)
	}
	return ok, tally
}

// closeSessions ends every session on the server. It runs even when ctx
// is cancelled, since leaving sessions behind would skew the next run.
func closeSessions(ctx context.Context, sessions []*session, log *slog.Logger) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Go(func() {
			if err := s.close(cctx); err != nil {
				log.Warn("closing session", "session", s.id, "err", err)
			}
		})
	}
	wg.Wait()
}

// window is the timeline of a run: warmup until start, counting until end.
type window struct {
	start, end time.Time
}

func newWindow(now time.Time, warmup, duration time.Duration) window {
	start := now.Add(warmup)
	return window{start: start, end: start.Add(duration)}
}

// measurement is what the coordinator observed over the window.
type measurement struct {
	elapsed time.Duration
	server  *cpuDelta
	client  *cpuDelta
}

// drive runs every session's call loop across the window while sampling
// CPU at its edges.
func drive(ctx context.Context, sessions []*session, w window, server, self *cpuReader, log *slog.Logger) ([]sessionStats, measurement, error) {
	// Calls in flight at the end are cancelled: they would not count anyway.
	lctx, cancel := context.WithDeadline(ctx, w.end)
	defer cancel()
	stats := make([]sessionStats, len(sessions))
	var wg sync.WaitGroup
	for i, s := range sessions {
		wg.Go(func() { stats[i] = callLoop(lctx, s, w) })
	}
	m, err := observe(ctx, w, server, self, log)
	cancel()
	wg.Wait()
	return stats, m, err
}

// observe waits for the window, sampling CPU at its start and end.
func observe(ctx context.Context, w window, server, self *cpuReader, log *slog.Logger) (measurement, error) {
	var m measurement
	if err := sleepUntil(ctx, w.start); err != nil {
		return m, fmt.Errorf("interrupted during warmup: %w", err)
	}
	log.Info("measuring", "duration", w.end.Sub(w.start))
	serverStart, serverErr := sampleOrNil(server)
	clientStart, clientErr := sampleOrNil(self)

	// Calls are counted against w itself, so the window's length is the
	// planned one unless an interrupt cut it short.
	m.elapsed = w.end.Sub(w.start)
	if err := sleepUntil(ctx, w.end); err != nil {
		m.elapsed = min(time.Since(w.start), m.elapsed)
		log.Warn("interrupted; reporting the partial window")
	}
	serverEnd, serverErr2 := sampleOrNil(server)
	clientEnd, clientErr2 := sampleOrNil(self)

	if err := errors.Join(serverErr, serverErr2); err != nil {
		// The process may have died mid-run; the load figures still stand.
		log.Warn("server cpu not measured", "err", err)
	} else if server != nil {
		d := diff(serverStart, serverEnd)
		m.server = &d
	}
	if self != nil && clientErr == nil && clientErr2 == nil {
		d := diff(clientStart, clientEnd)
		m.client = &d
	}
	return m, nil
}

func sampleOrNil(r *cpuReader) (cpuSample, error) {
	if r == nil {
		return cpuSample{}, nil
	}
	return r.sample()
}

func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sessionStats is what one session's loop recorded in the window.
type sessionStats struct {
	// latencies are kept exactly (8 bytes a call, 80 MB for ten million
	// calls) so that percentiles need no approximation.
	latencies []time.Duration
	errs      errorTally
}

// callLoop issues calls back to back until ctx ends, recording those that
// complete inside the window.
func callLoop(ctx context.Context, s *session, w window) sessionStats {
	var st sessionStats
	for ctx.Err() == nil {
		began := time.Now()
		err := s.call(ctx)
		done := time.Now()
		if err != nil && ctx.Err() != nil {
			break // cut off by the window's end or an interrupt: not a failure
		}
		if !done.Before(w.end) {
			break
		}
		if !done.Before(w.start) {
			st.latencies = append(st.latencies, done.Sub(began))
			if err != nil {
				st.errs.add(err.Error())
			}
		}
		if err != nil {
			if te := (*transportError)(nil); errors.As(err, &te) {
				_ = sleepUntil(ctx, time.Now().Add(transportBackoff))
			}
		}
	}
	return st
}

// errorTally counts errors and keeps the first few distinct messages.
type errorTally struct {
	total int64
	kinds []ErrorSample
}

func (t *errorTally) add(msg string) {
	t.total++
	t.addKind(ErrorSample{Message: msg, Count: 1})
}

func (t *errorTally) merge(o errorTally) {
	t.total += o.total
	for _, k := range o.kinds {
		t.addKind(k)
	}
}

// addKind counts k under its message if that message is kept or there is
// room to keep it; other messages count only towards the total.
func (t *errorTally) addKind(k ErrorSample) {
	for i := range t.kinds {
		if t.kinds[i].Message == k.Message {
			t.kinds[i].Count += k.Count
			return
		}
	}
	if len(t.kinds) < maxErrorKinds {
		t.kinds = append(t.kinds, k)
	}
}

// summarize merges session stats into a Result.
func summarize(cfg Config, stats []sessionStats, initErrs errorTally, m measurement) *Result {
	var lat []time.Duration
	errs := initErrs
	for _, st := range stats {
		lat = append(lat, st.latencies...)
		errs.merge(st.errs)
	}
	slices.Sort(lat)

	r := &Result{
		URL:       cfg.URL,
		Tool:      cfg.Tool,
		Sessions:  cfg.Sessions,
		DurationS: roundTo(m.elapsed.Seconds(), 6),
		WarmupS:   cfg.Warmup.Seconds(),
		Requests:  int64(len(lat)),
		MeanMs:    ms(mean(lat)),
		P50Ms:     ms(percentile(lat, 0.50)),
		P90Ms:     ms(percentile(lat, 0.90)),
		P99Ms:     ms(percentile(lat, 0.99)),
		MaxMs:     ms(percentile(lat, 1)),
		Errors:    errs.total,
		ErrorList: errs.kinds,
	}
	if r.ErrorList == nil {
		r.ErrorList = []ErrorSample{} // a stable JSON shape: [] rather than null
	}
	if m.elapsed > 0 {
		r.RPS = roundTo(float64(r.Requests)/m.elapsed.Seconds(), 1)
	}
	if d := m.server; d != nil {
		r.ServerCPU = &ServerCPU{
			PID:            cfg.PID,
			CPUSeconds:     roundTo(d.total.Seconds(), 6),
			CPUSource:      d.source,
			CPUStatSeconds: roundTo(d.stat.Seconds(), 6),
			CPUUsPerCall:   perCall(d.total, r.Requests),
		}
	}
	if d := m.client; d != nil {
		r.ClientCPU = &ClientCPU{
			CPUSeconds:   roundTo(d.total.Seconds(), 6),
			CPUUsPerCall: perCall(d.total, r.Requests),
		}
	}
	return r
}

// percentile returns the nearest-rank p-quantile of sorted, exactly.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func mean(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	return sum / time.Duration(len(d))
}

// ms converts to milliseconds, kept to the microsecond.
func ms(d time.Duration) float64 { return roundTo(float64(d)/float64(time.Millisecond), 3) }

func perCall(cpu time.Duration, calls int64) float64 {
	if calls == 0 {
		return 0
	}
	return roundTo(float64(cpu)/float64(time.Microsecond)/float64(calls), 3)
}

func roundTo(x float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(x*p) / p
}

// WriteTable prints r for people.
func (r *Result) WriteTable(w io.Writer) {
	row := func(name, format string, args ...any) {
		fmt.Fprintf(w, "%-16s "+format+"\n", append([]any{name}, args...)...)
	}
	row("target", "%s", r.URL)
	row("tool", "%s", r.Tool)
	row("sessions", "%d", r.Sessions)
	row("duration", "%.3fs (after %gs warmup)", r.DurationS, r.WarmupS)
	row("requests", "%d", r.Requests)
	row("requests/s", "%.1f", r.RPS)
	row("latency ms", "p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  (mean %.3f)",
		r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs, r.MeanMs)
	row("errors", "%d", r.Errors)
	for _, e := range r.ErrorList {
		fmt.Fprintf(w, "%16s   %d × %s\n", "", e.Count, e.Message)
	}
	if c := r.ServerCPU; c != nil {
		row("server cpu", "pid %d: %.3fs (%s; stat %.2fs)", c.PID, c.CPUSeconds, c.CPUSource, c.CPUStatSeconds)
		row("server cpu/call", "%.1f µs", c.CPUUsPerCall)
	}
	if c := r.ClientCPU; c != nil {
		row("client cpu", "%.3fs, %.1f µs/call", c.CPUSeconds, c.CPUUsPerCall)
	}
}
