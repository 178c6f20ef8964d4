package cli

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/admin"
	"gatehouse/internal/admin/admintest"
	"gatehouse/internal/policy"
	"gatehouse/internal/store"
)

// holdCall opens an approval request as the gateway does when a workflow
// rule holds a call; the short wait passes and the request stays pending.
func holdCall(t *testing.T, s *admintest.Server, tool, args string) store.Approval {
	t.Helper()
	h := policy.HeldCall{Caller: &policy.Caller{Kind: "agent", ID: "agent:agt_bot", AgentID: "agt_bot", AgentName: "bot"},
		Server: "support", Tool: tool, Args: json.RawMessage(args), PolicyVersion: "v1",
		Decision: policy.Decision{Effect: policy.Approve, Rule: "no-exfiltration", Origin: "workflow", Reason: "needs a person"}}
	a, err := s.Policy.Await(context.Background(), h, 10*time.Millisecond, time.Hour, nil)
	var pe *policy.PendingError
	if !errors.As(err, &pe) {
		t.Fatalf("await: %v", err)
	}
	return a
}

func TestApprovalsCommands(t *testing.T) {
	s := newPolicyServer(t, nil)
	t.Setenv("USER", "erin")
	if out := ok(t, s, newApprovalsCmd, "", "list"); !strings.Contains(out, "No pending approval requests.") {
		t.Errorf("empty list: %s", out)
	}
	first := holdCall(t, s, "chat_post_message", `{"text":"hello \u001b[2J customer"}`)
	second := holdCall(t, s, "tickets_close", `{"id":"T-1"}`)
	third := holdCall(t, s, "chat_post_message", `{"text":"three"}`)

	out := ok(t, s, newApprovalsCmd, "", "list")
	for _, re := range []string{
		`ID\s+STATUS\s+CALLER\s+SERVER\s+TOOL\s+RULE\s+AGE\s+EXPIRES`,
		first.ID + `\s+pending\s+bot\s+support\s+chat_post_message\s+no-exfiltration\s+<1m\s+in (59m|1h)`,
		second.ID + `\s+pending\s+bot\s+support\s+tickets_close`,
		`gatehouse approvals approve ID`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("list does not match %s:\n%s", re, out)
		}
	}

	out = ok(t, s, newApprovalsCmd, "", "show", first.ID)
	for _, want := range []string{"ID:", first.ID, "Status:", "pending (decide before", "Caller:", "bot (agent:agt_bot)",
		"Tool:", "chat_post_message", "Rule:", "no-exfiltration", "Arguments:", `"text": "hello \u001b[2J customer"`} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Error("show prints a terminal escape from the arguments")
	}
	// Valid JSON may hold C1 controls and bidirectional overrides unescaped.
	sneaky := holdCall(t, s, "chat_post_message", "{\"text\":\"pay \u202egro.live\u009b2J\"}")
	out = ok(t, s, newApprovalsCmd, "", "show", sneaky.ID)
	if strings.ContainsAny(out, "\u202e\u009b") || !strings.Contains(out, `"text": "pay ?gro.live?2J"`) {
		t.Errorf("show prints raw controls from the arguments:\n%q", out)
	}

	out = ok(t, s, newApprovalsCmd, "", "approve", first.ID, "--note", "checked")
	if !strings.Contains(out, "Approved "+first.ID+" (bot → support/chat_post_message)") || !strings.Contains(out, "succeeds once when retried") {
		t.Errorf("approve output:\n%s", out)
	}
	a, _ := s.Store.GetApproval(context.Background(), first.ID)
	if a.Status != store.ApprovalApproved || a.DecidedBy != "erin" || a.Note != "checked" {
		t.Errorf("after approve: %+v", a)
	}
	out = ok(t, s, newApprovalsCmd, "", "deny", second.ID, "--note", "not today", "--by", "frank")
	if !strings.Contains(out, "Denied "+second.ID) || !strings.Contains(out, "The caller is told: not today") {
		t.Errorf("deny output:\n%s", out)
	}
	if a, _ := s.Store.GetApproval(context.Background(), second.ID); a.Status != store.ApprovalDenied || a.DecidedBy != "frank" {
		t.Errorf("after deny: %+v", a)
	}

	out = ok(t, s, newApprovalsCmd, "", "list")
	if !strings.Contains(out, third.ID) || strings.Contains(out, first.ID) || strings.Contains(out, second.ID) {
		t.Errorf("pending after decisions:\n%s", out)
	}
	out = ok(t, s, newApprovalsCmd, "", "list", "--status", "all")
	if !regexp.MustCompile(first.ID+`\s+approved\s`).MatchString(out) || !regexp.MustCompile(second.ID+`\s+denied\s+.*\s-\n`).MatchString(out) {
		t.Errorf("list --status all:\n%s", out)
	}
	if out = ok(t, s, newApprovalsCmd, "", "show", second.ID); !regexp.MustCompile(`Decided:\s+denied by frank`).MatchString(out) || !strings.Contains(out, "Note:") {
		t.Errorf("show a denied one:\n%s", out)
	}
	var list []admin.Approval
	out = ok(t, s, newApprovalsCmd, "", "list", "--status", "denied", "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].ID != second.ID {
		t.Errorf("list --json: %v\n%s", err, out)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"approve twice", []string{"approve", first.ID}, "was already approved by erin"},
		{"deny an approved one", []string{"deny", first.ID}, "was already approved"},
		{"unknown", []string{"approve", "apr_nope"}, `approval "apr_nope" not found`},
		{"show unknown", []string{"show", "apr_nope"}, `approval "apr_nope" not found`},
		{"bad status", []string{"list", "--status", "open"}, "--status must be pending, approved, denied, used or all"},
		{"bad limit", []string{"list", "--limit", "5000"}, "limit must be a number from 1 to 1000"},
		{"no id", []string{"approve"}, "accepts 1 arg(s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, s, newApprovalsCmd, "", tt.args...)
			if r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", r.err, tt.want)
			}
		})
	}
}
