package processor

import (
	"encoding/binary"
	"hash/maphash"
	"math"
)

// writeSet holds a task's customers encoded (schemas.AppendCustomer) in one
// byte arena: every customer changed since the task's last commit (dirty),
// and, while there is room, customers written by earlier commits (clean),
// which it serves without a store read (a replay's tasks keep them; the
// daemon's, whose decoded cache holds its customers, do not). It is built
// like an off-heap cache: the arena and its open-addressing index are plain
// bytes and integers, so a million customers cost the garbage collector
// nothing to trace, and a customer costs its encoding, its id and about 50
// bytes (header, room to grow, index slot), about a third of a decoded one. That lets a task keep a large working set between commits and
// commit rarely (a replay commits once per Config.CommitInterval), so that a
// customer changed many times between two commits is written to the store,
// and to the changelog, once.
//
// An entry keeps storedAt, the due time of the timer index entry the store
// holds for the customer, and due, the deadline scheduled at its last change,
// which its encoding carries as TimerAt and the commit makes the stored one.
// A clean entry has storedAt == due and is the same as the stored customer.
//
// Only the task goroutine uses a writeSet.
type writeSet struct {
	seed maphash.Seed
	// slots is the index: 0 is empty, wsTombstone a removed entry, and
	// anything else an entry's arena offset plus one in the low 40 bits,
	// with the top 24 bits of its id's hash above them.
	slots []uint64
	arena []byte
	// dirty holds the offsets of the entries changed since the last
	// commit, and of entries since moved or removed (skipped).
	dirty []int
	live  int // entries in slots
	tombs int // tombstones in slots
	used  int // arena bytes of live entries
	// dirtyLive and dirtyUsed count the live dirty entries and their arena
	// bytes (a subset of live and used).
	dirtyLive int
	dirtyUsed int
	limit     int // the arena grows to it, not past, while it holds what is put (grow)
	// complete is set by the owner when the set holds every customer the
	// store does (a replay task that loaded none); committed clears it
	// when it lets go of an entry, to make room or to empty the set
	// (remove does not: the store deletes a removed customer too).
	complete bool
}

// An entry in the arena: a header, the id, then the encoding and its room
// to grow.
const (
	wsStoredAt = 0  // int64
	wsDue      = 8  // int64
	wsLen      = 16 // uint32: length of the encoding
	wsRoom     = 20 // uint32: bytes reserved for the encoding
	wsIDLen    = 24 // uint32
	wsFlags    = 28 // byte
	wsSlot     = 32 // int32: a dirty entry's place in the timer clock's dues (-1: unknown)
	wsHeader   = 36

	wsDirtyFlag   = 1
	wsRemovedFlag = 2

	wsTombstone  = ^uint64(0)
	wsOffsetBits = 40
	wsOffsetMask = 1<<wsOffsetBits - 1
)

// wsDirtyOverhead is what a dirty customer costs besides its entry, as
// counted against Config.WriteSetBytes: its place in the dirty list and in
// the timer clock (idx, dues, heap).
const wsDirtyOverhead = 96

// newWriteSet returns an empty set whose arena grows to at most limit bytes
// while that holds what is put (see grow); limit is the task's share of
// Config.WriteSetBytes, past which the task commits.
func newWriteSet(limit int) writeSet {
	return writeSet{seed: maphash.MakeSeed(), slots: make([]uint64, 1024), limit: limit}
}

// grow gives the arena room for need bytes: it grows the array by half,
// but not past limit while need fits under it. append's growth (a quarter
// at a time for large arrays) allocated about five times a replay's final
// arena, copying as it went; growing by half allocates about three times,
// and leaves at most half of the array unused (doubling would leave up to
// all of it), which the Go heap's limit counts as if it were used. The cap
// at limit keeps the array from overshooting what the set may hold.
func (w *writeSet) grow(need int) {
	n := max(cap(w.arena)+cap(w.arena)/2, need, 64<<10)
	switch {
	case need <= w.limit:
		n = min(n, w.limit)
	case n > need+need/8:
		n = need + need/8
	}
	a := make([]byte, len(w.arena), n)
	copy(a, w.arena)
	w.arena = a
}

