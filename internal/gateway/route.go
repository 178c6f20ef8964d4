package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/internal/inspect"
	"gatehouse/internal/jsonrpc"
	"gatehouse/internal/policy"
	"gatehouse/internal/upstream"
)

// exchange is one downstream request being served, in either protocol era.
type exchange struct {
	g      *Gateway
	vs     *VirtualServer
	s      *Session // nil for stateless (2026-07-28) requests
	modern bool     // the client speaks 2026-07-28
	m      *jsonrpc.Message
	r      Replier
	// header holds request headers to pass to HTTP upstreams
	// (Mcp-Param-* of the stateless revision).
	header map[string]string

	// cancel ends the exchange's context; cancelled records that the
	// client cancelled the request (it then gets no response).
	cancel    context.CancelFunc
	cancelled atomic.Bool
	mu        sync.Mutex
	calls     []*inflight // upstream calls in flight

	pcaller *policy.Caller // the policy view of the caller, once needed
	audit   auditState
}

// errClientCancelled ends an exchange whose client cancelled it.
var errClientCancelled = errors.New("cancelled by the client")

// Handle serves one request of the session. It returns when the response
// has been passed to r. ctx should be the session's (not the HTTP
// request's): in the stateful revisions a client disconnecting does not
// cancel its request.
func (s *Session) Handle(ctx context.Context, m *jsonrpc.Message, r Replier) {
	vs, err := s.server()
	if err != nil {
		replyError(r, m.ID, err)
		return
	}
	x := &exchange{g: s.g, vs: vs, s: s, m: m, r: r}
	x.audit.start = time.Now()
	if s.g.auditRefuses() {
		x.fail(errAuditUnavailable)
		return
	}
	ctx, x.cancel = context.WithCancel(ctx)
	defer x.cancel()
	s.register(x)
	defer s.unregister(x)
	x.dispatch(ctx)
}

// Context returns a context that ends when the session closes.
func (s *Session) Context() context.Context { return s.ctx }

func replyError(r Replier, id []byte, err error) {
	_ = r.Reply(jsonrpc.ErrorResponse(id, jsonrpc.FromError(err)))
}

func (x *exchange) fail(err error) {
	if x.cancelled.Load() || errors.Is(err, errClientCancelled) {
		x.abandon()
		return
	}
	e := jsonrpc.FromError(err)
	x.reply(jsonrpc.ErrorResponse(x.m.ID, e), e)
}

func (x *exchange) result(result []byte) {
	if x.modern {
		result = completeResult(x.m.Method, result)
	}
	x.reply(jsonrpc.ResultResponse(x.m.ID, result), nil)
}

func (x *exchange) dispatch(ctx context.Context) {
	switch x.m.Method {
	case "ping":
		x.result([]byte(`{}`))
	case "initialize":
		x.fail(jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "session is already initialized"))
	case "tools/list", "prompts/list", "resources/list", "resources/templates/list":
		x.list(ctx)
	case "tools/call":
		x.byName(ctx, true)
	case "prompts/get":
		x.byName(ctx, false)
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		x.byURI(ctx)
	case "completion/complete":
		x.complete(ctx)
	case "logging/setLevel":
		x.setLevel(ctx)
	default:
		x.other(ctx)
	}
}

// param returns a top-level params member as a string.
func (x *exchange) paramString(key string) (string, bool) {
	if x.m.Params == nil {
		return "", false
	}
	v, ok := jsonrpc.Get(x.m.Params, key)
	if !ok {
		return "", false
	}
	return jsonrpc.String(v)
}

// clientFor returns the connection to use for entry e.
func (x *exchange) clientFor(ctx context.Context, e *entry) (*upstream.Client, error) {
	e = x.g.live(e) // never (re)connect an entry a reload retired
	if x.s != nil {
		return x.s.client(ctx, e)
	}
	return e.statelessClient(ctx)
}

// wantsLogs reports whether a stateless request asked for log messages
// (_meta io.modelcontextprotocol/logLevel); without it, the 2026-07-28
// revision forbids sending any.
func (x *exchange) wantsLogs() bool {
	meta, ok := jsonrpc.Get(x.m.Params, "_meta")
	if !ok || len(meta) == 0 || meta[0] != '{' {
		return false
	}
	_, ok = jsonrpc.Get(meta, "io.modelcontextprotocol/logLevel")
	return ok
}

// timeoutFor returns how long to wait for the upstream's answer.
func timeoutFor(e *entry, method string) time.Duration {
	switch method {
	case "subscriptions/listen":
		return 0 // lives until the client closes it
	case "tools/call":
		return e.cfg.Timeouts.ToolCall.Std()
	}
	return e.cfg.Timeouts.Request.Std()
}

