package gateway

import (
	"time"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"

	"gatehouse/internal/audit"
	"gatehouse/internal/identity"
	"gatehouse/internal/inspect"
	"gatehouse/internal/jsonrpc"
	"gatehouse/internal/upstream"
)

// Session is one downstream session of a stateful protocol revision
// (2024-11-05 through 2025-11-25). It owns the session's upstream sessions
// with HTTP upstreams, attaches to shared stdio upstreams, and maps ids of
// server→client requests. It is safe for concurrent use.
type Session struct {
	g         *Gateway
	principal *identity.Principal
	vsName    string
	id        string
	log       *slog.Logger
	version   string
	caps      clientCaps
	capsRaw   json.RawMessage
	out       Outbound

	ctx    context.Context // ends when the session closes
	cancel context.CancelFunc

	mu       sync.Mutex
	links    map[*entry]*upstream.Client // per-session clients of HTTP upstreams
	dialing  map[*entry]chan struct{}
	requests map[string]*exchange // requests being served, by downstream id
	s2c      map[string]*s2cRequest
	nextS2C  int64
	subs     map[string]struct{} // resource URIs subscribed
	closed   bool

	source string // the client's IP address when the session opened
	// clientName and clientVersion are the client's clientInfo.
	clientName, clientVersion string
	// What policy knows of the session's history: the data labels of the
	// tools it called, and how many calls it made.
	polMu  sync.Mutex
	labels []string
	calls  int
}

// inflight is one downstream request being served by an upstream.
type inflight struct {
	x       *exchange // nil for the gateway's own requests
	session *Session
	r       Replier
	downID  []byte
	entry   *entry
	// dropLogs: a stateless client that did not ask for log messages must
	// not get any (an older upstream sends them anyway).
	dropLogs bool

	mu     sync.Mutex
	client *upstream.Client
	call   *upstream.Call
	done   bool
}

func (f *inflight) setCall(c *upstream.Client, call *upstream.Call) {
	f.mu.Lock()
	f.client, f.call = c, call
	f.mu.Unlock()
}

// s2cRequest is a server→client request relayed to the downstream client.
type s2cRequest struct {
	entry  *entry
	client *upstream.Client
	upID   []byte
	// local: the gateway's own request (a notice of a held call); the
	// answer is not relayed anywhere.
	local bool
	// For the audit record: the method, when it was relayed, its size.
	method string
	start  time.Time
	size   int
	// What inspection found in a sampling request and its answer.
	findings []audit.Finding
	action   inspect.Action
}

func callTag(c *upstream.Call) (*inflight, bool) {
	if c == nil {
		return nil, false
	}
	t, ok := c.Tag.(*inflight)
	return t, ok
}

// clientCaps are the downstream client's declared capabilities.
type clientCaps struct {
	Sampling    json.RawMessage `json:"sampling"`
	Elicitation json.RawMessage `json:"elicitation"`
	Roots       json.RawMessage `json:"roots"`
}

// SessionInfo describes a new downstream session.
type SessionInfo struct {
	ID  string // the transport's session id, for logs
	Out Outbound
	// Principal is who opened the session (nil without authentication).
	Principal *identity.Principal
	// Source is the client's IP address.
	Source string
}

// Initialize starts a session for the initialize request m on virtual
// server vsName. It connects the session's upstreams in parallel (a failed
// upstream is left out and retried on use) and returns the session and the
// initialize result.
func (g *Gateway) Initialize(ctx context.Context, vsName string, m *jsonrpc.Message, info SessionInfo) (*Session, []byte, error) {
	vs, ok := g.Server(vsName)
	if !ok {
		return nil, nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, fmt.Sprintf("no virtual server %q", vsName))
	}
	var p struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
		ClientInfo      json.RawMessage `json:"clientInfo"`
	}
	if m.Params == nil || json.Unmarshal(m.Params, &p) != nil || p.ProtocolVersion == "" {
		return nil, nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "initialize needs params with protocolVersion, capabilities and clientInfo")
	}
	s := &Session{
		g: g, vsName: vsName, id: info.ID, out: info.Out, principal: info.Principal, source: info.Source,
		version:  NegotiateLegacy(p.ProtocolVersion),
		capsRaw:  p.Capabilities,
		links:    map[*entry]*upstream.Client{},
		dialing:  map[*entry]chan struct{}{},
		requests: map[string]*exchange{},
		s2c:      map[string]*s2cRequest{},
		subs:     map[string]struct{}{},
	}
	if len(s.capsRaw) == 0 || s.capsRaw[0] != '{' {
		s.capsRaw = json.RawMessage(`{}`)
	}
	_ = json.Unmarshal(s.capsRaw, &s.caps)
	var ci struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if json.Unmarshal(p.ClientInfo, &ci) == nil {
		s.clientName, s.clientVersion = truncate(ci.Name, 128), truncate(ci.Version, 64)
	}
	s.log = g.log.With("server", vsName, "session", shortID(info.ID))
	s.ctx, s.cancel = context.WithCancel(context.Background())

	// Connect every member in parallel; a slow or dead one must not hold
	// up the others beyond its connect timeout.
	var wg sync.WaitGroup
	for _, mb := range vs.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := g.live(mb.e)
			cctx, cancel := context.WithTimeout(ctx, e.cfg.Timeouts.Connect.Std())
			defer cancel()
			if _, err := s.client(cctx, e); err != nil {
				s.log.Warn("upstream unavailable at initialize; its items are left out", "upstream", e.name, "error", err)
				if e.shared {
					// Attach anyway: the session must hear (list_changed)
					// when the upstream comes back, as sessions that
					// attached before it failed do.
					e.attach(s)
				}
			}
		}()
	}
	wg.Wait()
	g.addSession(s)
	return s, s.initializeResult(vs), nil
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// NegotiateLegacy picks the revision to use with a client that sent
// initialize asking for requested: the same one if the gateway speaks it,
// otherwise the newest handshake revision.
func NegotiateLegacy(requested string) string {
	if slices.Contains(LegacyVersions, requested) {
		return requested
	}
	return LegacyVersions[0]
}

