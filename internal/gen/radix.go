package gen

import "math/bits"

// blockLen is the number of entries in a block of a radix bucket.
const blockLen = 256

type block struct {
	n int
	e [blockLen]entry
}

// bucket is a list of blocks of entries, in no particular order.
type bucket struct {
	blocks []*block
}

// radixQueue is a monotone priority queue of entries (a radix heap): it
// returns them in (at, cust, ref) order, provided that no entry pushed is
// earlier than the last one returned, which holds for a simulation that
// only schedules into its future.
//
// Entries whose time equals the current time sit in a small heap (now);
// any other entry sits in bucket bits.Len64(key^last), where key is its
// time relative to base and last is the current time's key. Taking the
// next time scans and splits only the lowest non-empty bucket, so every
// access is sequential: with a million customers this is several times
// faster than a heap, whose sift-downs miss the cache at every level.
// Buckets are lists of fixed-size blocks, recycled through a free list,
// so memory stays near 16 bytes per queued entry.
type radixQueue struct {
	base    int64
	last    uint64
	now     queue
	buckets [65]bucket
	free    []*block
	size    int
}

func newRadixQueue(base int64) *radixQueue {
	return &radixQueue{base: base}
}

// len returns the number of queued entries.
func (q *radixQueue) len() int { return q.size }

// push queues e; e.at must not be before the time of the last entry
// returned by min.
func (q *radixQueue) push(e entry) {
	q.size++
	b := bits.Len64(uint64(e.at-q.base) ^ q.last)
	if b == 0 {
		q.now.push(e)
		return
	}
	q.add(b, e)
}

// add appends e to bucket b.
func (q *radixQueue) add(b int, e entry) {
	bk := &q.buckets[b]
	n := len(bk.blocks)
	if n == 0 || bk.blocks[n-1].n == blockLen {
		var blk *block
		if f := len(q.free); f > 0 {
			blk = q.free[f-1]
			q.free = q.free[:f-1]
		} else {
			blk = new(block)
		}
		bk.blocks = append(bk.blocks, blk)
		n++
	}
	blk := bk.blocks[n-1]
	blk.e[blk.n] = e
	blk.n++
}

// min returns the first entry without removing it; ok is false if the
// queue is empty.
func (q *radixQueue) min() (e entry, ok bool) {
	if len(q.now) == 0 {
		if q.size == 0 {
			return entry{}, false
		}
		q.advance()
	}
	return q.now[0], true
}

// pop removes the entry min returned.
func (q *radixQueue) pop() {
	q.size--
	q.now.pop()
}

// advance moves the current time to the earliest queued time and the
// entries at that time into now. The caller ensures the queue is not empty
// and now is.
func (q *radixQueue) advance() {
	i := 1
	for len(q.buckets[i].blocks) == 0 {
		i++
	}
	bk := &q.buckets[i]
	least := ^uint64(0)
	for _, blk := range bk.blocks {
		for _, e := range blk.e[:blk.n] {
			least = min(least, uint64(e.at-q.base))
		}
	}
	q.last = least
	// Every entry of bucket i moves to a lower bucket or to now.
	for _, blk := range bk.blocks {
		for _, e := range blk.e[:blk.n] {
			if b := bits.Len64(uint64(e.at-q.base) ^ least); b == 0 {
				q.now = append(q.now, e)
			} else {
				q.add(b, e)
			}
		}
		blk.n = 0
		q.free = append(q.free, blk)
	}
	clear(bk.blocks)
	bk.blocks = bk.blocks[:0]
	q.now.init()
}
