package state

import "math"

// Cache is a bounded in-memory cache of hot customers, keyed by customer id,
// holding decoded values of any type V. It evicts with the CLOCK
// (second-chance) algorithm: an entry read since the clock hand last passed it
// is spared once, so entries in steady use survive a burst of one-off inserts
// (a scan of cold customers) that a FIFO would let push them out. New entries
// start cold. Eviction is O(1) amortized and never scans the map.
//
// A Cache is not safe for concurrent use: the task goroutine that owns a
// partition's state owns its cache. The cache holds only values that are
// already committed or about to be in the owner's write set; it is a read
// accelerator, never the source of truth.
type Cache[V any] struct {
	capacity int
	index    map[string]int32 // key -> slot
	slots    []cacheSlot[V]   // the clock; grows up to capacity
	free     []int32          // slots emptied by Delete
	hand     int

	hits, misses, evictions uint64
}

type cacheSlot[V any] struct {
	key  string
	val  V
	used bool
	ref  bool // read since the hand last passed
}

// NewCache returns an empty cache of at most capacity entries. capacity <= 0
// gives a disabled cache: Get always misses and Put does nothing.
func NewCache[V any](capacity int) *Cache[V] {
	c := &Cache[V]{capacity: min(max(capacity, 0), math.MaxInt32)}
	if c.capacity > 0 {
		c.index = make(map[string]int32, c.capacity)
	}
	return c
}

// Get returns the value cached for key and marks it recently used. It does not
// allocate.
func (c *Cache[V]) Get(key []byte) (V, bool) {
	i, ok := c.index[string(key)]
	if !ok {
		c.misses++
		var zero V
		return zero, false
	}
	c.hits++
	s := &c.slots[i]
	s.ref = true
	return s.val, true
}

// Put caches v under key, replacing any value there. When the cache is full
// it first evicts one entry, and returns the evicted value (evicted true), so
// that the caller may reuse it once nothing else refers to it.
func (c *Cache[V]) Put(key string, v V) (old V, evicted bool) {
	if c.capacity == 0 {
		return old, false
	}
	if i, ok := c.index[key]; ok {
		s := &c.slots[i]
		s.val = v
		s.ref = true
		return old, false
	}
	var i int32
	switch {
	case len(c.free) > 0:
		i = c.free[len(c.free)-1]
		c.free = c.free[:len(c.free)-1]
	case len(c.slots) < c.capacity:
		c.slots = append(c.slots, cacheSlot[V]{})
		i = int32(len(c.slots) - 1)
	default:
		i, old, evicted = c.evict()
	}
	c.slots[i] = cacheSlot[V]{key: key, val: v, used: true}
	c.index[key] = i
	return old, evicted
}

// evict advances the hand to the first slot not read since its last pass,
// clearing the marks it passes, empties that slot and returns it with the
// value it held. Called only when every slot is in use; each mark is
// cleared at most once per pass, so the cost is O(1) amortized.
func (c *Cache[V]) evict() (int32, V, bool) {
	for {
		i := c.hand
		c.hand++
		if c.hand == len(c.slots) {
			c.hand = 0
		}
		s := &c.slots[i]
		if !s.used {
			var zero V
			return int32(i), zero, false
		}
		if s.ref {
			s.ref = false
			continue
		}
		old := s.val
		delete(c.index, s.key)
		*s = cacheSlot[V]{}
		c.evictions++
		return int32(i), old, true
	}
}

// Delete removes key from the cache, if present.
func (c *Cache[V]) Delete(key string) {
	i, ok := c.index[key]
	if !ok {
		return
	}
	delete(c.index, key)
	c.slots[i] = cacheSlot[V]{}
	c.free = append(c.free, i)
}

// Cap returns the most entries the cache holds (0 when disabled).
func (c *Cache[V]) Cap() int { return c.capacity }

// Len returns the number of cached entries.
func (c *Cache[V]) Len() int { return len(c.index) }

// Stats returns the number of Get hits and misses and of evictions since the
// cache was made.
func (c *Cache[V]) Stats() (hits, misses, evictions uint64) {
	return c.hits, c.misses, c.evictions
}
