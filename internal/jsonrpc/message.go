// Package jsonrpc parses and rewrites JSON-RPC 2.0 messages as raw bytes.
//
// The gateway forwards messages byte for byte except for the few members it
// owns (ids, tool names, cursors, progress tokens). Parse locates the
// envelope members without decoding the rest; the Set and Splice helpers
// build a rewritten copy. Unknown members and _meta survive untouched.
package jsonrpc

import (
	"bytes"
	"errors"
	"fmt"
)

// Kind classifies a message.
type Kind uint8

const (
	KindInvalid Kind = iota
	KindRequest
	KindNotification
	KindResult
	KindError
)

func (k Kind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindNotification:
		return "notification"
	case KindResult:
		return "result"
	case KindError:
		return "error"
	}
	return "invalid"
}

// Message is one parsed JSON-RPC message. Its slices alias Raw.
type Message struct {
	Raw    []byte
	Kind   Kind
	ID     []byte // raw id (number or string); nil for notifications
	Method string
	Params []byte // raw params; nil when absent
	Result []byte
	Error  []byte

	// Spans of members that are commonly rewritten, relative to Raw.
	idStart, idEnd int
	paramsStart    int
}

// IsRequest reports whether the message is a request (has method and id).
func (m *Message) IsRequest() bool { return m.Kind == KindRequest }

// IsResponse reports whether the message is a result or error response.
func (m *Message) IsResponse() bool { return m.Kind == KindResult || m.Kind == KindError }

// Parse parses one JSON-RPC message. It validates the whole input as JSON and
// the envelope as JSON-RPC 2.0. The returned Message aliases b.
func Parse(b []byte) (*Message, error) {
	m := &Message{}
	return m, m.parse(b)
}

var (
	errNotObject   = errors.New("message is not a JSON object")
	errVersion     = errors.New(`"jsonrpc" must be "2.0"`)
	errBadID       = errors.New("id must be a string or an integer")
	errBadMethod   = errors.New("method must be a string")
	errBadParams   = errors.New("params must be an object or an array")
	errBadShape    = errors.New("not a request, notification or response")
	errBothResults = errors.New("response has both result and error")
)

func (m *Message) parse(b []byte) error {
	*m = Message{Raw: b, idStart: -1}
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errNotObject
	}
	var version, method []byte
	hasID := false
	err := Members(b, func(mb Member) bool {
		v := b[mb.Start:mb.End]
		switch string(mb.Name) {
		case "jsonrpc":
			version = v
		case "id":
			hasID = true
			m.ID = v
			m.idStart, m.idEnd = mb.Start, mb.End
		case "method":
			method = v
		case "params":
			m.Params = v
			m.paramsStart = mb.Start
		case "result":
			m.Result = v
		case "error":
			m.Error = v
		}
		return true
	})
	if err != nil {
		return err
	}
	if string(version) != `"2.0"` {
		return errVersion
	}
	if hasID {
		switch c := m.ID[0]; {
		case c == '"':
		case c == '-' || isDigit(c):
			if bytes.ContainsAny(m.ID, ".eE") {
				return errBadID
			}
		case c == 'n' && m.Result == nil && m.Error != nil:
			// null id is allowed only on error responses to unreadable requests.
		default:
			return errBadID
		}
	}
	if m.Params != nil && m.Params[0] != '{' && m.Params[0] != '[' {
		return errBadParams
	}
	switch {
	case method != nil:
		s, ok := String(method)
		if !ok {
			return errBadMethod
		}
		m.Method = s
		if m.Result != nil || m.Error != nil {
			return errBadShape
		}
		if hasID {
			m.Kind = KindRequest
		} else {
			m.Kind = KindNotification
		}
	case m.Result != nil && m.Error != nil:
		return errBothResults
	case m.Result != nil && hasID:
		m.Kind = KindResult
	case m.Error != nil && hasID:
		m.Kind = KindError
	default:
		return errBadShape
	}
	return nil
}

// IsBatch reports whether b (after leading space) is a JSON array, which in
// protocol revision 2025-03-26 is a JSON-RPC batch.
func IsBatch(b []byte) bool {
	i := skipSpace(b, 0)
	return i < len(b) && b[i] == '['
}

