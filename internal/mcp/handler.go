// Package mcp is the downstream side of the gateway: the MCP transports
// clients connect to at /mcp/{server}. One endpoint serves the Streamable
// HTTP transport of every protocol revision — stateful sessions for
// 2025-03-26 through 2025-11-25, stateless requests for 2026-07-28 — and the
// 2024-11-05 HTTP+SSE transport for old clients. It validates what arrives
// (Host, Origin, sizes, headers, sessions), then hands parsed JSON-RPC
// messages to internal/gateway.
package mcp

import (
	"context"
	"errors"
	"gatehouse/internal/audit"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gatehouse/internal/config"
	"gatehouse/internal/gateway"
	"gatehouse/internal/jsonrpc"
)

// Handler serves /mcp/{server} (Streamable HTTP, both eras),
// /mcp/{server}/sse and /mcp/{server}/message (HTTP+SSE, 2024-11-05).
type Handler struct {
	gw     *gateway.Gateway
	log    *slog.Logger
	auth   Authenticator
	issuer string
	// onAuthFailure counts refused requests (may be nil).
	onAuthFailure func(code string)
	// record receives the audit record of a refused credential (may be nil).
	record   func(audit.Record) error
	sessions *registry

	stopSweep chan struct{}
	closeOnce sync.Once
}

// NewHandler returns a handler serving the gateway's virtual servers.
func NewHandler(gw *gateway.Gateway, log *slog.Logger) *Handler {
	return NewHandlerWith(gw, Options{Logger: log})
}

// Options configure a Handler.
type Options struct {
	Logger *slog.Logger
	// Auth authenticates every request; nil serves without authentication.
	Auth Authenticator
	// Issuer is the gateway's public base URL (resource URLs and metadata
	// links are built from it).
	Issuer string
	// OnAuthFailure, when set, is called with the RFC 6750 error code (""
	// for a missing credential) of every refused request, for metrics.
	OnAuthFailure func(code string)
	// Record, when set, receives an audit record of every request refused
	// for a bad or insufficient credential.
	Record func(audit.Record) error
}

// NewHandlerWith returns a handler with options.
func NewHandlerWith(gw *gateway.Gateway, opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	h := &Handler{gw: gw, log: opts.Logger, auth: opts.Auth, issuer: strings.TrimSuffix(opts.Issuer, "/"), onAuthFailure: opts.OnAuthFailure, record: opts.Record,
		sessions: newRegistry(), stopSweep: make(chan struct{})}
	go h.sweep()
	return h
}

// Close ends every session.
func (h *Handler) Close() {
	h.closeOnce.Do(func() { close(h.stopSweep) })
	for _, s := range h.sessions.all() {
		h.endSession(s)
	}
}

// SessionCount returns the number of live stateful sessions.
func (h *Handler) SessionCount() int { return h.sessions.count() }

func (h *Handler) cfg() *config.Config { return h.gw.Config() }

// sweep ends sessions that nobody used for the configured idle timeout.
func (h *Handler) sweep() {
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-h.stopSweep:
			return
		case <-t.C:
			for _, s := range h.sessions.idle(h.cfg().Sessions.IdleTimeout.Std()) {
				h.log.Info("ending idle session", "session", s.id[:8], "server", s.server)
				h.endSession(s)
			}
		}
	}
}

func (h *Handler) endSession(s *session) {
	h.sessions.remove(s.id)
	s.close()
}

