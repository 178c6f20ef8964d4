package gateway

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"gatehouse/internal/audit"
	"gatehouse/internal/jsonrpc"
	"gatehouse/internal/upstream"
)

// fromUpstream delivers a notification or server→client request from
// entry e to this session. related is the in-flight call the message
// belongs to, when known: its messages go on that request's stream.
func (s *Session) fromUpstream(e *entry, m *jsonrpc.Message, related *upstream.Call) {
	f, _ := callTag(related)
	if f != nil && f.session != s {
		f = nil
	}
	send := func(msg []byte) {
		if f != nil {
			f.mu.Lock()
			done := f.done
			f.mu.Unlock()
			if !done {
				_ = f.r.Send(msg)
				return
			}
		}
		_ = s.out.Send(msg)
	}
	if m.Kind == jsonrpc.KindRequest {
		s.relayRequest(e, m, send)
		return
	}
	switch m.Method {
	case "notifications/message":
		if e.shared {
			lv, _ := jsonrpc.Get(m.Params, "level")
			level, _ := jsonrpc.String(lv)
			if !e.accepts(s, level) {
				return // below the level this session asked for (not delivered, not audited)
			}
		}
		s.auditNotification(audit.ServerToClient, e.name, m, "")
		send(m.Raw)
	case "notifications/tools/list_changed", "notifications/prompts/list_changed", "notifications/resources/list_changed":
		e.invalidateCatalog()
		s.auditNotification(audit.ServerToClient, e.name, m, "")
		_ = s.out.Send(m.Raw)
	case "notifications/resources/updated":
		uri, _ := jsonrpc.Get(m.Params, "uri")
		u, _ := jsonrpc.String(uri)
		s.mu.Lock()
		_, subscribed := s.subs[u]
		s.mu.Unlock()
		if subscribed || e.shared == false {
			s.auditNotification(audit.ServerToClient, e.name, m, "")
			send(m.Raw)
		}
	case "notifications/cancelled":
		// The upstream withdrew one of its server→client requests.
		reqID, _ := jsonrpc.Get(m.Params, "requestId")
		if down := s.s2cByUpstream(e, reqID); down != nil {
			if p, err := jsonrpc.Set(m.Params, "requestId", down); err == nil {
				s.auditNotification(audit.ServerToClient, e.name, m, "")
				send(jsonrpc.Notification(m.Method, p))
			}
		}
	default:
		s.auditNotification(audit.ServerToClient, e.name, m, "")
		send(m.Raw)
	}
}

// relayRequest forwards a server→client request (sampling, elicitation,
// roots, ...) under a gateway id, after checking that the client declared
// the feature.
func (s *Session) relayRequest(e *entry, m *jsonrpc.Message, send func([]byte)) {
	c := s.linkClient(e)
	p := &s2cRequest{entry: e, client: c, upID: append([]byte(nil), m.ID...), method: m.Method, start: time.Now(), size: len(m.Raw)}
	if m.Method == "ping" {
		e.reply(c, jsonrpc.ResultResponse(m.ID, []byte(`{}`)))
		s.auditServerRequest(p, nil, nil)
		return
	}
	refuse := func(err *jsonrpc.Error) {
		e.reply(c, jsonrpc.ErrorResponse(m.ID, err))
		s.auditServerRequest(p, nil, err)
	}
	if missing := s.missingCapability(m); missing != "" {
		refuse(jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "gatehouse: the client did not declare the "+missing+" capability"))
		return
	}
	if m.Method == "sampling/createMessage" {
		params, blocked := s.inspectSampling(p, m.Params)
		if blocked != nil {
			refuse(blocked)
			return
		}
		if len(params) != len(m.Params) || string(params) != string(m.Params) {
			raw, err := jsonrpc.Set(m.Raw, "params", params)
			if err == nil {
				m, err = jsonrpc.Parse(raw)
			}
			if err != nil {
				refuse(jsonrpc.NewError(jsonrpc.CodeInternalError, "gatehouse could not rewrite the redacted sampling request"))
				return
			}
		}
	}
	id := s.nextS2CID()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		refuse(jsonrpc.NewError(jsonrpc.CodeInternalError, "gatehouse: client session ended"))
		return
	}
	s.s2c[string(id)] = p
	s.mu.Unlock()
	send(m.WithID(id))
}