// len returns the number of customers in the set; dirtyLen the number of
// entries changed since the last commit (an upper bound).
func (w *writeSet) len() int      { return w.live }
func (w *writeSet) dirtyLen() int { return len(w.dirty) }

// bytes returns the memory the set accounts for: its arena (with the room
// left by removed and moved entries), its index and its dirty customers.
func (w *writeSet) bytes() int {
	return len(w.arena) + 8*len(w.slots) + wsDirtyOverhead*len(w.dirty)
}

func (w *writeSet) u32(off, field int) int {
	return int(binary.LittleEndian.Uint32(w.arena[off+field:]))
}

func (w *writeSet) i64(off, field int) int64 {
	return int64(binary.LittleEndian.Uint64(w.arena[off+field:]))
}

func (w *writeSet) setI64(off, field int, v int64) {
	binary.LittleEndian.PutUint64(w.arena[off+field:], uint64(v))
}

func (w *writeSet) id(off int) []byte {
	return w.arena[off+wsHeader : off+wsHeader+w.u32(off, wsIDLen)]
}

// enc returns the encoding of the entry at off, valid until the next put or
// committed.
func (w *writeSet) enc(off int) []byte {
	start := off + wsHeader + w.u32(off, wsIDLen)
	n := w.u32(off, wsLen)
	return w.arena[start : start+n : start+n]
}

// find returns the slot of id, and whether it holds id; if not, the slot is
// where id would go (the first tombstone or empty slot of its probe). h is
// id's hash.
func (w *writeSet) find(id string) (slot int, ok bool, h uint64) {
	h = maphash.String(w.seed, id)
	tag := h >> wsOffsetBits
	mask := len(w.slots) - 1
	free := -1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := w.slots[i]
		switch {
		case s == 0:
			if free < 0 {
				free = i
			}
			return free, false, h
		case s == wsTombstone:
			if free < 0 {
				free = i
			}
		case s>>wsOffsetBits == tag && string(w.id(int(s&wsOffsetMask)-1)) == id:
			return i, true, h
		}
	}
}

func (w *writeSet) offset(slot int) int { return int(w.slots[slot]&wsOffsetMask) - 1 }

// get returns id's encoding, valid until the next put or committed, and,
// if the entry is dirty, the place in the timer clock's dues given to put
// (else -1).
func (w *writeSet) get(id string) (enc []byte, dueSlot int32, ok bool) {
	slot, ok, _ := w.find(id)
	if !ok {
		return nil, -1, false
	}
	off := w.offset(slot)
	dueSlot = -1
	if w.arena[off+wsFlags]&wsDirtyFlag != 0 {
		dueSlot = int32(binary.LittleEndian.Uint32(w.arena[off+wsSlot:]))
	}
	return w.enc(off), dueSlot, true
}

// storedAt returns the due time of the index entry the store holds for id,
// if id is in the set.
func (w *writeSet) storedAt(id string) (int64, bool) {
	slot, ok, _ := w.find(id)
	if !ok {
		return 0, false
	}
	return w.i64(w.offset(slot), wsStoredAt), true
}

// put stores enc as id's changed encoding, which carries the deadline due,
// and dueSlot, the customer's place in the timer clock's dues (-1:
// unknown), which get returns while the entry is dirty. storedAt is used
// only if id is not in the set; otherwise the entry's is kept. The
// encoding is overwritten in place when it fits the room of the
// previous one; else the entry moves to the end of the arena (its old bytes
// stay unused until committed rewrites the arena). Room is left for small
// growth, as a customer's counters and sums grow a byte at a time.
func (w *writeSet) put(id string, enc []byte, storedAt, due int64, dueSlot int32) {
	slot, ok, h := w.find(id)
	if ok {
		off := w.offset(slot)
		if len(enc) <= w.u32(off, wsRoom) {
			start := off + wsHeader + len(id)
			copy(w.arena[start:], enc)
			binary.LittleEndian.PutUint32(w.arena[off+wsLen:], uint32(len(enc)))
			binary.LittleEndian.PutUint32(w.arena[off+wsSlot:], uint32(dueSlot))
			w.setI64(off, wsDue, due)
			if w.arena[off+wsFlags]&wsDirtyFlag == 0 {
				w.arena[off+wsFlags] |= wsDirtyFlag
				w.dirty = append(w.dirty, off)
				w.dirtyLive++
				w.dirtyUsed += w.entrySize(off)
			}
			return
		}
		storedAt = w.i64(off, wsStoredAt)
		w.drop(off)
	} else if w.slots[slot] == wsTombstone {
		w.tombs--
	}
	off := w.alloc(id, enc, storedAt, due, dueSlot)
	w.dirty = append(w.dirty, off)
	w.dirtyLive++
	w.dirtyUsed += w.entrySize(off)
	w.slots[slot] = h>>wsOffsetBits<<wsOffsetBits | uint64(off+1)
	w.live++
	if n := len(w.slots); 4*(w.live+w.tombs) > 3*n {
		if 2*w.live > n {
			n *= 2
		}
		w.rehash(n) // drops the tombstones
	}
}

