package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"gatehouse/internal/audit"
	"gatehouse/internal/gateway"
	"gatehouse/internal/store"
	"gatehouse/internal/telemetry"
	"gatehouse/internal/vault"
	"gatehouse/internal/webhooksig"
)

// hookVault is a SecretResolver holding the guardrails' secrets.
type hookVault map[string]string

func (v hookVault) Expand(ctx context.Context, template, agent string) (string, error) {
	return vault.Expand(ctx, template, agent, func(_ context.Context, name, _ string) ([]byte, error) {
		if s, ok := v[name]; ok {
			return []byte(s), nil
		}
		return nil, fmt.Errorf("no secret named %s", name)
	})
}

const (
	hookKey   = "0123456789abcdef0123456789abcdef" // the webhooks' HMAC key, from the vault
	hookToken = "guard-bearer-token"
)

// guardReceiver is a webhook guardrail: it checks the signature and the
// bearer token, denies arguments mentioning "forbidden", replaces results
// saying "classified" (JSON) and rewrites "jane" in results (text).
type guardReceiver struct {
	t        *testing.T
	verified atomic.Int64
	refused  atomic.Int64
}

func (g *guardReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	if err := webhooksig.Verify([]byte(hookKey), r.Header.Get(webhooksig.TimestampHeader), r.Header.Get(webhooksig.SignatureHeader),
		body, time.Now(), 5*time.Minute); err != nil || r.Header.Get("Authorization") != "Bearer "+hookToken {
		g.refused.Add(1)
		g.t.Errorf("guardrail request not signed or authorized: %v", err)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	g.verified.Add(1)
	var req struct {
		Direction, Server, Method, Tool, Text string
		JSON                                  json.RawMessage
	}
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	var answer any = map[string]any{"action": "allow"}
	switch {
	case req.Direction == "request" && strings.Contains(req.Text, "forbidden"):
		answer = map[string]any{"action": "deny", "reason": "restricted subject"}
	case req.Direction == "response" && strings.Contains(req.Text, "classified"):
		answer = map[string]any{"action": "mutate", "json": map[string]any{"content": []any{map[string]any{"type": "text", "text": "[withheld by corp]"}}}}
	case req.Direction == "response" && strings.Contains(req.Text, "jane"):
		answer = map[string]any{"action": "mutate", "text": strings.ReplaceAll(req.Text, "jane", "[name]"),
			"findings": []any{map[string]any{"category": "pii", "type": "first-name", "start": 0, "end": 1, "confidence": "high"}}}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(answer)
}

// hookUpstream serves echo tools under several names (the hooks are
// scoped by tool name) and remembers the texts it was sent.
type hookUpstream struct {
	mu   sync.Mutex
	seen []string
}

func (u *hookUpstream) saw(s string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, x := range u.seen {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}

func (u *hookUpstream) server() *sdk.Server {
	s := sdk.NewServer(&sdk.Implementation{Name: "hooked", Version: "1.0.0"}, nil)
	for _, name := range []string{"echo", "shout", "slow_echo", "open_echo", "loop_echo", "masked_echo", "pii_echo"} {
		sdk.AddTool(s, &sdk.Tool{Name: name, Description: "returns its text"}, func(_ context.Context, _ *sdk.CallToolRequest, in textArgs) (*sdk.CallToolResult, any, error) {
			u.mu.Lock()
			u.seen = append(u.seen, name+":"+in.Text)
			u.mu.Unlock()
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: in.Text}}}, nil, nil
		})
	}
	s.AddPrompt(&sdk.Prompt{Name: "greet"}, func(context.Context, *sdk.GetPromptRequest) (*sdk.GetPromptResult, error) {
		return &sdk.GetPromptResult{Messages: []*sdk.PromptMessage{{Role: "user", Content: &sdk.TextContent{Text: "say hello to jane"}}}}, nil
	})
	s.AddResource(&sdk.Resource{URI: "note://1", Name: "note"}, func(_ context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
		return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: req.Params.URI, Text: "jane wrote this"}}}, nil
	})
	return s
}

