package sse

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// readAll reads every event of the stream, copying Data because the Reader
// reuses it, and returns them with the error that ended the stream.
func readAll(r *Reader) ([]Event, error) {
	var evs []Event
	for {
		ev, err := r.Next()
		if err != nil {
			return evs, err
		}
		ev.Data = bytes.Clone(ev.Data)
		evs = append(evs, ev)
	}
}

// chunkReader returns its chunks one Read at a time, to place read
// boundaries exactly (e.g. between the CR and the LF of a CRLF).
type chunkReader struct{ chunks []string }

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	if c.chunks[0] == "" {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

// readers wraps a stream in readers with different read boundaries; every
// parse must give the same result whatever the boundaries.
var readers = []struct {
	name string
	wrap func(string) io.Reader
}{
	{"whole", func(s string) io.Reader { return strings.NewReader(s) }},
	{"onebyte", func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) }},
	{"half", func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) }},
	{"dataerr", func(s string) io.Reader { return iotest.DataErrReader(strings.NewReader(s)) }},
}

// ev builds an expected event of type "message".
func ev(data string) Event {
	e := Event{Type: "message"}
	if data != "" {
		e.Data = []byte(data)
	}
	return e
}

func (e Event) withType(t string) Event { e.Type = t; return e }

func (e Event) withID(id string, has bool) Event { e.ID, e.HasID = id, has; return e }

func (e Event) withRetry(d time.Duration) Event { e.Retry, e.HasRetry = d, true; return e }

func equalEvents(a, b []Event) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !equalEvent(a[i], b[i]) {
			return false
		}
	}
	return true
}

func equalEvent(a, b Event) bool {
	return a.Type == b.Type && bytes.Equal(a.Data, b.Data) && a.ID == b.ID &&
		a.HasID == b.HasID && a.Retry == b.Retry && a.HasRetry == b.HasRetry
}

