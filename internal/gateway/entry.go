package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/internal/config"
	"gatehouse/internal/jsonrpc"
	"gatehouse/internal/upstream"
)

// relayCapabilities are the client features the gateway can relay from an
// upstream to downstream clients; shared upstream connections are opened
// with them so any attached client's features can be used.
var relayCapabilities = []byte(`{"roots":{"listChanged":true},"sampling":{},"elicitation":{"form":{},"url":{}}}`)

// entry is one configured upstream in the pool. It has up to two shared
// connections ("slots"):
//
//   - legacy: for stdio, the process every stateful session shares; for
//     HTTP, the gateway's own session, used for stateless clients of an
//     upstream that only speaks the handshake revisions and for catalogs.
//     HTTP sessions otherwise get one upstream session each (see Session).
//   - modern: for an upstream that speaks 2026-07-28, the connection that
//     carries stateless requests: a second stdio process (eras are not
//     mixed on one process: a server may switch a connection to the era of
//     the first modern request it sees) or a sessionless HTTP client.
type entry struct {
	g     *Gateway
	name  string
	cfg   *config.Upstream
	fp    string
	stdio bool // a command, not a URL
	// shared: stateful sessions use the legacy slot's connection (a stdio
	// upstream with sharing: shared). Otherwise each session opens its own
	// upstream session (HTTP) or process (stdio, sharing: per_session).
	shared bool
	maxMsg int
	log    *slog.Logger

	legacy slot
	modern slot
	// dial tracks failures to open per-session upstream sessions (HTTP,
	// or stdio with sharing: per_session), for the same backoff.
	dial slot

	mu      sync.Mutex
	retired bool
	// State of the shared connection kept per session (sharedstate.go).
	subs      map[string]map[*Session]struct{}
	levels    map[*Session]string
	sentLevel string
	sessions  map[*Session]struct{} // sessions attached to the legacy slot
	lastInit  *upstream.InitResult
	speaks    int // 0 unknown, 1 speaks 2026-07-28, -1 does not
	probeMu   sync.Mutex

	catMu   sync.Mutex
	catalog map[string]*catalogList // by list method, e.g. "tools/list"
}

// slot is one shared connection with start-once and restart backoff.
type slot struct {
	mu        sync.Mutex
	client    *upstream.Client
	starting  chan struct{}
	failures  int
	nextStart time.Time
	lastErr   error
	restartT  *time.Timer
}

func newEntry(g *Gateway, name string, u *config.Upstream, maxMsg int, fp string) *entry {
	return &entry{
		g: g, name: name, cfg: u, fp: fp, maxMsg: maxMsg,
		stdio:    u.IsStdio(),
		shared:   u.IsStdio() && u.Sharing != "per_session",
		log:      g.log.With("upstream", name),
		sessions: map[*Session]struct{}{},
		catalog:  map[string]*catalogList{},
	}
}

// Backoff bounds for restarting a failed upstream.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
)

func backoffFor(failures int) time.Duration {
	d := minBackoff
	for i := 1; i < failures && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// UnavailableError reports an upstream that cannot serve requests now.
type UnavailableError struct {
	Upstream string
	Reason   string
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("upstream %q is unavailable: %s", e.Upstream, e.Reason)
}

func (e *entry) isRetired() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.retired
}

