package sse

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"time"
)

// readBufferSize is the bufio buffer a Reader reads through. Lines that fit
// in it are parsed in place; longer ones are assembled in Reader.line.
const readBufferSize = 4096

// retainLimit bounds the capacity of the scratch buffers a Reader keeps
// between events. One large event must not pin its buffers for the life of
// a long-lived stream; ordinary MCP messages stay well below it and reuse
// their buffers without allocating.
const retainLimit = 256 << 10

// maxRetryMillis is the largest retry value, in milliseconds, that fits in a
// time.Duration. Larger values saturate to it, which keeps the result a
// whole number of milliseconds so that Writer reproduces it exactly.
const maxRetryMillis = math.MaxInt64 / int64(time.Millisecond)

// bom is the UTF-8 encoding of U+FEFF, skipped once at the start of a stream.
var bom = []byte{0xEF, 0xBB, 0xBF}

// Reader parses an event stream. It is not safe for concurrent use.
type Reader struct {
	br  *bufio.Reader
	max int

	// err is sticky: io.EOF, ErrEventTooLarge or a wrapped read error.
	err error

	// bomChecked is set once the start of the stream has been examined.
	bomChecked bool
	// skipLF is set when the previous line ended in a CR that was the last
	// buffered byte. A following LF belongs to that line ending. Deciding
	// lazily, instead of waiting for the next byte, lets an event that ends
	// in CR CR dispatch without blocking on a live stream.
	skipLF bool

	// line assembles a line longer than the bufio buffer.
	line []byte
	// size is the number of bytes of field lines in the current event.
	size int

	// Per-event buffers, as in the standard's parsing model.
	data     []byte
	hasData  bool
	typ      []byte
	hasID    bool
	retry    time.Duration
	hasRetry bool

	// lastID is the last event ID; it persists across events.
	lastID string
	// lastType caches the most recent non-default event type so that a
	// stream repeating one type does not allocate a string per event.
	lastType string
}

// NewReader returns a Reader that parses the event stream read from r.
// maxEventSize bounds the bytes of one event's field lines (see
// ErrEventTooLarge); zero or less selects DefaultMaxEventSize. If r is a
// *bufio.Reader with a large enough buffer it is used directly.
func NewReader(r io.Reader, maxEventSize int) *Reader {
	if maxEventSize <= 0 {
		maxEventSize = DefaultMaxEventSize
	}
	return &Reader{br: bufio.NewReaderSize(r, readBufferSize), max: maxEventSize}
}

// Next returns the next dispatched event. It returns io.EOF at the end of
// the stream; an event that was not terminated by an empty line before the
// end is discarded, as the standard requires. Errors of the underlying
// reader are returned wrapped. Every error is permanent: later calls return
// it again.
//
// The returned Event's Data aliases a buffer of the Reader and is only valid
// until the next call of Next. Forwarding or decoding an event before asking
// for the next one is the common case on a proxy path, so reusing the buffer
// saves an allocation and a copy per event; callers that keep Data must copy
// it.
func (r *Reader) Next() (Event, error) {
	if r.err != nil {
		return Event{}, r.err
	}
	// The previous event's Data may have been handed out; only now may the
	// buffer be reset or released.
	r.data = trim(r.data)
	r.line = trim(r.line)
	for {
		line, comment, err := r.readLine()
		if err != nil {
			if err != io.EOF && err != ErrEventTooLarge {
				err = fmt.Errorf("sse: reading event stream: %w", err)
			}
			r.err = err
			r.reset()
			return Event{}, err
		}
		if comment {
			continue
		}
		if len(line) == 0 {
			if ev, ok := r.dispatch(); ok {
				return ev, nil
			}
			continue
		}
		r.field(line)
	}
}

// trim empties a scratch buffer, dropping it if a large event grew it past
// retainLimit.
func trim(b []byte) []byte {
	if cap(b) > retainLimit {
		return nil
	}
	return b[:0]
}

// field processes one non-empty, non-comment line.
func (r *Reader) field(line []byte) {
	name, value := line, line[len(line):]
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	// The conversions in the switch do not allocate.
	switch string(name) {
	case "event":
		r.typ = append(r.typ[:0], value...)
	case "data":
		// The standard appends value+LF per line and strips the final LF
		// at dispatch; joining with LF is the same without the fix-up.
		if r.hasData {
			r.data = append(r.data, '\n')
		}
		r.data = append(r.data, value...)
		r.hasData = true
	case "id":
		// An id containing NUL is ignored entirely, so that a client never
		// has to send a NUL in the Last-Event-ID header.
		if bytes.IndexByte(value, 0) >= 0 {
			return
		}
		if string(value) != r.lastID {
			r.lastID = string(value)
		}
		r.hasID = true
	case "retry":
		ms, ok := parseRetry(value)
		if ok {
			r.retry = time.Duration(ms) * time.Millisecond
			r.hasRetry = true
		}
	}
	// Any other field name is ignored, as the standard requires.
}

