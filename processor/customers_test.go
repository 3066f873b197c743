package processor

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"valora/schemas"
	"valora/state"
)

// custModel is what customers must hold, kept as a map of encodings: the
// current customers (cur), the store's (stored: what the last commit left),
// the customers changed and erased since then, and the place in the timer
// clock's dues each changed customer got in the current cycle.
type custModel struct {
	cur, stored map[string][]byte
	storedDue   map[string]int64 // TimerAt of the stored customers
	dirty       map[string]bool
	erased      map[string]bool
	slots       map[string]int32
}

// TestCustomersModel runs random lookups, changes, erasures, encodings of
// pend, commits and restarts against a map model, over a Pebble store on
// disk, with caches from none to larger than the customers, write sets
// from a few entries to all of them, filters of known ids from exact to
// mostly "maybe", and a replay's clean-keeping set. It checks the
// invariant of customers: every lookup returns the current customer (or a
// new one, exactly when there is none), with the place in dues its last
// change in this cycle gave it; a commit writes exactly the customers
// changed and erased since the last, with the timer index entries the
// store holds; and the store then holds the model's customers and timer
// index.
func TestCustomersModel(t *testing.T) {
	seeds := uint64(100)
	if testing.Short() {
		seeds = 25
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel() // most of a seed's time is its commits' syncs
			runCustomersModel(t, seed)
		})
	}
}

