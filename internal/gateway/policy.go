package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gatehouse/internal/identity"
	"gatehouse/internal/jsonrpc"
	"gatehouse/internal/policy"
	"gatehouse/internal/store"
)

// The request path's policy checks: lists show only what the caller may
// use, and tools/call, prompts/get and resources/read are decided before
// they reach an upstream. The decision itself is internal/policy's.

func policyVersion(p *policy.Policy) string {
	if p == nil {
		return ""
	}
	return p.Version
}

type sourceKey struct{}

// WithSource returns ctx carrying the client's IP address, for policy
// conditions on request.source (stateless requests).
func WithSource(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, sourceKey{}, ip)
}

// caller returns the policy view of who sent the exchange's request.
func (x *exchange) caller(ctx context.Context) *policy.Caller {
	if x.pcaller == nil {
		var p *identity.Principal
		if x.s != nil {
			p = x.s.principal
		} else {
			p, _ = identity.FromContext(ctx)
		}
		x.pcaller = x.g.engine.Caller(p)
	}
	return x.pcaller
}

func (x *exchange) request(ctx context.Context) policy.Request {
	r := policy.Request{Time: time.Now(), Method: x.m.Method}
	if x.s != nil {
		r.Source = x.s.source
	} else if ip, ok := ctx.Value(sourceKey{}).(string); ok {
		r.Source = ip
	}
	return r
}

func (x *exchange) sessionState() policy.Session {
	if x.s == nil {
		return x.g.history.Session(x.pcaller.ID)
	}
	x.s.polMu.Lock()
	defer x.s.polMu.Unlock()
	return policy.Session{ID: x.s.id, Labels: slices.Clone(x.s.labels), Calls: x.s.calls}
}

// noteCall records a tools/call in the session's history: its count, and
// once the call returned a result, the data labels of the tool it read.
func (x *exchange) noteCall(labels []string, succeeded bool) {
	if x.s == nil {
		x.g.history.Note(x.pcaller.ID, labels, succeeded)
		return
	}
	x.s.polMu.Lock()
	defer x.s.polMu.Unlock()
	x.s.calls++
	if !succeeded {
		return
	}
	for _, l := range labels {
		if !slices.Contains(x.s.labels, l) {
			x.s.labels = append(x.s.labels, l)
		}
	}
	slices.Sort(x.s.labels)
}

// toolAnnotations returns the annotations the upstream lists for tool up
// (none when its list cannot be had: the policy then treats the tool as
// neither read-only nor safe).
func (x *exchange) toolAnnotations(ctx context.Context, mb *member, up string) policy.Annotations {
	c, err := x.clientFor(ctx, mb.e)
	if err != nil {
		return policy.Annotations{}
	}
	cl, err := mb.e.catalogFor(ctx, c, "tools/list")
	if err != nil {
		return policy.Annotations{}
	}
	return cl.annotations[up]
}

