package processor

import (
	"hash/maphash"
	"math"
	"math/bits"
)

// knownIDs is a task's filter of the customer ids its partition's store
// may hold: a blocked Bloom filter, so it has no false negatives and a few
// false positives (about 0.1 % at its designed load). A lookup that misses
// every in-memory place asks it before the store: an id it has never seen
// is a new customer, and the store is not read. A store read for an absent
// key costs several microseconds (a seek in each memtable and a filter
// probe in each level), and every customer's first event is one: in the
// default benchmark, a million of them took about 5 % of the CPU
// (BENCHMARKS.md).
//
// Invariant: every customer id the partition's store holds was added. The
// task adds each id its load scan reads and each id its lookup creates (a
// superset of those its commits write). Nothing else writes a task's
// customers while it runs: restores finish before load, and a standby
// replica's writes are loaded by the task that takes the partition over.
// Ids are never removed; an erased customer stays as a false positive,
// whose store read finds nothing.
//
// The filter grows by layers: when the newest is at its designed load, a
// new one of twice its capacity takes the adds. A query probes one
// 64-byte block per layer. Its memory is bounded (maxBytes, the task's
// share of Config.KnownIDsBytes): a layer is only as large as what is left
// of the bound, and once nothing is left the newest layer takes the adds
// past its designed load, so that more of the ids it is asked about are
// false positives (store reads, as without the filter), and still none is
// a false negative. Not safe for concurrent use: the task goroutine owns
// it.
type knownIDs struct {
	seed     maphash.Seed
	layers   []knownLayer
	maxBytes int // 0: unbounded
	bytes    int // of every layer's words
}

type knownLayer struct {
	words   []uint64 // blocks of knownBlockWords words
	nblocks uint64
	n, max  int // ids added; ids at the designed load
}

const (
	knownBlockWords = 8  // 512 bits, one cache line
	knownBitsPerID  = 16 // at the designed load
	knownProbes     = 7  // bits set per id, 9 bits of position each
	knownMinIDs     = 1 << 16
)

// newKnownIDs returns an empty filter of at most maxBytes (0: unbounded;
// at least one layer of one block).
func newKnownIDs(maxBytes int) *knownIDs {
	return &knownIDs{seed: maphash.MakeSeed(), maxBytes: maxBytes}
}

// hash returns the hash of id that add and mayContain take.
func (k *knownIDs) hash(id string) uint64 { return maphash.String(k.seed, id) }

// reserve sizes the first layer for n ids, if there is no layer yet: a
// task's load counts its customers first, so that one layer holds them
// and the customers to come.
func (k *knownIDs) reserve(n int) {
	if len(k.layers) == 0 {
		k.grow(n)
	}
}

// grow adds a layer for n ids (less, to keep within maxBytes), or none
// when maxBytes is used up.
func (k *knownIDs) grow(n int) {
	n = max(n, knownMinIDs)
	nblocks := (n*knownBitsPerID + 511) / 512
	if k.maxBytes > 0 {
		const blockBytes = knownBlockWords * 8
		left := (k.maxBytes - k.bytes) / blockBytes
		if left <= 0 && len(k.layers) > 0 {
			k.layers[len(k.layers)-1].max = math.MaxInt // overloaded from now on
			return
		}
		nblocks = max(1, min(nblocks, left))
		n = nblocks * 512 / knownBitsPerID
	}
	k.bytes += nblocks * knownBlockWords * 8
	k.layers = append(k.layers, knownLayer{
		words:   make([]uint64, nblocks*knownBlockWords),
		nblocks: uint64(nblocks),
		max:     n,
	})
}

// add records the id whose hash is h as one the store may hold.
func (k *knownIDs) add(h uint64) {
	if len(k.layers) == 0 || k.layers[len(k.layers)-1].n >= k.layers[len(k.layers)-1].max {
		next := 0
		if len(k.layers) > 0 {
			next = 2 * k.layers[len(k.layers)-1].max
		}
		k.grow(next)
	}
	l := &k.layers[len(k.layers)-1]
	blk, pos := l.locate(h)
	for range knownProbes {
		p := pos & 511
		blk[p>>6] |= 1 << (p & 63)
		pos >>= 9
	}
	l.n++
}

// mayContain reports whether the id whose hash is h was possibly added;
// false means it certainly was not.
func (k *knownIDs) mayContain(h uint64) bool {
	for i := range k.layers {
		if k.layers[i].has(h) {
			return true
		}
	}
	return false
}

func (l *knownLayer) has(h uint64) bool {
	blk, pos := l.locate(h)
	for range knownProbes {
		p := pos & 511
		if blk[p>>6]&(1<<(p&63)) == 0 {
			return false
		}
		pos >>= 9
	}
	return true
}

// locate returns h's block (chosen by h's high bits, scaled to the block
// count) and the bit positions within it (from a second mix of h).
func (l *knownLayer) locate(h uint64) ([]uint64, uint64) {
	b, _ := bits.Mul64(h, l.nblocks)
	i := b * knownBlockWords
	x := h * 0x9e3779b97f4a7c15
	x ^= x >> 29
	return l.words[i : i+knownBlockWords : i+knownBlockWords], x
}
