package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// rolesConfig is examples/roles.yaml (the three roles of the product
// brief), kept here so that the tests and fuzzers do not change when the
// example does.
const rolesConfig = `
upstreams:
  crm: {command: gatehouse, args: [demo-server, crm]}
  tickets: {command: gatehouse, args: [demo-server, tickets]}
  chat: {command: gatehouse, args: [demo-server, chat]}
servers:
  work:
    upstreams: [{upstream: crm}, {upstream: tickets}, {upstream: chat}]
identity:
  teams:
    - {name: support, servers: [work]}
    - {name: sales, servers: [work]}
    - {name: engineering, servers: [work]}
  groups:
    - {name: admins, servers: ["*"]}
    - {name: oncall, servers: [work]}
policy:
  mode: enforce
  approvals: {wait: 2m, ttl: 1h}
  tools:
    - {upstream: crm, tools: [get_invoice], labels: [customer_financial]}
    - {upstream: crm, tools: ["*"], labels: [customer_data]}
    - {upstream: chat, tools: [post_message], labels: [communications]}
    - {upstream: tickets, tools: [list_tickets, get_ticket], read_only: true}
  organisation:
    deny:
      - name: no-foreign-links
        tools: ["*"]
        when: 'urls(args).exists(u, !(host(u) in ["example.com", "docs.example.com", "status.example.com"]))'
        reason: arguments may only link to example.com sites
    allow:
      - name: everyone-reads-channels
        tools: ["chat/list_channels"]
  teams:
    support:
      mode: monitor
      deny:
        - name: no-urgent-tickets-by-bots
          tools: ["tickets/create_ticket"]
          when: 'has(args.priority) && args.priority == "urgent" && user.name == ""'
          reason: urgent tickets are filed by people
  bundles:
    support:
      version: 1
      members: {teams: [support]}
      allow:
        - {name: read-customers, tools: ["crm/*"], class: read_only}
        - name: own-queues
          tools: ["tickets/list_tickets", "tickets/create_ticket"]
          when: 'has(args.queue) && args.queue in agent.attributes.queues'
        - {name: read-tickets, tools: ["tickets/get_ticket"]}
        - {name: chat, tools: ["chat/post_message"]}
      deny:
        - name: no-external-channels
          tools: ["chat/post_message"]
          when: 'args.channel.startsWith("#ext-") || args.channel.startsWith("ext-")'
          reason: support agents do not post to channels shared outside the company
    sales:
      version: 1
      members: {teams: [sales]}
      allow:
        - {name: find-customers, tools: ["crm/search_customers", "crm/get_customer"]}
        - name: sales-chat
          tools: ["chat/post_message"]
          when: 'args.channel in ["#sales", "sales"] || args.channel.startsWith("#ext-")'
    engineering:
      version: 1
      members: {teams: [engineering]}
      allow:
        - {name: read-tickets, tools: ["tickets/*"], class: read_only}
        - name: file-tickets-when-oncall
          tools: ["tickets/create_ticket"]
          when: '"oncall" in user.groups'
        - name: oncall-chat
          tools: ["chat/post_message"]
          when: 'args.channel in ["#eng-oncall", "eng-oncall"]'
    billing-escalation:
      version: 1
      members: {}
      allow:
        - name: escalation-chat
          tools: ["chat/post_message"]
          when: 'args.channel in ["#support", "support"]'
    admins:
      version: 1
      members: {groups: [admins]}
      allow:
        - {name: everything}
  workflows:
    - name: financial-data-to-communications
      after: [customer_financial]
      calls: [communications]
      action: approve
      reason: this session has read invoices; posting a message needs a person's approval
`

func rolesPolicy(tb testing.TB) *Policy { return compileText(tb, rolesConfig) }

func workTool(upstream, name string, readOnly *bool) *Target {
	t := tool(upstream, name, readOnly)
	t.Server = "work"
	return t
}