func TestReader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Event
	}{
		{"empty stream", "", nil},
		{"blank lines only", "\n\n\r\n\r\r", nil},
		{"single data", "data: hello\n\n", []Event{ev("hello")}},
		{"data without space", "data:hello\n\n", []Event{ev("hello")}},
		{"only one space removed", "data:  hello\n\n", []Event{ev(" hello")}},
		{"trailing space kept", "data: hello \n\n", []Event{ev("hello ")}},
		{"tab not removed", "data:\thello\n\n", []Event{ev("\thello")}},
		{"multi-line data", "data: a\ndata: b\ndata: c\n\n", []Event{ev("a\nb\nc")}},
		{"data field without colon", "data\n\n", []Event{ev("")}},
		{"two empty data lines", "data\ndata\n\n", []Event{ev("\n")}},
		{"empty data then value", "data:\ndata: x\n\n", []Event{ev("\nx")}},
		{"colon in value", "data: a:b: c\n\n", []Event{ev("a:b: c")}},
		{"only colon value", "data::\n\n", []Event{ev(":")}},
		{"two events", "data: a\n\ndata: b\n\n", []Event{ev("a"), ev("b")}},
		{"extra blank lines", "\n\ndata: a\n\n\n\ndata: b\n\n\n", []Event{ev("a"), ev("b")}},

		{"LF", "data: a\ndata: b\n\n", []Event{ev("a\nb")}},
		{"CRLF", "data: a\r\ndata: b\r\n\r\n", []Event{ev("a\nb")}},
		{"CR", "data: a\rdata: b\r\r", []Event{ev("a\nb")}},
		{"mixed endings", "data: a\r\ndata: b\rdata: c\ndata: d\r\n\r\r\ndata: e\n\r", []Event{ev("a\nb\nc\nd"), ev("e")}},
		{"CR CR LF", "data: a\r\r\n", []Event{ev("a")}},
		{"LF CR", "data: a\n\r", []Event{ev("a")}},
		{"LF CR LF is one blank line", "data: a\n\r\ndata: b\n\n", []Event{ev("a"), ev("b")}},
		{"CRLF is one ending not two", "data: a\r\ndata: b\r\n\r\n", []Event{ev("a\nb")}},
		{"CR inside data splits line", "data: a\rb\n\n", []Event{ev("a")}},

		{"BOM", "\xEF\xBB\xBFdata: a\n\n", []Event{ev("a")}},
		{"BOM then comment", "\xEF\xBB\xBF: hi\ndata: a\n\n", []Event{ev("a")}},
		{"BOM skipped once", "\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n", []Event{ev("b")}},
		{"BOM only at start", "data: a\n\n\xEF\xBB\xBFdata: b\n\n", []Event{ev("a")}},
		{"partial BOM is data", "\xEF\xBBdata: a\n\ndata: b\n\n", []Event{ev("b")}},
		{"BOM alone", "\xEF\xBB\xBF", nil},
		{"short stream starting like BOM", "\xEF\n", nil},

		{"comment ignored", ": hello\ndata: a\n\n", []Event{ev("a")}},
		{"comment between data", "data: a\n: x\ndata: b\n\n", []Event{ev("a\nb")}},
		{"comment block not dispatched", ": ping\n\n: ping\r\n\r\n", nil},
		{"empty comment", ":\ndata: a\n\n", []Event{ev("a")}},
		{"comment with CRLF", ": x\r\ndata: a\r\n\r\n", []Event{ev("a")}},

		{"event type", "event: update\ndata: x\n\n", []Event{ev("x").withType("update")}},
		{"empty event type is message", "event:\ndata: x\n\n", []Event{ev("x")}},
		{"last event field wins", "event: a\nevent: b\ndata: x\n\n", []Event{ev("x").withType("b")}},
		{"event type resets", "event: a\ndata: x\n\ndata: y\n\n", []Event{ev("x").withType("a"), ev("y")}},
		{"event-only block dropped", "event: a\n\ndata: y\n\n", []Event{ev("y")}},
		{"event type with colon", "event: a:b\ndata: x\n\n", []Event{ev("x").withType("a:b")}},
		{"event type without colon", "event\ndata: x\n\n", []Event{ev("x")}},

		{"unknown field ignored", "foo: bar\ndata: x\nbaz\n\n", []Event{ev("x")}},
		{"unknown-only block dropped", "foo: bar\n\n", nil},
		{"field names are case-sensitive", "Data: x\nDATA: y\n\n", nil},
		{"leading space in name", " data: x\n\n", nil},
		{"space before colon", "data : x\n\n", nil},

		{"id", "id: 1\ndata: a\n\n", []Event{ev("a").withID("1", true)}},
		{"id persists", "id: 1\ndata: a\n\ndata: b\n\n", []Event{ev("a").withID("1", true), ev("b").withID("1", false)}},
		{"id changes", "id: 1\ndata: a\n\nid: 2\ndata: b\n\n", []Event{ev("a").withID("1", true), ev("b").withID("2", true)}},
		{"empty id resets", "id: 1\ndata: a\n\nid\ndata: b\n\ndata: c\n\n", []Event{ev("a").withID("1", true), ev("b").withID("", true), ev("c")}},
		{"empty id with colon", "id: 1\ndata: a\n\nid:\ndata: b\n\n", []Event{ev("a").withID("1", true), ev("b").withID("", true)}},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", []Event{ev("a").withID("1", true), ev("b").withID("1", false)}},
		{"id with NUL alone not dispatched", "id: \x00\n\n", nil},
		{"last id field wins", "id: 1\nid: 2\ndata: a\n\n", []Event{ev("a").withID("2", true)}},
		{"NUL id does not undo earlier id", "id: 1\nid: \x00\ndata: a\n\n", []Event{ev("a").withID("1", true)}},
		{"id with spaces", "id:  a b \ndata: x\n\n", []Event{ev("x").withID(" a b ", true)}},
		{"id with event type only", "id: 1\nevent: x\n\ndata: a\n\n", []Event{ev("").withType("x").withID("1", true), ev("a").withID("1", false)}},

		// MCP priming and polling events: dispatched with empty data.
		{"priming id and empty data", "id: 42\ndata: \n\n", []Event{ev("").withID("42", true)}},
		{"priming id and bare data", "id: 42\ndata\n\n", []Event{ev("").withID("42", true)}},
		{"priming id only", "id: 42\n\n", []Event{ev("").withID("42", true)}},
		{"retry only", "retry: 3000\n\n", []Event{ev("").withRetry(3 * time.Second)}},
		{"priming then message", "id: p1\ndata:\n\nid: p2\nevent: message\ndata: {}\n\n", []Event{ev("").withID("p1", true), ev("{}").withID("p2", true)}},

		{"retry", "retry: 1500\ndata: a\n\n", []Event{ev("a").withRetry(1500 * time.Millisecond)}},
		{"retry zero", "retry: 0\ndata: a\n\n", []Event{ev("a").withRetry(0)}},
		{"retry leading zeros", "retry: 0010\ndata: a\n\n", []Event{ev("a").withRetry(10 * time.Millisecond)}},
		{"retry is per event", "retry: 5\ndata: a\n\ndata: b\n\n", []Event{ev("a").withRetry(5 * time.Millisecond), ev("b")}},
		{"retry with letters ignored", "retry: 15x\ndata: a\n\n", []Event{ev("a")}},
		{"retry negative ignored", "retry: -1\ndata: a\n\n", []Event{ev("a")}},
		{"retry decimal ignored", "retry: 1.5\ndata: a\n\n", []Event{ev("a")}},
		{"retry extra space ignored", "retry:  10\ndata: a\n\n", []Event{ev("a")}},
		{"retry trailing space ignored", "retry: 10 \ndata: a\n\n", []Event{ev("a")}},
		{"retry plus ignored", "retry: +10\ndata: a\n\n", []Event{ev("a")}},
		{"retry empty ignored", "retry:\ndata: a\n\n", []Event{ev("a")}},
		{"retry non-ASCII digit ignored", "retry: \u0661\ndata: a\n\n", []Event{ev("a")}},
		{"invalid retry alone not dispatched", "retry: x\n\n", nil},
		{"invalid retry keeps earlier", "retry: 7\nretry: x\ndata: a\n\n", []Event{ev("a").withRetry(7 * time.Millisecond)}},
		{"retry saturates", "retry: 99999999999999999999999999\ndata: a\n\n", []Event{ev("a").withRetry(time.Duration(maxRetryMillis) * time.Millisecond)}},
		{"retry at limit", "retry: 9223372036854\ndata: a\n\n", []Event{ev("a").withRetry(9223372036854 * time.Millisecond)}},
		{"retry just below limit", "retry: 9223372036850\ndata: a\n\n", []Event{ev("a").withRetry(9223372036850 * time.Millisecond)}},
		{"retry just above limit", "retry: 9223372036855\ndata: a\n\n", []Event{ev("a").withRetry(9223372036854 * time.Millisecond)}},
		{"retry far above limit then small digits", "retry: 92233720368540000\ndata: a\n\n", []Event{ev("a").withRetry(9223372036854 * time.Millisecond)}},

		{"incomplete event at EOF", "data: a\n\ndata: b\n", []Event{ev("a")}},
		{"incomplete line at EOF", "data: a\n\ndata: b", []Event{ev("a")}},
		{"unterminated only", "data: a", nil},
		{"id in incomplete event", "id: 1\ndata: a\n", nil},
		{"CR at EOF ends the line", "data: a\n\r", []Event{ev("a")}},

		{"NUL in data", "data: a\x00b\n\n", []Event{ev("a\x00b")}},
		{"invalid UTF-8 passes", "data: \xff\xfe\x80\n\n", []Event{ev("\xff\xfe\x80")}},
		{"unicode", "event: ü\ndata: 日本語 ✓\n\n", []Event{ev("日本語 ✓").withType("ü")}},
	}
	for _, tt := range tests {
		for _, rd := range readers {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				got, err := readAll(NewReader(rd.wrap(tt.in), 0))
				if err != io.EOF {
					t.Fatalf("error = %v, want io.EOF", err)
				}
				if !equalEvents(got, tt.want) {
					t.Errorf("events mismatch for %q\n got: %+v\nwant: %+v", tt.in, got, tt.want)
				}
			})
		}
	}
}

