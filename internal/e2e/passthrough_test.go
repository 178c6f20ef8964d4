package e2e

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnknownMethodsAndFieldsPassThrough sends a custom method and unknown
// members in params and _meta through the gateway to a raw upstream (stdio
// and HTTP), which echoes the params it received: they arrive byte for
// byte. Unknown members of the upstream's results reach the client.
func TestUnknownMethodsAndFieldsPassThrough(t *testing.T) {
	raw := newRawHTTP(t)
	logPath := filepath.Join(t.TempDir(), "raw.log")
	h := startGateway(t, render(t, `
upstreams:
  rawstdio: {command: "{{self}}", env: {E2E_ROLE: raw-stdio, E2E_RAW_LOG: "{{log}}"}}
  rawhttp:  {url: "{{url}}"}
  crm:      {command: "{{gatehouse}}", args: [demo-server, crm]}
servers:
  stdio:
    upstreams: [{upstream: rawstdio, prefix: ""}]
  http:
    upstreams: [{upstream: rawhttp, prefix: ""}]
  stdio_merged:
    upstreams: [{upstream: rawstdio, prefix: "r_"}, {upstream: crm}]
  http_merged:
    upstreams: [{upstream: rawhttp, prefix: "r_"}, {upstream: crm}]
`, "url", raw.URL(), "log", logPath))

	// Odd but valid JSON: member order, spacing, escapes and number forms
	// must all survive.
	const customParams = `{"zeta":[1,2.50,-0.0,1e3,"x\u00e9\"y"],"_meta":{"com.example/trace":"x","nested":{"k":true,"n":null}},"alpha":{} ,"empty":[]}`
	const echoArgs = `{"a":1,"b":{"c":[true,false]}}`
	for _, server := range []string{"stdio", "http", "stdio_merged", "http_merged"} {
		t.Run(server, func(t *testing.T) {
			prefix := ""
			if strings.HasSuffix(server, "_merged") {
				prefix = "r_"
			}
			c := newRaw(t, h.URL(server))
			init := c.initialize(v20251125)
			if prefix == "" && !strings.Contains(string(init), `"x-init-extra":{"kept":true}`) {
				t.Errorf("initialize result lost the upstream's unknown member: %s", init)
			}

			t.Run("custom_method", func(t *testing.T) {
				m := c.call(`{"jsonrpc":"2.0","id":41,"method":"acme/custom","params":` + customParams + `}`)
				if m.Error != nil {
					t.Fatalf("acme/custom: %s", m.Error)
				}
				var res struct {
					RawParams string `json:"rawParams"`
					Custom    bool   `json:"x-custom"`
				}
				if err := json.Unmarshal(m.Result, &res); err != nil {
					t.Fatal(err)
				}
				if res.RawParams != customParams {
					t.Errorf("upstream received params\n%s\nwant\n%s", res.RawParams, customParams)
				}
				if !res.Custom {
					t.Errorf("result lost x-custom: %s", m.Result)
				}
			})

			t.Run("tool_call_unknown_fields", func(t *testing.T) {
				params := `{"name":"` + prefix + `echo","arguments":` + echoArgs + `,"x-unknown":{"q":"w"},"_meta":{"com.example/trace":"x","progressless":1}}`
				m := c.call(`{"jsonrpc":"2.0","id":"call-1","method":"tools/call","params":` + params + `}`)
				if m.Error != nil {
					t.Fatalf("tools/call: %s", m.Error)
				}
				var res struct {
					Content []struct {
						Text string `json:"text"`
					} `json:"content"`
					Extra json.RawMessage `json:"x-result-extra"`
					Meta  json.RawMessage `json:"_meta"`
				}
				if err := json.Unmarshal(m.Result, &res); err != nil {
					t.Fatal(err)
				}
				want := strings.Replace(params, `"name":"`+prefix+`echo"`, `"name":"echo"`, 1)
				if len(res.Content) != 1 || res.Content[0].Text != want {
					t.Errorf("upstream received params\n%s\nwant\n%s", res.Content, want)
				}
				if string(res.Extra) != `{"nested":[1,{"deep":"yes"}]}` {
					t.Errorf("result x-result-extra = %s", res.Extra)
				}
				if string(res.Meta) != `{"com.example/upstream":"meta-kept"}` {
					t.Errorf("result _meta = %s", res.Meta)
				}
			})

			t.Run("list_items_keep_unknown_fields", func(t *testing.T) {
				m := c.call(`{"jsonrpc":"2.0","id":42,"method":"tools/list","params":{"_meta":{"com.example/trace":"x"}}}`)
				if !strings.Contains(string(m.Result), `"x-tool-extra":{"a":[1,2,3]}`) {
					t.Errorf("tools/list lost the tool's unknown member: %s", m.Result)
				}
				if prefix == "" && !strings.Contains(string(m.Result), `"x-list-extra":"kept"`) {
					t.Errorf("tools/list of a transparent server lost the result's unknown member: %s", m.Result)
				}
			})

			t.Run("custom_notification", func(t *testing.T) {
				params := `{"k":[1, 2],"who":"` + server + `","_meta":{"com.example/trace":"n"}}`
				resp := c.post(`{"jsonrpc":"2.0","method":"acme/notice","params":` + params + `}`)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					t.Fatalf("notification: HTTP %d", resp.StatusCode)
				}
				received := raw.messages
				if strings.HasPrefix(server, "stdio") {
					received = func() []rawEnvelope { return rawLog(logPath) }
				}
				eventually(t, "the upstream receives the custom notification", func() error {
					for _, m := range received() {
						if m.Method == "acme/notice" && strings.Contains(string(m.Params), `"who":"`+server+`"`) {
							if string(m.Params) != params {
								t.Fatalf("notification params = %s, want %s", m.Params, params)
							}
							return nil
						}
					}
					return errNotYet
				})
			})
		})
	}
}

