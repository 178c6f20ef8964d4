package gateway

import (
	"context"
	"fmt"

	"gatehouse/internal/audit"
	"gatehouse/internal/config"
	"gatehouse/internal/inspect"
	"gatehouse/internal/inspect/alert"
	"gatehouse/internal/inspect/detectors"
	"gatehouse/internal/jsonrpc"
	"gatehouse/internal/telemetry"
)

// Tool arguments are inspected after the policy allowed the call and
// before they go upstream; results (tools/call, prompts/get,
// resources/read) before they go back to the agent. A finding's action is
// decided by the rules of the bundle that allowed the call, then the
// global ones: block answers with an error naming the finding's type
// (never its text), redact replaces it with a typed placeholder, flag and
// alert let the payload through and mark the audit record.

// inspection is the compiled inspect section of a snapshot.
type inspection struct {
	engine *inspect.Engine // nil: inspection off
	// mask masks audit records: the inspection engine, or the default
	// detectors when inspection is off or narrowed (records are masked
	// either way).
	mask    *inspect.Engine
	maskKey string
	rules   inspect.Rules
	bundle  map[string]inspect.Rules // bundle rules followed by the global ones
	key     string                   // what the engine was built from, to reuse it
	// hooks are inspect.guardrails and inspect.scripts (hooks.go); nil:
	// none.
	hooks *hookSet
}

// inspectKey is what an inspection engine is built from.
func inspectKey(c config.Inspect) string {
	return fmt.Sprintf("%v|%v|%q|%v|%q|%q|%v", c.Disabled, c.Secrets.Disabled, c.Secrets.DisabledRules,
		c.PII.Disabled, c.PII.Region, c.PII.Types, c.Injection.Disabled)
}

// compileInspection builds the engine (reusing prev's when its detector
// settings did not change: the secrets rules take a while to compile),
// and the guardrails and scripts (reusing prev's unchanged ones; their
// vault references are resolved with the gateway's resolver).
func (g *Gateway) compileInspection(cfg *config.Config, prev *inspection) (*inspection, error) {
	in := &inspection{key: inspectKey(cfg.Inspect)}
	var prevHooks *hookSet
	if prev != nil {
		prevHooks = prev.hooks
	}
	hooks, err := g.compileHooks(cfg, prevHooks)
	if err != nil {
		return nil, err
	}
	in.hooks = hooks
	if prev != nil && prev.key == in.key {
		in.engine = prev.engine
	} else {
		e, err := detectors.New(cfg.Inspect)
		if err != nil {
			return nil, err
		}
		in.engine = e
	}
	// Records are masked by the default detectors (in the configured
	// phone region) whatever inspection is set to do.
	defaults := config.Inspect{PII: config.InspectPII{Region: cfg.Inspect.PII.Region}}
	in.maskKey = inspectKey(defaults)
	switch {
	case in.key == in.maskKey:
		in.mask = in.engine
	case prev != nil && prev.maskKey == in.maskKey:
		in.mask = prev.mask
	default:
		m, err := detectors.New(defaults)
		if err != nil {
			return nil, err
		}
		in.mask = m
	}
	in.rules = detectors.GlobalRules(cfg.Inspect)
	if cfg.Policy != nil {
		for name, b := range cfg.Policy.Bundles {
			if b != nil && len(b.Inspect) > 0 {
				if in.bundle == nil {
					in.bundle = map[string]inspect.Rules{}
				}
				in.bundle[name] = detectors.Rules(b.Inspect, in.rules)
			}
		}
	}
	return in, nil
}

// CodeInspectionBlocked: inspection found something the rules block.
const CodeInspectionBlocked = -31012

// inspectRules returns the rules for this exchange: its bundle's, else
// the global ones.
func (x *exchange) inspectRules(in *inspection) inspect.Rules {
	if d := x.audit.decision; d != nil && d.Bundle != "" {
		if r, ok := in.bundle[d.Bundle]; ok {
			return r
		}
	}
	return in.rules
}

// blockedError is the error that refuses what (built only when blocking:
// the message is not made on every call).
func blockedError(what string, b *inspect.Located) *jsonrpc.Error {
	return jsonrpc.NewError(CodeInspectionBlocked, fmt.Sprintf("gatehouse blocked %s: it contains %s (%s, %s confidence, at %s); the text is not repeated here",
		what, article(string(b.Category)), b.Type, b.Confidence, pathOrRoot(b.Path)))
}

func article(category string) string {
	switch category {
	case "pii":
		return "personal data"
	case "injection":
		return "a prompt injection"
	}
	return "a " + category
}

