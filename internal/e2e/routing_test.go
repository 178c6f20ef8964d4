package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// routingConfig is one virtual server over four stdio upstreams: three
// prefixed ones with filters and overrides, and an unprefixed one.
const routingConfig = `
upstreams:
  crm:     {command: "{{gatehouse}}", args: [demo-server, crm]}
  tickets: {command: "{{gatehouse}}", args: [demo-server, tickets]}
  chat:    {command: "{{gatehouse}}", args: [demo-server, chat]}
  fx:      {command: "{{fixture}}"}
servers:
  support:
    upstreams:
      - upstream: crm
        exclude: [get_invoice]
        tools:
          get_customer: {name: lookup_customer, description: "Look up one customer (gateway override)."}
          search_customers: {description: "Search customers (gateway override)."}
      - upstream: tickets
        include: ["list_*", "get_*"]
      - upstream: chat
        prefix: ""
      - upstream: fx
        prefix: "fx_"
        include: [test_simple_text, test_simple_prompt, test_prompt_with_arguments]
`

// eras are the two ways a go-sdk client talks to the gateway: a stateful
// session of the newest handshake revision, and the stateless revision.
var eras = []struct{ name, version string }{
	{"stateful_2025-11-25", v20251125},
	{"stateless_2026-07-28", ""},
}