// ServeHTTP routes by path and method.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/mcp/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	server, sub, _ := strings.Cut(strings.TrimSuffix(rest, "/"), "/")
	if err := h.checkOrigin(r); err != nil {
		h.log.Warn("rejected request", "reason", err.Error(), "host", r.Host, "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
		writeError(w, http.StatusForbidden, nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "Forbidden: "+err.Error()))
		return
	}
	if corsHeaders(w, r) {
		return // a preflight, answered
	}
	if _, ok := h.gw.Server(server); !ok || server == "" {
		writeError(w, http.StatusNotFound, nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "no virtual server named "+strconv.Quote(server)))
		return
	}
	r, ok = h.authenticate(w, r, server)
	if !ok {
		return
	}
	switch {
	case sub == "" && r.Method == http.MethodPost:
		h.post(w, r, server)
	case sub == "" && r.Method == http.MethodGet:
		h.get(w, r, server)
	case sub == "" && r.Method == http.MethodDelete:
		h.delete(w, r)
	case sub == "sse" && r.Method == http.MethodGet:
		h.legacyOpen(w, r, server)
	case sub == "message" && r.Method == http.MethodPost:
		h.legacyPost(w, r, server)
	case sub == "" || sub == "sse" || sub == "message":
		w.Header().Set("Allow", allowFor(sub))
		writeError(w, http.StatusMethodNotAllowed, nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "method "+r.Method+" not allowed here"))
	default:
		http.NotFound(w, r)
	}
}

func allowFor(sub string) string {
	switch sub {
	case "sse":
		return "GET"
	case "message":
		return "POST"
	}
	return "GET, POST, DELETE"
}

// checkOrigin implements DNS-rebinding protection: the Host must be one
// the gateway answers to, and a browser Origin must be allowed.
func (h *Handler) checkOrigin(r *http.Request) error {
	cfg := h.cfg()
	host := hostOnly(r.Host)
	listenHost, _, _ := net.SplitHostPort(cfg.Listen)
	allowedHost := isLoopbackName(host) || strings.EqualFold(host, listenHost) ||
		slices.ContainsFunc(cfg.AllowedHosts, func(a string) bool { return a == "*" || strings.EqualFold(hostOnly(a), host) })
	if !allowedHost && isUnspecified(listenHost) && len(cfg.AllowedHosts) == 0 {
		// Listening on every interface without a host list: the operator
		// chose remote access; Origin checks still apply below.
		allowedHost = true
	}
	if !allowedHost {
		return errors.New("invalid Host header " + strconv.Quote(r.Host))
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil // not a browser request
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return errors.New("invalid Origin header")
	}
	for _, a := range cfg.AllowedOrigins {
		if a == "*" || strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
			return nil
		}
	}
	if isLoopbackName(hostOnly(u.Host)) && isLoopbackName(host) {
		return nil
	}
	if strings.EqualFold(u.Host, r.Host) {
		return nil // same origin
	}
	return errors.New("origin " + strconv.Quote(origin) + " is not allowed (see allowed_origins)")
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

func isLoopbackName(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func isUnspecified(h string) bool {
	ip := net.ParseIP(h)
	return h == "" || (ip != nil && ip.IsUnspecified())
}

// readBody reads a JSON request body within the size limit.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "Content-Type must be application/json"))
		return nil, false
	}
	limit := int64(h.cfg().Limits.MaxBodyBytes)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "request body exceeds "+strconv.FormatInt(limit, 10)+" bytes"))
		} else {
			writeError(w, http.StatusBadRequest, nil, jsonrpc.NewError(jsonrpc.CodeParseError, "reading request body failed"))
		}
		return nil, false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		writeError(w, http.StatusBadRequest, nil, jsonrpc.NewError(jsonrpc.CodeParseError, "empty request body"))
		return nil, false
	}
	return body, true
}

// acceptsBoth reports whether the Accept header allows both JSON and SSE
// responses, as Streamable HTTP clients must declare. A missing header is
// tolerated.
func acceptsBoth(r *http.Request) bool {
	a := r.Header.Values("Accept")
	if len(a) == 0 {
		return true
	}
	return accepts(a, "application/json") && accepts(a, "text/event-stream")
}

func accepts(values []string, mediaType string) bool {
	major, _, _ := strings.Cut(mediaType, "/")
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			mt, _, _ := mime.ParseMediaType(strings.TrimSpace(part))
			if mt == mediaType || mt == "*/*" || mt == major+"/*" {
				return true
			}
		}
	}
	return false
}

