package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// maxResponseBytes caps how much of one response is buffered, so that a
// misbehaving server cannot exhaust the load generator's memory.
const maxResponseBytes = 16 << 20

// errorTextLimit bounds error messages built from server-supplied text.
const errorTextLimit = 200

// transportError marks failures below HTTP (dial, reset, timeout); the
// session loop backs off on them instead of spinning.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// newTransport returns the one transport every session shares. Each
// session keeps one request in flight, so one idle connection per session
// lets every call reuse a warm keep-alive connection.
//
// Sessions call RoundTrip directly rather than going through http.Client:
// the client clones headers and URL on every request to support redirects
// and cookies, which an MCP endpoint under load has no business using (a
// redirect is reported as an error status instead).
//
// HTTP/2 is not attempted (a custom DialContext disables it), so each
// session gets its own HTTP/1.1 connection, like most agents' clients.
func newTransport(sessions int) *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:        2 * sessions,
		MaxIdleConnsPerHost: 2 * sessions,
		IdleConnTimeout:     90 * time.Second,
		// Compression costs CPU on both sides of a test that measures CPU.
		DisableCompression:  true,
		TLSHandshakeTimeout: 10 * time.Second,
	}
}

// target is what all sessions of one run share: where to send and what.
type target struct {
	rt              *http.Transport
	url             *url.URL
	headers         http.Header // user-supplied, e.g. Authorization
	protocolVersion string
	// callPrefix and callSuffix surround the request id in a tools/call
	// body, so a call costs one append of an integer instead of a marshal.
	callPrefix []byte
	callSuffix []byte
}

// newTarget validates the endpoint and precomputes the request templates.
func newTarget(rt *http.Transport, rawURL string, headers http.Header, protocolVersion, tool string, args json.RawMessage) (*target, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("url %q: scheme must be http or https", rawURL)
	}
	name, err := json.Marshal(tool)
	if err != nil {
		return nil, fmt.Errorf("encode tool name: %w", err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, args); err != nil {
		return nil, fmt.Errorf("tool arguments: %w", err)
	}
	suffix := fmt.Appendf(nil, `,"method":"tools/call","params":{"name":%s,"arguments":%s}}`, name, compact.Bytes())
	return &target{
		rt:              rt,
		url:             u,
		headers:         headers,
		protocolVersion: protocolVersion,
		callPrefix:      []byte(`{"jsonrpc":"2.0","id":`),
		callSuffix:      suffix,
	}, nil
}

// rpcID is a JSON-RPC id. This client only sends integer ids, so any other
// form (string, null, absent) is recorded as "not ours".
type rpcID struct {
	n  int64
	ok bool
}

// UnmarshalJSON parses an integer id by hand: strconv on string(b) would
// allocate on every response.
func (id *rpcID) UnmarshalJSON(b []byte) error {
	*id = rpcID{}
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return nil
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return nil
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	*id = rpcID{n: n, ok: true}
	return nil
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// rpcResponse holds only what the benchmark judges a reply by; decoding
// into it skips the (possibly large) result content without building it.
type rpcResponse struct {
	ID     rpcID     `json:"id"`
	Error  *rpcError `json:"error"`
	Result struct {
		IsError bool `json:"isError"`
	} `json:"result"`
}

// toolErrorText is decoded only on the error path, for the message.
type toolErrorText struct {
	Result struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
	} `json:"result"`
}

// body is a reusable request body: a bytes.Reader that is also a Closer,
// so assigning it to http.Request.Body allocates nothing.
//
// The transport may still be writing a request body after RoundTrip has
// returned (it closes the body from its write loop when done), so the
// body, and the bytes under it, may only be reused after Close. The free
// channel holds a token while nobody is using the body.
type body struct {
	bytes.Reader
	inUse atomic.Bool
	free  chan struct{}
}

func newBody() *body {
	b := &body{free: make(chan struct{}, 1)}
	b.free <- struct{}{}
	return b
}

// acquire waits until the transport has released the previous request.
func (b *body) acquire(ctx context.Context) error {
	select {
	case <-b.free:
		b.inUse.Store(true)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the previous request body: %w", ctx.Err())
	}
}

// Close releases the body. The transport may close a body more than once
// on error paths; only the first Close counts.
func (b *body) Close() error {
	if b.inUse.CompareAndSwap(true, false) {
		b.free <- struct{}{}
	}
	return nil
}