func TestRoutingAcrossPrefixedUpstreams(t *testing.T) {
	h := startGateway(t, render(t, routingConfig))
	for _, era := range eras {
		t.Run(era.name, func(t *testing.T) {
			cs := connect(t, h.URL("support"), era.version, nil)

			t.Run("tools_list", func(t *testing.T) {
				res, err := cs.ListTools(ctxT(t), nil)
				if err != nil {
					t.Fatal(err)
				}
				got := map[string]string{}
				for _, tool := range res.Tools {
					if _, dup := got[tool.Name]; dup {
						t.Errorf("tool %q listed twice", tool.Name)
					}
					got[tool.Name] = tool.Description
				}
				want := []string{"crm_search_customers", "lookup_customer", "tickets_list_tickets", "tickets_get_ticket", "list_channels", "post_message", "fx_test_simple_text"}
				var names []string
				for n := range got {
					names = append(names, n)
				}
				slices.Sort(names)
				slices.Sort(want)
				if !slices.Equal(names, want) {
					t.Errorf("tools = %v, want %v", names, want)
				}
				for name, desc := range map[string]string{
					"lookup_customer":      "Look up one customer (gateway override).",
					"crm_search_customers": "Search customers (gateway override).",
				} {
					if got[name] != desc {
						t.Errorf("%s description = %q, want %q", name, got[name], desc)
					}
				}
				if !strings.Contains(got["tickets_get_ticket"], "TCK-5001") {
					t.Errorf("tickets_get_ticket description = %q, want the upstream's", got["tickets_get_ticket"])
				}
			})

			t.Run("calls_route_with_prefix_stripped", func(t *testing.T) {
				for _, tc := range []struct {
					tool string
					args map[string]any
					want string
				}{
					{"crm_search_customers", map[string]any{"query": "acme"}, "CUST-1001"},
					{"lookup_customer", map[string]any{"id": "CUST-1002"}, "Northwind Traders"},
					{"tickets_get_ticket", map[string]any{"id": "TCK-5001"}, "INV-24004 marked overdue"},
					{"tickets_list_tickets", map[string]any{"queue": "billing"}, "TCK-5011"},
					{"list_channels", map[string]any{}, "#ext-northwind"},
					{"post_message", map[string]any{"channel": "#support", "text": "hi from e2e"}, "Posted MSG-"},
					{"fx_test_simple_text", map[string]any{}, "This is a simple text response for testing."},
				} {
					t.Run(tc.tool, func(t *testing.T) {
						if got := callText(t, cs, tc.tool, tc.args); !strings.Contains(got, tc.want) {
							t.Errorf("%s = %q, want it to contain %q", tc.tool, got, tc.want)
						}
					})
				}
			})

			t.Run("hidden_tools_are_unknown", func(t *testing.T) {
				for _, name := range []string{
					"crm_get_invoice",       // excluded
					"tickets_create_ticket", // not included
					"crm_get_customer",      // renamed: only its new name works
					"get_invoice",           // no prefix: the unprefixed member lacks it
					"fx_test_image_content", // not included
					"nosuch_tool",
				} {
					t.Run(name, func(t *testing.T) {
						_, err := cs.CallTool(ctxT(t), &sdk.CallToolParams{Name: name, Arguments: map[string]any{"id": "INV-24001"}})
						we := rpcError(t, err)
						if we.Code != -32602 || !strings.Contains(we.Message, "Unknown tool") {
							t.Errorf("error = %d %q, want -32602 Unknown tool", we.Code, we.Message)
						}
					})
				}
			})

			t.Run("prompts", func(t *testing.T) {
				res, err := cs.ListPrompts(ctxT(t), nil)
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, p := range res.Prompts {
					names = append(names, p.Name)
				}
				slices.Sort(names)
				want := []string{"crm_summarize_account", "fx_test_prompt_with_arguments", "fx_test_simple_prompt"}
				if !slices.Equal(names, want) {
					t.Errorf("prompts = %v, want %v", names, want)
				}
				for _, tc := range []struct {
					name string
					args map[string]string
					want string
				}{
					{"crm_summarize_account", map[string]string{"customer_id": "CUST-1004"}, "Brightwater Health"},
					{"fx_test_prompt_with_arguments", map[string]string{"arg1": "one", "arg2": "two"}, "arg1='one', arg2='two'"},
					{"fx_test_simple_prompt", nil, "This is a simple prompt for testing."},
				} {
					got, err := cs.GetPrompt(ctxT(t), &sdk.GetPromptParams{Name: tc.name, Arguments: tc.args})
					if err != nil {
						t.Errorf("prompts/get %s: %v", tc.name, err)
						continue
					}
					var text string
					for _, m := range got.Messages {
						if tc, ok := m.Content.(*sdk.TextContent); ok {
							text += tc.Text
						}
					}
					if !strings.Contains(text, tc.want) {
						t.Errorf("prompts/get %s = %q, want %q", tc.name, text, tc.want)
					}
				}
				_, err = cs.GetPrompt(ctxT(t), &sdk.GetPromptParams{Name: "fx_test_prompt_with_image"})
				if we := rpcError(t, err); we.Code != -32602 || !strings.Contains(we.Message, "Unknown prompt") {
					t.Errorf("hidden prompt: error = %d %q, want -32602 Unknown prompt", we.Code, we.Message)
				}
			})

			t.Run("resources_by_uri", func(t *testing.T) {
				res, err := cs.ListResources(ctxT(t), nil)
				if err != nil {
					t.Fatal(err)
				}
				var uris []string
				for _, r := range res.Resources {
					uris = append(uris, r.URI)
				}
				for _, want := range []string{"crm://customers", "test://static-text", "test://watched-resource"} {
					if !slices.Contains(uris, want) {
						t.Errorf("resources = %v, missing %s", uris, want)
					}
				}
				tmpls, err := cs.ListResourceTemplates(ctxT(t), nil)
				if err != nil {
					t.Fatal(err)
				}
				var tnames []string
				for _, r := range tmpls.ResourceTemplates {
					tnames = append(tnames, r.URITemplate)
				}
				slices.Sort(tnames)
				if want := []string{"crm://customers/{id}", "test://template/{id}/data"}; !slices.Equal(tnames, want) {
					t.Errorf("templates = %v, want %v", tnames, want)
				}
				for _, tc := range []struct{ uri, want string }{
					{"crm://customers", "CUST-1010"},
					{"crm://customers/CUST-1003", "meilin.chen@harborpine.example"},
					{"test://static-text", "This is the content of the static text resource."},
					{"test://template/42/data", "Data for ID: 42"},
				} {
					got, err := cs.ReadResource(ctxT(t), &sdk.ReadResourceParams{URI: tc.uri})
					if err != nil {
						t.Errorf("resources/read %s: %v", tc.uri, err)
						continue
					}
					if len(got.Contents) != 1 || !strings.Contains(got.Contents[0].Text, tc.want) {
						t.Errorf("resources/read %s = %+v, want %q", tc.uri, got.Contents, tc.want)
					}
				}
			})

			t.Run("completion", func(t *testing.T) {
				for _, tc := range []struct {
					name string
					ref  *sdk.CompleteReference
					arg  sdk.CompleteParamsArgument
					want string // a value that must be offered ("" = any answer)
				}{
					{"prompt_prefixed", &sdk.CompleteReference{Type: "ref/prompt", Name: "crm_summarize_account"}, sdk.CompleteParamsArgument{Name: "customer_id", Value: "acme"}, "CUST-1001"},
					{"resource_template", &sdk.CompleteReference{Type: "ref/resource", URI: "crm://customers/{id}"}, sdk.CompleteParamsArgument{Name: "id", Value: "northwind"}, "CUST-1002"},
					{"fixture_prompt", &sdk.CompleteReference{Type: "ref/prompt", Name: "fx_test_prompt_with_arguments"}, sdk.CompleteParamsArgument{Name: "arg1", Value: "x"}, ""},
					{"fixture_template", &sdk.CompleteReference{Type: "ref/resource", URI: "test://template/{id}/data"}, sdk.CompleteParamsArgument{Name: "id", Value: "4"}, ""},
				} {
					t.Run(tc.name, func(t *testing.T) {
						got, err := cs.Complete(ctxT(t), &sdk.CompleteParams{Ref: tc.ref, Argument: tc.arg})
						if err != nil {
							t.Fatalf("completion/complete: %v", err)
						}
						if tc.want != "" && !slices.Contains(got.Completion.Values, tc.want) {
							t.Errorf("values = %v, want %s", got.Completion.Values, tc.want)
						}
					})
				}
			})
		})
	}
}