// TestReaderSplits feeds every stream of TestReader-like content split in
// two at every position, so each line ending is cut at each place.
func TestReaderSplits(t *testing.T) {
	in := "\xEF\xBB\xBFid: 1\r\nevent: e\rdata: a\r\ndata: b\n: c\r\rdata\r\n\r\nretry: 20\r\r"
	want := []Event{
		ev("a\nb").withType("e").withID("1", true),
		ev("").withID("1", false),
		ev("").withID("1", false).withRetry(20 * time.Millisecond),
	}
	for i := 0; i <= len(in); i++ {
		got, err := readAll(NewReader(&chunkReader{chunks: []string{in[:i], in[i:]}}, 0))
		if err != io.EOF || !equalEvents(got, want) {
			t.Errorf("split at %d: got %+v, %v\nwant %+v", i, got, err, want)
		}
	}
}

func TestReaderCRLFAcrossReads(t *testing.T) {
	// The CR ends one Read and the LF starts the next: still one line
	// ending, so no blank line (and no extra dispatch) appears.
	r := NewReader(&chunkReader{chunks: []string{"data: a\r", "\ndata: b\r", "\n\r", "\nid: 1\r", "\n\r", "\n"}}, 0)
	got, err := readAll(r)
	want := []Event{ev("a\nb"), ev("").withID("1", true)}
	if err != io.EOF || !equalEvents(got, want) {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
}

// TestReaderDoesNotWaitAfterCR checks that a line ending in CR is handled
// as soon as the CR arrives: on a live stream the byte after it may take
// arbitrarily long, and the event must not wait for it.
func TestReaderDoesNotWaitAfterCR(t *testing.T) {
	for _, in := range []string{"data: a\r\r", "data: a\n\n", "data: a\r\n\r\n", "data: a\n\r"} {
		pr, pw := io.Pipe()
		go func() {
			pw.Write([]byte(in))
			// Keep the stream open: Next must return without more input.
		}()
		r := NewReader(pr, 0)
		done := make(chan error, 1)
		go func() {
			ev, err := r.Next()
			if err == nil && string(ev.Data) != "a" {
				err = errors.New("wrong data " + string(ev.Data))
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%q: %v", in, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%q: Next blocked waiting for input after the event", in)
		}
		pw.Close()
	}
}

func TestReaderLongLines(t *testing.T) {
	// Lines much longer than the bufio buffer, with every kind of ending.
	a := strings.Repeat("a", 3*readBufferSize+7)
	b := strings.Repeat("é", readBufferSize)
	comment := strings.Repeat("c", 5*readBufferSize)
	in := ":" + comment + "\r\ndata: " + a + "\rdata:" + b + "\r\n" + ":" + comment + "\n\r\n" +
		"id: " + b + "\n\n"
	want := []Event{ev(a + "\n" + b), ev("").withID(b, true)}
	for _, rd := range readers {
		got, err := readAll(NewReader(rd.wrap(in), 0))
		if err != io.EOF || !equalEvents(got, want) {
			t.Errorf("%s: got %d events, err %v; want %d", rd.name, len(got), err, len(want))
		}
	}
}

func TestReaderEventTooLarge(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		max   int
		want  []Event
		isErr bool
	}{
		{"at limit", "data: 1234\n\n", 10, []Event{ev("1234")}, false},
		{"one over", "data: 12345\n\n", 10, nil, true},
		{"sum of lines", "data: 12\ndata: 34\n\n", 15, nil, true},
		{"fields count", "event: abc\ndata: 1\n\n", 15, nil, true},
		{"unknown fields count", "xxxxxxxxxxxxxxxx\ndata: 1\n\n", 15, nil, true},
		{"limit is per event", strings.Repeat("data: 1234\n\n", 50), 10, repeatEvent(ev("1234"), 50), false},
		{"comments do not count", ":" + strings.Repeat("x", 100000) + "\ndata: 1234\n:" + strings.Repeat("y", 50) + "\n\n", 10, []Event{ev("1234")}, false},
		{"after good events", "data: 1\n\ndata: " + strings.Repeat("x", 100) + "\n\n", 50, []Event{ev("1")}, true},
		{"long line over buffer", "data: " + strings.Repeat("x", 3*readBufferSize) + "\n\n", 2 * readBufferSize, nil, true},
		{"long line under limit", "data: " + strings.Repeat("x", 3*readBufferSize) + "\n\n", 4 * readBufferSize, []Event{ev(strings.Repeat("x", 3*readBufferSize))}, false},
		{"oversize unterminated", "data: " + strings.Repeat("x", 100), 10, nil, true},
	}
	for _, tt := range tests {
		for _, rd := range readers {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				r := NewReader(rd.wrap(tt.in), tt.max)
				got, err := readAll(r)
				if tt.isErr {
					if err != ErrEventTooLarge {
						t.Fatalf("error = %v, want ErrEventTooLarge", err)
					}
					// The error is permanent.
					if _, err := r.Next(); err != ErrEventTooLarge {
						t.Fatalf("second error = %v, want ErrEventTooLarge", err)
					}
				} else if err != io.EOF {
					t.Fatalf("error = %v, want io.EOF", err)
				}
				if !equalEvents(got, tt.want) {
					t.Errorf("got %d events, want %d", len(got), len(tt.want))
				}
			})
		}
	}
}

