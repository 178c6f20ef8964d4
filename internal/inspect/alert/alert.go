// Package alert delivers the gateway's security alerts: findings whose
// action is alert, per-agent anomalies, tool-definition drift, failing
// guardrails. Every alert is logged at warn level; when a webhook is
// configured it is also queued and POSTed, in JSON batches signed like
// the audit webhook sink (internal/webhooksig), by a background sender.
//
// Raising an alert never blocks the request that raised it: the queue is
// bounded, and an alert that does not fit is dropped (it was logged) and
// counted. The sender retries a failed batch with exponential backoff;
// a batch still failing after the last attempt is dropped and counted.
//
// An alert describes what happened (kind, where, who, finding types,
// metric values): never the content that was found, never a secret.
package alert

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sort"
	"time"
)

// Kind is what raised an alert.
type Kind string

// Kinds.
const (
	KindFinding          Kind = "finding"           // a finding whose action is alert
	KindAnomaly          Kind = "anomaly"           // an agent departed from its baseline
	KindToolDrift        Kind = "tool_drift"        // a tool definition changed since it was pinned
	KindToolPoisoning    Kind = "tool_poisoning"    // a tool description carries instructions for the model
	KindGuardrailFailure Kind = "guardrail_failure" // an external guardrail failed
	KindScriptFailure    Kind = "script_failure"    // an inspection script failed
)

// Alert is one alert. Every field is a name, a number or a time: the
// text a detector found, arguments, results and credentials are never
// put in an alert.
type Alert struct {
	// ID is unique per alert ("alr_" + 24 hex digits); receivers
	// deduplicate on it (a batch may be delivered more than once).
	ID   string    `json:"id"`
	Kind Kind      `json:"kind"`
	Time time.Time `json:"time"`
	// Summary is one line for people, built from the fields below.
	Summary string `json:"summary"`

	// Where.
	Server   string `json:"server,omitempty"`
	Upstream string `json:"upstream,omitempty"`
	Method   string `json:"method,omitempty"`
	Tool     string `json:"tool,omitempty"`
	// Who.
	Agent     string `json:"agent,omitempty"` // agent name, or user:NAME for people
	AgentID   string `json:"agent_id,omitempty"`
	Team      string `json:"team,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	RequestID string `json:"request_id,omitempty"` // the JSON-RPC id, as sent

	// Findings (kind finding): the payload's direction (request,
	// response), the action taken on it, and the findings that alerted.
	Direction string    `json:"direction,omitempty"`
	Action    string    `json:"action,omitempty"`
	Findings  []Finding `json:"findings,omitempty"`

	// Anomaly (kind anomaly).
	Anomaly *Anomaly `json:"anomaly,omitempty"`

	// Details are other facts of the kind (tool_drift: the changed
	// fields; guardrail_failure: the guardrail and the failure). Names and
	// short values only: never content or secrets.
	Details map[string]string `json:"details,omitempty"`
}

// Finding is one detector finding, without the text found.
type Finding struct {
	Category   string `json:"category"`
	Type       string `json:"type"`
	Confidence string `json:"confidence,omitempty"`
	Action     string `json:"action,omitempty"`
}

// Anomaly is an agent's window departing from its baseline.
type Anomaly struct {
	// Metric is calls, distinct_tools, bytes_out, error_rate,
	// distinct_labels or new_label.
	Metric    string  `json:"metric"`
	Value     float64 `json:"value"`
	Baseline  float64 `json:"baseline"`
	Factor    float64 `json:"factor,omitempty"`
	Threshold float64 `json:"threshold,omitempty"`
	// Label is the data label touched for the first time (new_label).
	Label       string    `json:"label,omitempty"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
}

// newID returns a fresh alert id.
func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "alr_" + hex.EncodeToString(b[:])
}

// fill sets the id, time and summary when they are missing.
func (a *Alert) fill(now time.Time) {
	if a.ID == "" {
		a.ID = newID()
	}
	if a.Time.IsZero() {
		a.Time = now
	}
	a.Time = a.Time.UTC()
	if a.Summary == "" {
		a.Summary = a.summary()
	}
}

func (a *Alert) summary() string {
	who := a.Agent
	if who == "" {
		who = "an anonymous caller"
	}
	switch a.Kind {
	case KindFinding:
		types := make([]string, 0, len(a.Findings))
		for _, f := range a.Findings {
			types = append(types, f.Type)
		}
		return fmt.Sprintf("inspection found %v in the %s of %s (server %s) by %s", types, a.Direction, or(a.Tool, a.Method), a.Server, who)
	case KindAnomaly:
		if an := a.Anomaly; an != nil {
			if an.Label != "" {
				return fmt.Sprintf("%s touched data label %q for the first time", who, an.Label)
			}
			return fmt.Sprintf("%s: %s %g exceeds %g× baseline %g (threshold %g)", who, an.Metric, an.Value, an.Factor, an.Baseline, an.Threshold)
		}
	}
	s := string(a.Kind)
	if a.Upstream != "" {
		s += " upstream " + a.Upstream
	}
	if a.Tool != "" {
		s += " tool " + a.Tool
	}
	return s
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// logMessage is the log line's message for the kind.
func (k Kind) logMessage() string {
	switch k {
	case KindFinding:
		return "inspection alert"
	case KindAnomaly:
		return "anomaly alert"
	}
	return "alert: " + string(k)
}

// logAttrs are the alert's fields as log attributes.
func (a *Alert) logAttrs() []slog.Attr {
	attrs := []slog.Attr{slog.String("kind", string(a.Kind)), slog.String("alert_id", a.ID)}
	str := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	str("server", a.Server)
	str("upstream", a.Upstream)
	str("method", a.Method)
	str("tool", a.Tool)
	str("agent", a.Agent)
	str("team", a.Team)
	str("session", a.SessionID)
	str("direction", a.Direction)
	str("action", a.Action)
	if len(a.Findings) > 0 {
		types := make([]string, 0, len(a.Findings))
		for _, f := range a.Findings {
			types = append(types, f.Category+"/"+f.Type)
		}
		attrs = append(attrs, slog.Any("findings", types))
	}
	if an := a.Anomaly; an != nil {
		attrs = append(attrs, slog.String("metric", an.Metric), slog.Float64("value", an.Value), slog.Float64("baseline", an.Baseline))
		if an.Label != "" {
			attrs = append(attrs, slog.String("label", an.Label))
		} else {
			attrs = append(attrs, slog.Float64("threshold", an.Threshold))
		}
		attrs = append(attrs, slog.Time("window_start", an.WindowStart))
	}
	if len(a.Details) > 0 {
		keys := make([]string, 0, len(a.Details))
		for k := range a.Details {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		details := make([]any, 0, len(keys))
		for _, k := range keys {
			details = append(details, slog.String(k, a.Details[k]))
		}
		attrs = append(attrs, slog.Group("details", details...))
	}
	return attrs
}
