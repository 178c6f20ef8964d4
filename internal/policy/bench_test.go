package policy

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/config"
)

// realisticPolicy builds the benchmark set of the issue: 50 bundles of 5
// CEL-conditioned rules each (plus organisation rules), 500 agents spread
// over 10 teams, 25 upstreams of 20 tools (500 tools).
func realisticPolicy(b testing.TB) (*Policy, []*Caller, []*Target) {
	var cfg strings.Builder
	cfg.WriteString("upstreams:\n")
	for u := 0; u < 25; u++ {
		fmt.Fprintf(&cfg, "  up%d: {command: x}\n", u)
	}
	cfg.WriteString("servers:\n  all:\n    upstreams:\n")
	for u := 0; u < 25; u++ {
		fmt.Fprintf(&cfg, "      - {upstream: up%d}\n", u)
	}
	cfg.WriteString("identity:\n  teams:\n")
	for t := 0; t < 10; t++ {
		fmt.Fprintf(&cfg, "    - {name: team%d, servers: [all]}\n", t)
	}
	cfg.WriteString(`policy:
  tools:
    - {upstream: up0, tools: ["get_*"], labels: [customer_financial]}
    - {upstream: up1, tools: ["post_*"], labels: [communications]}
  organisation:
    deny:
      - name: no-foreign-links
        tools: ["*"]
        when: 'urls(args).exists(u, !(host(u) in ["example.com"]))'
  workflows:
    - {name: fin-to-comms, after: [customer_financial], calls: [communications], action: approve}
  bundles:
`)
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&cfg, `    b%d:
      version: 1
      members: {teams: [team%d]}
      allow:
        - {name: r1, tools: ["up%d/get_*"], class: read_only, when: 'request.time.getHours("Europe/Paris") >= 0'}
        - {name: r2, tools: ["up%d/list_*"], when: 'has(args.queue) && args.queue in agent.attributes.queues'}
        - {name: r3, tools: ["up%d/post_*"], when: 'agent.team == "team%d"'}
        - {name: r4, tools: ["up%d/*"], when: '"oncall" in user.groups'}
        - {name: r5, tools: ["up%d/search_*"], when: 'size(args) < 10'}
`, i, i%10, i%25, (i+1)%25, (i+2)%25, i%10, (i+3)%25, (i+4)%25)
	}
	pc := compileText(b, cfg.String())
	var callers []*Caller
	for a := 0; a < 500; a++ {
		callers = append(callers, agent(fmt.Sprintf("a%d", a), fmt.Sprintf("team%d", a%10), map[string]any{"queues": []any{"billing", "general"}}))
	}
	var targets []*Target
	verbs := []string{"get", "list", "post", "search"}
	for u := 0; u < 25; u++ {
		for t := 0; t < 20; t++ {
			name := fmt.Sprintf("%s_thing%d", verbs[t%4], t)
			ro := t%4 != 2
			targets = append(targets, &Target{Kind: KindTool, Server: "all", Upstream: fmt.Sprintf("up%d", u), Name: name,
				Visible: fmt.Sprintf("up%d_%s", u, name), Annotations: Annotations{ReadOnly: &ro}})
		}
	}
	return pc, callers, targets
}

// compileText compiles a whole configuration file's policy.
func compileText(tb testing.TB, text string) *Policy {
	tb.Helper()
	cfg, err := config.Load("bench.yaml", []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		tb.Fatalf("config: %v", err)
	}
	p, err := Compile(cfg)
	if err != nil {
		tb.Fatalf("compile: %v", err)
	}
	return p
}

// BenchmarkDecideCall is one tools/call decision with a realistic policy:
// the agent's scope (cached), a deny rule over every URL in the
// arguments, a workflow check and the matching allow rule's condition.
func BenchmarkDecideCall(b *testing.B) {
	p, callers, targets := realisticPolicy(b)
	args := json.RawMessage(`{"queue":"billing","subject":"Refund","body":"Customer asks for a refund, see https://example.com/kb/12"}`)
	now := time.Now()
	// up1's list_* tools are granted to team0 by b0's r2, which reads args.
	c := callers[0]
	t := targets[21]
	in := &Input{Caller: c, Target: t, Args: args, Request: Request{Time: now, Method: "tools/call"}}
	if d := p.Decide(in, false); d.Effect != Allow {
		b.Fatalf("setup: %+v", d)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		in := &Input{Caller: c, Target: t, Args: args, Request: Request{Time: now, Method: "tools/call"}}
		_ = p.Decide(in, false)
	}
}

// BenchmarkFilterList500 decides visibility of 500 tools for one caller,
// as tools/list filtering does.
func BenchmarkFilterList500(b *testing.B) {
	p, callers, targets := realisticPolicy(b)
	c := callers[3]
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		in := &Input{Caller: c, Target: &Target{}, Request: Request{Time: now, Method: "tools/call"}, List: true}
		n := 0
		for _, t := range targets {
			*in.Target = *t
			if p.Decide(in, false).Effect != Deny {
				n++
			}
		}
		if n == 0 {
			b.Fatal("nothing visible")
		}
	}
}
