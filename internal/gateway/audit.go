package gateway

import (
	"time"

	"gatehouse/internal/audit"
	"gatehouse/internal/identity"
	"gatehouse/internal/inspect"
	"gatehouse/internal/jsonrpc"
	"gatehouse/internal/policy"
)

// Every request the gateway answers is audited before its answer leaves:
// reply writes the record to the audit queue, then hands the response to
// the transport. A request whose record cannot be written gets an error
// instead of its result (the record of that refusal is attempted too).

// auditState is what an exchange learns on its way, for its record.
type auditState struct {
	start     time.Time
	principal *identity.Principal
	source    string
	upstream  string        // the member that served it
	name      string        // tool, prompt or resource
	kind      string        // policy.KindTool, …
	upTime    time.Duration // time spent waiting for upstreams
	decision  *policy.Decision
	approval  string
	// What inspection found, and the strongest action taken.
	findings      []audit.Finding
	inspectAction inspect.Action
	argsClean     bool // the arguments were inspected and had no findings
}

// errAuditUnavailable refuses work when records cannot be kept.
var errAuditUnavailable = jsonrpc.NewError(jsonrpc.CodeOverloaded,
	"the gateway cannot record this call in its audit trail right now (audit queue full or failing); it refuses calls until it can")

// auditRefuses reports whether new requests must be refused because the
// audit queue is full (fail mode reject).
func (g *Gateway) auditRefuses() bool { return g.audit != nil && g.audit.Full() }

// reply audits the exchange's outcome, then sends msg.
func (x *exchange) reply(msg []byte, errObj *jsonrpc.Error) {
	x.observeCall(msg, errObj) // anomaly detection (anomaly.go)
	if x.g.audit != nil {
		if err := x.g.audit.Log(x.record(msg, errObj)); err != nil {
			x.g.log.Error("audit: a record could not be queued; the call is answered with an error", "method", x.m.Method, "error", err)
			if errObj == nil {
				_ = x.r.Reply(jsonrpc.ErrorResponse(x.m.ID, errAuditUnavailable))
				return
			}
		}
	}
	_ = x.r.Reply(msg)
}

// abandon audits a request the client cancelled, then drops it.
func (x *exchange) abandon() {
	if x.g.audit != nil {
		if err := x.g.audit.Log(x.record(nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "cancelled by the client"))); err != nil {
			x.g.log.Error("audit: the record of a cancelled request could not be queued", "method", x.m.Method, "error", err)
		}
	}
	x.r.Abandon()
}

func (x *exchange) record(msg []byte, e *jsonrpc.Error) audit.Record {
	a := &x.audit
	now := time.Now()
	r := audit.Record{
		Time: a.start, Kind: audit.KindMCPRequest, Action: x.m.Method,
		Target:   audit.Target{Server: x.vs.Name, Upstream: a.upstream, Method: x.m.Method},
		BytesIn:  int64(len(x.m.Raw)),
		BytesOut: int64(len(msg)),
		Context:  audit.Context{RequestID: string(x.m.ID), Protocol: x.protocol()},
	}
	if a.start.IsZero() {
		r.Time = now
	} else {
		r.DurationMS = float64(now.Sub(a.start).Microseconds()) / 1000
	}
	if a.upTime > 0 {
		r.UpstreamMS = float64(a.upTime.Microseconds()) / 1000
	}
	switch a.kind {
	case policy.KindTool:
		r.Target.Tool = a.name
	case policy.KindPrompt:
		r.Target.Prompt = a.name
	case policy.KindResource:
		r.Target.Resource = a.name
	}
	x.actor(&r.Actor)
	if x.s != nil {
		r.Context.SessionID = x.s.id
	}
	if meta, ok := jsonrpc.Get(x.m.Params, "_meta"); ok && len(meta) > 0 && meta[0] == '{' {
		if tp, ok := jsonrpc.Get(meta, "traceparent"); ok {
			r.Context.TraceParent, _ = jsonrpc.String(tp)
		}
		if len(meta) <= 2048 {
			r.Context.Conversation = meta
		}
	}
	// Outcome: the policy's decision, then what the client got.
	r.Outcome.Status = audit.OutcomeAllowed
	if d := a.decision; d != nil {
		r.Outcome.Rule, r.Outcome.Origin = d.Rule, d.Origin
		if d.WouldDeny {
			r.Outcome.Status, r.Outcome.Reason = audit.OutcomeWouldDeny, d.Reason
		}
	}
	r.Outcome.Approval = a.approval
	if e != nil {
		r.Outcome.ErrorCode, r.Outcome.Error = e.Code, e.Message
		switch e.Code {
		case jsonrpc.CodePolicyDenied:
			r.Outcome.Status = audit.OutcomeDenied
			if a.decision != nil {
				r.Outcome.Reason = a.decision.Reason
			}
		case jsonrpc.CodeApprovalPending:
			r.Outcome.Status = audit.OutcomePending
		default:
			r.Outcome.Status = audit.OutcomeError
		}
	}
	if x.m.Method == "tools/call" {
		if args, ok := jsonrpc.Get(x.m.Params, "arguments"); ok {
			mode := audit.MaskMasked
			if a.decision != nil && x.vs.policy != nil {
				mode = x.vs.policy.AuditMode(a.decision.Bundle)
			}
			in := x.g.snap.Load().inspect
			// Arguments the same detectors inspected and found clean need
			// no second scan: only their sensitive field names are masked.
			scan := !a.argsClean || in.mask != in.engine
			r.Args, r.Masking = x.g.masker.Apply(args, mode, in.mask, scan)
		}
	}
	if msg != nil && e == nil {
		r.Result = resultSummary(msg)
	}
	if len(a.findings) > 0 {
		r.Inspection = &audit.Inspection{Action: a.inspectAction.String(), Findings: a.findings,
			Review: a.inspectAction == inspect.ActionFlag || a.inspectAction == inspect.ActionAlert}
	}
	return r
}

