package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"gatehouse/internal/config"
	"gatehouse/internal/policy"
)

const policyTestBase = `
upstreams:
  tickets: {command: tickets}
  chat: {command: chat}
servers:
  support:
    upstreams: [{upstream: tickets}, {upstream: chat}]
identity:
  teams: [{name: support, servers: [support]}, {name: sales, servers: [support]}]
`

// The current policy: the support team reads tickets and posts to chat.
const currentPolicy = policyTestBase + `
policy:
  bundles:
    support:
      members: {teams: [support]}
      allow:
        - name: read-tickets
          tools: ["tickets/get_*", "tickets/list_*"]
        - name: chat
          tools: ["chat/post_message"]
`

// The proposed policy: support may use every ticket tool but no longer
// post to chat, and a session that has read customer data needs approval
// to call ticket tools.
const proposedPolicy = policyTestBase + `
policy:
  tools:
    - {upstream: tickets, tools: ["*"], labels: [tickets]}
  workflows:
    - {name: hold-after-customer-data, after: [customer], calls: [tickets], action: approve}
  bundles:
    support:
      members: {teams: [support]}
      allow:
        - name: tickets
          tools: ["tickets/*"]
`

func loadPolicy(t *testing.T, yaml string) *policy.Policy {
	t.Helper()
	cfg, err := config.Load("p.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	p, err := policy.Compile(cfg)
	if err != nil || p == nil {
		t.Fatalf("compile: %v", err)
	}
	return p
}

// writeRecords decides calls under the current policy, as the gateway
// does with policy.record set, and writes the records to a file.
func writeRecords(t *testing.T, dir string, extra ...string) string {
	t.Helper()
	p := loadPolicy(t, currentPolicy)
	bot := &policy.Caller{Kind: "agent", ID: "agent:agt_bot", AgentID: "agt_bot", AgentName: "bot", Team: "support", User: "alice"}
	seller := &policy.Caller{Kind: "agent", ID: "agent:agt_seller", AgentID: "agt_seller", AgentName: "seller", Team: "sales"}
	tool := func(upstream, name string) *policy.Target {
		return &policy.Target{Kind: policy.KindTool, Server: "support", Upstream: upstream, Name: name, Visible: upstream + "_" + name}
	}
	long := `{"text":"` + strings.Repeat("x", 300) + `"}`
	calls := []struct {
		caller *policy.Caller
		target *policy.Target
		args   string
		labels []string // the session's
	}{
		{bot, tool("tickets", "get_ticket"), `{"id":"T-1"}`, nil},                      // allow → allow
		{bot, tool("chat", "post_message"), long, nil},                                 // allow → deny
		{bot, tool("tickets", "create_ticket"), `{"title":"x"}`, nil},                  // deny → allow
		{seller, tool("tickets", "list_tickets"), `{}`, nil},                           // deny → deny
		{bot, tool("tickets", "create_ticket"), `{"title":"y"}`, []string{"customer"}}, // deny → approve
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, c := range calls {
		in := &policy.Input{Caller: c.caller, Target: c.target, Args: json.RawMessage(c.args),
			Request: policy.Request{Time: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), Method: "tools/call"},
			Session: policy.Session{ID: "s1", Labels: c.labels}}
		d := p.Decide(in, false)
		if err := enc.Encode(policy.NewRecord(in, d, p.Version)); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range extra {
		buf.WriteString(e + "\n")
	}
	path := filepath.Join(dir, "calls.jsonl")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPolicyTestCommand(t *testing.T) {
	dir := t.TempDir()
	calls := writeRecords(t, dir, "not json", "")
	proposed := writeFile(t, dir, "new.yaml", proposedPolicy)
	same := writeFile(t, dir, "same.yaml", currentPolicy)
	noPolicy := writeFile(t, dir, "none.yaml", policyTestBase)
	bad := writeFile(t, dir, "bad.yaml", policyTestBase+`
policy:
  bundles:
    b:
      allow:
        - name: broken
          when: 'args.x +'
`)
	garbage := writeFile(t, dir, "garbage.jsonl", "hello\n{\"a\":1}\n")
	newCmd := func() *cobra.Command { return newPolicyCmd() }

	tests := []struct {
		name    string
		args    []string
		code    int
		want    []string // regular expressions over standard output
		wantErr string   // in the error or standard error
	}{
		{"changes", []string{"test", "--config", proposed, "--calls", calls}, 4, []string{
			`Replayed 5 recorded decisions against new\.yaml \(policy version [0-9a-f]+\)`,
			`unchanged\s+2\n`, `newly denied\s+1\n`, `newly allowed\s+1\n`, `other changes\s+1\n`, `malformed lines\s+1\n`,
			`Newly denied \(or held for approval\) \(1\):\n  line 2: agent bot \(user alice\) → support/chat_post_message\n`,
			`args:   \{"text":"x{191}…\n`,
			`change: allow → deny\n`,
			`was:    rule "chat" \(bundle support\): allowed\n`,
			`now:    no rule allows this for the caller\n`,
			`Newly allowed \(1\):\n  line 3: agent bot \(user alice\) → support/tickets_create_ticket\n`,
			`now:    rule "tickets" \(bundle support\): allowed`,
			`Other changes \(1\):\n  line 5: agent bot \(user alice\) → support/tickets_create_ticket\n`,
			`change: deny → approve\n`,
			`now:    rule "hold-after-customer-data" \(workflow\): this session has read customer data; calling a tickets tool needs a person's approval`,
		}, "1 malformed lines skipped (first: line 6: not a decision record)"},
		{"unchanged", []string{"test", "--config", same, "--calls", calls}, 0, []string{`unchanged\s+5\n`, `No decision changes\.`}, ""},
		{"no policy", []string{"test", "--config", noPolicy, "--calls", calls}, 1, nil, "none.yaml has no policy section"},
		{"invalid config", []string{"test", "--config", bad, "--calls", calls}, 1, nil, "policy.bundles.b.allow[0].when: condition does not compile"},
		{"missing config", []string{"test", "--config", filepath.Join(dir, "nothing.yaml"), "--calls", calls}, 1, nil, "reading config"},
		{"missing calls", []string{"test", "--config", proposed, "--calls", filepath.Join(dir, "nothing.jsonl")}, 1, nil, "opening the recorded calls"},
		{"not records", []string{"test", "--config", proposed, "--calls", garbage}, 1, nil, "holds no decision records (2 malformed lines; line 1: not a decision record)"},
		{"flags", []string{"test", "--config", proposed}, 1, nil, `required flag(s) "calls" not set`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, nil, newCmd, "", tt.args...)
			if code := exitCode(r.err); code != tt.code {
				t.Fatalf("exit code %d (%v), want %d; stdout:\n%s\nstderr:\n%s", code, r.err, tt.code, r.out, r.errOut)
			}
			for _, re := range tt.want {
				if !regexp.MustCompile(re).MatchString(r.out) {
					t.Errorf("output does not match %s:\n%s", re, r.out)
				}
			}
			if tt.wantErr != "" {
				msg := r.errOut
				if r.err != nil {
					msg += r.err.Error()
				}
				if !strings.Contains(msg, tt.wantErr) {
					t.Errorf("error/stderr %q lacks %q", msg, tt.wantErr)
				}
			}
		})
	}

	// Standard input and JSON.
	raw, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, nil, newCmd, string(raw), "test", "--config", proposed, "--calls", "-", "--json")
	if exitCode(r.err) != 4 {
		t.Fatalf("--json: exit %d (%v)", exitCode(r.err), r.err)
	}
	var rep struct {
		Records     int `json:"records"`
		Unchanged   int `json:"unchanged"`
		Malformed   int `json:"malformed"`
		NewlyDenied []struct {
			Line   int             `json:"line"`
			Args   json.RawMessage `json:"args"`
			Before struct{ Outcome, Rule string }
			After  struct{ Outcome, Reason string }
			Target struct{ Visible string }
		} `json:"newly_denied"`
		NewlyAllowed []json.RawMessage `json:"newly_allowed"`
		OtherChanges []json.RawMessage `json:"other_changes"`
	}
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, r.out)
	}
	if rep.Records != 5 || rep.Unchanged != 2 || rep.Malformed != 1 || len(rep.NewlyDenied) != 1 || len(rep.NewlyAllowed) != 1 ||
		len(rep.OtherChanges) != 1 {
		t.Errorf("--json report %+v", rep)
	}
	if d := rep.NewlyDenied[0]; d.Line != 2 || d.Before.Outcome != "allow" || d.Before.Rule != "chat" || d.After.Outcome != "deny" ||
		d.Target.Visible != "chat_post_message" || len(d.Args) < 300 {
		t.Errorf("--json change %+v", d)
	}
}