// session is one MCP session. It is used by a single goroutine and keeps
// every buffer it needs between calls.
type session struct {
	t      *target
	header http.Header // per-session: gains Mcp-Session-Id and the version
	id     string      // Mcp-Session-Id, empty if the server issued none
	nextID int64

	req  *http.Request // POST template; cloned shallowly per call
	body *body
	out  []byte       // request body under construction
	in   bytes.Buffer // response body
	lim  io.LimitedReader
	data []byte // SSE data accumulator
	resp rpcResponse
}

func newSession(t *target) (*session, error) {
	h := make(http.Header, len(t.headers)+4)
	for k, v := range t.headers {
		h[k] = v
	}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json, text/event-stream")
	req, err := http.NewRequest(http.MethodPost, t.url.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header = h
	// net/http takes the Host header from the request, not the header map.
	req.Host = h.Get("Host")
	return &session{t: t, header: h, req: req, body: newBody(), nextID: 1}, nil
}

// initialize performs the MCP handshake: initialize, then the initialized
// notification. The session id and negotiated version apply from then on.
func (s *session) initialize(ctx context.Context) error {
	params := map[string]any{
		"protocolVersion": s.t.protocolVersion,
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]string{"name": "gatehouse-bench", "version": "1.0.0"},
	}
	msg, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params})
	if err != nil {
		return fmt.Errorf("initialize: encode: %w", err)
	}
	resp, err := s.post(ctx, msg)
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	sessionID := resp.Header.Get("Mcp-Session-Id")
	raw, err := s.readReply(resp, 0)
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	var reply struct {
		Result struct {
			ProtocolVersion string `json:"protocolVersion"`
		} `json:"result"`
	}
	if err := json.Unmarshal(raw, &reply); err != nil {
		return fmt.Errorf("initialize: decode result: %w", err)
	}
	// The transport reads the header map while writing a request, so it
	// may change only once the initialize request has been released.
	if err := s.body.acquire(ctx); err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	version := cmp.Or(reply.Result.ProtocolVersion, s.t.protocolVersion)
	s.header.Set("MCP-Protocol-Version", version)
	if sessionID != "" {
		s.id = sessionID
		s.header.Set("Mcp-Session-Id", sessionID)
	}
	return s.notifyInitialized(ctx)
}

// notifyInitialized sends notifications/initialized; the caller has
// acquired the body.
func (s *session) notifyInitialized(ctx context.Context) error {
	resp, err := s.send(ctx, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	if err != nil {
		return fmt.Errorf("notifications/initialized: %w", err)
	}
	if err := s.drain(resp); err != nil {
		return fmt.Errorf("notifications/initialized: %w", err)
	}
	// The spec says 202; any 2xx is harmless for a load test.
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("notifications/initialized: %w", statusError(resp.StatusCode, s.in.Bytes()))
	}
	return nil
}

// call sends one tools/call and judges its reply. A nil error means HTTP
// 200, a matching response, no JSON-RPC error and no isError result.
func (s *session) call(ctx context.Context) error {
	// s.out is under the body reader: it may be rewritten only once the
	// previous request has been released.
	if err := s.body.acquire(ctx); err != nil {
		return err
	}
	id := s.nextID
	s.nextID++
	s.out = append(s.out[:0], s.t.callPrefix...)
	s.out = strconv.AppendInt(s.out, id, 10)
	s.out = append(s.out, s.t.callSuffix...)

	resp, err := s.send(ctx, s.out)
	if err != nil {
		return err
	}
	raw, err := s.readReply(resp, id)
	if err != nil {
		return err
	}
	if s.resp.Result.IsError {
		return toolError(raw)
	}
	return nil
}

// post sends msg as a POST on the session's template request.
func (s *session) post(ctx context.Context, msg []byte) (*http.Response, error) {
	if err := s.body.acquire(ctx); err != nil {
		return nil, err
	}
	return s.send(ctx, msg)
}

// send is post for a caller that has already acquired the body. The
// transport releases the body whatever happens, so no path leaks it.
func (s *session) send(ctx context.Context, msg []byte) (*http.Response, error) {
	s.body.Reset(msg)
	req := s.req.WithContext(ctx)
	req.Body = s.body
	req.ContentLength = int64(len(msg))
	resp, err := s.t.rt.RoundTrip(req)
	if err != nil {
		return nil, &transportError{err}
	}
	return resp, nil
}

// drain reads and closes a response body so its connection can be reused.
// The bytes stay in s.in for error messages.
func (s *session) drain(resp *http.Response) error {
	defer resp.Body.Close()
	s.in.Reset()
	s.lim = io.LimitedReader{R: resp.Body, N: maxResponseBytes}
	if _, err := s.in.ReadFrom(&s.lim); err != nil {
		return &transportError{fmt.Errorf("read response: %w", err)}
	}
	return nil
}

