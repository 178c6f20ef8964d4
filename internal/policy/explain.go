package policy

import (
	"encoding/json"
	"time"
)

// ExplainQuery asks how a call would be decided (gatehouse explain, and
// POST /admin/v1/policy/explain).
type ExplainQuery struct {
	// Agent is the agent's name. User alone is a person calling directly;
	// with Agent, the person driving the agent.
	Agent string `json:"agent,omitempty"`
	User  string `json:"user,omitempty"`
	// Server is the virtual server; it may be left out when the caller can
	// use exactly one.
	Server string `json:"server,omitempty"`
	// Tool is the tool's name as the client sees it.
	Tool string          `json:"tool"`
	Args json.RawMessage `json:"args,omitempty"`
	// SessionLabels are data labels the session is assumed to have read.
	SessionLabels []string   `json:"session_labels,omitempty"`
	Source        string     `json:"source,omitempty"` // client IP address
	Time          *time.Time `json:"time,omitempty"`   // default: now
}

// Explanation is a decision with every rule considered.
type Explanation struct {
	// Decision is allow, deny, approve or would_deny (monitor mode).
	Decision string `json:"decision"`
	Rule     string `json:"rule,omitempty"`
	Origin   string `json:"origin,omitempty"`
	Reason   string `json:"reason"`
	// Visible says whether the caller's tools/list shows the tool.
	Visible       bool           `json:"visible"`
	Bundles       []string       `json:"bundles"`
	Labels        []string       `json:"labels"`
	Target        RecordedTarget `json:"target"`
	PolicyVersion string         `json:"policy_version"`
	Steps         []Step         `json:"steps"`
}

// Explain decides in with a trace, and whether a list would show the
// target.
func (p *Policy) Explain(in *Input) Explanation {
	d := p.Decide(in, true)
	list := *in
	list.List = true
	list.Args = nil
	visible := p.Decide(&list, false).Effect != Deny
	ex := Explanation{
		Decision: Outcome(d.Effect, d.WouldDeny), Rule: d.Rule, Origin: d.Origin, Reason: d.Reason, Visible: visible,
		Bundles: nonNil(d.Bundles), Labels: nonNil(d.Labels), PolicyVersion: p.Version, Steps: d.Trace,
		Target: RecordedTarget{Kind: in.Target.Kind, Server: in.Target.Server, Upstream: in.Target.Upstream,
			Name: in.Target.Name, Visible: in.Target.Visible, Annotations: in.Target.Annotations},
	}
	if ex.Steps == nil {
		ex.Steps = []Step{}
	}
	return ex
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
