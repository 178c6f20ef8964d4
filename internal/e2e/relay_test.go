package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// answeringClient declares sampling and elicitation and answers them.
func answeringClient() *sdk.ClientOptions {
	return &sdk.ClientOptions{
		CreateMessageHandler: func(_ context.Context, req *sdk.CreateMessageRequest) (*sdk.CreateMessageResult, error) {
			prompt := ""
			if len(req.Params.Messages) > 0 {
				if tc, ok := req.Params.Messages[0].Content.(*sdk.TextContent); ok {
					prompt = tc.Text
				}
			}
			return &sdk.CreateMessageResult{Role: "assistant", Model: "e2e-model", Content: &sdk.TextContent{Text: "pong to " + prompt}}, nil
		},
		ElicitationHandler: func(_ context.Context, req *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
			return &sdk.ElicitResult{Action: "accept", Content: map[string]any{"username": "e2e-user"}}, nil
		},
	}
}

// TestServerToClientRequests relays sampling, elicitation and roots/list
// from upstreams to the client that caused them, over a shared stdio
// upstream (the conformance fixture) and a per-session HTTP upstream.
func TestServerToClientRequests(t *testing.T) {
	p := newProbe()
	url := serveStreamable(t, p.s)
	h := startGateway(t, render(t, `
upstreams:
  fx:    {command: "{{fixture}}"}
  probe: {url: "{{url}}"}
servers:
  fx:
    upstreams: [{upstream: fx, prefix: ""}]
  probe:
    upstreams: [{upstream: probe, prefix: ""}]
  both:
    upstreams: [{upstream: fx}, {upstream: probe}]
`, "url", url))

	type call struct {
		server, tool string
		args         map[string]any
		want         string
	}
	for _, c := range []call{
		{"fx", "test_sampling", map[string]any{"prompt": "ping"}, "LLM response: pong to ping"},
		{"fx", "test_elicitation", map[string]any{"message": "who are you?"}, "action=accept"},
		{"fx", "test_elicitation", map[string]any{"message": "who are you?"}, "e2e-user"},
		{"probe", "sample", map[string]any{"text": "ping"}, "LLM response: pong to ping"},
		{"both", "fx_test_sampling", map[string]any{"prompt": "both"}, "LLM response: pong to both"},
		{"both", "probe_sample", map[string]any{"text": "both"}, "LLM response: pong to both"},
	} {
		t.Run("answered/"+c.server+"/"+c.tool, func(t *testing.T) {
			cs := connect(t, h.URL(c.server), v20251125, answeringClient())
			if got := callText(t, cs, c.tool, c.args); !strings.Contains(got, c.want) {
				t.Errorf("%s = %q, want %q", c.tool, got, c.want)
			}
		})
	}

	// A client that did not declare sampling or elicitation: the gateway
	// refuses to relay, so the tool fails at once instead of waiting.
	for _, c := range []call{
		{"fx", "test_sampling", map[string]any{"prompt": "ping"}, "sampling failed"},
		{"fx", "test_elicitation", map[string]any{"message": "x"}, "elicitation failed"},
		{"probe", "sample", map[string]any{"text": "ping"}, "sampling failed"},
	} {
		for _, era := range eras {
			t.Run("undeclared/"+era.name+"/"+c.server+"/"+c.tool, func(t *testing.T) {
				cs := connect(t, h.URL(c.server), era.version, &sdk.ClientOptions{Capabilities: &sdk.ClientCapabilities{}})
				res, err := cs.CallTool(ctxT(t), &sdk.CallToolParams{Name: c.tool, Arguments: c.args})
				if err != nil {
					t.Fatalf("tools/call: %v", err)
				}
				if !res.IsError || !strings.Contains(contentText(res.Content), c.want) {
					t.Errorf("result = %+v %q, want a tool error %q", res.IsError, contentText(res.Content), c.want)
				}
			})
		}
	}

	t.Run("roots", func(t *testing.T) {
		for _, server := range []string{"probe", "both"} {
			tool := "roots"
			if server == "both" {
				tool = "probe_roots"
			}
			c := sdk.NewClient(&sdk.Implementation{Name: "roots-client", Version: "1"}, nil)
			c.AddRoots(&sdk.Root{URI: "file:///work/e2e", Name: "e2e"})
			cs, err := c.Connect(ctxT(t), &sdk.StreamableClientTransport{Endpoint: h.URL(server), MaxRetries: -1}, &sdk.ClientSessionOptions{ProtocolVersion: v20251125})
			if err != nil {
				t.Fatal(err)
			}
			if got := callText(t, cs, tool, nil); got != "roots: file:///work/e2e" {
				t.Errorf("%s/%s = %q", server, tool, got)
			}
			// The client's roots change: the upstream is told and asks again.
			c.AddRoots(&sdk.Root{URI: "file:///work/more"})
			if got := callText(t, cs, tool, nil); got != "roots: file:///work/e2e,file:///work/more" {
				t.Errorf("%s/%s after a change = %q", server, tool, got)
			}
			_ = cs.Close()
		}
	})
}

