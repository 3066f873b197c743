package score

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"valora/schemas"
)

// withWindow returns the default policy with the duplicate window set to n.
func withWindow(t testing.TB, n int) *Policy {
	t.Helper()
	p := DefaultPolicy()
	p.Dedup.WindowEvents = n
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDuplicateEventLeavesCustomerUnchanged(t *testing.T) {
	p := DefaultPolicy()
	c := &schemas.Customer{CustomerID: "c"}
	e := purchase(t0, 1000)
	mustPurchase(t, p, c, e)
	i := interaction(t0+DayMs, "complaint")
	if _, err := p.ApplyInteraction(c, i); err != nil {
		t.Fatal(err)
	}
	before := clone(c)

	// The same purchase again, as a copy (ids compare by value), later and
	// with another amount: only kind and event_id matter.
	again := *e
	again.OccurredAt, again.AmountMinor = t0+2*DayMs, 5
	if _, err := p.ApplyPurchase(c, &again); !errors.Is(err, ErrDuplicateEvent) {
		t.Errorf("repeated purchase: err = %v, want ErrDuplicateEvent", err)
	}
	// A refund is a purchase record: same id, same kind byte.
	again.Kind = schemas.KindRefund
	if _, err := p.ApplyPurchase(c, &again); !errors.Is(err, ErrDuplicateEvent) {
		t.Errorf("refund with a purchase's id: err = %v, want ErrDuplicateEvent", err)
	}
	iAgain := *i
	if _, err := p.ApplyInteraction(c, &iAgain); !errors.Is(err, ErrDuplicateEvent) {
		t.Errorf("repeated interaction: err = %v, want ErrDuplicateEvent", err)
	}
	if !reflect.DeepEqual(c, before) {
		t.Fatalf("a duplicate changed the customer:\n%+v\nwant\n%+v", c, before)
	}
	if errors.Is(fmt.Errorf("x: %w", ErrDuplicateEvent), ErrInvalidEvent) {
		t.Error("ErrDuplicateEvent must be told apart from ErrInvalidEvent")
	}

	// An interaction sharing a purchase's id is another event.
	other := interaction(t0+3*DayMs, "visit")
	other.EventID = e.EventID
	if _, err := p.ApplyInteraction(c, other); err != nil {
		t.Errorf("interaction with a purchase's event_id: %v", err)
	}
	// Events without an id are never taken for duplicates, nor remembered.
	n := len(c.RecentEventHashes)
	for k := range 3 {
		anon := purchase(t0+4*DayMs, 100)
		anon.EventID = ""
		if _, err := p.ApplyPurchase(c, anon); err != nil {
			t.Fatalf("anonymous purchase %d: %v", k, err)
		}
	}
	if len(c.RecentEventHashes) != n {
		t.Errorf("anonymous events entered the window: %d entries, want %d", len(c.RecentEventHashes), n)
	}
	// The window holds hashes, never the ids.
	for _, h := range c.RecentEventHashes {
		if strings.Contains(fmt.Sprint(h), e.EventID) {
			t.Errorf("window entry %d looks like an id", h)
		}
	}
}

// TestDuplicateWindowBounds checks that the window is exactly WindowEvents
// events long: a repeat of the event WindowEvents-1 events back is caught,
// one WindowEvents back is applied again, and the state never holds more.
func TestDuplicateWindowBounds(t *testing.T) {
	for _, n := range []int{1, 2, 5, DefaultDedupWindow} {
		t.Run(fmt.Sprint("window", n), func(t *testing.T) {
			p := withWindow(t, n)
			c := &schemas.Customer{CustomerID: "c"}
			var evs []*schemas.Interaction
			for k := range 3 * n {
				e := interaction(t0+int64(k)*60_000, "visit")
				if _, err := p.ApplyInteraction(c, e); err != nil {
					t.Fatal(err)
				}
				evs = append(evs, e)
				if len(c.RecentEventHashes) > n {
					t.Fatalf("window holds %d entries, more than %d", len(c.RecentEventHashes), n)
				}
			}
			if len(c.RecentEventHashes) != n {
				t.Fatalf("window holds %d entries, want %d", len(c.RecentEventHashes), n)
			}
			// Oldest first: the last entry is the newest event.
			if got, want := c.RecentEventHashes[n-1], EventHash(kindInteraction, evs[len(evs)-1].EventID); got != want {
				t.Errorf("newest entry %d, want %d", got, want)
			}
			last := len(evs) - 1
			inside := *evs[last-(n-1)]
			if _, err := p.ApplyInteraction(c, &inside); !errors.Is(err, ErrDuplicateEvent) {
				t.Errorf("repeat %d events back: err = %v, want ErrDuplicateEvent", n-1, err)
			}
			outside := *evs[last-n]
			if _, err := p.ApplyInteraction(c, &outside); err != nil {
				t.Errorf("repeat %d events back (outside the window): %v", n, err)
			}
		})
	}
}

// TestDuplicateWindowPolicyChange checks that shrinking the window takes
// effect at once for the check and at the customer's next event for the
// state, and that 0 disables the check and empties the window.
func TestDuplicateWindowPolicyChange(t *testing.T) {
	wide, narrow, off := withWindow(t, 8), withWindow(t, 2), withWindow(t, 0)
	c := &schemas.Customer{CustomerID: "c"}
	var evs []*schemas.Purchase
	for k := range 8 {
		e := purchase(t0+int64(k)*60_000, 100)
		mustPurchase(t, wide, c, e)
		evs = append(evs, e)
	}
	// Under the narrow policy the 3rd newest is no longer remembered.
	old := *evs[5]
	before := clone(c)
	if _, err := narrow.ApplyPurchase(c, &old); err != nil {
		t.Fatalf("repeat outside the narrowed window: %v", err)
	}
	if len(c.RecentEventHashes) != 2 {
		t.Errorf("narrowed window holds %d entries, want 2", len(c.RecentEventHashes))
	}
	if c.Version != before.Version+1 {
		t.Errorf("version %d, want %d", c.Version, before.Version+1)
	}
	// Disabled: repeats apply and the window empties.
	again := *evs[7]
	mustPurchase(t, off, c, &again)
	mustPurchase(t, off, c, &again)
	if len(c.RecentEventHashes) != 0 {
		t.Errorf("disabled window holds %d entries", len(c.RecentEventHashes))
	}
}

func TestEventHashStable(t *testing.T) {
	// Stored state depends on these values: they must never change.
	f := func(kind byte, id string, want uint64) {
		t.Helper()
		if got := uint64(EventHash(kind, id)); got != want {
			t.Errorf("EventHash(%q, %q) = %#x, want %#x", kind, id, got, want)
		}
	}
	f('p', "", 0xaf63ed4c8602096f)   // FNV-1a of "p"
	f('i', "", 0xaf63e44c8601fa24)   // FNV-1a of "i"
	f('p', "a", 0x08d54707b57562ca)  // FNV-1a of "pa"
	f('i', "e1", 0x2b812c192bba6426) // FNV-1a of "ie1"
	if EventHash('p', "x") == EventHash('i', "x") {
		t.Error("kinds do not separate the hashes")
	}
}

// dupEvent is one step of a history with repeats: an event of
// randomHistory, or a repeat (a copy) of an earlier one.
type dupEvent struct {
	randomEvent
	repeat      bool
	origApplied bool // for a repeat: whether its original applied
}

func copyEvent(ev randomEvent) randomEvent {
	switch {
	case ev.purchase != nil:
		e := *ev.purchase
		return randomEvent{purchase: &e}
	case ev.interaction != nil:
		e := *ev.interaction
		return randomEvent{interaction: &e}
	}
	return ev
}

// TestPropertyDuplicatesChangeNothing applies random histories to one
// customer, and the same histories with repeats inserted to another: each
// repeat is a copy of an earlier event (applied or rejected) with fewer than
// WindowEvents applied events since its original. Every repeat of an
// applied event must fail with ErrDuplicateEvent, every repeat of a rejected
// one must fail as its original did, and the two customers must end equal
// (compared by their stored encoding, the second one stored and reloaded at
// random points as the processor does).
func TestPropertyDuplicatesChangeNothing(t *testing.T) {
	windows := []int{1, 2, 3, 7, DefaultDedupWindow}
	repeats := 0
	for seed := uint64(0); seed < 400; seed++ {
		rng := rand.New(rand.NewPCG(seed, 13))
		n := windows[rng.IntN(len(windows))]
		p := withWindow(t, n)
		hist := randomHistory(rng, 1+rng.IntN(80))

		// The clean run, noting which events applied.
		clean := &schemas.Customer{CustomerID: "c"}
		applied := make([]bool, len(hist))
		for k, ev := range hist {
			_, applied[k] = p.applyRandom(clean, ev)
		}

		// The run with repeats. since[k] is the number of events applied
		// after event k; a repeat of k is allowed while since[k] < n (a
		// repeat of a rejected event is always allowed: it is rejected for
		// the same reason).
		var seq []dupEvent
		since := make([]int, len(hist))
		for k, ev := range hist {
			seq = append(seq, dupEvent{randomEvent: ev})
			if applied[k] {
				for j := range k {
					since[j]++
				}
			}
			for rng.IntN(3) == 0 {
				j := rng.IntN(k + 1)
				if hist[j].purchase == nil && hist[j].interaction == nil {
					continue // a timer evaluation is not an event
				}
				if applied[j] && since[j] >= n {
					continue
				}
				seq = append(seq, dupEvent{randomEvent: copyEvent(hist[j]), repeat: true, origApplied: applied[j]})
				// Another copy right away, as a retrying producer does.
				if rng.IntN(4) == 0 {
					seq = append(seq, dupEvent{randomEvent: copyEvent(hist[j]), repeat: true, origApplied: applied[j]})
				}
			}
		}

		dirty := &schemas.Customer{CustomerID: "c"}
		for _, ev := range seq {
			before := clone(dirty)
			var err error
			switch {
			case ev.purchase != nil:
				_, err = p.ApplyPurchase(dirty, ev.purchase)
			case ev.interaction != nil:
				_, err = p.ApplyInteraction(dirty, ev.interaction)
			default:
				p.Evaluate(dirty, ev.evalAt)
			}
			if ev.repeat {
				repeats++
				if err == nil {
					t.Fatalf("seed %d (window %d): a repeat applied: %+v", seed, n, ev.randomEvent)
				}
				if dup := errors.Is(err, ErrDuplicateEvent); dup != ev.origApplied {
					t.Fatalf("seed %d (window %d): repeat of an event applied=%v failed with %v", seed, n, ev.origApplied, err)
				}
				if !reflect.DeepEqual(dirty, before) {
					t.Fatalf("seed %d (window %d): a rejected repeat changed the customer", seed, n)
				}
			}
			if len(dirty.RecentEventHashes) > n {
				t.Fatalf("seed %d: window holds %d entries, more than %d", seed, len(dirty.RecentEventHashes), n)
			}
			if rng.IntN(5) == 0 {
				dirty = roundTrip(t, dirty)
			}
		}
		if got, want := encode(t, dirty), encode(t, clean); !bytes.Equal(got, want) {
			t.Fatalf("seed %d (window %d): customers differ:\nwith repeats %+v\nwithout      %+v", seed, n, dirty, clean)
		}
	}
	if repeats < 2000 {
		t.Errorf("only %d repeats tried: the histories are too tame", repeats)
	}
}

// TestPropertyDuplicateErrorOnlyForRepeats checks the other direction: in
// histories of distinct ids nothing is ever a duplicate, whatever the
// window.
func TestPropertyDuplicateErrorOnlyForRepeats(t *testing.T) {
	p := withWindow(t, MaxDedupWindow)
	for seed := uint64(0); seed < 100; seed++ {
		rng := rand.New(rand.NewPCG(seed, 17))
		c := &schemas.Customer{CustomerID: "c"}
		for _, ev := range randomHistory(rng, 200) {
			var err error
			switch {
			case ev.purchase != nil:
				_, err = p.ApplyPurchase(c, ev.purchase)
			case ev.interaction != nil:
				_, err = p.ApplyInteraction(c, ev.interaction)
			}
			if errors.Is(err, ErrDuplicateEvent) {
				t.Fatalf("seed %d: distinct event taken for a duplicate: %v", seed, err)
			}
		}
		if len(c.RecentEventHashes) == 0 || slices.Contains(c.RecentEventHashes[1:], c.RecentEventHashes[0]) {
			t.Fatalf("seed %d: window %v: want distinct entries", seed, c.RecentEventHashes)
		}
	}
}

func encode(t *testing.T, c *schemas.Customer) []byte {
	t.Helper()
	b, err := schemas.AppendCustomer(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func roundTrip(t *testing.T, c *schemas.Customer) *schemas.Customer {
	t.Helper()
	d := new(schemas.Customer)
	if err := schemas.DecodeCustomer(encode(t, c), d); err != nil {
		t.Fatal(err)
	}
	return d
}
