package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"gatehouse/internal/sse"
)

const demoConfig = `
upstreams:
  crm:     {command: "{{gatehouse}}", args: [demo-server, crm]}
  tickets: {command: "{{gatehouse}}", args: [demo-server, tickets]}
servers:
  support:
    upstreams: [{upstream: crm}, {upstream: tickets}]
`

// TestLegacySSEDownstream connects go-sdk clients with the 2024-11-05
// HTTP+SSE transport, at /mcp/{name}/sse and at /mcp/{name} (a GET with
// Accept: text/event-stream).
func TestLegacySSEDownstream(t *testing.T) {
	h := startGateway(t, render(t, demoConfig))
	for _, ep := range []string{"/sse", ""} {
		for _, version := range []string{v20241105, ""} {
			name := "endpoint_" + strings.TrimPrefix(ep, "/") + "_" + version
			if version == "" {
				name += "sdk_default"
			}
			t.Run(name, func(t *testing.T) {
				cs := connectTransport(t, &sdk.SSEClientTransport{Endpoint: h.URL("support") + ep}, version, nil)
				if got := cs.InitializeResult(); got == nil || got.ProtocolVersion == "" {
					t.Fatalf("initialize result = %+v", got)
				}
				if m := missingTools(t, cs, "crm_get_customer", "tickets_list_tickets"); len(m) > 0 {
					t.Errorf("tools/list misses %v", m)
				}
				if got := callText(t, cs, "crm_get_invoice", map[string]any{"id": "INV-24001"}); !strings.Contains(got, "Invoice INV-24001") {
					t.Errorf("crm_get_invoice = %q", got)
				}
				if got := callText(t, cs, "tickets_get_ticket", map[string]any{"id": "TCK-5004"}); !strings.Contains(got, "SSO login loop") {
					t.Errorf("tickets_get_ticket = %q", got)
				}
			})
		}
	}
}

// TestSSEOnlyUpstream puts an upstream that only speaks the 2024-11-05
// HTTP+SSE transport behind the gateway, found by fallback (auto) and
// configured explicitly (sse).
func TestSSEOnlyUpstream(t *testing.T) {
	url := serveLegacySSE(t, echoServer("legacy"))
	for _, transport := range []string{"auto", "sse"} {
		t.Run(transport, func(t *testing.T) {
			h := startGateway(t, render(t, `
upstreams:
  legacy: {url: "{{url}}", transport: {{transport}}}
  crm:    {command: "{{gatehouse}}", args: [demo-server, crm]}
servers:
  solo:
    upstreams: [{upstream: legacy, prefix: ""}]
  mixed:
    upstreams: [{upstream: legacy}, {upstream: crm}]
`, "url", url, "transport", transport))
			for _, era := range eras {
				for _, tc := range []struct{ server, tool string }{{"solo", "hello"}, {"mixed", "legacy_hello"}} {
					t.Run(era.name+"/"+tc.server, func(t *testing.T) {
						cs := connect(t, h.URL(tc.server), era.version, nil)
						if m := missingTools(t, cs, tc.tool); len(m) > 0 {
							t.Fatalf("tools/list misses %v", m)
						}
						if got := callText(t, cs, tc.tool, map[string]any{"text": "e2e"}); got != "legacy says hello e2e" {
							t.Errorf("%s = %q", tc.tool, got)
						}
					})
				}
			}
		})
	}
}

