// Package telemetry exposes the gateway's Prometheus metrics at /metrics.
// Collectors that need the database read it at scrape time, never on the
// request path.
package telemetry

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gatehouse/internal/store"
)

// Registry holds the gateway's metrics. Its methods do nothing on a nil
// Registry, so code that counts need not check whether metrics are on.
type Registry struct {
	reg *prometheus.Registry
	// AuthFailures counts refused requests by RFC 6750 error code.
	AuthFailures *prometheus.CounterVec

	// InspectFindings counts detector findings by category, type, the
	// finding's action (block, redact, alert, flag, none) and direction
	// (request, response). Count through Finding, which bounds the label
	// values.
	InspectFindings *prometheus.CounterVec
	// InspectBlocked counts payloads blocked by inspection, by direction:
	// one per refused call or result, however many findings it had.
	InspectBlocked *prometheus.CounterVec
	// AnomalyAlerts counts anomaly alerts by metric (calls,
	// distinct_tools, bytes_out, error_rate, distinct_labels, new_label).
	AnomalyAlerts *prometheus.CounterVec
	// Alerts counts alerts raised, by kind (finding, anomaly, tool_drift,
	// …), whether or not a webhook is configured.
	Alerts *prometheus.CounterVec
	// AlertsDropped counts alerts not delivered to the alert webhook, by
	// reason: queue_full, undeliverable, shutdown.
	AlertsDropped *prometheus.CounterVec
	// GuardrailFailures counts failed calls to external guardrails (an
	// error, a timeout, a malformed answer), by guardrail name.
	GuardrailFailures *prometheus.CounterVec
	// ScriptFailures counts failed inspection scripts, by script name and
	// kind of failure (e.g. error, timeout, memory).
	ScriptFailures *prometheus.CounterVec
	// ToolsQuarantined is the number of tools of an upstream held back
	// because their definition changed since it was pinned.
	ToolsQuarantined *prometheus.GaugeVec

	categories, types boundedLabel
}

// New returns a registry with the Go runtime and process collectors.
func New() *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r := &Registry{
		reg: reg,
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_auth_failures_total",
			Help: "MCP requests refused by authentication or authorization, by error (invalid_token, insufficient_scope, invalid_request, missing).",
		}, []string{"error"}),
		InspectFindings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_inspect_findings_total",
			Help: "Inspection findings, by category, finding type, the finding's action (block, redact, alert, flag, none) and direction (request, response).",
		}, []string{"category", "type", "action", "direction"}),
		InspectBlocked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_inspect_blocked_total",
			Help: "Calls and results blocked by inspection, by direction (request: the arguments, response: the result); one per payload, whatever its number of findings.",
		}, []string{"direction"}),
		AnomalyAlerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_anomaly_alerts_total",
			Help: "Per-agent anomaly alerts, by metric (calls, distinct_tools, bytes_out, error_rate, distinct_labels, new_label).",
		}, []string{"metric"}),
		Alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_alerts_total",
			Help: "Alerts raised (logged, and queued for the alert webhook when one is configured), by kind (finding, anomaly, tool_drift, tool_poisoning, guardrail_failure, script_failure).",
		}, []string{"kind"}),
		AlertsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_alerts_dropped_total",
			Help: "Alerts not delivered to the alert webhook (they were logged), by reason: queue_full, undeliverable (every attempt failed), shutdown.",
		}, []string{"reason"}),
		GuardrailFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_guardrail_failures_total",
			Help: "Failed calls to external guardrails (error, timeout, malformed answer), by guardrail.",
		}, []string{"guardrail"}),
		ScriptFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_script_failures_total",
			Help: "Failed inspection scripts, by script and kind of failure.",
		}, []string{"script", "kind"}),
		ToolsQuarantined: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gatehouse_tools_quarantined",
			Help: "Tools held back because their definition changed since it was pinned, by upstream.",
		}, []string{"upstream"}),
		categories: boundedLabel{max: maxCategories},
		types:      boundedLabel{max: maxTypes},
	}
	reg.MustRegister(r.AuthFailures, r.InspectFindings, r.InspectBlocked, r.AnomalyAlerts, r.Alerts, r.AlertsDropped,
		r.GuardrailFailures, r.ScriptFailures, r.ToolsQuarantined)
	return r
}

// Bounds of the finding label values: the built-in detectors have 3
// categories and about 240 types, but guardrails and scripts name their
// own. Values past the bound are counted as "other".
const (
	maxCategories = 16
	maxTypes      = 512
	maxLabelLen   = 64
)