// post serves a POST to the MCP endpoint.
func (h *Handler) post(w http.ResponseWriter, r *http.Request, server string) {
	if !acceptsBoth(r) {
		writeError(w, http.StatusNotAcceptable, nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "Accept must list application/json and text/event-stream"))
		return
	}
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	if sid := r.Header.Get("Mcp-Session-Id"); sid != "" {
		h.postSession(w, r, sid, body)
		return
	}
	if jsonrpc.IsBatch(body) {
		writeError(w, http.StatusBadRequest, nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "Bad Request: a batch needs an Mcp-Session-Id header (initialize first)"))
		return
	}
	m, err := jsonrpc.Parse(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, nil, parseError(body, err))
		return
	}
	if m.Kind == jsonrpc.KindRequest && m.Method == "initialize" && !isModern(r, m) {
		h.initialize(w, r, server, m)
		return
	}
	if isModern(r, m) {
		h.stateless(w, r, server, m)
		return
	}
	writeError(w, http.StatusBadRequest, m.ID, jsonrpc.NewError(jsonrpc.CodeInvalidRequest,
		"Bad Request: missing Mcp-Session-Id header (send initialize first, or use protocol revision 2026-07-28 with per-request _meta)"))
}

// parseError maps a failure to parse body as a JSON-RPC message to the
// error JSON-RPC prescribes: -32700 when body is not JSON at all (the parser
// stops at "not an object" before looking further), -32600 when it is JSON
// but not a valid message.
func parseError(body []byte, err error) *jsonrpc.Error {
	if errors.Is(err, jsonrpc.ErrSyntax) || !jsonrpc.Valid(body) {
		return jsonrpc.NewError(jsonrpc.CodeParseError, "Parse error: "+err.Error())
	}
	return jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "Invalid Request: "+err.Error())
}

// initialize starts a stateful session.
func (h *Handler) initialize(w http.ResponseWriter, r *http.Request, server string, m *jsonrpc.Message) {
	cfg := h.cfg()
	if h.sessions.count() >= cfg.Sessions.MaxSessions {
		writeError(w, http.StatusServiceUnavailable, m.ID, jsonrpc.NewError(jsonrpc.CodeOverloaded, "too many sessions; try again later"))
		return
	}
	s := newSession(server, false, cfg.Sessions.ReplayBuffer)
	s.owner = owner(r)
	gs, result, err := h.gw.Initialize(r.Context(), server, m, gateway.SessionInfo{ID: s.id, Out: s, Principal: principalOf(r), Source: remoteIP(r)})
	if err != nil {
		writeError(w, http.StatusBadRequest, m.ID, jsonrpc.FromError(err))
		return
	}
	s.gs = gs
	close(s.ready)
	h.sessions.add(s)
	h.log.Info("session started", "session", s.id[:8], "server", server, "protocol_version", gs.Version(), "remote", r.RemoteAddr)
	w.Header().Set("Mcp-Session-Id", s.id)
	writeJSON(w, http.StatusOK, jsonrpc.ResultResponse(m.ID, result))
}

