package sse

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestWriteEvent(t *testing.T) {
	tests := []struct {
		name string
		in   []Event
		want string
	}{
		{"data", []Event{{Data: []byte("hello")}}, "data: hello\n\n"},
		{"message type omitted", []Event{{Type: "message", Data: []byte("x")}}, "data: x\n\n"},
		{"all fields", []Event{{ID: "7", HasID: true, Type: "update", Retry: 1500 * time.Millisecond, HasRetry: true, Data: []byte("{}")}},
			"id: 7\nevent: update\nretry: 1500\ndata: {}\n\n"},
		{"priming event", []Event{{ID: "abc", HasID: true}}, "id: abc\ndata: \n\n"},
		{"empty data", []Event{{}}, "data: \n\n"},
		{"empty id resets", []Event{{HasID: true}}, "id: \ndata: \n\n"},
		{"LF split", []Event{{Data: []byte("a\nb")}}, "data: a\ndata: b\n\n"},
		{"CR split", []Event{{Data: []byte("a\rb")}}, "data: a\ndata: b\n\n"},
		{"CRLF split once", []Event{{Data: []byte("a\r\nb")}}, "data: a\ndata: b\n\n"},
		{"LF CR is two endings", []Event{{Data: []byte("a\n\rb")}}, "data: a\ndata: \ndata: b\n\n"},
		{"trailing LF", []Event{{Data: []byte("a\n")}}, "data: a\ndata: \n\n"},
		{"only CRLF", []Event{{Data: []byte("\r\n")}}, "data: \ndata: \n\n"},
		{"leading space kept", []Event{{Data: []byte(" a")}}, "data:  a\n\n"},
		{"colon data", []Event{{Data: []byte(": not a comment")}}, "data: : not a comment\n\n"},
		{"retry without HasRetry", []Event{{Retry: 2 * time.Second, Data: []byte("x")}}, "retry: 2000\ndata: x\n\n"},
		{"retry zero", []Event{{HasRetry: true}}, "retry: 0\ndata: \n\n"},
		{"retry rounds down", []Event{{Retry: 1999 * time.Microsecond, Data: []byte("x")}}, "retry: 1\ndata: x\n\n"},
		{"id without HasID", []Event{{ID: "1", Data: []byte("x")}}, "id: 1\ndata: x\n\n"},
		{"unchanged id not repeated", []Event{{ID: "1", HasID: true, Data: []byte("a")}, {ID: "1", Data: []byte("b")}, {ID: "1", HasID: true, Data: []byte("c")}},
			"id: 1\ndata: a\n\ndata: b\n\nid: 1\ndata: c\n\n"},
		{"changed id written", []Event{{ID: "1", Data: []byte("a")}, {ID: "2", Data: []byte("b")}}, "id: 1\ndata: a\n\nid: 2\ndata: b\n\n"},
		{"missing id does not reset", []Event{{ID: "1", Data: []byte("a")}, {Data: []byte("b")}}, "id: 1\ndata: a\n\ndata: b\n\n"},
		{"NUL in data kept", []Event{{Data: []byte("a\x00b")}}, "data: a\x00b\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf)
			for _, e := range tt.in {
				if err := w.WriteEvent(e); err != nil {
					t.Fatal(err)
				}
			}
			if buf.String() != tt.want {
				t.Errorf("got  %q\nwant %q", buf.String(), tt.want)
			}
		})
	}
}

func TestWriteEventRejects(t *testing.T) {
	bad := []Event{
		{ID: "1\n", Data: []byte("x")},
		{ID: "1\rdata: injected", Data: []byte("x")},
		{ID: "1\x00", Data: []byte("x")},
		{ID: "\n", HasID: true},
		{Type: "a\nb", Data: []byte("x")},
		{Type: "a\r", Data: []byte("x")},
		{Type: "a\x00", Data: []byte("x")},
		{Retry: -time.Second, HasRetry: true},
		{Retry: -time.Second},
	}
	for _, e := range bad {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		if err := w.WriteEvent(e); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%+v: error = %v, want ErrInvalidEvent", e, err)
		}
		if buf.Len() != 0 {
			t.Errorf("%+v: wrote %q", e, buf.String())
		}
		// A refused event does not poison the Writer.
		if err := w.WriteEvent(Event{Data: []byte("ok")}); err != nil || buf.String() != "data: ok\n\n" {
			t.Errorf("after refusal: %q, %v", buf.String(), err)
		}
	}
}

