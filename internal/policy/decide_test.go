package policy

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/config"
)

// semBase declares what the semantic tests' policies refer to: two
// virtual servers (support and internal) and two teams.
const semBase = `
upstreams:
  crm: {command: crm}
  tickets: {command: tickets}
  chat: {command: chat}
  db: {command: db}
  web: {command: web}
servers:
  support:
    upstreams: [{upstream: crm}, {upstream: tickets}, {upstream: chat}, {upstream: db}, {upstream: web}]
  internal:
    upstreams: [{upstream: db}]
identity:
  teams: [{name: support, servers: [support, internal]}, {name: sales, servers: [support]}]
`

// loadConfig loads a whole configuration text.
func loadConfig(tb testing.TB, text string) *config.Config {
	tb.Helper()
	cfg, err := config.Load("sem.yaml", []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		tb.Fatalf("config: %v", err)
	}
	return cfg
}

// mustPolicy compiles semBase plus a policy section.
func mustPolicy(tb testing.TB, policy string) *Policy {
	tb.Helper()
	return compileText(tb, semBase+policy)
}

// Callers. Each call returns a new Caller: a Caller caches its scope.
func supportBot() *Caller {
	return agent("bot", "support", map[string]any{"queues": []any{"billing", "general"}})
}
func salesBot() *Caller  { return agent("seller", "sales", nil) }
func anonymous() *Caller { return &Caller{} }

func person(name string, groups ...string) *Caller {
	return &Caller{Kind: "user", ID: "user:" + name, User: name, Groups: groups}
}

func drivenBy(c *Caller, user string, groups ...string) *Caller {
	c.User, c.Groups = user, groups
	return c
}

func withGrants(c *Caller, bundles ...string) *Caller {
	c.Grants = bundles
	return c
}

// Targets on the support server.
func tt(upstream, name string) *Target {
	return &Target{Kind: KindTool, Server: "support", Upstream: upstream, Name: name, Visible: upstream + "_" + name}
}

func ann(t *Target, readOnly, destructive *bool) *Target {
	t.Annotations.ReadOnly, t.Annotations.Destructive = readOnly, destructive
	return t
}

func onServer(t *Target, server string) *Target { t.Server = server; return t }

func promptT(upstream, name string) *Target {
	return &Target{Kind: KindPrompt, Server: "support", Upstream: upstream, Name: name, Visible: upstream + "_" + name}
}

func resourceT(upstream, uri string) *Target {
	return &Target{Kind: KindResource, Server: "support", Upstream: upstream, Name: uri, Visible: uri}
}

// dcase is one decision to check.
type dcase struct {
	name   string
	caller *Caller
	target *Target
	args   string
	labels []string // the session's labels
	list   bool
	when   time.Time // zero: at(10, 0), a Wednesday morning in Paris

	effect Effect
	rule   string // exact ("" for the default denial)
	origin string // exact
	reason string // substring; "" is not checked
	would  bool
	// bundles, when not nil, are the caller's bundles (use []string{} for none).
	bundles   []string
	labelsOut []string // the target's labels, when not nil
}

func (c dcase) input() *Input {
	when := c.when
	if when.IsZero() {
		when = at(10, 0)
	}
	in := &Input{Caller: c.caller, Target: c.target, Request: Request{Time: when, Source: "10.1.2.3", Method: "tools/call"},
		Session: Session{ID: "s1", Labels: c.labels, Calls: len(c.labels)}, List: c.list}
	if c.args != "" {
		in.Args = json.RawMessage(c.args)
	}
	return in
}

func runCases(t *testing.T, p *Policy, cases []dcase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := p.Decide(c.input(), true)
			checkDecision(t, d, c)
			// The same decision without a trace, on a fresh input.
			d2 := p.Decide(c.input(), false)
			if d2.Effect != d.Effect || d2.Rule != d.Rule || d2.Origin != d.Origin || d2.Reason != d.Reason || d2.WouldDeny != d.WouldDeny {
				t.Errorf("without explain: %+v, with: %+v", d2, d)
			}
			if d2.Trace != nil {
				t.Errorf("trace without explain: %+v", d2.Trace)
			}
		})
	}
}

func checkDecision(t *testing.T, d Decision, c dcase) {
	t.Helper()
	if d.Effect != c.effect || d.Rule != c.rule || d.Origin != c.origin || d.WouldDeny != c.would {
		t.Fatalf("got %s (would_deny %v) by %q (%s): %s\nwant %s (would_deny %v) by %q (%s)\ntrace: %s",
			d.Effect, d.WouldDeny, d.Rule, d.Origin, d.Reason, c.effect, c.would, c.rule, c.origin, traceString(d.Trace))
	}
	if !strings.Contains(d.Reason, c.reason) {
		t.Errorf("reason %q does not contain %q", d.Reason, c.reason)
	}
	if c.bundles != nil && !slices.Equal(nonNil(d.Bundles), c.bundles) {
		t.Errorf("bundles %q, want %q", d.Bundles, c.bundles)
	}
	if c.labelsOut != nil && !slices.Equal(nonNil(d.Labels), c.labelsOut) {
		t.Errorf("labels %q, want %q", d.Labels, c.labelsOut)
	}
}

func traceString(tr []Step) string {
	var b strings.Builder
	for _, s := range tr {
		fmt.Fprintf(&b, "\n  %s %s %q %s %s %s", s.Origin, s.Kind, s.Rule, s.Result, s.Mode, s.Detail)
	}
	return b.String()
}

const noRule = "no rule allows this for the caller"

func TestDecideDenyOverridesAllow(t *testing.T) {
	p := mustPolicy(t, `
policy:
  organisation:
    deny:
      - {name: org-no-delete, tools: ["crm/delete_*"], reason: nobody deletes customers}
    allow:
      - {name: org-export, tools: ["crm/export"]}
  teams:
    support:
      deny:
        - {name: team-no-export, tools: ["crm/export"], reason: support does not export}
  bundles:
    support:
      version: 3
      members: {teams: [support]}
      allow:
        - {name: crm-all, tools: ["crm/*"]}
      deny:
        - {name: no-bulk, tools: ["crm/bulk_*"]}
    sales:
      members: {teams: [sales]}
      allow:
        - {name: sales-crm, tools: ["crm/get_*"]}
      deny:
        - name: no-csv-export
          tools: ["crm/export"]
          when: 'has(args.format) && args.format == "csv"'
          reason: no CSV exports
`)
	runCases(t, p, []dcase{
		{name: "org deny beats bundle allow", caller: supportBot(), target: tt("crm", "delete_customer"),
			effect: Deny, rule: "org-no-delete", origin: "organisation", reason: "nobody deletes customers", bundles: []string{"support"}},
		{name: "bundle allow", caller: supportBot(), target: tt("crm", "get_customer"),
			effect: Allow, rule: "crm-all", origin: "bundle support (v3)", reason: "allowed", bundles: []string{"support"}},
		{name: "bundle deny beats its own allow, default reason", caller: supportBot(), target: tt("crm", "bulk_update"),
			effect: Deny, rule: "no-bulk", origin: "bundle support (v3)", reason: "the rule denies this"},
		{name: "team deny beats org allow", caller: supportBot(), target: tt("crm", "export"),
			effect: Deny, rule: "team-no-export", origin: "team support", reason: "support does not export"},
		{name: "org allow", caller: salesBot(), target: tt("crm", "export"), args: `{"format":"pdf"}`,
			effect: Allow, rule: "org-export", origin: "organisation", reason: "allowed", bundles: []string{"sales"}},
		{name: "bundle deny beats org allow", caller: salesBot(), target: tt("crm", "export"), args: `{"format":"csv"}`,
			effect: Deny, rule: "no-csv-export", origin: "bundle sales", reason: "no CSV exports"},
		{name: "org deny applies to every caller", caller: salesBot(), target: tt("crm", "delete_x"),
			effect: Deny, rule: "org-no-delete", origin: "organisation"},
		{name: "nothing granted", caller: salesBot(), target: tt("crm", "bulk_update"),
			effect: Deny, reason: noRule},
		{name: "bundle without version", caller: salesBot(), target: tt("crm", "get_x"),
			effect: Allow, rule: "sales-crm", origin: "bundle sales"},
		{name: "anonymous has nothing", caller: anonymous(), target: tt("crm", "get_x"),
			effect: Deny, reason: noRule, bundles: []string{}},
		{name: "other upstream", caller: supportBot(), target: tt("tickets", "get_x"), effect: Deny, reason: noRule},
	})
}

