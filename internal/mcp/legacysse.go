package mcp

import (
	"net/http"
	"net/url"

	"gatehouse/internal/gateway"
	"gatehouse/internal/jsonrpc"
	"gatehouse/internal/sse"
)

// legacyOpen starts a 2024-11-05 HTTP+SSE session: the GET stream carries
// every message to the client, starting with the endpoint event that tells
// the client where to POST.
func (h *Handler) legacyOpen(w http.ResponseWriter, r *http.Request, server string) {
	cfg := h.cfg()
	if h.sessions.count() >= cfg.Sessions.MaxSessions {
		writeError(w, http.StatusServiceUnavailable, nil, jsonrpc.NewError(jsonrpc.CodeOverloaded, "too many sessions; try again later"))
		return
	}
	s := newSession(server, true, cfg.Sessions.ReplayBuffer)
	s.owner = owner(r)
	h.sessions.add(s)
	defer h.endSession(s)
	s.standalone.attach()
	defer s.standalone.detach()
	s.active.Add(1)
	defer s.active.Add(-1)

	writeSSEHeaders(w, http.StatusOK)
	endpoint := "/mcp/" + url.PathEscape(server) + "/message?sessionId=" + url.QueryEscape(s.id)
	if err := sse.NewWriter(w).WriteEvent(sse.Event{Type: "endpoint", Data: []byte(endpoint)}); err != nil {
		return
	}
	if err := http.NewResponseController(w).Flush(); err != nil {
		return
	}
	h.log.Info("HTTP+SSE session opened", "session", s.id[:8], "server", server, "remote", r.RemoteAddr)
	_ = s.standalone.pump(r.Context(), w, 0, 0)
}

// legacyPost receives a message of a 2024-11-05 session. It answers 202 at
// once; responses travel on the session's event stream.
func (h *Handler) legacyPost(w http.ResponseWriter, r *http.Request, server string) {
	s := h.sessions.get(r.URL.Query().Get("sessionId"))
	if s == nil || !s.legacy || s.server != server || s.owner != owner(r) {
		writeError(w, http.StatusNotFound, nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "session not found"))
		return
	}
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	m, err := jsonrpc.Parse(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, nil, parseError(body, err))
		return
	}
	s.touch()
	w.WriteHeader(http.StatusAccepted)

	out := &streamReplier{s: s}
	if m.Kind == jsonrpc.KindRequest && m.Method == "initialize" {
		select {
		case <-s.ready:
			_ = out.Reply(jsonrpc.ErrorResponse(m.ID, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "session is already initialized")))
			return
		default:
		}
		go func() {
			gs, result, err := h.gw.Initialize(contextWithoutCancel(r.Context()), server, m, gateway.SessionInfo{ID: s.id, Out: s, Principal: principalOf(r), Source: remoteIP(r)})
			if err != nil {
				_ = out.Reply(jsonrpc.ErrorResponse(m.ID, jsonrpc.FromError(err)))
				return
			}
			s.gs = gs
			close(s.ready)
			_ = out.Reply(jsonrpc.ResultResponse(m.ID, result))
		}()
		return
	}
	select {
	case <-s.ready:
	default:
		if m.Kind == jsonrpc.KindRequest {
			_ = out.Reply(jsonrpc.ErrorResponse(m.ID, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "session is not initialized")))
		}
		return
	}
	switch m.Kind {
	case jsonrpc.KindNotification:
		s.gs.Notify(s.gs.Context(), m)
	case jsonrpc.KindResult, jsonrpc.KindError:
		s.gs.Respond(s.gs.Context(), m)
	case jsonrpc.KindRequest:
		s.active.Add(1)
		go func() {
			defer s.active.Add(-1)
			s.gs.Handle(s.gs.Context(), m, out)
		}()
	}
}

// streamReplier sends everything on the session's one event stream.
type streamReplier struct{ s *session }

func (o *streamReplier) Send(msg []byte) error  { return o.s.Send(msg) }
func (o *streamReplier) Reply(msg []byte) error { return o.s.Send(msg) }
func (o *streamReplier) Abandon()               {}
