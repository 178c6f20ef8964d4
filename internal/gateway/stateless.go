package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"gatehouse/internal/identity"
	"gatehouse/internal/jsonrpc"
	"gatehouse/internal/upstream"
)

// HandleStateless serves one request of the stateless 2026-07-28 revision
// on virtual server vsName. header carries Mcp-Param-* headers to pass to
// HTTP upstreams. ctx is the HTTP request's: in this revision closing the
// response stream cancels the request.
func (g *Gateway) HandleStateless(ctx context.Context, vsName string, m *jsonrpc.Message, header map[string]string, r Replier) {
	vs, ok := g.Server(vsName)
	if !ok {
		replyError(r, m.ID, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, fmt.Sprintf("no virtual server %q", vsName)))
		return
	}
	x := &exchange{g: g, vs: vs, modern: true, m: m, r: r, header: header}
	x.audit.start = time.Now()
	x.audit.principal, _ = identity.FromContext(ctx)
	x.audit.source, _ = ctx.Value(sourceKey{}).(string)
	if g.auditRefuses() {
		x.fail(errAuditUnavailable)
		return
	}
	if m.Method == "server/discover" {
		x.discover(ctx)
		return
	}
	x.dispatchStateless(ctx)
}

func (x *exchange) dispatchStateless(ctx context.Context) {
	switch x.m.Method {
	case "initialize":
		x.fail(jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "initialize is not part of protocol revision 2026-07-28"))
		return
	case "subscriptions/listen":
		x.listen(ctx)
		return
	}
	x.dispatch(ctx)
}

// discover answers server/discover. A transparent server whose upstream
// speaks 2026-07-28 passes the upstream's answer through; otherwise the
// gateway describes the virtual server itself.
func (x *exchange) discover(ctx context.Context) {
	if x.vs.transparent {
		mb := x.vs.members[0]
		if _, err := x.g.live(mb.e).statelessClient(ctx); err == nil && x.g.live(mb.e).speaksModern() {
			x.forward(ctx, mb, nil, "")
			return
		}
	}
	// Connect members (in parallel) so their capabilities are known.
	var wg sync.WaitGroup
	for _, mb := range x.vs.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := x.g.live(mb.e)
			cctx, cancel := context.WithTimeout(ctx, e.cfg.Timeouts.Connect.Std())
			defer cancel()
			_, _ = e.statelessClient(cctx)
		}()
	}
	wg.Wait()
	caps, instructions := mergeCapabilities(x.vs)
	delete(caps, "logging") // per-request log levels replace logging/setLevel
	if x.vs.instructions != nil {
		instructions = *x.vs.instructions
	}
	res := map[string]any{
		"resultType":        "complete",
		"supportedVersions": SupportedVersions(),
		"capabilities":      caps,
		"ttlMs":             0,
		"cacheScope":        "public",
		"_meta": map[string]any{
			"io.modelcontextprotocol/serverInfo": map[string]string{"name": "gatehouse/" + x.vs.Name, "version": serverVersion},
		},
	}
	if instructions != "" {
		res["instructions"] = instructions
	}
	b, _ := json.Marshal(res)
	x.reply(jsonrpc.ResultResponse(x.m.ID, b), nil)
}

// envelopeKeys are the _meta members of a 2026-07-28 request that stand in
// for the initialize handshake. They mean nothing in a session of an older
// revision, where the handshake already said all of it.
var envelopeKeys = []string{
	"io.modelcontextprotocol/protocolVersion",
	"io.modelcontextprotocol/clientCapabilities",
	"io.modelcontextprotocol/clientInfo",
	"io.modelcontextprotocol/logLevel",
}

