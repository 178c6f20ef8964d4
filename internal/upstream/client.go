// Package upstream connects the gateway to MCP servers: stdio commands,
// Streamable HTTP endpoints and legacy HTTP+SSE endpoints. A Client is one
// upstream session seen as a raw JSON-RPC pipe: it allocates request ids,
// matches responses, maps progress tokens and hands every other message to
// the gateway without decoding more than the envelope.
package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"

	"gatehouse/internal/jsonrpc"
)

// ErrClosed is returned for calls on a client whose connection has ended.
var ErrClosed = errors.New("upstream connection closed")

// Handler receives a message the upstream sent that is not the response to
// a call: notifications and server→client requests. related is the call
// the message belongs to when the transport or a progress token tells
// (nil otherwise). Handlers run on the transport's reader and must not block.
type Handler func(m *jsonrpc.Message, related *Call)

// Options configure a Client.
type Options struct {
	// Name is the upstream's configured name, for logs and errors.
	Name string
	// Logger receives the client's logs; nil means slog.Default().
	Logger *slog.Logger
	// MaxMessageBytes bounds one incoming message.
	MaxMessageBytes int
	// Handler receives notifications and server→client requests.
	Handler Handler
	// OnClose is called once when the connection ends, with the cause.
	OnClose func(err error)
	// Modern marks a connection used with the stateless 2026-07-28
	// revision: requests the gateway makes itself carry the per-request
	// _meta that revision requires.
	Modern bool
}

// Call is one request in flight to the upstream.
type Call struct {
	// Tag is opaque to this package; the gateway stores the downstream
	// request it serves.
	Tag any
	// Method is the request's method.
	Method string

	id           int64
	name         string
	header       map[string]string
	progressDown []byte // the downstream progress token (raw JSON) or nil
	done         chan struct{}
	resp         *jsonrpc.Message
	err          error
}

// ID returns the upstream request id the client allocated.
func (c *Call) ID() int64 { return c.id }

// Client is a JSON-RPC client for one upstream MCP session. It is safe for
// concurrent use.
type Client struct {
	opts Options
	log  *slog.Logger
	w    wire

	nextID atomic.Int64

	mu      sync.Mutex
	pending map[int64]*Call
	closed  bool
	cause   error

	// Set once by Initialize.
	init *InitResult
}

// wire moves messages to and from one upstream session. send delivers one
// message; for request/response transports (Streamable HTTP) it also
// delivers, through the client, every message the upstream sends in reply
// before returning.
type wire interface {
	send(ctx context.Context, msg []byte, call *Call) error
	close(ctx context.Context) error
}

func newClient(opts Options, w wire) *Client {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = 64 << 20
	}
	return &Client{
		opts:    opts,
		log:     opts.Logger.With("upstream", opts.Name),
		w:       w,
		pending: make(map[int64]*Call),
	}
}

// Name returns the upstream's configured name.
func (c *Client) Name() string { return c.opts.Name }

// Modern reports whether the connection carries requests of the stateless
// 2026-07-28 revision (rather than a session of a handshake revision).
func (c *Client) Modern() bool { return c.opts.Modern }

// Init returns the result of the initialize handshake (nil before it).
func (c *Client) Init() *InitResult { return c.init }

// Request describes a request to forward.
type Request struct {
	// Msg is the downstream request being forwarded. Its bytes are reused;
	// only the id (and Params when set) are replaced.
	Msg *jsonrpc.Message
	// Method and Params build a new request when Msg is nil (the gateway's
	// own requests). With Msg set, non-nil Params replace its params.
	Method string
	Params []byte
	// Tag is stored on the Call for the Handler.
	Tag any
	// Name, when set, is sent as the Mcp-Name header on HTTP (the tool or
	// prompt name or resource URI, as the upstream knows it).
	Name string
	// Header holds extra HTTP headers for this request (Mcp-Param-*).
	Header map[string]string
	// Started, when set, is called with the Call once it is registered and
	// before the request is sent, so the caller can cancel it even while
	// Call is still blocked.
	Started func(*Call)
}