// rolesInputs are calls under rolesConfig, with the decision each gets.
func rolesInputs() []struct {
	in   *Input
	want string // Outcome
	rule string
} {
	sup := func() *Caller {
		return agent("support-bot", "support", map[string]any{"queues": []any{"billing", "technical"}})
	}
	eng := func() *Caller { return agent("eng-bot", "engineering", nil) }
	req := Request{Time: time.Date(2026, 11, 25, 10, 0, 0, 0, time.FixedZone("CET", 3600)), Source: "10.0.0.7", Method: "tools/call"}
	in := func(c *Caller, t *Target, args string, labels ...string) *Input {
		return &Input{Caller: c, Target: t, Args: json.RawMessage(args), Request: req,
			Session: Session{ID: "mcp-session-1", Labels: labels, Calls: len(labels)}}
	}
	return []struct {
		in   *Input
		want string
		rule string
	}{
		{in(sup(), workTool("tickets", "create_ticket", nil), `{"queue":"billing","subject":"x"}`), "allow", "own-queues"},
		{in(sup(), workTool("tickets", "create_ticket", nil), `{"queue":"legal"}`), "deny", ""},
		{in(sup(), workTool("tickets", "create_ticket", nil), `{"queue":"billing","priority":"urgent"}`), "would_deny", "no-urgent-tickets-by-bots"},
		{in(drivenBy(sup(), "alice"), workTool("tickets", "create_ticket", nil), `{"queue":"billing","priority":"urgent"}`), "allow", "own-queues"},
		{in(sup(), workTool("crm", "get_invoice", yes), `{"id":"INV-1"}`), "allow", "read-customers"},
		{in(sup(), workTool("crm", "update_customer", nil), `{"id":"C-1"}`), "deny", ""},
		{in(sup(), workTool("chat", "post_message", nil), `{"channel":"#support","text":"see https://docs.example.com/a"}`), "allow", "chat"},
		{in(sup(), workTool("chat", "post_message", nil), `{"channel":"#support","text":"see https://evil.example/a"}`), "deny", "no-foreign-links"},
		{in(sup(), workTool("chat", "post_message", nil), `{"channel":"#ext-acme","text":"hi"}`), "deny", "no-external-channels"},
		{in(sup(), workTool("chat", "post_message", nil), `{"channel":"#support","text":"hi"}`, "customer_data", "customer_financial"),
			"approve", "financial-data-to-communications"},
		{in(withGrants(sup(), "billing-escalation"), workTool("chat", "post_message", nil), `{"channel":"#support","text":"hi"}`),
			"allow", "escalation-chat"},
		{in(agent("sales-bot", "sales", map[string]any{"regions": []any{"EMEA"}}), workTool("chat", "post_message", nil),
			`{"channel":"#sales","text":"hi"}`), "allow", "sales-chat"},
		{in(agent("sales-bot", "sales", nil), workTool("crm", "get_invoice", yes), `{}`), "deny", ""},
		{in(eng(), workTool("tickets", "create_ticket", nil), `{}`), "deny", ""},
		{in(drivenBy(eng(), "carol", "oncall"), workTool("tickets", "create_ticket", nil), `{}`), "allow", "file-tickets-when-oncall"},
		{in(person("root", "admins"), workTool("crm", "delete_customer", nil), `{"id":"C-1"}`), "allow", "everything"},
		{in(anonymous(), workTool("chat", "list_channels", nil), `{}`), "allow", "everyone-reads-channels"},
		{in(anonymous(), workTool("chat", "post_message", nil), `{}`), "deny", ""},
	}
}

func TestRolesExample(t *testing.T) {
	p := rolesPolicy(t)
	for i, c := range rolesInputs() {
		d := p.Decide(c.in, false)
		if got := Outcome(d.Effect, d.WouldDeny); got != c.want || d.Rule != c.rule {
			t.Errorf("case %d (%s %s/%s %s): got %s by %q (%s), want %s by %q", i, c.in.Caller.AgentName+c.in.Caller.User,
				c.in.Target.Upstream, c.in.Target.Name, c.in.Args, got, d.Rule, d.Reason, c.want, c.rule)
		}
	}
}