// withoutEnvelope returns params without the per-request envelope of the
// stateless revision (and without _meta if nothing else was in it). Every
// other byte is kept. It returns params itself when there is nothing to
// remove or params cannot be edited.
func withoutEnvelope(params []byte) []byte {
	if len(params) == 0 || params[0] != '{' {
		return params
	}
	meta, ok := jsonrpc.Get(params, "_meta")
	if !ok || len(meta) == 0 || meta[0] != '{' {
		return params
	}
	changed := false
	for _, k := range envelopeKeys {
		if _, ok := jsonrpc.Get(meta, k); !ok {
			continue
		}
		m, err := jsonrpc.Delete(meta, k)
		if err != nil {
			return params
		}
		meta, changed = m, true
	}
	if !changed {
		return params
	}
	members := 0
	if err := jsonrpc.Members(meta, func(jsonrpc.Member) bool { members++; return true }); err != nil {
		return params
	}
	var out []byte
	var err error
	if members == 0 {
		out, err = jsonrpc.Delete(params, "_meta")
	} else {
		out, err = jsonrpc.Set(params, "_meta", meta)
	}
	if err != nil {
		return params
	}
	return out
}

// statelessClient returns the connection for stateless requests: the
// modern slot when the upstream speaks 2026-07-28, else the legacy slot
// (the gateway translates).
func (e *entry) statelessClient(ctx context.Context) (*upstream.Client, error) {
	if err := e.probe(ctx); err != nil {
		return nil, err
	}
	if !e.speaksModern() {
		return e.sharedClient(ctx)
	}
	if !e.stdio {
		return e.get(ctx, &e.modern, func(ctx context.Context) (*upstream.Client, error) {
			t, err := e.target(ctx, "")
			if err != nil {
				return nil, err
			}
			return upstream.NewStatelessHTTP(*t.HTTP, e.modernOptions()), nil
		})
	}
	return e.get(ctx, &e.modern, e.connectModernStdio)
}

func (e *entry) modernOptions() upstream.Options {
	return upstream.Options{Name: e.name, Logger: e.g.log, MaxMessageBytes: e.maxMsg, Handler: e.handleModern, Modern: true}
}

// speaksModern reports whether the upstream answered server/discover with
// the stateless revision.
func (e *entry) speaksModern() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.speaks == 1
}

// probe finds out once whether the upstream speaks 2026-07-28 by sending
// server/discover: over a sessionless POST for HTTP, or to a fresh process
// for stdio, which then becomes the modern slot's connection.
func (e *entry) probe(ctx context.Context) error {
	e.probeMu.Lock()
	defer e.probeMu.Unlock()
	e.mu.Lock()
	known, retired := e.speaks != 0, e.retired
	e.mu.Unlock()
	if known {
		return nil
	}
	if retired {
		return &UnavailableError{e.name, "removed from the configuration"}
	}
	var c *upstream.Client
	if e.stdio {
		var err error
		c, err = e.startStdio(e.modernOptions())
		if err != nil {
			return &UnavailableError{e.name, err.Error()}
		}
	} else {
		t, err := e.target(ctx, "")
		if err != nil {
			return &UnavailableError{e.name, err.Error()}
		}
		c = upstream.NewStatelessHTTP(*t.HTTP, e.modernOptions())
	}
	pctx, cancel := context.WithTimeout(ctx, e.cfg.Timeouts.Connect.Std())
	defer cancel()
	modern, err := discoverModern(pctx, c)
	if err != nil && !e.stdio {
		// Unreachable: decide later.
		return &UnavailableError{e.name, err.Error()}
	}
	speaks := -1
	if modern {
		speaks = 1
	}
	e.mu.Lock()
	e.speaks = speaks
	e.mu.Unlock()
	if e.stdio {
		installed := false
		if modern {
			e.modern.mu.Lock()
			// A reload may have retired the entry (and closed its slots)
			// while the probe ran: then nobody would close this process.
			if !e.isRetired() {
				e.modern.client = c
				installed = true
			}
			e.modern.mu.Unlock()
		}
		if !installed {
			go c.Close(context.Background())
		}
	}
	return nil
}

// discoverModern sends server/discover and reports whether the answer
// lists 2026-07-28.
func discoverModern(ctx context.Context, c *upstream.Client) (bool, error) {
	params := []byte(`{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":` + string(upstream.ClientInfo) + `}}`)
	resp, _, err := c.Call(ctx, upstream.Request{Method: "server/discover", Params: params})
	if err != nil {
		var se *upstream.StatusError
		if errors.As(err, &se) {
			return false, nil // answered, but not as a modern server
		}
		return false, err
	}
	if resp.Kind != jsonrpc.KindResult {
		return false, nil
	}
	var r struct {
		Versions []string `json:"supportedVersions"`
	}
	if json.Unmarshal(resp.Result, &r) != nil {
		return false, nil
	}
	return slices.Contains(r.Versions, ModernVersion), nil
}