// Call sends a request and waits for its response, which it returns with
// the upstream id still in place (callers restore their own id). The
// response may be an error response; err reports transport failures only.
// When ctx ends first the call is abandoned and ctx's error returned; the
// caller decides whether to send notifications/cancelled.
func (c *Client) Call(ctx context.Context, r Request) (*jsonrpc.Message, *Call, error) {
	call := &Call{Tag: r.Tag, done: make(chan struct{})}
	call.id = c.nextID.Add(1)
	idRaw := strconv.AppendInt(make([]byte, 0, 20), call.id, 10)

	var out []byte
	if r.Msg != nil {
		call.Method = r.Msg.Method
		params := r.Params
		if params == nil {
			params = r.Msg.Params
		}
		params, call.progressDown = swapProgressToken(params, idRaw)
		out = jsonrpc.Rewrite(r.Msg, idRaw, params)
	} else {
		call.Method = r.Method
		params := r.Params
		if c.opts.Modern {
			params = withModernMeta(params)
		}
		out = jsonrpc.Request(idRaw, r.Method, params)
	}

	c.mu.Lock()
	if c.closed {
		err := c.cause
		c.mu.Unlock()
		return nil, nil, err
	}
	c.pending[call.id] = call
	c.mu.Unlock()
	call.name = r.Name
	call.header = r.Header
	if r.Started != nil {
		r.Started(call)
	}

	if err := c.w.send(ctx, out, call); err != nil {
		c.forget(call.id)
		return nil, call, err
	}
	select {
	case <-call.done:
		return call.resp, call, call.err
	case <-ctx.Done():
		c.forget(call.id)
		return nil, call, ctx.Err()
	}
}

func (c *Client) forget(id int64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// Cancel tells the upstream to stop working on call (notifications/cancelled).
func (c *Client) Cancel(ctx context.Context, call *Call, reason string) error {
	params := []byte(`{"requestId":` + strconv.FormatInt(call.id, 10) + `,"reason":` + string(jsonrpc.Quote(reason)) + `}`)
	return c.Notify(ctx, jsonrpc.Notification("notifications/cancelled", params))
}

// Notify sends a notification (raw message).
func (c *Client) Notify(ctx context.Context, msg []byte) error {
	if err := c.errIfClosed(); err != nil {
		return err
	}
	return c.w.send(ctx, msg, nil)
}

// Reply answers a server→client request; msg is a complete response
// carrying the upstream's own request id.
func (c *Client) Reply(ctx context.Context, msg []byte) error {
	if err := c.errIfClosed(); err != nil {
		return err
	}
	return c.w.send(ctx, msg, nil)
}

func (c *Client) errIfClosed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.cause
	}
	return nil
}

// Closed reports whether the connection has ended.
func (c *Client) Closed() bool { return c.errIfClosed() != nil }

// Close ends the session and fails calls in flight.
func (c *Client) Close(ctx context.Context) error {
	c.fail(fmt.Errorf("%w: %s closed by the gateway", ErrClosed, c.opts.Name))
	return c.w.close(ctx)
}

// fail marks the client closed and completes every pending call with err.
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.cause = err
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	for _, call := range pending {
		call.err = err
		close(call.done)
	}
	if c.opts.OnClose != nil {
		c.opts.OnClose(err)
	}
}

// InFlight returns the calls currently waiting for a response.
func (c *Client) InFlight() []*Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Call, 0, len(c.pending))
	for _, call := range c.pending {
		out = append(out, call)
	}
	return out
}