func TestDecisionMessage(t *testing.T) {
	cases := []struct {
		d    Decision
		want string
	}{
		{Decision{Effect: Deny, Reason: noRule}, "denied by policy: " + noRule},
		{Decision{Effect: Deny, Rule: "r", Origin: "bundle b (v2)", Reason: "why"}, `denied by policy rule "r" (bundle b (v2)): why`},
		{Decision{Effect: Deny, Rule: "w", Origin: "workflow", Reason: "why"}, `denied by workflow rule "w": why`},
	}
	for _, c := range cases {
		if got := c.d.Message(); got != c.want {
			t.Errorf("Message() = %q, want %q", got, c.want)
		}
	}
}

func TestDecideMembership(t *testing.T) {
	p := mustPolicy(t, `
policy:
  bundles:
    by-agent: {members: {agents: [bot]}, allow: [{name: agent-tool, tools: ["web/agent_tool"]}]}
    by-team: {members: {teams: [sales]}, allow: [{name: team-tool, tools: ["web/team_tool"]}]}
    by-user: {members: {users: [bob]}, allow: [{name: user-tool, tools: ["web/user_tool"]}]}
    by-group: {members: {groups: [oncall]}, allow: [{name: group-tool, tools: ["web/group_tool"]}]}
    all: {members: {everyone: true}, allow: [{name: public, tools: ["web/public"]}]}
    escalation: {version: 2, members: {}, allow: [{name: escalate, tools: ["web/escalate"]}]}
`)
	type row struct {
		name    string
		caller  func() *Caller
		allowed []string // web tools allowed; the others are denied
		bundles []string
	}
	tools := []string{"agent_tool", "team_tool", "user_tool", "group_tool", "public", "escalate"}
	rows := []row{
		{"agent by name", supportBot, []string{"agent_tool", "public"}, []string{"all", "by-agent"}},
		{"agent by team", salesBot, []string{"team_tool", "public"}, []string{"all", "by-team"}},
		{"person by user name", func() *Caller { return person("bob") }, []string{"user_tool", "public"}, []string{"all", "by-user"}},
		{"agent driven by a member user is not a user member", func() *Caller { return drivenBy(salesBot(), "bob") },
			[]string{"team_tool", "public"}, []string{"all", "by-team"}},
		{"agent driven by a group member", func() *Caller { return drivenBy(salesBot(), "alice", "oncall") },
			[]string{"team_tool", "group_tool", "public"}, []string{"all", "by-group", "by-team"}},
		{"person in a group", func() *Caller { return person("carol", "staff", "oncall") },
			[]string{"group_tool", "public"}, []string{"all", "by-group"}},
		{"person named like a member agent", func() *Caller { return person("bot") }, []string{"public"}, []string{"all"}},
		{"agent named like a member user", func() *Caller { return agent("bob", "", nil) }, []string{"public"}, []string{"all"}},
		{"anonymous is in everyone", anonymous, []string{"public"}, []string{"all"}},
		{"time-bounded grant", func() *Caller { return withGrants(agent("temp", "", nil), "escalation") },
			[]string{"public", "escalate"}, []string{"all", "escalation"}},
		{"grant of an unknown bundle", func() *Caller { return withGrants(agent("temp2", "", nil), "nope") },
			[]string{"public"}, []string{"all"}},
		{"grant and team", func() *Caller { return withGrants(salesBot(), "escalation") },
			[]string{"team_tool", "public", "escalate"}, []string{"all", "by-team", "escalation"}},
	}
	var cases []dcase
	for _, r := range rows {
		for _, tool := range tools {
			c := dcase{name: r.name + "/" + tool, caller: r.caller(), target: tt("web", tool), bundles: r.bundles}
			if slices.Contains(r.allowed, tool) {
				c.effect, c.rule, c.reason = Allow, map[string]string{"agent_tool": "agent-tool", "team_tool": "team-tool",
					"user_tool": "user-tool", "group_tool": "group-tool", "public": "public", "escalate": "escalate"}[tool], "allowed"
				c.origin = "bundle " + map[string]string{"agent_tool": "by-agent", "team_tool": "by-team", "user_tool": "by-user",
					"group_tool": "by-group", "public": "all", "escalate": "escalation (v2)"}[tool]
			} else {
				c.effect, c.reason = Deny, noRule
			}
			cases = append(cases, c)
		}
	}
	runCases(t, p, cases)
	if got := p.Bundles(); !slices.Equal(got, []string{"all", "by-agent", "by-group", "by-team", "by-user", "escalation"}) {
		t.Errorf("Bundles() = %q", got)
	}
	if !p.HasBundle("escalation") || p.HasBundle("nope") {
		t.Error("HasBundle")
	}
}

// A Caller caches its scope per policy: deciding under another policy and
// back must not mix them up.
func TestScopeCachePerPolicy(t *testing.T) {
	p1 := mustPolicy(t, `
policy:
  bundles:
    b: {members: {teams: [support]}, allow: [{name: p1, tools: ["crm/*"]}]}
`)
	p2 := mustPolicy(t, `
policy:
  bundles:
    b: {members: {teams: [sales]}, allow: [{name: p2, tools: ["crm/*"]}]}
`)
	c := supportBot()
	for i, step := range []struct {
		p    *Policy
		want Effect
	}{{p1, Allow}, {p2, Deny}, {p1, Allow}, {p2, Deny}} {
		if d := step.p.Decide(&Input{Caller: c, Target: tt("crm", "get")}, false); d.Effect != step.want {
			t.Fatalf("step %d: got %s, want %s", i, d.Effect, step.want)
		}
	}
	// Two Callers with the same identity share the scope.
	if d := p1.Decide(&Input{Caller: supportBot(), Target: tt("crm", "get")}, false); d.Effect != Allow {
		t.Fatalf("second caller: %+v", d)
	}
}