// get returns the slot's connection, starting it with connect if needed.
// Concurrent callers wait for one start, which is not tied to the first
// caller's context. After a failure, starts are refused until the backoff
// has passed.
func (e *entry) get(ctx context.Context, sl *slot, connect func(context.Context) (*upstream.Client, error)) (*upstream.Client, error) {
	for {
		if e.isRetired() {
			return nil, &UnavailableError{e.name, "removed from the configuration"}
		}
		sl.mu.Lock()
		if sl.client != nil && !sl.client.Closed() {
			c := sl.client
			sl.mu.Unlock()
			return c, nil
		}
		if ch := sl.starting; ch != nil {
			sl.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if wait := time.Until(sl.nextStart); wait > 0 {
			err := sl.lastErr
			sl.mu.Unlock()
			return nil, &UnavailableError{e.name, fmt.Sprintf("restarting in %s after: %v", wait.Round(100*time.Millisecond), err)}
		}
		ch := make(chan struct{})
		sl.starting = ch
		sl.mu.Unlock()

		startCtx, cancel := context.WithTimeout(context.Background(), e.cfg.Timeouts.Connect.Std())
		c, err := connect(startCtx)
		cancel()

		sl.mu.Lock()
		sl.starting = nil
		close(ch)
		if err != nil {
			sl.failures++
			sl.lastErr = err
			sl.nextStart = time.Now().Add(backoffFor(sl.failures))
			sl.mu.Unlock()
			e.log.Warn("upstream failed to start", "error", err, "retry_in", backoffFor(sl.failures))
			return nil, &UnavailableError{e.name, err.Error()}
		}
		if e.isRetired() {
			sl.mu.Unlock()
			go c.Close(context.Background())
			return nil, &UnavailableError{e.name, "removed from the configuration"}
		}
		sl.client = c
		sl.mu.Unlock()
		return c, nil
	}
}

// dialBackoff returns an error while per-session connections to the
// upstream are in backoff after a failure.
func (e *entry) dialBackoff() error {
	e.dial.mu.Lock()
	defer e.dial.mu.Unlock()
	if wait := time.Until(e.dial.nextStart); wait > 0 {
		return &UnavailableError{e.name, fmt.Sprintf("retrying in %s after: %v", wait.Round(100*time.Millisecond), e.dial.lastErr)}
	}
	return nil
}

// dialed records the outcome of opening a per-session upstream session.
func (e *entry) dialed(err error) {
	e.dial.mu.Lock()
	defer e.dial.mu.Unlock()
	if err == nil {
		e.dial.failures = 0
		e.dial.nextStart = time.Time{}
		return
	}
	e.dial.failures++
	e.dial.lastErr = err
	e.dial.nextStart = time.Now().Add(backoffFor(e.dial.failures))
}

// sharedClient returns the legacy slot's connection.
func (e *entry) sharedClient(ctx context.Context) (*upstream.Client, error) {
	return e.get(ctx, &e.legacy, e.connectLegacy)
}

func (e *entry) connectLegacy(ctx context.Context) (*upstream.Client, error) {
	opts := upstream.Options{
		Name:            e.name,
		Logger:          e.g.log,
		MaxMessageBytes: e.maxMsg,
		Handler:         e.handleShared,
	}
	// OnClose may run before Connect returns (the process dies during the
	// handshake), so it must not read the variable Connect assigns: the
	// client is published once connected. A connection that fails before
	// that is get's failure to report, not a lost connection to restart.
	var self atomic.Pointer[upstream.Client]
	opts.OnClose = func(err error) {
		if c := self.Load(); c != nil {
			e.onLegacyClose(c, err)
		}
	}
	caps := relayCapabilities
	if !e.shared {
		// The gateway's own session with an HTTP upstream serves stateless
		// clients, which cannot receive server→client requests.
		caps = []byte(`{}`)
	}
	t, err := e.target(ctx, "")
	if err != nil {
		return nil, err
	}
	c, err := upstream.Connect(ctx, t, opts, upstream.LatestLegacyVersion, caps)
	if err != nil {
		return nil, err
	}
	self.Store(c)
	if c.Closed() {
		return nil, fmt.Errorf("%w right after the handshake", upstream.ErrClosed)
	}
	e.setInit(c.Init())
	e.log.Info("upstream connected", "protocol_version", c.Init().ProtocolVersion, "pid", c.Pid())
	return c, nil
}

// target says how to reach the upstream on behalf of agent ("" for the
// gateway's shared connections): configured headers and environment with
// their {{vault:NAME}} references resolved, and the upstream auth
// credential added. Secrets are resolved at connect time and never logged.
func (e *entry) target(ctx context.Context, agent string) (upstream.Target, error) {
	expand := func(v string) (string, error) {
		if !strings.Contains(v, "{{") {
			return v, nil
		}
		if e.g.secrets == nil {
			return "", errors.New("the configuration references the vault, but no vault is configured")
		}
		return e.g.secrets.Expand(ctx, v, agent)
	}
	var secret string
	if a := e.cfg.Auth; a != nil {
		v, err := expand("{{" + a.Secret + "}}")
		if err != nil {
			return upstream.Target{}, fmt.Errorf("upstream credential %s: %w", a.Secret, err)
		}
		secret = v
	}
	t := upstream.Target{Transport: e.cfg.Transport}
	if e.cfg.IsStdio() {
		env := make(map[string]string, len(e.cfg.Env)+1)
		for k, v := range e.cfg.Env {
			x, err := expand(v.Reveal())
			if err != nil {
				return upstream.Target{}, fmt.Errorf("env %s: %w", k, err)
			}
			env[k] = x
		}
		if a := e.cfg.Auth; a != nil {
			env[a.Env] = secret
		}
		t.Stdio = &upstream.StdioConfig{Command: e.cfg.Command, Args: e.cfg.Args, Env: env, Dir: e.cfg.Dir}
		return t, nil
	}
	h := make(map[string]string, len(e.cfg.Headers)+1)
	for k, v := range e.cfg.Headers {
		x, err := expand(v.Reveal())
		if err != nil {
			return upstream.Target{}, fmt.Errorf("header %s: %w", k, err)
		}
		h[k] = x
	}
	if a := e.cfg.Auth; a != nil {
		switch a.Type {
		case "header":
			h[a.Header] = secret
		default:
			h["Authorization"] = "Bearer " + secret
		}
	}
	t.HTTP = &upstream.HTTPConfig{URL: e.cfg.URL, Headers: h, Client: e.g.httpClient}
	return t, nil
}

// perAgentCredentials reports whether the upstream's credentials may
// differ per agent (they reference the vault).
func (e *entry) perAgentCredentials() bool {
	if e.cfg.Auth != nil {
		return true
	}
	for _, v := range e.cfg.Headers {
		if strings.Contains(v.Reveal(), "{{vault:") {
			return true
		}
	}
	for _, v := range e.cfg.Env {
		if strings.Contains(v.Reveal(), "{{vault:") {
			return true
		}
	}
	return false
}

// onLegacyClose schedules a restart with backoff when the legacy
// connection dies, and tells attached sessions their lists changed.
func (e *entry) onLegacyClose(c *upstream.Client, err error) {
	sl := &e.legacy
	sl.mu.Lock()
	if sl.client != c {
		sl.mu.Unlock()
		return
	}
	sl.client = nil
	sl.failures++
	sl.lastErr = err
	delay := backoffFor(sl.failures)
	sl.nextStart = time.Now().Add(delay)
	retired := e.isRetired()
	if !retired && e.shared {
		sl.restartT = time.AfterFunc(delay, e.restart)
	}
	sl.mu.Unlock()
	e.invalidateCatalog()
	if retired {
		return
	}
	e.log.Warn("upstream connection lost", "error", err, "restart_in", delay)
	for _, s := range e.attached() {
		s.upstreamChanged(e)
	}
	e.g.notifyListenersOf(e, kindsOf(e.initResult()))
}

// restart brings a dead stdio upstream back, retrying with backoff.
func (e *entry) restart() {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Timeouts.Connect.Std())
	defer cancel()
	c, err := e.sharedClient(ctx)
	sl := &e.legacy
	if err != nil {
		sl.mu.Lock()
		if !e.isRetired() && sl.restartT != nil {
			sl.restartT.Reset(time.Until(sl.nextStart) + 10*time.Millisecond)
		}
		sl.mu.Unlock()
		return
	}
	e.replayState(c)
	// A healthy minute forgives earlier failures.
	time.AfterFunc(time.Minute, func() {
		sl.mu.Lock()
		if sl.client == c && !c.Closed() {
			sl.failures = 0
		}
		sl.mu.Unlock()
	})
	for _, s := range e.attached() {
		s.upstreamChanged(e)
	}
	e.g.notifyListenersOf(e, kindsOf(e.initResult()))
}

