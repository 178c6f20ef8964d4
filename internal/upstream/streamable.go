package upstream

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/internal/jsonrpc"
	"gatehouse/internal/sse"
)

// HTTPConfig describes an HTTP upstream.
type HTTPConfig struct {
	URL     string
	Headers map[string]string // sent on every request; secrets, never logged
	// Client performs the requests; share one per upstream so connections
	// are reused. nil means a default client.
	Client *http.Client
	// UseNetHTTP sends POSTs through Client too (otherwise a lighter
	// HTTP/1.1 connection pool is used where no proxy is configured).
	UseNetHTTP bool
}

// ErrSessionExpired means the upstream no longer knows the session (HTTP 404
// on a request carrying Mcp-Session-Id). The request was not processed, so
// the gateway may open a new session and retry.
var ErrSessionExpired = errors.New("upstream session expired")

// StatusError is an unexpected HTTP status from an upstream.
type StatusError struct {
	Status int
	Body   string // first bytes, for logs
	RPC    *jsonrpc.Error
}

func (e *StatusError) Error() string {
	if e.RPC != nil {
		return fmt.Sprintf("HTTP %d: %s", e.Status, e.RPC.Message)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Status, strings.TrimSpace(e.Body))
}

// streamableWire speaks the Streamable HTTP transport (2025-03-26 and
// later). Each request is a POST whose response is JSON or an SSE stream of
// messages ending with the response; server-initiated messages arrive on an
// optional GET stream.
type streamableWire struct {
	cfg        HTTPConfig
	h1         *h1Pool // nil: use cfg.Client
	requestURI string
	client     *Client
	version    atomic.Pointer[string]
	session    atomic.Pointer[string]

	getOnce   sync.Once
	getCancel context.CancelFunc
	getDone   chan struct{}
}

// NewStreamableHTTP returns a client for a Streamable HTTP upstream. No
// request is sent until the first Call or Initialize.
func NewStreamableHTTP(cfg HTTPConfig, opts Options) *Client {
	if cfg.Client == nil {
		cfg.Client = http.DefaultClient
	}
	w := &streamableWire{cfg: cfg}
	if u, err := url.Parse(cfg.URL); err == nil {
		w.requestURI = u.RequestURI()
		if !cfg.UseNetHTTP {
			w.h1 = newH1Pool(cfg.URL)
		}
	}
	c := newClient(opts, w)
	w.client = c
	return c
}

// ModernVersion is the stateless protocol revision.
const ModernVersion = "2026-07-28"

// NewStatelessHTTP returns a client that sends every request on its own,
// the way the stateless 2026-07-28 revision works: no initialize, no
// session; each request carries its own _meta.
func NewStatelessHTTP(cfg HTTPConfig, opts Options) *Client {
	opts.Modern = true
	c := NewStreamableHTTP(cfg, opts)
	c.w.(*streamableWire).setProtocolVersion(ModernVersion)
	return c
}

// Stateless reports whether the client sends sessionless 2026-07-28
// requests (cancellation is closing the request's stream, not a message).
func (c *Client) Stateless() bool {
	w, ok := c.w.(*streamableWire)
	if !ok {
		return false
	}
	v := w.version.Load()
	return v != nil && *v == ModernVersion
}

func (w *streamableWire) setProtocolVersion(v string) { w.version.Store(&v) }

// SessionID returns the upstream's Mcp-Session-Id ("" when stateless).
func (c *Client) SessionID() string {
	if w, ok := c.w.(*streamableWire); ok {
		if s := w.session.Load(); s != nil {
			return *s
		}
	}
	return ""
}

func (w *streamableWire) newRequest(ctx context.Context, method string, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.cfg.URL, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range w.cfg.Headers {
		req.Header.Set(k, v)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
	} else {
		req.Header.Set("Accept", "text/event-stream")
	}
	if v := w.version.Load(); v != nil {
		req.Header.Set("Mcp-Protocol-Version", *v)
	}
	if s := w.session.Load(); s != nil {
		req.Header.Set("Mcp-Session-Id", *s)
	}
	return req, nil
}

// post sends one message, through the hand-written HTTP/1.1 pool when
// possible.
func (w *streamableWire) post(ctx context.Context, msg []byte, call *Call) (*http.Response, error) {
	if w.h1 == nil {
		req, err := w.newRequest(ctx, http.MethodPost, msg)
		if err != nil {
			return nil, err
		}
		w.callHeaders(req.Header, call)
		return w.cfg.Client.Do(req)
	}
	h := make(http.Header, 8+len(w.cfg.Headers))
	for k, v := range w.cfg.Headers {
		h.Set(k, v)
	}
	h["Content-Type"] = jsonContentType
	h["Accept"] = acceptBoth
	if v := w.version.Load(); v != nil {
		h["Mcp-Protocol-Version"] = []string{*v}
	}
	if s := w.session.Load(); s != nil {
		h["Mcp-Session-Id"] = []string{*s}
	}
	w.callHeaders(h, call)
	return w.h1.post(ctx, w.requestURI, h, msg)
}