// missingCapability names the client capability a server→client request
// needs and the client lacks ("" when fine or unknown).
func (s *Session) missingCapability(m *jsonrpc.Message) string {
	switch m.Method {
	case "sampling/createMessage":
		if s.caps.Sampling == nil {
			return "sampling"
		}
	case "roots/list":
		if s.caps.Roots == nil {
			return "roots"
		}
	case "elicitation/create":
		if s.caps.Elicitation == nil {
			return "elicitation"
		}
		mode, _ := jsonrpc.Get(m.Params, "mode")
		if string(mode) == `"url"` {
			var el struct {
				URL json.RawMessage `json:"url"`
			}
			_ = json.Unmarshal(s.caps.Elicitation, &el)
			if el.URL == nil {
				return "elicitation.url"
			}
		}
	}
	return ""
}

// linkClient returns the current connection to e (for replies).
func (s *Session) linkClient(e *entry) *upstream.Client {
	if e.shared {
		return e.currentClient()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.links[e]
}

func (s *Session) s2cByUpstream(e *entry, upID []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	for down, p := range s.s2c {
		if p.entry == e && string(p.upID) == string(upID) {
			return []byte(down)
		}
	}
	return nil
}

// Respond handles the client's answer to a server→client request.
func (s *Session) Respond(ctx context.Context, m *jsonrpc.Message) {
	s.mu.Lock()
	p := s.s2c[string(m.ID)]
	delete(s.s2c, string(m.ID))
	s.mu.Unlock()
	if p == nil {
		s.log.Debug("response to an unknown or finished request", "id", string(m.ID))
		return
	}
	if p.local {
		return // the client saw the notice of a held call
	}
	if p.method == "sampling/createMessage" {
		m = s.inspectSamplingResult(p, m)
	}
	s.auditServerRequest(p, m, nil)
	if err := p.client.Reply(ctx, jsonrpc.Rewrite(m, p.upID, nil)); err != nil {
		s.log.Warn("relaying a response to the upstream", "upstream", p.entry.name, "error", err)
	}
}

// Notify handles a notification from the client.
func (s *Session) Notify(ctx context.Context, m *jsonrpc.Message) {
	s.auditNotification(audit.ClientToServer, "", m, "")
	switch m.Method {
	case "notifications/initialized":
		return // the gateway initialized its upstream sessions itself
	case "notifications/cancelled":
		// The client gave up on one of its requests: tell the upstreams
		// serving it (with the client's reason), stop waiting for them,
		// and send the client nothing more for it.
		reqID, _ := jsonrpc.Get(m.Params, "requestId")
		s.mu.Lock()
		x := s.requests[string(reqID)]
		s.mu.Unlock()
		if x == nil {
			return
		}
		x.cancelled.Store(true)
		x.mu.Lock()
		calls := append([]*inflight(nil), x.calls...)
		x.mu.Unlock()
		for _, f := range calls {
			f.mu.Lock()
			c, call := f.client, f.call
			f.mu.Unlock()
			if c == nil || call == nil || c.Stateless() {
				continue
			}
			params, err := jsonrpc.Set(m.Params, "requestId", []byte(strconv.FormatInt(call.ID(), 10)))
			if err == nil {
				_ = c.Notify(ctx, jsonrpc.Notification(m.Method, params))
			}
		}
		if x.cancel != nil {
			x.cancel()
		}
		return
	}
	// Other notifications (roots/list_changed, progress of a
	// server→client request, custom ones) go to every upstream of the
	// session.
	vs, err := s.server()
	if err != nil {
		return
	}
	for _, mb := range vs.members {
		c := s.linkClient(mb.e)
		if c == nil {
			continue
		}
		nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = c.Notify(nctx, m.Raw)
		cancel()
	}
}