// TestBatch2025_03_26 sends a JSON-RPC batch in a 2025-03-26 session: the
// responses come back as one JSON array.
func TestBatch2025_03_26(t *testing.T) {
	h := startGateway(t, render(t, demoConfig))
	c := newRaw(t, h.URL("support"))
	c.initialize(v20250326)
	resp := c.post(`[
		{"jsonrpc":"2.0","id":1,"method":"tools/list"},
		{"jsonrpc":"2.0","id":"two","method":"tools/call","params":{"name":"crm_get_customer","arguments":{"id":"CUST-1006"}}},
		{"jsonrpc":"2.0","method":"notifications/roots/list_changed"},
		{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"crm_nope","arguments":{}}}
	]`)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("batch: HTTP %d %s, want 200 application/json", resp.StatusCode, ct)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var arr []json.RawMessage
	if err := json.Unmarshal(body, &arr); err != nil {
		t.Fatalf("batch response is not a JSON array: %v: %s", err, body)
	}
	byID := map[string]wireMsg{}
	for _, raw := range arr {
		m := decodeMsg(t, raw)
		byID[string(m.ID)] = m
	}
	if len(arr) != 3 || len(byID) != 3 {
		t.Fatalf("batch answered %d messages, want 3 (one per request): %s", len(arr), body)
	}
	if m := byID["1"]; m.Result == nil || !strings.Contains(string(m.Result), "tickets_list_tickets") {
		t.Errorf("tools/list in batch = %s", m)
	}
	if m := byID[`"two"`]; m.Result == nil || !strings.Contains(string(m.Result), "Copperline") {
		t.Errorf("tools/call in batch = %s", m)
	}
	if m := byID["3"]; m.Error == nil || m.Error.Code != -32602 {
		t.Errorf("unknown tool in batch = %s, want -32602", m)
	}

	// Batches belong to 2025-03-26 only.
	c2 := newRaw(t, h.URL("support"))
	c2.initialize(v20251125)
	resp = c2.post(`[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("batch in a 2025-11-25 session: HTTP %d, want 400", resp.StatusCode)
	}
}

// recorder keeps every response body a client received, to check wire
// details the SDK hides.
type recorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	msgs [][]byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &recordedBody{rc: resp.Body, r: r, sse: strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")}
	return resp, nil
}

type recordedBody struct {
	rc   io.ReadCloser
	r    *recorder
	sse  bool
	buf  bytes.Buffer
	done bool
}

func (b *recordedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.buf.Write(p[:n])
	if b.sse {
		// Record each complete event as it arrives: streams may stay open.
		for {
			data := b.buf.Bytes()
			i := bytes.Index(data, []byte("\n\n"))
			if i < 0 {
				break
			}
			ev := data[:i+2]
			rd := sse.NewReader(bytes.NewReader(ev), 1<<24)
			if e, err := rd.Next(); err == nil && !e.Empty() {
				b.r.add(bytes.Clone(e.Data))
			}
			b.buf.Next(i + 2)
		}
	} else if err != nil && !b.done {
		b.done = true
		if body := bytes.TrimSpace(b.buf.Bytes()); len(body) > 0 {
			b.r.add(bytes.Clone(body))
		}
	}
	return n, err
}

func (b *recordedBody) Close() error { return b.rc.Close() }

func (r *recorder) add(m []byte) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

// results returns every JSON-RPC result object received.
func (r *recorder) results() []json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []json.RawMessage
	for _, b := range r.msgs {
		var m struct {
			Result json.RawMessage `json:"result"`
		}
		if json.Unmarshal(b, &m) == nil && m.Result != nil {
			out = append(out, m.Result)
		}
	}
	return out
}

// TestModernClient connects the go-sdk v1.8.0 client with its default
// settings: it probes server/discover and speaks the stateless 2026-07-28
// revision. Tools, resources, prompts and completion work in front of
// upstreams that speak it (the demo servers) and upstreams that do not (a
// legacy-only raw server over stdio and HTTP, and go-sdk stateful servers),
// and every result carries resultType.
func TestModernClient(t *testing.T) {
	raw := newRawHTTP(t)
	sdkLegacy := serveStreamable(t, echoServer("stateful"))
	h := startGateway(t, render(t, `
upstreams:
  crm:      {command: "{{gatehouse}}", args: [demo-server, crm]}
  tickets:  {command: "{{gatehouse}}", args: [demo-server, tickets]}
  rawstdio: {command: "{{self}}", env: {E2E_ROLE: raw-stdio}}
  rawhttp:  {url: "{{raw}}"}
  stateful: {url: "{{sdk}}"}
servers:
  demo:
    upstreams: [{upstream: crm}, {upstream: tickets}]
  legacy_stdio:
    upstreams: [{upstream: rawstdio, prefix: ""}]
  legacy_http:
    upstreams: [{upstream: rawhttp, prefix: ""}]
  mixed:
    upstreams: [{upstream: crm}, {upstream: rawhttp, prefix: "r_"}, {upstream: stateful, prefix: "s_"}]
`, "raw", raw.URL(), "sdk", sdkLegacy))

	type check struct {
		tool       string
		args       map[string]any
		wantText   string
		prompt     string
		promptArgs map[string]string
		wantPrompt string
		resource   string
		wantRes    string
		complete   *sdk.CompleteReference
		argName    string
		wantValue  string
	}
	crm := check{
		tool: "crm_get_customer", args: map[string]any{"id": "CUST-1007"}, wantText: "Vento Sul",
		prompt: "crm_summarize_account", promptArgs: map[string]string{"customer_id": "CUST-1007"}, wantPrompt: "Vento Sul",
		resource: "crm://customers/CUST-1007", wantRes: "ana.souza@ventosul.example",
		complete: &sdk.CompleteReference{Type: "ref/prompt", Name: "crm_summarize_account"}, argName: "customer_id", wantValue: "CUST-1007",
	}
	rawCheck := func(prefix string) check {
		return check{
			tool: prefix + "echo", args: map[string]any{"k": "v"}, wantText: `"k":"v"`,
			prompt: prefix + "greet", promptArgs: map[string]string{"who": "modern"}, wantPrompt: "hello modern",
			resource: "raw://items/9", wantRes: "content of raw://items/9",
			complete: &sdk.CompleteReference{Type: "ref/prompt", Name: prefix + "greet"}, argName: "who", wantValue: "alpha",
		}
	}
	for _, tc := range []struct {
		server string
		checks []check
	}{
		{"demo", []check{crm, {tool: "tickets_get_ticket", args: map[string]any{"id": "TCK-5006"}, wantText: "vessel trackers"}}},
		{"legacy_stdio", []check{rawCheck("")}},
		{"legacy_http", []check{rawCheck("")}},
		{"mixed", []check{crm, rawCheck("r_"), {tool: "s_hello", args: map[string]any{"text": "x"}, wantText: "stateful says hello x"}}},
	} {
		t.Run(tc.server, func(t *testing.T) {
			rec := &recorder{base: http.DefaultTransport}
			cs := connectTransport(t, &sdk.StreamableClientTransport{Endpoint: h.URL(tc.server), HTTPClient: &http.Client{Transport: rec}, MaxRetries: -1}, "", nil)
			if v := cs.InitializeResult().ProtocolVersion; v != v20260728 {
				t.Fatalf("negotiated %q, want the stateless %s", v, v20260728)
			}
			names := toolNames(t, cs)
			for _, c := range tc.checks {
				if !slices.Contains(names, c.tool) {
					t.Errorf("tools/list = %v, misses %s", names, c.tool)
				}
				if got := callText(t, cs, c.tool, c.args); !strings.Contains(got, c.wantText) {
					t.Errorf("%s = %q, want %q", c.tool, got, c.wantText)
				}
				if c.prompt != "" {
					pr, err := cs.GetPrompt(ctxT(t), &sdk.GetPromptParams{Name: c.prompt, Arguments: c.promptArgs})
					if err != nil {
						t.Errorf("prompts/get %s: %v", c.prompt, err)
					} else if len(pr.Messages) == 0 || !strings.Contains(pr.Messages[0].Content.(*sdk.TextContent).Text, c.wantPrompt) {
						t.Errorf("prompts/get %s = %+v", c.prompt, pr.Messages)
					}
				}
				if c.resource != "" {
					rr, err := cs.ReadResource(ctxT(t), &sdk.ReadResourceParams{URI: c.resource})
					if err != nil {
						t.Errorf("resources/read %s: %v", c.resource, err)
					} else if len(rr.Contents) == 0 || !strings.Contains(rr.Contents[0].Text, c.wantRes) {
						t.Errorf("resources/read %s = %+v", c.resource, rr.Contents)
					}
				}
				if c.complete != nil {
					cr, err := cs.Complete(ctxT(t), &sdk.CompleteParams{Ref: c.complete, Argument: sdk.CompleteParamsArgument{Name: c.argName, Value: "a"}})
					if err != nil {
						t.Errorf("completion/complete %s: %v", c.complete.Name, err)
					} else if !slices.Contains(cr.Completion.Values, c.wantValue) {
						t.Errorf("completion/complete %s = %v, want %s", c.complete.Name, cr.Completion.Values, c.wantValue)
					}
				}
			}
			if _, err := cs.ListPrompts(ctxT(t), nil); err != nil {
				t.Errorf("prompts/list: %v", err)
			}
			if _, err := cs.ListResources(ctxT(t), nil); err != nil {
				t.Errorf("resources/list: %v", err)
			}
			results := rec.results()
			if len(results) < 5 {
				t.Fatalf("recorded %d results, want the whole conversation", len(results))
			}
			for _, res := range results {
				var r struct {
					ResultType string `json:"resultType"`
				}
				if err := json.Unmarshal(res, &r); err != nil || r.ResultType == "" {
					t.Errorf("result without resultType: %.300s", res)
				}
			}
		})
	}
}

// regionArgs is the input of a tool whose region argument is mirrored in
// an Mcp-Param-Region header (x-mcp-header) in the 2026-07-28 revision.
type regionArgs struct {
	Region string `json:"region"`
}

// modernWebServer is a go-sdk server with a tool, a header-mirrored tool,
// a prompt and a resource.
func modernWebServer() *sdk.Server {
	s := echoServer("web")
	sdk.AddTool(s, &sdk.Tool{
		Name:        "regional",
		Description: "answers with its region",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"}},"required":["region"]}`),
	}, func(_ context.Context, _ *sdk.CallToolRequest, in regionArgs) (*sdk.CallToolResult, any, error) {
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "region " + in.Region}}}, nil, nil
	})
	s.AddPrompt(&sdk.Prompt{Name: "brief", Arguments: []*sdk.PromptArgument{{Name: "topic"}}}, func(_ context.Context, req *sdk.GetPromptRequest) (*sdk.GetPromptResult, error) {
		return &sdk.GetPromptResult{Messages: []*sdk.PromptMessage{{Role: "user", Content: &sdk.TextContent{Text: "brief on " + req.Params.Arguments["topic"]}}}}, nil
	})
	s.AddResource(&sdk.Resource{URI: "web://doc", Name: "doc"}, func(_ context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
		return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: req.Params.URI, Text: "the web doc"}}}, nil
	})
	return s
}

