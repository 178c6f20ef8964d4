package gateway

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/internal/audit"
	"gatehouse/internal/config"
	"gatehouse/internal/identity"
	"gatehouse/internal/inspect"
	"gatehouse/internal/inspect/alert"
	"gatehouse/internal/inspect/anomaly"
	"gatehouse/internal/jsonrpc"
	"gatehouse/internal/policy"
	"gatehouse/internal/telemetry"
)

// Alerts and anomaly detection. Findings whose action is alert become
// alerts (noteFindings); every answered tools/call of an identified caller
// is counted into the anomaly monitor (reply), whose alerts are counted,
// delivered and audited. The monitor is rebuilt when inspect.anomaly
// changes, keeping the baselines when the window did not change, and its
// baselines are saved to a file (Options.AnomalyState) periodically and at
// Close, and restored when it is first built.

// alerting is what the gateway needs for alerts; one per gateway.
type alerting struct {
	metrics   *telemetry.Registry // nil: no metrics
	notifier  *alert.Notifier
	ownNotif  bool // created here: closed by Close
	now       func() time.Time
	statePath string // the anomaly baselines file; "": not kept

	mu      sync.Mutex                   // rebuilding the monitor
	saveMu  sync.Mutex                   // writing the baselines file
	monitor atomic.Pointer[anomalyState] // nil: anomaly detection off
}

// anomalyState is a monitor and what it was built from.
type anomalyState struct {
	mon           *anomaly.Monitor
	key           string
	window        time.Duration
	snapshotEvery time.Duration
}

// initAlerting sets up metrics, the notifier and the clock from opts.
func (g *Gateway) initAlerting(opts Options) {
	a := &g.alerting
	a.metrics, a.notifier, a.now, a.statePath = opts.Metrics, opts.Alerts, opts.Now, opts.AnomalyState
	if a.now == nil {
		a.now = time.Now
	}
	if a.notifier == nil {
		m := opts.Metrics
		n, err := alert.New(alert.Options{Logger: g.log, Now: a.now,
			OnAlert: func(al alert.Alert) { m.Alert(string(al.Kind)) },
			OnDrop:  m.AlertsDroppedAdd})
		if err != nil { // only a bad webhook fails, and there is none yet
			panic(err)
		}
		a.notifier, a.ownNotif = n, true
	}
}

// applyAlerting installs the alerts and anomaly sections of a new
// configuration. The configuration was validated: failures here are
// logged.
func (g *Gateway) applyAlerting(cfg *config.Config) {
	a := &g.alerting
	if err := a.notifier.Configure(alert.WebhookFromConfig(cfg.Inspect.Alerts)); err != nil {
		g.log.Error("alert webhook not changed", "error", err)
	}
	if err := g.applyAnomaly(cfg.Inspect.Anomaly); err != nil {
		g.log.Error("anomaly detection not changed", "error", err)
	}
}

// anomalyKey is what a monitor is built from (the snapshot interval is
// not: it does not change how baselines are kept).
func anomalyKey(a config.InspectAnomaly) string {
	return fmt.Sprintf("%v|%d|%v|%v|%v|%d|%v", a.Window, a.Warmup, a.Alpha, a.Factors, a.Floors, a.ErrorRateMinCalls, a.LateAlerts)
}

func (g *Gateway) applyAnomaly(c config.InspectAnomaly) error {
	a := &g.alerting
	a.mu.Lock()
	defer a.mu.Unlock()
	old := a.monitor.Load()
	if !c.Enabled {
		if old != nil {
			// Kept for when it is turned on again.
			if err := g.saveAnomaly(old); err != nil {
				g.log.Warn("saving anomaly baselines", "error", err)
			}
			a.monitor.Store(nil)
			g.log.Info("anomaly detection off")
		}
		return nil
	}
	key := anomalyKey(c)
	if old != nil && old.key == key {
		if old.snapshotEvery != c.SnapshotEvery() {
			a.monitor.Store(&anomalyState{mon: old.mon, key: key, window: old.window, snapshotEvery: c.SnapshotEvery()})
		}
		return nil // the baselines and open windows go on
	}
	mc, err := c.MonitorConfig()
	if err != nil {
		return err
	}
	mc.OnAlert = g.onAnomaly
	mon, err := anomaly.New(mc)
	if err != nil {
		return err
	}
	st := &anomalyState{mon: mon, key: key, window: mc.Window, snapshotEvery: c.SnapshotEvery()}
	if st.window == 0 {
		st.window = anomaly.DefaultWindow
	}
	switch {
	case old != nil:
		// Carry the baselines over; a new window length makes them
		// meaningless and Restore refuses them.
		data, err := old.mon.Snapshot()
		if err == nil {
			err = mon.Restore(data)
		}
		if err != nil {
			g.log.Warn("anomaly baselines start over with the new settings", "reason", err)
		}
	case a.statePath != "":
		g.restoreAnomaly(mon)
	}
	a.monitor.Store(st)
	g.log.Info("anomaly detection on", "window", st.window, "agents", mon.Len())
	return nil
}