// TestRelayAcrossRevisions relays server→client requests and progress to
// clients of every stateful revision and both transports: Streamable HTTP
// (responses are plain JSON until a request needs a stream, before
// 2025-11-25) and the 2024-11-05 HTTP+SSE transport; from upstreams over
// stdio, Streamable HTTP and HTTP+SSE.
func TestRelayAcrossRevisions(t *testing.T) {
	url := serveStreamable(t, newProbe().s)
	sseURL := serveLegacySSE(t, newProbe().s)
	h := startGateway(t, render(t, `
upstreams:
  fx:    {command: "{{fixture}}"}
  probe: {url: "{{url}}"}
  old:   {url: "{{sse}}", transport: sse}
servers:
  both:
    upstreams: [{upstream: fx, prefix: ""}, {upstream: probe, prefix: "p_"}, {upstream: old, prefix: "s_"}]
`, "url", url, "sse", sseURL))
	for _, tc := range []struct {
		name    string
		version string
		sse     bool
	}{
		{"streamable_2025-03-26", v20250326, false},
		{"streamable_2025-06-18", "2025-06-18", false},
		{"streamable_2025-11-25", v20251125, false},
		{"http+sse_2024-11-05", v20241105, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var progress atomic.Int64
			opts := answeringClient()
			opts.ProgressNotificationHandler = func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
				if req.Params.ProgressToken == "p-1" {
					progress.Add(1)
				}
			}
			c := sdk.NewClient(&sdk.Implementation{Name: "relay", Version: "1"}, opts)
			c.AddRoots(&sdk.Root{URI: "file:///relay"})
			var tr sdk.Transport = &sdk.StreamableClientTransport{Endpoint: h.URL("both"), MaxRetries: -1}
			if tc.sse {
				tr = &sdk.SSEClientTransport{Endpoint: h.URL("both") + "/sse"}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cs, err := c.Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: tc.version})
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			if v := cs.InitializeResult().ProtocolVersion; v != tc.version {
				t.Errorf("negotiated %s, want %s", v, tc.version)
			}
			for _, call := range []struct {
				tool string
				args map[string]any
				want string
			}{
				{"test_sampling", map[string]any{"prompt": "rev"}, "LLM response: pong to rev"},
				{"test_elicitation", map[string]any{"message": "rev"}, "e2e-user"},
				{"p_sample", map[string]any{"text": "rev"}, "LLM response: pong to rev"},
				{"p_roots", nil, "roots: file:///relay"},
				{"s_sample", map[string]any{"text": "old"}, "LLM response: pong to old"},
				{"s_roots", nil, "roots: file:///relay"},
			} {
				if got := callText(t, cs, call.tool, call.args); !strings.Contains(got, call.want) {
					t.Errorf("%s = %q, want %q", call.tool, got, call.want)
				}
			}
			res, err := cs.CallTool(ctxT(t), &sdk.CallToolParams{Name: "test_tool_with_progress", Arguments: map[string]any{}, Meta: sdk.Meta{"progressToken": "p-1"}})
			if err != nil || res.IsError {
				t.Fatalf("test_tool_with_progress: %v %+v", err, res)
			}
			// The SDK may hand notifications to the handler after the
			// response, so wait for them.
			eventually(t, "three progress notifications for token p-1", func() error {
				if n := progress.Load(); n != 3 {
					return fmt.Errorf("got %d", n)
				}
				return nil
			})
		})
	}
}

