package mcp

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"gatehouse/internal/sse"
)

// stream is an ordered sequence of outgoing messages: the SSE response to
// one POST, or a session's standalone stream. Messages are buffered so a
// slow client never blocks the upstream reader that produced them, and so
// a client that reconnects with Last-Event-ID can be replayed what it
// missed. A writer (an HTTP handler goroutine) attaches and pumps.
type stream struct {
	id        string
	resumable bool // events carry ids and are kept for replay
	maxBuffer int

	mu       sync.Mutex
	events   []event
	first    int  // sequence number of events[0]
	next     int  // sequence number of the next event
	closed   bool // no more events will come
	attached bool
	// delivered is the last sequence number written to a client; a new
	// standalone GET without Last-Event-ID continues after it.
	delivered int
	dropped   int // events discarded because the buffer was full
	signal    chan struct{}
}

type event struct {
	seq  int
	data []byte
}

func newStream(id string, resumable bool, maxBuffer int) *stream {
	if maxBuffer <= 0 {
		maxBuffer = 512
	}
	return &stream{id: id, resumable: resumable, maxBuffer: maxBuffer, first: 1, next: 1, signal: make(chan struct{}, 1)}
}

func (st *stream) poke() {
	select {
	case st.signal <- struct{}{}:
	default:
	}
}

// push appends a message and returns its sequence number. When the buffer
// is full the oldest undelivered event is dropped (counted): memory stays
// bounded whatever the client does.
func (st *stream) push(msg []byte, last bool) int {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return 0
	}
	seq := st.next
	st.events = append(st.events, event{seq: seq, data: msg})
	st.next++
	if len(st.events) > st.maxBuffer {
		st.events = st.events[1:]
		st.first++
		st.dropped++
	}
	if last {
		st.closed = true
	}
	st.mu.Unlock()
	st.poke()
	return seq
}

// close marks the stream finished.
func (st *stream) close() {
	st.mu.Lock()
	st.closed = true
	st.mu.Unlock()
	st.poke()
}

// eventID formats the SSE id of an event: stream id and sequence number.
func (st *stream) eventID(seq int) string { return st.id + "." + strconv.Itoa(seq) }

// parseEventID splits a Last-Event-ID into stream id and sequence.
func parseEventID(s string) (string, int, bool) {
	i := strings.LastIndexByte(s, '.')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil || n < 0 {
		return "", 0, false
	}
	return s[:i], n, true
}

// attach claims the stream for one writer; false if another is attached.
func (st *stream) attach() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.attached {
		return false
	}
	st.attached = true
	return true
}

func (st *stream) detach() {
	st.mu.Lock()
	st.attached = false
	st.mu.Unlock()
}

// keepAlive is how often an idle stream gets an SSE comment, so proxies
// and clients do not time it out.
const keepAlive = 25 * time.Second

// pump writes the events after sequence number from to w until the stream
// is closed and fully written (nil) or ctx ends or a write fails (error).
// The caller has attached the stream and set the SSE response headers.
//
// Writes are flushed as they happen, except the last batch of a finished
// stream: the handler returning flushes it together with the end of the
// response, which saves a system call per request on the hot path. With
// firstFlush > 0, what the caller wrote before (headers, the priming
// event) is held back up to that long in the hope that the response comes
// first and everything goes out in one write.
func (st *stream) pump(ctx context.Context, w http.ResponseWriter, from int, firstFlush time.Duration) error {
	rc := http.NewResponseController(w)
	sw := sse.NewWriter(w)
	ticker := time.NewTicker(keepAlive)
	defer ticker.Stop()
	var hold <-chan time.Time
	if firstFlush > 0 {
		t := time.NewTimer(firstFlush)
		defer t.Stop()
		hold = t.C
	}
	var batch []event
	for {
		st.mu.Lock()
		batch = batch[:0]
		for _, ev := range st.events {
			if ev.seq > from {
				batch = append(batch, ev)
			}
		}
		closed := st.closed
		lastSeq := st.next - 1
		st.mu.Unlock()
		for _, ev := range batch {
			e := sse.Event{Type: "message", Data: ev.data}
			if st.resumable {
				e.ID = st.eventID(ev.seq)
			}
			if err := sw.WriteEvent(e); err != nil {
				return err
			}
			from = ev.seq
		}
		if len(batch) > 0 {
			st.mu.Lock()
			if from > st.delivered {
				st.delivered = from
			}
			st.mu.Unlock()
		}
		if closed && from >= lastSeq {
			return nil
		}
		if len(batch) > 0 {
			if err := rc.Flush(); err != nil {
				return err
			}
			hold = nil
		}
		select {
		case <-st.signal:
		case <-hold:
			hold = nil
			if err := rc.Flush(); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
			if err := sw.WriteComment("keep-alive"); err != nil {
				return err
			}
			if err := rc.Flush(); err != nil {
				return err
			}
		}
	}
}

// deliveredSeq returns the last sequence number written to a client.
func (st *stream) deliveredSeq() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.delivered
}

// finished reports whether every event up to the close was written, so the
// stream can be forgotten.
func (st *stream) finished() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.closed && !st.attached
}

// writeSSEHeaders starts an SSE response.
func writeSSEHeaders(w http.ResponseWriter, status int) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(status)
}

// writePriming writes (without flushing) the event that primes a
// 2025-11-25 client for resumption: an id with empty data, plus the
// reconnection delay.
func writePriming(w http.ResponseWriter, id string, retry time.Duration) error {
	return sse.NewWriter(w).WriteEvent(sse.Event{ID: id, HasID: true, Retry: retry, HasRetry: retry > 0})
}