// A decision recorded, written as JSON and read back decides the same.
func TestRecordRoundTrip(t *testing.T) {
	p := rolesPolicy(t)
	timed := mustPolicy(t, `
policy:
  bundles:
    b:
      members: {everyone: true}
      allow:
        - name: hours-and-network
          when: >
            request.time.getHours("Europe/Paris") < 18 && cidr("10.0.0.0/8").containsIP(ip(request.source)) &&
            session.calls < 3 && session.id == "s1" && request.method == "tools/call" && agent.attributes.level >= 2
`)
	type tc struct {
		p  *Policy
		in *Input
	}
	var cases []tc
	for _, c := range rolesInputs() {
		cases = append(cases, tc{p, c.in})
	}
	lvl := func() *Caller { return agent("x", "support", map[string]any{"level": 2}) }
	for _, when := range []time.Time{at(17, 59), at(18, 0), at(17, 59).UTC(), time.Date(2026, 11, 25, 12, 0, 0, 0, time.FixedZone("", 5*3600+1800))} {
		cases = append(cases, tc{timed, &Input{Caller: lvl(), Target: tt("web", "x"), Request: Request{Time: when, Source: "10.9.9.9", Method: "tools/call"},
			Session: Session{ID: "s1", Calls: 2}}})
	}
	cases = append(cases, tc{timed, &Input{Caller: lvl(), Target: tt("web", "x"), Request: Request{Time: at(10, 0), Source: "192.168.0.1", Method: "tools/call"},
		Session: Session{ID: "s1"}}})
	for i, c := range cases {
		d := c.p.Decide(c.in, false)
		rec := NewRecord(c.in, d, c.p.Version)
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		var back Record
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if back.Effect != d.Effect || back.WouldDeny != d.WouldDeny || back.Rule != d.Rule || back.Origin != d.Origin ||
			back.Reason != d.Reason || back.PolicyVersion != c.p.Version || !back.Time.Equal(c.in.Request.Time) {
			t.Errorf("case %d: record %s", i, b)
		}
		// A fresh Caller: NewRecord must not carry cached state.
		d2 := c.p.Decide(back.Input(), false)
		if d2.Effect != d.Effect || d2.WouldDeny != d.WouldDeny || d2.Rule != d.Rule || d2.Origin != d.Origin || d2.Reason != d.Reason ||
			!slices.Equal(d2.Bundles, d.Bundles) || !slices.Equal(d2.Labels, d.Labels) {
			t.Errorf("case %d: replayed %+v\noriginal %+v\nrecord %s", i, d2, d, b)
		}
	}
	// Both time-bound cases decide differently, or the check is vacuous.
	if a, b := timed.Decide(cases[len(cases)-5].in, false), timed.Decide(cases[len(cases)-4].in, false); a.Effect == b.Effect {
		t.Errorf("17:59 and 18:00 decide the same: %s", a.Effect)
	}
}

func TestRecordFields(t *testing.T) {
	c := withGrants(drivenBy(agent("bot", "support", map[string]any{"k": "v"}), "alice", "oncall"), "b1")
	c.Owner = "owner@example.com"
	tg := tool("crm", "get", yes)
	tg.Annotations.Title = "Get"
	in := &Input{Caller: c, Target: tg, Args: json.RawMessage(`{"a":1}`),
		Request: Request{Time: at(10, 0), Source: "10.0.0.1", Method: "tools/call"},
		Session: Session{ID: "s", Labels: []string{"l"}, Calls: 4}}
	rec := NewRecord(in, Decision{Effect: Allow, WouldDeny: true, Rule: "r", Origin: "o", Reason: "why"}, "v9")
	b, _ := json.Marshal(rec)
	for _, s := range []string{`"policy_version":"v9"`, `"kind":"agent"`, `"id":"agent:agt_bot"`, `"agent_id":"agt_bot"`, `"agent":"bot"`,
		`"team":"support"`, `"owner":"owner@example.com"`, `"attributes":{"k":"v"}`, `"user":"alice"`, `"groups":["oncall"]`,
		`"grants":["b1"]`, `"upstream":"crm"`, `"name":"get"`, `"visible":"crm_get"`, `"readOnlyHint":true`, `"title":"Get"`,
		`"args":{"a":1}`, `"method":"tools/call"`, `"source":"10.0.0.1"`, `"labels":["l"]`, `"calls":4`, `"effect":"allow"`,
		`"would_deny":true`, `"rule":"r"`, `"origin":"o"`, `"reason":"why"`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("record %s lacks %s", b, s)
		}
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	got := back.Input()
	if got.Caller.ID != c.ID || got.Caller.Owner != c.Owner || !slices.Equal(got.Caller.Grants, c.Grants) || got.Target.Visible != "crm_get" ||
		*got.Target.Annotations.ReadOnly != true || got.Session.Calls != 4 || got.Request.Source != "10.0.0.1" || got.List {
		t.Errorf("input %+v", got)
	}
}

