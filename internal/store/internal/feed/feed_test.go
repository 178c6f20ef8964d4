package feed

import (
	"context"
	"testing"
	"time"

	"gatehouse/internal/store"
)

// deadline bounds every wait; nothing here asserts on timing.
const deadline = 10 * time.Second

func recv(t *testing.T, ch <-chan store.Change) store.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("channel closed, want a change")
		}
		return c
	case <-time.After(deadline):
		t.Fatal("no change within the deadline")
	}
	return store.Change{}
}

func waitClosed(t *testing.T, ch <-chan store.Change) {
	t.Helper()
	timeout := time.After(deadline)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("channel not closed within the deadline")
		}
	}
}

func TestBroadcastReachesEverySubscriberInOrder(t *testing.T) {
	h := New(0)
	defer h.Close()
	a, err := h.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Change{{Kind: "agent", ID: "1"}, {Kind: "user", ID: "2"}, {Kind: "team", ID: "3"}}
	for _, c := range want {
		h.Broadcast(c)
	}
	for _, ch := range []<-chan store.Change{a, b} {
		for _, w := range want {
			if got := recv(t, ch); got != w {
				t.Fatalf("got %+v, want %+v", got, w)
			}
		}
	}
}

func TestSlowSubscriberGetsResync(t *testing.T) {
	h := New(4)
	defer h.Close()
	slow, err := h.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Nobody reads slow while far more than the limit is broadcast, so at
	// most one change is in the delivery goroutine's hands and the rest
	// overflow the queue.
	for i := range 100 {
		h.Broadcast(store.Change{Kind: "agent", ID: string(rune('a' + i%26))})
	}
	timeout := time.After(deadline)
	for {
		select {
		case c := <-slow:
			if c == Resync {
				return
			}
		case <-timeout:
			t.Fatal("no resync within the deadline")
		}
	}
}

func TestSubscriptionEnds(t *testing.T) {
	h := New(0)
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := h.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	waitClosed(t, ch)

	other, err := h.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	waitClosed(t, other)
	if _, err := h.Subscribe(t.Context()); err != ErrClosed {
		t.Fatalf("Subscribe after Close: err = %v, want ErrClosed", err)
	}
	h.Broadcast(store.Change{Kind: "agent"}) // must not panic or block
}
