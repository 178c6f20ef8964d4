// Package sse reads and writes Server-Sent Events for the MCP data path.
//
// The wire format and the parsing rules are those of the WHATWG HTML Living
// Standard, section "Server-sent events" (subsections "Parsing an event
// stream" and "Interpreting an event stream"): lines end in CRLF, LF or CR, a
// leading byte order mark is skipped, lines starting with a colon are
// comments, "field: value" lines fill the event buffers and an empty line
// dispatches the event. Both the Streamable HTTP transport and the legacy
// HTTP+SSE transport of the Model Context Protocol (MCP) carry JSON-RPC
// messages this way, so Reader sits on the gateway's hot path and reads
// untrusted input from upstream servers.
//
// Reader deviates from the browser algorithm where a proxy needs it to:
//
//   - Events without a data field are dispatched when they set an id or a
//     retry field. The standard drops them (only their side effect on the
//     last event ID and the reconnection time survives), but MCP servers send
//     such events on purpose: a "priming" event carrying only an id (and
//     usually an empty data line) lets the client resume with Last-Event-ID,
//     and a retry-only event before closing tells it when to poll again. A
//     gateway has to see them to forward them and to resume upstream
//     streams. Event.Empty reports them; they are not JSON-RPC messages.
//     (An id with an empty "data:" line is dispatched by the standard too,
//     with empty data; the deviation only concerns blocks with no data field
//     at all.) Blocks that set nothing but an event type are still dropped.
//   - The stream is handled as bytes, not decoded as UTF-8: invalid
//     sequences pass through unchanged instead of becoming U+FFFD. The JSON
//     layer validates payloads anyway, and byte transparency keeps forwarding
//     exact and allocation free.
//   - A single event may not exceed a size limit (ErrEventTooLarge), so a
//     hostile upstream cannot make the gateway buffer without bound.
//   - Retry is reported per event (Event.HasRetry) rather than kept as
//     stream state; the caller owns the reconnection policy.
//
// Writer produces framing that Reader (and any conforming parser)
// reconstructs exactly, up to line endings in data, which every receiver
// turns into LF. It refuses ids and event types that would let a value
// inject extra fields.
package sse

import (
	"errors"
	"time"
)

// DefaultMaxEventSize is the event size limit NewReader uses when it is
// given a limit of zero or less. MCP tool results can carry base64 images or
// large documents, so it is generous; deployments that know their upstreams
// should pass a tighter limit.
const DefaultMaxEventSize = 8 << 20

// ErrEventTooLarge is returned by Reader.Next when the field lines of one
// event (comments excluded, line endings excluded) add up to more than the
// reader's maximum event size. The error is permanent for that Reader: the
// rest of the oversized event was not consumed, so the stream cannot be
// resynchronised reliably and the connection should be dropped.
var ErrEventTooLarge = errors.New("sse: event exceeds maximum size")

// ErrInvalidEvent is returned (wrapped, with details) by Writer.WriteEvent
// for an event that cannot be framed faithfully: an id or event type
// containing CR, LF or NUL, or a negative retry.
var ErrInvalidEvent = errors.New("sse: invalid event")

// Event is one dispatched server-sent event.
type Event struct {
	// Type is the event type, "message" when the event had no event field
	// or an empty one, as the standard specifies.
	Type string
	// Data is the concatenation of the event's data lines joined by "\n".
	// It is nil when the event had no data or only empty data lines. A
	// Reader reuses the underlying array: Data is valid only until the next
	// call of Reader.Next, so copy it to keep it.
	Data []byte
	// ID is the stream's last event ID at dispatch time. It persists across
	// events: an event without an id field reports the id most recently
	// set, which is what a client sends as Last-Event-ID when it resumes.
	ID string
	// HasID reports whether this event itself carried an accepted id field
	// (possibly empty, which resets the last event ID).
	HasID bool
	// Retry is the reconnection time carried by this event's retry field.
	// It is meaningful only when HasRetry is set.
	Retry time.Duration
	// HasRetry reports whether this event carried a valid retry field.
	HasRetry bool
}

// Empty reports whether the event carries no data. Such events are MCP
// priming or polling events (only an id, a retry, or an empty data line):
// the caller should record ID and Retry and must not treat Data as a
// JSON-RPC message.
func (e Event) Empty() bool { return len(e.Data) == 0 }
