package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// connect starts the named demo server and returns a client session talking
// to it over in-memory transports.
func connect(t *testing.T, name string) *mcp.ClientSession {
	t.Helper()
	ctx := t.Context()
	s, err := NewServer(name)
	if err != nil {
		t.Fatalf("NewServer(%q): %v", name, err)
	}
	st, ct := mcp.NewInMemoryTransports()
	ss, err := s.Connect(ctx, st, nil)
	if err != nil {
		t.Fatalf("server connect: %v", err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "demo-test", Version: "0"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatalf("client connect: %v", err)
	}
	t.Cleanup(func() {
		cs.Close()
		ss.Wait()
	})
	return cs
}

func callTool(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("CallTool(%s, %v): protocol error: %v", name, args, err)
	}
	return res
}

// text joins the text content of a tool result.
func text(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// structured decodes a tool result's structured content into T.
func structured[T any](t *testing.T, res *mcp.CallToolResult) T {
	t.Helper()
	var v T
	data, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatalf("marshal structured content: %v", err)
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode structured content %s: %v", data, err)
	}
	return v
}

func TestNames(t *testing.T) {
	if got, want := Names(), []string{"chat", "crm", "tickets"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
}

func TestToolsListedAndCallable(t *testing.T) {
	type call struct {
		args     map[string]any
		wantText string
	}
	tests := []struct {
		server   string
		tools    map[string]call
		readOnly []string
	}{
		{
			server: "crm",
			tools: map[string]call{
				"search_customers": {map[string]any{"query": "acme"}, "CUST-1001"},
				"get_customer":     {map[string]any{"id": "CUST-1004"}, "Brightwater Health"},
				"get_invoice":      {map[string]any{"id": "INV-24002"}, "accounts.payable@northwind.example"},
			},
			readOnly: []string{"search_customers", "get_customer", "get_invoice"},
		},
		{
			server: "tickets",
			tools: map[string]call{
				"list_tickets":  {map[string]any{"queue": "billing"}, "TCK-5001"},
				"get_ticket":    {map[string]any{"id": "tck-5003"}, "sophie.laurent@maisonverte.example"},
				"create_ticket": {map[string]any{"queue": "technical", "subject": "API 500s", "body": "Seeing 500s since 10:00."}, "TCK-5012"},
			},
			readOnly: []string{"list_tickets", "get_ticket"},
		},
		{
			server: "chat",
			tools: map[string]call{
				"list_channels": {map[string]any{}, "#eng-oncall"},
				"post_message":  {map[string]any{"channel": "support", "text": "On it."}, "#support"},
			},
			readOnly: []string{"list_channels"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.server, func(t *testing.T) {
			cs := connect(t, tt.server)
			if got, want := cs.InitializeResult().ServerInfo.Name, "gatehouse-demo-"+tt.server; got != want {
				t.Errorf("server name = %q, want %q", got, want)
			}
			list, err := cs.ListTools(t.Context(), nil)
			if err != nil {
				t.Fatalf("ListTools: %v", err)
			}
			var names []string
			for _, tool := range list.Tools {
				names = append(names, tool.Name)
				if tool.Title == "" || tool.Description == "" || tool.Annotations == nil || tool.Annotations.Title == "" {
					t.Errorf("tool %s lacks a title, description or annotations", tool.Name)
				}
				if tool.OutputSchema == nil {
					t.Errorf("tool %s has no output schema", tool.Name)
				}
				wantRO := slices.Contains(tt.readOnly, tool.Name)
				if tool.Annotations != nil && tool.Annotations.ReadOnlyHint != wantRO {
					t.Errorf("tool %s ReadOnlyHint = %v, want %v", tool.Name, tool.Annotations.ReadOnlyHint, wantRO)
				}
			}
			var want []string
			for name := range tt.tools {
				want = append(want, name)
			}
			slices.Sort(names)
			slices.Sort(want)
			if !slices.Equal(names, want) {
				t.Fatalf("tools = %v, want %v", names, want)
			}
			for name, c := range tt.tools {
				res := callTool(t, cs, name, c.args)
				if res.IsError {
					t.Errorf("%s: unexpected tool error: %s", name, text(res))
					continue
				}
				if res.StructuredContent == nil {
					t.Errorf("%s: no structured content", name)
				}
				if !strings.Contains(text(res), c.wantText) {
					t.Errorf("%s: text %q does not contain %q", name, text(res), c.wantText)
				}
			}
		})
	}
}

func TestWriteToolAnnotations(t *testing.T) {
	tests := []struct {
		server, tool string
		openWorld    bool
	}{
		{"tickets", "create_ticket", false},
		{"chat", "post_message", true},
	}
	for _, tt := range tests {
		t.Run(tt.tool, func(t *testing.T) {
			list, err := connect(t, tt.server).ListTools(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(list.Tools, func(tool *mcp.Tool) bool { return tool.Name == tt.tool })
			if i < 0 {
				t.Fatalf("tool %s not listed", tt.tool)
			}
			a := list.Tools[i].Annotations
			switch {
			case a.ReadOnlyHint:
				t.Error("ReadOnlyHint = true, want false")
			case a.DestructiveHint == nil || *a.DestructiveHint:
				t.Errorf("DestructiveHint = %v, want explicit false", a.DestructiveHint)
			case a.OpenWorldHint == nil || *a.OpenWorldHint != tt.openWorld:
				t.Errorf("OpenWorldHint = %v, want %v", a.OpenWorldHint, tt.openWorld)
			}
		})
	}
}

var (
	cardRE  = regexp.MustCompile(`\b\d(?:[ -]?\d){12,18}\b`)
	emailRE = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)
)

// luhn reports whether the digits of s (spaces and dashes ignored) pass the
// Luhn checksum.
func luhn(s string) bool {
	digits := strings.NewReplacer(" ", "", "-", "").Replace(s)
	if len(digits) < 13 || len(digits) > 19 {
		return false
	}
	sum := 0
	for i := range len(digits) {
		d := int(digits[len(digits)-1-i] - '0')
		if d < 0 || d > 9 {
			return false
		}
		if i%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

func TestLuhnHelper(t *testing.T) {
	for s, want := range map[string]bool{
		"4111 1111 1111 1111": true,
		"4111 1111 1111 1112": false,
		"378282246310005":     true,
		"1234":                false,
	} {
		if got := luhn(s); got != want {
			t.Errorf("luhn(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestInvoicesCarryCardAndEmail(t *testing.T) {
	cs := connect(t, "crm")
	issuers := map[string][]string{
		"Visa": {"4"}, "Mastercard": {"51", "52", "53", "54", "55"},
		"American Express": {"34", "37"}, "Discover": {"6011"},
	}
	var spaced, plain int
	for _, inv := range seedInvoices() {
		t.Run(inv.ID, func(t *testing.T) {
			res := callTool(t, cs, "get_invoice", map[string]any{"id": inv.ID})
			if res.IsError {
				t.Fatalf("tool error: %s", text(res))
			}
			body := text(res)
			cards := cardRE.FindAllString(body, -1)
			if !slices.ContainsFunc(cards, luhn) {
				t.Errorf("text has no Luhn-valid card number (candidates %q):\n%s", cards, body)
			}
			if !emailRE.MatchString(body) {
				t.Errorf("text has no email address:\n%s", body)
			}

			got := structured[Invoice](t, res)
			if !luhn(got.Payment.Number) {
				t.Errorf("structured card %q is not Luhn-valid", got.Payment.Number)
			}
			digits := strings.ReplaceAll(got.Payment.Number, " ", "")
			if !slices.ContainsFunc(issuers[got.Payment.Brand], func(p string) bool { return strings.HasPrefix(digits, p) }) {
				t.Errorf("card %q is not in the %s issuer range", got.Payment.Number, got.Payment.Brand)
			}
			if !emailRE.MatchString(got.BillingEmail) {
				t.Errorf("billing email %q is not an email address", got.BillingEmail)
			}
			if strings.Contains(got.Payment.Number, " ") {
				spaced++
			} else {
				plain++
			}
		})
	}
	if spaced == 0 || plain == 0 {
		t.Errorf("card formats not mixed: %d spaced, %d plain", spaced, plain)
	}
}

func TestCreateTicketRoundTrip(t *testing.T) {
	cs := connect(t, "tickets")
	created := callTool(t, cs, "create_ticket", map[string]any{
		"queue": "Billing", "subject": "Refund request", "priority": "high",
		"body": "Please refund the duplicate charge; contact ap@acmelogistics.example.", "customer_id": "cust-1001",
	})
	if created.IsError {
		t.Fatalf("create_ticket: %s", text(created))
	}
	tk := structured[Ticket](t, created)
	want := Ticket{
		ID: "TCK-5012", Queue: "billing", Status: "open", Priority: "high", Subject: "Refund request",
		Body: "Please refund the duplicate charge; contact ap@acmelogistics.example.", CustomerID: "CUST-1001",
		CreatedAt: tk.CreatedAt,
	}
	if tk != want {
		t.Errorf("created ticket = %+v, want %+v", tk, want)
	}
	if _, err := time.Parse(time.RFC3339, tk.CreatedAt); err != nil {
		t.Errorf("created_at %q: %v", tk.CreatedAt, err)
	}

	got := callTool(t, cs, "get_ticket", map[string]any{"id": tk.ID})
	if got.IsError {
		t.Fatalf("get_ticket(%s): %s", tk.ID, text(got))
	}
	if back := structured[Ticket](t, got); back != tk {
		t.Errorf("get_ticket = %+v, want %+v", back, tk)
	}

	list := structured[ListTicketsOutput](t, callTool(t, cs, "list_tickets", map[string]any{"queue": "billing", "status": "open"}))
	if !slices.ContainsFunc(list.Tickets, func(s TicketSummary) bool { return s.ID == tk.ID }) {
		t.Errorf("list_tickets(billing, open) does not include %s: %+v", tk.ID, list.Tickets)
	}
}

func TestCreateTicketConcurrent(t *testing.T) {
	cs := connect(t, "tickets")
	const n = 20
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "create_ticket", Arguments: map[string]any{
				"queue": "technical", "subject": fmt.Sprintf("load %d", i), "body": "x",
			}})
			if err != nil || res.IsError {
				t.Errorf("create_ticket %d: %v %v", i, err, res)
				return
			}
			ids <- structured[Ticket](t, res).ID
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("duplicate ticket id %s", id)
		}
		seen[id] = true
	}
	if len(seen) != n {
		t.Errorf("created %d distinct tickets, want %d", len(seen), n)
	}
}

func TestPostMessage(t *testing.T) {
	cs := connect(t, "chat")
	count := func(channel string) int {
		out := structured[ListChannelsOutput](t, callTool(t, cs, "list_channels", nil))
		for _, ch := range out.Channels {
			if ch.Name == channel {
				return ch.MessageCount
			}
		}
		t.Fatalf("channel %s not listed", channel)
		return 0
	}
	before := count("#ext-northwind")
	res := callTool(t, cs, "post_message", map[string]any{"channel": "#ext-northwind", "text": "Fix deployed for TCK-5007."})
	if res.IsError {
		t.Fatalf("post_message: %s", text(res))
	}
	out := structured[PostMessageOutput](t, res)
	if !out.External || out.Message.Channel != "#ext-northwind" || out.Message.Author != chatAuthor {
		t.Errorf("post_message output = %+v, want external message in #ext-northwind by %s", out, chatAuthor)
	}
	if !strings.Contains(text(res), "external") {
		t.Errorf("text does not warn about the external channel: %q", text(res))
	}
	if after := count("#ext-northwind"); after != before+1 {
		t.Errorf("message count %d -> %d, want +1", before, after)
	}

	channels := structured[ListChannelsOutput](t, callTool(t, cs, "list_channels", nil)).Channels
	var external []string
	for _, ch := range channels {
		if ch.External {
			external = append(external, ch.Name)
		}
	}
	if len(external) != 1 {
		t.Errorf("external channels = %v, want exactly one", external)
	}
}

func TestToolErrors(t *testing.T) {
	tests := []struct {
		server, tool string
		args         map[string]any
		wantText     string
	}{
		{"crm", "get_customer", map[string]any{"id": "CUST-9999"}, `customer "CUST-9999" not found`},
		{"crm", "get_invoice", map[string]any{"id": "INV-0"}, `invoice "INV-0" not found`},
		{"crm", "search_customers", map[string]any{"query": "x", "limit": -1}, "limit must not be negative"},
		{"tickets", "get_ticket", map[string]any{"id": "TCK-1"}, `ticket "TCK-1" not found`},
		{"tickets", "list_tickets", map[string]any{"queue": "sales"}, `invalid queue "sales"`},
		{"tickets", "create_ticket", map[string]any{"queue": "billing", "subject": "", "body": "b"}, "subject must not be empty"},
		{"tickets", "create_ticket", map[string]any{"queue": "billing", "subject": "s", "body": "b", "priority": "p0"}, `invalid priority "p0"`},
		{"tickets", "create_ticket", map[string]any{"queue": "billing", "subject": "s", "body": "b", "customer_id": "CUST-0"}, `unknown customer_id "CUST-0"`},
		{"chat", "post_message", map[string]any{"channel": "#random", "text": "hi"}, `unknown channel "#random"`},
		{"chat", "post_message", map[string]any{"channel": "#general", "text": "  "}, "text must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.server+"/"+tt.tool, func(t *testing.T) {
			res := callTool(t, connect(t, tt.server), tt.tool, tt.args)
			if !res.IsError {
				t.Fatalf("IsError = false, want true; text %q", text(res))
			}
			if !strings.Contains(text(res), tt.wantText) {
				t.Errorf("error text %q does not contain %q", text(res), tt.wantText)
			}
		})
	}
}

func TestSearchCustomers(t *testing.T) {
	cs := connect(t, "crm")
	tests := []struct {
		query   string
		limit   int
		wantIDs []string
		total   int
	}{
		{"acme", 0, []string{"CUST-1001"}, 1},
		{"emea enterprise", 0, []string{"CUST-1002", "CUST-1004"}, 2},
		{"Dana Whitfield", 0, []string{"CUST-1001", "CUST-1006", "CUST-1009"}, 3},
		{"", 0, []string{"CUST-1001", "CUST-1002", "CUST-1003", "CUST-1004", "CUST-1005"}, 10},
		{"", 2, []string{"CUST-1001", "CUST-1002"}, 10},
		{"no such thing", 0, nil, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q/%d", tt.query, tt.limit), func(t *testing.T) {
			args := map[string]any{"query": tt.query}
			if tt.limit != 0 {
				args["limit"] = tt.limit
			}
			out := structured[SearchCustomersOutput](t, callTool(t, cs, "search_customers", args))
			var ids []string
			for _, c := range out.Customers {
				ids = append(ids, c.ID)
			}
			if !slices.Equal(ids, tt.wantIDs) || out.Total != tt.total {
				t.Errorf("got %v (total %d), want %v (total %d)", ids, out.Total, tt.wantIDs, tt.total)
			}
		})
	}
}

func TestResources(t *testing.T) {
	cs := connect(t, "crm")
	ctx := t.Context()

	res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "crm://customers/CUST-1003"})
	if err != nil {
		t.Fatalf("read template resource: %v", err)
	}
	if len(res.Contents) != 1 || res.Contents[0].MIMEType != "application/json" {
		t.Fatalf("contents = %+v, want one application/json item", res.Contents)
	}
	var cu Customer
	if err := json.Unmarshal([]byte(res.Contents[0].Text), &cu); err != nil {
		t.Fatalf("decode customer: %v", err)
	}
	if cu.ID != "CUST-1003" || cu.Company != "Harbor & Pine Analytics" {
		t.Errorf("customer = %+v", cu)
	}

	res, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "crm://customers"})
	if err != nil {
		t.Fatalf("read static resource: %v", err)
	}
	var all []Customer
	if err := json.Unmarshal([]byte(res.Contents[0].Text), &all); err != nil {
		t.Fatalf("decode customers: %v", err)
	}
	if len(all) != 10 {
		t.Errorf("got %d customers, want 10", len(all))
	}

	if _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "crm://customers/CUST-0000"}); err == nil {
		t.Error("reading an unknown customer succeeded, want resource-not-found error")
	}

	templates, err := cs.ListResourceTemplates(ctx, nil)
	if err != nil || len(templates.ResourceTemplates) != 1 || templates.ResourceTemplates[0].URITemplate != "crm://customers/{id}" {
		t.Errorf("ListResourceTemplates = %+v, %v", templates, err)
	}
}

