package policy

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/config"
)

// baseConfig declares the upstreams, servers and teams the test policies
// refer to; each test appends its policy section.
const baseConfig = `
upstreams:
  crm: {command: crm}
  tickets: {command: tickets}
  chat: {command: chat}
  db: {command: db}
  web: {command: web}
servers:
  support:
    upstreams: [{upstream: crm}, {upstream: tickets}, {upstream: chat}, {upstream: db}, {upstream: web}]
identity:
  teams: [{name: support, servers: [support]}, {name: sales, servers: [support]}]
`

func compile(t testing.TB, policy string) *Policy {
	t.Helper()
	return compileText(t, baseConfig+policy)
}

func agent(name, team string, attrs map[string]any) *Caller {
	return &Caller{Kind: "agent", ID: "agent:agt_" + name, AgentID: "agt_" + name, AgentName: name, Team: team, Attributes: attrs}
}

func tool(upstream, name string, readOnly *bool) *Target {
	return &Target{Kind: KindTool, Server: "support", Upstream: upstream, Name: name, Visible: upstream + "_" + name,
		Annotations: Annotations{ReadOnly: readOnly}}
}

var (
	yes = func() *bool { b := true; return &b }()
	no  = func() *bool { b := false; return &b }()
)

// at is a Wednesday, 2026-11-25, at hh:mm in Europe/Paris.
func at(hh, mm int) time.Time {
	loc, _ := time.LoadLocation("Europe/Paris")
	return time.Date(2026, 11, 25, hh, mm, 0, 0, loc)
}

func TestDecideExamples(t *testing.T) {
	p := compile(t, `
policy:
  tools:
    - {upstream: crm, tools: [get_invoice], labels: [customer_financial]}
    - {upstream: chat, tools: [post_message], labels: [communications, external]}
    - {upstream: tickets, tools: [list_tickets, get_ticket], read_only: true}
  organisation:
    deny:
      - name: no-external-urls
        tools: ["*"]
        when: 'urls(args).exists(u, !(host(u) in ["example.com", "docs.example.com"]))'
        reason: arguments may only link to example.com
  bundles:
    support:
      version: 2
      members: {teams: [support]}
      allow:
        - name: own-queues
          tools: ["tickets/list_tickets", "tickets/create_ticket"]
          when: 'args.queue in agent.attributes.queues'
        - name: read-tickets
          tools: ["tickets/*"]
          class: read_only
        - name: sql-read-only
          tools: ["db/query"]
          when: 'sql_read_only(args.sql)'
        - name: business-hours-chat
          tools: ["chat/post_message"]
          when: >
            request.time.getDayOfWeek("Europe/Paris") >= 1 && request.time.getDayOfWeek("Europe/Paris") <= 5 &&
            request.time.getHours("Europe/Paris") >= 9 && request.time.getHours("Europe/Paris") < 18
        - name: oncall-web
          tools: ["web/*"]
          when: '"oncall" in user.groups'
`)
	sup := agent("bot", "support", map[string]any{"queues": []any{"billing", "general"}})
	sales := agent("seller", "sales", nil)
	driven := agent("bot", "support", map[string]any{"queues": []any{"billing"}})
	driven.User, driven.Groups = "alice", []string{"oncall"}

	cases := []struct {
		name   string
		caller *Caller
		target *Target
		args   string
		when   time.Time
		want   Effect
		rule   string
	}{
		{"own queue", sup, tool("tickets", "list_tickets", nil), `{"queue":"billing"}`, at(10, 0), Allow, "own-queues"},
		{"other queue", sup, tool("tickets", "create_ticket", nil), `{"queue":"legal"}`, at(10, 0), Deny, ""},
		{"missing queue fails closed", sup, tool("tickets", "create_ticket", nil), `{}`, at(10, 0), Deny, ""},
		{"read-only class via facts", sup, tool("tickets", "get_ticket", nil), `{"id":"T-1"}`, at(10, 0), Allow, "read-tickets"},
		{"not a member", sales, tool("tickets", "get_ticket", nil), `{}`, at(10, 0), Deny, ""},
		{"select", sup, tool("db", "query", nil), `{"sql":"SELECT * FROM customers WHERE id = 3"}`, at(10, 0), Allow, "sql-read-only"},
		{"delete", sup, tool("db", "query", nil), `{"sql":"DELETE FROM customers"}`, at(10, 0), Deny, ""},
		{"two statements", sup, tool("db", "query", nil), `{"sql":"SELECT 1; DROP TABLE x"}`, at(10, 0), Deny, ""},
		{"business hours", sup, tool("chat", "post_message", nil), `{"text":"hi"}`, at(10, 0), Allow, "business-hours-chat"},
		{"after hours", sup, tool("chat", "post_message", nil), `{"text":"hi"}`, at(19, 0), Deny, ""},
		{"weekend", sup, tool("chat", "post_message", nil), `{"text":"hi"}`, at(10, 0).AddDate(0, 0, 3), Deny, ""},
		{"url allowed", sup, tool("chat", "post_message", nil), `{"text":"see https://docs.example.com/a"}`, at(10, 0), Allow, "business-hours-chat"},
		{"url outside allow list", sup, tool("chat", "post_message", nil), `{"text":"see https://evil.test/x"}`, at(10, 0), Deny, "no-external-urls"},
		{"nested url", sup, tool("tickets", "get_ticket", nil), `{"a":[{"b":"http://EVIL.test"}]}`, at(10, 0), Deny, "no-external-urls"},
		{"group member driving", driven, tool("web", "fetch", nil), `{}`, at(10, 0), Allow, "oncall-web"},
		{"agent alone", sup, tool("web", "fetch", nil), `{}`, at(10, 0), Deny, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := p.Decide(&Input{Caller: c.caller, Target: c.target, Args: json.RawMessage(c.args),
				Request: Request{Time: c.when, Method: "tools/call"}}, true)
			if d.Effect != c.want || d.Rule != c.rule {
				t.Fatalf("got %s by %q (%s), want %s by %q; trace %+v", d.Effect, d.Rule, d.Reason, c.want, c.rule, d.Trace)
			}
		})
	}
}

func TestCompileErrorsAreLocated(t *testing.T) {
	cfg, err := config.Load("p.yaml", []byte(baseConfig+`
policy:
  bundles:
    b:
      allow:
        - name: bad
          when: 'args.x +'
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile(cfg)
	if err == nil || !strings.Contains(err.Error(), "p.yaml:19:") || !strings.Contains(err.Error(), "policy.bundles.b.allow[0].when") {
		t.Fatalf("got %v", err)
	}
}