// parseRetry interprets a retry value: one or more ASCII digits, base ten,
// in milliseconds. Anything else is rejected. Values too large for a
// time.Duration saturate rather than wrap.
func parseRetry(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var ms int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if ms > (maxRetryMillis-d)/10 {
			ms = maxRetryMillis // and stays there: further digits only grow it
		} else {
			ms = ms*10 + d
		}
	}
	return ms, true
}

// dispatch ends the current event at an empty line. It reports false for a
// block the Reader does not dispatch (no data, id or retry field).
func (r *Reader) dispatch() (Event, bool) {
	if !r.hasData && !r.hasID && !r.hasRetry {
		r.reset()
		return Event{}, false
	}
	ev := Event{
		Type:     "message",
		ID:       r.lastID,
		HasID:    r.hasID,
		Retry:    r.retry,
		HasRetry: r.hasRetry,
	}
	if len(r.data) > 0 {
		ev.Data = r.data
	}
	if len(r.typ) > 0 {
		if string(r.typ) != r.lastType {
			r.lastType = string(r.typ)
		}
		ev.Type = r.lastType
	}
	// r.data keeps its contents: ev.Data aliases it until the next Next.
	r.hasData, r.hasID, r.hasRetry = false, false, false
	r.typ = r.typ[:0]
	r.retry = 0
	r.size = 0
	return ev, true
}

// reset discards the current event's buffers.
func (r *Reader) reset() {
	r.data = r.data[:0]
	r.hasData, r.hasID, r.hasRetry = false, false, false
	r.typ = r.typ[:0]
	r.retry = 0
	r.size = 0
}

// fill returns the buffered bytes, reading from the source only when there
// are none. It never returns an empty slice with a nil error.
func (r *Reader) fill() ([]byte, error) {
	n := r.br.Buffered()
	if n == 0 {
		if _, err := r.br.Peek(1); err != nil {
			return nil, err
		}
		n = r.br.Buffered()
	}
	b, _ := r.br.Peek(n) // cannot fail: n bytes are buffered
	return b, nil
}

// readLine returns the next line without its line ending. comment reports a
// line starting with ':'; such lines are skipped without being buffered or
// counted, however long they are. The returned line aliases either the bufio
// buffer or r.line and is valid until the next read.
//
// Every non-comment line is counted in r.size; a line that would take the
// event past the limit fails with ErrEventTooLarge before it is buffered
// further. A line cut short by the end of the stream is dropped: the event
// it belongs to can no longer be dispatched.
func (r *Reader) readLine() (line []byte, comment bool, err error) {
	r.line = r.line[:0]
	start := true
	for {
		buf, err := r.fill()
		if err != nil {
			return nil, false, err
		}
		if !r.bomChecked {
			r.bomChecked = true
			if buf[0] == bom[0] {
				// Only a stream that starts with 0xEF can wait here for
				// three bytes; no valid event stream line does.
				if p, err := r.br.Peek(len(bom)); err == nil && bytes.Equal(p, bom) {
					r.br.Discard(len(bom))
				}
				continue
			}
		}
		if r.skipLF {
			r.skipLF = false
			if buf[0] == '\n' {
				r.br.Discard(1)
				if len(buf) == 1 {
					continue
				}
				buf = buf[1:]
			}
		}
		if start {
			start = false
			comment = buf[0] == ':'
		}
		i := indexLineEnd(buf)
		if i < 0 {
			// The line continues past the buffered bytes.
			if !comment {
				if r.size+len(r.line)+len(buf) > r.max {
					return nil, false, ErrEventTooLarge
				}
				r.line = append(r.line, buf...)
			}
			r.br.Discard(len(buf))
			continue
		}
		switch {
		case comment:
			line = nil
		case len(r.line) > 0:
			r.line = append(r.line, buf[:i]...)
			line = r.line
		default:
			line = buf[:i]
		}
		n := i + 1
		if buf[i] == '\r' {
			if n == len(buf) {
				r.skipLF = true
			} else if buf[n] == '\n' {
				n++
			}
		}
		// Discard only advances the read position: line stays intact until
		// the next fill.
		r.br.Discard(n)
		if !comment {
			r.size += len(line)
			if r.size > r.max {
				return nil, false, ErrEventTooLarge
			}
		}
		return line, comment, nil
	}
}

// indexLineEnd returns the index of the first CR or LF in b, or -1. Two
// IndexByte scans are much faster than a byte loop, and the second one only
// covers the line found by the first.
func indexLineEnd(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	head := b
	if i >= 0 {
		head = b[:i]
	}
	if j := bytes.IndexByte(head, '\r'); j >= 0 {
		return j
	}
	return i
}