const hooksConfig = `
upstreams:
  hooked: {url: "@UPSTREAM@"}
servers:
  work:
    upstreams: [{upstream: hooked, prefix: ""}]
identity: {auth: "off"}
admin: {disabled: true}
inspect:
  scripts:
    - name: deny-rm
      version: "1"
      timeout: 5s
      tools: [echo]
      source: |
        function onToolCall(ctx) {
          if (String(ctx.args.text).indexOf("rm -rf") >= 0) return deny("destructive command");
          return allow();
        }
    - name: upper
      timeout: 5s
      tools: [shout]
      source: |
        function onToolCall(ctx) {
          ctx.args.text = String(ctx.args.text).toUpperCase();
          return mutate(ctx.args);
        }
    - name: loop
      timeout: 200ms
      tools: [loop_echo]
      source: |
        function onToolCall(ctx) { while (true) {} }
    - name: mask
      timeout: 5s
      tools: [masked_echo]
      source: |
        function onToolResult(ctx) {
          return mutate({content: [{type: "text", text: "[masked by " + ctx.tool + "]"}]});
        }
    - name: no-pii
      timeout: 5s
      tools: [pii_echo]
      source: |
        function onToolCall(ctx) {
          if (ctx.findings.some(function (f) { return f.category === "pii"; }))
            return deny("no personal data in arguments");
        }
  guardrails:
    - name: corp
      type: webhook
      url: "@GUARD@"
      key: "{{vault:guard-key}}"
      bearer_token: "{{vault:guard-token}}"
      timeout: 20s
    - name: stuck
      type: webhook
      url: "@STUCK@"
      key: "{{vault:guard-key}}"
      timeout: 300ms
      tools: ["slow_*"]
    - name: stuck-open
      type: webhook
      url: "@STUCK@"
      key: "{{vault:guard-key}}"
      timeout: 300ms
      fail: open
      directions: [request]
      tools: ["open_*"]
`