func pathOrRoot(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// noteFindings keeps the findings for the audit record, counts them, and
// raises an alert (logged, and sent to the alert webhook) for those whose
// action is alert: their types, never their text.
func (x *exchange) noteFindings(v inspect.Verdict, dir inspect.Direction) {
	x.mu.Lock()
	defer x.mu.Unlock()
	a := &x.audit
	var alerted []alert.Finding
	a.findings, a.inspectAction, alerted = x.g.tallyFindings(v, dir, a.findings, a.inspectAction)
	if len(alerted) > 0 {
		x.alertFindings(dir, v.Action, alerted)
	}
}

// maxRecordFindings bounds the findings one audit record keeps: a record
// stays small whatever a payload holds.
const maxRecordFindings = 64

// addFinding counts f and appends it to a record's findings (up to
// maxRecordFindings).
func addFinding(m *telemetry.Registry, dst []audit.Finding, f audit.Finding) []audit.Finding {
	m.Finding(f.Category, f.Type, f.Action, f.Direction)
	if len(dst) < maxRecordFindings {
		dst = append(dst, f)
	}
	return dst
}

// tallyFindings counts v's findings in the metrics and appends them to a
// record's findings (bounded: a record stays small); it returns the
// record's new findings and action, and the findings to alert on.
func (g *Gateway) tallyFindings(v inspect.Verdict, dir inspect.Direction, dst []audit.Finding, action inspect.Action) ([]audit.Finding, inspect.Action, []alert.Finding) {
	m := g.metrics()
	var alerted []alert.Finding
	for _, f := range v.Findings {
		if f.Action == inspect.ActionAlert && len(alerted) < maxAlertFindings {
			alerted = append(alerted, alert.Finding{Category: string(f.Category), Type: f.Type, Confidence: f.Confidence.String(), Action: f.Action.String()})
		}
		dst = addFinding(m, dst, audit.Finding{Category: string(f.Category), Type: f.Type, Confidence: f.Confidence.String(),
			Direction: string(dir), Path: f.Path, Action: f.Action.String()})
	}
	if v.Action == inspect.ActionBlock {
		m.Blocked(string(dir))
	}
	return dst, max(action, v.Action), alerted
}

// inspectArgs inspects the arguments of a tools/call or prompts/get whose
// params are params: the built-in detectors, then the scripts and
// guardrails (which run even when the detectors are off or found
// nothing); it returns the params to send.
func (x *exchange) inspectArgs(ctx context.Context, params []byte) ([]byte, *jsonrpc.Error) {
	in := x.g.snap.Load().inspect
	args, ok := jsonrpc.Get(params, "arguments")
	if in.hooks == nil && (!ok || in.engine == nil || len(args) == 0) {
		return params, nil
	}
	p := &hookPayload{dir: inspect.Request, doc: args, present: ok && len(args) > 0 && string(args) != "null"}
	if ok && len(args) > 0 {
		if e := x.inspectBuiltin(in, p); e != nil {
			return nil, e
		}
	}
	if e := x.runHooks(ctx, in.hooks, p); e != nil {
		return nil, e
	}
	if !p.changed {
		return params, nil
	}
	out, err := jsonrpc.Set(params, "arguments", p.doc)
	if err != nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "gatehouse could not rewrite the arguments")
	}
	return out, nil
}

// inspectResponse inspects the result of an upstream response (built-in
// detectors, then scripts and guardrails); it returns the response to
// relay, or the error that replaces it.
func (x *exchange) inspectResponse(ctx context.Context, resp *jsonrpc.Message) (*jsonrpc.Message, *jsonrpc.Error) {
	in := x.g.snap.Load().inspect
	if resp.Kind != jsonrpc.KindResult || len(resp.Result) == 0 || (in.engine == nil && in.hooks == nil) {
		return resp, nil
	}
	p := &hookPayload{dir: inspect.Response, doc: resp.Result, present: true}
	e := x.inspectBuiltin(in, p)
	if e == nil {
		e = x.runHooks(ctx, in.hooks, p)
	}
	if e != nil {
		return nil, e
	}
	if !p.changed {
		return resp, nil
	}
	raw, err := jsonrpc.Set(resp.Raw, "result", p.doc)
	if err == nil {
		var m *jsonrpc.Message
		if m, err = jsonrpc.Parse(raw); err == nil {
			return m, nil
		}
	}
	return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "gatehouse could not rewrite the result")
}

// inspectBuiltin runs the built-in detectors (when on) over p's document
// (arguments or a result): a block becomes the error refusing it; a
// redaction replaces the document; the findings are kept for the scripts.
func (x *exchange) inspectBuiltin(in *inspection, p *hookPayload) *jsonrpc.Error {
	if in.engine == nil {
		return nil
	}
	v := in.engine.Inspect(p.doc, p.dir, x.inspectRules(in))
	if p.dir == inspect.Request {
		x.audit.argsClean = len(v.Findings) == 0 // the audit mask need not scan them again
	}
	if len(v.Findings) == 0 {
		return nil
	}
	x.noteFindings(v, p.dir)
	if v.Action == inspect.ActionBlock {
		what, object := x.hookSubject(p.dir)
		if p.dir == inspect.Request {
			what += ": " + object
		}
		return blockedError(what, v.Blocking)
	}
	if v.Redacted != nil {
		p.doc, p.changed = v.Redacted, true
	}
	if in.hooks != nil && len(in.hooks.scripts) > 0 {
		p.findings = make([]inspect.Finding, len(v.Findings))
		for i := range v.Findings {
			p.findings[i] = v.Findings[i].Finding
		}
	}
	return nil
}