func (w *writeSet) entrySize(off int) int {
	return wsHeader + w.u32(off, wsIDLen) + w.u32(off, wsRoom)
}

// drop marks the entry at off removed and takes it out of the counts; its
// slot is the caller's to reuse or clear.
func (w *writeSet) drop(off int) {
	size := w.entrySize(off)
	if w.arena[off+wsFlags]&wsDirtyFlag != 0 {
		w.dirtyLive--
		w.dirtyUsed -= size
	}
	w.arena[off+wsFlags] = wsRemovedFlag
	w.used -= size
	w.live--
}

// alloc appends a dirty entry to the arena and returns its offset.
func (w *writeSet) alloc(id string, enc []byte, storedAt, due int64, dueSlot int32) int {
	room := len(enc) + len(enc)/16 + 4
	size := wsHeader + len(id) + room
	off := len(w.arena)
	if off+size > cap(w.arena) {
		w.grow(off + size)
	}
	w.arena = w.arena[:off+size]
	w.setI64(off, wsStoredAt, storedAt)
	w.setI64(off, wsDue, due)
	binary.LittleEndian.PutUint32(w.arena[off+wsLen:], uint32(len(enc)))
	binary.LittleEndian.PutUint32(w.arena[off+wsRoom:], uint32(room))
	binary.LittleEndian.PutUint32(w.arena[off+wsIDLen:], uint32(len(id)))
	binary.LittleEndian.PutUint32(w.arena[off+wsSlot:], uint32(dueSlot))
	w.arena[off+wsFlags] = wsDirtyFlag
	copy(w.arena[off+wsHeader:], id)
	copy(w.arena[off+wsHeader+len(id):], enc)
	w.used += size
	return off
}

// rehash rebuilds the index with n slots (a power of two), dropping
// tombstones.
func (w *writeSet) rehash(n int) {
	old := w.slots
	w.slots = make([]uint64, n)
	w.tombs = 0
	mask := n - 1
	for _, s := range old {
		if s == 0 || s == wsTombstone {
			continue
		}
		h := maphash.Bytes(w.seed, w.id(int(s&wsOffsetMask)-1))
		i := int(h) & mask
		for w.slots[i] != 0 {
			i = (i + 1) & mask
		}
		w.slots[i] = s
	}
}

// remove drops id from the set (its bytes stay unused until committed
// rewrites the arena).
func (w *writeSet) remove(id string) {
	slot, ok, _ := w.find(id)
	if !ok {
		return
	}
	w.drop(w.offset(slot))
	w.slots[slot] = wsTombstone
	w.tombs++
}