func repeatEvent(e Event, n int) []Event {
	evs := make([]Event, n)
	for i := range evs {
		evs[i] = e
	}
	return evs
}

// endless is an upstream that sends one line forever.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func TestReaderEventTooLargeEndless(t *testing.T) {
	// A line that never ends must fail once the limit is reached instead
	// of being buffered until memory runs out.
	const limit = 1 << 20
	r := NewReader(io.MultiReader(strings.NewReader("data: "), endless{}), limit)
	if _, err := r.Next(); err != ErrEventTooLarge {
		t.Fatalf("error = %v, want ErrEventTooLarge", err)
	}
	if c := cap(r.line); c > 2*limit+readBufferSize {
		t.Errorf("line buffer grew to %d bytes for a limit of %d", c, limit)
	}
	// Many short lines without a blank one: also bounded.
	lines := strings.NewReader(strings.Repeat("data: xxxxxxxxxx\n", 100000))
	r = NewReader(io.MultiReader(lines, endless{}), limit)
	if _, err := r.Next(); err != ErrEventTooLarge {
		t.Fatalf("error = %v, want ErrEventTooLarge", err)
	}
}

func TestReaderErrors(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), iotest.ErrReader(boom)), 0)
	e, err := r.Next()
	if err != nil || string(e.Data) != "a" {
		t.Fatalf("first event = %+v, %v", e, err)
	}
	_, err = r.Next()
	if !errors.Is(err, boom) || err == boom {
		t.Fatalf("error = %v, want wrapped boom", err)
	}
	if _, err2 := r.Next(); err2 != err {
		t.Fatalf("error not sticky: %v then %v", err, err2)
	}

	// io.EOF is returned unwrapped and repeatedly.
	r = NewReader(strings.NewReader("data: a\n\n"), 0)
	r.Next()
	for range 2 {
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("error = %v, want io.EOF", err)
		}
	}

	// An unexpected EOF from the source is an error, not the end.
	r = NewReader(io.MultiReader(strings.NewReader("data: a\n"), iotest.ErrReader(io.ErrUnexpectedEOF)), 0)
	if _, err := r.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("error = %v, want wrapped io.ErrUnexpectedEOF", err)
	}

	// A timeout in the middle of a stream surfaces too.
	r = NewReader(iotest.TimeoutReader(strings.NewReader("data: a\n\n")), 0)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, iotest.ErrTimeout) {
		t.Fatalf("error = %v, want wrapped ErrTimeout", err)
	}
}