func TestDecideClasses(t *testing.T) {
	p := mustPolicy(t, `
policy:
  tools:
    - {upstream: tickets, tools: [list_tickets], read_only: true}
    - {upstream: tickets, tools: ["purge_*"], read_only: false}
    - {upstream: db, tools: [archive], destructive: false}
    - {upstream: db, tools: [vacuum], destructive: true}
    - {upstream: db, tools: [wipe], read_only: true, destructive: true}
  bundles:
    ro: {members: {agents: [ro]}, allow: [{name: ro, class: read_only}]}
    wr: {members: {agents: [wr]}, allow: [{name: wr, class: write}]}
    de: {members: {agents: [de]}, allow: [{name: de, class: destructive}]}
    cel:
      members: {agents: [cel]}
      allow: [{name: cel, when: 'tool.visible_name == string(tool.read_only) + "/" + string(tool.destructive)'}]
`)
	rows := []struct {
		name              string
		target            *Target
		readOnly, destroy bool
	}{
		{"no annotations: MCP defaults", tt("crm", "update"), false, true},
		{"readOnlyHint", ann(tt("crm", "get"), yes, nil), true, false},
		{"readOnlyHint false", ann(tt("crm", "set"), no, nil), false, true},
		{"not destructive", ann(tt("crm", "add"), no, no), false, false},
		{"destructiveHint alone false", ann(tt("crm", "append"), nil, no), false, false},
		{"destructiveHint ignored when read-only", ann(tt("crm", "peek"), yes, yes), true, false},
		{"fact read_only over no annotations", tt("tickets", "list_tickets"), true, false},
		{"fact read_only false over readOnlyHint", ann(tt("tickets", "purge_all"), yes, nil), false, true},
		{"fact read_only false keeps destructiveHint", ann(tt("tickets", "purge_some"), yes, no), false, false},
		{"fact destructive false", tt("db", "archive"), false, false},
		{"fact destructive true over annotations", ann(tt("db", "vacuum"), no, no), false, true},
		{"both facts", ann(tt("db", "wipe"), no, no), true, true},
		{"facts are per upstream", tt("crm", "list_tickets"), false, true},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			f := p.factsFor(r.target)
			if f.isReadOnly() != r.readOnly || f.isDestructive() != r.destroy {
				t.Fatalf("facts: read_only %v destructive %v, want %v %v", f.isReadOnly(), f.isDestructive(), r.readOnly, r.destroy)
			}
			for _, k := range []struct {
				agent string
				want  bool
			}{{"ro", r.readOnly}, {"wr", !r.readOnly}, {"de", r.destroy}} {
				d := p.Decide(&Input{Caller: agent(k.agent, "", nil), Target: r.target}, false)
				if (d.Effect == Allow) != k.want {
					t.Errorf("class %s: got %s (%s), want allowed=%v", k.agent, d.Effect, d.Reason, k.want)
				}
			}
			// The condition sees the same class through tool.read_only and tool.destructive.
			tg := *r.target
			tg.Visible = fmt.Sprintf("%v/%v", r.readOnly, r.destroy)
			if d := p.Decide(&Input{Caller: agent("cel", "", nil), Target: &tg}, false); d.Effect != Allow {
				t.Errorf("tool.read_only/tool.destructive disagree with the class: %s", d.Reason)
			}
		})
	}
}

func TestDecideLabels(t *testing.T) {
	p := mustPolicy(t, `
policy:
  tools:
    - {upstream: crm, tools: [get_invoice], labels: [customer_financial]}
    - {upstream: crm, tools: ["get_*"], labels: [customer_data]}
    - {upstream: chat, tools: ["*"], labels: [communications]}
  bundles:
    fin: {members: {agents: [fin]}, allow: [{name: fin, labels: [customer_financial]}]}
    data: {members: {agents: [data]}, allow: [{name: data, labels: [customer_data, communications]}]}
    cel: {members: {agents: [cel]}, allow: [{name: cel, when: '"customer_data" in tool.labels'}]}
`)
	fin, data, cel := func() *Caller { return agent("fin", "", nil) }, func() *Caller { return agent("data", "", nil) },
		func() *Caller { return agent("cel", "", nil) }
	runCases(t, p, []dcase{
		{name: "both labels, fin", caller: fin(), target: tt("crm", "get_invoice"), effect: Allow, rule: "fin", origin: "bundle fin",
			labelsOut: []string{"customer_data", "customer_financial"}},
		{name: "both labels, data", caller: data(), target: tt("crm", "get_invoice"), effect: Allow, rule: "data", origin: "bundle data"},
		{name: "one label", caller: fin(), target: tt("crm", "get_customer"), effect: Deny, reason: noRule,
			labelsOut: []string{"customer_data"}},
		{name: "one label, data", caller: data(), target: tt("crm", "get_customer"), effect: Allow, rule: "data", origin: "bundle data"},
		{name: "no label", caller: data(), target: tt("crm", "list"), effect: Deny, reason: noRule, labelsOut: []string{}},
		{name: "star fact", caller: data(), target: tt("chat", "post_message"), effect: Allow, rule: "data", origin: "bundle data",
			labelsOut: []string{"communications"}},
		{name: "same name on another upstream", caller: fin(), target: tt("tickets", "get_invoice"), effect: Deny, reason: noRule,
			labelsOut: []string{}},
		{name: "labels are facts about tools", caller: fin(), target: promptT("crm", "get_invoice"), effect: Deny, reason: noRule,
			labelsOut: []string{}},
		{name: "tool.labels in a condition", caller: cel(), target: tt("crm", "get_x"), effect: Allow, rule: "cel", origin: "bundle cel"},
		{name: "tool.labels without the label", caller: cel(), target: tt("chat", "x"), effect: Deny, reason: noRule},
	})
}

func TestDecideGlobs(t *testing.T) {
	rows := []struct {
		pattern  string
		upstream string
		name     string
		want     bool
	}{
		{"get_invoice", "crm", "get_invoice", true},
		{"get_invoice", "tickets", "get_invoice", true},
		{"get_invoice", "crm", "get_invoices", false},
		{"get_invoice", "crm", "xget_invoice", false},
		{"get_*", "crm", "get_invoice", true},
		{"get_*", "crm", "get_", true},
		{"get_*", "crm", "list_invoices", false},
		{"get_*", "crm", "Get_x", false},
		{"*_admin", "crm", "users_admin", true},
		{"*_admin", "crm", "_admin", true},
		{"*_admin", "crm", "admin", false},
		{"*_admin", "crm", "users_admin2", false},
		{"*", "crm", "anything", true},
		{"*", "web", "", true},
		{"get_[ab]*", "crm", "get_a1", true},
		{"get_[ab]*", "crm", "get_b", true},
		{"get_[ab]*", "crm", "get_c", false},
		{"get_?", "crm", "get_x", true},
		{"get_?", "crm", "get_xy", false},
		{"*_x_*", "crm", "a_x_b", true},
		{"*_x_*", "crm", "a_y_b", false},
		{`get\*`, "crm", "get*", true},
		{`get\*`, "crm", "get_x", false},
		{"crm/*", "crm", "get_invoice", true},
		{"crm/*", "tickets", "get_invoice", false},
		{"crm/get_*", "crm", "get_invoice", true},
		{"crm/get_*", "tickets", "get_invoice", false},
		{"crm/get_*", "crm", "list", false},
		{"*/delete_*", "crm", "delete_customer", true},
		{"*/delete_*", "tickets", "delete_ticket", true},
		{"*/delete_*", "tickets", "get_ticket", false},
		{"c*/list", "crm", "list", true},
		{"c*/list", "chat", "list", true},
		{"c*/list", "tickets", "list", false},
		{"[ct]*/list_?", "tickets", "list_a", true},
		{"[ct]*/list_?", "db", "list_a", false},
		{"crm/get_invoice", "crm", "get_invoice", true},
		{"crm/get_invoice", "crm", "get_invoicex", false},
		{"*/*", "web", "fetch", true},
	}
	for _, r := range rows {
		t.Run(fmt.Sprintf("%s~%s/%s", r.pattern, r.upstream, r.name), func(t *testing.T) {
			p := mustPolicy(t, fmt.Sprintf(`
policy:
  bundles:
    b: {members: {everyone: true}, allow: [{name: g, tools: [%q]}]}
`, r.pattern))
			d := p.Decide(&Input{Caller: anonymous(), Target: tt(r.upstream, r.name)}, false)
			if (d.Effect == Allow) != r.want {
				t.Fatalf("got %s, want allowed=%v", d.Effect, r.want)
			}
			// List filtering (the per-upstream rule index) agrees.
			l := p.Decide(&Input{Caller: anonymous(), Target: tt(r.upstream, r.name), List: true}, false)
			if l.Effect != d.Effect {
				t.Fatalf("list: %s, call: %s", l.Effect, d.Effect)
			}
			// A deny rule with the same pattern matches the same names.
			pd := mustPolicy(t, fmt.Sprintf(`
policy:
  bundles:
    b: {members: {everyone: true}, allow: [{name: all}], deny: [{name: g, tools: [%q]}]}
`, r.pattern))
			if dd := pd.Decide(&Input{Caller: anonymous(), Target: tt(r.upstream, r.name)}, false); (dd.Effect == Deny) != r.want {
				t.Fatalf("as a deny rule: got %s, want denied=%v", dd.Effect, r.want)
			}
		})
	}
}