// readReply reads the whole response and returns the JSON-RPC message
// answering request id, decoded into s.resp. The returned slice aliases
// session buffers and is valid until the next request.
//
// The body is read to the end even for event streams (servers should close
// the stream after the response) because abandoning a body mid-stream
// costs the keep-alive connection.
func (s *session) readReply(resp *http.Response, id int64) ([]byte, error) {
	if err := s.drain(resp); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp.StatusCode, s.in.Bytes())
	}
	var raw []byte
	var err error
	if isEventStream(resp.Header.Get("Content-Type")) {
		raw, err = s.findEvent(s.in.Bytes(), id)
	} else {
		raw, err = s.in.Bytes(), s.decode(s.in.Bytes(), id)
	}
	if err != nil {
		return nil, err
	}
	if e := s.resp.Error; e != nil {
		return nil, fmt.Errorf("json-rpc error %d: %s", e.Code, truncate(e.Message))
	}
	return raw, nil
}

// decode parses a single JSON response that must answer id.
func (s *session) decode(msg []byte, id int64) error {
	s.resp = rpcResponse{}
	if err := json.Unmarshal(msg, &s.resp); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	if !s.resp.ID.ok || s.resp.ID.n != id {
		// Error replies to unparsable requests carry a null id; report those
		// as the error they are rather than as a mismatch.
		if s.resp.Error != nil {
			return nil
		}
		return fmt.Errorf("response id does not match request id %d", id)
	}
	return nil
}

// findEvent scans a text/event-stream body for the message event whose
// JSON-RPC id is id. Priming events (empty data), comments, other event
// types, notifications and server requests are skipped.
func (s *session) findEvent(stream []byte, id int64) ([]byte, error) {
	s.data = s.data[:0]
	hasData := false
	isMessage := true // an event without an event: field is a message
	for len(stream) > 0 {
		var line []byte
		line, stream, _ = bytes.Cut(stream, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			if ok, err := s.dispatch(isMessage, id); ok || err != nil {
				return s.data, err
			}
			s.data, hasData, isMessage = s.data[:0], false, true
			continue
		}
		if line[0] == ':' {
			continue // comment
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "data":
			if hasData {
				s.data = append(s.data, '\n')
			}
			s.data, hasData = append(s.data, value...), true
		case "event":
			isMessage = string(value) == "message"
		}
	}
	// Be lenient about a final event missing its blank line.
	if ok, err := s.dispatch(isMessage, id); ok || err != nil {
		return s.data, err
	}
	return nil, errors.New("event stream ended without a response")
}

// dispatch decodes the pending event and reports whether it answers id.
func (s *session) dispatch(isMessage bool, id int64) (bool, error) {
	if !isMessage || len(bytes.TrimSpace(s.data)) == 0 {
		return false, nil
	}
	s.resp = rpcResponse{}
	if err := json.Unmarshal(s.data, &s.resp); err != nil {
		return false, fmt.Errorf("decode event: %w", err)
	}
	return s.resp.ID.ok && s.resp.ID.n == id, nil
}

// close ends the session on the server. Servers without session
// termination answer 405, which is fine.
func (s *session) close(ctx context.Context) error {
	if s.id == "" {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, s.t.url.String(), nil)
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	req.Header = s.header.Clone()
	req.Header.Del("Content-Type")
	resp, err := s.t.rt.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	_ = s.drain(resp) // only the status matters; the body is for the message
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusMethodNotAllowed {
		return fmt.Errorf("delete session: %w", statusError(resp.StatusCode, s.in.Bytes()))
	}
	return nil
}

// toolError builds the error for an isError result from its first text.
func toolError(raw []byte) error {
	var t toolErrorText
	if err := json.Unmarshal(raw, &t); err == nil && len(t.Result.Content) > 0 {
		return fmt.Errorf("tool error: %s", truncate(t.Result.Content[0].Text))
	}
	return errors.New("tool error")
}

// statusError describes an unexpected HTTP status, with the start of the
// body because that is usually where servers say why.
func statusError(code int, body []byte) error {
	text := truncate(string(bytes.TrimSpace(body)))
	if text == "" {
		return fmt.Errorf("http status %d", code)
	}
	return fmt.Errorf("http status %d: %s", code, text)
}

func isEventStream(contentType string) bool {
	const es = "text/event-stream"
	return len(contentType) >= len(es) && strings.EqualFold(contentType[:len(es)], es)
}

func truncate(s string) string {
	if len(s) <= errorTextLimit {
		return s
	}
	return s[:errorTextLimit] + "…"
}