func TestPrompt(t *testing.T) {
	cs := connect(t, "crm")
	res, err := cs.GetPrompt(t.Context(), &mcp.GetPromptParams{
		Name: "summarize_account", Arguments: map[string]string{"customer_id": "CUST-1004"},
	})
	if err != nil {
		t.Fatalf("GetPrompt: %v", err)
	}
	if len(res.Messages) != 1 {
		t.Fatalf("got %d messages, want 1", len(res.Messages))
	}
	tc, ok := res.Messages[0].Content.(*mcp.TextContent)
	if !ok {
		t.Fatalf("content is %T, want text", res.Messages[0].Content)
	}
	for _, want := range []string{"Brightwater Health", "INV-24004", "overdue", "Elena Petrova"} {
		if !strings.Contains(tc.Text, want) {
			t.Errorf("prompt text lacks %q:\n%s", want, tc.Text)
		}
	}

	if _, err := cs.GetPrompt(t.Context(), &mcp.GetPromptParams{
		Name: "summarize_account", Arguments: map[string]string{"customer_id": "CUST-0"},
	}); err == nil {
		t.Error("GetPrompt with an unknown customer succeeded, want error")
	}
}

func TestCompletion(t *testing.T) {
	cs := connect(t, "crm")
	promptRef := &mcp.CompleteReference{Type: "ref/prompt", Name: "summarize_account"}
	templateRef := &mcp.CompleteReference{Type: "ref/resource", URI: "crm://customers/{id}"}
	tests := []struct {
		name  string
		ref   *mcp.CompleteReference
		arg   string
		value string
		want  []string
	}{
		{"prompt id prefix", promptRef, "customer_id", "CUST-100", []string{
			"CUST-1001", "CUST-1002", "CUST-1003", "CUST-1004", "CUST-1005", "CUST-1006", "CUST-1007", "CUST-1008", "CUST-1009"}},
		{"prompt lower case", promptRef, "customer_id", "cust-101", []string{"CUST-1010"}},
		{"prompt company", promptRef, "customer_id", "kitsune", []string{"CUST-1008"}},
		{"template id", templateRef, "id", "CUST-1003", []string{"CUST-1003"}},
		{"template no match", templateRef, "id", "zzz", []string{}},
		{"other argument", promptRef, "tone", "", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := cs.Complete(t.Context(), &mcp.CompleteParams{
				Ref: tt.ref, Argument: mcp.CompleteParamsArgument{Name: tt.arg, Value: tt.value},
			})
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			if !slices.Equal(res.Completion.Values, tt.want) {
				t.Errorf("values = %v, want %v", res.Completion.Values, tt.want)
			}
		})
	}
}