// call forwards the request to one member with the given params (nil keeps
// the client's) and returns the upstream's response message.
func (x *exchange) call(ctx context.Context, mb *member, params []byte, name string) (*jsonrpc.Message, error) {
	e := mb.e
	timeout := timeoutFor(e, x.m.Method)
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	retried := false // after the upstream forgot the session
	for {
		// A reload may have replaced the upstream's entry (its settings
		// changed) since the request was routed: use the current one. Each
		// such retry follows a newer reload, so the loop ends.
		e = x.g.live(e)
		c, err := x.clientFor(ctx, e)
		if err != nil {
			if x.g.live(e) != e && ctx.Err() == nil {
				continue // replaced while connecting
			}
			return nil, upstreamError(e, x.m.Method, timeout, err)
		}
		f := &inflight{x: x, session: x.s, r: x.r, downID: x.m.ID, entry: e, dropLogs: x.modern && !x.wantsLogs()}
		if x.s != nil && !x.s.track(f) {
			return nil, errSessionClosed
		}
		sendParams := params
		if x.modern && !c.Modern() {
			// The gateway translates a stateless request for a session of a
			// handshake revision: the per-request envelope must not reach
			// it (go-sdk servers refuse such requests outside 2026-07-28).
			if sendParams == nil {
				sendParams = x.m.Params
			}
			sendParams = withoutEnvelope(sendParams)
		}
		callStart := time.Now()
		resp, call, err := c.Call(ctx, upstream.Request{
			Msg: x.m, Params: sendParams, Tag: f, Name: name, Header: x.header,
			Started: func(call *upstream.Call) { f.setCall(c, call) },
		})
		x.mu.Lock()
		x.audit.upTime += time.Since(callStart)
		if x.audit.upstream == "" {
			x.audit.upstream = e.name
		}
		x.mu.Unlock()
		if x.s != nil {
			x.s.untrack(f)
		} else {
			f.finish()
		}
		if err == nil {
			return resp, nil
		}
		if x.cancelled.Load() {
			return nil, errClientCancelled // the upstreams were told
		}
		if call == nil && errors.Is(err, upstream.ErrClosed) && x.g.live(e) != e && ctx.Err() == nil {
			// A reload closed the connection before the request went out.
			continue
		}
		if call != nil && !c.Stateless() && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
			// Tell the upstream to stop: nobody waits for the answer. (A
			// stateless upstream saw its request stream close instead.)
			reason := "request cancelled"
			if errors.Is(err, context.DeadlineExceeded) {
				reason = "gateway timeout"
			}
			cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
			_ = c.Cancel(cctx, call, reason)
			ccancel()
		}
		if errors.Is(err, upstream.ErrSessionExpired) && x.s != nil && !retried {
			retried = true
			// The upstream forgot the session (it restarted): the request
			// was not processed, so reconnect and send it once more.
			x.s.dropLink(e, c)
			continue
		}
		if x.s != nil && !e.shared && errors.Is(err, upstream.ErrClosed) {
			x.s.dropLink(e, c)
		}
		return nil, upstreamError(e, x.m.Method, timeout, err)
	}
}

// upstreamError turns a failure to reach an upstream into the error the
// client sees: which upstream, and why, without internal detail.
func upstreamError(e *entry, method string, timeout time.Duration, err error) error {
	var ue *UnavailableError
	var se *upstream.StatusError
	switch {
	case errors.As(err, &ue):
		return jsonrpc.Wrap(jsonrpc.CodeUpstreamUnavailable, ue.Error(), err)
	case errors.Is(err, context.DeadlineExceeded):
		return jsonrpc.Wrap(jsonrpc.CodeUpstreamTimeout, fmt.Sprintf("upstream %q did not answer %s within %s", e.name, method, timeout), err)
	case errors.Is(err, errSessionClosed), errors.Is(err, context.Canceled):
		return jsonrpc.Wrap(jsonrpc.CodeInternalError, "request cancelled: the client session ended", err)
	case errors.Is(err, upstream.ErrClosed):
		return jsonrpc.Wrap(jsonrpc.CodeUpstreamUnavailable, fmt.Sprintf("upstream %q closed the connection before answering", e.name), err)
	case errors.As(err, &se):
		return jsonrpc.Wrap(jsonrpc.CodeUpstreamUnavailable, fmt.Sprintf("upstream %q answered HTTP %d", e.name, se.Status), err)
	}
	return jsonrpc.Wrap(jsonrpc.CodeUpstreamUnavailable, fmt.Sprintf("upstream %q failed: %v", e.name, err), err)
}