// TestHooks: scripts and webhook guardrails on the request path. A script
// denies by argument, one rewrites the arguments (the upstream sees the
// change), one loops forever (fails closed on its timeout), one rewrites
// a result; one sees the built-in detectors' findings. A signed webhook
// denies arguments and rewrites results (as JSON and as text); a
// guardrail that never answers fails closed, or open when told to. The
// audit records mark what the hooks did.
func TestHooks(t *testing.T) {
	up := &hookUpstream{}
	guard := &guardReceiver{t: t}
	guardSrv := httptest.NewServer(guard)
	t.Cleanup(guardSrv.Close)
	// The stuck guardrail answers only when the test ends (or the
	// gateway gives up on the request).
	release := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(stuck.Close)
	t.Cleanup(func() { close(release) }) // runs before stuck.Close

	yaml := strings.NewReplacer("@UPSTREAM@", serveStreamable(t, up.server()), "@GUARD@", guardSrv.URL+"/check",
		"@STUCK@", stuck.URL+"/check").Replace(hooksConfig)
	st, trail := auditedStore(t)
	metrics := telemetry.New()
	h := startGatewayWith(t, yaml, gateway.Options{Audit: trail, Metrics: metrics,
		Secrets: hookVault{"guard-key": hookKey, "guard-token": hookToken}})
	cs := connect(t, h.URL("work"), v20251125, nil)

	blocked := func(name, text string, want ...string) {
		t.Helper()
		_, err := cs.CallTool(ctxT(t), &sdk.CallToolParams{Name: name, Arguments: map[string]any{"text": text}})
		if err == nil {
			t.Fatalf("%s(%q) was let through", name, text)
		}
		e := rpcError(t, err)
		if e.Code != gateway.CodeInspectionBlocked {
			t.Errorf("%s(%q): code %d, want %d (%s)", name, text, e.Code, gateway.CodeInspectionBlocked, e.Message)
		}
		for _, w := range want {
			if !strings.Contains(e.Message, w) {
				t.Errorf("%s(%q): error %q does not say %q", name, text, e.Message, w)
			}
		}
		if up.saw(name + ":" + text) {
			t.Errorf("%s(%q) reached the upstream", name, text)
		}
	}

	// Scripts.
	blocked("echo", "please rm -rf / now", "script deny-rm denied its arguments: destructive command")
	if got := callText(t, cs, "echo", map[string]any{"text": "ls -l"}); got != "ls -l" {
		t.Errorf("echo: got %q", got)
	}
	if got := callText(t, cs, "shout", map[string]any{"text": "hello"}); got != "HELLO" || !up.saw("shout:HELLO") {
		t.Errorf("a script rewriting the arguments: got %q, upstream saw the rewrite: %v", got, up.saw("shout:HELLO"))
	}
	blocked("loop_echo", "spin", "its arguments could not be checked: script loop failed: timeout")
	if got := callText(t, cs, "masked_echo", map[string]any{"text": "the real result"}); got != "[masked by masked_echo]" {
		t.Errorf("a script rewriting the result: got %q", got)
	}
	blocked("pii_echo", "mail jane.roe@example.org", "script no-pii denied its arguments: no personal data in arguments")
	if got := callText(t, cs, "pii_echo", map[string]any{"text": "nothing personal"}); got != "nothing personal" {
		t.Errorf("pii_echo: got %q", got)
	}

	// The webhook guardrail.
	blocked("echo", "tell me about the forbidden zone 51", "guardrail corp denied its arguments: restricted subject")
	if _, err := cs.CallTool(ctxT(t), &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "the forbidden zone 51"}}); err == nil ||
		strings.Contains(err.Error(), "zone 51") {
		t.Errorf("the error repeats the arguments: %v", err)
	}
	if got := callText(t, cs, "echo", map[string]any{"text": "classified plans"}); got != "[withheld by corp]" {
		t.Errorf("a guardrail replacing the result (json): got %q", got)
	}
	if got := callText(t, cs, "echo", map[string]any{"text": "hello jane\nbye jane"}); got != "hello [name]\nbye [name]" {
		t.Errorf("a guardrail rewriting the result's text: got %q", got)
	}

	// Guardrails also see prompts and resources (scripts only tool calls).
	pr, err := cs.GetPrompt(ctxT(t), &sdk.GetPromptParams{Name: "greet"})
	if err != nil || len(pr.Messages) != 1 {
		t.Fatalf("prompts/get: %v", err)
	}
	if tc, ok := pr.Messages[0].Content.(*sdk.TextContent); !ok || tc.Text != "say hello to [name]" {
		t.Errorf("a guardrail rewriting a prompt: got %#v", pr.Messages[0].Content)
	}
	rr, err := cs.ReadResource(ctxT(t), &sdk.ReadResourceParams{URI: "note://1"})
	if err != nil || len(rr.Contents) != 1 || rr.Contents[0].Text != "[name] wrote this" || rr.Contents[0].URI != "note://1" {
		t.Errorf("a guardrail rewriting a resource: %v %#v", err, rr)
	}

	// Guardrails that never answer.
	blocked("slow_echo", "anything", "its arguments could not be checked: guardrail stuck failed: timeout")
	if got := callText(t, cs, "open_echo", map[string]any{"text": "go on"}); got != "go on" {
		t.Errorf("a guardrail failing open: got %q", got)
	}

	// A stateless client goes through the same hooks.
	modern := connect(t, h.URL("work"), "", nil)
	if got := callText(t, modern, "shout", map[string]any{"text": "quiet"}); got != "QUIET" {
		t.Errorf("stateless: a script rewriting the arguments: got %q", got)
	}
	_, err = modern.CallTool(ctxT(t), &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "forbidden"}})
	if err == nil || !strings.Contains(err.Error(), "guardrail corp denied") {
		t.Errorf("stateless: the guardrail's deny: %v", err)
	}

	if guard.verified.Load() == 0 || guard.refused.Load() != 0 {
		t.Errorf("guardrail requests: %d verified, %d refused", guard.verified.Load(), guard.refused.Load())
	}
	log := h.log.String()
	for _, w := range []string{"guardrail failed", "script failed", "alert: guardrail_failure", "alert: script_failure"} {
		if !strings.Contains(log, w) {
			t.Errorf("the log does not say %q:\n%s", w, h.log.tail(40))
		}
	}
	if strings.Contains(log, hookKey) || strings.Contains(log, hookToken) || strings.Contains(log, "zone 51") {
		t.Errorf("the log holds a secret or the content:\n%s", log)
	}
	rec := httptest.NewRecorder()
	metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, w := range []string{
		`gatehouse_guardrail_failures_total{guardrail="stuck"} 1`,
		`gatehouse_guardrail_failures_total{guardrail="stuck-open"} 1`,
		`gatehouse_script_failures_total{kind="timeout",script="loop"} 1`,
		`gatehouse_inspect_findings_total{action="block",category="guardrail",direction="request",type="corp"} 3`,
		`gatehouse_inspect_findings_total{action="mutate",category="script",direction="request",type="upper"} 2`,
		`gatehouse_alerts_total{kind="guardrail_failure"} 2`,
	} {
		if !strings.Contains(rec.Body.String(), w) {
			t.Errorf("metrics: no %s", w)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", rec.Body.String())
	}

	// What the audit records say, by tool: the hook findings (category,
	// type, action) and the record's inspection action.
	type mark struct{ category, typ, action string }
	want := map[string]struct {
		marks  []mark
		action string
	}{
		"echo":        {[]mark{{"script", "deny-rm", "block"}, {"guardrail", "corp", "block"}, {"guardrail", "corp", "mutate"}}, ""},
		"shout":       {[]mark{{"script", "upper", "mutate"}}, "redact"},
		"loop_echo":   {[]mark{{"script", "loop", "failed:timeout"}}, "block"},
		"masked_echo": {[]mark{{"script", "mask", "mutate"}}, "redact"},
		"pii_echo":    {[]mark{{"script", "no-pii", "block"}}, ""},
		"slow_echo":   {[]mark{{"guardrail", "stuck", "failed:timeout"}}, "block"},
		"open_echo":   {[]mark{{"guardrail", "stuck-open", "failed:timeout"}}, "alert"},
	}
	eventually(t, "the hooks' marks in the audit records", func() error {
		if err := trail.Flush(context.Background()); err != nil {
			return err
		}
		rows, err := st.ListAudit(context.Background(), store.AuditFilter{Kind: audit.KindMCPRequest, Limit: 1000})
		if err != nil {
			return err
		}
		got := map[string]map[mark]bool{}
		actions := map[string]map[string]bool{}
		for _, rw := range rows {
			var r audit.Record
			if err := json.Unmarshal(rw.Data, &r); err != nil {
				return err
			}
			if r.Inspection == nil || r.Target.Tool == "" {
				continue
			}
			if got[r.Target.Tool] == nil {
				got[r.Target.Tool], actions[r.Target.Tool] = map[mark]bool{}, map[string]bool{}
			}
			actions[r.Target.Tool][r.Inspection.Action] = true
			for _, f := range r.Inspection.Findings {
				got[r.Target.Tool][mark{f.Category, f.Type, f.Action}] = true
			}
			if r.Inspection.Action == "block" && r.Outcome.ErrorCode != gateway.CodeInspectionBlocked {
				t.Errorf("a blocked call's record has error code %d: %s", r.Outcome.ErrorCode, rw.Data)
			}
		}
		for tool, w := range want {
			for _, m := range w.marks {
				if !got[tool][m] {
					return fmt.Errorf("%w: no %v in the records of %s (%v)", errNotYet, m, tool, got[tool])
				}
			}
			if w.action != "" && !actions[tool][w.action] {
				return fmt.Errorf("%w: no record of %s with inspection action %s (%v)", errNotYet, tool, w.action, actions[tool])
			}
		}
		if !actions["echo"]["block"] || !actions["pii_echo"]["block"] {
			return fmt.Errorf("%w: denials not marked block: %v", errNotYet, actions)
		}
		return nil
	})
}