// guard decides a tools/call, prompts/get or resources/* request before
// it is forwarded. It returns the decision's labels and true when the
// request may go on; otherwise it has answered the client.
func (x *exchange) guard(ctx context.Context, kind string, mb *member, up, visible string) ([]string, bool) {
	pol := x.vs.policy
	if pol == nil {
		return nil, true
	}
	t := &policy.Target{Kind: kind, Server: x.vs.Name, Name: up, Visible: visible}
	if mb != nil {
		t.Upstream = mb.e.name
	}
	var args json.RawMessage
	if kind == policy.KindTool {
		if mb != nil {
			t.Annotations = x.toolAnnotations(ctx, mb, up)
		}
		args, _ = jsonrpc.Get(x.m.Params, "arguments")
	}
	in := &policy.Input{Caller: x.caller(ctx), Target: t, Args: args, Request: x.request(ctx), Session: x.sessionState()}
	d := pol.Decide(in, false)
	x.audit.decision, x.audit.name, x.audit.kind = &d, visible, kind
	if kind == policy.KindTool {
		if rec := x.g.engine.Recorder(); rec != nil {
			rec.Add(policy.NewRecord(in, d, pol.Version))
		}
	}
	if d.WouldDeny {
		x.g.log.Warn("policy (monitor mode) would deny", "server", x.vs.Name, "method", x.m.Method, "name", visible,
			"caller", in.Caller.ID, "rule", d.Rule, "origin", d.Origin, "reason", d.Reason)
	}
	switch d.Effect {
	case policy.Allow:
		return d.Labels, true
	case policy.Approve:
		if err := x.awaitApproval(ctx, in, d, visible, pol); err != nil {
			x.fail(err)
			return nil, false
		}
		return d.Labels, true
	}
	x.g.log.Info("policy denied", "server", x.vs.Name, "method", x.m.Method, "name", visible, "caller", in.Caller.ID,
		"rule", d.Rule, "origin", d.Origin, "reason", d.Reason)
	// A caller must not learn that a tool it cannot see exists: when the
	// list would not show it, the answer is the one for an unknown name.
	list := *in
	list.List, list.Args = true, nil
	if pol.Decide(&list, false).Effect == policy.Deny {
		switch kind {
		case policy.KindTool:
			x.fail(jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Unknown tool: "+visible))
		case policy.KindPrompt:
			x.fail(jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Unknown prompt: "+visible))
		default:
			x.fail(jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Resource not found: "+visible))
		}
		return nil, false
	}
	e := jsonrpc.NewError(jsonrpc.CodePolicyDenied, d.Message())
	e.Data, _ = json.Marshal(map[string]string{"rule": d.Rule, "origin": d.Origin})
	x.fail(e)
	return nil, false
}

// awaitApproval holds the call until a person decides. A client that can
// elicit is told what is pending.
func (x *exchange) awaitApproval(ctx context.Context, in *policy.Input, d policy.Decision, visible string, pol *policy.Policy) error {
	// The settings of the policy that held the call: the configuration may
	// have been replaced (or its policy section removed) since.
	ac := pol.Approvals
	notify := func(a store.Approval) {
		x.g.log.Info("call held for approval", "approval", a.ID, "server", x.vs.Name, "tool", visible, "caller", in.Caller.ID, "rule", d.Rule)
		if x.s != nil {
			x.s.tellPending(x.r, a, ac.Wait.Std())
		}
	}
	_, err := x.g.engine.Await(ctx, policy.HeldCall{Caller: in.Caller, Server: x.vs.Name, Tool: visible, Args: in.Args,
		PolicyVersion: pol.Version, Decision: d}, ac.Wait.Std(), ac.TTL.Std(), notify)
	var pe *policy.PendingError
	var de *policy.DeniedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pe):
		e := jsonrpc.NewError(jsonrpc.CodeApprovalPending, pe.Error())
		e.Data, _ = json.Marshal(map[string]any{"approval_id": pe.Approval.ID, "expires_at": pe.Approval.ExpiresAt, "rule": d.Rule})
		return e
	case errors.As(err, &de):
		e := jsonrpc.NewError(jsonrpc.CodePolicyDenied, fmt.Sprintf("denied by workflow rule %q: %s", d.Rule, de.Error()))
		e.Data, _ = json.Marshal(map[string]any{"approval_id": de.Approval.ID, "rule": d.Rule, "origin": "workflow"})
		return e
	case errors.Is(err, policy.ErrNoStore):
		return jsonrpc.Wrap(jsonrpc.CodePolicyDenied, fmt.Sprintf("denied by workflow rule %q: %s; approvals need the store, which this gateway runs without", d.Rule, d.Reason), err)
	case ctx.Err() != nil:
		return errClientCancelled
	}
	return jsonrpc.Wrap(jsonrpc.CodePolicyDenied, fmt.Sprintf("denied by workflow rule %q: the approval could not be recorded (fail closed)", d.Rule), err)
}

// tellPending tells the client, through an elicitation it may simply
// dismiss, that its call waits for an approver. Clients without the
// elicitation capability are not asked.
func (s *Session) tellPending(r Replier, a store.Approval, wait time.Duration) {
	if s.caps.Elicitation == nil {
		return
	}
	msg := fmt.Sprintf("Gatehouse is holding this call to %s for a person's approval (%s: %s). Approval id %s; an approver runs `gatehouse approvals approve %s`. The call waits up to %s; after that, retry the same call once it is approved.",
		a.Tool, a.Rule, a.Reason, a.ID, a.ID, wait)
	req := map[string]any{"message": msg, "requestedSchema": map[string]any{"type": "object", "properties": map[string]any{}}}
	if s.version >= "2025-11-25" {
		req["mode"] = "form"
	}
	params, _ := json.Marshal(req)
	id := s.nextS2CID()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.s2c[string(id)] = &s2cRequest{local: true}
	s.mu.Unlock()
	_ = r.Send(jsonrpc.Request(id, "elicitation/create", params))
}

// allowedInList reports whether a list item may be shown to the caller.
func (x *exchange) allowedInList(in *policy.Input, mb *member, up, visible string, item []byte) bool {
	t := in.Target
	t.Server, t.Upstream, t.Name, t.Visible = x.vs.Name, mb.e.name, up, visible
	t.Annotations = policy.Annotations{}
	if t.Kind == policy.KindTool {
		t.SetListItem(item)
	}
	return in.Caller != nil && x.vs.policy.Decide(in, false).Effect != policy.Deny
}

// listInput prepares the input reused for every item of a list.
func (x *exchange) listInput(ctx context.Context) *policy.Input {
	// Items are decided as the request that would use them.
	kind, method := policy.KindTool, "tools/call"
	switch {
	case strings.HasPrefix(x.m.Method, "prompts/"):
		kind, method = policy.KindPrompt, "prompts/get"
	case strings.HasPrefix(x.m.Method, "resources/"):
		kind, method = policy.KindResource, "resources/read"
	}
	req := x.request(ctx)
	req.Method = method
	return &policy.Input{Caller: x.caller(ctx), Target: &policy.Target{Kind: kind}, Request: req, Session: x.sessionState(), List: true}
}

// Explain decides, with a trace, how the running policy would treat a
// call of tool (its client-visible name) on server by caller.
func (g *Gateway) Explain(ctx context.Context, caller *policy.Caller, server, tool string, args json.RawMessage, labels []string, source string, at time.Time) (policy.Explanation, error) {
	vs, ok := g.Server(server)
	if !ok {
		return policy.Explanation{}, fmt.Errorf("no virtual server %q", server)
	}
	if vs.policy == nil {
		return policy.Explanation{}, errors.New("the configuration has no policy section: every caller may use every tool of the servers it can reach")
	}
	x := &exchange{g: g, vs: vs, m: &jsonrpc.Message{Method: "tools/call"}, pcaller: caller}
	mb, up, err := x.resolveName(ctx, tool, true)
	if err != nil {
		return policy.Explanation{}, fmt.Errorf("server %q has no tool %q (the name as clients see it)", server, tool)
	}
	t := &policy.Target{Kind: policy.KindTool, Server: server, Upstream: mb.e.name, Name: up, Visible: tool,
		Annotations: x.toolAnnotations(ctx, mb, up)}
	slices.Sort(labels)
	in := &policy.Input{Caller: caller, Target: t, Args: args, Request: policy.Request{Time: at, Source: source, Method: "tools/call"},
		Session: policy.Session{Labels: labels}}
	return vs.policy.Explain(in), nil
}

// Servers lists the virtual servers' names.
func (g *Gateway) Servers() []string {
	snap := g.snap.Load()
	out := make([]string, 0, len(snap.servers))
	for name := range snap.servers {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Policy returns the policy in force (nil: none).
func (g *Gateway) Policy() *policy.Policy { return g.snap.Load().policy }