// forward sends the request to one member and relays the response.
func (x *exchange) forward(ctx context.Context, mb *member, params []byte, name string) {
	resp, err := x.call(ctx, mb, params, name)
	if err != nil {
		x.fail(err)
		return
	}
	x.relayInspected(ctx, resp)
}

// relay passes an upstream response to the client under the client's id.
func (x *exchange) relay(resp *jsonrpc.Message) {
	if x.modern && resp.Kind == jsonrpc.KindResult {
		if fixed := completeResult(x.m.Method, resp.Result); len(fixed) != len(resp.Result) {
			x.reply(jsonrpc.ResultResponse(x.m.ID, fixed), nil)
			return
		}
	}
	var e *jsonrpc.Error
	if resp.Kind == jsonrpc.KindError {
		e = jsonrpc.ParseErrorObject(resp.Error)
	}
	x.reply(jsonrpc.Rewrite(resp, x.m.ID, nil), e)
}

// byName routes tools/call (tool=true) and prompts/get by name.
func (x *exchange) byName(ctx context.Context, tool bool) {
	name, ok := x.paramString("name")
	if !ok {
		x.fail(jsonrpc.NewError(jsonrpc.CodeInvalidParams, x.m.Method+" needs params.name (a string)"))
		return
	}
	x.audit.name, x.audit.kind = name, policy.KindPrompt
	if tool {
		x.audit.kind = policy.KindTool
	}
	mb, up := x.vs.members[0], name
	if !x.vs.transparent {
		var err error
		if mb, up, err = x.resolveName(ctx, name, tool); err != nil {
			x.fail(err)
			return
		}
	}
	if tool {
		if v := x.toolCheck(ctx, mb, up); v != nil {
			x.noteHook(inspect.ActionFlag, v.findings...)
			if v.hide {
				x.fail(quarantinedError(name, v))
				return
			}
		}
	}
	if tool && x.modern {
		if err := x.checkParamHeaders(ctx, mb, up); err != nil {
			x.fail(err)
			return
		}
	}
	kind := policy.KindPrompt
	if tool {
		kind = policy.KindTool
	}
	labels, ok := x.guard(ctx, kind, mb, up, name)
	if !ok {
		if tool {
			x.noteCall(nil, false)
		}
		return
	}
	params := x.m.Params
	if up != name {
		p, err := jsonrpc.Set(x.m.Params, "name", jsonrpc.Quote(up))
		if err != nil {
			x.fail(jsonrpc.NewError(jsonrpc.CodeInvalidParams, "malformed params"))
			return
		}
		params = p
	}
	noted := tool && x.vs.policy != nil // the session's history, for workflows
	var blocked *jsonrpc.Error          // tool arguments, and prompt arguments
	if params, blocked = x.inspectArgs(ctx, params); blocked != nil {
		if noted {
			x.noteCall(nil, false)
		}
		x.fail(blocked)
		return
	}
	resp, err := x.call(ctx, mb, params, up)
	if err != nil {
		if noted {
			x.noteCall(nil, false)
		}
		x.fail(err)
		return
	}
	if noted {
		x.noteCall(labels, resp.Kind == jsonrpc.KindResult)
	}
	x.relayInspected(ctx, resp)
}

// relayInspected relays an upstream response, after inspecting the
// result of the methods that return content (tool results, prompt
// messages, resource contents).
func (x *exchange) relayInspected(ctx context.Context, resp *jsonrpc.Message) {
	switch x.m.Method {
	case "tools/call", "prompts/get", "resources/read":
	default:
		x.relay(resp)
		return
	}
	resp, blocked := x.inspectResponse(ctx, resp)
	if blocked != nil {
		x.fail(blocked)
		return
	}
	x.relay(resp)
}

// checkParamHeaders validates the Mcp-Param-* headers of a stateless
// tools/call against the tool's x-mcp-header annotations. The gateway
// processes the body, so it must check them even when an upstream will too.
func (x *exchange) checkParamHeaders(ctx context.Context, mb *member, up string) error {
	c, err := x.clientFor(ctx, mb.e)
	if err != nil {
		return nil // the call itself will report the upstream as unavailable
	}
	cl, err := mb.e.catalogFor(ctx, c, "tools/list")
	if err != nil {
		return nil
	}
	if e := checkParamHeaders(cl.params[up], x.header, x.m.Params); e != nil {
		return e
	}
	return nil
}

