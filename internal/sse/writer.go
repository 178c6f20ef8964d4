package sse

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Sizes governing how Writer batches output. An event up to bufferLimit
// bytes is handed to the underlying writer in one Write; data lines of at
// least directWriteSize bytes are written straight from the caller's slice
// rather than copied, so large tool results cost no extra copy and the
// Writer never holds more than about bufferLimit bytes.
const (
	bufferLimit      = 32 << 10
	directWriteSize  = 8 << 10
	initialBufferCap = 512
)

// Writer frames events onto an io.Writer. It never flushes: the caller
// decides when bytes go on the wire (for an HTTP response, through
// http.ResponseController.Flush), which lets it batch several events or
// flush after each. A Writer is not safe for concurrent use.
type Writer struct {
	w   io.Writer
	buf []byte
	// lastID is the id the receiver currently holds as its last event ID,
	// as far as this Writer knows.
	lastID string
	// err is the sticky error of the underlying writer: after a failed
	// write the stream may end mid-event and must not be continued.
	err error
}

// NewWriter returns a Writer that writes events to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, buf: make([]byte, 0, initialBufferCap)}
}

// WriteEvent writes e as one complete event, terminated by an empty line.
//
// Lines are written in the order id, event, retry, data, each as
// "name: value". The id line is written when e.HasID is set (an empty ID
// then resets the receiver's last event ID) or when e.ID is non-empty and
// differs from the last id this Writer sent; an unchanged ID is not
// repeated because the receiver keeps it anyway. This makes a Reader's
// events, whose ID persists across events, reproduce exactly. The event
// line is omitted for an empty or "message" type, which receivers assume.
// The retry line, in whole milliseconds (rounded down), is written when
// e.HasRetry is set or e.Retry is non-zero.
//
// Data is split at every CRLF, CR and LF into one data line per line, so
// the receiver reassembles it exactly, except that every line ending comes
// back as LF: the event stream format has no way to carry a CR in data, and
// receivers join data lines with LF. Data a Reader returned, which only
// contains LF, therefore round-trips byte for byte, and a JSON-RPC message
// keeps its meaning (raw CR and LF can only be whitespace between tokens;
// inside JSON strings they are escaped). Empty data is written as a single
// "data: " line, with the usual space for clients that match the "data: "
// prefix literally: that is the MCP priming event (an id and an empty data
// field), and standard clients only fire an event when a data line is
// present.
//
// An ID or Type containing CR, LF or NUL, or a negative Retry, is refused
// with an error wrapping ErrInvalidEvent and nothing is written: such values
// coming from an upstream would otherwise inject fields or events. Errors
// of the underlying writer are permanent for the Writer.
func (w *Writer) WriteEvent(e Event) error {
	if w.err != nil {
		return w.err
	}
	if i := strings.IndexAny(e.ID, "\r\n\x00"); i >= 0 {
		return fmt.Errorf("%w: id contains %q", ErrInvalidEvent, e.ID[i])
	}
	if i := strings.IndexAny(e.Type, "\r\n\x00"); i >= 0 {
		return fmt.Errorf("%w: event type contains %q", ErrInvalidEvent, e.Type[i])
	}
	writeRetry := e.HasRetry || e.Retry != 0
	if writeRetry && e.Retry < 0 {
		return fmt.Errorf("%w: negative retry %v", ErrInvalidEvent, e.Retry)
	}
	writeID := e.HasID || (e.ID != "" && e.ID != w.lastID)

	w.buf = w.buf[:0]
	if writeID {
		w.buf = append(w.buf, "id: "...)
		w.buf = append(w.buf, e.ID...)
		w.buf = append(w.buf, '\n')
		w.lastID = e.ID
	}
	if e.Type != "" && e.Type != "message" {
		w.buf = append(w.buf, "event: "...)
		w.buf = append(w.buf, e.Type...)
		w.buf = append(w.buf, '\n')
	}
	if writeRetry {
		w.buf = append(w.buf, "retry: "...)
		w.buf = strconv.AppendInt(w.buf, int64(e.Retry/time.Millisecond), 10)
		w.buf = append(w.buf, '\n')
	}
	if err := w.appendData(e.Data); err != nil {
		return err
	}
	w.buf = append(w.buf, '\n')
	return w.flush()
}

// appendData appends data as data lines, handing large pieces to the
// underlying writer directly.
func (w *Writer) appendData(data []byte) error {
	for {
		i := indexLineEnd(data)
		line := data
		if i >= 0 {
			line = data[:i]
		}
		w.buf = append(w.buf, "data: "...)
		if len(line) >= directWriteSize || len(w.buf)+len(line) > bufferLimit {
			if err := w.flush(); err != nil {
				return err
			}
			if err := w.write(line); err != nil {
				return err
			}
		} else {
			w.buf = append(w.buf, line...)
		}
		w.buf = append(w.buf, '\n')
		if i < 0 {
			return nil
		}
		n := i + 1
		if data[i] == '\r' && n < len(data) && data[n] == '\n' {
			n++
		}
		// A trailing line ending leaves an empty final line, which becomes
		// an empty data line: that is what restores the ending on receipt.
		data = data[n:]
	}
}

// WriteComment writes a comment block, ": text" followed by an empty line,
// as used for keep-alives. Receivers ignore comments. A text spanning
// several lines becomes several comment lines, so it cannot inject fields.
func (w *Writer) WriteComment(text string) error {
	if w.err != nil {
		return w.err
	}
	w.buf = w.buf[:0]
	for {
		i := strings.IndexAny(text, "\r\n")
		line := text
		if i >= 0 {
			line = text[:i]
		}
		w.buf = append(w.buf, ": "...)
		w.buf = append(w.buf, line...)
		w.buf = append(w.buf, '\n')
		if i < 0 {
			break
		}
		n := i + 1
		if text[i] == '\r' && n < len(text) && text[n] == '\n' {
			n++
		}
		text = text[n:]
	}
	w.buf = append(w.buf, '\n')
	return w.flush()
}

// flush hands the buffered bytes to the underlying writer.
func (w *Writer) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.write(w.buf)
	w.buf = w.buf[:0]
	if cap(w.buf) > 2*bufferLimit {
		// A huge id, type or comment grew the buffer; do not keep it.
		w.buf = make([]byte, 0, initialBufferCap)
	}
	return err
}

// write writes p to the underlying writer, recording any failure.
func (w *Writer) write(p []byte) error {
	n, err := w.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("sse: writing event stream: %w", err)
	}
	return w.err
}