var (
	jsonContentType = []string{"application/json"}
	acceptBoth      = []string{"application/json, text/event-stream"}
)

func (w *streamableWire) callHeaders(h http.Header, call *Call) {
	if call == nil {
		return
	}
	h["Mcp-Method"] = []string{call.Method}
	if call.name != "" {
		h["Mcp-Name"] = []string{headerValue(call.name)}
	}
	for k, v := range call.header {
		h.Set(k, v)
	}
}

func (w *streamableWire) send(ctx context.Context, msg []byte, call *Call) error {
	err := w.sendOnce(ctx, msg, call)
	if err != nil && ctx.Err() != nil {
		// A read or write cut short by the context's end (the connection's
		// deadline fires) reports an I/O error; the cause is the context.
		return ctx.Err()
	}
	return redactURL(err)
}

func (w *streamableWire) sendOnce(ctx context.Context, msg []byte, call *Call) error {
	resp, err := w.post(ctx, msg, call)
	if err != nil {
		return fmt.Errorf("%s: %w", w.client.opts.Name, err)
	}
	defer closeBody(resp.Body)
	if call != nil && call.Method == "initialize" {
		if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" {
			w.session.Store(&sid)
		}
	}
	switch {
	case resp.StatusCode == http.StatusAccepted:
		if call != nil {
			return fmt.Errorf("%s: upstream answered a request with 202 Accepted", w.client.opts.Name)
		}
		return nil
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		// Servers of the 2026-07-28 revision answer protocol errors with a
		// 4xx status and the JSON-RPC error as the body: that is the
		// response to the call, not a transport failure.
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if call != nil && resp.StatusCode >= 400 && resp.StatusCode < 500 && w.session.Load() == nil {
			if m, err := jsonrpc.Parse(bytes.TrimSpace(body)); err == nil && m.Kind == jsonrpc.KindError && string(m.ID) == strconv.FormatInt(call.id, 10) {
				w.client.deliver(bytes.TrimSpace(body), call)
				return nil
			}
		}
		if resp.StatusCode == http.StatusNotFound && w.session.Load() != nil {
			return fmt.Errorf("%s: %w", w.client.opts.Name, ErrSessionExpired)
		}
		return statusError(resp.StatusCode, body)
	}
	if call == nil {
		// A notification or response answered with 200: accept and drain.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		body, err := io.ReadAll(io.LimitReader(resp.Body, int64(w.client.opts.MaxMessageBytes)+1))
		if err != nil {
			return fmt.Errorf("%s: reading response: %w", w.client.opts.Name, err)
		}
		if len(body) > w.client.opts.MaxMessageBytes {
			return fmt.Errorf("%s: response larger than %d bytes", w.client.opts.Name, w.client.opts.MaxMessageBytes)
		}
		w.deliverBody(body, call)
	case "text/event-stream":
		lastID, retry, err := w.readStream(resp.Body, call)
		if err != nil && !isDone(call) {
			return err
		}
		// The stream may end before the response (the server closed it to
		// be polled, or the connection broke): resume it with Last-Event-ID.
		for attempt := 0; !isDone(call); attempt++ {
			if lastID == "" || attempt >= 5 {
				return fmt.Errorf("%s: response stream ended without a response", w.client.opts.Name)
			}
			if err := sleepCtx(ctx, retry); err != nil {
				return err
			}
			lastID, retry, err = w.resume(ctx, lastID, retry, call)
			if err != nil && !isDone(call) && lastID == "" {
				return err
			}
		}
	default:
		return fmt.Errorf("%s: unexpected content type %q", w.client.opts.Name, resp.Header.Get("Content-Type"))
	}
	if !isDone(call) {
		return fmt.Errorf("%s: upstream sent no response for request %d", w.client.opts.Name, call.id)
	}
	return nil
}

func isDone(call *Call) bool {
	select {
	case <-call.done:
		return true
	default:
		return false
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// deliverBody hands a JSON body (one message or, from 2025-03-26 servers, a
// batch) to the client.
func (w *streamableWire) deliverBody(body []byte, call *Call) {
	if jsonrpc.IsBatch(body) {
		msgs, err := jsonrpc.SplitBatch(body)
		if err != nil {
			w.client.log.Warn("malformed batch from upstream", "error", err)
			return
		}
		for _, m := range msgs {
			w.client.deliver(m, call)
		}
		return
	}
	w.client.deliver(body, call)
}

// readStream delivers the messages of an SSE response until the call is
// answered or the stream ends. It returns the last event id and retry hint
// for resumption.
func (w *streamableWire) readStream(body io.Reader, call *Call) (string, time.Duration, error) {
	r := sse.NewReader(body, w.client.opts.MaxMessageBytes)
	retry := time.Second
	lastID := ""
	for {
		ev, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return lastID, retry, nil
			}
			return lastID, retry, err
		}
		lastID = ev.ID
		if ev.HasRetry {
			retry = ev.Retry
		}
		if ev.Empty() || (ev.Type != "message" && ev.Type != "") {
			continue
		}
		w.deliverBody(bytes.Clone(ev.Data), call)
		if call != nil && isDone(call) {
			return lastID, retry, nil
		}
	}
}