// TestUnknownFieldsPassThroughStateless sends a custom method with unknown
// members as a 2026-07-28 request to legacy-only upstreams: the gateway
// translates to their handshake session, keeping every member except the
// per-request envelope of the stateless revision, which such a session
// must not see.
func TestUnknownFieldsPassThroughStateless(t *testing.T) {
	raw := newRawHTTP(t)
	h := startGateway(t, render(t, `
upstreams:
  rawstdio: {command: "{{self}}", env: {E2E_ROLE: raw-stdio}}
  rawhttp:  {url: "{{url}}"}
servers:
  stdio:
    upstreams: [{upstream: rawstdio, prefix: ""}]
  http:
    upstreams: [{upstream: rawhttp, prefix: ""}]
`, "url", raw.URL()))
	const params = `{"zeta":[1,2.50],"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"com.example/trace":"x"},"alpha":{"b":null}}`
	for _, server := range []string{"stdio", "http"} {
		t.Run(server, func(t *testing.T) {
			c := newRaw(t, h.URL(server))
			c.version = v20260728
			req := c.request(ctxT(t), http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"acme/custom","params":`+params+`}`)
			req.Header.Set("Mcp-Method", "acme/custom")
			resp := c.do(req)
			msgs := readMessages(t, resp)
			if resp.StatusCode != http.StatusOK || len(msgs) == 0 || msgs[len(msgs)-1].Error != nil {
				t.Fatalf("HTTP %d %v", resp.StatusCode, msgs)
			}
			m := msgs[len(msgs)-1]
			var res struct {
				RawParams  string `json:"rawParams"`
				ResultType string `json:"resultType"`
			}
			if err := json.Unmarshal(m.Result, &res); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{`"zeta":[1,2.50]`, `"com.example/trace":"x"`, `"alpha":{"b":null}`} {
				if !strings.Contains(res.RawParams, want) {
					t.Errorf("upstream received %s, missing %s", res.RawParams, want)
				}
			}
			if strings.Contains(res.RawParams, "io.modelcontextprotocol/") {
				t.Errorf("a handshake-revision upstream received the stateless envelope: %s", res.RawParams)
			}
			if res.ResultType != "complete" {
				t.Errorf("resultType = %q, want complete", res.ResultType)
			}
		})
	}
}