func runCustomersModel(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 11))
	st, err := state.Open(state.Options{Dir: t.TempDir(), CacheSize: 8 << 20, MemTableSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	part := int32(rng.IntN(3))
	cacheCap := []int{0, 1, 8, 1000}[rng.IntN(4)]
	wsMax := 1 << (14 + rng.IntN(7)) // its index alone takes 8 KiB
	keepClean := rng.IntN(2) == 0    // a replay's write set
	knownBytes := []int{0, 1}[rng.IntN(2)]
	ids := make([]string, 1+rng.IntN(400))
	for i := range ids {
		ids[i] = fmt.Sprintf("c%d-%s", i, bytes.Repeat([]byte("x"), rng.IntN(20)))
	}
	tiers := []string{"bronze", "silver", "gold", "platinum"}
	m := &custModel{
		cur: map[string][]byte{}, stored: map[string][]byte{}, storedDue: map[string]int64{},
		dirty: map[string]bool{}, erased: map[string]bool{}, slots: map[string]int32{},
	}
	enc := func(c *schemas.Customer) []byte {
		b, err := schemas.AppendCustomer(nil, c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	clock := uint64(1)
	var cs customers
	// start builds cs from the store as a task's load does.
	start := func() {
		cs = newCustomers(st, part, cacheCap, wsMax, knownBytes)
		stored := 0
		err := st.ScanCustomers(part, func(_, value []byte) error {
			stored++
			c := new(cust)
			if err := schemas.DecodeCustomer(value, &c.Customer); err != nil {
				return err
			}
			cs.scanned(c)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		cs.loaded(keepClean && stored == 0)
	}
	start()

	// get looks id up and checks the answer against the model.
	get := func(op int, id string) (*cust, bool) {
		t.Helper()
		c, isNew, err := cs.get(id, clock)
		if err != nil {
			t.Fatalf("op %d: get %s: %v", op, id, err)
		}
		want, ok := m.cur[id]
		if isNew == ok {
			t.Fatalf("op %d: get %s: new = %v, want %v", op, id, isNew, !ok)
		}
		if !ok {
			want = enc(&schemas.Customer{CustomerID: id})
		}
		if got := enc(&c.Customer); !bytes.Equal(got, want) {
			t.Fatalf("op %d: get %s: got %x, want %x", op, id, got, want)
		}
		// A customer changed in this cycle keeps the place in dues its
		// first change gave it, and no other customer has one.
		if c.cycle == clock {
			if slot, ok := m.slots[id]; !ok || c.slot != slot {
				t.Fatalf("op %d: get %s: place %d in this cycle, want %d (given: %v)", op, id, c.slot, slot, ok)
			}
		} else if m.dirty[id] {
			t.Fatalf("op %d: get %s: changed in this cycle, but its place in dues is lost", op, id)
		}
		return c, isNew
	}

	commit := func(op int) {
		t.Helper()
		if len(m.dirty) > 0 && !cs.hasChanged() {
			t.Fatalf("op %d: hasChanged false with %d changed customers", op, len(m.dirty))
		}
		if err := cs.encodePending(clock); err != nil {
			t.Fatal(err)
		}
		// The erasures: exactly the customers erased, each with the due
		// time of the index entry the store holds for it.
		if got, want := slices.Sorted(maps.Keys(cs.erasures())), slices.Sorted(maps.Keys(m.erased)); !slices.Equal(got, want) {
			t.Fatalf("op %d: erasures %v, want %v", op, got, want)
		}
		for id, due := range cs.erasures() {
			if due != m.storedDue[id] {
				t.Fatalf("op %d: erasure of %s deletes the index entry due at %d, the store's is due at %d", op, id, due, m.storedDue[id])
			}
		}
		// The changed customers, in id order, with their timer index
		// moves from the store's entry to the new deadline.
		dirty, moves, _ := cs.commitOrder()
		var got []string
		wantMoves := map[string][2]int64{}
		for _, r := range *dirty {
			id := string(cs.id(r))
			got = append(got, id)
			if !bytes.Equal(cs.enc(r), m.cur[id]) {
				t.Fatalf("op %d: commit writes %s as %x, want %x", op, id, cs.enc(r), m.cur[id])
			}
			var c schemas.Customer
			if err := schemas.DecodeCustomer(m.cur[id], &c); err != nil {
				t.Fatal(err)
			}
			from := m.storedDue[id]
			if m.erased[id] {
				from = 0 // the erasure deletes the stored entry
			}
			if from != c.TimerAt {
				wantMoves[id] = [2]int64{from, c.TimerAt}
			}
		}
		if want := slices.Sorted(maps.Keys(m.dirty)); !slices.Equal(got, want) {
			t.Fatalf("op %d: commit writes %v, want %v", op, got, want)
		}
		gotMoves := map[string][2]int64{}
		for _, r := range *moves {
			id := string(cs.id(r))
			mv := gotMoves[id]
			if r.put {
				mv[1] = int64(r.abbr)
			} else {
				mv[0] = int64(r.abbr)
			}
			gotMoves[id] = mv
		}
		if !maps.Equal(gotMoves, wantMoves) {
			t.Fatalf("op %d: timer index moves %v, want %v", op, gotMoves, wantMoves)
		}
		b := st.NewBatch()
		cs.fillBatch(b, *dirty)
		for _, r := range *moves {
			if r.put {
				b.PutTimer(part, int64(r.abbr), string(cs.id(r)))
			} else {
				b.DeleteTimer(part, int64(r.abbr), string(cs.id(r)))
			}
		}
		putRefs(dirty, moves)
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		b.Close()
		cs.committed(keepClean)
		clock++
		m.stored = maps.Clone(m.cur)
		clear(m.storedDue)
		for id, e := range m.cur {
			var c schemas.Customer
			if err := schemas.DecodeCustomer(e, &c); err != nil {
				t.Fatal(err)
			}
			m.storedDue[id] = c.TimerAt
		}
		clear(m.dirty)
		clear(m.erased)
		clear(m.slots)
		checkStore(t, op, st, part, m)
	}

	const ops = 2000
	for op := range ops {
		id := ids[rng.IntN(len(ids))]
		switch r := rng.IntN(100); {
		case r < 45: // a record or timer changes id
			c, _ := get(op, id)
			if c.cycle != clock { // as task.schedule
				slot, ok := m.slots[id]
				if !ok {
					slot = int32(len(m.slots))
					m.slots[id] = slot
				}
				c.slot, c.cycle = slot, clock
			}
			c.Version++
			c.Purchases++
			c.MonetaryMinor += rng.Int64N(1000)
			c.Tier = tiers[rng.IntN(len(tiers))]
			c.PurchasesByChannel = c.PurchasesByChannel[:0]
			for range rng.IntN(4) {
				c.PurchasesByChannel = append(c.PurchasesByChannel, rng.Int64N(50))
			}
			due := int64(0)
			if rng.IntN(4) > 0 {
				due = 1 + rng.Int64N(100)
			}
			if err := cs.changed(c, due, clock); err != nil {
				t.Fatal(err)
			}
			m.cur[id] = enc(&c.Customer)
			m.dirty[id] = true
		case r < 80: // a lookup that changes nothing (a record that fails)
			get(op, id)
		case r < 88: // an erasure request
			if c, isNew := get(op, id); !isNew {
				cs.erase(c)
				m.erased[id] = true // stored or not
				delete(m.cur, id)
				delete(m.dirty, id)
			}
		case r < 95:
			if err := cs.encodePending(clock); err != nil {
				t.Fatal(err)
			}
		case r < 98:
			commit(op)
		default: // a restart, or a policy switch, after a commit
			commit(op)
			if rng.IntN(2) == 0 {
				start()
			} else {
				cs.dropClean()
			}
		}
		if cs.full() {
			commit(op)
		}
	}
	commit(ops)
}

// checkStore checks that the store holds the model's customers and a timer
// index entry for each one with a deadline.
func checkStore(t *testing.T, op int, st *state.Store, part int32, m *custModel) {
	t.Helper()
	got := map[string][]byte{}
	err := st.ScanCustomers(part, func(id, value []byte) error {
		got[string(id)] = bytes.Clone(value)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.EqualFunc(got, m.stored, bytes.Equal) {
		t.Fatalf("op %d: the store holds %d customers, the model %d, or their values differ", op, len(got), len(m.stored))
	}
	timers := map[string]int64{}
	err = st.ScanTimers(part, 0, 1<<63-1, func(due int64, id []byte) error {
		if _, ok := timers[string(id)]; ok {
			t.Fatalf("op %d: two index entries for %s", op, id)
		}
		timers[string(id)] = due
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for id, due := range m.storedDue {
		if due != 0 {
			want[id] = due
		}
	}
	if !maps.Equal(timers, want) {
		t.Fatalf("op %d: timer index %v, want %v", op, timers, want)
	}
}

// BenchmarkCustomers measures a record's path through customers: the
// lookup of one of 100,000 customers and its change, with pend encoded into
// the write set every pendMax customers and a commit every 20,000 changes,
// with the decoded cache holding them all (the daemon's) and with none (a
// replay's, whose write set keeps the clean customers).
func BenchmarkCustomers(b *testing.B) {
	for _, bc := range []struct {
		name      string
		cache     int
		keepClean bool
	}{{"cache", 100_000, false}, {"no-cache", 0, true}} {
		b.Run(bc.name, func(b *testing.B) {
			st, err := state.Open(state.Options{Dir: b.TempDir(), CacheSize: 8 << 20, MemTableSize: 4 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			cs := newCustomers(st, 0, bc.cache, 1<<30, 0)
			cs.loaded(bc.keepClean) // an empty store: complete while clean customers stay
			ids := make([]string, 100_000)
			for i := range ids {
				ids[i] = fmt.Sprintf("customer-%07d", i)
			}
			clock := uint64(1)
			change := func(i int) {
				c, _, err := cs.get(ids[(i*7919)%len(ids)], clock)
				if err != nil {
					b.Fatal(err)
				}
				c.Purchases++
				if err := cs.changed(c, int64(i), clock); err != nil {
					b.Fatal(err)
				}
				if i%20_000 == 0 {
					if err := cs.encodePending(clock); err != nil {
						b.Fatal(err)
					}
					cs.committed(bc.keepClean)
					clock++
				}
			}
			for i := range 2 * len(ids) {
				change(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				change(i)
			}
		})
	}
}