// TestPaginationThroughGateway follows nextCursor through the gateway over
// upstreams that page their lists, directly (a transparent server) and
// merged with others (the gateway's own cursor).
func TestPaginationThroughGateway(t *testing.T) {
	many := serveStreamable(t, manyToolsServer(250, 20))
	few := serveStreamable(t, manyToolsServer(37, 7))
	h := startGateway(t, render(t, `
upstreams:
  many: {url: "{{many}}"}
  few:  {url: "{{few}}"}
  crm:  {command: "{{gatehouse}}", args: [demo-server, crm]}
servers:
  direct:
    upstreams: [{upstream: many, prefix: ""}]
  merged:
    upstreams:
      - {upstream: many, prefix: "m_"}
      - {upstream: crm}
      - {upstream: few, prefix: "f_"}
`, "many", many, "few", few))

	want := func(server string) []string {
		var out []string
		add := func(prefix string, n int) {
			for i := range n {
				out = append(out, fmt.Sprintf("%st%03d", prefix, i))
			}
		}
		if server == "direct" {
			add("", 250)
		} else {
			add("m_", 250)
			add("f_", 37)
			out = append(out, "crm_search_customers", "crm_get_customer", "crm_get_invoice")
		}
		slices.Sort(out)
		return out
	}
	for _, era := range eras {
		for _, server := range []string{"direct", "merged"} {
			t.Run(era.name+"/"+server, func(t *testing.T) {
				cs := connect(t, h.URL(server), era.version, nil)
				var got []string
				cursor, pages := "", 0
				for {
					res, err := cs.ListTools(ctxT(t), &sdk.ListToolsParams{Cursor: cursor})
					if err != nil {
						t.Fatalf("tools/list page %d: %v", pages, err)
					}
					pages++
					for _, tool := range res.Tools {
						got = append(got, tool.Name)
					}
					if res.NextCursor == "" {
						break
					}
					if pages > 100 {
						t.Fatal("more than 100 pages: the cursor does not advance")
					}
					cursor = res.NextCursor
				}
				if pages < 2 {
					t.Errorf("got %d page(s), want the upstream's pagination to show through", pages)
				}
				seen := map[string]int{}
				for _, n := range got {
					seen[n]++
				}
				for n, c := range seen {
					if c > 1 {
						t.Errorf("tool %s listed %d times", n, c)
					}
				}
				slices.Sort(got)
				got = slices.Compact(got)
				if w := want(server); !slices.Equal(got, w) {
					t.Errorf("got %d distinct tools, want %d; missing %v, extra %v", len(got), len(w), diff(w, got), diff(got, w))
				}

				// The last page's tools are callable too.
				last := "t249"
				if server == "merged" {
					last = "m_t249"
				}
				if txt := callText(t, cs, last, nil); txt != "ran t249" {
					t.Errorf("%s = %q", last, txt)
				}

				for _, bad := range []string{"garbage", "gh1.bm90LWpzb24", "gh1.eyJ2IjoxLCJjIjp7Ijk5Ijoi"} {
					_, err := cs.ListTools(ctxT(t), &sdk.ListToolsParams{Cursor: bad})
					if we := rpcError(t, err); we.Code != -32602 {
						t.Errorf("cursor %q: error %d %q, want -32602", bad, we.Code, we.Message)
					}
				}
			})
		}
	}
}

// diff returns the elements of a missing from b (both sorted).
func diff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			out = append(out, x)
		}
	}
	if len(out) > 10 {
		out = append(out[:10], "…")
	}
	return out
}
