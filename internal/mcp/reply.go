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
// In eager mode (sessions of revision 2025-11-25 and the stateless
// 2026-07-28 revision) the response is an SSE stream from the start: in
// 2025-11-25 it opens with a priming event, so a client whose connection
// drops during a long tool call can resume it with Last-Event-ID. The
// gateway then runs in its own goroutine while the handler goroutine pumps
// the stream.
//
// In lazy mode (older revisions) the replier stays undecided: a plain
// response is written as application/json by the handler goroutine; the
// first interim message switches to an SSE stream pumped by a writer
// goroutine that owns the ResponseWriter from then on.
type reqReplier struct {
	st     *stream
	w      http.ResponseWriter
	ctx    context.Context // the HTTP request's
	status func([]byte) int
	eager  bool
	// sseFinal (lazy mode) writes a plain result as a one-event SSE stream
	// rather than JSON, as the stateless revision's reference servers do;
	// errors with an HTTP status of their own stay JSON.
	sseFinal bool
	priming  bool
	retry    time.Duration
	onStart  func() // called when SSE starts (registers the stream)

	mu         sync.Mutex
	sse        bool
	final      []byte
	writerDone chan struct{}
}

// Send queues an interim message, starting the SSE stream if needed.
func (r *reqReplier) Send(msg []byte) error {
	if r.eager {
		r.st.push(msg, false)
		return nil
	}
	r.mu.Lock()
	if !r.sse && r.final == nil {
		r.sse = true
		r.writerDone = make(chan struct{})
		if r.onStart != nil {
			r.onStart()
		}
		go r.writer()
	}
	sse := r.sse
	r.mu.Unlock()
	if sse {
		r.st.push(msg, false)
	}
	return nil
}

// Reply delivers the response.
func (r *reqReplier) Reply(msg []byte) error {
	if r.eager {
		r.st.push(msg, true)
		return nil
	}
	r.mu.Lock()
	if r.sse {
		r.mu.Unlock()
		r.st.push(msg, true)
		return nil
	}
	r.final = msg
	r.mu.Unlock()
	return nil
}

// serve runs handle (which calls Send and Reply) and writes the response.
// It returns when the response is written or the client went away; in
// eager mode handle may still be running then, buffering for a resume.
func (r *reqReplier) serve(handle func(), done func()) {
	if !r.eager {
		handle()
		done()
		r.finish()
		return
	}
	if r.onStart != nil {
		r.onStart()
	}
	r.st.attach()
	defer r.st.detach()
	writeSSEHeaders(r.w, http.StatusOK)
	if r.priming {
		if err := writePriming(r.w, r.st.eventID(0), r.retry); err != nil {
			go func() { handle(); done() }()
			return
		}
	}
	go func() { handle(); done() }()
	_ = r.st.pump(r.ctx, r.w, 0, primingDelay)
}

// primingDelay is how long the headers and priming event of an SSE
// response may wait to be sent together with a quick response. Only calls
// slower than this need the priming event to resume, and they get it then.
const primingDelay = 20 * time.Millisecond

func (r *reqReplier) writer() {
	defer close(r.writerDone)
	if !r.st.attach() {
		return
	}
	defer r.st.detach()
	writeSSEHeaders(r.w, http.StatusOK)
	// A broken connection leaves the remaining events buffered for a
	// client that resumes with Last-Event-ID.
	_ = r.st.pump(r.ctx, r.w, 0, 0)
}

// finish is called by the handler goroutine after the gateway returned in
// lazy mode: it writes the JSON response or waits for the SSE writer.
func (r *reqReplier) finish() {
	r.mu.Lock()
	if !r.sse {
		final := r.final
		r.mu.Unlock()
		if final == nil {
			http.Error(r.w, "no response", http.StatusInternalServerError)
			return
		}
		status := 0
		if r.status != nil {
			status = r.status(final)
		}
		if status == 0 && r.sseFinal {
			writeSSEHeaders(r.w, http.StatusOK)
			// Flushed when the handler returns, with the end of the response.
			_ = sse.NewWriter(r.w).WriteEvent(sse.Event{Type: "message", Data: final})
			return
		}
		if status == 0 {
			status = http.StatusOK
		}
		writeJSON(r.w, status, final)
		return
	}
	done := r.writerDone
	r.mu.Unlock()
	<-done
}

// writeJSON writes a JSON body with the given status.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
