package gen

import (
	"math/rand/v2"
	"testing"
)

// TestRadixQueueOrder checks the radix heap against a sorted reference
// under random monotone pushes and pops, with many equal times.
func TestRadixQueueOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const base = 1_700_000_000_000
	q := newRadixQueue(base)
	var ref []entry
	now := int64(base)
	push := func() {
		var at int64
		switch rng.IntN(4) {
		case 0:
			at = now // same time as the current entry
		case 1:
			at = now + rng.Int64N(10)
		default:
			at = now + rng.Int64N(1<<uint(rng.IntN(40)))
		}
		e := entry{at: at, cust: uint32(rng.IntN(50)), ref: uint32(rng.IntN(3))}
		q.push(e)
		ref = append(ref, e)
	}
	for range 1000 {
		push()
	}
	for step := range 200_000 {
		if len(ref) == 0 || (rng.IntN(2) == 0 && step < 150_000) {
			push()
			continue
		}
		i := 0
		for j, e := range ref {
			if e.before(ref[i]) {
				i = j
			}
		}
		want := ref[i]
		got, ok := q.min()
		if !ok || got != want {
			t.Fatalf("step %d: min() = %+v, %v; want %+v", step, got, ok, want)
		}
		q.pop()
		ref[i] = ref[len(ref)-1]
		ref = ref[:len(ref)-1]
		now = want.at
		if q.len() != len(ref) {
			t.Fatalf("len() = %d, want %d", q.len(), len(ref))
		}
	}
	if _, ok := q.min(); ok != (len(ref) > 0) {
		t.Fatalf("min() ok = %v with %d entries", ok, len(ref))
	}
}