// restoreAnomaly loads the baselines file into mon. A missing file is a
// first start; an unreadable one is logged and ignored.
func (g *Gateway) restoreAnomaly(mon *anomaly.Monitor) {
	path := g.alerting.statePath
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err == nil {
		err = mon.Restore(data)
	}
	if err != nil {
		g.log.Warn("anomaly baselines not restored; they start over", "file", path, "error", err)
		return
	}
	g.log.Info("anomaly baselines restored", "file", path, "agents", mon.Len())
}

// SaveAnomalyBaselines writes the anomaly baselines to the state file
// (Options.AnomalyState), replacing it atomically. It does nothing when
// anomaly detection is off or no file is configured.
func (g *Gateway) SaveAnomalyBaselines() error {
	st := g.alerting.monitor.Load()
	if st == nil {
		return nil
	}
	return g.saveAnomaly(st)
}

func (g *Gateway) saveAnomaly(st *anomalyState) error {
	a := &g.alerting
	if a.statePath == "" {
		return nil
	}
	data, err := st.mon.Snapshot()
	if err != nil {
		return err
	}
	a.saveMu.Lock()
	defer a.saveMu.Unlock()
	return writeAnomalyFile(a.statePath, data)
}

// writeAnomalyFile writes data to a temporary file beside path (mode 0600)
// and renames it over path, so a reader never sees a partial file.
func writeAnomalyFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename: nothing to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// AnomalyTick closes the anomaly windows that ended by the gateway's clock
// (Options.Now), so agents that went quiet have their last window counted,
// and forgets long-idle agents. RunAnomaly calls it every window; tests
// call it after moving their clock.
func (g *Gateway) AnomalyTick() {
	if st := g.alerting.monitor.Load(); st != nil {
		st.mon.Tick(g.alerting.now())
	}
}

// AnomalyAgent returns what anomaly detection knows of an agent (by name;
// people as user:NAME); false when it is off or the agent is not tracked.
func (g *Gateway) AnomalyAgent(name string) (anomaly.AgentState, bool) {
	st := g.alerting.monitor.Load()
	if st == nil {
		return anomaly.AgentState{}, false
	}
	return st.mon.Agent(name)
}

