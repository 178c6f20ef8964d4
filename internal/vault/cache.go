package vault

import (
	"container/list"
	"sync"
	"time"
)

// cacheKey identifies a cached value: the exact entry (Get) or the result
// of resolving a name for an agent (Resolve).
type cacheKey struct {
	name, agent string
	resolved    bool
}

type cacheEntry struct {
	key     cacheKey
	val     []byte
	expires time.Time
}

// cache is a bounded LRU of decrypted values with a maximum age. A nil
// *cache caches nothing. Values go in and come out as copies, so evicted
// ones can be zeroed.
//
// Invalidations bump a generation; a value read from the store is only
// added if no invalidation happened since the read started, so a reader
// racing with a writer never caches the old value after the writer's
// invalidation.
type cache struct {
	max int
	ttl time.Duration
	now func() time.Time

	mu  sync.Mutex
	gen uint64
	lru *list.List // of *cacheEntry, most recently used first
	m   map[cacheKey]*list.Element
}

func newCache(max int, ttl time.Duration, now func() time.Time) *cache {
	return &cache{max: max, ttl: ttl, now: now, lru: list.New(), m: make(map[cacheKey]*list.Element)}
}

// get returns a copy of the cached value.
func (c *cache) get(k cacheKey) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[k]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !c.now().Before(e.expires) {
		c.remove(el)
		return nil, false
	}
	c.lru.MoveToFront(el)
	return append([]byte(nil), e.val...), true
}

// generation returns the generation to pass to add after reading the store.
func (c *cache) generation() uint64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// add caches a copy of val unless an invalidation happened since gen.
func (c *cache) add(k cacheKey, val []byte, gen uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if el, ok := c.m[k]; ok {
		c.remove(el)
	}
	e := &cacheEntry{key: k, val: append([]byte(nil), val...), expires: c.now().Add(c.ttl)}
	c.m[k] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		c.remove(c.lru.Back())
	}
}

// invalidate drops every value of the secret name (all agents).
func (c *cache) invalidate(name string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		if el.Value.(*cacheEntry).key.name == name {
			c.remove(el)
		}
		el = next
	}
}

// invalidateAll drops everything.
func (c *cache) invalidateAll() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for el := c.lru.Front(); el != nil; el = el.Next() {
		clear(el.Value.(*cacheEntry).val)
	}
	c.lru.Init()
	clear(c.m)
}

// len returns the number of cached values.
func (c *cache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// remove drops one element; c.mu is held.
func (c *cache) remove(el *list.Element) {
	e := el.Value.(*cacheEntry)
	clear(e.val)
	delete(c.m, e.key)
	c.lru.Remove(el)
}
