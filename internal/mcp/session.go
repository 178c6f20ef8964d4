package mcp

import (
	"crypto/rand"
	"encoding/base64"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/internal/gateway"
)

// session is the transport side of one stateful downstream session: its
// id, the gateway session, the standalone stream for server-initiated
// messages and the request streams kept for resumption.
type session struct {
	id     string
	server string // virtual server name
	gs     *gateway.Session
	legacy bool   // the 2024-11-05 HTTP+SSE transport
	owner  string // the identity that opened the session ("" without auth)
	// ready is closed once gs is set (initialize answered).
	ready chan struct{}

	standalone *stream
	lastUsed   atomic.Int64 // unix nanoseconds
	active     atomic.Int32 // requests being served and streams attached

	mu        sync.Mutex
	streams   map[string]*stream // request streams by id, for resumption
	order     []string
	nextID    int
	closed    bool
	maxBuffer int
}

// maxKeptStreams bounds the request streams a session keeps for replay.
// Streams are kept only while a response may still be missed (the client
// disconnected, or the response is not written yet).
const maxKeptStreams = 16

func newSession(server string, legacy bool, maxBuffer int) *session {
	s := &session{
		id: newSessionID(), server: server, legacy: legacy,
		ready:     make(chan struct{}),
		streams:   map[string]*stream{},
		maxBuffer: maxBuffer,
	}
	// The standalone stream's events carry ids so a reconnecting GET can
	// resume it. Stream "0" is reserved for it.
	s.standalone = newStream("0", !legacy, maxBuffer)
	s.touch()
	return s
}

func newSessionID() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *session) touch() { s.lastUsed.Store(time.Now().UnixNano()) }

// Send implements gateway.Outbound: messages that belong to no request go
// on the standalone stream.
func (s *session) Send(msg []byte) error {
	s.standalone.push(msg, false)
	return nil
}

// newRequestStream allocates a stream for a POST's SSE response.
func (s *session) newRequestStream() *stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	return newStream(strconv.Itoa(s.nextID), true, s.maxBuffer)
}

// keep registers a request stream for resumption, forgetting the oldest
// finished ones beyond the bound.
func (s *session) keep(st *stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.streams[st.id] = st
	s.order = append(s.order, st.id)
	for len(s.order) > maxKeptStreams {
		old := s.order[0]
		if o := s.streams[old]; o != nil && !o.finished() {
			break
		}
		delete(s.streams, old)
		s.order = s.order[1:]
	}
}

// forget drops a request stream whose response was delivered.
func (s *session) forget(st *stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streams[st.id] == st {
		delete(s.streams, st.id)
		for i, id := range s.order {
			if id == st.id {
				s.order = append(s.order[:i], s.order[i+1:]...)
				break
			}
		}
	}
}

func (s *session) lookupStream(id string) *stream {
	if id == s.standalone.id {
		return s.standalone
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[id]
}

// close ends the session.
func (s *session) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	streams := s.streams
	s.mu.Unlock()
	s.standalone.close()
	for _, st := range streams {
		st.close()
	}
	select {
	case <-s.ready:
		if s.gs != nil {
			s.gs.Close()
		}
	default:
	}
}

// registry holds the live sessions.
type registry struct {
	mu       sync.Mutex
	sessions map[string]*session
	closed   map[string]time.Time // recently ended ids, answered with 404
}

func newRegistry() *registry {
	return &registry{sessions: map[string]*session{}, closed: map[string]time.Time{}}
}

func (r *registry) add(s *session) {
	r.mu.Lock()
	r.sessions[s.id] = s
	r.mu.Unlock()
}

func (r *registry) get(id string) *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions[id]
}

func (r *registry) remove(id string) *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sessions[id]
	delete(r.sessions, id)
	if s != nil {
		r.closed[id] = time.Now()
	}
	return s
}

func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}

// idle returns sessions unused for longer than d with nothing in flight.
func (r *registry) idle(d time.Duration) []*session {
	cutoff := time.Now().Add(-d).UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*session
	for _, s := range r.sessions {
		if s.active.Load() == 0 && s.lastUsed.Load() < cutoff {
			out = append(out, s)
		}
	}
	for id, t := range r.closed {
		if time.Since(t) > time.Hour {
			delete(r.closed, id)
		}
	}
	return out
}

func (r *registry) all() []*session {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*session, 0, len(r.sessions))
	for _, s := range r.sessions {
		out = append(out, s)
	}
	return out
}
