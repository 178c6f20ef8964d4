package gateway

import (
	"fmt"
	"strings"

	"gatehouse/internal/audit"
	"gatehouse/internal/config"
	"gatehouse/internal/inspect"
	"gatehouse/internal/inspect/detectors"
	"gatehouse/internal/jsonrpc"
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
	rules  inspect.Rules
	bundle map[string]inspect.Rules // bundle rules followed by the global ones
	key    string                   // what the engine was built from, to reuse it
}

// compileInspection builds the engine (reusing prev's when its detector
// settings did not change: the secrets rules take a while to compile).
func compileInspection(cfg *config.Config, prev *inspection) (*inspection, error) {
	in := &inspection{key: fmt.Sprintf("%v|%v|%q|%v|%q|%q|%v", cfg.Inspect.Disabled, cfg.Inspect.Secrets.Disabled, cfg.Inspect.Secrets.DisabledRules,
		cfg.Inspect.PII.Disabled, cfg.Inspect.PII.Region, cfg.Inspect.PII.Types, cfg.Inspect.Injection.Disabled)}
	if prev != nil && prev.key == in.key {
		in.engine = prev.engine
	} else {
		e, err := detectors.New(cfg.Inspect)
		if err != nil {
			return nil, err
		}
		in.engine = e
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

// inspectPayload inspects payload in direction dir. It returns the payload
// to use (redacted or unchanged) or the error that blocks it.
func (x *exchange) inspectPayload(payload []byte, dir inspect.Direction, what string) ([]byte, *jsonrpc.Error) {
	in := x.g.snap.Load().inspect
	if in == nil || in.engine == nil || len(payload) == 0 {
		return payload, nil
	}
	v := in.engine.Inspect(payload, dir, x.inspectRules(in))
	if len(v.Findings) == 0 {
		return payload, nil
	}
	x.noteFindings(v, dir)
	switch {
	case v.Action == inspect.ActionBlock:
		b := v.Blocking
		return nil, jsonrpc.NewError(CodeInspectionBlocked, fmt.Sprintf("gatehouse blocked %s: it contains %s (%s, %s confidence, at %s); the text is not repeated here",
			what, article(string(b.Category)), b.Type, b.Confidence, pathOrRoot(b.Path)))
	case v.Redacted != nil:
		return v.Redacted, nil
	}
	return payload, nil
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

// noteFindings keeps the findings for the audit record and logs alerts.
func (x *exchange) noteFindings(v inspect.Verdict, dir inspect.Direction) {
	x.mu.Lock()
	defer x.mu.Unlock()
	a := &x.audit
	for _, f := range v.Findings {
		if len(a.findings) >= 64 {
			break // bounded: a record stays small
		}
		a.findings = append(a.findings, audit.Finding{Category: string(f.Category), Type: f.Type, Confidence: f.Confidence.String(),
			Direction: string(dir), Path: f.Path, Action: f.Action.String()})
	}
	if v.Action > a.inspectAction {
		a.inspectAction = v.Action
	}
	if v.Action == inspect.ActionAlert {
		x.g.log.Warn("inspection alert", "server", x.vs.Name, "method", x.m.Method, "tool", a.name, "direction", dir,
			"findings", strings.Join(v.Types(), ","))
	}
}

// inspectArgs inspects the arguments of a tools/call whose params are
// params; it returns the params to send.
func (x *exchange) inspectArgs(params []byte) ([]byte, *jsonrpc.Error) {
	args, ok := jsonrpc.Get(params, "arguments")
	if !ok {
		return params, nil
	}
	before := len(x.audit.findings)
	out, err := x.inspectPayload(args, inspect.Request, "the call to "+x.audit.name+": its arguments")
	if in := x.g.snap.Load().inspect; in != nil && in.engine != nil && len(x.audit.findings) == before {
		x.audit.argsClean = true // the audit mask need not scan them again
	}
	if err != nil || len(out) == len(args) && string(out) == string(args) {
		return params, err
	}
	p, serr := jsonrpc.Set(params, "arguments", out)
	if serr != nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "gatehouse could not rewrite the redacted arguments")
	}
	return p, nil
}

// inspectResponse inspects the result of an upstream response; it returns
// the response to relay, or the error that replaces it.
func (x *exchange) inspectResponse(resp *jsonrpc.Message) (*jsonrpc.Message, *jsonrpc.Error) {
	if resp.Kind != jsonrpc.KindResult {
		return resp, nil
	}
	what := "the result of " + x.m.Method
	if x.audit.name != "" {
		what = "the result of " + x.audit.name
	}
	out, err := x.inspectPayload(resp.Result, inspect.Response, what)
	if err != nil || len(out) == len(resp.Result) && string(out) == string(resp.Result) {
		return resp, err
	}
	raw, serr := jsonrpc.Set(resp.Raw, "result", out)
	if serr != nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "gatehouse could not rewrite the redacted result")
	}
	m, perr := jsonrpc.Parse(raw)
	if perr != nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "gatehouse could not rewrite the redacted result")
	}
	return m, nil
}