// agentID is the agent the session acts for ("" for people and without
// authentication): per-agent upstream credentials are looked up with it.
func (s *Session) agentID() string {
	if s.principal != nil {
		return s.principal.AgentID
	}
	return ""
}

// Principal returns who opened the session (nil without authentication).
func (s *Session) Principal() *identity.Principal { return s.principal }

// Version returns the negotiated protocol revision.
func (s *Session) Version() string { return s.version }

// server returns the session's virtual server in the current configuration.
func (s *Session) server() (*VirtualServer, error) {
	vs, ok := s.g.Server(s.vsName)
	if !ok {
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, fmt.Sprintf("virtual server %q was removed from the configuration", s.vsName))
	}
	return vs, nil
}

// client returns the connection the session uses for entry e: the shared
// one for stdio, its own upstream session for HTTP (opened on first use
// with the downstream client's protocol version and capabilities).
func (s *Session) client(ctx context.Context, e *entry) (*upstream.Client, error) {
	if e.shared {
		c, err := e.sharedClient(ctx)
		if err == nil {
			e.attach(s)
		}
		return c, err
	}
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, errSessionClosed
		}
		if c := s.links[e]; c != nil && !c.Closed() {
			s.mu.Unlock()
			return c, nil
		}
		if ch := s.dialing[e]; ch != nil {
			s.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if e.isRetired() {
			// Replaced by a reload: the caller switches to the current entry.
			s.mu.Unlock()
			return nil, &UnavailableError{e.name, "removed from the configuration"}
		}
		if err := e.dialBackoff(); err != nil {
			// The upstream failed recently for another session: fail fast
			// instead of making every session wait for the same timeout.
			s.mu.Unlock()
			return nil, err
		}
		ch := make(chan struct{})
		s.dialing[e] = ch
		s.mu.Unlock()

		opts := upstream.Options{
			Name: e.name, Logger: s.g.log, MaxMessageBytes: e.maxMsg,
			Handler: func(m *jsonrpc.Message, related *upstream.Call) { s.fromUpstream(e, m, related) },
		}
		var c *upstream.Client
		t, err := e.target(ctx, s.agentID())
		if err == nil {
			c, err = upstream.Connect(ctx, t, opts, s.version, s.capsRaw)
		}

		s.mu.Lock()
		delete(s.dialing, e)
		close(ch)
		if err == nil {
			if s.closed {
				s.mu.Unlock()
				go c.Close(context.Background())
				return nil, errSessionClosed
			}
			if e.isRetired() {
				// Retired while dialing, after releaseLink looked: nobody
				// would ever close this connection.
				s.mu.Unlock()
				go c.Close(context.Background())
				return nil, &UnavailableError{e.name, "removed from the configuration"}
			}
			s.links[e] = c
			e.setInit(c.Init())
		}
		s.mu.Unlock()
		if err == nil || ctx.Err() == nil {
			e.dialed(err) // a caller giving up is not the upstream's failure
		}
		if err != nil {
			return nil, &UnavailableError{e.name, err.Error()}
		}
		return c, nil
	}
}

var errSessionClosed = errors.New("session closed")

// dropLink forgets a per-session upstream connection that failed, so the
// next use reconnects.
func (s *Session) dropLink(e *entry, c *upstream.Client) {
	s.mu.Lock()
	if s.links[e] == c {
		delete(s.links, e)
	}
	s.mu.Unlock()
	go c.Close(context.Background())
}

