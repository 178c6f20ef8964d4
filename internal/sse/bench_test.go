package sse

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchJSON is a typical ~200-byte MCP notification.
const benchJSON = `{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","logger":"crm","data":{"msg":"query finished","table":"customers","rows":42,"elapsedMs":12.5,"cursor":"eyJvZmZzZXQiOjQyfQ=="}}}`

// benchStream returns n events in the form MCP servers send them, each
// with a distinct id when withID is set.
func benchStream(n int, withID bool, eol string) []byte {
	var b strings.Builder
	for i := range n {
		if withID {
			b.WriteString("id: 7f3e9c2a_" + strconv.Itoa(i) + eol)
		}
		b.WriteString("event: message" + eol + "data: " + benchJSON + eol + eol)
	}
	return []byte(b.String())
}

// BenchmarkReader measures Next per event on an endless stream of ~200-byte
// JSON message events. ns/op and allocs/op are per event.
func BenchmarkReader(b *testing.B) {
	cases := []struct {
		name   string
		stream []byte
		copy   bool
	}{
		{"LF", benchStream(1, false, "\n"), false},
		{"CRLF", benchStream(1, false, "\r\n"), false},
		// Distinct ids cost one string per event: Event.ID must outlive
		// the call.
		{"LF-ids", benchStream(1000, true, "\n"), false},
		// What callers pay if they keep Data instead of consuming it
		// before the next call; the Reader does not copy, for them to
		// decide.
		{"LF-ids-copy", benchStream(1000, true, "\n"), true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			r := NewReader(&repeatReader{data: c.stream}, 0)
			b.SetBytes(int64(len(c.stream) / bytes.Count(c.stream, []byte("data: "))))
			b.ReportAllocs()
			var sink []byte
			for b.Loop() {
				e, err := r.Next()
				if err != nil {
					b.Fatal(err)
				}
				if c.copy {
					sink = bytes.Clone(e.Data)
				} else {
					sink = e.Data
				}
			}
			if len(sink) != len(benchJSON) {
				b.Fatalf("read %d bytes, want %d", len(sink), len(benchJSON))
			}
		})
	}
}

// BenchmarkWriter measures WriteEvent for ~200-byte JSON message events
// and WriteComment for keep-alives.
func BenchmarkWriter(b *testing.B) {
	data := []byte(benchJSON)
	b.Run("event", func(b *testing.B) {
		w := NewWriter(io.Discard)
		e := Event{ID: "7f3e9c2a_1", HasID: true, Type: "message", Data: data}
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if err := w.WriteEvent(e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("multiline", func(b *testing.B) {
		w := NewWriter(io.Discard)
		pretty := bytes.ReplaceAll(data, []byte(","), []byte(",\r\n"))
		e := Event{ID: "7f3e9c2a_1", HasID: true, Type: "message", Retry: time.Second, Data: pretty}
		b.SetBytes(int64(len(pretty)))
		b.ReportAllocs()
		for b.Loop() {
			if err := w.WriteEvent(e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("priming", func(b *testing.B) {
		w := NewWriter(io.Discard)
		e := Event{ID: "7f3e9c2a_0", HasID: true}
		b.ReportAllocs()
		for b.Loop() {
			if err := w.WriteEvent(e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("comment", func(b *testing.B) {
		w := NewWriter(io.Discard)
		b.ReportAllocs()
		for b.Loop() {
			if err := w.WriteComment("ping"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
