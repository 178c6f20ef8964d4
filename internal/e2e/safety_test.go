package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

// TestRequestValidation checks what the gateway refuses before anything
// reaches an upstream: foreign Host and Origin (DNS rebinding), oversized
// bodies, wrong media types and malformed JSON.
func TestRequestValidation(t *testing.T) {
	h := startGateway(t, render(t, `
allowed_origins: ["https://app.example.com"]
limits: {max_body_bytes: 1KiB}
upstreams:
  crm: {command: "{{gatehouse}}", args: [demo-server, crm]}
servers:
  support:
    upstreams: [{upstream: crm}]
`))
	big := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"` + strings.Repeat("x", 2048) + `","version":"1"}}}`
	for _, tc := range []struct {
		name     string
		body     string
		mutate   func(*http.Request)
		status   int
		wantCode int // JSON-RPC error code in the body; 0 = not checked
	}{
		{"foreign_host", initBody, func(r *http.Request) { r.Host = "evil.example.com" }, 403, -32600},
		{"foreign_host_with_port", initBody, func(r *http.Request) { r.Host = "evil.example.com:80" }, 403, -32600},
		{"foreign_origin", initBody, func(r *http.Request) { r.Header.Set("Origin", "http://evil.example.com") }, 403, -32600},
		{"null_origin", initBody, func(r *http.Request) { r.Header.Set("Origin", "null") }, 403, -32600},
		{"allowed_origin", initBody, func(r *http.Request) { r.Header.Set("Origin", "https://app.example.com") }, 200, 0},
		{"loopback_origin", initBody, func(r *http.Request) { r.Header.Set("Origin", "http://localhost:5173") }, 200, 0},
		{"localhost_host", initBody, func(r *http.Request) { r.Host = "localhost" }, 200, 0},
		{"body_over_limit", big, nil, 413, -32600},
		{"wrong_content_type", initBody, func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, 415, -32600},
		{"missing_content_type", initBody, func(r *http.Request) { r.Header.Del("Content-Type") }, 415, -32600},
		{"malformed_json", `{"jsonrpc":"2.0","id":1,"method":"initialize",`, nil, 400, -32700},
		{"not_json_at_all", `hello`, nil, 400, -32700},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newRaw(t, h.URL("support"))
			req := c.request(ctxT(t), http.MethodPost, tc.body)
			if tc.mutate != nil {
				tc.mutate(req)
			}
			resp := c.do(req)
			msgs := readMessages(t, resp)
			if resp.StatusCode != tc.status {
				t.Fatalf("HTTP %d %v, want %d", resp.StatusCode, msgs, tc.status)
			}
			if tc.wantCode == 0 {
				return
			}
			if len(msgs) != 1 || msgs[0].Error == nil {
				t.Fatalf("body = %v, want a JSON-RPC error", msgs)
			}
			if got := msgs[0].Error.Code; got != tc.wantCode {
				t.Errorf("error code = %d (%s), want %d", got, msgs[0].Error.Message, tc.wantCode)
			}
		})
	}
}

// hangConfig puts the raw test server (whose tool "hang" never answers)
// behind the gateway over stdio and HTTP, with a short tool-call timeout.
func hangConfig(t *testing.T, rawURL, logPath string) string {
	return render(t, `
upstreams:
  rawstdio:
    command: "{{self}}"
    env: {E2E_ROLE: raw-stdio, E2E_RAW_LOG: "{{log}}"}
    timeouts: {tool_call: 500ms}
  rawhttp:
    url: "{{url}}"
    timeouts: {tool_call: 500ms}
servers:
  stdio:
    upstreams: [{upstream: rawstdio, prefix: ""}]
  http:
    upstreams: [{upstream: rawhttp, prefix: ""}]
`, "url", rawURL, "log", logPath)
}

// cancelledIDs returns the upstream request ids of the tools/call "hang"
// requests and of the notifications/cancelled an upstream received.
func cancelledIDs(msgs []rawEnvelope) (calls, cancelled []string) {
	for _, m := range msgs {
		switch m.Method {
		case "tools/call":
			var p struct{ Name string }
			_ = json.Unmarshal(m.Params, &p)
			if p.Name == "hang" {
				calls = append(calls, string(m.ID))
			}
		case "notifications/cancelled":
			var p struct {
				RequestID json.RawMessage `json:"requestId"`
			}
			_ = json.Unmarshal(m.Params, &p)
			cancelled = append(cancelled, string(p.RequestID))
		}
	}
	return calls, cancelled
}

// TestToolCallTimeout calls a tool that never answers: the call fails with
// the gateway's timeout error naming the upstream, and the upstream is told
// to stop.
func TestToolCallTimeout(t *testing.T) {
	raw := newRawHTTP(t)
	logPath := filepath.Join(t.TempDir(), "raw.log")
	h := startGateway(t, hangConfig(t, raw.URL(), logPath))
	received := map[string]func() []rawEnvelope{
		"stdio": func() []rawEnvelope { return rawLog(logPath) },
		"http":  raw.messages,
	}
	upstreamOf := map[string]string{"stdio": "rawstdio", "http": "rawhttp"}
	for _, era := range eras {
		for _, server := range []string{"stdio", "http"} {
			t.Run(era.name+"/"+server, func(t *testing.T) {
				cs := connect(t, h.URL(server), era.version, nil)
				_, err := cs.CallTool(ctxT(t), &sdk.CallToolParams{Name: "hang", Arguments: map[string]any{}})
				we := rpcError(t, err)
				if we.Code != -31002 || !strings.Contains(we.Message, `"`+upstreamOf[server]+`"`) {
					t.Errorf("error = %d %q, want -31002 naming %q", we.Code, we.Message, upstreamOf[server])
				}
				if era.version == "" {
					return // stateless: the upstream sees its request stream close instead
				}
				eventually(t, "the upstream is told to stop", func() error {
					calls, cancelled := cancelledIDs(received[server]())
					if len(calls) == 0 {
						return errors.New("the upstream never got the call")
					}
					last := calls[len(calls)-1]
					for _, c := range cancelled {
						if c == last {
							return nil
						}
					}
					return fmt.Errorf("no notifications/cancelled for request %s (cancelled: %v)", last, cancelled)
				})
			})
		}
	}
}

// TestClientCancellationReachesUpstream cancels a call from the client
// (the go-sdk client sends notifications/cancelled): the upstream's handler
// sees its context cancelled, through a per-session HTTP upstream and a
// shared stdio upstream.
func TestClientCancellationReachesUpstream(t *testing.T) {
	p := newProbe()
	url := serveStreamable(t, p.s)
	logPath := filepath.Join(t.TempDir(), "raw.log")
	h := startGateway(t, render(t, `
upstreams:
  probe: {url: "{{url}}"}
  raw:   {command: "{{self}}", env: {E2E_ROLE: raw-stdio, E2E_RAW_LOG: "{{log}}"}}
servers:
  both:
    upstreams: [{upstream: probe}, {upstream: raw}]
`, "url", url, "log", logPath))
	cs := connect(t, h.URL("both"), v20251125, nil)

	t.Run("http_upstream", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctxT(t))
		done := make(chan error, 1)
		go func() {
			_, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "probe_block", Arguments: map[string]any{}})
			done <- err
		}()
		waitFor(t, p.started, "the upstream tool to start")
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled call returned %v", err)
		}
		waitFor(t, p.cancelled, "the upstream to see the cancellation")
	})

	t.Run("stdio_upstream", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctxT(t))
		done := make(chan error, 1)
		go func() {
			_, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "raw_hang", Arguments: map[string]any{}})
			done <- err
		}()
		eventually(t, "the upstream gets the call", func() error {
			if calls, _ := cancelledIDs(rawLog(logPath)); len(calls) == 0 {
				return errors.New("not yet")
			}
			return nil
		})
		cancel()
		<-done
		eventually(t, "the upstream gets notifications/cancelled for its request id", func() error {
			calls, cancelled := cancelledIDs(rawLog(logPath))
			for _, c := range cancelled {
				if c == calls[0] {
					return nil
				}
			}
			return fmt.Errorf("call id %s, cancelled %v", calls[0], cancelled)
		})
	})
}

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	select {
	case <-ch:
	case <-ctx.Done():
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestStatelessCancellationReachesUpstream cancels a call of a stateless
// (2026-07-28) client, which closes its request: the gateway tells the
// upstream (a go-sdk stateful HTTP server, reached through the gateway's own
// session with it), whose handler sees its context cancelled.
func TestStatelessCancellationReachesUpstream(t *testing.T) {
	p := newProbe()
	url := serveStreamable(t, p.s)
	h := startGateway(t, render(t, `
upstreams:
  probe: {url: "{{url}}"}
servers:
  probe:
    upstreams: [{upstream: probe}]
`, "url", url))
	cs := connect(t, h.URL("probe"), "", nil)
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "probe_block", Arguments: map[string]any{}})
		done <- err
	}()
	waitFor(t, p.started, "the upstream tool to start")
	cancel()
	<-done
	waitFor(t, p.cancelled, "the upstream to see the cancellation")
}

// TestSessionLimit refuses sessions beyond sessions.max_sessions with 503
// and the gateway's overload error, and accepts new ones once a session
// ends.
func TestSessionLimit(t *testing.T) {
	h := startGateway(t, render(t, `
sessions: {max_sessions: 2}
upstreams:
  crm: {command: "{{gatehouse}}", args: [demo-server, crm]}
servers:
  support:
    upstreams: [{upstream: crm}]
`))
	a, b := newRaw(t, h.URL("support")), newRaw(t, h.URL("support"))
	a.initialize(v20251125)
	b.initialize(v20251125)
	for _, transport := range []string{"streamable", "http+sse"} {
		c := newRaw(t, h.URL("support"))
		var resp *http.Response
		if transport == "streamable" {
			resp = c.post(initBody)
		} else {
			c.url += "/sse"
			resp = c.do(c.request(ctxT(t), http.MethodGet, ""))
		}
		msgs := readMessages(t, resp)
		if resp.StatusCode != http.StatusServiceUnavailable || len(msgs) != 1 || msgs[0].Error == nil || msgs[0].Error.Code != -31005 {
			t.Errorf("%s: third session: HTTP %d %v, want 503 with -31005", transport, resp.StatusCode, msgs)
		}
	}
	resp := a.do(a.request(ctxT(t), http.MethodDelete, ""))
	resp.Body.Close()
	c := newRaw(t, h.URL("support"))
	c.initialize(v20251125)
}

// TestOversizedUpstreamResponse has an upstream answer with a message
// larger than limits.max_message_bytes: the call fails at once with an
// error that says so, instead of waiting for the tool-call timeout.
func TestOversizedUpstreamResponse(t *testing.T) {
	raw := newRawHTTP(t)
	h := startGateway(t, render(t, `
limits: {max_message_bytes: 1MiB}
upstreams:
  rawstdio:
    command: "{{self}}"
    env: {E2E_ROLE: raw-stdio}
    timeouts: {tool_call: 20s}
  rawhttp:
    url: "{{url}}"
    timeouts: {tool_call: 20s}
servers:
  stdio:
    upstreams: [{upstream: rawstdio, prefix: ""}]
  http:
    upstreams: [{upstream: rawhttp, prefix: ""}]
`, "url", raw.URL()))
	for _, server := range []string{"stdio", "http"} {
		t.Run(server, func(t *testing.T) {
			cs := connect(t, h.URL(server), v20251125, nil)
			_, err := cs.CallTool(ctxT(t), &sdk.CallToolParams{Name: "big", Arguments: map[string]any{}})
			we := rpcError(t, err)
			if we.Code == -31002 || !strings.Contains(we.Message, "larger than") {
				t.Errorf("error = %d %q, want the call to fail because the response is too large", we.Code, we.Message)
			}
			// The connection stays usable.
			if got := callText(t, cs, "echo", map[string]any{"after": true}); !strings.Contains(got, `"after":true`) {
				t.Errorf("echo after the oversized response = %q", got)
			}
		})
	}
}

// TestBrokenUpstreams puts upstreams that cannot start or be reached next
// to a working one: sessions start, lists show what works, and calls to the
// broken ones fail with an error naming them.
func TestBrokenUpstreams(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // nothing listens there any more
	h := startGateway(t, render(t, `
upstreams:
  crm:      {command: "{{gatehouse}}", args: [demo-server, crm]}
  crashing: {command: "{{self}}", env: {E2E_ROLE: no-such-role}, timeouts: {connect: 5s}}
  missing:  {command: "/nonexistent/e2e-upstream"}
  offline:  {url: "{{url}}", timeouts: {connect: 5s}}
servers:
  support:
    upstreams: [{upstream: crm}, {upstream: crashing}, {upstream: missing}, {upstream: offline}]
`, "url", deadURL))
	for _, era := range eras {
		t.Run(era.name, func(t *testing.T) {
			cs := connect(t, h.URL("support"), era.version, nil)
			names := toolNames(t, cs)
			slices.Sort(names)
			if want := []string{"crm_get_customer", "crm_get_invoice", "crm_search_customers"}; !slices.Equal(names, want) {
				t.Errorf("tools = %v, want %v", names, want)
			}
			for _, up := range []string{"crashing", "missing", "offline"} {
				_, err := cs.CallTool(ctxT(t), &sdk.CallToolParams{Name: up + "_anything", Arguments: map[string]any{}})
				if we := rpcError(t, err); we.Code != -31001 || !strings.Contains(we.Message, `"`+up+`"`) {
					t.Errorf("%s: error %d %q, want -31001 naming it", up, we.Code, we.Message)
				}
			}
		})
	}
}

// TestCORSPreflight: a browser-based client of an allowed origin gets its
// preflight answered without credentials; another origin is refused.
func TestCORSPreflight(t *testing.T) {
	h := startGateway(t, `
upstreams:
  crm: {command: "{{gatehouse}}", args: [demo-server, crm]}
servers:
  crm: {upstreams: [{upstream: crm}]}
allowed_origins: ["https://console.example.com"]
`)
	tests := []struct {
		origin string
		status int
		allow  string
	}{
		{"https://console.example.com", http.StatusNoContent, "https://console.example.com"},
		{"http://localhost:6274", http.StatusNoContent, "http://localhost:6274"},
		{"https://evil.example.com", http.StatusForbidden, ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodOptions, h.URL("crm"), nil)
		req.Header.Set("Origin", tt.origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type, mcp-session-id, mcp-param-region")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status || resp.Header.Get("Access-Control-Allow-Origin") != tt.allow {
			t.Errorf("%s: status %d, allow-origin %q", tt.origin, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
		if tt.allow != "" && !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "mcp-param-region") {
			t.Errorf("%s: allow-headers %q", tt.origin, resp.Header.Get("Access-Control-Allow-Headers"))
		}
	}
}