// RunAnomaly ticks the anomaly monitor at the end of every window and
// saves its baselines every snapshot interval, until ctx ends. It follows
// reloads (window, interval, detection turned on or off).
func (g *Gateway) RunAnomaly(ctx context.Context) {
	a := &g.alerting
	lastSave := time.Now()
	for {
		wait := time.Minute // while off: look again in a minute
		st := a.monitor.Load()
		if st != nil {
			w := int64(st.window)
			ns := a.now().UnixNano()
			// Just after the window's end, so it is closed by this tick.
			wait = time.Duration((ns/w+1)*w-ns) + 50*time.Millisecond
			if a.statePath != "" {
				wait = max(min(wait, time.Until(lastSave.Add(st.snapshotEvery))), time.Second)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		st = a.monitor.Load()
		if st == nil {
			continue
		}
		st.mon.Tick(a.now())
		if a.statePath != "" && time.Since(lastSave) >= st.snapshotEvery {
			if err := g.saveAnomaly(st); err != nil {
				g.log.Warn("saving anomaly baselines", "error", err)
			}
			lastSave = time.Now()
		}
	}
}

// closeAlerting saves the baselines and closes the notifier the gateway
// created (delivering what is queued, within ctx).
func (g *Gateway) closeAlerting(ctx context.Context) {
	a := &g.alerting
	if err := g.SaveAnomalyBaselines(); err != nil {
		g.log.Warn("saving anomaly baselines", "error", err)
	}
	if a.ownNotif {
		if err := a.notifier.Close(ctx); err != nil {
			g.log.Warn("alerts still queued were dropped at shutdown", "error", err)
		}
	}
}

// onAnomaly receives the monitor's alerts (on the goroutine of Observe or
// Tick): counted, logged, sent to the webhook and audited.
func (g *Gateway) onAnomaly(an anomaly.Alert) {
	a := &g.alerting
	g.metrics().AnomalyAlert(string(an.Metric))
	al := alert.Alert{Kind: alert.KindAnomaly, Time: a.now(), Agent: an.Agent, Team: an.Team,
		Anomaly: &alert.Anomaly{Metric: string(an.Metric), Value: an.Value, Baseline: an.Baseline, Factor: an.Factor,
			Threshold: an.Threshold, Label: an.Label, WindowStart: an.WindowStart, WindowEnd: an.WindowEnd}}
	g.raiseAlert(al)
	if g.audit == nil {
		return
	}
	r := audit.Record{Kind: audit.KindAnomaly, Action: "anomaly." + string(an.Metric), Time: al.Time,
		Outcome: audit.Outcome{Status: audit.OutcomeAllowed, Reason: an.String()}}
	if name, ok := anomalyUser(an.Agent); ok {
		r.Actor = audit.Actor{Kind: identity.KindUser, ID: an.Agent, User: name}
	} else {
		r.Actor = audit.Actor{Kind: identity.KindAgent, AgentName: an.Agent, Team: an.Team}
	}
	if err := g.audit.Log(r); err != nil {
		g.log.Error("audit: an anomaly alert could not be recorded", "agent", an.Agent, "metric", an.Metric, "error", err)
	}
}

func anomalyUser(key string) (string, bool) {
	const p = identity.KindUser + ":"
	if len(key) > len(p) && key[:len(p)] == p {
		return key[len(p):], true
	}
	return "", false
}

// anomalyAgent is the name a caller's baselines are kept under: the agent's
// name, or kind:subject ("user:alice") for people; "" for anonymous
// callers, which are not tracked.
func anomalyAgent(p *identity.Principal) string {
	switch {
	case p == nil:
		return ""
	case p.Kind == identity.KindAgent && p.AgentName != "":
		return p.AgentName
	}
	return p.ID()
}

// alertCaller returns the exchange's caller (nil: anonymous).
func (x *exchange) alertCaller() *identity.Principal {
	if x.s != nil {
		return x.s.principal
	}
	return x.audit.principal
}

// observeCall counts an answered tools/call into the anomaly monitor:
// its caller, tool, response size, whether it failed (a JSON-RPC error,
// a refusal or a tool error) and the data labels policy knows of the
// tool. msg is the response, e the error it carries, if any.
func (x *exchange) observeCall(msg []byte, e *jsonrpc.Error) {
	st := x.g.alerting.monitor.Load()
	if st == nil || x.m.Method != "tools/call" {
		return
	}
	p := x.alertCaller()
	name := anomalyAgent(p)
	if name == "" {
		return
	}
	ev := anomaly.Event{Agent: name, Team: p.Team, Tool: x.audit.name, BytesOut: int64(len(msg)), Error: e != nil, Time: x.g.alerting.now()}
	if !ev.Error {
		if res, ok := jsonrpc.Get(msg, "result"); ok {
			if v, ok := jsonrpc.Get(res, "isError"); ok && string(v) == "true" {
				ev.Error = true
			}
		} else if _, ok := jsonrpc.Get(msg, "error"); ok {
			ev.Error = true
		}
	}
	if d := x.audit.decision; d != nil {
		ev.Labels = d.Labels
	}
	st.mon.Observe(ev)
}

// maxAlertFindings bounds the findings one alert lists.
const maxAlertFindings = 16

// alertFindings raises the alert of a payload some of whose findings have
// the action alert; action is the action taken on the payload. Called
// with x.mu held.
func (x *exchange) alertFindings(dir inspect.Direction, action inspect.Action, findings []alert.Finding) {
	a := &x.audit
	al := alert.Alert{Kind: alert.KindFinding, Time: x.g.alerting.now(), Server: x.vs.Name, Upstream: a.upstream, Method: x.m.Method,
		RequestID: string(x.m.ID), Direction: string(dir), Action: action.String(), Findings: findings}
	switch a.kind {
	case policy.KindTool:
		al.Tool = a.name
	case policy.KindPrompt:
		al.Details = map[string]string{"prompt": a.name}
	case policy.KindResource:
		al.Details = map[string]string{"resource": a.name}
	}
	if p := x.alertCaller(); p != nil {
		al.Agent, al.AgentID, al.Team = anomalyAgent(p), p.AgentID, p.Team
	}
	if x.s != nil {
		al.SessionID = x.s.id
	}
	x.g.raiseAlert(al)
}

// raiseAlert logs an alert, counts it and queues it for the alert webhook
// (tool drift, guardrail and script failures raise theirs here). It never
// blocks.
func (g *Gateway) raiseAlert(a alert.Alert) { g.alerting.notifier.Notify(a) }

// metrics returns the metrics registry (nil: none; its methods accept a
// nil receiver).
func (g *Gateway) metrics() *telemetry.Registry { return g.alerting.metrics }