// deliver routes one message received from the upstream. related is the call
// whose response stream carried it, if the transport knows.
func (c *Client) deliver(raw []byte, related *Call) {
	m, err := jsonrpc.Parse(raw)
	if err != nil {
		c.log.Warn("dropping malformed message from upstream", "error", err, "bytes", len(raw))
		return
	}
	switch m.Kind {
	case jsonrpc.KindResult, jsonrpc.KindError:
		id, err := strconv.ParseInt(string(m.ID), 10, 64)
		if err != nil {
			c.log.Warn("response with an id the gateway did not send", "id", string(m.ID))
			return
		}
		c.mu.Lock()
		call := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if call == nil {
			c.log.Debug("response for an abandoned call", "id", id)
			return
		}
		call.resp = m
		close(call.done)
	case jsonrpc.KindNotification:
		if m.Method == "notifications/progress" {
			call, fixed := c.restoreProgressToken(m)
			if call == nil {
				// Every token the gateway sends is one of its own; a
				// progress notification that maps to no call in flight is
				// stale (the call was answered, cancelled or timed out) and
				// must not reach anyone.
				c.log.Debug("dropping progress for a request no longer in flight")
				return
			}
			m, related = fixed, call
		} else if related == nil {
			related = c.subscriptionCall(m)
		}
		c.opts.Handler(m, related)
	case jsonrpc.KindRequest:
		c.opts.Handler(m, related)
	}
}

// failTooLarge fails the call answered by a message that was dropped for
// exceeding MaxMessageBytes, when the message's start (head) names its id,
// so the caller learns why at once instead of waiting for its timeout.
func (c *Client) failTooLarge(head []byte) {
	var id []byte
	// head is truncated, so Members ends in an error; the id usually comes
	// before the result and is reported before that.
	_ = jsonrpc.Members(head, func(m jsonrpc.Member) bool {
		if m.NameIs("id") {
			id = head[m.Start:m.End]
			return false
		}
		return true
	})
	n, err := strconv.ParseInt(string(id), 10, 64)
	if err != nil {
		return
	}
	c.mu.Lock()
	call := c.pending[n]
	delete(c.pending, n)
	c.mu.Unlock()
	if call == nil {
		return
	}
	call.err = fmt.Errorf("%s: response larger than %d bytes (limits.max_message_bytes)", c.opts.Name, c.opts.MaxMessageBytes)
	close(call.done)
}

// pendingCall returns the call with the given upstream id.
func (c *Client) pendingCall(id int64) *Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending[id]
}

// SubscriptionIDKey tags notifications of a subscriptions/listen stream
// (2026-07-28) with the id of the listen request.
const SubscriptionIDKey = "io.modelcontextprotocol/subscriptionId"

// subscriptionCall finds the subscriptions/listen call a notification
// belongs to from its _meta subscription id (on stdio there is no other
// way to tell).
func (c *Client) subscriptionCall(m *jsonrpc.Message) *Call {
	if m.Params == nil || m.Params[0] != '{' {
		return nil
	}
	meta, ok := jsonrpc.Get(m.Params, "_meta")
	if !ok || meta[0] != '{' {
		return nil
	}
	sid, ok := jsonrpc.Get(meta, SubscriptionIDKey)
	if !ok {
		return nil
	}
	id, err := strconv.ParseInt(string(sid), 10, 64)
	if err != nil {
		return nil
	}
	if call := c.pendingCall(id); call != nil && call.Method == "subscriptions/listen" {
		return call
	}
	return nil
}

// swapProgressToken replaces params._meta.progressToken, when present, with
// the upstream request id, so tokens of different downstream clients never
// collide on a shared upstream. It returns the new params and the original
// token.
func swapProgressToken(params, idRaw []byte) ([]byte, []byte) {
	if params == nil || params[0] != '{' {
		return params, nil
	}
	meta, ok := jsonrpc.Get(params, "_meta")
	if !ok || len(meta) == 0 || meta[0] != '{' {
		return params, nil
	}
	tok, ok := jsonrpc.Get(meta, "progressToken")
	if !ok {
		return params, nil
	}
	newMeta, err := jsonrpc.Set(meta, "progressToken", idRaw)
	if err != nil {
		return params, nil
	}
	newParams, err := jsonrpc.Set(params, "_meta", newMeta)
	if err != nil {
		return params, nil
	}
	return newParams, append([]byte(nil), tok...)
}

