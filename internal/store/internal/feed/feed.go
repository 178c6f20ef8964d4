// Package feed fans store changes out to the subscribers inside one
// process. The SQLite store broadcasts what Publish is given; the
// PostgreSQL store broadcasts what its LISTEN connection receives.
package feed

import (
	"context"
	"errors"
	"sync"

	"gatehouse/internal/store"
)

// ErrClosed is returned by Subscribe after Close.
var ErrClosed = errors.New("change feed closed")

// Resync is the change a subscriber receives in place of changes it may
// have missed.
var Resync = store.Change{Kind: "resync"}

// DefaultLimit is how many undelivered changes a subscriber may have
// queued before they are collapsed into one Resync.
const DefaultLimit = 1024

// Hub delivers every broadcast change to every current subscriber. A
// subscriber that does not keep up never blocks Broadcast or the other
// subscribers: once more than the hub's limit of its changes are queued,
// they are dropped and it receives one Resync instead. Safe for concurrent
// use.
type Hub struct {
	limit int

	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
	wg     sync.WaitGroup
}

// New returns a hub that queues at most limit changes per subscriber
// (DefaultLimit when limit <= 0).
func New(limit int) *Hub {
	if limit <= 0 {
		limit = DefaultLimit
	}
	return &Hub{limit: limit, subs: make(map[*subscriber]struct{})}
}

type subscriber struct {
	wake chan struct{} // capacity 1: "the queue changed"
	stop chan struct{} // closed by Hub.Close

	mu       sync.Mutex
	queue    []store.Change
	overflow bool
}

// Subscribe returns a channel of the changes broadcast from now on. It is
// closed when ctx ends or the hub closes. Each subscriber has a goroutine
// of its own so that a slow reader delays nobody else.
func (h *Hub) Subscribe(ctx context.Context) (<-chan store.Change, error) {
	s := &subscriber{wake: make(chan struct{}, 1), stop: make(chan struct{})}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	h.subs[s] = struct{}{}
	h.wg.Add(1)
	h.mu.Unlock()

	out := make(chan store.Change)
	go func() {
		defer h.wg.Done()
		defer close(out)
		defer h.remove(s)
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.stop:
				return
			case <-s.wake:
			}
			for _, c := range s.take() {
				select {
				case out <- c:
				case <-ctx.Done():
					return
				case <-s.stop:
					return
				}
			}
		}
	}()
	return out, nil
}

// Broadcast queues c for every subscriber. It never blocks on a reader.
func (h *Hub) Broadcast(c store.Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.mu.Lock()
		switch {
		case s.overflow:
			// Already owed a Resync, which covers c too.
		case len(s.queue) >= h.limit:
			s.overflow, s.queue = true, nil
		default:
			s.queue = append(s.queue, c)
		}
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Close ends every subscription (closing its channel) and waits for the
// delivery goroutines to finish. Later Subscribe calls fail.
func (h *Hub) Close() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		for s := range h.subs {
			close(s.stop)
		}
	}
	h.mu.Unlock()
	h.wg.Wait()
}

func (h *Hub) remove(s *subscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// take empties the queue; an overflowed queue yields a single Resync.
func (s *subscriber) take() []store.Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	if s.overflow {
		q = []store.Change{Resync}
	}
	s.queue, s.overflow = nil, false
	return q
}