// The fast forms of a glob part (exact, prefix, suffix, any) match what
// path.Match matches, for names without '/'.
func TestGlobPartsAgreeWithPathMatch(t *testing.T) {
	patterns := []string{"get_invoice", "get_*", "*_admin", "*", "get_[ab]*", "get_?", "*_x_*", `get\*`, `\*x`, "", "**", "*a*",
		"[*]", "a[", "get_\\", "é*", "*é"}
	names := []string{"", "get_invoice", "get_", "get_a", "get_ab", "users_admin", "_admin", "admin", "get*", "*x", "x", "a_x_b",
		"*", "**", "é", "éa", "aé", "[*]", "a[", "get_\\"}
	kinds := map[string]uint8{"get_invoice": globExact, "get_*": globPrefix, "*_admin": globSuffix, "*": globAny, "get_[ab]*": globGeneral,
		"*_x_*": globGeneral, `get\*`: globGeneral}
	for _, pat := range patterns {
		g := newGlobPart(pat)
		if k, ok := kinds[pat]; ok && g.kind != k {
			t.Errorf("%q compiled to kind %d, want %d", pat, g.kind, k)
		}
		for _, name := range names {
			want, err := path.Match(pat, name)
			if err != nil {
				continue // invalid patterns are refused by config validation
			}
			if got := g.match(name); got != want {
				t.Errorf("%q ~ %q: got %v, path.Match says %v", pat, name, got, want)
			}
		}
	}
}

// Resource globs are matched whole (no upstream part); in URIs '*' crosses
// '/', so a pattern covers what is under it (docs/policy.md).
func TestResourceGlobs(t *testing.T) {
	p := mustPolicy(t, `
policy:
  bundles:
    b:
      members: {everyone: true}
      allow:
        - {name: customers, resources: ["crm://customers/*"]}
        - {name: one-level, resources: ["tickets://*/open"]}
        - {name: classes, resources: ["files://[ab]?/x"]}
`)
	runCases(t, p, []dcase{
		{name: "prefix", caller: anonymous(), target: resourceT("crm", "crm://customers/42"), effect: Allow, rule: "customers", origin: "bundle b"},
		{name: "other path", caller: anonymous(), target: resourceT("crm", "crm://orders/42"), effect: Deny, reason: noRule},
		{name: "not split at the first slash", caller: anonymous(), target: resourceT("crm:", "/customers/42"), effect: Deny, reason: noRule},
		{name: "general", caller: anonymous(), target: resourceT("tickets", "tickets://queue/open"), effect: Allow, rule: "one-level", origin: "bundle b"},
		{name: "general crosses /", caller: anonymous(), target: resourceT("tickets", "tickets://a/b/open"), effect: Allow, rule: "one-level", origin: "bundle b"},
		{name: "general needs its suffix", caller: anonymous(), target: resourceT("tickets", "tickets://a/b/closed"), effect: Deny, reason: noRule},
		{name: "prefix covers what is under it", caller: anonymous(), target: resourceT("crm", "crm://customers/42/payment_methods"), effect: Allow, rule: "customers", origin: "bundle b"},
		{name: "class and ?", caller: anonymous(), target: resourceT("files", "files://b7/x"), effect: Allow, rule: "classes", origin: "bundle b"},
		{name: "class mismatch", caller: anonymous(), target: resourceT("files", "files://c7/x"), effect: Deny, reason: noRule},
		{name: "dots are literal", caller: anonymous(), target: resourceT("crm", "crmX//customers/1"), effect: Deny, reason: noRule},
	})
}

func TestDecideServers(t *testing.T) {
	p := mustPolicy(t, `
policy:
  bundles:
    b:
      members: {everyone: true}
      allow:
        - {name: internal-db, servers: [internal], tools: ["db/*"]}
        - {name: support-read, servers: [support], tools: ["db/read"]}
      deny:
        - {name: no-drop-internal, servers: [internal], tools: ["db/drop"]}
`)
	runCases(t, p, []dcase{
		{name: "on the server", caller: anonymous(), target: onServer(tt("db", "drop"), "internal"),
			effect: Deny, rule: "no-drop-internal", origin: "bundle b"},
		{name: "allowed on the server", caller: anonymous(), target: onServer(tt("db", "write"), "internal"),
			effect: Allow, rule: "internal-db", origin: "bundle b"},
		{name: "not on another server", caller: anonymous(), target: tt("db", "write"), effect: Deny, reason: noRule},
		{name: "deny limited to its server", caller: anonymous(), target: tt("db", "drop"), effect: Deny, reason: noRule},
		{name: "other rule on support", caller: anonymous(), target: tt("db", "read"), effect: Allow, rule: "support-read", origin: "bundle b"},
	})
}