// SplitBatch returns the elements of a JSON-RPC batch.
func SplitBatch(b []byte) ([][]byte, error) {
	var out [][]byte
	err := Elements(b, func(s, e int) bool {
		out = append(out, b[s:e])
		return true
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("empty batch")
	}
	return out, nil
}

// WithID returns a copy of the message with its id replaced by newID (raw
// JSON). The message must have an id.
func (m *Message) WithID(newID []byte) []byte {
	if m.idStart < 0 {
		panic("jsonrpc: WithID on a message without id")
	}
	return splice(m.Raw, m.idStart, m.idEnd, newID)
}

func splice(b []byte, start, end int, v []byte) []byte {
	out := make([]byte, 0, len(b)-(end-start)+len(v))
	out = append(out, b[:start]...)
	out = append(out, v...)
	return append(out, b[end:]...)
}

// Set returns a copy of object obj with member key set to the raw JSON value
// v, replacing an existing member or appending a new one.
func Set(obj []byte, key string, v []byte) ([]byte, error) {
	start, end := -1, -1
	last := -1
	err := Members(obj, func(m Member) bool {
		if m.NameIs(key) {
			start, end = m.Start, m.End
		}
		last = m.End
		return true
	})
	if err != nil {
		return nil, err
	}
	if start >= 0 {
		return splice(obj, start, end, v), nil
	}
	if last < 0 { // empty object
		open := bytes.IndexByte(obj, '{')
		ins := make([]byte, 0, len(key)+len(v)+4)
		ins = appendKey(ins, key)
		ins = append(ins, v...)
		return splice(obj, open+1, open+1, ins), nil
	}
	ins := make([]byte, 0, len(key)+len(v)+5)
	ins = append(ins, ',')
	ins = appendKey(ins, key)
	ins = append(ins, v...)
	return splice(obj, last, last, ins), nil
}

// Delete returns a copy of obj without member key (obj itself if absent).
func Delete(obj []byte, key string) ([]byte, error) {
	type span struct {
		keyStart, end int
		match         bool
	}
	var spans []span
	err := Members(obj, func(m Member) bool {
		spans = append(spans, span{m.KeyStart, m.End, m.NameIs(key)})
		return true
	})
	if err != nil {
		return nil, err
	}
	for idx, s := range spans {
		if !s.match {
			continue
		}
		switch {
		case len(spans) == 1:
			open := bytes.IndexByte(obj, '{')
			cl := bytes.LastIndexByte(obj, '}')
			return splice(obj, open+1, cl, nil), nil
		case idx == len(spans)-1:
			// Remove from the end of the previous value to the end of this one.
			return splice(obj, spans[idx-1].end, s.end, nil), nil
		default:
			return splice(obj, s.keyStart, spans[idx+1].keyStart, nil), nil
		}
	}
	return obj, nil
}

func appendKey(b []byte, key string) []byte {
	b = appendString(b, key)
	return append(b, ':')
}

// AppendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, fmt.Sprintf(`\u%04x`, c)...)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// Quote returns s as a JSON string.
func Quote(s string) []byte { return appendString(nil, s) }

// Rewrite returns a copy of the message with its id replaced by id and its
// params replaced by params (either may be nil to keep the original). All
// other bytes are kept.
func Rewrite(m *Message, id, params []byte) []byte {
	type edit struct {
		start, end int
		v          []byte
	}
	var edits [2]edit
	n := 0
	if id != nil && m.idStart >= 0 {
		edits[n] = edit{m.idStart, m.idEnd, id}
		n++
	}
	if params != nil && m.Params != nil && !sameSlice(params, m.Params) {
		edits[n] = edit{m.paramsStart, m.paramsStart + len(m.Params), params}
		n++
	}
	if n == 2 && edits[0].start > edits[1].start {
		edits[0], edits[1] = edits[1], edits[0]
	}
	size := len(m.Raw)
	for _, e := range edits[:n] {
		size += len(e.v) - (e.end - e.start)
	}
	out := make([]byte, 0, size)
	pos := 0
	for _, e := range edits[:n] {
		out = append(out, m.Raw[pos:e.start]...)
		out = append(out, e.v...)
		pos = e.end
	}
	out = append(out, m.Raw[pos:]...)
	if params != nil && m.Params == nil {
		// No params member yet: insert one.
		if withParams, err := Set(out, "params", params); err == nil {
			return withParams
		}
	}
	return out
}

// sameSlice reports whether a and b are the same bytes in memory.
func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