// TestStatelessHTTPUpstream puts a go-sdk server that speaks 2026-07-28
// over stateless HTTP behind the gateway, alone and merged, for clients of
// both eras.
func TestStatelessHTTPUpstream(t *testing.T) {
	url := serveStateless(t, modernWebServer())
	h := startGateway(t, render(t, `
upstreams:
  web: {url: "{{url}}"}
  crm: {command: "{{gatehouse}}", args: [demo-server, crm]}
servers:
  solo:
    upstreams: [{upstream: web, prefix: ""}]
  mixed:
    upstreams: [{upstream: crm}, {upstream: web}]
`, "url", url))
	for _, era := range eras {
		for _, server := range []string{"solo", "mixed"} {
			t.Run(era.name+"/"+server, func(t *testing.T) {
				prefix := ""
				if server == "mixed" {
					prefix = "web_"
				}
				cs := connect(t, h.URL(server), era.version, nil)
				if m := missingTools(t, cs, prefix+"hello", prefix+"regional"); len(m) > 0 {
					t.Fatalf("tools/list misses %v", m)
				}
				if got := callText(t, cs, prefix+"hello", map[string]any{"text": "x"}); got != "web says hello x" {
					t.Errorf("hello = %q", got)
				}
				if got := callText(t, cs, prefix+"regional", map[string]any{"region": "eu-west-1"}); got != "region eu-west-1" {
					t.Errorf("regional = %q", got)
				}
				pr, err := cs.GetPrompt(ctxT(t), &sdk.GetPromptParams{Name: prefix + "brief", Arguments: map[string]string{"topic": "e2e"}})
				if err != nil {
					t.Errorf("prompts/get: %v", err)
				} else if txt := pr.Messages[0].Content.(*sdk.TextContent).Text; txt != "brief on e2e" {
					t.Errorf("prompts/get = %q", txt)
				}
				rr, err := cs.ReadResource(ctxT(t), &sdk.ReadResourceParams{URI: "web://doc"})
				if err != nil {
					t.Errorf("resources/read: %v", err)
				} else if rr.Contents[0].Text != "the web doc" {
					t.Errorf("resources/read = %+v", rr.Contents[0])
				}
			})
		}
	}
}

