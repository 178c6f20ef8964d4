// Package policytest builds the realistic policy the benchmarks measure:
// 50 bundles of 5 CEL-conditioned rules, 500 agents over 10 teams, 25
// upstreams of 20 tools (500 tools), an organisation-wide deny over every
// URL in the arguments and a workflow rule.
package policytest

import (
	"fmt"
	"strings"
)

// Sizes of the realistic set.
const (
	Upstreams        = 25
	ToolsPerUpstream = 20
	Teams            = 10
	Agents           = 500
	Bundles          = 50
)

// Verbs prefix the tool names: tool t of an upstream is
// Verbs[t%4]+"_thing"+t; "post" tools are not read-only.
var Verbs = []string{"get", "list", "post", "search"}

// ToolName is the name of tool t of any upstream.
func ToolName(t int) string { return fmt.Sprintf("%s_thing%d", Verbs[t%4], t) }

// Config returns the configuration file: upstreams up0…up24 (stdio, never
// started by the benchmarks), one virtual server "all" with every upstream
// (prefix "upN_"), teams team0…team9, and the policy.
func Config() string {
	var b strings.Builder
	b.WriteString("upstreams:\n")
	for u := 0; u < Upstreams; u++ {
		fmt.Fprintf(&b, "  up%d: {command: x}\n", u)
	}
	b.WriteString("servers:\n  all:\n    upstreams:\n")
	for u := 0; u < Upstreams; u++ {
		fmt.Fprintf(&b, "      - {upstream: up%d}\n", u)
	}
	b.WriteString("identity:\n  teams:\n")
	for t := 0; t < Teams; t++ {
		fmt.Fprintf(&b, "    - {name: team%d, servers: [all]}\n", t)
	}
	b.WriteString(`policy:
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
	for i := 0; i < Bundles; i++ {
		fmt.Fprintf(&b, `    b%d:
      version: 1
      members: {teams: [team%d]}
      allow:
        - {name: r1, tools: ["up%d/get_*"], class: read_only, when: 'request.time.getHours("Europe/Paris") >= 0'}
        - {name: r2, tools: ["up%d/list_*"], when: 'has(args.queue) && args.queue in agent.attributes.queues'}
        - {name: r3, tools: ["up%d/post_*"], when: 'agent.team == "team%d"'}
        - {name: r4, tools: ["up%d/*"], when: '"oncall" in user.groups'}
        - {name: r5, tools: ["up%d/search_*"], when: 'size(args) < 10'}
`, i, i%Teams, i%Upstreams, (i+1)%Upstreams, (i+2)%Upstreams, i%Teams, (i+3)%Upstreams, (i+4)%Upstreams)
	}
	return b.String()
}

// ToolJSON returns tool t of an upstream as a tools/list item of typical
// size (description, input schema, annotations).
func ToolJSON(t int) string {
	ro := t%4 != 2
	return fmt.Sprintf(`{"name":%q,"title":"Thing %d","description":"Does the %d-th thing with the records of the system; returns a JSON object with the result and its metadata.","inputSchema":{"type":"object","properties":{"id":{"type":"string","description":"record id"},"queue":{"type":"string"},"limit":{"type":"integer","minimum":1,"maximum":50}},"required":["id"]},"annotations":{"title":"Thing %d","readOnlyHint":%t,"destructiveHint":false,"openWorldHint":false}}`,
		ToolName(t), t, t, t, ro)
}
