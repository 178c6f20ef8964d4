package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// rawMCP is a hand-written MCP server of the handshake revisions that does
// not know 2026-07-28 (server/discover is "Method not found"). It works on
// raw bytes so tests can check what reaches an upstream byte for byte:
//
//   - tool "echo" answers with the request's params, verbatim, as its text
//     content, and its result carries unknown members;
//   - tool "hang" never answers; tool "big" answers with 2 MiB of text;
//   - tool "sample" (stdio only) makes a sampling request and answers with
//     its outcome;
//   - method "acme/custom" answers with its params, verbatim, in rawParams;
//   - a prompt, a resource, a resource template and completion are there
//     so a legacy-only upstream can be exercised fully.
//
// It runs over stdio (the test binary re-executed with
// E2E_ROLE=raw-stdio) and over Streamable HTTP in-process (rawHTTP).
type rawMCP struct{}

// rawEnvelope decodes a message without normalizing its params.
type rawEnvelope struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

var rawVersions = []string{"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}

// handle returns the response to msg; nil when there is none (a
// notification, a response, or a request that must never be answered).
func (rawMCP) handle(msg []byte) []byte {
	var m rawEnvelope
	if err := json.Unmarshal(msg, &m); err != nil {
		return []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}`)
	}
	if m.ID == nil || m.Method == "" {
		return nil // notification or response
	}
	result := func(r string) []byte {
		return []byte(`{"jsonrpc":"2.0","id":` + string(m.ID) + `,"result":` + r + `}`)
	}
	fail := func(code int, msg string) []byte {
		return []byte(`{"jsonrpc":"2.0","id":` + string(m.ID) + `,"error":{"code":` + strconv.Itoa(code) + `,"message":` + strconv.Quote(msg) + `}}`)
	}
	var p struct {
		ProtocolVersion string            `json:"protocolVersion"`
		Name            string            `json:"name"`
		URI             string            `json:"uri"`
		Arguments       map[string]string `json:"arguments"`
	}
	_ = json.Unmarshal(m.Params, &p)
	quoted := func(b []byte) string {
		q, _ := json.Marshal(string(b))
		return string(q)
	}
	switch m.Method {
	case "initialize":
		v := p.ProtocolVersion
		if !slices.Contains(rawVersions, v) {
			v = rawVersions[0]
		}
		return result(`{"protocolVersion":"` + v + `","capabilities":{"tools":{"listChanged":true},"prompts":{},"resources":{},"completions":{},"experimental":{"com.example/raw":{}}},"serverInfo":{"name":"raw-e2e","version":"1.0.0"},"instructions":"raw test server","x-init-extra":{"kept":true}}`)
	case "ping":
		return result(`{}`)
	case "tools/list":
		return result(`{"tools":[{"name":"echo","description":"returns its params verbatim","inputSchema":{"type":"object"},"x-tool-extra":{"a":[1,2,3]}},{"name":"hang","description":"never answers","inputSchema":{"type":"object"}},{"name":"sample","description":"asks the client's model","inputSchema":{"type":"object"}},{"name":"big","description":"answers with 2 MiB of text","inputSchema":{"type":"object"}}],"x-list-extra":"kept"}`)
	case "tools/call":
		switch p.Name {
		case "echo":
			return result(`{"content":[{"type":"text","text":` + quoted(m.Params) + `}],"x-result-extra":{"nested":[1,{"deep":"yes"}]},"_meta":{"com.example/upstream":"meta-kept"}}`)
		case "hang":
			return nil
		case "big":
			return result(`{"content":[{"type":"text","text":"` + strings.Repeat("x", 2<<20) + `"}]}`)
		}
		return fail(-32602, "Unknown tool: "+p.Name)
	case "prompts/list":
		return result(`{"prompts":[{"name":"greet","description":"greets","arguments":[{"name":"who","required":true}]}]}`)
	case "prompts/get":
		if p.Name != "greet" {
			return fail(-32602, "Unknown prompt: "+p.Name)
		}
		return result(`{"description":"a greeting","messages":[{"role":"user","content":{"type":"text","text":` + quoted([]byte("hello "+p.Arguments["who"])) + `}}]}`)
	case "resources/list":
		return result(`{"resources":[{"uri":"raw://doc","name":"doc","mimeType":"text/plain"}]}`)
	case "resources/templates/list":
		return result(`{"resourceTemplates":[{"uriTemplate":"raw://items/{id}","name":"item"}]}`)
	case "resources/read":
		return result(`{"contents":[{"uri":` + quoted([]byte(p.URI)) + `,"mimeType":"text/plain","text":` + quoted([]byte("content of "+p.URI)) + `}]}`)
	case "completion/complete":
		return result(`{"completion":{"values":["alpha","beta"],"total":2,"hasMore":false}}`)
	case "acme/custom":
		return result(`{"rawParams":` + quoted(m.Params) + `,"x-custom":true}`)
	case "server/discover":
		return fail(-32601, "Method not found")
	}
	return fail(-32601, "Method not found: "+m.Method)
}

// runRawStdio serves rawMCP on stdin/stdout. Every line received is
// appended to the file named by E2E_RAW_LOG, when set, so a test can see
// exactly what the gateway sent.
func runRawStdio() int {
	var logf *os.File
	if p := os.Getenv("E2E_RAW_LOG"); p != "" {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		logf = f
		defer f.Close()
	}
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriter(os.Stdout)
	write := func(msg []byte) {
		_, _ = out.Write(append(msg, '\n'))
		_ = out.Flush()
	}
	// Tool "sample" (stdio only) asks the client's model through
	// sampling/createMessage and answers with what came back; pending maps
	// the sampling request's id to the tools/call id.
	pending := map[string]json.RawMessage{}
	for {
		line, err := in.ReadBytes('\n')
		line = bytes.TrimSpace(line)
		if len(line) > 0 {
			if logf != nil {
				_, _ = logf.Write(append(slices.Clone(line), '\n'))
			}
			var m struct {
				rawEnvelope
				Result json.RawMessage `json:"result"`
				Error  *struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			_ = json.Unmarshal(line, &m)
			var name struct{ Name string }
			_ = json.Unmarshal(m.Params, &name)
			switch {
			case m.Method == "tools/call" && name.Name == "sample":
				sid := `"smp-` + strings.Trim(string(m.ID), `"`) + `"`
				pending[sid] = m.ID
				write([]byte(`{"jsonrpc":"2.0","id":` + sid + `,"method":"sampling/createMessage","params":{"messages":[{"role":"user","content":{"type":"text","text":"secret of the caller"}}],"maxTokens":5}}`))
			case m.Method == "" && pending[string(m.ID)] != nil:
				callID := pending[string(m.ID)]
				delete(pending, string(m.ID))
				text := "sampling refused"
				if m.Error != nil {
					text += ": " + m.Error.Message
				} else {
					text = "sampled: " + string(m.Result)
				}
				q, _ := json.Marshal(text)
				write([]byte(`{"jsonrpc":"2.0","id":` + string(callID) + `,"result":{"content":[{"type":"text","text":` + string(q) + `}]}}`))
			default:
				if resp := (rawMCP{}).handle(line); resp != nil {
					write(resp)
				}
			}
		}
		if err != nil {
			return 0
		}
	}
}