// TestStatelessParamHeaders checks Mcp-Param-* headers of a 2026-07-28
// tools/call against the tool's x-mcp-header annotation, behind a prefix.
func TestStatelessParamHeaders(t *testing.T) {
	url := serveStateless(t, modernWebServer())
	h := startGateway(t, render(t, `
upstreams:
  web: {url: "{{url}}"}
  crm: {command: "{{gatehouse}}", args: [demo-server, crm]}
servers:
  mixed:
    upstreams: [{upstream: crm}, {upstream: web}]
`, "url", url))
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"web_regional","arguments":{"region":"eu-west-1"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`
	for _, tc := range []struct {
		name   string
		header string // Mcp-Param-Region ("" = absent)
		status int
		code   int
	}{
		{"matching", "eu-west-1", 200, 0},
		{"missing", "", 400, -32020},
		{"mismatched", "us-east-1", 400, -32020},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newRaw(t, h.URL("mixed"))
			c.version = v20260728
			req := c.request(ctxT(t), http.MethodPost, body)
			req.Header.Set("Mcp-Method", "tools/call")
			req.Header.Set("Mcp-Name", "web_regional")
			if tc.header != "" {
				req.Header.Set("Mcp-Param-Region", tc.header)
			}
			resp := c.do(req)
			msgs := readMessages(t, resp)
			if resp.StatusCode != tc.status || len(msgs) == 0 {
				t.Fatalf("HTTP %d %v, want %d", resp.StatusCode, msgs, tc.status)
			}
			final := msgs[len(msgs)-1]
			if tc.code == 0 {
				if final.Error != nil || !strings.Contains(string(final.Result), "region eu-west-1") {
					t.Errorf("response = %s", final)
				}
				return
			}
			if final.Error == nil || final.Error.Code != tc.code {
				t.Errorf("response = %s, want error %d", final, tc.code)
			}
		})
	}
}

// TestUpstreamClosesResponseStream has an HTTP upstream close the SSE
// stream of a tool call before answering (SEP-1699, as the conformance
// fixture's test_reconnection does): the gateway resumes it with
// Last-Event-ID and the client gets the result.
func TestUpstreamClosesResponseStream(t *testing.T) {
	s := sdk.NewServer(&sdk.Implementation{Name: "reconnect", Version: "1"}, nil)
	sdk.AddTool(s, &sdk.Tool{Name: "reconnect", Description: "closes its stream mid-call"}, func(ctx context.Context, req *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, any, error) {
		_ = req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{ProgressToken: req.Params.GetProgressToken(), Progress: 1, Total: 2})
		if req.Extra != nil && req.Extra.CloseSSEStream != nil {
			req.Extra.CloseSSEStream(sdk.CloseSSEStreamArgs{RetryAfter: 10 * time.Millisecond})
		}
		time.Sleep(100 * time.Millisecond)
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "survived the reconnection"}}}, nil, nil
	})
	hh := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, &sdk.StreamableHTTPOptions{EventStore: sdk.NewMemoryEventStore(nil)})
	srv := httptest.NewServer(hh)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	h := startGateway(t, render(t, `
upstreams:
  up: {url: "{{url}}"}
servers:
  solo:
    upstreams: [{upstream: up, prefix: ""}]
  merged:
    upstreams: [{upstream: up}]
`, "url", srv.URL))
	for _, era := range eras {
		for _, server := range []string{"solo", "merged"} {
			t.Run(era.name+"/"+server, func(t *testing.T) {
				tool := "reconnect"
				if server == "merged" {
					tool = "up_reconnect"
				}
				cs := connect(t, h.URL(server), era.version, nil)
				res, err := cs.CallTool(ctxT(t), &sdk.CallToolParams{Name: tool, Arguments: map[string]any{}, Meta: sdk.Meta{"progressToken": "r-1"}})
				if err != nil {
					t.Fatal(err)
				}
				if got := contentText(res.Content); got != "survived the reconnection" {
					t.Errorf("%s = %q", tool, got)
				}
			})
		}
	}
}