func TestReaderDataReuse(t *testing.T) {
	// Documented behaviour: Data is valid until the next Next.
	r := NewReader(strings.NewReader("data: first\n\ndata: second\n\n"), 0)
	e1, _ := r.Next()
	if string(e1.Data) != "first" {
		t.Fatalf("first = %q", e1.Data)
	}
	e2, _ := r.Next()
	if string(e2.Data) != "second" {
		t.Fatalf("second = %q", e2.Data)
	}
}

func TestReaderReleasesLargeBuffers(t *testing.T) {
	big := strings.Repeat("x", 2*retainLimit)
	r := NewReader(strings.NewReader("data: "+big+"\n\ndata: small\n\n"), 0)
	if e, err := r.Next(); err != nil || len(e.Data) != len(big) {
		t.Fatalf("big event: %d bytes, %v", len(e.Data), err)
	}
	if e, err := r.Next(); err != nil || string(e.Data) != "small" {
		t.Fatalf("small event: %q, %v", e.Data, err)
	}
	if cap(r.data) > retainLimit || cap(r.line) > retainLimit {
		t.Errorf("kept buffers of %d and %d bytes", cap(r.data), cap(r.line))
	}
}

func TestEventEmpty(t *testing.T) {
	r := NewReader(strings.NewReader("id: 1\ndata:\n\nretry: 10\n\nid: 2\n\ndata: {}\n\n"), 0)
	evs, _ := readAll(r)
	var empties []bool
	for _, e := range evs {
		empties = append(empties, e.Empty())
	}
	if want := []bool{true, true, true, false}; !equalBools(empties, want) {
		t.Errorf("Empty() = %v, want %v", empties, want)
	}
	for _, e := range evs[:3] {
		if e.Data != nil {
			t.Errorf("empty event has non-nil Data %q", e.Data)
		}
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReaderAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	event := "event: message\ndata: " + strings.Repeat("x", 200) + "\n\n"
	r := NewReader(&repeatReader{data: []byte(event)}, 0)
	r.Next()
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Next allocates %v times per event without ids, want 0", allocs)
	}
}

// repeatReader yields data over and over, forever.
type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}