// boundedLabel admits the first max distinct values of a label.
type boundedLabel struct {
	max  int
	mu   sync.RWMutex
	seen map[string]struct{}
}

// value returns v, or "other" once max other values were admitted (or
// when v is empty or too long).
func (b *boundedLabel) value(v string) string {
	if v == "" || len(v) > maxLabelLen {
		return "other"
	}
	b.mu.RLock()
	_, ok := b.seen[v]
	b.mu.RUnlock()
	if ok {
		return v
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.seen[v]; ok {
		return v
	}
	if len(b.seen) >= b.max {
		return "other"
	}
	if b.seen == nil {
		b.seen = map[string]struct{}{}
	}
	b.seen[strings.Clone(v)] = struct{}{}
	return v
}

// Finding counts one inspection finding.
func (r *Registry) Finding(category, typ, action, direction string) {
	if r == nil {
		return
	}
	r.InspectFindings.WithLabelValues(r.categories.value(category), r.types.value(typ), action, direction).Inc()
}

// Blocked counts a payload blocked by inspection.
func (r *Registry) Blocked(direction string) {
	if r == nil {
		return
	}
	r.InspectBlocked.WithLabelValues(direction).Inc()
}

// AnomalyAlert counts an anomaly alert.
func (r *Registry) AnomalyAlert(metric string) {
	if r == nil {
		return
	}
	r.AnomalyAlerts.WithLabelValues(metric).Inc()
}

// Alert counts an alert raised.
func (r *Registry) Alert(kind string) {
	if r == nil {
		return
	}
	r.Alerts.WithLabelValues(kind).Inc()
}

// AlertsDroppedAdd counts n alerts dropped for reason.
func (r *Registry) AlertsDroppedAdd(reason string, n int) {
	if r == nil {
		return
	}
	r.AlertsDropped.WithLabelValues(reason).Add(float64(n))
}

// GuardrailFailure counts a failed guardrail call.
func (r *Registry) GuardrailFailure(guardrail string) {
	if r == nil {
		return
	}
	r.GuardrailFailures.WithLabelValues(guardrail).Inc()
}

// ScriptFailure counts a failed script run.
func (r *Registry) ScriptFailure(script, kind string) {
	if r == nil {
		return
	}
	r.ScriptFailures.WithLabelValues(script, kind).Inc()
}

// SetToolsQuarantined sets the number of quarantined tools of an upstream.
func (r *Registry) SetToolsQuarantined(upstream string, n int) {
	if r == nil {
		return
	}
	r.ToolsQuarantined.WithLabelValues(upstream).Set(float64(n))
}

// Handler serves the metrics in the Prometheus text format (on a nil
// Registry: 404).
func (r *Registry) Handler() http.Handler {
	if r == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{})
}

// WatchCredentials adds gauges of agent credentials by team and state
// (active, expiring within warn, expired), read from the store at each
// scrape: operators alert on secrets nearing their team's maximum age.
func (r *Registry) WatchCredentials(st store.Store, warn time.Duration, log *slog.Logger) {
	r.reg.MustRegister(&credentialCollector{st: st, warn: warn, log: log})
}

var credDesc = prometheus.NewDesc("gatehouse_agent_credentials",
	"Credentials (client secrets, API keys, public keys) of active agents, by team, kind and state: active, expiring (within the warning window), expired.",
	[]string{"team", "kind", "state"}, nil)

type credentialCollector struct {
	st   store.Store
	warn time.Duration
	log  *slog.Logger
}

func (c *credentialCollector) Describe(ch chan<- *prometheus.Desc) { ch <- credDesc }

func (c *credentialCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	agents, err := c.st.ListAgents(ctx, store.AgentFilter{Status: store.AgentActive})
	if err != nil {
		c.log.Warn("metrics: listing agents", "error", err)
		return
	}
	type key struct{ team, kind, state string }
	counts := map[key]float64{}
	now := time.Now()
	for _, a := range agents {
		creds, err := c.st.ListCredentials(ctx, a.ID)
		if err != nil {
			c.log.Warn("metrics: listing credentials", "agent", a.Name, "error", err)
			continue
		}
		for _, cr := range creds {
			if cr.RevokedAt != nil {
				continue
			}
			state := "active"
			switch {
			case cr.ExpiresAt != nil && !now.Before(*cr.ExpiresAt):
				state = "expired"
			case cr.ExpiresAt != nil && cr.ExpiresAt.Sub(now) < c.warn:
				state = "expiring"
			}
			counts[key{a.Team, cr.Kind, state}]++
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(credDesc, prometheus.GaugeValue, n, k.team, k.kind, k.state)
	}
}
