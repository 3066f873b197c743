package knownids

import (
	"hash/maphash"
	"math"
	"math/bits"
)

// Filter is a filter of the ids a set may hold: a blocked Bloom filter,
// so it has no false negatives and few false positives at its designed
// load (BENCHMARKS.md, new customers without a store read).
//
// The filter grows by layers: when the newest is at its designed load, a
// new one of twice its capacity takes the adds. A query probes one
// 64-byte block per layer. Its memory is bounded (maxBytes): a layer is
// only as large as what is left of the bound, and once nothing is left the
// newest layer takes the adds past its designed load, so that more of the
// ids it is asked about are false positives, and still none is a false
// negative. Ids are never removed. Not safe for concurrent use.
type Filter struct {
	seed     maphash.Seed
	layers   []layer
	maxBytes int // 0: unbounded
	bytes    int // of every layer's words
}

type layer struct {
	words   []uint64 // blocks of blockWords words
	nblocks uint64
	n, max  int // ids added; ids at the designed load
}

const (
	blockWords  = 8  // 512 bits, one cache line
	bitsPerID   = 16 // at the designed load
	probesPerID = 7  // bits set per id, 9 bits of position each
	minIDs      = 1 << 16
)

// New returns an empty filter of at most maxBytes (0: unbounded;
// at least one layer of one block).
func New(maxBytes int) *Filter {
	return &Filter{seed: maphash.MakeSeed(), maxBytes: maxBytes}
}

// Hash returns the hash of id that Add and MayContain take. It differs
// between filters (each has its own seed).
func (k *Filter) Hash(id string) uint64 { return maphash.String(k.seed, id) }

// Reserve sizes the first layer for n ids, if there is no layer yet, so
// that a caller that knows how many ids are coming gets one layer for them.
func (k *Filter) Reserve(n int) {
	if len(k.layers) == 0 {
		k.grow(n)
	}
}

// grow adds a layer for n ids (less, to keep within maxBytes), or none
// when maxBytes is used up.
func (k *Filter) grow(n int) {
	n = max(n, minIDs)
	nblocks := (n*bitsPerID + 511) / 512
	if k.maxBytes > 0 {
		const blockBytes = blockWords * 8
		left := (k.maxBytes - k.bytes) / blockBytes
		if left <= 0 && len(k.layers) > 0 {
			k.layers[len(k.layers)-1].max = math.MaxInt // overloaded from now on
			return
		}
		nblocks = max(1, min(nblocks, left))
		n = nblocks * 512 / bitsPerID
	}
	k.bytes += nblocks * blockWords * 8
	k.layers = append(k.layers, layer{
		words:   make([]uint64, nblocks*blockWords),
		nblocks: uint64(nblocks),
		max:     n,
	})
}

// Add records the id whose hash is h as one the store may hold.
func (k *Filter) Add(h uint64) {
	if len(k.layers) == 0 || k.layers[len(k.layers)-1].n >= k.layers[len(k.layers)-1].max {
		next := 0
		if len(k.layers) > 0 {
			next = 2 * k.layers[len(k.layers)-1].max
		}
		k.grow(next)
	}
	l := &k.layers[len(k.layers)-1]
	blk, pos := l.locate(h)
	for range probesPerID {
		p := pos & 511
		blk[p>>6] |= 1 << (p & 63)
		pos >>= 9
	}
	l.n++
}

// MayContain reports whether the id whose hash is h was possibly added;
// false means it certainly was not.
func (k *Filter) MayContain(h uint64) bool {
	for i := range k.layers {
		if k.layers[i].has(h) {
			return true
		}
	}
	return false
}

// Bytes returns the memory of the filter's layers.
func (k *Filter) Bytes() int { return k.bytes }

func (l *layer) has(h uint64) bool {
	blk, pos := l.locate(h)
	for range probesPerID {
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
func (l *layer) locate(h uint64) ([]uint64, uint64) {
	b, _ := bits.Mul64(h, l.nblocks)
	i := b * blockWords
	x := h * 0x9e3779b97f4a7c15
	x ^= x >> 29
	return l.words[i : i+blockWords : i+blockWords], x
}
