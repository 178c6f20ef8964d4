package config

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// hooksBase is a valid configuration the guardrail and script tests add
// an inspect section to.
const hooksBase = `
upstreams:
  crm: {command: x}
servers:
  support: {upstreams: [{upstream: crm}]}
`

func TestLoadGuardrailsAndScripts(t *testing.T) {
	src := hooksBase + `
inspect:
  guardrails:
    - name: corp
      type: webhook
      url: https://guard.example/check
      key: "${GUARD_KEY}"
      bearer_token: "{{vault:guard-token}}"
      timeout: 1500ms
      fail: open
      directions: [request]
      max_response_bytes: 64KiB
      servers: [support]
      tools: ["crm_*"]
    - name: aws
      type: bedrock
      guardrail_id: gr-123
      guardrail_version: DRAFT
      region: eu-west-1
    - name: dlp
      type: gcp_dlp
      project: p1
      info_types: [EMAIL_ADDRESS]
      min_likelihood: LIKELY
      deidentify: true
      credentials_json: "{{vault:gcp-sa}}"
    - name: nf
      type: nightfall
      api_key: "${NF_KEY}"
      detection_rules:
        - name: cards
          logicalOp: ANY
          detectors: [{detectorType: NIGHTFALL_DETECTOR, nightfallDetector: CREDIT_CARD_NUMBER, minConfidence: LIKELY}]
  scripts:
    - name: writes
      version: "3"
      timeout: 20ms
      tools: ["write_*"]
      source: |
        function onToolCall(ctx) {
          if (ctx.args.path === "/etc/passwd") return deny("no");
          return allow();
        }
`
	env := map[string]string{"GUARD_KEY": "0123456789abcdef0123456789abcdef", "NF_KEY": "nf-secret"}
	cfg, err := Load("h.yaml", []byte(src), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	gs := cfg.Inspect.Guardrails
	if len(gs) != 4 || len(cfg.Inspect.Scripts) != 1 {
		t.Fatalf("got %d guardrails, %d scripts", len(gs), len(cfg.Inspect.Scripts))
	}
	w := gs[0]
	if w.Key.Reveal() != env["GUARD_KEY"] || w.BearerToken.Reveal() != "{{vault:guard-token}}" {
		t.Errorf("webhook secrets: key expanded %v, token kept for the vault %v", w.Key.Reveal() == env["GUARD_KEY"], w.BearerToken.Reveal())
	}
	if w.Timeout.Std() != 1500*time.Millisecond || w.Fail != "open" || w.MaxResponseBytes != 64<<10 ||
		len(w.Directions) != 1 || w.Servers[0] != "support" || w.Tools[0] != "crm_*" {
		t.Errorf("webhook settings: %+v", w)
	}
	if strings.Contains(w.Key.String(), env["GUARD_KEY"]) {
		t.Error("a secret prints")
	}
	if gs[3].APIKey.Reveal() != "nf-secret" {
		t.Error("nightfall api key not expanded")
	}
	rules, err := json.Marshal(gs[3].DetectionRules)
	if err != nil || !strings.Contains(string(rules), `"nightfallDetector":"CREDIT_CARD_NUMBER"`) {
		t.Errorf("detection rules as JSON: %s, %v", rules, err)
	}
	s := cfg.Inspect.Scripts[0]
	if s.Name != "writes" || s.Version != "3" || s.ScriptOptions().Timeout != 20*time.Millisecond || !strings.Contains(s.Source, "onToolCall") {
		t.Errorf("script: %+v", s)
	}
}

func TestGuardrailAndScriptProblems(t *testing.T) {
	for _, tt := range []struct {
		name    string
		inspect string
		want    []string // substrings of the problems
	}{
		{
			name: "unknown type",
			inspect: `
  guardrails:
    - {name: g, type: lakera}`,
			want: []string{`inspect.guardrails[0].type: unknown guardrail type "lakera" (webhook, bedrock, gcp_dlp, nightfall)`},
		},
		{
			name: "missing type and name",
			inspect: `
  guardrails:
    - {url: "http://x"}`,
			want: []string{`inspect.guardrails[0].name: a guardrail needs a name`, `inspect.guardrails[0].type: missing`},
		},
		{
			name: "webhook without url or key",
			inspect: `
  guardrails:
    - {name: g, type: webhook}`,
			want: []string{`inspect.guardrails[0].url: type webhook needs url`, `inspect.guardrails[0].key: type webhook needs key`},
		},
		{
			name: "webhook bad url and short key",
			inspect: `
  guardrails:
    - {name: g, type: webhook, url: "ftp://x", key: short}`,
			want: []string{`inspect.guardrails[0].url: invalid URL`, `inspect.guardrails[0].key: the signing key must be at least 16 bytes`},
		},
		{
			name: "bad fail mode and direction",
			inspect: `
  guardrails:
    - {name: g, type: webhook, url: "http://x/y", key: "0123456789abcdef", fail: sometimes, directions: [request, upward, request]}`,
			want: []string{`inspect.guardrails[0].fail: unknown fail mode "sometimes" (closed, open)`,
				`inspect.guardrails[0].directions[1]: unknown direction "upward"`,
				`inspect.guardrails[0].directions[2]: direction "request" is listed twice`},
		},
		{
			name: "duplicate names",
			inspect: `
  guardrails:
    - {name: g, type: webhook, url: "http://x/y", key: "0123456789abcdef"}
    - {name: g, type: webhook, url: "http://x/z", key: "0123456789abcdef"}
  scripts:
    - {name: s, source: "function onToolCall(ctx) {}"}
    - {name: s, source: "function onToolCall(ctx) {}"}`,
			want: []string{`inspect.guardrails[1].name: guardrail "g" is already declared at inspect.guardrails[0]`,
				`inspect.scripts[1].name: script "s" is already declared at inspect.scripts[0]`},
		},
		{
			name: "settings of another type",
			inspect: `
  guardrails:
    - {name: g, type: webhook, url: "http://x/y", key: "0123456789abcdef", region: us-east-1, api_key: k}`,
			want: []string{`inspect.guardrails[0].api_key: api_key does not apply to type webhook (only nightfall)`,
				`inspect.guardrails[0].region: region does not apply to type webhook (only bedrock)`},
		},
		{
			name: "bedrock requirements",
			inspect: `
  guardrails:
    - {name: b, type: bedrock, access_key_id: AKIA, max_attempts: -1}`,
			want: []string{`guardrails[0].guardrail_id: type bedrock needs guardrail_id`, `guardrails[0].guardrail_version: type bedrock needs guardrail_version`,
				`guardrails[0].region: type bedrock needs region`, `guardrails[0].secret_access_key: access_key_id needs secret_access_key`,
				`guardrails[0].max_attempts: must not be negative`},
		},
		{
			name: "gcp dlp requirements",
			inspect: `
  guardrails:
    - {name: d, type: gcp_dlp, min_likelihood: SURE, credentials_json: "{}", token: t, base_url: "http://u:p@dlp"}`,
			want: []string{`guardrails[0].project: type gcp_dlp needs project`, `guardrails[0].min_likelihood: unknown likelihood "SURE"`,
				`guardrails[0].token: set credentials_json or token, not both`, `guardrails[0].base_url: invalid base URL`},
		},
		{
			name: "nightfall requirements",
			inspect: `
  guardrails:
    - {name: n, type: nightfall, min_confidence: high}`,
			want: []string{`guardrails[0].api_key: type nightfall needs api_key`, `guardrails[0]: type nightfall needs policy_uuids or detection_rules`,
				`guardrails[0].min_confidence: unknown confidence "high"`},
		},
		{
			name: "scope globs and servers",
			inspect: `
  guardrails:
    - {name: g, type: webhook, url: "http://x/y", key: "0123456789abcdef", servers: [billing, "sup*"], tools: ["[x"]}`,
			want: []string{`guardrails[0].servers[0]: unknown virtual server "billing" (declared: support)`, `guardrails[0].tools[0]: invalid glob "[x"`},
		},
		{
			name: "script without source",
			inspect: `
  scripts:
    - {name: s}`,
			want: []string{`inspect.scripts[0].source: missing`},
		},
		{
			name: "script defining no hook",
			inspect: `
  scripts:
    - {name: s, source: "var x = 1;"}`,
			want: []string{`inspect.scripts[0].source: script "s": defines neither onToolCall nor onToolResult`},
		},
		{
			name: "script throwing at load",
			inspect: `
  scripts:
    - {name: s, source: "throw new Error('boom'); function onToolCall(ctx) {}"}`,
			want: []string{`inspect.scripts[0].source: script "s": running top-level code`},
		},
		{
			name: "script limits",
			inspect: `
  scripts:
    - {name: s, pool_size: -1, max_call_stack: -2, source: "function onToolCall(ctx) {}"}`,
			want: []string{`inspect.scripts[0].max_call_stack: must not be negative`, `inspect.scripts[0].pool_size: must not be negative`},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load("h.yaml", []byte(hooksBase+"inspect:"+tt.inspect+"\n"), noEnv)
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("want Problems, got %v", err)
			}
			got := ps.Error()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in:\n%s", w, got)
				}
			}
		})
	}
}

