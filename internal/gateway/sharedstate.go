package gateway

import (
	"context"
	"time"

	"gatehouse/internal/jsonrpc"
	"gatehouse/internal/upstream"
)

// A shared stdio upstream holds some state once for its connection that
// each client believes it holds alone: resource subscriptions and the log
// level. The gateway keeps that state per session and sends the upstream
// the union — a URI stays subscribed while any session wants it; the level
// is the most verbose any session asked for — and filters what it relays,
// so one session's unsubscribe or setLevel never changes what another gets.
// (Roots cannot be merged this way: use sharing: per_session for servers
// that ask for them.)

// logSeverity orders the syslog levels MCP uses.
var logSeverity = map[string]int{
	"debug": 0, "info": 1, "notice": 2, "warning": 3,
	"error": 4, "critical": 5, "alert": 6, "emergency": 7,
}

// subscribe records that s subscribed to uri; it reports whether the
// upstream must be asked (no other session had subscribed).
func (e *entry) subscribe(s *Session, uri string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.subs == nil {
		e.subs = map[string]map[*Session]struct{}{}
	}
	set := e.subs[uri]
	first := len(set) == 0
	if set == nil {
		set = map[*Session]struct{}{}
		e.subs[uri] = set
	}
	set[s] = struct{}{}
	return first
}

// unsubscribe records that s unsubscribed from uri; it reports whether the
// upstream must be told (no session wants the URI any more).
func (e *entry) unsubscribe(s *Session, uri string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	set := e.subs[uri]
	if _, ok := set[s]; !ok {
		return len(set) == 0
	}
	delete(set, s)
	if len(set) == 0 {
		delete(e.subs, uri)
		return true
	}
	return false
}

// setLevel records the log level s asked for and returns the level the
// upstream must now run at, or "" when it need not change.
func (e *entry) setLevel(s *Session, level string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.levels == nil {
		e.levels = map[*Session]string{}
	}
	e.levels[s] = level
	want := e.verbosestLocked()
	if want == e.sentLevel {
		return ""
	}
	e.sentLevel = want
	return want
}

func (e *entry) verbosestLocked() string {
	best, bestSev := "", 99
	for _, l := range e.levels {
		if sev, ok := logSeverity[l]; ok && sev < bestSev {
			best, bestSev = l, sev
		}
	}
	return best
}

// accepts reports whether a log message of the given level may go to s:
// s either set no level, or one at most as severe as the message's.
func (e *entry) accepts(s *Session, level string) bool {
	e.mu.Lock()
	want, ok := e.levels[s]
	e.mu.Unlock()
	if !ok {
		return true
	}
	ws, ok1 := logSeverity[want]
	ms, ok2 := logSeverity[level]
	return !ok1 || !ok2 || ms >= ws
}

// forgetState drops s's subscriptions and level; it returns the URIs no
// session wants any more.
func (e *entry) forgetState(s *Session) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.levels, s)
	var orphans []string
	for uri, set := range e.subs {
		if _, ok := set[s]; ok {
			delete(set, s)
			if len(set) == 0 {
				delete(e.subs, uri)
				orphans = append(orphans, uri)
			}
		}
	}
	return orphans
}

// unsubscribeUpstream tells the shared connection that nobody wants these
// URIs any more.
func (e *entry) unsubscribeUpstream(uris []string) {
	c := e.currentClient()
	if c == nil || len(uris) == 0 {
		return
	}
	for _, uri := range uris {
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Timeouts.Request.Std())
		_, _, _ = c.Call(ctx, upstream.Request{Method: "resources/unsubscribe", Params: []byte(`{"uri":` + string(jsonrpc.Quote(uri)) + `}`)})
		cancel()
	}
}

// replayState restores the subscriptions and log level on a restarted
// shared connection: its sessions still expect them.
func (e *entry) replayState(c *upstream.Client) {
	e.mu.Lock()
	uris := make([]string, 0, len(e.subs))
	for uri := range e.subs {
		uris = append(uris, uri)
	}
	level := e.sentLevel
	e.mu.Unlock()
	call := func(method string, params []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, _, err := c.Call(ctx, upstream.Request{Method: method, Params: params}); err != nil {
			e.log.Warn("restoring state on a restarted upstream", "method", method, "error", err)
		}
	}
	if level != "" {
		call("logging/setLevel", []byte(`{"level":`+string(jsonrpc.Quote(level))+`}`))
	}
	for _, uri := range uris {
		call("resources/subscribe", []byte(`{"uri":`+string(jsonrpc.Quote(uri))+`}`))
	}
}