// runRole runs the test binary as a helper process for the gateway.
func runRole(role string) int {
	switch role {
	case "raw-stdio":
		return runRawStdio()
	case "gated":
		// A stdio upstream that refuses to start while the file E2E_GATE
		// exists, so a test can keep a killed upstream down as long as it
		// needs to; otherwise it becomes E2E_EXEC (same pid).
		if _, err := os.Stat(os.Getenv("E2E_GATE")); err == nil {
			fmt.Fprintln(os.Stderr, "gated: refusing to start")
			return 1
		}
		exe := os.Getenv("E2E_EXEC")
		env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return bytes.HasPrefix([]byte(kv), []byte("E2E_")) })
		err := syscall.Exec(exe, append([]string{exe}, os.Args[1:]...), env)
		fmt.Fprintln(os.Stderr, "gated: exec:", err)
		return 1
	}
	fmt.Fprintln(os.Stderr, "unknown E2E_ROLE", role)
	return 2
}

// rawLog returns the messages a raw stdio server logged.
func rawLog(path string) []rawEnvelope {
	var out []rawEnvelope
	for _, l := range lines(path) {
		var m rawEnvelope
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// rawHTTP serves rawMCP over a minimal Streamable HTTP transport: JSON
// responses only, sessions by Mcp-Session-Id, no GET stream. It records
// every message it receives.
type rawHTTP struct {
	srv *httptest.Server

	mu       sync.Mutex
	received [][]byte
	sessions int
}

func newRawHTTP(t *testing.T) *rawHTTP {
	r := &rawHTTP{}
	r.srv = httptest.NewServer(r)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *rawHTTP) URL() string { return r.srv.URL + "/mcp" }

func (r *rawHTTP) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch req.Method {
	case http.MethodGet:
		http.Error(w, "no standalone stream", http.StatusMethodNotAllowed)
		return
	case http.MethodDelete:
		w.WriteHeader(http.StatusOK)
		return
	case http.MethodPost:
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	body = bytes.TrimSpace(body)
	r.mu.Lock()
	r.received = append(r.received, body)
	r.mu.Unlock()
	var m rawEnvelope
	_ = json.Unmarshal(body, &m)
	if m.Method == "initialize" {
		r.mu.Lock()
		r.sessions++
		n := r.sessions
		r.mu.Unlock()
		w.Header().Set("Mcp-Session-Id", fmt.Sprintf("raw-session-%d", n))
	}
	resp := (rawMCP{}).handle(body)
	if resp == nil {
		if m.ID != nil && m.Method != "" {
			<-req.Context().Done() // a request never answered ("hang")
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(resp)
}

// messages returns what the server received, decoded loosely.
func (r *rawHTTP) messages() []rawEnvelope {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]rawEnvelope, 0, len(r.received))
	for _, b := range r.received {
		var m rawEnvelope
		if json.Unmarshal(b, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}
