package processor

import (
	"bytes"
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// wsModel is what a writeSet must hold: every dirty customer, exactly, and
// a clean customer either exactly or not at all.
type wsModel struct {
	enc           []byte
	storedAt, due int64
	slot          int32
	dirty         bool
}

// TestWriteSetModel runs random puts, removes and commits against
// a map and checks the write set after every operation's effect: reads, the
// dirty customers a commit writes (in id order), their deadlines and timer
// index moves (in key order), and that only clean customers are ever
// dropped, and only when the set is over its budget.
func TestWriteSetModel(t *testing.T) {
	for seed := range uint64(200) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			model := map[string]*wsModel{}
			ids := make([]string, 1+rng.IntN(3000))
			for i := range ids {
				xs := bytes.Repeat([]byte("x"), rng.IntN(40))
				ids[i] = fmt.Sprintf("c-%d-%s", i, xs)
				if i%2 == 1 {
					// Ids that share more than 8 bytes after their common
					// prefix: the commit's sort must compare them whole.
					ids[i] = fmt.Sprintf("p-%s-%d", xs, i)
				}
			}
			budget := 1 << (15 + rng.IntN(8))
			w := newWriteSet(budget)
			w.complete = true // as a replay task that loaded no customer
			for op := range 20000 {
				id := ids[rng.IntN(len(ids))]
				switch r := rng.IntN(100); {
				case r < 70:
					enc := make([]byte, 1+rng.IntN(300))
					for i := range enc {
						enc[i] = byte(rng.Uint32())
					}
					storedAt, due := rng.Int64N(1000), rng.Int64N(1000)
					m := model[id]
					if m == nil {
						m = &wsModel{storedAt: storedAt}
						model[id] = m
					}
					slot := rng.Int32N(1000) - 1
					m.enc, m.due, m.slot, m.dirty = enc, due, slot, true
					w.put(id, enc, storedAt, due, slot)
				case r < 80:
					delete(model, id)
					w.remove(id)
				case r < 83:
					// What a commit writes, in its order (commitorder.go):
					// the dirty customers by id, then the timer index
					// entries they move, by (due, id).
					got := map[string]bool{}
					dirty, moves, batchBytes := w.commitOrder()
					wantBytes := 0
					var prev []byte
					var wantMoves []commitRef
					for i, r := range *dirty {
						idb, enc := w.id(r.off), w.enc(r.off)
						storedAt, due := w.i64(r.off, wsStoredAt), w.i64(r.off, wsDue)
						m := model[string(idb)]
						if m == nil || !m.dirty {
							t.Fatalf("op %d: %s written at commit, but not dirty", op, idb)
						}
						if !bytes.Equal(enc, m.enc) || storedAt != m.storedAt || due != m.due {
							t.Fatalf("op %d: %s written as (%d bytes, %d, %d), want (%d bytes, %d, %d)",
								op, idb, len(enc), storedAt, due, len(m.enc), m.storedAt, m.due)
						}
						if got[string(idb)] {
							t.Fatalf("op %d: %s written twice", op, idb)
						}
						if i > 0 && bytes.Compare(prev, idb) >= 0 {
							t.Fatalf("op %d: %s written after %s", op, idb, prev)
						}
						got[string(idb)], prev = true, idb
						wantBytes += 3*len(idb) + len(enc) + 64
						if due != storedAt && storedAt != 0 {
							wantMoves = append(wantMoves, commitRef{abbr: uint64(storedAt), off: r.off})
						}
						if due != storedAt && due != 0 {
							wantMoves = append(wantMoves, commitRef{abbr: uint64(due), off: r.off, put: true})
						}
					}
					for id, m := range model {
						if m.dirty && !got[id] {
							t.Fatalf("op %d: dirty %s not written at commit", op, id)
						}
					}
					slices.SortFunc(wantMoves, func(x, y commitRef) int {
						if c := cmp.Compare(x.abbr, y.abbr); c != 0 {
							return c
						}
						return bytes.Compare(w.id(x.off), w.id(y.off))
					})
					if batchBytes != wantBytes {
						t.Fatalf("op %d: batch estimate %d bytes, want %d", op, batchBytes, wantBytes)
					}
					if !slices.Equal(*moves, wantMoves) {
						t.Fatalf("op %d: timer moves %v, want %v", op, *moves, wantMoves)
					}
					putRefs(dirty, moves)
					over := w.bytes()-wsDirtyOverhead*w.dirtyLen() >= budget
					keepClean := rng.IntN(4) != 0
					w.committed(budget, keepClean)
					for id, m := range model {
						m.dirty, m.storedAt = false, m.due
						if _, _, ok := w.get(id); !ok {
							if keepClean && !over {
								t.Fatalf("op %d: %s dropped by a commit under budget", op, id)
							}
							if w.complete {
								// lookup would take the dropped customer for a new one
								t.Fatalf("op %d: %s dropped, but the set is still complete", op, id)
							}
							delete(model, id)
						}
					}
					if !keepClean && w.len() != 0 {
						t.Fatalf("op %d: %d customers after a commit that keeps no clean ones", op, w.len())
					}
					if over && w.bytes() > budget {
						t.Fatalf("op %d: %d bytes after a commit over budget %d", op, w.bytes(), budget)
					}
				case r < 86:
					// What a task does when its set is full (task.full):
					// make room without a commit (or commit if it cannot).
					over := w.bytes() > budget*wsRoomKept/8
					dirtyBytes := 8*len(w.slots) + wsDirtyOverhead*w.dirtyLive + w.dirtyUsed
					if !w.makeRoom(budget) {
						if dirtyBytes <= budget*wsRoomKept/8 {
							t.Fatalf("op %d: no room made, with dirty customers taking %d of %d bytes", op, dirtyBytes, budget)
						}
						break
					}
					if w.bytes() > budget*wsRoomKept/8 {
						t.Fatalf("op %d: %d bytes after making room in %d", op, w.bytes(), budget)
					}
					for id, m := range model {
						if _, _, ok := w.get(id); !ok {
							if m.dirty {
								t.Fatalf("op %d: dirty %s dropped to make room", op, id)
							}
							if !over {
								t.Fatalf("op %d: %s dropped from a set with room", op, id)
							}
							if w.complete {
								t.Fatalf("op %d: %s dropped, but the set is still complete", op, id)
							}
							delete(model, id)
						}
					}
				default:
					enc, slot, ok := w.get(id)
					m := model[id]
					if ok != (m != nil) {
						t.Fatalf("op %d: get %s: found %v, want %v", op, id, ok, m != nil)
					}
					if ok && !bytes.Equal(enc, m.enc) {
						t.Fatalf("op %d: get %s: wrong encoding", op, id)
					}
					if ok && m.dirty && slot != m.slot {
						t.Fatalf("op %d: get %s: dues place %d, want %d", op, id, slot, m.slot)
					}
					if ok && !m.dirty && slot != -1 {
						t.Fatalf("op %d: get %s: dues place %d of a clean customer", op, id, slot)
					}
					at, ok := w.storedAt(id)
					if ok && at != m.storedAt {
						t.Fatalf("op %d: storedAt %s: %d, want %d", op, id, at, m.storedAt)
					}
				}
				if w.len() != len(model) {
					t.Fatalf("op %d: %d customers, want %d", op, w.len(), len(model))
				}
				dirty, used := 0, 0
				for _, s := range w.slots {
					if s == 0 || s == wsTombstone {
						continue
					}
					if off := int(s&wsOffsetMask) - 1; w.arena[off+wsFlags] == wsDirtyFlag {
						dirty++
						used += w.entrySize(off)
					}
				}
				if dirty != w.dirtyLive || used != w.dirtyUsed {
					t.Fatalf("op %d: %d dirty customers in %d bytes, counted %d in %d", op, dirty, used, w.dirtyLive, w.dirtyUsed)
				}
			}
		})
	}
}

// BenchmarkWriteSet measures the write set's get and put of a customer
// among a million.
func BenchmarkWriteSet(b *testing.B) {
	w := newWriteSet(1 << 30)
	enc := make([]byte, 160)
	ids := make([]string, 1_000_000)
	for i := range ids {
		ids[i] = fmt.Sprintf("customer-%07d", i)
		w.put(ids[i], enc, 0, 1, -1)
	}
	w.committed(1<<40, true)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		id := ids[(i*7919)%len(ids)]
		if _, _, ok := w.get(id); !ok {
			b.Fatal("missing")
		}
		w.put(id, enc, 0, int64(i), -1)
	}
}
