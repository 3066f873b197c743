package processor

import (
	"bytes"
	"encoding/binary"
	"slices"
	"sync"
)

// Commit order
//
// A commit writes its dirty customers, and moves their timer index
// entries, in the store's key order: the customers by id, then the timer
// entries by (due time, id). Pebble sorts a batch too large for its
// memtable before it flushes it, and its sort is linear on sorted input
// (a replay's batches in write-set order spent CPU on it); a smaller
// batch goes into the memtable's skiplist, whose inserts are cheapest in key
// order (they start from the previous insert's place). The operations and
// their effect are the same in any order: within one commit no two of
// them write the same key, except an erasure's deletes, which stay first.
//
// The entries are sorted by an 8-byte abbreviation of their key (for
// customers, the 8 id bytes after the prefix every id of the commit
// shares; for timer entries, the due time), with a radix sort, and only
// the runs of equal abbreviations are sorted again by the whole key, so
// that the sort rarely reads the write set's arena.

// commitRef is one dirty write-set entry (off, its arena offset) in a
// commit's sort; abbr is its abbreviated key, and put, for a timer index
// entry, whether it is written (or deleted).
type commitRef struct {
	abbr uint64
	off  int
	put  bool
}

// commitRefs recycles the sort's buffers between commits, and between
// tasks: held by the tasks, a replay's twelve would be live heap under its
// memory limit all the time.
var commitRefs = sync.Pool{New: func() any { return new([]commitRef) }}

// commitOrder returns, in buffers from commitRefs (return them with
// putRefs), the live dirty entries of w in id order, and the moves of their
// timer index entries in (due, id) order: the stored entry (due at
// storedAt) deleted, the new deadline put. It reads the entries in arena
// order, and again only to compare ids whose abbreviations are equal.
// batchBytes is about what they take in the commit's store batch: each
// customer's key and encoding, and two timer index entries with its id.
func (w *writeSet) commitOrder() (dirty, moves *[]commitRef, batchBytes int) {
	dirty, moves = commitRefs.Get().(*[]commitRef), commitRefs.Get().(*[]commitRef)
	scratch := commitRefs.Get().(*[]commitRef)
	defer putRefs(scratch)
	a, m := (*dirty)[:0], (*moves)[:0]
	var first []byte
	lcp := -1
	for _, off := range w.dirty {
		if w.arena[off+wsFlags] != wsDirtyFlag {
			continue // moved or removed since
		}
		id := w.id(off)
		batchBytes += 3*len(id) + w.u32(off, wsLen) + 64
		if lcp < 0 {
			first, lcp = id, len(id)
		} else {
			lcp = commonPrefixLen(first[:lcp], id)
		}
		a = append(a, commitRef{off: off})
		// Due times are not negative, so their order is that of the
		// timer key's big-endian bytes.
		if storedAt, due := w.i64(off, wsStoredAt), w.i64(off, wsDue); due != storedAt {
			if storedAt != 0 {
				m = append(m, commitRef{abbr: uint64(storedAt), off: off})
			}
			if due != 0 {
				m = append(m, commitRef{abbr: uint64(due), off: off, put: true})
			}
		}
	}
	for i := range a {
		a[i].abbr = abbreviate(w.id(a[i].off), lcp)
	}
	*dirty, *moves = a, m
	byID := func(x, y commitRef) int { return bytes.Compare(w.id(x.off), w.id(y.off)) }
	sortRefs(dirty, scratch, byID)
	sortRefs(moves, scratch, byID)
	return dirty, moves, batchBytes
}

// sortRefs sorts *refs by abbreviation, then the runs of equal ones by cmp.
// It may swap the two buffers' contents: *refs holds the result.
func sortRefs(refs, scratch *[]commitRef, cmp func(x, y commitRef) int) {
	a := *refs
	tmp := slices.Grow((*scratch)[:0], len(a))[:len(a)]
	sorted := radixSort(a, tmp)
	if len(sorted) > 0 && &sorted[0] != &a[0] {
		*refs, *scratch = sorted, a[:0]
	} else {
		*scratch = tmp[:0]
	}
	s := *refs
	for i := 0; i < len(s); {
		j := i + 1
		for j < len(s) && s[j].abbr == s[i].abbr {
			j++
		}
		if j-i > 1 {
			slices.SortStableFunc(s[i:j], cmp)
		}
		i = j
	}
}

// putRefs returns buffers to commitRefs.
func putRefs(bufs ...*[]commitRef) {
	for _, b := range bufs {
		*b = (*b)[:0]
		commitRefs.Put(b)
	}
}

// radixSort sorts a by abbr, least significant byte first, with tmp (as
// long as a) for scratch, and returns whichever of the two holds the
// result. A byte position where every key has the same byte costs no pass.
func radixSort(a, tmp []commitRef) []commitRef {
	if len(a) < 2 {
		return a
	}
	var counts [8][256]int
	for _, r := range a {
		for i := range 8 {
			counts[i][byte(r.abbr>>(8*i))]++
		}
	}
	src, dst := a, tmp
	for i := range 8 {
		c := &counts[i]
		if c[byte(src[0].abbr>>(8*i))] == len(src) {
			continue
		}
		sum := 0
		for d := range c {
			c[d], sum = sum, sum+c[d]
		}
		for _, r := range src {
			d := byte(r.abbr >> (8 * i))
			dst[c[d]] = r
			c[d]++
		}
		src, dst = dst, src
	}
	return src
}

// abbreviate returns the 8 bytes of id after its first skip bytes, big
// endian, padded with zeros: ids in that order are in abbreviation order,
// ties left to a whole comparison.
func abbreviate(id []byte, skip int) uint64 {
	var b [8]byte
	if skip < len(id) {
		copy(b[:], id[skip:])
	}
	return binary.BigEndian.Uint64(b[:])
}

func commonPrefixLen(a, b []byte) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