// TestScriptSyntaxErrorLine: a syntax error in a block-scalar script is
// reported on the line of the file it is on, with the script's own
// line:column in the message.
func TestScriptSyntaxErrorLine(t *testing.T) {
	src := hooksBase + `inspect:
  scripts:
    - name: broken
      source: |
        function onToolCall(ctx) {
          return deny("x"
        }
`
	_, err := Load("h.yaml", []byte(src), noEnv)
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 {
		t.Fatalf("want one problem, got %v", err)
	}
	p := ps[0]
	if p.Path != "inspect.scripts[0].source" || !strings.Contains(p.Msg, `script "broken": syntax error at 3:`) {
		t.Fatalf("problem: %+v", p)
	}
	// hooksBase is 5 lines after its leading newline: the script's line 3
	// ("}") is line 12 of the file.
	lines := strings.Split(src, "\n")
	if p.Line < 1 || p.Line > len(lines) || strings.TrimSpace(lines[p.Line-1]) != "}" {
		t.Fatalf("problem at line %d, want the line of the script's error:\n%s", p.Line, src)
	}
	if !strings.HasPrefix(p.Error(), "h.yaml:12:") {
		t.Errorf("error = %s", p.Error())
	}
}

func TestGuardrailEnvMissing(t *testing.T) {
	src := hooksBase + `
inspect:
  guardrails:
    - {name: g, type: webhook, url: "http://x/y", key: "${NOPE}"}
`
	_, err := Load("h.yaml", []byte(src), noEnv)
	if err == nil || !strings.Contains(err.Error(), "inspect.guardrails[0].key: environment variable NOPE is not set") {
		t.Fatalf("got %v", err)
	}
}

// TestGuardrailsDocExample loads the configuration example of
// docs/guardrails.md, so that the documentation stays true.
func TestGuardrailsDocExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/guardrails.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 || !strings.Contains(example, "guardrails:") {
		t.Fatal("no yaml example with guardrails in docs/guardrails.md")
	}
	src := `
upstreams:
  crm: {command: x}
servers:
  support: {upstreams: [{upstream: crm}]}
  files: {upstreams: [{upstream: crm}]}
` + example
	cfg, err := Load("guardrails.md", []byte(src), func(k string) (string, bool) { return "t0ken", k == "CORP_GUARD_TOKEN" })
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Inspect.Guardrails) != 4 || len(cfg.Inspect.Scripts) != 1 {
		t.Fatalf("the example has %d guardrails and %d scripts", len(cfg.Inspect.Guardrails), len(cfg.Inspect.Scripts))
	}
}
