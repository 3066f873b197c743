package state

import (
	"fmt"
	"testing"
)

func TestCacheBasics(t *testing.T) {
	c := NewCache[int](3)
	if _, ok := c.Get([]byte("a")); ok {
		t.Fatal("hit in an empty cache")
	}
	c.Put("a", 1)
	c.Put("b", 2)
	c.Put("a", 10)
	if v, ok := c.Get([]byte("a")); !ok || v != 10 {
		t.Fatalf("Get(a) = %d, %v; want 10, true", v, ok)
	}
	if c.Len() != 2 {
		t.Fatalf("Len = %d, want 2", c.Len())
	}
	c.Delete("a")
	c.Delete("missing")
	if _, ok := c.Get([]byte("a")); ok {
		t.Fatal("deleted key still cached")
	}
	if c.Len() != 1 {
		t.Fatalf("Len after Delete = %d, want 1", c.Len())
	}
	// A deleted slot is reused before anything is evicted.
	c.Put("c", 3)
	c.Put("d", 4)
	if _, _, ev := c.Stats(); ev != 0 {
		t.Fatalf("%d evictions with free room", ev)
	}
	hits, misses, _ := c.Stats()
	if hits != 1 || misses != 2 {
		t.Fatalf("hits, misses = %d, %d; want 1, 2", hits, misses)
	}
}

func TestCacheDisabled(t *testing.T) {
	for _, capacity := range []int{0, -1} {
		c := NewCache[string](capacity)
		c.Put("a", "x")
		if _, ok := c.Get([]byte("a")); ok || c.Len() != 0 || c.Cap() != 0 {
			t.Fatalf("capacity %d: cache holds entries", capacity)
		}
		c.Delete("a")
		if _, misses, _ := c.Stats(); misses != 1 {
			t.Fatalf("capacity %d: misses = %d, want 1", capacity, misses)
		}
	}
}

func TestCacheBound(t *testing.T) {
	const capacity = 100
	c := NewCache[int](capacity)
	for i := range 10_000 {
		c.Put(fmt.Sprint(i), i)
		if i%7 == 0 {
			c.Get([]byte(fmt.Sprint(i / 2)))
		}
		if i%13 == 0 {
			c.Delete(fmt.Sprint(i - 5))
		}
		if c.Len() > capacity {
			t.Fatalf("Len = %d after %d puts, capacity %d", c.Len(), i+1, capacity)
		}
	}
	if c.Len() != capacity || c.Cap() != capacity {
		t.Fatalf("Len, Cap = %d, %d; want full cache of %d", c.Len(), c.Cap(), capacity)
	}
	if len(c.slots) != capacity {
		t.Fatalf("%d slots, want %d", len(c.slots), capacity)
	}
	// Every cached key maps to a slot holding that key, and every value is
	// the one last put.
	for k, i := range c.index {
		if s := c.slots[i]; s.key != k || !s.used || fmt.Sprint(s.val) != k {
			t.Fatalf("index %q -> slot %d holds %+v", k, i, s)
		}
	}
	_, _, ev := c.Stats()
	if ev == 0 {
		t.Fatal("no evictions counted")
	}
}

// The CLOCK property: entries read between bursts of one-off inserts survive
// the bursts, where a FIFO cache would cycle them out.
func TestCacheHotEntriesSurviveColdScan(t *testing.T) {
	const capacity, hot, burst = 100, 30, 50
	c := NewCache[int](capacity)
	for i := range hot {
		c.Put(fmt.Sprintf("hot%d", i), i)
	}
	cold := 0
	for round := range 40 {
		for i := range hot {
			if _, ok := c.Get([]byte(fmt.Sprintf("hot%d", i))); !ok {
				t.Fatalf("round %d: hot entry %d evicted by a cold scan", round, i)
			}
		}
		for range burst {
			c.Put(fmt.Sprintf("cold%d", cold), -1)
			cold++
		}
	}
	if _, _, ev := c.Stats(); ev < uint64(cold-capacity) {
		t.Fatalf("evictions = %d, want at least %d", ev, cold-capacity)
	}
}

// A full cache whose entries were all read once: the first eviction clears
// every mark in one pass, and the following inserts evict in clock order, so
// the work per Put stays O(1) amortized and every old entry goes once.
func TestCacheEvictionAfterFullPass(t *testing.T) {
	const capacity = 1000
	c := NewCache[int](capacity)
	for i := range capacity {
		c.Put(fmt.Sprint(i), i)
		c.Get([]byte(fmt.Sprint(i)))
	}
	for i := range capacity {
		c.Put(fmt.Sprint("new", i), i)
	}
	if _, _, ev := c.Stats(); ev != capacity {
		t.Fatalf("evictions = %d, want %d", ev, capacity)
	}
	for i := range capacity {
		if _, ok := c.Get([]byte(fmt.Sprint("new", i))); !ok {
			t.Fatalf("new entry %d missing", i)
		}
	}
}

func TestCacheGetDoesNotAllocate(t *testing.T) {
	c := NewCache[[]byte](16)
	c.Put("customer-1", []byte("v"))
	hit, miss := []byte("customer-1"), []byte("customer-2")
	allocs := testing.AllocsPerRun(1000, func() {
		c.Get(hit)
		c.Get(miss)
	})
	if allocs != 0 {
		t.Fatalf("Get allocates %v times per call", allocs)
	}
}