func TestDecideKinds(t *testing.T) {
	p := mustPolicy(t, `
policy:
  bundles:
    b:
      members: {agents: [bot]}
      allow:
        - {name: tools-only, tools: ["*"]}
        - {name: prompts-only, prompts: ["crm/summarise_*"]}
        - {name: resources-only, resources: ["crm://customers/*"]}
    everything:
      members: {agents: [all]}
      allow: [{name: everything}]
    facts:
      members: {agents: [facts]}
      allow:
        - {name: read-only, class: read_only}
        - {name: labelled, labels: [customer_data]}
    write-denied:
      members: {agents: [wd]}
      allow: [{name: all}]
      deny: [{name: no-writes, class: write}, {name: no-data, labels: [customer_data]}]
  tools:
    - {upstream: crm, tools: ["*"], labels: [customer_data]}
`)
	bot, all, facts, wd := supportBot, func() *Caller { return agent("all", "", nil) },
		func() *Caller { return agent("facts", "", nil) }, func() *Caller { return agent("wd", "", nil) }
	runCases(t, p, []dcase{
		{name: "tool rule does not apply to prompts", caller: bot(), target: promptT("crm", "other"), effect: Deny, reason: noRule},
		{name: "prompt rule", caller: bot(), target: promptT("crm", "summarise_customer"), effect: Allow, rule: "prompts-only", origin: "bundle b"},
		{name: "prompt rule upstream part", caller: bot(), target: promptT("tickets", "summarise_customer"), effect: Deny, reason: noRule},
		{name: "resource rule", caller: bot(), target: resourceT("crm", "crm://customers/1"), effect: Allow, rule: "resources-only", origin: "bundle b"},
		{name: "resource outside", caller: bot(), target: resourceT("crm", "crm://orders/1"), effect: Deny, reason: noRule},
		{name: "tool rule", caller: bot(), target: tt("crm", "summarise_customer"), effect: Allow, rule: "tools-only", origin: "bundle b"},
		{name: "no kind: tools", caller: all(), target: tt("web", "x"), effect: Allow, rule: "everything", origin: "bundle everything"},
		{name: "no kind: prompts", caller: all(), target: promptT("web", "x"), effect: Allow, rule: "everything", origin: "bundle everything"},
		{name: "no kind: resources", caller: all(), target: resourceT("web", "web://x"), effect: Allow, rule: "everything", origin: "bundle everything"},
		{name: "class never matches prompts", caller: facts(), target: promptT("crm", "x"), effect: Deny, reason: noRule},
		{name: "class never matches resources", caller: facts(), target: resourceT("crm", "crm://x"), effect: Deny, reason: noRule},
		{name: "class matches tools", caller: facts(), target: ann(tt("web", "x"), yes, nil), effect: Allow, rule: "read-only", origin: "bundle facts"},
		{name: "labels match tools", caller: facts(), target: tt("crm", "x"), effect: Allow, rule: "labelled", origin: "bundle facts"},
		{name: "class deny does not apply to prompts", caller: wd(), target: promptT("crm", "x"), effect: Allow, rule: "all", origin: "bundle write-denied"},
		{name: "class deny does not apply to resources", caller: wd(), target: resourceT("crm", "crm://x"), effect: Allow, rule: "all", origin: "bundle write-denied"},
		{name: "class deny on a tool", caller: wd(), target: tt("web", "x"), effect: Deny, rule: "no-writes", origin: "bundle write-denied"},
		{name: "label deny on a tool", caller: wd(), target: ann(tt("crm", "x"), yes, nil), effect: Deny, rule: "no-data", origin: "bundle write-denied"},
	})
}

func TestDecideModes(t *testing.T) {
	everything := `
  bundles:
    b: {members: {everyone: true}, allow: [{name: all}]}
`
	rows := []struct {
		dcase
		policy string
	}{
		{policy: `
policy:
  organisation:
    deny: [{name: watch, tools: ["crm/*"], mode: monitor, reason: would stop this}]` + everything,
			dcase: dcase{name: "monitor rule", effect: Allow, would: true, rule: "watch", origin: "organisation", reason: "would stop this"}},
		{policy: `
policy:
  teams:
    support:
      mode: monitor
      deny: [{name: team-watch, tools: ["crm/*"]}]` + everything,
			dcase: dcase{name: "monitor team", effect: Allow, would: true, rule: "team-watch", origin: "team support", reason: "the rule denies this"}},
		{policy: `
policy:
  teams:
    support:
      mode: monitor
      deny: [{name: team-enforced, tools: ["crm/*"], mode: enforce}]` + everything,
			dcase: dcase{name: "rule mode beats team mode", effect: Deny, rule: "team-enforced", origin: "team support"}},
		{policy: `
policy:
  bundles:
    b: {members: {everyone: true}, allow: [{name: all}]}
    watched:
      mode: monitor
      members: {teams: [support]}
      deny: [{name: bundle-watch, tools: ["crm/*"]}]`,
			dcase: dcase{name: "monitor bundle", effect: Allow, would: true, rule: "bundle-watch", origin: "bundle watched"}},
		{policy: `
policy:
  mode: monitor
  bundles:
    b: {members: {agents: [nobody]}, allow: [{name: all}]}`,
			dcase: dcase{name: "monitor policy: default deny", effect: Allow, would: true, reason: noRule}},
		{policy: `
policy:
  mode: monitor
  organisation:
    deny: [{name: org-deny, tools: ["crm/*"]}]`,
			dcase: dcase{name: "monitor policy: rules inherit", effect: Allow, would: true, rule: "org-deny", origin: "organisation"}},
		{policy: `
policy:
  mode: monitor
  organisation:
    deny: [{name: org-enforced, tools: ["crm/*"], mode: enforce}]`,
			dcase: dcase{name: "enforced rule under a monitor policy", effect: Deny, rule: "org-enforced", origin: "organisation"}},
		{policy: `
policy:
  organisation:
    deny: [{name: first-monitor, tools: ["crm/*"], mode: monitor}]
  bundles:
    b:
      members: {everyone: true}
      allow: [{name: all}]
      deny: [{name: then-enforced, tools: ["crm/*"]}]`,
			dcase: dcase{name: "enforced deny wins over an earlier monitor deny", effect: Deny, rule: "then-enforced", origin: "bundle b"}},
		{policy: `
policy:
  organisation:
    deny: [{name: first-enforced, tools: ["crm/*"]}]
  bundles:
    b:
      members: {everyone: true}
      allow: [{name: all}]
      deny: [{name: then-monitor, tools: ["crm/*"], mode: monitor}]`,
			dcase: dcase{name: "enforced deny wins over a later monitor deny", effect: Deny, rule: "first-enforced", origin: "organisation"}},
		{policy: `
policy:
  organisation:
    deny:
      - {name: m1, tools: ["crm/*"], mode: monitor, reason: first}
      - {name: m2, tools: ["crm/*"], mode: monitor, reason: second}` + everything,
			dcase: dcase{name: "first monitor deny is reported", effect: Allow, would: true, rule: "m1", origin: "organisation", reason: "first"}},
		{policy: `
policy:
  organisation:
    deny: [{name: watch, tools: ["crm/*"], mode: monitor}]`,
			dcase: dcase{name: "monitor deny does not grant", effect: Deny, reason: noRule}},
		{policy: `
policy:
  mode: monitor
  organisation:
    deny: [{name: watch, tools: ["crm/*"]}]`,
			dcase: dcase{name: "monitor deny then monitor default", effect: Allow, would: true, rule: "watch", origin: "organisation"}},
		{policy: `
policy:
  tools:
    - {upstream: crm, tools: [get_invoice], labels: [customer_financial]}
    - {upstream: crm, tools: [send], labels: [communications]}
  workflows:
    - {name: fin-comms, after: [customer_financial], calls: [communications], action: approve, mode: monitor}` + everything,
			dcase: dcase{name: "monitor workflow approve", labels: []string{"customer_financial"}, effect: Allow, would: true,
				rule: "fin-comms", origin: "workflow", reason: "needs a person's approval"}},
		{policy: `
policy:
  tools:
    - {upstream: crm, tools: [send], labels: [communications]}
  workflows:
    - {name: fin-comms, after: [customer_financial], calls: [communications], action: deny, mode: monitor}
  organisation:
    deny: [{name: enforced, tools: ["crm/*"], when: 'has(args.block)'}]` + everything,
			dcase: dcase{name: "monitor workflow deny then enforced", labels: []string{"customer_financial"}, args: `{"block":1}`,
				effect: Deny, rule: "enforced", origin: "organisation"}},
		{policy: `
policy:
  tools:
    - {upstream: crm, tools: [send], labels: [communications]}
  organisation:
    deny: [{name: watch, tools: ["crm/*"], mode: monitor}]
  workflows:
    - {name: fin-comms, after: [customer_financial], calls: [communications], action: approve}` + everything,
			dcase: dcase{name: "enforced workflow after a monitor deny", labels: []string{"customer_financial"},
				effect: Approve, rule: "fin-comms", origin: "workflow"}},
	}
	for _, r := range rows {
		p := mustPolicy(t, r.policy)
		c := r.dcase
		c.caller = supportBot()
		c.target = tt("crm", "send")
		runCases(t, p, []dcase{c})
	}
}