// postSession serves a POST within a stateful session.
func (h *Handler) postSession(w http.ResponseWriter, r *http.Request, sid string, body []byte) {
	s := h.sessions.get(sid)
	// A session belongs to the identity that opened it: anyone else
	// presenting its id is told it does not exist.
	if s == nil || s.legacy || s.owner != owner(r) {
		writeError(w, http.StatusNotFound, nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "session not found (it ended or never existed); initialize a new one"))
		return
	}
	if v := r.Header.Get("Mcp-Protocol-Version"); v != "" && !slices.Contains(gateway.LegacyVersions, v) {
		writeError(w, http.StatusBadRequest, nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest,
			"Bad Request: unsupported MCP-Protocol-Version "+strconv.Quote(v)+" in a session (supported: "+strings.Join(gateway.LegacyVersions, ", ")+")"))
		return
	}
	s.touch()
	s.active.Add(1)
	defer func() {
		s.active.Add(-1)
		s.touch()
	}()
	if jsonrpc.IsBatch(body) {
		h.batch(w, r, s, body)
		return
	}
	m, err := jsonrpc.Parse(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, nil, parseError(body, err))
		return
	}
	switch m.Kind {
	case jsonrpc.KindNotification:
		s.gs.Notify(s.gs.Context(), m)
		w.WriteHeader(http.StatusAccepted)
	case jsonrpc.KindResult, jsonrpc.KindError:
		s.gs.Respond(s.gs.Context(), m)
		w.WriteHeader(http.StatusAccepted)
	case jsonrpc.KindRequest:
		if m.Method == "initialize" {
			writeError(w, http.StatusBadRequest, m.ID, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "session is already initialized"))
			return
		}
		rr := h.sessionReplier(w, r, s)
		rr.serve(func() { s.gs.Handle(s.gs.Context(), m, rr) })
	}
}

// sessionReplier returns the replier for one request of a stateful
// session; if it turns into an SSE stream, the stream is kept so the
// client can resume it.
func (h *Handler) sessionReplier(w http.ResponseWriter, r *http.Request, s *session) *reqReplier {
	st := s.newRequestStream()
	modern := s.gs.Version() >= "2025-11-25"
	rr := &reqReplier{st: st, w: w, ctx: r.Context(), sseStart: modern, retry: time.Second}
	rr.onStart = func() { s.keep(st) }
	rr.onDelivered = func() { s.forget(st) }
	return rr
}

// batch serves a JSON-RPC batch (protocol revision 2025-03-26 only).
func (h *Handler) batch(w http.ResponseWriter, r *http.Request, s *session, body []byte) {
	if s.gs.Version() != "2025-03-26" {
		writeError(w, http.StatusBadRequest, nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "JSON-RPC batches are only allowed in protocol revision 2025-03-26"))
		return
	}
	parts, err := jsonrpc.SplitBatch(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, nil, parseError(body, err))
		return
	}
	var reqs []*jsonrpc.Message
	var errs [][]byte
	for _, p := range parts {
		m, err := jsonrpc.Parse(p)
		if err != nil {
			errs = append(errs, jsonrpc.ErrorResponse(nil, parseError(p, err)))
			continue
		}
		switch m.Kind {
		case jsonrpc.KindNotification:
			s.gs.Notify(s.gs.Context(), m)
		case jsonrpc.KindResult, jsonrpc.KindError:
			s.gs.Respond(s.gs.Context(), m)
		default:
			reqs = append(reqs, m)
		}
	}
	if len(reqs) == 0 && len(errs) == 0 {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	// Requests of a batch run concurrently; their responses are written as
	// one JSON array (interim messages go to the standalone stream).
	out := make([][]byte, len(reqs))
	var wg sync.WaitGroup
	for i, m := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &collector{out: s}
			s.gs.Handle(s.gs.Context(), m, c)
			out[i] = c.final
		}()
	}
	wg.Wait()
	buf := []byte{'['}
	n := 0
	for _, b := range append(out, errs...) {
		if b == nil {
			continue // cancelled by the client: no response
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		n++
		buf = append(buf, b...)
	}
	buf = append(buf, ']')
	if n == 0 {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	writeJSON(w, http.StatusOK, buf)
}

// collector keeps a response and sends interim messages elsewhere.
type collector struct {
	out   gateway.Outbound
	final []byte
}

func (c *collector) Send(msg []byte) error  { return c.out.Send(msg) }
func (c *collector) Reply(msg []byte) error { c.final = msg; return nil }
func (c *collector) Abandon()               {}

// get serves the standalone SSE stream of a session, resumes a stream with
// Last-Event-ID, or opens a 2024-11-05 HTTP+SSE session.
func (h *Handler) get(w http.ResponseWriter, r *http.Request, server string) {
	sid := r.Header.Get("Mcp-Session-Id")
	if sid == "" {
		if accepts(r.Header.Values("Accept"), "text/event-stream") && r.Header.Get("Accept") != "" {
			h.legacyOpen(w, r, server)
			return
		}
		w.Header().Set("Allow", "POST, DELETE")
		writeError(w, http.StatusMethodNotAllowed, nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "GET needs an Mcp-Session-Id header (or Accept: text/event-stream for the 2024-11-05 HTTP+SSE transport)"))
		return
	}
	s := h.sessions.get(sid)
	// A session belongs to the identity that opened it: anyone else
	// presenting its id is told it does not exist.
	if s == nil || s.legacy || s.owner != owner(r) {
		writeError(w, http.StatusNotFound, nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "session not found"))
		return
	}
	if !accepts(r.Header.Values("Accept"), "text/event-stream") {
		writeError(w, http.StatusNotAcceptable, nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "GET needs Accept: text/event-stream"))
		return
	}
	st, from := s.standalone, -1
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		id, seq, ok := parseEventID(last)
		if ok {
			st, from = s.lookupStream(id), seq
		}
		if !ok || st == nil {
			writeError(w, http.StatusBadRequest, nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "unknown Last-Event-ID "+strconv.Quote(last)+": the stream can no longer be resumed"))
			return
		}
	}
	if !st.attach() {
		writeError(w, http.StatusConflict, nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "this stream is already open on another connection"))
		return
	}
	defer st.detach()
	if from < 0 {
		from = st.deliveredSeq()
	}
	s.active.Add(1)
	defer func() {
		s.active.Add(-1)
		s.touch()
	}()
	writeSSEHeaders(w, http.StatusOK)
	if st == s.standalone && s.gs.Version() >= "2025-11-25" {
		if err := writePriming(w, st.eventID(from), time.Second); err != nil {
			return
		}
	}
	if err := http.NewResponseController(w).Flush(); err != nil {
		return
	}
	_ = st.pump(r.Context(), w, from, 0)
}

