package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"gatehouse/internal/audit"
	"gatehouse/internal/config"
	"gatehouse/internal/identity"
	"gatehouse/internal/inspect"
	"gatehouse/internal/inspect/alert"
	"gatehouse/internal/inspect/guardrail"
	"gatehouse/internal/inspect/script"
	"gatehouse/internal/jsonrpc"
)

// External guardrails and script hooks (inspect.guardrails,
// inspect.scripts; docs/guardrails.md) run after the built-in detectors,
// whatever those found and even when they are off: first the scripts
// (tools/call only: onToolCall on the arguments, onToolResult on the
// result), which see the detectors' findings, then the guardrails (tool
// arguments; results of tools/call, prompts/get and resources/read), each
// list in configuration order. The first deny refuses the payload with
// CodeInspectionBlocked naming the hook and its reason; a mutate replaces
// the payload for the hooks after it and for the upstream or the agent.
// Every decision other than allow, and every failure, marks the
// exchange's audit record and is counted as an inspection finding
// (category guardrail or script); failures are also counted per hook,
// logged at warn and raised as alerts (guardrail_failure,
// script_failure).

// hookSet is the compiled inspect.guardrails and inspect.scripts of a
// snapshot.
type hookSet struct {
	scripts    []*scriptHook
	guardrails []*guardrailHook
}

// hookScope restricts a hook to virtual servers and tool names.
type hookScope struct {
	servers, tools []string
}

// applies reports whether a hook with this scope runs for server and, on
// a tools/call (isTool), tool. A hook restricted to tools never sees
// prompts or resources.
func (s hookScope) applies(server, tool string, isTool bool) bool {
	if len(s.servers) > 0 && !matchAny(s.servers, server) {
		return false
	}
	if len(s.tools) > 0 && (!isTool || !matchAny(s.tools, tool)) {
		return false
	}
	return true
}

func matchAny(globs []string, s string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, s); ok {
			return true
		}
	}
	return false
}

type scriptHook struct {
	hookScope
	key string // what it was loaded from, to reuse it
	h   *script.Hooks
}

type guardrailHook struct {
	hookScope
	key     string
	name    string
	wrapped *guardrail.Wrapped
}

// hookCompileTimeout bounds compiling the hooks: vault look-ups and the
// adapters' set-up (which reads files and the environment, no network).
const hookCompileTimeout = 30 * time.Second

// compileHooks builds the guardrails and scripts of cfg, reusing prev's
// when their configuration (and, for guardrails, the secrets it resolves
// to) did not change. Vault references are resolved here, once per
// configuration: a secret rotated in the vault reaches the guardrails at
// the next reload. nil: no hooks.
func (g *Gateway) compileHooks(cfg *config.Config, prev *hookSet) (*hookSet, error) {
	in := cfg.Inspect
	if len(in.Guardrails) == 0 && len(in.Scripts) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), hookCompileTimeout)
	defer cancel()
	oldScripts := map[string]*scriptHook{}
	oldGuards := map[string]*guardrailHook{}
	if prev != nil {
		for _, s := range prev.scripts {
			oldScripts[s.h.Name()] = s
		}
		for _, gh := range prev.guardrails {
			oldGuards[gh.name] = gh
		}
	}
	hs := &hookSet{}
	for _, sc := range in.Scripts {
		key := hookKey(sc)
		if o, ok := oldScripts[sc.Name]; ok && o.key == key {
			hs.scripts = append(hs.scripts, o)
			continue
		}
		opts := sc.ScriptOptions()
		opts.Logger = g.log
		opts.OnFailure = func(f script.Failure) { g.metrics().ScriptFailure(f.Script, f.Kind) }
		h, err := script.Load(script.Script{Name: sc.Name, Version: sc.Version, Source: sc.Source}, opts)
		if err != nil {
			return nil, fmt.Errorf("inspect.scripts: %w", err)
		}
		hs.scripts = append(hs.scripts, &scriptHook{hookScope: hookScope{sc.Servers, sc.Tools}, key: key, h: h})
	}
	for _, gc := range in.Guardrails {
		secrets, err := g.guardrailSecrets(ctx, gc)
		if err != nil {
			return nil, err
		}
		key := hookKey(gc, secrets)
		if o, ok := oldGuards[gc.Name]; ok && o.key == key {
			hs.guardrails = append(hs.guardrails, o)
			continue
		}
		gh, err := g.newGuardrailHook(ctx, gc, secrets)
		if err != nil {
			return nil, fmt.Errorf("inspect.guardrails: %w", err)
		}
		gh.key = key
		hs.guardrails = append(hs.guardrails, gh)
	}
	return hs, nil
}