func TestWriteComment(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ping", ": ping\n\n"},
		{"", ": \n\n"},
		{"a\nb", ": a\n: b\n\n"},
		{"a\r\nevent: x\rdata: y\n", ": a\n: event: x\n: data: y\n: \n\n"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if err := NewWriter(&buf).WriteComment(tt.in); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tt.want {
			t.Errorf("WriteComment(%q) = %q, want %q", tt.in, buf.String(), tt.want)
		}
		// Whatever the text, a receiver sees no event.
		if evs, err := readAll(NewReader(&buf, 0)); err != io.EOF || len(evs) != 0 {
			t.Errorf("WriteComment(%q) parsed as %+v, %v", tt.in, evs, err)
		}
	}
}

func TestWriterDoesNotFlush(t *testing.T) {
	rec := httptest.NewRecorder()
	w := NewWriter(rec)
	if err := w.WriteEvent(Event{ID: "1", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteComment("keep-alive"); err != nil {
		t.Fatal(err)
	}
	if rec.Flushed {
		t.Error("Writer flushed the response")
	}
}

// countingWriter records the number of Write calls.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	return c.Buffer.Write(p)
}

func TestWriterOneWritePerEvent(t *testing.T) {
	var cw countingWriter
	w := NewWriter(&cw)
	w.WriteEvent(Event{ID: "1", Type: "t", Data: []byte(strings.Repeat("line\n", 100))})
	w.WriteComment("ping")
	if cw.writes != 2 {
		t.Errorf("%d Write calls for one event and one comment, want 2", cw.writes)
	}
}

func TestWriterErrors(t *testing.T) {
	boom := errors.New("boom")
	w := NewWriter(failWriter{boom})
	err := w.WriteEvent(Event{Data: []byte("x")})
	if !errors.Is(err, boom) {
		t.Fatalf("error = %v, want wrapped boom", err)
	}
	if err2 := w.WriteComment("x"); err2 != err {
		t.Errorf("error not sticky: %v", err2)
	}
	if err2 := w.WriteEvent(Event{}); err2 != err {
		t.Errorf("error not sticky: %v", err2)
	}

	w = NewWriter(shortWriter{})
	if err := w.WriteEvent(Event{Data: []byte("x")}); !errors.Is(err, io.ErrShortWrite) {
		t.Errorf("error = %v, want io.ErrShortWrite", err)
	}

	// A failure while writing a large data line directly.
	w = NewWriter(&limitWriter{n: 100, err: boom})
	if err := w.WriteEvent(Event{Data: bytes.Repeat([]byte("x"), 2*directWriteSize)}); !errors.Is(err, boom) {
		t.Errorf("error = %v, want wrapped boom", err)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write(p []byte) (int, error) { return 0, f.err }

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

// limitWriter accepts n bytes, then fails.
type limitWriter struct {
	n   int
	err error
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		n := l.n
		l.n = 0
		return n, l.err
	}
	l.n -= len(p)
	return len(p), nil
}

func TestWriterAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	w := NewWriter(io.Discard)
	e := Event{ID: "42", HasID: true, Type: "message", Data: []byte(strings.Repeat("{\"x\":1}\r\n", 30))}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := w.WriteEvent(e); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteComment("ping"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("WriteEvent+WriteComment allocate %v times, want 0", allocs)
	}
}

// randomText builds a string from fragments chosen to stress framing:
// every line ending, colons, spaces, field names, NUL and multi-byte runes.
func randomText(rng *rand.Rand, max int, allowEOL bool) string {
	frags := []string{"a", "Z", "0", " ", ":", ": ", "data:", "id: ", "event:", "\x00", "é", "日本", "🙂", "\xff", "{\"jsonrpc\":\"2.0\"}"}
	if allowEOL {
		frags = append(frags, "\r", "\n", "\r\n", "\n\r", "\r\r", "\n\n")
	}
	var b strings.Builder
	for range rng.IntN(max + 1) {
		b.WriteString(frags[rng.IntN(len(frags))])
	}
	return b.String()
}

// randomEvent builds an event that Writer accepts and a Reader can return
// as is: ids and types without CR, LF or NUL, whole-millisecond retries.
func randomEvent(rng *rand.Rand, lastID string) Event {
	clean := func(s string) string {
		return strings.NewReplacer("\x00", "", "\r", "", "\n", "").Replace(s)
	}
	e := Event{Type: "message", ID: lastID}
	if rng.IntN(4) > 0 {
		if s := randomText(rng, 20, true); s != "" {
			e.Data = []byte(s)
		}
	}
	if rng.IntN(3) == 0 {
		if t := clean(randomText(rng, 3, false)); t != "" {
			e.Type = t
		}
	}
	if rng.IntN(2) == 0 {
		e.ID, e.HasID = clean(randomText(rng, 4, false)), true
	}
	if rng.IntN(4) == 0 {
		e.Retry, e.HasRetry = time.Duration(rng.Int64N(maxRetryMillis+1))*time.Millisecond, true
	}
	return e
}

// normalizeEOL turns CRLF and CR into LF, as an event stream round trip
// does.
func normalizeEOL(b []byte) []byte {
	if b == nil {
		return nil
	}
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\r"), []byte("\n"))
}

// TestRoundTrip is the Writer→Reader property: random events, including
// data with CR, LF, CRLF, colons and unicode, are reconstructed exactly,
// with line endings normalised to LF (the format cannot carry a CR).
// Reconstructed events then round-trip byte for byte, a second time.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 500 {
		var want []Event
		var buf bytes.Buffer
		w := NewWriter(&buf)
		lastID := ""
		for range rng.IntN(10) + 1 {
			e := randomEvent(rng, lastID)
			lastID = e.ID
			if err := w.WriteEvent(e); err != nil {
				t.Fatalf("iteration %d: WriteEvent(%+v): %v", iter, e, err)
			}
			if rng.IntN(5) == 0 {
				w.WriteComment(randomText(rng, 5, true))
			}
			// The stream carries line endings as line breaks; the
			// receiver rebuilds them all as LF.
			e.Data = normalizeEOL(e.Data)
			want = append(want, e)
		}
		stream := buf.String()
		for _, rd := range readers {
			got, err := readAll(NewReader(rd.wrap(stream), 0))
			if err != io.EOF || !equalEvents(got, want) {
				t.Fatalf("iteration %d, %s reader: stream %q\n got %+v, %v\nwant %+v", iter, rd.name, stream, got, err, want)
			}
		}
		var again bytes.Buffer
		w = NewWriter(&again)
		for _, e := range want {
			if err := w.WriteEvent(e); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := readAll(NewReader(&again, 0)); err != io.EOF || !equalEvents(got, want) {
			t.Fatalf("iteration %d: second round trip differs", iter)
		}
	}
}

func TestRoundTripLargeData(t *testing.T) {
	// Lines around and above the direct-write threshold and the buffer
	// limit take the unbuffered path; the result must be the same.
	var data []byte
	for _, n := range []int{directWriteSize - 1, directWriteSize, 3 * directWriteSize, bufferLimit, 2 * bufferLimit, 10} {
		data = append(data, bytes.Repeat([]byte("x"), n)...)
		data = append(data, "\r\n"...)
	}
	many := bytes.Repeat([]byte("short line\n"), bufferLimit/5)
	for _, d := range [][]byte{data, many} {
		var buf bytes.Buffer
		if err := NewWriter(&buf).WriteEvent(Event{ID: "1", Data: d}); err != nil {
			t.Fatal(err)
		}
		e, err := NewReader(&buf, 0).Next()
		if err != nil || !bytes.Equal(e.Data, normalizeEOL(d)) || e.ID != "1" {
			t.Errorf("large data did not round-trip: %d bytes, %v", len(e.Data), err)
		}
	}
}
