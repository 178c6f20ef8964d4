package gateway

import (
	"gatehouse/internal/inspect"
	"gatehouse/internal/inspect/alert"
	"gatehouse/internal/jsonrpc"
)

// Sampling requests (sampling/createMessage) are how an upstream reaches
// the client's model: its messages are inspected on the way to the client
// like a tool result (direction response: PII redacted, secrets blocked,
// injection flagged, by default), and the model's answer on its way back
// to the upstream like tool arguments (direction request). The global
// rules apply: the request belongs to no call a bundle allowed. A blocked
// request is answered to the upstream with an error naming the finding's
// type; a blocked answer likewise replaces the client's.

// inspectSampling inspects the params of a sampling request p relays; it
// returns the params to send (the same when unchanged) or the error that
// refuses the request.
func (s *Session) inspectSampling(p *s2cRequest, params []byte) ([]byte, *jsonrpc.Error) {
	in := s.g.snap.Load().inspect
	if in.engine == nil || len(params) == 0 {
		return params, nil
	}
	v := in.engine.Inspect(params, inspect.Response, in.rules)
	if len(v.Findings) == 0 {
		return params, nil
	}
	s.noteSampling(p, v, inspect.Response)
	switch {
	case v.Action == inspect.ActionBlock:
		return nil, blockedError("the sampling request of "+p.entry.name, v.Blocking)
	case v.Redacted == nil:
		return params, nil
	}
	return v.Redacted, nil
}

// inspectSamplingResult inspects the client's answer to a sampling
// request before it goes to the upstream; it returns the answer to relay.
func (s *Session) inspectSamplingResult(p *s2cRequest, m *jsonrpc.Message) *jsonrpc.Message {
	in := s.g.snap.Load().inspect
	if in.engine == nil || m.Kind != jsonrpc.KindResult || len(m.Result) == 0 {
		return m
	}
	v := in.engine.Inspect(m.Result, inspect.Request, in.rules)
	if len(v.Findings) == 0 {
		return m
	}
	s.noteSampling(p, v, inspect.Request)
	var out []byte
	switch {
	case v.Action == inspect.ActionBlock:
		out = jsonrpc.ErrorResponse(m.ID, blockedError("the client's answer to the sampling request of "+p.entry.name, v.Blocking))
	case v.Redacted != nil:
		out = jsonrpc.ResultResponse(m.ID, v.Redacted)
	default:
		return m
	}
	r, err := jsonrpc.Parse(out)
	if err != nil {
		return m
	}
	return r
}

// noteSampling keeps findings for the request's audit record, counts
// them, and raises an alert for those whose action is alert (as
// noteFindings does for calls).
func (s *Session) noteSampling(p *s2cRequest, v inspect.Verdict, dir inspect.Direction) {
	var alerted []alert.Finding
	p.findings, p.action, alerted = s.g.tallyFindings(v, dir, p.findings, p.action)
	if len(alerted) > 0 {
		s.g.raiseAlert(alert.Alert{Kind: alert.KindFinding, Upstream: p.entry.name, Method: p.method, SessionID: s.id,
			Direction: string(dir), Action: v.Action.String(), Findings: alerted})
	}
}