// resume reopens a broken response stream with GET and Last-Event-ID.
func (w *streamableWire) resume(ctx context.Context, lastID string, retry time.Duration, call *Call) (string, time.Duration, error) {
	req, err := w.newRequest(ctx, http.MethodGet, nil)
	if err != nil {
		return "", retry, err
	}
	req.Header.Set("Last-Event-ID", lastID)
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		return lastID, retry, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", retry, w.statusError(resp)
	}
	id, r, err := w.readStream(resp.Body, call)
	if id == "" {
		id = lastID
	}
	return id, r, err
}

func (w *streamableWire) statusError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return fmt.Errorf("%s: %w", w.client.opts.Name, statusError(resp.StatusCode, body))
}

func statusError(status int, body []byte) *StatusError {
	if len(body) > 4096 {
		body = body[:4096]
	}
	se := &StatusError{Status: status, Body: string(body)}
	if m, err := jsonrpc.Parse(bytes.TrimSpace(body)); err == nil && m.Kind == jsonrpc.KindError {
		se.RPC = jsonrpc.ParseErrorObject(m.Error)
	}
	return se
}

// initialized starts the standalone GET stream for server-initiated
// messages once the session exists.
func (w *streamableWire) initialized(c *Client) {
	w.getOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		w.getCancel = cancel
		w.getDone = make(chan struct{})
		go w.listen(ctx)
	})
}

// listen keeps the GET stream open, resuming after disconnects, until the
// client closes. A 405 means the server offers no such stream.
func (w *streamableWire) listen(ctx context.Context) {
	defer close(w.getDone)
	lastID := ""
	backoff := time.Second
	for ctx.Err() == nil && !w.client.Closed() {
		req, err := w.newRequest(ctx, http.MethodGet, nil)
		if err != nil {
			return
		}
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := w.cfg.Client.Do(req)
		if err == nil {
			switch {
			case resp.StatusCode == http.StatusMethodNotAllowed:
				resp.Body.Close()
				return
			case resp.StatusCode == http.StatusNotFound:
				resp.Body.Close()
				w.client.log.Debug("upstream session gone; standalone stream stopped")
				return
			case resp.StatusCode != http.StatusOK:
				resp.Body.Close()
			default:
				backoff = time.Second
				var retry time.Duration
				var id string
				id, retry, _ = w.readStream(resp.Body, nil)
				resp.Body.Close()
				if id != "" {
					lastID = id
				}
				if retry > 0 {
					backoff = retry
				}
			}
		}
		if sleepCtx(ctx, backoff) != nil {
			return
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// closeBody closes a response body, first reading what is left of it when
// that is quick, so the connection can be reused: an SSE response whose
// final message was read usually ends right after it.
func closeBody(b io.ReadCloser) {
	if d, ok := b.(interface{ drain(time.Duration) }); ok {
		d.drain(50 * time.Millisecond)
	}
	b.Close()
}

// close ends the session with DELETE, as the transport asks clients to.
func (w *streamableWire) close(ctx context.Context) error {
	if w.h1 != nil {
		defer w.h1.close()
	}
	if w.getCancel != nil {
		w.getCancel()
		<-w.getDone
	}
	if w.session.Load() == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := w.newRequest(ctx, http.MethodDelete, nil)
	if err != nil {
		return err
	}
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// headerValue encodes a value for an Mcp-Name or Mcp-Param header: plain
// when it is visible ASCII without surrounding space, otherwise in the
// base64 sentinel form the 2026-07-28 transport defines.
func headerValue(v string) string {
	plain := v != "" && v[0] != ' ' && v[len(v)-1] != ' ' && v[0] != '\t' && v[len(v)-1] != '\t'
	for i := 0; plain && i < len(v); i++ {
		c := v[i]
		if c < 0x20 && c != '\t' || c > 0x7e {
			plain = false
		}
	}
	if plain && strings.HasPrefix(v, "=?base64?") && strings.HasSuffix(v, "?=") {
		plain = false
	}
	if plain {
		return v
	}
	return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(v)) + "?="
}

// redactURL removes the query and user info from the URL of a *url.Error:
// upstream URLs may carry credentials (?api_key=…), and errors end up in
// logs and in messages to clients.
func redactURL(err error) error {
	var ue *url.Error
	if err == nil || !errors.As(err, &ue) {
		return err
	}
	u, perr := url.Parse(ue.URL)
	if perr != nil {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	u.RawQuery, u.User, u.Fragment = "", nil, ""
	clean := &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
	return errors.New(strings.Replace(err.Error(), ue.Error(), clean.Error(), 1))
}