// connectModernStdio starts a process for stateless traffic.
func (e *entry) connectModernStdio(ctx context.Context) (*upstream.Client, error) {
	c, err := e.startStdio(e.modernOptions())
	if err != nil {
		return nil, err
	}
	if ok, err := discoverModern(ctx, c); err != nil || !ok {
		_ = c.Close(context.Background())
		if err == nil {
			err = errors.New("upstream no longer speaks 2026-07-28")
		}
		return nil, err
	}
	return c, nil
}

func (e *entry) startStdio(opts upstream.Options) (*upstream.Client, error) {
	t, err := e.target(context.Background(), "")
	if err != nil {
		return nil, err
	}
	return upstream.StartStdio(*t.Stdio, opts)
}

// handleModern receives messages on the modern slot: those of a call go
// on its stream; anything else has no destination (a stateless client
// only receives what belongs to its requests).
func (e *entry) handleModern(m *jsonrpc.Message, related *upstream.Call) {
	if f, ok := callTag(related); ok {
		relayStateless(e, m, f)
		return
	}
	if m.Kind == jsonrpc.KindRequest {
		msg := jsonrpc.ErrorResponse(m.ID, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "gatehouse: no client to relay this request to"))
		if m.Method == "ping" {
			msg = jsonrpc.ResultResponse(m.ID, []byte(`{}`))
		}
		e.modern.mu.Lock()
		c := e.modern.client
		e.modern.mu.Unlock()
		e.reply(c, msg)
		return
	}
	e.log.Debug("dropping a notification that belongs to no request", "method", m.Method)
}

// relayStateless passes a message an upstream sent while serving a
// stateless request: notifications go on the request's stream; requests
// cannot reach a 2026-07-28 client (it has no server→client requests), so
// the upstream is told.
func relayStateless(e *entry, m *jsonrpc.Message, f *inflight) {
	if m.Kind == jsonrpc.KindRequest {
		c := e.currentClient()
		f.mu.Lock()
		if f.client != nil {
			c = f.client
		}
		f.mu.Unlock()
		if m.Method == "ping" {
			e.reply(c, jsonrpc.ResultResponse(m.ID, []byte(`{}`)))
			return
		}
		e.reply(c, jsonrpc.ErrorResponse(m.ID, jsonrpc.NewError(jsonrpc.CodeMethodNotFound,
			"gatehouse: the client uses the stateless 2026-07-28 revision; server-to-client requests from an upstream of an older revision are not translated to input_required results")))
		return
	}
	f.mu.Lock()
	done, call := f.done, f.call
	f.mu.Unlock()
	if done || (f.dropLogs && m.Method == "notifications/message") {
		return
	}
	msg := m.Raw
	if call != nil && call.Method == "subscriptions/listen" {
		if m.Method == "notifications/subscriptions/acknowledged" {
			return // the gateway acknowledged the client's request itself
		}
		msg = withSubscriptionID(m, f.downID)
	}
	_ = f.r.Send(msg)
}

// withSubscriptionID puts the client's listen request id back into a
// notification's _meta, where the upstream put the gateway's id.
func withSubscriptionID(m *jsonrpc.Message, downID []byte) []byte {
	meta, ok := jsonrpc.Get(m.Params, "_meta")
	if !ok || meta[0] != '{' {
		return m.Raw
	}
	if _, ok := jsonrpc.Get(meta, upstream.SubscriptionIDKey); !ok {
		return m.Raw
	}
	meta, err := jsonrpc.Set(meta, upstream.SubscriptionIDKey, downID)
	if err != nil {
		return m.Raw
	}
	params, err := jsonrpc.Set(m.Params, "_meta", meta)
	if err != nil {
		return m.Raw
	}
	return jsonrpc.Rewrite(m, nil, params)
}