// committed marks every entry clean (the commit wrote them: their
// scheduled deadline is now the stored one). Unless keepClean is set, it
// then empties the set. Otherwise, if the set takes max bytes or more, it
// keeps about half of max (see rewrite); and it rewrites the arena when
// removed and moved entries left a quarter of it unused.
func (w *writeSet) committed(max int, keepClean bool) {
	if !keepClean {
		w.complete = w.complete && w.live == 0
		clear(w.slots)
		w.arena, w.dirty = w.arena[:0], w.dirty[:0]
		w.live, w.tombs, w.used = 0, 0, 0
		w.dirtyLive, w.dirtyUsed = 0, 0
		return
	}
	for _, off := range w.dirty {
		if w.arena[off+wsFlags] == wsDirtyFlag {
			w.arena[off+wsFlags] = 0
			w.setI64(off, wsStoredAt, w.i64(off, wsDue))
		}
	}
	w.dirty = w.dirty[:0]
	w.dirtyLive, w.dirtyUsed = 0, 0
	switch {
	case w.bytes() >= max:
		w.rewrite(max / 2)
	case len(w.arena)-w.used > len(w.arena)/4:
		w.rewrite(len(w.arena))
	}
}

// makeRoom frees room in a set that takes max bytes or more, without a
// commit: it compacts the arena (dropping what moved and removed entries
// left) and drops clean customers until the set takes at most
// wsRoomKept eighths of max. It does nothing and reports false when the dirty
// customers alone take more than that: only a commit frees room then. A
// set that keeps clean customers (a replay's) thus commits when its
// changed customers fill it or its commit interval ends, not whenever the
// bytes its moved entries left fill it: a replay's tasks committed about
// three times as often, writing most of their customers each time
// (BENCHMARKS.md). Each call frees at least an eighth of max, so the
// compactions cost a bounded copy per byte put.
func (w *writeSet) makeRoom(max int) bool {
	keep := max*wsRoomKept/8 - 8*len(w.slots) - wsDirtyOverhead*w.dirtyLive
	if w.dirtyUsed > keep {
		return false
	}
	w.rewrite(keep)
	return true
}

// wsRoomKept is what makeRoom leaves of a full set, in eighths.
const wsRoomKept = 7

// rewrite compacts the arena in place, in arena order, keeping every dirty
// entry and clean ones while all the kept entries hold at most keep
// bytes, and rebuilds the index and the dirty list from the entries it
// keeps. Which clean entries go is a random choice: when keep is below
// what the live entries take, a clean entry stays only if its id's hash
// falls in the kept fraction, so the drop is spread over the set.
//
// Compacting in place keeps the arena's array: a replay's write set is
// tens of MiB per task, and a fresh array per commit was a large share of
// what a replay allocated (BENCHMARKS.md).
func (w *writeSet) rewrite(keep int) {
	// frac is the share of entries to keep, as a threshold on the top
	// bits of the hash; all of them when everything fits.
	frac := uint64(math.MaxUint64)
	cleanKeep := keep - w.dirtyUsed
	if clean := w.used - w.dirtyUsed; w.used > keep {
		frac = 0
		if cleanKeep > 0 {
			frac = uint64(float64(cleanKeep)/float64(clean)*float64(math.MaxUint64>>1)) << 1
		}
	}
	slots := len(w.slots)
	for slots > 1024 && 4*w.live < slots {
		slots /= 2 // keep the index no larger than it needs
	}
	if slots == len(w.slots) {
		clear(w.slots)
	} else {
		w.slots = make([]uint64, slots)
	}
	w.tombs = 0
	mask := slots - 1
	end := len(w.arena)
	n := 0 // the compacted arena's length
	cleanKept := 0
	w.used, w.live = 0, 0
	w.dirty = w.dirty[:0]
	for off := 0; off < end; {
		size := w.entrySize(off)
		cur := off
		off += size
		flags := w.arena[cur+wsFlags]
		if flags&wsRemovedFlag != 0 {
			continue
		}
		h := maphash.Bytes(w.seed, w.id(cur))
		if flags&wsDirtyFlag != 0 {
			w.dirty = append(w.dirty, n)
		} else if h > frac || cleanKept+size > cleanKeep {
			w.complete = false
			continue
		} else {
			cleanKept += size
		}
		if cur != n {
			copy(w.arena[n:n+size], w.arena[cur:cur+size])
		}
		i := int(h) & mask
		for w.slots[i] != 0 {
			i = (i + 1) & mask
		}
		w.slots[i] = h>>wsOffsetBits<<wsOffsetBits | uint64(n+1)
		n += size
		w.used += size
		w.live++
	}
	w.arena = w.arena[:n]
}
