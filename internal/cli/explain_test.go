package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"gatehouse/internal/policy"
)

// fakeExplain stands for the gateway's explanations: the agent bot may
// read tickets, must not read invoices, and needs approval to post to
// chat after reading customer data. It remembers the last query.
type fakeExplain struct {
	mu   sync.Mutex
	last policy.ExplainQuery
}

func (f *fakeExplain) explain(_ context.Context, q policy.ExplainQuery) (policy.Explanation, error) {
	f.mu.Lock()
	f.last = q
	f.mu.Unlock()
	if q.Agent != "bot" {
		return policy.Explanation{}, fmt.Errorf("unknown agent %q", q.Agent)
	}
	ex := policy.Explanation{Bundles: []string{"support"}, Labels: []string{}, PolicyVersion: "abc123",
		Target: policy.RecordedTarget{Kind: "tool", Server: "support", Visible: q.Tool}}
	switch q.Tool {
	case "tickets_get_ticket":
		ex.Decision, ex.Rule, ex.Origin, ex.Reason, ex.Visible = "allow", "read-tickets", "bundle support (v2)", "allowed", true
		ex.Target.Upstream, ex.Target.Name = "tickets", "get_ticket"
		ex.Steps = []policy.Step{{Origin: "bundle support (v2)", Rule: "read-tickets", Kind: "allow", Result: "matched", Mode: "enforce"}}
	case "crm_get_invoice":
		ex.Decision, ex.Rule, ex.Origin, ex.Reason = "deny", "no-invoices", "organisation", "invoices are off limits"
		ex.Target.Upstream, ex.Target.Name = "crm", "get_invoice"
		ex.Steps = []policy.Step{
			{Origin: "organisation", Rule: "no-invoices", Kind: "deny", Result: "matched", Mode: "enforce"},
		}
	case "chat_post_message":
		ex.Decision, ex.Rule, ex.Origin, ex.Reason, ex.Visible = "approve", "no-exfiltration", "workflow", "needs a person", true
		ex.Target.Upstream, ex.Target.Name = "chat", "post_message"
		ex.Steps = []policy.Step{{Origin: "workflow", Rule: "no-exfiltration", Kind: "workflow", Result: "matched", Detail: "approve", Mode: "enforce"}}
	case "web_fetch":
		ex.Decision, ex.Rule, ex.Origin, ex.Reason, ex.Visible = "would_deny", "", "", "no rule allows this for the caller", true
		ex.Target.Upstream, ex.Target.Name = "web", "fetch"
		ex.Steps = []policy.Step{}
	default:
		return policy.Explanation{}, fmt.Errorf("unknown tool %q on server support", q.Tool)
	}
	return ex, nil
}

func TestExplainCommand(t *testing.T) {
	fe := &fakeExplain{}
	s := newPolicyServer(t, fe.explain)

	tests := []struct {
		name string
		args []string
		code int
		want []string // regular expressions
	}{
		{"allowed", []string{"--agent", "bot", "--tool", "tickets_get_ticket", "--args", `{"id":"T-1"}`}, 0, []string{
			`Decision:\s+allow \(the call goes through\)`, `Rule:\s+read-tickets \(bundle support \(v2\)\)`,
			`Visible:\s+yes`, `Bundles:\s+support`, `Target:\s+tool support/tickets_get_ticket \(upstream tickets, get_ticket\)`,
			`Policy version:\s+abc123`, `#\s+ORIGIN\s+RULE\s+KIND\s+RESULT\s+MODE\s+DETAIL`,
			`1\s+bundle support \(v2\)\s+read-tickets\s+allow\s+matched\s+enforce\s+-`,
		}},
		{"denied", []string{"--agent", "bot", "--tool", "crm_get_invoice"}, 3, []string{
			`Decision:\s+deny \(the call is refused\)`, `Reason:\s+invoices are off limits`, `Visible:\s+no`,
			`1\s+organisation\s+no-invoices\s+deny\s+matched`,
		}},
		{"held", []string{"--agent", "bot", "--user", "alice", "--server", "support", "--tool", "chat_post_message", "--session-labels", "customer_pii,customer_financial"}, 3, []string{
			`Decision:\s+approve \(the call is held until a person approves it\)`, `workflow\s+no-exfiltration\s+workflow\s+matched\s+enforce\s+approve`,
		}},
		{"monitor", []string{"--agent", "bot", "--tool", "web_fetch"}, 0, []string{
			`Decision:\s+would_deny \(monitor mode`, `Rule:\s+\(none\)`, `none: no rule applies`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, s, newExplainCmd, "", tt.args...)
			if code := exitCode(r.err); code != tt.code {
				t.Fatalf("exit code %d (%v), want %d; output:\n%s", code, r.err, tt.code, r.out)
			}
			for _, re := range tt.want {
				if !regexp.MustCompile(re).MatchString(r.out) {
					t.Errorf("output does not match %s:\n%s", re, r.out)
				}
			}
		})
	}
	// Every flag reaches the query.
	run(t, s, newExplainCmd, "", "--agent", "bot", "--user", "alice", "--server", "support", "--tool", "chat_post_message",
		"--args", `{"text":"hi"}`, "--session-labels", "customer_pii,customer_financial", "--time", "2026-11-25T10:00:00+01:00", "--source", "10.0.0.1")
	fe.mu.Lock()
	last := fe.last
	fe.mu.Unlock()
	if last.Agent != "bot" || last.User != "alice" || last.Server != "support" || last.Tool != "chat_post_message" || string(last.Args) != `{"text":"hi"}` ||
		strings.Join(last.SessionLabels, ",") != "customer_pii,customer_financial" || last.Time == nil || last.Time.Hour() != 10 || last.Source != "10.0.0.1" {
		t.Errorf("query sent: %+v", last)
	}

	// --json prints the explanation, and the exit status still tells.
	r := run(t, s, newExplainCmd, "", "--agent", "bot", "--tool", "crm_get_invoice", "--json")
	var ex policy.Explanation
	if err := json.Unmarshal([]byte(r.out), &ex); err != nil || ex.Decision != "deny" || exitCode(r.err) != 3 {
		t.Errorf("--json: %v, exit %d\n%s", err, exitCode(r.err), r.out)
	}

	errTests := []struct {
		name string
		args []string
		want string
	}{
		{"no tool", []string{"--agent", "bot"}, `required flag(s) "tool" not set`},
		{"no caller", []string{"--tool", "crm_get_invoice"}, "at least one of the flags in the group [agent user] is required"},
		{"args not an object", []string{"--agent", "bot", "--tool", "t", "--args", "[1]"}, "--args must be a JSON object"},
		{"args not JSON", []string{"--agent", "bot", "--tool", "t", "--args", "{id:1}"}, "--args must be a JSON object"},
		{"bad time", []string{"--agent", "bot", "--tool", "t", "--time", "noon"}, "--time must be an RFC 3339 time"},
		{"bad source", []string{"--agent", "bot", "--tool", "t", "--source", "example.com"}, "--source must be an IP address"},
		{"unknown agent", []string{"--agent", "ghost", "--tool", "crm_get_invoice"}, `unknown agent "ghost"`},
		{"unknown tool", []string{"--agent", "bot", "--tool", "nothing"}, `unknown tool "nothing"`},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, s, newExplainCmd, "", tt.args...)
			if r.err == nil || exitCode(r.err) != 1 || !strings.Contains(r.err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", r.err, tt.want)
			}
		})
	}
}
