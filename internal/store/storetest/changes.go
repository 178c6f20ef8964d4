package storetest

import (
	"context"
	"testing"
	"time"

	"gatehouse/internal/store"
)

// Next returns the next change on ch other than a resync (which a store
// may send at any time), failing the test when ch closes or nothing comes
// within Deadline. It is exported for implementation-specific tests.
func Next(t *testing.T, ch <-chan store.Change) store.Change {
	t.Helper()
	timeout := time.After(Deadline)
	for {
		select {
		case c, ok := <-ch:
			if !ok {
				t.Fatal("change channel closed, want a change")
			}
			if c.Kind == "resync" {
				continue
			}
			return c
		case <-timeout:
			t.Fatalf("no change within %v", Deadline)
		}
	}
}

// WaitClosed fails the test unless ch is closed within Deadline; changes
// still queued are discarded.
func WaitClosed(t *testing.T, ch <-chan store.Change) {
	t.Helper()
	timeout := time.After(Deadline)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("change channel not closed within %v", Deadline)
		}
	}
}

func testChanges(t *testing.T, s store.Store) {
	first, err := s.Subscribe(ctx(t))
	must(t, err, "Subscribe")
	subCtx, cancel := context.WithCancel(ctx(t))
	second, err := s.Subscribe(subCtx)
	must(t, err, "Subscribe (second)")

	sent := []store.Change{
		{Kind: "agent", ID: "agt_1"},
		{Kind: "credential", ID: "ghs_3fK9"},
		{Kind: "secret", ID: `github/agt_1 "quoted" ünïcode`},
		{Kind: "signing_key"},
	}
	for _, c := range sent {
		must(t, s.Publish(ctx(t), c), "Publish")
	}
	// Every subscriber gets every change, in order, including this
	// process's own.
	for _, ch := range []<-chan store.Change{first, second} {
		for _, want := range sent {
			if got := Next(t, ch); got != want {
				t.Fatalf("received %+v, want %+v", got, want)
			}
		}
	}

	// Ending a subscription's context closes its channel and leaves the
	// others alone.
	cancel()
	WaitClosed(t, second)
	last := store.Change{Kind: "user", ID: "alice@example.com"}
	must(t, s.Publish(ctx(t), last), "Publish after unsubscribe")
	if got := Next(t, first); got != last {
		t.Fatalf("received %+v, want %+v", got, last)
	}
}

func testClose(t *testing.T, s store.Store) {
	ch, err := s.Subscribe(ctx(t))
	must(t, err, "Subscribe")
	must(t, s.Close(), "Close")
	WaitClosed(t, ch)
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Subscribe(ctx(t)); err == nil {
		t.Fatal("Subscribe after Close succeeded")
	}
}
