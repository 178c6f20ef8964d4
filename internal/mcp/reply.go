package mcp

import (
	"context"
	"net/http"
	"sync"
	"time"

	"gatehouse/internal/sse"
)

// reqReplier answers one POSTed request; it implements gateway.Replier.
//
// The gateway runs in the handler goroutine and calls Reply before it
// returns; interim messages (progress, logs, server→client requests) may
// arrive on other goroutines through Send. The common case, a response
// and nothing else, is written by the handler goroutine with no extra
// goroutine and one system call. The first interim message starts a writer
// goroutine that owns the ResponseWriter from then on and pumps the
// request's stream, so a slow client never blocks the upstream reader that
// produced the message.
//
// With sseStart (sessions of revision 2025-11-25) the response is an SSE
// stream from the start, opening with a priming event so that a client
// whose connection drops during a long call can resume with Last-Event-ID;
// every event is kept in the stream for that. The headers and priming event
// are held back for primingDelay in case the response comes first.
type reqReplier struct {
	st       *stream
	w        http.ResponseWriter
	ctx      context.Context // the HTTP request's
	status   func([]byte) int
	sseStart bool
	// sseFinal writes a plain response as a one-event SSE stream instead
	// of JSON, as the stateless revision's reference servers do; errors
	// with an HTTP status of their own stay JSON.
	sseFinal bool
	retry    time.Duration
	onStart  func() // registers the stream for resumption
	// onDelivered is called when the whole response was written to a
	// connection that was still open, so its stream need not be kept.
	onDelivered func()

	mu         sync.Mutex
	headers    bool // SSE headers are written (maybe not flushed)
	writer     bool // the writer goroutine owns w
	final      []byte
	writerDone chan struct{}
	timer      *time.Timer
	pumped     bool // the writer wrote every event (set before writerDone closes)
	abandoned  bool // the client cancelled: no response
}

// primingDelay is how long the headers and priming event of an SSE
// response may wait to be sent together with a quick response. Only calls
// slower than this need the priming event to resume, and they get it then.
const primingDelay = 20 * time.Millisecond

// serve runs handle, which must call Reply before it returns, and writes
// the response.
func (r *reqReplier) serve(handle func()) {
	if r.sseStart {
		if r.onStart != nil {
			r.onStart()
		}
		r.mu.Lock()
		writeSSEHeaders(r.w, http.StatusOK)
		_ = writePriming(r.w, r.st.eventID(0), r.retry)
		r.headers = true
		r.timer = time.AfterFunc(primingDelay, r.flushEarly)
		r.mu.Unlock()
	}
	handle()
	if r.finish() && r.onDelivered != nil {
		r.onDelivered()
	}
}

// flushEarly sends the held-back headers and priming event of a slow call.
func (r *reqReplier) flushEarly() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.writer && r.final == nil {
		_ = http.NewResponseController(r.w).Flush()
	}
}

// Send queues an interim message, starting the writer if needed.
func (r *reqReplier) Send(msg []byte) error {
	r.mu.Lock()
	if r.final != nil {
		r.mu.Unlock()
		return nil // too late: the response is out
	}
	if !r.writer {
		r.writer = true
		r.writerDone = make(chan struct{})
		if r.onStart != nil && !r.sseStart {
			r.onStart()
		}
		go r.runWriter()
	}
	r.mu.Unlock()
	r.st.push(msg, false)
	return nil
}

// Abandon ends the response without a message: the client cancelled the
// request, and the protocol says it gets no response.
//
// An SSE stream is left open until the client closes it (at most
// abandonGrace): ending it without a response would make clients that
// resume streams reconnect to ask for the missing response.
func (r *reqReplier) Abandon() {
	r.mu.Lock()
	r.abandoned = true
	r.mu.Unlock()
	time.AfterFunc(abandonGrace, r.st.close)
}

// abandonGrace bounds how long the stream of a cancelled request is kept
// open for the client to close it.
const abandonGrace = 30 * time.Second

// Reply delivers the response.
func (r *reqReplier) Reply(msg []byte) error {
	r.mu.Lock()
	if r.writer {
		r.mu.Unlock()
		r.st.push(msg, true)
		return nil
	}
	r.final = msg
	r.mu.Unlock()
	return nil
}

func (r *reqReplier) runWriter() {
	defer close(r.writerDone)
	if !r.st.attach() {
		return
	}
	defer r.st.detach()
	r.mu.Lock()
	if !r.headers {
		writeSSEHeaders(r.w, http.StatusOK)
		r.headers = true
	}
	r.mu.Unlock()
	// A broken connection leaves the remaining events buffered for a
	// client that resumes with Last-Event-ID.
	r.pumped = r.st.pump(r.ctx, r.w, 0, 0) == nil
}

// finish writes the response, or waits for the writer to end. It reports
// whether the whole response went to a connection that was still open.
func (r *reqReplier) finish() bool {
	if r.timer != nil {
		r.timer.Stop()
	}
	r.mu.Lock()
	if r.writer {
		r.mu.Unlock()
		<-r.writerDone
		return r.pumped
	}
	defer r.mu.Unlock()
	if r.abandoned {
		if !r.headers {
			r.w.WriteHeader(http.StatusNoContent)
			return true
		}
		_ = http.NewResponseController(r.w).Flush()
		t := time.NewTimer(abandonGrace)
		defer t.Stop()
		r.mu.Unlock()
		select {
		case <-r.ctx.Done():
		case <-t.C:
		}
		r.mu.Lock()
		return true
	}
	if r.ctx.Err() != nil {
		// The client is gone: keep what it missed for a resume.
		if r.headers && r.final != nil {
			r.st.push(r.final, true)
		}
		return false
	}
	final := r.final
	if final == nil {
		final = []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error: no response"}}`)
	}
	if r.headers {
		// Kept for a client that resumes; written now and flushed when the
		// handler returns, together with the end of the response.
		seq := r.st.push(final, true)
		return sse.NewWriter(r.w).WriteEvent(sse.Event{Type: "message", ID: r.st.eventID(seq), Data: final}) == nil
	}
	status := 0
	if r.status != nil {
		status = r.status(final)
	}
	if status == 0 && r.sseFinal {
		writeSSEHeaders(r.w, http.StatusOK)
		return sse.NewWriter(r.w).WriteEvent(sse.Event{Type: "message", Data: final}) == nil
	}
	if status == 0 {
		status = http.StatusOK
	}
	writeJSON(r.w, status, final)
	return true
}

// writeJSON writes a JSON body with the given status.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