func TestUnknownServer(t *testing.T) {
	for _, name := range []string{"", "CRM", "billing"} {
		if _, err := NewServer(name); err == nil || !strings.Contains(err.Error(), "unknown demo server") {
			t.Errorf("NewServer(%q) error = %v, want unknown demo server", name, err)
		}
		_, st := mcp.NewInMemoryTransports()
		if err := Run(t.Context(), name, st); err == nil {
			t.Errorf("Run(%q) succeeded, want error", name)
		}
	}
}

// TestRunAnswersBeforeEOF pipes requests and closes input at once, as
// `printf ... | gatehouse demo-server crm` does, and checks every call is
// still answered.
func TestRunAnswersBeforeEOF(t *testing.T) {
	input := strings.Join([]string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_invoice","arguments":{"id":"INV-24001"}}}`,
	}, "\n") + "\n"
	for i := range 10 {
		outR, outW := io.Pipe()
		done := make(chan error, 1)
		go func() {
			done <- Run(t.Context(), "crm", &mcp.IOTransport{Reader: io.NopCloser(strings.NewReader(input)), Writer: outW})
			outW.Close()
		}()
		ids := map[float64]bool{}
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var msg struct {
				ID     float64         `json:"id"`
				Result json.RawMessage `json:"result"`
			}
			if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
				t.Fatalf("run %d: bad output line %q: %v", i, sc.Text(), err)
			}
			if msg.Result != nil {
				ids[msg.ID] = true
			}
		}
		if err := <-done; err != nil {
			t.Errorf("run %d: Run: %v", i, err)
		}
		if len(ids) != 3 {
			t.Fatalf("run %d: answered ids %v, want 1, 2 and 3", i, ids)
		}
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	st, ct := mcp.NewInMemoryTransports()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, "chat", st) }()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "0"}, nil).Connect(t.Context(), ct, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer cs.Close()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Run returned nil after cancel, want context error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// TestStateIsPerServer checks that two servers never share mutable state.
func TestStateIsPerServer(t *testing.T) {
	a, b := connect(t, "tickets"), connect(t, "tickets")
	callTool(t, a, "create_ticket", map[string]any{"queue": "onboarding", "subject": "s", "body": "b"})
	if res := callTool(t, b, "get_ticket", map[string]any{"id": "TCK-5012"}); !res.IsError {
		t.Error("ticket created on one server is visible on another")
	}
}