// TestSamplingNotRelayedToAnotherClient has a stateful session waiting on
// a shared stdio upstream of an older revision while a stateless client
// calls a tool of it that asks for sampling. Over stdio the gateway cannot
// tell which call the request belongs to; it must not hand the stateless
// client's prompt to the other client's model.
func TestSamplingNotRelayedToAnotherClient(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "raw.log")
	h := startGateway(t, render(t, `
upstreams:
  raw: {command: "{{self}}", env: {E2E_ROLE: raw-stdio, E2E_RAW_LOG: "{{log}}"}}
servers:
  raw:
    upstreams: [{upstream: raw, prefix: ""}]
`, "log", logPath))
	asked := make(chan string, 4)
	a := connect(t, h.URL("raw"), v20251125, &sdk.ClientOptions{
		CreateMessageHandler: func(_ context.Context, req *sdk.CreateMessageRequest) (*sdk.CreateMessageResult, error) {
			asked <- req.Params.Messages[0].Content.(*sdk.TextContent).Text
			return &sdk.CreateMessageResult{Role: "assistant", Model: "a", Content: &sdk.TextContent{Text: "answer of A"}}, nil
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _, _ = a.CallTool(ctx, &sdk.CallToolParams{Name: "hang", Arguments: map[string]any{}}) }()
	eventually(t, "A's call reaches the upstream", func() error {
		if calls, _ := cancelledIDs(rawLog(logPath)); len(calls) == 0 {
			return errNotYet
		}
		return nil
	})

	b := connect(t, h.URL("raw"), "", nil)
	got := callText(t, b, "sample", nil)
	select {
	case prompt := <-asked:
		t.Errorf("client A's model was asked %q on behalf of client B", prompt)
	default:
	}
	if !strings.HasPrefix(got, "sampling refused") {
		t.Errorf("B's tool got %q, want the gateway's refusal", got)
	}
}

// TestLogMessages sets a log level through a merged server (the gateway
// fans logging/setLevel out) and receives the log messages a tool of the
// fixture emits while it runs.
func TestLogMessages(t *testing.T) {
	h := startGateway(t, render(t, `
upstreams:
  fx:  {command: "{{fixture}}"}
  crm: {command: "{{gatehouse}}", args: [demo-server, crm]}
servers:
  both:
    upstreams: [{upstream: fx, prefix: ""}, {upstream: crm}]
`))
	logs := make(chan string, 16)
	cs := connect(t, h.URL("both"), v20251125, &sdk.ClientOptions{
		LoggingMessageHandler: func(_ context.Context, req *sdk.LoggingMessageRequest) {
			logs <- fmt.Sprint(req.Params.Data)
		},
	})
	if err := cs.SetLoggingLevel(ctxT(t), &sdk.SetLoggingLevelParams{Level: "info"}); err != nil {
		t.Fatalf("logging/setLevel: %v", err)
	}
	callText(t, cs, "test_tool_with_logging", map[string]any{})
	var got []string
	for len(got) < 3 {
		select {
		case m := <-logs:
			got = append(got, m)
		case <-ctxT(t).Done():
			t.Fatalf("got log messages %q, want 3", got)
		}
	}
	if got[0] != "Tool execution started" || got[2] != "Tool execution completed" {
		t.Errorf("log messages = %q", got)
	}
}