func TestDecideWorkflows(t *testing.T) {
	p := mustPolicy(t, `
policy:
  tools:
    - {upstream: crm, tools: [get_invoice], labels: [customer_financial]}
    - {upstream: crm, tools: [get_customer], labels: [customer_data]}
    - {upstream: chat, tools: [post_message], labels: [communications]}
    - {upstream: web, tools: [fetch], labels: [external]}
    - {upstream: web, tools: [post], labels: [external, communications]}
  bundles:
    b: {members: {everyone: true}, allow: [{name: everything}]}
  workflows:
    - {name: fin-to-comms, after: [customer_financial], calls: [communications], action: approve}
    - {name: fin-to-web, after: [customer_financial, customer_data], calls: [external], action: deny, reason: no exfiltration}
    - {name: data-to-comms, after: [customer_data], calls: [communications], action: deny}
`)
	fin := []string{"customer_financial"}
	runCases(t, p, []dcase{
		{name: "approve", caller: supportBot(), target: tt("chat", "post_message"), labels: fin, effect: Approve, rule: "fin-to-comms",
			origin: "workflow", reason: "this session has read customer_financial data; calling a communications tool needs a person's approval"},
		{name: "deny with a reason", caller: supportBot(), target: tt("web", "fetch"), labels: fin, effect: Deny, rule: "fin-to-web",
			origin: "workflow", reason: "no exfiltration"},
		{name: "deny default reason", caller: supportBot(), target: tt("chat", "post_message"), labels: []string{"customer_data"},
			effect: Deny, rule: "data-to-comms", origin: "workflow",
			reason: "this session has read customer_data data; calling a communications tool is not allowed"},
		{name: "first matching workflow decides", caller: supportBot(), target: tt("web", "post"), labels: fin,
			effect: Approve, rule: "fin-to-comms", origin: "workflow"},
		{name: "without the read label", caller: supportBot(), target: tt("chat", "post_message"), labels: []string{"external"},
			effect: Allow, rule: "everything", origin: "bundle b"},
		{name: "empty session", caller: supportBot(), target: tt("chat", "post_message"), effect: Allow, rule: "everything", origin: "bundle b"},
		{name: "tool without the guarded label", caller: supportBot(), target: tt("crm", "get_invoice"), labels: fin,
			effect: Allow, rule: "everything", origin: "bundle b"},
		{name: "not at list time", caller: supportBot(), target: tt("chat", "post_message"), labels: fin, list: true,
			effect: Allow, rule: "everything", origin: "bundle b"},
		{name: "not for prompts", caller: supportBot(), target: promptT("chat", "post_message"), labels: fin,
			effect: Allow, rule: "everything", origin: "bundle b"},
	})
	if !p.ApprovalsUsed() {
		t.Error("ApprovalsUsed() = false")
	}
	if mustPolicy(t, "policy: {organisation: {allow: [{name: a}]}}").ApprovalsUsed() {
		t.Error("ApprovalsUsed() without workflows")
	}
}

// A workflow rule holds calls a caller may make; it must not turn a call
// that nothing allows into one a person may approve.
func TestWorkflowApproveNeedsAGrant(t *testing.T) {
	p := mustPolicy(t, `
policy:
  tools:
    - {upstream: crm, tools: [get_invoice], labels: [customer_financial]}
    - {upstream: chat, tools: [post_message], labels: [communications]}
  bundles:
    crm: {members: {teams: [sales]}, allow: [{name: crm, tools: ["crm/*"]}]}
  workflows:
    - {name: fin-to-comms, after: [customer_financial], calls: [communications], action: approve}
`)
	in := &Input{Caller: salesBot(), Target: tt("chat", "post_message"), Session: Session{Labels: []string{"customer_financial"}}}
	if d := p.Decide(in, false); d.Effect != Deny {
		t.Fatalf("a caller with no rule allowing chat/post_message gets %s by %q (workflow) instead of deny: an approver's yes runs a call no bundle grants", d.Effect, d.Rule)
	}
}

func TestDecideListTime(t *testing.T) {
	p := mustPolicy(t, `
policy:
  organisation:
    deny:
      - {name: deny-reads-args, tools: ["crm/*"], when: 'args.force == true'}
      - {name: deny-by-team, tools: ["crm/*"], when: 'agent.team == "sales"'}
  bundles:
    b:
      members: {everyone: true}
      allow:
        - {name: allow-reads-args, tools: ["crm/get_*"], when: 'args.id == "x"'}
        - {name: allow-by-team, tools: ["tickets/*"], when: 'agent.team == "support"'}
        - {name: allow-by-tool, tools: ["chat/*"], when: 'tool.name.startsWith("list_")'}
        - {name: allow-args-and-team, tools: ["web/*"], when: 'agent.team == "nobody" && args.q == 1'}
`)
	runCases(t, p, []dcase{
		{name: "allow reading args is assumed", caller: supportBot(), target: tt("crm", "get_x"), list: true,
			effect: Allow, rule: "allow-reads-args", origin: "bundle b", reason: "allowed"},
		{name: "deny not reading args is evaluated", caller: salesBot(), target: tt("crm", "get_x"), list: true,
			effect: Deny, rule: "deny-by-team", origin: "organisation"},
		{name: "allow not reading args is evaluated", caller: supportBot(), target: tt("tickets", "x"), list: true,
			effect: Allow, rule: "allow-by-team", origin: "bundle b"},
		{name: "allow not reading args, false", caller: salesBot(), target: tt("tickets", "x"), list: true, effect: Deny, reason: noRule},
		{name: "condition on the tool", caller: supportBot(), target: tt("chat", "list_channels"), list: true,
			effect: Allow, rule: "allow-by-tool", origin: "bundle b"},
		{name: "condition on the tool, false", caller: supportBot(), target: tt("chat", "post"), list: true, effect: Deny, reason: noRule},
		{name: "any args reading makes the rule assumed", caller: supportBot(), target: tt("web", "x"), list: true,
			effect: Allow, rule: "allow-args-and-team", origin: "bundle b"},
		// The same rules at call time.
		{name: "call: deny reading args errors without the key", caller: supportBot(), target: tt("crm", "get_x"), args: `{"id":"x"}`,
			effect: Deny, rule: "deny-reads-args", origin: "organisation", reason: "could not be evaluated"},
		{name: "call: deny reading args", caller: supportBot(), target: tt("crm", "get_x"), args: `{"id":"x","force":true}`,
			effect: Deny, rule: "deny-reads-args", origin: "organisation", reason: "the rule denies this"},
		{name: "call: allow reading args", caller: supportBot(), target: tt("crm", "get_x"), args: `{"id":"x","force":false}`,
			effect: Allow, rule: "allow-reads-args", origin: "bundle b"},
		{name: "call: allow reading args, false", caller: supportBot(), target: tt("crm", "get_x"), args: `{"id":"y","force":false}`,
			effect: Deny, reason: noRule},
	})

	t.Run("trace", func(t *testing.T) {
		d := p.Decide(&Input{Caller: supportBot(), Target: tt("crm", "get_x"), List: true}, true)
		want := []Step{
			{Origin: "organisation", Rule: "deny-reads-args", Kind: "deny", Result: "skipped", Detail: "reads args: decided per call", Mode: "enforce"},
			{Origin: "organisation", Rule: "deny-by-team", Kind: "deny", Result: "no_match", Mode: "enforce"},
			{Origin: "bundle b", Rule: "allow-reads-args", Kind: "allow", Result: "assumed", Detail: "reads args: decided per call", Mode: "enforce"},
		}
		if !slices.Equal(d.Trace, want) {
			t.Fatalf("trace %s", traceString(d.Trace))
		}
	})
}