// restoreProgressToken maps an upstream progress notification back to the
// call it belongs to and puts the downstream token back.
func (c *Client) restoreProgressToken(m *jsonrpc.Message) (*Call, *jsonrpc.Message) {
	tok, ok := jsonrpc.Get(m.Params, "progressToken")
	if !ok {
		return nil, nil
	}
	id, err := strconv.ParseInt(string(tok), 10, 64)
	if err != nil {
		return nil, nil
	}
	call := c.pendingCall(id)
	if call == nil || call.progressDown == nil {
		return nil, nil
	}
	params, err := jsonrpc.Set(m.Params, "progressToken", call.progressDown)
	if err != nil {
		return nil, nil
	}
	fixed, err := jsonrpc.Parse(jsonrpc.Notification(m.Method, params))
	if err != nil {
		return nil, nil
	}
	return call, fixed
}

// modernMeta is the _meta the gateway sends on its own requests in the
// stateless revision: it declares no client capabilities.
var modernMeta = []byte(`{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"gatehouse","version":"0.1.0"}}`)

// withModernMeta adds the per-request _meta to params unless present.
func withModernMeta(params []byte) []byte {
	if params == nil {
		params = []byte(`{}`)
	}
	if params[0] != '{' {
		return params
	}
	if _, ok := jsonrpc.Get(params, "_meta"); ok {
		return params
	}
	out, err := jsonrpc.Set(params, "_meta", modernMeta)
	if err != nil {
		return params
	}
	return out
}

// InitResult is what the upstream answered to initialize.
type InitResult struct {
	Raw             json.RawMessage // the whole result object
	ProtocolVersion string
	Capabilities    map[string]json.RawMessage
	ServerInfo      json.RawMessage
	Instructions    string
}

// Has reports whether the upstream declared capability name (tools,
// prompts, resources, logging, completions, ...).
func (r *InitResult) Has(name string) bool {
	if r == nil {
		return false
	}
	_, ok := r.Capabilities[name]
	return ok
}

// LatestLegacyVersion is the newest protocol revision with the initialize
// handshake; the gateway asks upstreams for it unless told otherwise.
const LatestLegacyVersion = "2025-11-25"

// ClientInfo is how the gateway introduces itself to upstreams.
var ClientInfo = json.RawMessage(`{"name":"gatehouse","version":"0.1.0"}`)

// Initialize performs the initialize handshake with the given protocol
// version and client capabilities (raw JSON object).
func (c *Client) Initialize(ctx context.Context, version string, capabilities []byte) (*InitResult, error) {
	params := []byte(`{"protocolVersion":` + string(jsonrpc.Quote(version)) +
		`,"capabilities":` + string(capabilities) +
		`,"clientInfo":` + string(ClientInfo) + `}`)
	resp, _, err := c.Call(ctx, Request{Method: "initialize", Params: params})
	if err != nil {
		return nil, fmt.Errorf("initialize: %w", err)
	}
	if resp.Kind == jsonrpc.KindError {
		e := jsonrpc.ParseErrorObject(resp.Error)
		return nil, fmt.Errorf("initialize refused: %d %s", e.Code, e.Message)
	}
	var res struct {
		ProtocolVersion string                     `json:"protocolVersion"`
		Capabilities    map[string]json.RawMessage `json:"capabilities"`
		ServerInfo      json.RawMessage            `json:"serverInfo"`
		Instructions    string                     `json:"instructions"`
	}
	if err := json.Unmarshal(resp.Result, &res); err != nil {
		return nil, fmt.Errorf("initialize: malformed result: %w", err)
	}
	if res.ProtocolVersion == "" {
		return nil, errors.New("initialize: result has no protocolVersion")
	}
	ir := &InitResult{
		Raw:             append(json.RawMessage(nil), resp.Result...),
		ProtocolVersion: res.ProtocolVersion,
		Capabilities:    res.Capabilities,
		ServerInfo:      res.ServerInfo,
		Instructions:    res.Instructions,
	}
	if hw, ok := c.w.(interface{ setProtocolVersion(string) }); ok {
		hw.setProtocolVersion(res.ProtocolVersion)
	}
	c.init = ir
	if err := c.Notify(ctx, jsonrpc.Notification("notifications/initialized", nil)); err != nil {
		return nil, fmt.Errorf("initialized notification: %w", err)
	}
	if hw, ok := c.w.(interface{ initialized(*Client) }); ok {
		hw.initialized(c)
	}
	return ir, nil
}