func TestOutcome(t *testing.T) {
	cases := []struct {
		e     Effect
		would bool
		want  string
	}{
		{Allow, false, "allow"}, {Allow, true, "would_deny"}, {Deny, false, "deny"}, {Deny, true, "deny"},
		{Approve, false, "approve"}, {Approve, true, "approve"},
	}
	for _, c := range cases {
		if got := Outcome(c.e, c.would); got != c.want {
			t.Errorf("Outcome(%s, %v) = %q, want %q", c.e, c.would, got, c.want)
		}
	}
}

func TestRecorder(t *testing.T) {
	p := rolesPolicy(t)
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	rec, err := OpenRecorder(path, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	inputs := rolesInputs()
	for _, c := range inputs {
		rec.Add(NewRecord(c.in, p.Decide(c.in, false), p.Version))
	}
	rec.Close()
	rec.Close() // twice is fine
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if n := bytes.Count(data, []byte("\n")); n != len(inputs) {
		t.Fatalf("%d lines, want %d", n, len(inputs))
	}
	rep, err := Replay(context.Background(), p, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != len(inputs) || rep.Unchanged != len(inputs) || rep.Malformed != 0 ||
		len(rep.NewlyAllowed)+len(rep.NewlyDenied)+len(rep.OtherChanges) != 0 {
		t.Fatalf("replay under the same policy: %+v", rep)
	}

	// Reopening appends.
	rec, err = OpenRecorder(path, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	rec.Add(NewRecord(inputs[0].in, p.Decide(inputs[0].in, false), p.Version))
	rec.Close()
	data, _ = os.ReadFile(path)
	if n := bytes.Count(data, []byte("\n")); n != len(inputs)+1 {
		t.Fatalf("after reopening: %d lines", n)
	}

	// A path under a regular file cannot be opened.
	if _, err := OpenRecorder(filepath.Join(path, "x.jsonl"), quietLog()); err == nil {
		t.Fatal("opened a file under a file")
	}

	t.Run("add after close", func(t *testing.T) {
		// A call decided while the gateway shuts down (after the recorder is
		// closed) must not crash it.
		r, err := OpenRecorder(filepath.Join(t.TempDir(), "late.jsonl"), quietLog())
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		panicked := func() (p any) {
			defer func() { p = recover() }()
			r.Add(Record{Effect: Allow})
			return nil
		}()
		if panicked != nil {
			t.Fatalf("Recorder.Add after Close panics: %v", panicked)
		}
	})
}

func TestReplay(t *testing.T) {
	p := mustPolicy(t, `
policy:
  tools:
    - {upstream: crm, tools: [get_invoice], labels: [customer_financial]}
    - {upstream: chat, tools: [post_message], labels: [communications]}
  organisation:
    deny:
      - {name: no-delete, tools: ["crm/delete_*"]}
      - {name: watch-export, tools: ["crm/export"], mode: monitor}
  bundles:
    b: {members: {teams: [support]}, allow: [{name: all}]}
  workflows:
    - {name: fin-comms, after: [customer_financial], calls: [communications], action: approve}
`)
	fin := []string{"customer_financial"}
	line := func(c *Caller, tg *Target, labels []string, before Effect, would bool) string {
		in := &Input{Caller: c, Target: tg, Args: json.RawMessage(`{}`), Request: Request{Time: at(10, 0), Method: "tools/call"},
			Session: Session{Labels: labels}}
		b, err := json.Marshal(NewRecord(in, Decision{Effect: before, WouldDeny: would}, "old"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	lines := []string{
		line(supportBot(), tt("crm", "delete_x"), nil, Allow, false), // 1: newly denied
		line(supportBot(), tt("crm", "get_x"), nil, Deny, false),     // 2: newly allowed
		"not json", // 3: malformed
		line(supportBot(), tt("chat", "post_message"), fin, Deny, false), // 4: deny -> approve
		"", // 5: skipped
		line(supportBot(), tt("crm", "export"), nil, Allow, false),        // 6: allow -> would_deny
		line(supportBot(), tt("chat", "post_message"), fin, Allow, false), // 7: allow -> approve: newly denied
		line(supportBot(), tt("crm", "get_y"), nil, Approve, false),       // 8: approve -> allow: newly allowed
		line(supportBot(), tt("crm", "get_z"), nil, Allow, false),         // 9: unchanged
		line(salesBot(), tt("crm", "get_z"), nil, Deny, false),            // 10: unchanged
		line(supportBot(), tt("crm", "export"), nil, Allow, true),         // 11: unchanged would_deny
		`{"effect":"allow","target":{"name":"x"}}`,                        // 12: malformed (no kind)
		`[1,2]`, // 13: malformed
		line(supportBot(), tt("crm", "get_invoice"), nil, Allow, true),                                                                                // 14: would_deny -> allow: other
		line(salesBot(), tt("crm", "delete_x"), nil, Deny, true),                                                                                      // 15: unchanged (deny)
		line(supportBot(), tt("chat", "post_message"), fin, Approve, false),                                                                           // 16: unchanged
		line(supportBot(), promptT("crm", "delete_x"), nil, Deny, false),                                                                              // 17: prompt, deny -> allow
		line(anonymous(), resourceT("crm", "crm://x"), nil, Deny, false),                                                                              // 18: unchanged
		line(supportBot(), tt("chat", "post_message"), nil, Approve, false),                                                                           // 19: approve -> allow
		line(supportBot(), tt("crm", "delete_x"), nil, Approve, false),                                                                                // 20: approve -> deny: other
		line(supportBot(), tt("crm", "delete_x"), nil, Allow, true),                                                                                   // 21: would_deny -> deny: newly denied
		strings.Replace(line(supportBot(), tt("crm", "get_z"), nil, Allow, false), `"args":{}`, `"args":{"big":"`+strings.Repeat("x", 1<<20)+`"}`, 1), // 22: a long line
	}
	rep, err := Replay(context.Background(), p, strings.NewReader(strings.Join(lines, "\n")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	linesOf := func(cs []Change) []int {
		var out []int
		for _, c := range cs {
			out = append(out, c.Line)
		}
		return out
	}
	if got := linesOf(rep.NewlyDenied); !slices.Equal(got, []int{1, 7, 21}) {
		t.Errorf("newly denied %v", got)
	}
	if got := linesOf(rep.NewlyAllowed); !slices.Equal(got, []int{2, 8, 17, 19}) {
		t.Errorf("newly allowed %v", got)
	}
	if got := linesOf(rep.OtherChanges); !slices.Equal(got, []int{4, 6, 14, 20}) {
		t.Errorf("other changes %v", got)
	}
	if rep.Records != 18 || rep.Unchanged != 7 || rep.Malformed != 3 || rep.FirstMalformed != "line 3: not a decision record" {
		t.Errorf("report: records %d unchanged %d malformed %d (%q)", rep.Records, rep.Unchanged, rep.Malformed, rep.FirstMalformed)
	}
	if c := rep.NewlyDenied[0]; c.Now.Rule != "no-delete" || c.Record.Target.Name != "delete_x" || c.Record.PolicyVersion != "old" {
		t.Errorf("change %+v", c)
	}
	if c := rep.OtherChanges[0]; c.Now.Effect != Approve || c.Now.Rule != "fin-comms" {
		t.Errorf("change %+v", c)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Replay(ctx, p, strings.NewReader(lines[0]+"\n")); err != context.Canceled {
		t.Errorf("cancelled: %v", err)
	}
	rep, err = Replay(context.Background(), p, strings.NewReader(""))
	if err != nil || rep.Records != 0 {
		t.Errorf("empty: %+v, %v", rep, err)
	}
	if _, err := Replay(context.Background(), p, strings.NewReader(strings.Repeat("x", 17<<20))); err == nil {
		t.Error("a line over 16 MiB is not an error")
	}
}
