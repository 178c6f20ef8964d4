// Package e2e tests the gateway's data path end to end: a real gateway
// (config.Load → gateway.New → mcp.NewHandler on an httptest server) in
// front of real MCP peers — the built-in demo servers over stdio, the
// go-sdk conformance fixture, go-sdk servers over both HTTP transports and
// hand-written raw servers — driven by the go-sdk client and by raw HTTP
// where wire details matter.
//
// Nothing here asserts on elapsed time: what happens asynchronously (an
// upstream restart, a resource update) is polled for with generous
// deadlines.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdkjsonrpc "github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"gatehouse/internal/config"
	"gatehouse/internal/gateway"
	"gatehouse/internal/mcp"
	"gatehouse/internal/sse"
)

// Binaries built once per test run.
var (
	binDir       string
	gatehouseBin string // `gatehouse`, for `demo-server crm|tickets|chat`
	selfBin      string // this test binary, re-executed as a raw stdio server

	fixtureOnce sync.Once
	fixtureBin  string // the go-sdk conformance everything-server
	fixtureErr  error
)

// wait is the deadline for anything that happens asynchronously. It is
// generous on purpose: the tests run under -race on loaded CI machines.
const wait = 30 * time.Second

func TestMain(m *testing.M) {
	// The test binary doubles as the stdio upstreams the tests need (see
	// runRole): the gateway starts it with E2E_ROLE in its environment.
	if role := os.Getenv("E2E_ROLE"); role != "" {
		os.Exit(runRole(role))
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gatehouse-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	gatehouseBin = filepath.Join(dir, "gatehouse")
	if err := goBuild(gatehouseBin, "gatehouse/cmd/gatehouse"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if selfBin, err = os.Executable(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

func goBuild(out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// fixturePath builds the go-sdk conformance fixture on first use.
func fixturePath(t *testing.T) string {
	t.Helper()
	fixtureOnce.Do(func() {
		fixtureBin = filepath.Join(binDir, "everything-server")
		fixtureErr = goBuild(fixtureBin, "github.com/modelcontextprotocol/go-sdk/conformance/everything-server")
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixtureBin
}

// render replaces {{name}} placeholders in a configuration template. The
// binaries are always available: {{gatehouse}}, {{self}}, and {{fixture}}
// (built on first use).
func render(t *testing.T, tmpl string, kv ...string) string {
	t.Helper()
	pairs := []string{"{{gatehouse}}", gatehouseBin, "{{self}}", selfBin}
	if strings.Contains(tmpl, "{{fixture}}") {
		pairs = append(pairs, "{{fixture}}", fixturePath(t))
	}
	for i := 0; i+1 < len(kv); i += 2 {
		pairs = append(pairs, "{{"+kv[i]+"}}", kv[i+1])
	}
	out := strings.NewReplacer(pairs...).Replace(tmpl)
	if i := strings.Index(out, "{{"); i >= 0 {
		t.Fatalf("unreplaced placeholder in config: %s", out[i:min(len(out), i+30)])
	}
	return out
}

// loadConfig parses and validates a configuration the way the binary does.
func loadConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Load("e2e.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config.Load: %v\n%s", err, yaml)
	}
	return cfg
}

// harness is a gateway served in-process on an httptest server.
type harness struct {
	t   *testing.T
	GW  *gateway.Gateway
	H   *mcp.Handler
	Srv *httptest.Server
	log *logBuffer
}

// startGateway runs a gateway for the configuration (after render).
func startGateway(t *testing.T, yaml string) *harness {
	t.Helper()
	return startGatewayWith(t, yaml, gateway.Options{})
}

// startGatewayWith is startGateway with options (the logger is the
// harness's).
func startGatewayWith(t *testing.T, yaml string, opts gateway.Options) *harness {
	t.Helper()
	lb := &logBuffer{}
	log := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Logger = log
	gw, err := gateway.New(loadConfig(t, yaml), opts)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	h := mcp.NewHandler(gw, log)
	mux := http.NewServeMux()
	mux.Handle("/mcp/", h)
	srv := httptest.NewServer(mux)
	hs := &harness{t: t, GW: gw, H: h, Srv: srv, log: lb}
	t.Cleanup(func() {
		h.Close()
		srv.CloseClientConnections()
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = gw.Close(ctx)
		if t.Failed() || os.Getenv("E2E_VERBOSE") != "" {
			t.Logf("gateway log (last lines):\n%s", lb.tail(150))
		}
	})
	return hs
}

// URL returns the endpoint of a virtual server.
func (h *harness) URL(server string) string { return h.Srv.URL + "/mcp/" + server }

// apply reloads the gateway with a new configuration.
func (h *harness) apply(yaml string) {
	h.t.Helper()
	if err := h.GW.Apply(loadConfig(h.t, yaml)); err != nil {
		h.t.Fatalf("Apply: %v", err)
	}
}

// logBuffer collects the gateway's log; it is shown when a test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// tail returns the last n lines of the log, leaving out the upstreams'
// stderr chatter.
func (b *logBuffer) tail(n int) string {
	var keep []string
	for _, l := range strings.Split(b.String(), "\n") {
		if !strings.Contains(l, `msg="upstream stderr`) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep[max(0, len(keep)-n):], "\n")
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ---------------------------------------------------------------------------
// go-sdk clients

// Protocol revisions used by the tests.
const (
	v20241105 = "2024-11-05"
	v20250326 = "2025-03-26"
	v20251125 = "2025-11-25"
	v20260728 = "2026-07-28"
)

// connect opens a go-sdk client session with the virtual server at url,
// asking for protocol version (empty: the SDK's default, which is the
// stateless 2026-07-28 revision with a server/discover probe).
func connect(t *testing.T, url, version string, opts *sdk.ClientOptions) *sdk.ClientSession {
	t.Helper()
	return connectTransport(t, &sdk.StreamableClientTransport{Endpoint: url, MaxRetries: -1}, version, opts)
}

func connectTransport(t *testing.T, tr sdk.Transport, version string, opts *sdk.ClientOptions) *sdk.ClientSession {
	t.Helper()
	// The HTTP+SSE client transport ties its event stream to the connect
	// context, so it must outlive Connect; the timer only bounds Connect.
	ctx, cancel := context.WithCancel(context.Background())
	timer := time.AfterFunc(wait, cancel)
	c := sdk.NewClient(&sdk.Implementation{Name: "e2e-client", Version: "1.0.0"}, opts)
	var so *sdk.ClientSessionOptions
	if version != "" {
		so = &sdk.ClientSessionOptions{ProtocolVersion: version}
	}
	cs, err := c.Connect(ctx, tr, so)
	if !timer.Stop() || err != nil {
		cancel()
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() {
		_ = cs.Close()
		cancel()
	})
	return cs
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	t.Cleanup(cancel)
	return ctx
}

// toolNames lists every tool, following pagination.
func toolNames(t *testing.T, cs *sdk.ClientSession) []string {
	t.Helper()
	var names []string
	for tool, err := range cs.Tools(ctxT(t), nil) {
		if err != nil {
			t.Fatalf("tools/list: %v", err)
		}
		names = append(names, tool.Name)
	}
	return names
}

// callText calls a tool that must succeed and returns its text content.
func callText(t *testing.T, cs *sdk.ClientSession, name string, args any) string {
	t.Helper()
	res, err := cs.CallTool(ctxT(t), &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("tools/call %s: %v", name, err)
	}
	if res.IsError {
		t.Fatalf("tools/call %s: tool error: %s", name, contentText(res.Content))
	}
	return contentText(res.Content)
}

func contentText(cs []sdk.Content) string {
	var b strings.Builder
	for _, c := range cs {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// rpcError returns the JSON-RPC error inside err, failing the test if
// there is none.
func rpcError(t *testing.T, err error) *sdkjsonrpc.Error {
	t.Helper()
	var we *sdkjsonrpc.Error
	if !errors.As(err, &we) {
		t.Fatalf("got error %v (%T), want a JSON-RPC error", err, err)
	}
	return we
}

// ---------------------------------------------------------------------------
// Raw HTTP

// rawClient speaks Streamable HTTP by hand, for wire-level checks.
type rawClient struct {
	t       *testing.T
	url     string
	session string
	version string
	hc      *http.Client
}

func newRaw(t *testing.T, url string) *rawClient {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &rawClient{t: t, url: url, hc: &http.Client{Transport: tr}}
}

// request builds a request with the usual Streamable HTTP headers.
func (c *rawClient) request(ctx context.Context, method, body string) *http.Request {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
	} else {
		req.Header.Set("Accept", "text/event-stream")
	}
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
	}
	if c.version != "" {
		req.Header.Set("Mcp-Protocol-Version", c.version)
	}
	return req
}

func (c *rawClient) do(req *http.Request) *http.Response {
	c.t.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	return resp
}

// post sends a body and returns the response (the caller closes it).
func (c *rawClient) post(body string) *http.Response {
	c.t.Helper()
	return c.do(c.request(ctxT(c.t), http.MethodPost, body))
}

// initialize starts a stateful session with the given protocol version.
func (c *rawClient) initialize(version string) json.RawMessage {
	c.t.Helper()
	resp := c.post(`{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"` + version + `","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	msgs := readMessages(c.t, resp)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("initialize: HTTP %d %s", resp.StatusCode, msgs)
	}
	c.session = resp.Header.Get("Mcp-Session-Id")
	if c.session == "" {
		c.t.Fatal("initialize: no Mcp-Session-Id")
	}
	c.version = version
	final := msgs[len(msgs)-1]
	if final.Error != nil {
		c.t.Fatalf("initialize: %s", final.Error)
	}
	resp = c.post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		c.t.Fatalf("notifications/initialized: HTTP %d", resp.StatusCode)
	}
	return final.Result
}

// call sends one request and returns the final response, failing on HTTP
// errors.
func (c *rawClient) call(body string) wireMsg {
	c.t.Helper()
	resp := c.post(body)
	msgs := readMessages(c.t, resp)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("POST %s: HTTP %d %s", body, resp.StatusCode, msgs)
	}
	return msgs[len(msgs)-1]
}

// wireMsg is any JSON-RPC message, decoded loosely.
type wireMsg struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *wireError      `json:"error,omitempty"`
	// Raw is the message as received.
	Raw json.RawMessage `json:"-"`
	// EventID is the SSE event id that carried it, if any.
	EventID string `json:"-"`
}

type wireError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *wireError) String() string { return fmt.Sprintf("%d %s", e.Code, e.Message) }

func (m wireMsg) String() string { return string(m.Raw) }

func decodeMsg(t *testing.T, b []byte) wireMsg {
	t.Helper()
	var m wireMsg
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decoding %q: %v", b, err)
	}
	m.Raw = append(json.RawMessage(nil), b...)
	return m
}

// readMessages reads a whole response: a JSON body (one message or a
// batch) or an SSE stream of messages. It closes the body.
func readMessages(t *testing.T, resp *http.Response) []wireMsg {
	t.Helper()
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		var out []wireMsg
		r := sse.NewReader(resp.Body, 64<<20)
		for {
			ev, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("reading SSE: %v", err)
				}
				return out
			}
			if ev.Empty() {
				continue
			}
			m := decodeMsg(t, ev.Data)
			m.EventID = ev.ID
			out = append(out, m)
		}
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil
	}
	if body[0] == '[' {
		var parts []json.RawMessage
		if err := json.Unmarshal(body, &parts); err != nil {
			t.Fatalf("decoding batch %q: %v", body, err)
		}
		out := make([]wireMsg, len(parts))
		for i, p := range parts {
			out[i] = decodeMsg(t, p)
		}
		return out
	}
	if body[0] != '{' {
		return []wireMsg{{Raw: body}}
	}
	return []wireMsg{decodeMsg(t, body)}
}

// eventStream reads SSE events one at a time from a response.
type eventStream struct {
	t    *testing.T
	resp *http.Response
	r    *sse.Reader
}

func newEventStream(t *testing.T, resp *http.Response) *eventStream {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("HTTP %d %s, want an event stream: %s", resp.StatusCode, ct, b)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return &eventStream{t: t, resp: resp, r: sse.NewReader(resp.Body, 64<<20)}
}

// next returns the next event, including empty ones (priming events).
func (s *eventStream) next() (sse.Event, error) { return s.r.Next() }

// nextMsg returns the next event that carries a message.
func (s *eventStream) nextMsg() (wireMsg, error) {
	for {
		ev, err := s.r.Next()
		if err != nil {
			return wireMsg{}, err
		}
		if ev.Empty() {
			continue
		}
		m := decodeMsg(s.t, ev.Data)
		m.EventID = ev.ID
		return m, nil
	}
}

func (s *eventStream) close() { s.resp.Body.Close() }

// ---------------------------------------------------------------------------
// Polling

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(wait)
	delay := 10 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, wait, err)
		}
		time.Sleep(delay)
		delay = min(delay*2, 250*time.Millisecond)
	}
}

// errNotYet is what a polled condition returns while it does not hold.
var errNotYet = errors.New("not yet")

// lines returns the lines of a file ("" when missing).
func lines(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for s.Scan() {
		out = append(out, s.Text())
	}
	return out
}