func (x *exchange) protocol() string {
	if x.modern {
		return ModernVersion
	}
	if x.s != nil {
		return x.s.version
	}
	return ""
}

func (x *exchange) actor(a *audit.Actor) {
	if x.s != nil {
		x.s.actor(a)
		return
	}
	a.Source = x.audit.source
	principalActor(x.audit.principal, a)
}

// actor fills a with the session's caller.
func (s *Session) actor(a *audit.Actor) {
	a.ClientName, a.ClientVersion = s.clientName, s.clientVersion
	a.Source = s.source
	principalActor(s.principal, a)
}

func principalActor(p *identity.Principal, a *audit.Actor) {
	if p == nil {
		a.Kind = "anonymous"
		return
	}
	a.Kind, a.ID = p.Kind, p.ID()
	a.AgentID, a.AgentName, a.Team = p.AgentID, p.AgentName, p.Team
	switch {
	case p.Kind == identity.KindUser:
		a.User = p.Username
	case p.Actor != "":
		a.User = p.Actor
		a.Chain = []string{"user:" + p.Actor, p.ID()}
	}
}

// resultSummary describes a response without keeping it: its size, the
// kinds of content of a tool result, isError, and list lengths.
func resultSummary(msg []byte) *audit.ResultSummary {
	s := &audit.ResultSummary{Bytes: int64(len(msg))}
	res, ok := jsonrpc.Get(msg, "result")
	if !ok {
		return s
	}
	if v, ok := jsonrpc.Get(res, "isError"); ok && string(v) == "true" {
		s.IsError = true
	}
	if content, ok := jsonrpc.Get(res, "content"); ok {
		seen := map[string]bool{}
		_ = jsonrpc.Elements(content, func(a, b int) bool {
			if t, ok := jsonrpc.Get(content[a:b], "type"); ok {
				if ts, ok := jsonrpc.String(t); ok && !seen[ts] {
					seen[ts] = true
					s.ContentTypes = append(s.ContentTypes, ts)
				}
			}
			s.Items++
			return true
		})
	}
	for _, k := range []string{"tools", "prompts", "resources", "resourceTemplates"} {
		if list, ok := jsonrpc.Get(res, k); ok {
			_ = jsonrpc.Elements(list, func(int, int) bool { s.Items++; return true })
		}
	}
	return s
}

// auditMessage records a notification, or a server→client request with
// the client's answer, of this session. A record that cannot be queued is
// logged: the message itself was already relayed (a notification has no
// answer to refuse), and when the queue is full new calls are refused.
func (s *Session) auditMessage(r audit.Record) {
	if s.g.audit == nil {
		return
	}
	s.actor(&r.Actor)
	r.Target.Server = s.vsName
	r.Context.SessionID, r.Context.Protocol = s.id, s.version
	if r.Outcome.Status == "" {
		r.Outcome.Status = audit.OutcomeAllowed
	}
	if err := s.g.audit.Log(r); err != nil {
		s.log.Error("audit: the record of a message could not be queued", "method", r.Action, "error", err)
	}
}

// auditNotification records a notification relayed (or, with reason,
// not delivered) in direction dir; upstream is the member it came from or
// went to ("" when it concerned the gateway only).
func (s *Session) auditNotification(dir, upstream string, m *jsonrpc.Message, reason string) {
	if s.g.audit == nil {
		return
	}
	r := audit.Record{Kind: audit.KindMCPNotification, Action: m.Method,
		Target:  audit.Target{Upstream: upstream, Method: m.Method},
		Context: audit.Context{Direction: dir}, Outcome: audit.Outcome{Reason: reason}}
	if dir == audit.ClientToServer {
		r.BytesIn = int64(len(m.Raw))
	} else {
		r.BytesOut = int64(len(m.Raw))
	}
	if reqID, ok := jsonrpc.Get(m.Params, "requestId"); ok {
		r.Context.RequestID = string(reqID)
	}
	s.auditMessage(r)
}

// auditServerRequest records a server→client request once it ended: with
// the client's answer (resp), or refused by the gateway (refusal).
func (s *Session) auditServerRequest(p *s2cRequest, resp *jsonrpc.Message, refusal *jsonrpc.Error) {
	if s.g.audit == nil {
		return
	}
	r := audit.Record{Kind: audit.KindMCPServerRequest, Action: p.method, Time: p.start,
		Target:   audit.Target{Upstream: p.entry.name, Method: p.method},
		Context:  audit.Context{Direction: audit.ServerToClient, RequestID: string(p.upID)},
		BytesOut: int64(p.size)}
	if !p.start.IsZero() {
		r.DurationMS = float64(time.Since(p.start).Microseconds()) / 1000
	}
	e := refusal
	if resp != nil {
		r.BytesIn = int64(len(resp.Raw))
		if resp.Kind == jsonrpc.KindError {
			e = jsonrpc.ParseErrorObject(resp.Error)
		}
	}
	if e != nil {
		r.Outcome.Status, r.Outcome.ErrorCode, r.Outcome.Error = audit.OutcomeError, e.Code, e.Message
		if refusal != nil {
			r.Outcome.Status, r.Outcome.Reason = audit.OutcomeDenied, refusal.Message
		}
	}
	if len(p.findings) > 0 {
		r.Inspection = &audit.Inspection{Action: p.action.String(), Findings: p.findings,
			Review: p.action == inspect.ActionFlag || p.action == inspect.ActionAlert}
	}
	s.auditMessage(r)
}
