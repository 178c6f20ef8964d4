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
	// mask masks audit records: the inspection engine, or the default
	// detectors when inspection is off or narrowed (records are masked
	// either way).
	mask    *inspect.Engine
	maskKey string
	rules   inspect.Rules
	bundle  map[string]inspect.Rules // bundle rules followed by the global ones
	key     string                   // what the engine was built from, to reuse it
}

// inspectKey is what an inspection engine is built from.
func inspectKey(c config.Inspect) string {
	return fmt.Sprintf("%v|%v|%q|%v|%q|%q|%v", c.Disabled, c.Secrets.Disabled, c.Secrets.DisabledRules,
		c.PII.Disabled, c.PII.Region, c.PII.Types, c.Injection.Disabled)
}

// compileInspection builds the engine (reusing prev's when its detector
// settings did not change: the secrets rules take a while to compile).
func compileInspection(cfg *config.Config, prev *inspection) (*inspection, error) {
	in := &inspection{key: inspectKey(cfg.Inspect)}
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

// inspectPayload inspects payload in direction dir. It returns the
// redacted payload (nil when unchanged), whether anything was found, and
// the finding that blocks the payload (nil when it may go on).
func (x *exchange) inspectPayload(in *inspection, payload []byte, dir inspect.Direction) (redacted []byte, found bool, blocking *inspect.Located) {
	v := in.engine.Inspect(payload, dir, x.inspectRules(in))
	if len(v.Findings) == 0 {
		return nil, false, nil
	}
	x.noteFindings(v, dir)
	if v.Action == inspect.ActionBlock {
		return nil, true, v.Blocking
	}
	return v.Redacted, true, nil
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
	in := x.g.snap.Load().inspect
	args, ok := jsonrpc.Get(params, "arguments")
	if !ok || in.engine == nil || len(args) == 0 {
		return params, nil
	}
	redacted, found, blocking := x.inspectPayload(in, args, inspect.Request)
	x.audit.argsClean = !found // the audit mask need not scan them again
	switch {
	case blocking != nil:
		return nil, blockedError("the call to "+x.audit.name+": its arguments", blocking)
	case redacted == nil:
		return params, nil
	}
	p, err := jsonrpc.Set(params, "arguments", redacted)
	if err != nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "gatehouse could not rewrite the redacted arguments")
	}
	return p, nil
}

// inspectResponse inspects the result of an upstream response; it returns
// the response to relay, or the error that replaces it.
func (x *exchange) inspectResponse(resp *jsonrpc.Message) (*jsonrpc.Message, *jsonrpc.Error) {
	in := x.g.snap.Load().inspect
	if resp.Kind != jsonrpc.KindResult || in.engine == nil || len(resp.Result) == 0 {
		return resp, nil
	}
	redacted, _, blocking := x.inspectPayload(in, resp.Result, inspect.Response)
	switch {
	case blocking != nil:
		name := x.audit.name
		if name == "" {
			name = x.m.Method
		}
		return nil, blockedError("the result of "+name, blocking)
	case redacted == nil:
		return resp, nil
	}
	raw, err := jsonrpc.Set(resp.Raw, "result", redacted)
	if err == nil {
		var m *jsonrpc.Message
		if m, err = jsonrpc.Parse(raw); err == nil {
			return m, nil
		}
	}
	return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "gatehouse could not rewrite the redacted result")
}