func (e *entry) attached() []*Session {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.attachedLocked()
}

func (e *entry) attachedLocked() []*Session {
	out := make([]*Session, 0, len(e.sessions))
	for s := range e.sessions {
		out = append(out, s)
	}
	return out
}

func (e *entry) attach(s *Session) {
	e.mu.Lock()
	e.sessions[s] = struct{}{}
	e.mu.Unlock()
}

func (e *entry) detach(s *Session) {
	e.mu.Lock()
	delete(e.sessions, s)
	e.mu.Unlock()
}

// retire marks an entry removed from the configuration or replaced by a
// changed one. Sessions route by the current snapshot, so none sends it new
// requests: it forgets its sessions (waiting for them to detach would keep
// its processes alive for as long as the sessions live, and for ever for
// sessions that close after a later reload, which detach only from the
// entries current then) and closes its connections once the requests in
// flight on them are answered.
//
// retire marks the entry at once; the closing happens in the background.
func (e *entry) retire() {
	e.mu.Lock()
	e.retired = true
	clear(e.sessions)
	e.mu.Unlock()
	go func() {
		e.closeSlotsWhenIdle()
		e.g.mu.Lock()
		delete(e.g.retiring, e)
		e.g.mu.Unlock()
	}()
}

// closeSlotsWhenIdle closes the shared connections once no request is in
// flight on them, or once the longest any request may take has passed.
func (e *entry) closeSlotsWhenIdle() {
	var clients []*upstream.Client
	for _, sl := range []*slot{&e.legacy, &e.modern} {
		sl.mu.Lock()
		if c := sl.client; c != nil {
			clients = append(clients, c)
		}
		sl.mu.Unlock()
	}
	waitIdle(e.maxWait(), clients...)
	e.closeSlots(context.Background())
}