// List filtering reuses one Input for every item: conditions that read
// neither tool nor args are evaluated once, and the decisions are those of
// fresh inputs.
func TestListMemoReuse(t *testing.T) {
	p := mustPolicy(t, `
policy:
  organisation:
    deny:
      - {name: late, tools: ["web/*"], when: 'request.time.getHours("Europe/Paris") >= 18'}
  bundles:
    b:
      members: {everyone: true}
      allow:
        - {name: by-team, tools: ["tickets/*"], when: 'agent.team == "support"'}
        - {name: by-tool, tools: ["chat/*"], when: 'tool.name.startsWith("list_")'}
        - {name: by-args, tools: ["crm/get_*"], when: 'args.id == "x"'}
        - {name: broken, tools: ["db/*"], when: 'agent.attributes.level > 3'}
        - {name: web, tools: ["web/*"], when: 'session.calls >= 0'}
`)
	targets := []*Target{tt("tickets", "a"), tt("chat", "list_x"), tt("chat", "post"), tt("crm", "get_x"), tt("crm", "put"),
		tt("db", "q"), tt("tickets", "b"), tt("web", "fetch"), tt("db", "r"), promptT("tickets", "p"), tt("chat", "list_y")}
	for _, c := range []*Caller{supportBot(), salesBot()} {
		for _, when := range []time.Time{at(10, 0), at(19, 0)} {
			shared := &Input{Caller: c, Target: &Target{}, Request: Request{Time: when}, List: true}
			for _, tg := range targets {
				*shared.Target = *tg
				got := p.Decide(shared, false)
				want := p.Decide(&Input{Caller: c, Target: tg, Request: Request{Time: when}, List: true}, false)
				if got.Effect != want.Effect || got.Rule != want.Rule || got.Reason != want.Reason {
					t.Errorf("%s %s/%s at %s: reused input %s by %q, fresh %s by %q", c.AgentName, tg.Upstream, tg.Name,
						when.Format("15:04"), got.Effect, got.Rule, want.Effect, want.Rule)
				}
			}
			if len(shared.memo) == 0 {
				t.Errorf("no condition memoised")
			}
			for cond := range shared.memo {
				if cond.uses["tool"] || cond.uses["args"] {
					t.Errorf("memoised a condition that reads tool or args: %s", cond.src)
				}
			}
		}
	}
	// A memoised error stays an error: the db rule never grants.
	shared := &Input{Caller: supportBot(), Target: &Target{}, List: true}
	for range 3 {
		*shared.Target = *tt("db", "q")
		if d := p.Decide(shared, false); d.Effect != Deny || !strings.Contains(d.Reason, "could not be evaluated") {
			t.Fatalf("memoised error: %+v", d)
		}
	}
}

func TestDecideFailClosed(t *testing.T) {
	p := mustPolicy(t, `
policy:
  organisation:
    deny:
      - {name: deny-err, tools: ["crm/*"], when: 'args.n > 5'}
  bundles:
    b:
      members: {everyone: true}
      allow:
        - {name: allow-missing, tools: ["tickets/missing"], when: 'args.queue == "a"'}
        - {name: allow-type, tools: ["tickets/type"], when: 'args.n > 5'}
        - {name: allow-cost, tools: ["tickets/cost"], when: 'args.xs.exists(a, args.xs.exists(b, a == b && a < 0))'}
        - {name: allow-nonbool, tools: ["tickets/nonbool"], when: 'args.x'}
        - {name: allow-args, tools: ["tickets/any"], when: 'size(args) >= 0'}
        - {name: allow-first-errs, tools: ["tickets/two"], when: 'args.missing'}
        - {name: allow-second, tools: ["tickets/two"], when: 'true'}
        - {name: allow-attr, tools: ["tickets/attr"], when: 'agent.attributes.level > 3'}
        - {name: allow-zone, tools: ["tickets/zone"], when: 'request.time.getHours("Mars/Olympus_Mons") > 3'}
        - {name: allow-ip, tools: ["tickets/ip"], when: 'cidr("10.0.0.0/8").containsIP(ip(request.source))'}
`)
	var xs []string
	for i := range 2000 {
		xs = append(xs, fmt.Sprint(i))
	}
	big := `{"xs":[` + strings.Join(xs, ",") + `]}`
	failed := func(rule string) string {
		return fmt.Sprintf("rule %q (bundle b) could not be evaluated", rule)
	}
	runCases(t, p, []dcase{
		{name: "missing key", caller: supportBot(), target: tt("tickets", "missing"), args: `{}`,
			effect: Deny, reason: failed("allow-missing")},
		{name: "missing key grants nothing (fail closed)", caller: supportBot(), target: tt("tickets", "missing"), args: `{"other":1}`,
			effect: Deny, reason: "so it grants nothing (fail closed)"},
		{name: "present key", caller: supportBot(), target: tt("tickets", "missing"), args: `{"queue":"a"}`,
			effect: Allow, rule: "allow-missing", origin: "bundle b"},
		{name: "wrong type", caller: supportBot(), target: tt("tickets", "type"), args: `{"n":"six"}`,
			effect: Deny, reason: failed("allow-type")},
		{name: "right type", caller: supportBot(), target: tt("tickets", "type"), args: `{"n":6}`,
			effect: Allow, rule: "allow-type", origin: "bundle b"},
		{name: "cost limit", caller: supportBot(), target: tt("tickets", "cost"), args: big,
			effect: Deny, reason: failed("allow-cost")},
		{name: "cost limit is named", caller: supportBot(), target: tt("tickets", "cost"), args: big,
			effect: Deny, reason: "cost"},
		{name: "small list within the cost limit", caller: supportBot(), target: tt("tickets", "cost"), args: `{"xs":[1,2,3]}`,
			effect: Deny, reason: noRule},
		{name: "non-boolean result", caller: supportBot(), target: tt("tickets", "nonbool"), args: `{"x":"yes"}`,
			effect: Deny, reason: "not a boolean"},
		{name: "boolean result", caller: supportBot(), target: tt("tickets", "nonbool"), args: `{"x":true}`,
			effect: Allow, rule: "allow-nonbool", origin: "bundle b"},
		{name: "malformed args", caller: supportBot(), target: tt("tickets", "any"), args: `{"a":`,
			effect: Deny, reason: failed("allow-args")},
		{name: "args not an object", caller: supportBot(), target: tt("tickets", "any"), args: `[1,2]`,
			effect: Deny, reason: "arguments must be an object"},
		{name: "args a string", caller: supportBot(), target: tt("tickets", "any"), args: `"x"`,
			effect: Deny, reason: "arguments must be an object"},
		{name: "null args are empty", caller: supportBot(), target: tt("tickets", "any"), args: `null`,
			effect: Allow, rule: "allow-args", origin: "bundle b"},
		{name: "no args are empty", caller: supportBot(), target: tt("tickets", "any"),
			effect: Allow, rule: "allow-args", origin: "bundle b"},
		{name: "an erroring rule does not stop the next", caller: supportBot(), target: tt("tickets", "two"), args: `{}`,
			effect: Allow, rule: "allow-second", origin: "bundle b"},
		{name: "missing attribute", caller: supportBot(), target: tt("tickets", "attr"),
			effect: Deny, reason: failed("allow-attr")},
		{name: "unknown time zone", caller: supportBot(), target: tt("tickets", "zone"),
			effect: Deny, reason: failed("allow-zone")},
		{name: "ip from the source", caller: supportBot(), target: tt("tickets", "ip"),
			effect: Allow, rule: "allow-ip", origin: "bundle b"},
		{name: "deny condition errors: denied", caller: supportBot(), target: tt("crm", "x"), args: `{}`,
			effect: Deny, rule: "deny-err", origin: "organisation", reason: "condition could not be evaluated"},
		{name: "deny condition errors: says fail closed", caller: supportBot(), target: tt("crm", "x"), args: `{"n":"x"}`,
			effect: Deny, rule: "deny-err", origin: "organisation", reason: "denied (fail closed)"},
		{name: "deny condition malformed args", caller: supportBot(), target: tt("crm", "x"), args: `{`,
			effect: Deny, rule: "deny-err", origin: "organisation", reason: "could not be evaluated"},
		{name: "deny condition false", caller: supportBot(), target: tt("crm", "x"), args: `{"n":1}`,
			effect: Deny, reason: noRule},
		{name: "deny condition true", caller: supportBot(), target: tt("crm", "x"), args: `{"n":9}`,
			effect: Deny, rule: "deny-err", origin: "organisation", reason: "the rule denies this"},
	})
	// An invalid source address is an error, not a match.
	d := p.Decide(&Input{Caller: supportBot(), Target: tt("tickets", "ip"), Request: Request{Source: "not-an-ip"}}, true)
	if d.Effect != Deny || !strings.Contains(d.Reason, failed("allow-ip")) {
		t.Fatalf("bad source: %+v", d)
	}
	if i := slices.IndexFunc(d.Trace, func(s Step) bool { return s.Rule == "allow-ip" }); i < 0 || d.Trace[i].Result != "error" {
		t.Fatalf("trace: %s", traceString(d.Trace))
	}
}