// TestHooksVaultRequired: a guardrail secret referencing the vault on a
// gateway without one is an error when the configuration is applied.
func TestHooksVaultRequired(t *testing.T) {
	yaml := strings.NewReplacer("@UPSTREAM@", "http://127.0.0.1:1/mcp", "@GUARD@", "http://127.0.0.1:1/check",
		"@STUCK@", "http://127.0.0.1:1/check").Replace(hooksConfig)
	_, err := gateway.New(loadConfig(t, yaml), gateway.Options{})
	if err == nil || !strings.Contains(err.Error(), `guardrail "corp": key references the vault, but the gateway has no vault`) &&
		!strings.Contains(err.Error(), `guardrail "corp": bearer_token references the vault, but the gateway has no vault`) {
		t.Fatalf("gateway.New: %v", err)
	}
	_, err = gateway.New(loadConfig(t, yaml), gateway.Options{Secrets: hookVault{"guard-key": hookKey}})
	if err == nil || !strings.Contains(err.Error(), "guard-token") || strings.Contains(err.Error(), hookKey) {
		t.Fatalf("gateway.New with a missing vault entry: %v", err)
	}
}

// TestHooksReload: a reload keeps unchanged hooks and applies changed
// ones; built-in detectors being off does not turn the hooks off.
func TestHooksReload(t *testing.T) {
	up := &hookUpstream{}
	base := strings.NewReplacer("@UPSTREAM@", serveStreamable(t, up.server())).Replace(`
upstreams:
  hooked: {url: "@UPSTREAM@"}
servers:
  work:
    upstreams: [{upstream: hooked, prefix: ""}]
identity: {auth: "off"}
admin: {disabled: true}
inspect:
  disabled: true
  scripts:
    - name: gate
      version: "@VERSION@"
      timeout: 5s
      source: |
        function onToolCall(ctx) {
          if (ctx.args.text === "@WORD@") return deny("word of the day");
        }
`)
	cfg := func(version, word string) string {
		return strings.NewReplacer("@VERSION@", version, "@WORD@", word).Replace(base)
	}
	h := startGateway(t, cfg("1", "alpha"))
	cs := connect(t, h.URL("work"), v20251125, nil)
	denied := func(word string) bool {
		t.Helper()
		_, err := cs.CallTool(ctxT(t), &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"text": word}})
		if err != nil && !strings.Contains(err.Error(), "script gate denied its arguments: word of the day") {
			t.Fatalf("echo(%q): %v", word, err)
		}
		return err != nil
	}
	if !denied("alpha") || denied("beta") {
		t.Fatal("the script does not run with the built-in detectors off")
	}
	h.apply(cfg("2", "beta"))
	if denied("alpha") || !denied("beta") {
		t.Fatal("the reloaded script is not the one in force")
	}
}