// delete ends a session.
func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	sid := r.Header.Get("Mcp-Session-Id")
	if sid == "" {
		writeError(w, http.StatusBadRequest, nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "DELETE needs an Mcp-Session-Id header"))
		return
	}
	s := h.sessions.get(sid)
	// A session belongs to the identity that opened it: anyone else
	// presenting its id is told it does not exist.
	if s == nil || s.legacy || s.owner != owner(r) {
		writeError(w, http.StatusNotFound, nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "session not found"))
		return
	}
	h.log.Info("session ended by client", "session", s.id[:8], "server", s.server)
	h.endSession(s)
	w.WriteHeader(http.StatusNoContent)
}

// writeError writes a JSON-RPC error response with an HTTP status.
func writeError(w http.ResponseWriter, status int, id []byte, e *jsonrpc.Error) {
	writeJSON(w, status, jsonrpc.ErrorResponse(id, e))
}

func itoa(n int) string { return strconv.Itoa(n) }

// contextWithoutCancel detaches a context from its parent's cancellation.
func contextWithoutCancel(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// corsHeaders lets browser-based MCP clients of an allowed origin (the
// Origin check has passed) call the endpoint, and answers their preflight
// requests, which carry no credentials and must not be authenticated. It
// reports whether the request was a preflight.
func corsHeaders(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", "Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate")
	if r.Method != http.MethodOptions {
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
	allowed := "Authorization, Content-Type, Accept, Last-Event-ID, Mcp-Session-Id, Mcp-Protocol-Version, Mcp-Method, Mcp-Name"
	// Mcp-Param-{Name} headers are named by tools: echo the ones asked for.
	for _, name := range strings.Split(r.Header.Get("Access-Control-Request-Headers"), ",") {
		name = strings.TrimSpace(name)
		if len(name) > len("mcp-param-") && strings.EqualFold(name[:len("mcp-param-")], "mcp-param-") && validToken(name) {
			allowed += ", " + name
		}
	}
	h.Set("Access-Control-Allow-Headers", allowed)
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true
}

func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
