package policy

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"gatehouse/internal/policy/policytest"
)

// realisticPolicy compiles the benchmark set of the issue (see
// policytest) and returns its 500 agents and 500 tools.
func realisticPolicy(b testing.TB) (*Policy, []*Caller, []*Target) {
	pc := compileText(b, policytest.Config())
	var callers []*Caller
	for a := 0; a < policytest.Agents; a++ {
		callers = append(callers, agent(fmt.Sprintf("a%d", a), fmt.Sprintf("team%d", a%policytest.Teams), map[string]any{"queues": []any{"billing", "general"}}))
	}
	var targets []*Target
	for u := 0; u < policytest.Upstreams; u++ {
		for t := 0; t < policytest.ToolsPerUpstream; t++ {
			name := policytest.ToolName(t)
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
	p, err := Compile(loadConfig(tb, text))
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