// releaseLink closes the session's own connection to an entry retired by
// a reload, once the requests in flight on it are answered (until then
// replies to the upstream's server→client requests still need it).
func (s *Session) releaseLink(e *entry) {
	s.mu.Lock()
	c := s.links[e]
	s.mu.Unlock()
	if c == nil {
		return
	}
	go func() {
		waitIdle(e.maxWait(), c)
		s.dropLink(e, c)
	}()
}

// Close ends the session: its upstream sessions are closed, requests in
// flight are cancelled upstream and pending server→client requests fail.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	links := s.links
	s.links = nil
	s.requests = map[string]*exchange{}
	s2c := s.s2c
	s.s2c = map[string]*s2cRequest{}
	s.mu.Unlock()
	s.cancel()
	s.g.removeSession(s)

	// Requests in flight end with the session's context (s.cancel above);
	// call() tells their upstreams to stop.
	for _, p := range s2c {
		if p.local {
			continue
		}
		p.entry.reply(p.client, jsonrpc.ErrorResponse(p.upID, jsonrpc.NewError(jsonrpc.CodeInternalError, "gatehouse: client session ended")))
	}
	for _, c := range links {
		go c.Close(context.Background())
	}
	if vs, ok := s.g.Server(s.vsName); ok {
		for _, mb := range vs.members {
			if mb.e.shared {
				if orphans := mb.e.forgetState(s); len(orphans) > 0 {
					go mb.e.unsubscribeUpstream(orphans)
				}
			}
		}
	}
	if vs, ok := s.g.Server(s.vsName); ok {
		for _, mb := range vs.members {
			mb.e.detach(s)
		}
	}
	s.g.mu.Lock()
	for _, e := range s.g.entries {
		e.detach(s)
	}
	s.g.mu.Unlock()
}

// track registers a call in flight for its exchange; false when the
// session is closed.
func (s *Session) track(f *inflight) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if f.x != nil {
		f.x.mu.Lock()
		f.x.calls = append(f.x.calls, f)
		f.x.mu.Unlock()
	}
	return true
}

// finish marks the request answered: later messages for it go to the
// session stream instead.
func (f *inflight) finish() {
	f.mu.Lock()
	f.done = true
	f.mu.Unlock()
}

func (s *Session) untrack(f *inflight) {
	f.finish()
	if x := f.x; x != nil {
		x.mu.Lock()
		for i, g := range x.calls {
			if g == f {
				x.calls = append(x.calls[:i], x.calls[i+1:]...)
				break
			}
		}
		x.mu.Unlock()
	}
}

// register records a request being served so the client can cancel it.
func (s *Session) register(x *exchange) {
	s.mu.Lock()
	s.requests[string(x.m.ID)] = x
	s.mu.Unlock()
}

func (s *Session) unregister(x *exchange) {
	s.mu.Lock()
	if s.requests[string(x.m.ID)] == x {
		delete(s.requests, string(x.m.ID))
	}
	s.mu.Unlock()
}

// upstreamChanged is called when a shared upstream died or came back: the
// session's lists changed.
func (s *Session) upstreamChanged(e *entry) {
	s.sendListChanged(e.initResult())
}

func (s *Session) sendListChanged(ir *upstream.InitResult) {
	for _, kind := range []string{"tools", "prompts", "resources"} {
		if ir == nil || ir.Has(kind) {
			_ = s.out.Send(jsonrpc.Notification("notifications/"+kind+"/list_changed", nil))
		}
	}
}

// nextS2CID allocates an id for a server→client request. The prefix keeps
// it distinct from anything the client might confuse it with in logs.
func (s *Session) nextS2CID() []byte {
	s.mu.Lock()
	s.nextS2C++
	n := s.nextS2C
	s.mu.Unlock()
	return strconv.AppendQuote(nil, "gh-"+strconv.FormatInt(n, 10))
}

// sessionSet tracks live sessions per virtual server for broadcasts.
func (g *Gateway) addSession(s *Session) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sessions == nil {
		g.sessions = map[string]map[*Session]struct{}{}
	}
	set := g.sessions[s.vsName]
	if set == nil {
		set = map[*Session]struct{}{}
		g.sessions[s.vsName] = set
	}
	set[s] = struct{}{}
}

func (g *Gateway) removeSession(s *Session) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.sessions[s.vsName], s)
}

func (g *Gateway) allSessions() []*Session {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []*Session
	for _, set := range g.sessions {
		for s := range set {
			out = append(out, s)
		}
	}
	return out
}

func (g *Gateway) sessionsOf(vsName string) []*Session {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*Session, 0, len(g.sessions[vsName]))
	for s := range g.sessions[vsName] {
		out = append(out, s)
	}
	return out
}

// SessionCount returns the number of live stateful sessions.
func (g *Gateway) SessionCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, set := range g.sessions {
		n += len(set)
	}
	return n
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