// resolveName finds the member serving a client-visible tool or prompt
// name. Names with a member's prefix or rename are routed directly; names
// that could belong to several unprefixed members are looked up in the
// members' lists.
func (x *exchange) resolveName(ctx context.Context, name string, tool bool) (*member, string, error) {
	kind, list := "prompt", "prompts/list"
	if tool {
		kind, list = "tool", "tools/list"
	}
	var candidates []*member
	var ups []string
	for _, mb := range x.vs.members {
		up, definite, ok := mb.upstreamName(name, tool)
		if !ok {
			continue
		}
		if definite {
			return mb, up, nil
		}
		candidates = append(candidates, mb)
		ups = append(ups, up)
	}
	if len(candidates) == 1 && len(x.vs.members) == 1 {
		return candidates[0], ups[0], nil
	}
	for i, mb := range candidates {
		c, err := x.clientFor(ctx, mb.e)
		if err != nil {
			continue
		}
		cl, err := mb.e.catalogFor(ctx, c, list)
		if err != nil {
			continue
		}
		if cl.has(ups[i]) {
			return mb, ups[i], nil
		}
	}
	return nil, "", jsonrpc.NewError(jsonrpc.CodeInvalidParams, fmt.Sprintf("Unknown %s: %s", kind, name))
}

// byURI routes resources/read, subscribe and unsubscribe by URI.
func (x *exchange) byURI(ctx context.Context) {
	uri, ok := x.paramString("uri")
	if !ok {
		x.fail(jsonrpc.NewError(jsonrpc.CodeInvalidParams, x.m.Method+" needs params.uri (a string)"))
		return
	}
	mb := x.vs.members[0]
	if !x.vs.transparent {
		mb = x.resolveURI(ctx, uri)
	}
	x.audit.name, x.audit.kind = uri, policy.KindResource
	if x.m.Method != "resources/unsubscribe" {
		if _, ok := x.guard(ctx, policy.KindResource, mb, uri, uri); !ok {
			return
		}
	}
	if x.s != nil {
		switch x.m.Method {
		case "resources/subscribe":
			x.s.mu.Lock()
			x.s.subs[uri] = struct{}{}
			x.s.mu.Unlock()
		case "resources/unsubscribe":
			x.s.mu.Lock()
			delete(x.s.subs, uri)
			x.s.mu.Unlock()
		}
	}
	if mb != nil {
		if x.s != nil && mb.e.shared && !x.sharedSubscription(mb.e, uri) {
			x.result([]byte(`{}`)) // the shared upstream already has it so
			return
		}
		x.forward(ctx, mb, nil, uri)
		return
	}
	// Not in any cached list: ask each member that serves resources, in
	// order, and keep the first success.
	var last *jsonrpc.Message
	var lastErr error
	for _, mb := range x.vs.members {
		if ir := mb.e.initResult(); ir != nil && !ir.Has("resources") {
			continue
		}
		resp, err := x.call(ctx, mb, nil, uri)
		if err != nil {
			lastErr = err
			continue
		}
		if resp.Kind == jsonrpc.KindResult {
			x.relayInspected(ctx, resp)
			return
		}
		last = resp
	}
	switch {
	case last != nil:
		x.relay(last)
	case lastErr != nil:
		x.fail(lastErr)
	default:
		x.fail(jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Resource not found: "+uri))
	}
}

// resolveURI finds the member listing uri or a template matching it.
func (x *exchange) resolveURI(ctx context.Context, uri string) *member {
	for _, pass := range []string{"resources/list", "resources/templates/list"} {
		for _, mb := range x.vs.members {
			if ir := mb.e.initResult(); ir != nil && !ir.Has("resources") {
				continue
			}
			c, err := x.clientFor(ctx, mb.e)
			if err != nil {
				continue
			}
			cl, err := mb.e.catalogFor(ctx, c, pass)
			if err != nil {
				continue
			}
			if cl.has(uri) || cl.matchesTemplate(uri) {
				return mb
			}
		}
	}
	return nil
}

// complete routes completion/complete by its reference: a prompt by name
// or a resource template by URI.
func (x *exchange) complete(ctx context.Context) {
	if x.vs.transparent && x.vs.policy == nil {
		x.forward(ctx, x.vs.members[0], nil, "")
		return
	}
	ref, ok := jsonrpc.Get(x.m.Params, "ref")
	if !ok {
		x.fail(jsonrpc.NewError(jsonrpc.CodeInvalidParams, "completion/complete needs params.ref"))
		return
	}
	typ, _ := jsonrpc.Get(ref, "type")
	switch t, _ := jsonrpc.String(typ); t {
	case "ref/prompt":
		nameRaw, _ := jsonrpc.Get(ref, "name")
		name, ok := jsonrpc.String(nameRaw)
		if !ok {
			x.fail(jsonrpc.NewError(jsonrpc.CodeInvalidParams, "ref/prompt needs a name"))
			return
		}
		mb, up, err := x.resolveName(ctx, name, false)
		if err != nil {
			x.fail(err)
			return
		}
		// Completions reveal a prompt's arguments: only for prompts the
		// caller may use.
		if _, ok := x.guard(ctx, policy.KindPrompt, mb, up, name); !ok {
			return
		}
		params := x.m.Params
		if up != name {
			newRef, err1 := jsonrpc.Set(ref, "name", jsonrpc.Quote(up))
			p, err2 := jsonrpc.Set(x.m.Params, "ref", newRef)
			if err1 != nil || err2 != nil {
				x.fail(jsonrpc.NewError(jsonrpc.CodeInvalidParams, "malformed params"))
				return
			}
			params = p
		}
		x.forward(ctx, mb, params, "")
	case "ref/resource":
		uriRaw, _ := jsonrpc.Get(ref, "uri")
		uri, ok := jsonrpc.String(uriRaw)
		if !ok {
			x.fail(jsonrpc.NewError(jsonrpc.CodeInvalidParams, "ref/resource needs a uri"))
			return
		}
		mb := x.resolveTemplate(ctx, uri)
		if mb == nil {
			x.fail(jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Unknown resource template: "+uri))
			return
		}
		if _, ok := x.guard(ctx, policy.KindResource, mb, uri, uri); !ok {
			return
		}
		x.forward(ctx, mb, nil, "")
	default:
		x.fail(jsonrpc.NewError(jsonrpc.CodeInvalidParams, "unknown completion reference type"))
	}
}

// resolveTemplate finds the member that lists the template (or resource)
// with exactly this URI.
func (x *exchange) resolveTemplate(ctx context.Context, uri string) *member {
	for _, pass := range []string{"resources/templates/list", "resources/list"} {
		for _, mb := range x.vs.members {
			c, err := x.clientFor(ctx, mb.e)
			if err != nil {
				continue
			}
			cl, err := mb.e.catalogFor(ctx, c, pass)
			if err == nil && cl.has(uri) {
				return mb
			}
		}
	}
	return nil
}

// sharedSubscription applies a subscribe or unsubscribe of this session
// to the shared upstream's subscriber set; it reports whether the request
// must reach the upstream (first subscriber, last unsubscriber).
func (x *exchange) sharedSubscription(e *entry, uri string) bool {
	switch x.m.Method {
	case "resources/subscribe":
		return e.subscribe(x.s, uri)
	case "resources/unsubscribe":
		return e.unsubscribe(x.s, uri)
	}
	return true
}

// setLevel fans logging/setLevel out to every member that logs.
func (x *exchange) setLevel(ctx context.Context) {
	if x.vs.transparent && !(x.s != nil && x.vs.members[0].e.shared) {
		x.forward(ctx, x.vs.members[0], nil, "")
		return
	}
	level, _ := x.paramString("level")
	var lastErr error
	ok := 0
	for _, mb := range x.vs.members {
		if ir := mb.e.initResult(); ir != nil && !ir.Has("logging") {
			continue
		}
		var params []byte
		if x.s != nil && mb.e.shared {
			// A shared upstream runs at the most verbose level any of its
			// sessions asked for; the gateway filters per session.
			send := mb.e.setLevel(x.s, level)
			if send == "" {
				ok++
				continue
			}
			p, err := jsonrpc.Set(x.m.Params, "level", jsonrpc.Quote(send))
			if err != nil {
				x.fail(jsonrpc.NewError(jsonrpc.CodeInvalidParams, "malformed params"))
				return
			}
			params = p
		}
		resp, err := x.call(ctx, mb, params, "")
		if err != nil {
			lastErr = err
			continue
		}
		if resp.Kind == jsonrpc.KindResult {
			ok++
		}
	}
	if ok == 0 && lastErr != nil {
		x.fail(lastErr)
		return
	}
	x.result([]byte(`{}`))
}

// other forwards a method the gateway does not interpret (tasks/*, custom
// and future methods) to the first member that is up, unchanged.
func (x *exchange) other(ctx context.Context) {
	var lastErr error
	for _, mb := range x.vs.members {
		resp, err := x.call(ctx, mb, nil, "")
		if err != nil {
			lastErr = err
			var ue *jsonrpc.Error
			if errors.As(err, &ue) && ue.Code == jsonrpc.CodeUpstreamUnavailable {
				continue
			}
			break
		}
		x.relay(resp)
		return
	}
	x.fail(lastErr)
}