// hookKey fingerprints what a hook is built from. Secret values only go
// into the hash.
func hookKey(parts ...any) string {
	h := sha256.New()
	for _, p := range parts {
		b, err := json.Marshal(p)
		if err != nil {
			b = fmt.Appendf(nil, "%#v", p)
		}
		h.Write(b)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// guardrailSecrets resolves the guardrail's secret settings: vault
// references through the gateway's resolver (as shared, not per-agent,
// secrets). Errors name the setting and the reference, never a value.
func (g *Gateway) guardrailSecrets(ctx context.Context, gc *config.InspectGuardrail) (map[string]string, error) {
	out := map[string]string{}
	secrets := gc.Secrets()
	fields := make([]string, 0, len(secrets))
	for f := range secrets {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for _, field := range fields {
		v := secrets[field].Reveal()
		if !strings.Contains(v, "{{") {
			out[field] = v
			continue
		}
		if g.secrets == nil {
			return nil, fmt.Errorf("inspect.guardrails: guardrail %q: %s references the vault, but the gateway has no vault (it opens one when identity.auth is required or the admin API is enabled)", gc.Name, field)
		}
		x, err := g.secrets.Expand(ctx, v, "")
		if err != nil {
			return nil, fmt.Errorf("inspect.guardrails: guardrail %q: %s: %w", gc.Name, field, err)
		}
		out[field] = x
	}
	return out, nil
}

// newGuardrailHook builds the adapter of gc and checks its settings.
func (g *Gateway) newGuardrailHook(ctx context.Context, gc *config.InspectGuardrail, sec map[string]string) (*guardrailHook, error) {
	var (
		a   guardrail.Guardrail
		err error
	)
	switch gc.Type {
	case config.GuardrailWebhook:
		a, err = guardrail.NewWebhook(guardrail.WebhookOptions{Name: gc.Name, URL: gc.URL, Key: sec["key"], BearerToken: sec["bearer_token"]})
	case config.GuardrailBedrock:
		a, err = guardrail.NewBedrock(ctx, guardrail.BedrockOptions{Name: gc.Name, GuardrailID: gc.GuardrailID,
			GuardrailVersion: gc.GuardrailVersion, Region: gc.Region, AccessKeyID: sec["access_key_id"],
			SecretAccessKey: sec["secret_access_key"], SessionToken: sec["session_token"], BaseURL: gc.BaseURL,
			MaxAttempts: gc.MaxAttempts})
	case config.GuardrailGCPDLP:
		a, err = guardrail.NewGCPDLP(ctx, guardrail.GCPDLPOptions{Name: gc.Name, Project: gc.Project, Location: gc.Location,
			InfoTypes: gc.InfoTypes, MinLikelihood: gc.MinLikelihood, Deidentify: gc.Deidentify,
			CredentialsJSON: sec["credentials_json"], Token: sec["token"], BaseURL: gc.BaseURL})
	case config.GuardrailNightfall:
		o := guardrail.NightfallOptions{Name: gc.Name, APIKey: sec["api_key"], PolicyUUIDs: gc.PolicyUUIDs,
			MinConfidence: gc.MinConfidence, Redact: gc.Redact, BaseURL: gc.BaseURL}
		if len(gc.DetectionRules) > 0 {
			if o.DetectionRules, err = json.Marshal(gc.DetectionRules); err != nil {
				return nil, fmt.Errorf("guardrail %q: detection_rules: %w", gc.Name, err)
			}
		}
		a, err = guardrail.NewNightfall(o)
	default:
		return nil, fmt.Errorf("guardrail %q: unknown type %q", gc.Name, gc.Type)
	}
	if err != nil {
		return nil, err
	}
	s := guardrail.Settings{Timeout: gc.Timeout.Std(), FailMode: guardrail.FailMode(gc.Fail), MaxResponseBytes: int64(gc.MaxResponseBytes),
		Logger: g.log, OnFailure: func(name string, _ error) { g.metrics().GuardrailFailure(name) }}
	for _, d := range gc.Directions {
		dir, err := guardrail.ParseDirection(d)
		if err != nil {
			return nil, fmt.Errorf("guardrail %q: %w", gc.Name, err)
		}
		s.Directions = append(s.Directions, dir)
	}
	w, err := guardrail.Wrap(a, s)
	if err != nil {
		return nil, err
	}
	return &guardrailHook{hookScope: hookScope{gc.Servers, gc.Tools}, name: gc.Name, wrapped: w}, nil
}

// hookPrincipal is the caller, for the hooks.
func (x *exchange) hookPrincipal() *identity.Principal {
	if x.s != nil {
		return x.s.principal
	}
	return x.audit.principal
}

// hookUpstream names the upstream serving the exchange: the one called,
// or, before the call, the member the name routes to.
func (x *exchange) hookUpstream() string {
	x.mu.Lock()
	up := x.audit.upstream
	x.mu.Unlock()
	if up != "" || len(x.vs.members) == 0 {
		return up
	}
	if x.vs.transparent {
		return x.vs.members[0].e.name
	}
	if x.m.Method != "tools/call" && x.m.Method != "prompts/get" {
		return ""
	}
	var found string
	n := 0
	for _, mb := range x.vs.members {
		if _, definite, ok := mb.upstreamName(x.audit.name, x.m.Method == "tools/call"); ok {
			if definite {
				return mb.e.name
			}
			found, n = mb.e.name, n+1
		}
	}
	if n == 1 {
		return found
	}
	return ""
}

// noteHook marks the audit record with findings of hooks or tool checks,
// counts them, and raises the record's inspection action to level.
func (x *exchange) noteHook(level inspect.Action, fs ...audit.Finding) {
	x.mu.Lock()
	defer x.mu.Unlock()
	a := &x.audit
	m := x.g.metrics()
	for _, f := range fs {
		a.findings = addFinding(m, a.findings, f)
	}
	a.inspectAction = max(a.inspectAction, level)
}

// hookPayload is the content going through the hooks.
type hookPayload struct {
	dir inspect.Direction
	// doc is the arguments (request) or the result (response); present is
	// false for a tools/call without arguments (the scripts see {}).
	doc     json.RawMessage
	present bool
	changed bool
	// findings of the built-in detectors, for the scripts.
	findings []inspect.Finding
}

// subject and object phrase error messages about the payload.
func (x *exchange) hookSubject(dir inspect.Direction) (subject, object string) {
	name := x.audit.name
	if name == "" {
		name = x.m.Method
	}
	if dir == inspect.Request {
		return "the call to " + name, "its arguments"
	}
	return "the result of " + name, "it"
}

// hookDenied is the error a deny or a failure (reason: "<hook> <name>
// failed: <kind>") of a hook answers with. It never holds the content.
func (x *exchange) hookDenied(dir inspect.Direction, kind, name, reason string, failed bool) *jsonrpc.Error {
	x.g.metrics().Blocked(string(dir))
	subject, object := x.hookSubject(dir)
	if failed {
		return jsonrpc.NewError(CodeInspectionBlocked, fmt.Sprintf("gatehouse blocked %s: %s could not be checked: %s", subject, object, reason))
	}
	return jsonrpc.NewError(CodeInspectionBlocked, fmt.Sprintf("gatehouse blocked %s: %s %s denied %s: %s", subject, kind, name, object, reason))
}

// runHooks runs the scripts, then the guardrails, that apply to this
// exchange over p; on return p.doc is what goes on (p.changed when a hook
// replaced it), unless an error refuses it.
func (x *exchange) runHooks(ctx context.Context, hs *hookSet, p *hookPayload) *jsonrpc.Error {
	if hs == nil {
		return nil
	}
	isTool := x.m.Method == "tools/call"
	if isTool {
		if e := x.runScripts(ctx, hs, p); e != nil {
			return e
		}
	}
	return x.runGuardrails(ctx, hs, p, isTool)
}

func (x *exchange) runScripts(ctx context.Context, hs *hookSet, p *hookPayload) *jsonrpc.Error {
	var call *script.Call
	for _, s := range hs.scripts {
		if !s.applies(x.vs.Name, x.audit.name, true) {
			continue
		}
		if p.dir == inspect.Request && !s.h.HasToolCall() || p.dir == inspect.Response && !s.h.HasToolResult() {
			continue
		}
		if call == nil {
			call = &script.Call{Server: x.vs.Name, Upstream: x.hookUpstream(), Tool: x.audit.name, Method: x.m.Method,
				Findings: p.findings}
			if pr := x.hookPrincipal(); pr != nil {
				call.Agent = script.Agent{ID: pr.ID(), Name: principalName(pr), Team: pr.Team}
			}
		}
		var v script.Verdict
		if p.dir == inspect.Request {
			call.Args = p.doc
			if !p.present {
				call.Args = json.RawMessage("{}")
			}
			v = s.h.OnToolCall(ctx, call)
		} else {
			// onToolResult sees the arguments as the agent sent them.
			call.Args, _ = jsonrpc.Get(x.m.Params, "arguments")
			call.Result = p.doc
			v = s.h.OnToolResult(ctx, call)
		}
		name := s.h.Name()
		switch v.Action {
		case script.Deny:
			kind, failed := v.Failed, v.Failed != ""
			if failed {
				x.noteHook(inspect.ActionBlock, hookFinding("script", name, p.dir, "failed:"+kind))
				x.hookAlert(alert.KindScriptFailure, "script", name, p.dir, kind, "closed")
			} else {
				x.noteHook(inspect.ActionBlock, hookFinding("script", name, p.dir, "block"))
				x.g.log.Info("script denied", "script", name, "version", s.h.Version(), "server", x.vs.Name, "tool", x.audit.name, "direction", p.dir)
			}
			return x.hookDenied(p.dir, "script", name, v.Reason, failed)
		case script.Mutate:
			if !isObject(v.JSON) {
				x.noteHook(inspect.ActionBlock, hookFinding("script", name, p.dir, "failed:bad mutation"))
				x.g.metrics().ScriptFailure(name, "bad mutation")
				x.hookAlert(alert.KindScriptFailure, "script", name, p.dir, "bad mutation", "closed")
				return x.hookDenied(p.dir, "script", name, "script "+name+" failed: its mutate value is not a JSON object", true)
			}
			x.noteHook(inspect.ActionRedact, hookFinding("script", name, p.dir, "mutate"))
			p.doc, p.present, p.changed = v.JSON, true, true
		}
	}
	return nil
}

func (x *exchange) runGuardrails(ctx context.Context, hs *hookSet, p *hookPayload, isTool bool) *jsonrpc.Error {
	dir := guardrail.Direction(p.dir)
	var req *guardrail.Request
	for _, gh := range hs.guardrails {
		if !gh.applies(x.vs.Name, x.audit.name, isTool) || !gh.wrapped.Applies(dir) || !p.present {
			continue
		}
		if req == nil {
			req = &guardrail.Request{Direction: dir, Server: x.vs.Name, Upstream: x.hookUpstream(), Method: x.m.Method}
			if isTool {
				req.Tool = x.audit.name
			}
			if pr := x.hookPrincipal(); pr != nil {
				req.Agent, req.Team = principalName(pr), pr.Team
			}
		}
		if string(req.JSON) != string(p.doc) || req.JSON == nil {
			// The text of the payload, again only when a guardrail before
			// rewrote it.
			req.JSON, req.Text = p.doc, guardrail.TextOf(p.doc)
		}
		v, failure := gh.wrapped.Decide(ctx, req)
		if failure != nil {
			level, mode := inspect.ActionAlert, "open" // failed open: let through, marked for review
			if v.Action == guardrail.Deny {
				level, mode = inspect.ActionBlock, "closed"
			}
			x.noteHook(level, hookFinding("guardrail", gh.name, p.dir, "failed:"+failure.Kind))
			x.hookAlert(alert.KindGuardrailFailure, "guardrail", gh.name, p.dir, failure.Kind, mode)
		}
		switch v.Action {
		case guardrail.Deny:
			if failure == nil {
				x.noteHook(inspect.ActionBlock, append([]audit.Finding{hookFinding("guardrail", gh.name, p.dir, "block")},
					providerFindings(v.Findings, p.dir, "block")...)...)
				x.g.log.Info("guardrail denied", "guardrail", gh.name, "server", x.vs.Name, "method", x.m.Method, "name", x.audit.name, "direction", p.dir)
			}
			return x.hookDenied(p.dir, "guardrail", gh.name, v.Reason, failure != nil)
		case guardrail.Mutate:
			doc, ok := x.applyGuardrailMutation(p, v)
			if !ok {
				x.g.metrics().GuardrailFailure(gh.name)
				x.noteHook(inspect.ActionBlock, hookFinding("guardrail", gh.name, p.dir, "failed:bad mutation"))
				x.hookAlert(alert.KindGuardrailFailure, "guardrail", gh.name, p.dir, "bad mutation", "closed")
				x.g.metrics().Blocked(string(p.dir))
				subject, object := x.hookSubject(p.dir)
				return jsonrpc.NewError(CodeInspectionBlocked, fmt.Sprintf("gatehouse blocked %s: guardrail %s rewrote %s in a form gatehouse cannot apply", subject, gh.name, object))
			}
			x.noteHook(inspect.ActionRedact, append([]audit.Finding{hookFinding("guardrail", gh.name, p.dir, "mutate")},
				providerFindings(v.Findings, p.dir, "mutate")...)...)
			p.doc, p.changed = doc, true
		default:
			if len(v.Findings) > 0 {
				x.noteHook(inspect.ActionFlag, providerFindings(v.Findings, p.dir, "flag")...)
			}
		}
	}
	return nil
}

// applyGuardrailMutation returns the payload a mutate verdict asks for.
// A JSON replacement must be an object. A text replacement (providers
// that only rewrite text) is put back string by string when it keeps the
// text's lines (each string value was one or more lines of Request.Text);
// otherwise a tools/call result becomes one text content item holding
// it, and anything else cannot be mutated (false).
func (x *exchange) applyGuardrailMutation(p *hookPayload, v guardrail.Verdict) (json.RawMessage, bool) {
	if v.JSON != nil {
		return v.JSON, isObject(v.JSON)
	}
	if doc, ok := putText(p.doc, v.Text); ok {
		return doc, true
	}
	if p.dir == inspect.Response && x.m.Method == "tools/call" {
		return textResult(p.doc, v.Text), true
	}
	return nil, false
}

// textResult is a tools/call result holding text only (isError kept;
// structuredContent, which would still hold what was rewritten, dropped).
func textResult(orig json.RawMessage, text string) json.RawMessage {
	var b bytes.Buffer
	b.WriteString(`{"content":[{"type":"text","text":`)
	b.Write(jsonrpc.Quote(text))
	b.WriteString(`}]`)
	if v, ok := jsonrpc.Get(orig, "isError"); ok && string(v) == "true" {
		b.WriteString(`,"isError":true`)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// putText replaces the string values of doc (object keys excluded, in
// document order, as guardrail.TextOf joins them) with the lines of text,
// when text has as many lines as TextOf(doc).
func putText(doc json.RawMessage, text string) (json.RawMessage, bool) {
	var strs []string
	if _, err := rewriteStrings(doc, func(s string) string { strs = append(strs, s); return s }); err != nil {
		return nil, false
	}
	if len(strs) == 0 {
		return doc, text == ""
	}
	lines := strings.Split(text, "\n")
	total := 0
	for _, s := range strs {
		total += strings.Count(s, "\n") + 1
	}
	if len(lines) != total {
		return nil, false
	}
	i := 0
	out, err := rewriteStrings(doc, func(s string) string {
		n := strings.Count(s, "\n") + 1
		r := strings.Join(lines[i:i+n], "\n")
		i += n
		return r
	})
	if err != nil {
		return nil, false
	}
	return out, true
}

// rewriteStrings re-encodes doc with every string value (not object keys)
// replaced by repl's answer, in document order. Numbers are kept as
// written.
func rewriteStrings(doc []byte, repl func(string) string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	type level struct {
		object, expectKey bool
		n                 int
	}
	var (
		b     bytes.Buffer
		stack []level
	)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			b.WriteByte(byte(d))
			stack = stack[:len(stack)-1]
			if n := len(stack); n > 0 && stack[n-1].object {
				stack[n-1].expectKey = true
			}
			continue
		}
		var top *level
		if n := len(stack); n > 0 {
			top = &stack[n-1]
		}
		if top != nil && top.object && top.expectKey {
			if top.n > 0 {
				b.WriteByte(',')
			}
			top.n++
			b.Write(jsonrpc.Quote(tok.(string)))
			b.WriteByte(':')
			top.expectKey = false
			continue
		}
		if top != nil && !top.object {
			if top.n > 0 {
				b.WriteByte(',')
			}
			top.n++
		}
		switch t := tok.(type) {
		case json.Delim:
			b.WriteByte(byte(t))
			stack = append(stack, level{object: t == '{', expectKey: t == '{'})
			continue // the container's end completes the value
		case string:
			b.Write(jsonrpc.Quote(repl(t)))
		case json.Number:
			b.WriteString(t.String())
		case bool:
			if t {
				b.WriteString("true")
			} else {
				b.WriteString("false")
			}
		case nil:
			b.WriteString("null")
		}
		if top != nil && top.object {
			top.expectKey = true
		}
	}
	return b.Bytes(), nil
}

func isObject(doc json.RawMessage) bool {
	d := bytes.TrimSpace(doc)
	return len(d) > 0 && d[0] == '{' && json.Valid(d)
}

// hookAlert raises the alert of a hook's failure: names only (the hook,
// the failure's kind, the fail mode), never content.
func (x *exchange) hookAlert(kind alert.Kind, hook, name string, dir inspect.Direction, failure, mode string) {
	verdict := "denied"
	if mode == "open" {
		verdict = "let through"
	}
	what := "the arguments"
	if dir == inspect.Response {
		what = "the result"
	}
	target := x.audit.name
	if target == "" {
		target = x.m.Method
	}
	al := alert.Alert{Kind: kind, Time: x.g.alerting.now(), Server: x.vs.Name, Upstream: x.hookUpstream(), Method: x.m.Method,
		RequestID: string(x.m.ID), Direction: string(dir), Action: verdict,
		Summary: fmt.Sprintf("%s %s failed (%s) on %s of %s (server %s); fail %s: %s", hook, name, failure, what, target, x.vs.Name, mode, verdict),
		Details: map[string]string{hook: name, "failure": failure, "fail": mode}}
	if x.m.Method == "tools/call" {
		al.Tool = x.audit.name
	}
	if pr := x.hookPrincipal(); pr != nil {
		al.Agent, al.AgentID, al.Team = anomalyAgent(pr), pr.AgentID, pr.Team
	}
	if x.s != nil {
		al.SessionID = x.s.id
	}
	x.g.raiseAlert(al)
}

// hookFinding is the audit record's mark of a hook's decision: category
// guardrail or script, the hook's name as type, and the action (block,
// mutate, or failed:<kind>).
func hookFinding(kind, name string, dir inspect.Direction, action string) audit.Finding {
	return audit.Finding{Category: kind, Type: name, Confidence: "high", Direction: string(dir), Action: action}
}

// providerFindings are a guardrail's findings (category and type only)
// for the audit record.
func providerFindings(fs []inspect.Finding, dir inspect.Direction, action string) []audit.Finding {
	out := make([]audit.Finding, 0, len(fs))
	for _, f := range fs {
		c := f.Confidence
		if c < inspect.Low || c > inspect.High {
			c = inspect.Medium
		}
		out = append(out, audit.Finding{Category: string(f.Category), Type: f.Type, Confidence: c.String(),
			Direction: string(dir), Action: action})
	}
	return out
}

func principalName(p *identity.Principal) string {
	switch {
	case p.AgentName != "":
		return p.AgentName
	case p.Username != "":
		return p.Username
	}
	return p.Subject
}
