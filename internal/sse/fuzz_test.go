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

// fuzzLimit is small so that the fuzzer reaches ErrEventTooLarge easily.
const fuzzLimit = 512

// FuzzReader checks the Reader on arbitrary streams: it never panics, never
// returns an event beyond the size limit, parses the same whatever the read
// boundaries, and whatever it parsed survives a Writer→Reader round trip
// unchanged. The seed corpus in testdata/fuzz/FuzzReader holds realistic
// MCP streams (priming events, JSON messages, comments, CRLF).
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"",
		"data\n\n",
		"id\n\n",
		"retry: 10\r\r",
		"\xEF\xBB\xBF: c\r\n\r\n",
		"id: \x00\ndata: x\n\n",
		"event: \x00\ndata: x\n\n",
		"data: " + strings.Repeat("x", fuzzLimit) + "\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		evs, err := readAll(NewReader(bytes.NewReader(stream), fuzzLimit))
		if err != io.EOF && err != ErrEventTooLarge {
			t.Fatalf("unexpected error %v", err)
		}
		for _, e := range evs {
			// Data, a non-default type and an id set by this event all
			// come from the event's own lines, which the limit bounds.
			size := len(e.Data)
			if e.Type != "message" {
				size += len(e.Type)
			}
			if e.HasID {
				size += len(e.ID)
			}
			if size > fuzzLimit || len(e.ID) > fuzzLimit {
				t.Fatalf("event beyond the limit: data %d, type %d, id %d bytes", len(e.Data), len(e.Type), len(e.ID))
			}
			if e.Type == "" {
				t.Fatal("empty event type")
			}
			if strings.ContainsRune(e.ID, 0) || strings.ContainsAny(e.ID, "\r\n") || strings.ContainsAny(e.Type, "\r\n") {
				t.Fatalf("id %q or type %q contains a forbidden byte", e.ID, e.Type)
			}
			if bytes.IndexByte(e.Data, '\r') >= 0 {
				t.Fatalf("data contains CR: %q", e.Data)
			}
			if e.Data != nil && len(e.Data) == 0 {
				t.Fatal("empty non-nil Data")
			}
			if e.Retry < 0 || e.Retry%time.Millisecond != 0 || (!e.HasRetry && e.Retry != 0) {
				t.Fatalf("bad retry %v (HasRetry %v)", e.Retry, e.HasRetry)
			}
		}

		// Read boundaries must not matter.
		evs1, err1 := readAll(NewReader(iotest.OneByteReader(bytes.NewReader(stream)), fuzzLimit))
		if err1 != err || !equalEvents(evs1, evs) {
			t.Fatalf("one-byte reads differ: %+v, %v\nwhole: %+v, %v", evs1, err1, evs, err)
		}

		// Writer→Reader round trip. The Writer refuses a NUL in the event
		// type (the Reader accepts it, as the standard does); the round
		// trip covers the events up to the first such one.
		var buf bytes.Buffer
		w := NewWriter(&buf)
		n := 0
		for _, e := range evs {
			if err := w.WriteEvent(e); err != nil {
				if errors.Is(err, ErrInvalidEvent) && strings.ContainsRune(e.Type, 0) {
					break
				}
				t.Fatalf("WriteEvent(%+v): %v", e, err)
			}
			n++
		}
		got, err := readAll(NewReader(&buf, 0))
		if err != io.EOF || !equalEvents(got, evs[:n]) {
			t.Fatalf("round trip differs\nstream: %q\n  got: %+v, %v\n want: %+v", buf.String(), got, err, evs[:n])
		}
	})
}