// maxWait is the longest an upstream request may take.
func (e *entry) maxWait() time.Duration {
	return max(e.cfg.Timeouts.ToolCall.Std(), e.cfg.Timeouts.Request.Std())
}

// waitIdle returns when none of the clients has a call in flight, or after
// limit.
func waitIdle(limit time.Duration, clients ...*upstream.Client) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		busy := false
		for _, c := range clients {
			if !c.Closed() && len(c.InFlight()) > 0 {
				busy = true
			}
		}
		if !busy {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// live returns the entry configured under e's name now, when a reload
// replaced e after a request was routed to it; otherwise e itself. A
// request must not fail because its upstream's settings changed under it.
func (g *Gateway) live(e *entry) *entry {
	if !e.isRetired() {
		return e
	}
	if cur, ok := g.snap.Load().entries[e.name]; ok && cur != nil {
		return cur
	}
	return e
}

func (e *entry) close(ctx context.Context) {
	e.mu.Lock()
	e.retired = true
	e.mu.Unlock()
	e.closeSlots(ctx)
}

func (e *entry) closeSlots(ctx context.Context) {
	for _, sl := range []*slot{&e.legacy, &e.modern} {
		sl.mu.Lock()
		if sl.restartT != nil {
			sl.restartT.Stop()
		}
		c := sl.client
		sl.client = nil
		sl.mu.Unlock()
		if c != nil {
			_ = c.Close(ctx)
		}
	}
}

// initResult returns the last known initialize result.
func (e *entry) initResult() *upstream.InitResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastInit
}

func (e *entry) setInit(ir *upstream.InitResult) {
	e.mu.Lock()
	e.lastInit = ir
	e.mu.Unlock()
}

// handleShared receives notifications and server→client requests from the
// shared connection and finds the session they belong to.
func (e *entry) handleShared(m *jsonrpc.Message, related *upstream.Call) {
	if t, ok := callTag(related); ok {
		if t.session != nil {
			t.session.fromUpstream(e, m, related)
			return
		}
		relayStateless(e, m, t)
		return
	}
	switch m.Method {
	case "notifications/tools/list_changed", "notifications/prompts/list_changed", "notifications/resources/list_changed":
		e.invalidateCatalog()
		if !e.speaksModern() {
			// Stateless clients of an upstream of an older revision hear
			// of its changes only from the gateway (see listen.go).
			kind := strings.TrimSuffix(strings.TrimPrefix(m.Method, "notifications/"), "/list_changed")
			e.g.notifyListenersOf(e, []string{kind})
		}
	}
	c := e.currentClient()
	// Attribute the message to the one session with calls in flight, if
	// there is exactly one; otherwise it concerns the server as a whole.
	var owner *Session
	ambiguous := false
	if c != nil {
		for _, call := range c.InFlight() {
			t, ok := callTag(call)
			if !ok {
				continue
			}
			if t.session == nil {
				// A stateless client's call (an upstream of an older
				// revision serves both eras on this connection): the
				// message may be its, so no session may be picked as the
				// owner, or one client's sampling prompt would reach
				// another client.
				ambiguous = true
				continue
			}
			if owner != nil && owner != t.session {
				ambiguous = true
			}
			owner = t.session
		}
	}
	if m.Kind == jsonrpc.KindRequest {
		if m.Method == "ping" {
			e.reply(c, jsonrpc.ResultResponse(m.ID, []byte(`{}`)))
			return
		}
		if owner == nil || ambiguous {
			reason := "no client session is waiting on this upstream"
			if ambiguous {
				reason = "several clients have requests in flight on this shared upstream, so the gateway cannot tell which one this request is for"
			}
			e.log.Warn("refusing server-to-client request", "method", m.Method, "reason", reason)
			e.reply(c, jsonrpc.ErrorResponse(m.ID, jsonrpc.NewError(jsonrpc.CodeInternalError, "gatehouse: "+reason)))
			return
		}
		owner.fromUpstream(e, m, nil)
		return
	}
	if m.Method == "notifications/message" && owner != nil && !ambiguous {
		owner.fromUpstream(e, m, nil)
		return
	}
	for _, s := range e.attached() {
		s.fromUpstream(e, m, nil)
	}
}

func (e *entry) currentClient() *upstream.Client {
	e.legacy.mu.Lock()
	defer e.legacy.mu.Unlock()
	return e.legacy.client
}

func (e *entry) reply(c *upstream.Client, msg []byte) {
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Reply(ctx, msg); err != nil && !errors.Is(err, upstream.ErrClosed) {
		e.log.Warn("replying to upstream", "error", err)
	}
}