func TestExplain(t *testing.T) {
	p := mustPolicy(t, `
policy:
  tools:
    - {upstream: crm, tools: [get_invoice], labels: [customer_financial]}
  organisation:
    deny:
      - {name: no-big, tools: ["crm/*"], when: 'has(args.n) && args.n > 100', reason: too big}
  bundles:
    b:
      version: 4
      members: {teams: [support]}
      allow:
        - {name: by-id, tools: ["crm/*"], when: 'args.id == "x"'}
`)
	in := &Input{Caller: supportBot(), Target: tt("crm", "get_invoice"), Args: json.RawMessage(`{"id":"y"}`), Request: Request{Time: at(10, 0)}}
	ex := p.Explain(in)
	if ex.Decision != "deny" || ex.Reason != noRule || !ex.Visible || ex.PolicyVersion != p.Version {
		t.Fatalf("explanation %+v", ex)
	}
	if !slices.Equal(ex.Bundles, []string{"b"}) || !slices.Equal(ex.Labels, []string{"customer_financial"}) {
		t.Fatalf("bundles %q labels %q", ex.Bundles, ex.Labels)
	}
	want := []Step{
		{Origin: "organisation", Rule: "no-big", Kind: "deny", Result: "no_match", Mode: "enforce"},
		{Origin: "bundle b (v4)", Rule: "by-id", Kind: "allow", Result: "no_match", Mode: "enforce"},
	}
	if !slices.Equal(ex.Steps, want) {
		t.Fatalf("steps %s", traceString(ex.Steps))
	}
	if ex.Target.Name != "get_invoice" || ex.Target.Upstream != "crm" || ex.Target.Visible != "crm_get_invoice" {
		t.Fatalf("target %+v", ex.Target)
	}
	// Explain does not change the caller's input.
	if in.List || string(in.Args) != `{"id":"y"}` {
		t.Fatalf("input changed: %+v", in)
	}
	// Not visible to a caller without the bundle; JSON has empty lists, not null.
	ex = p.Explain(&Input{Caller: salesBot(), Target: tt("crm", "get_invoice"), Args: json.RawMessage(`{"n":500}`)})
	if ex.Decision != "deny" || ex.Rule != "no-big" || ex.Visible {
		t.Fatalf("explanation %+v", ex)
	}
	b, _ := json.Marshal(p.Explain(&Input{Caller: salesBot(), Target: promptT("web", "x")}))
	for _, s := range []string{`"bundles":[]`, `"labels":[]`, `"steps":[]`, `"decision":"deny"`, `"visible":false`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("explanation JSON %s lacks %s", b, s)
		}
	}
	// Monitor: would_deny.
	pm := mustPolicy(t, "policy: {mode: monitor}")
	if ex := pm.Explain(&Input{Caller: salesBot(), Target: tt("crm", "x")}); ex.Decision != "would_deny" || !ex.Visible {
		t.Fatalf("monitor explanation %+v", ex)
	}
}

func TestCompileVersionAndEmpty(t *testing.T) {
	cfg := mustPolicy(t, "policy: {organisation: {allow: [{name: a, tools: [x]}]}}")
	same := mustPolicy(t, "policy: {organisation: {allow: [{name: a, tools: [x]}]}}")
	other := mustPolicy(t, "policy: {organisation: {allow: [{name: a, tools: [y]}]}}")
	if cfg.Version == "" || cfg.Version != same.Version || cfg.Version == other.Version {
		t.Fatalf("versions %q %q %q", cfg.Version, same.Version, other.Version)
	}
	bumped := mustPolicy(t, "policy: {bundles: {b: {version: 2, members: {everyone: true}}}}")
	unbumped := mustPolicy(t, "policy: {bundles: {b: {version: 1, members: {everyone: true}}}}")
	if bumped.Version == unbumped.Version {
		t.Fatal("a bundle version bump keeps the policy version")
	}
	// Approval settings say how held calls wait, not what is allowed.
	waits := mustPolicy(t, "policy: {approvals: {wait: 30s, ttl: 2h}, organisation: {allow: [{name: a, tools: [x]}]}}")
	if waits.Version != cfg.Version || waits.Approvals.Wait.Std() != 30*time.Second || waits.Approvals.TTL.Std() != 2*time.Hour {
		t.Fatalf("approvals %+v, version %q (want %q)", waits.Approvals, waits.Version, cfg.Version)
	}
	p, err := Compile(loadConfig(t, semBase))
	if p != nil || err != nil {
		t.Fatalf("no policy section: %v, %v", p, err)
	}
}
