package processor

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/deliverytest"
	"valora/processor/changelog"
	"valora/schemas"
	"valora/state"
)

// TestErasure erases a customer (the right to erasure) and checks each
// promise: a last TierChange with cause ERASURE and no personal fields; no
// state, timer or cache entry left; a changelog tombstone, so that a
// restore on an empty directory does not bring the customer back; after a
// Pebble compaction the id is in no file of the state directory; and a
// later event for the id starts a new customer. Erasing an unknown
// customer changes nothing, and a malformed request is dead-lettered.
func TestErasure(t *testing.T) {
	const gone, kept = "erase-me-7f3a9c", "keep-me-51d2"
	h := newHarness(t, 2)
	dir := filepath.Join(t.TempDir(), "a")
	group := h.topics.Purchases + "-g"
	r := h.start(dir, group)
	r.send(h.buy(gone, day(0), 9000), h.buy(gone, day(3), 4000), h.buy(gone, day(5), 12000),
		h.buy(kept, day(1), 2000), h.buy(kept, day(6), 3000))
	if n := gaugeValue(t, r, "valora_event_latency_seconds"); n != 5 {
		t.Errorf("valora_event_latency_seconds has %v samples after 5 applied records, want 5", n)
	}

	bad := h.erasure("someone-else", day(9))
	bad.Key = []byte("not-the-customer") // key and customer_id disagree
	r.send(h.erasure(gone, day(10)), h.erasure("never-seen", day(10)), bad)
	if err := r.shutdown(t, false); err != nil {
		t.Fatal(err)
	}

	// The output: the erased customer's chain ends with an ERASURE change
	// that says nothing about the customer but its id.
	ch := deliverytest.ReadChanges(t, h.b, h.codec, h.topics.TierChanges, true)
	ch.CheckChains(t)
	changes := ch.ByCustomer[gone]
	if len(changes) < 2 {
		t.Fatalf("%d tier changes for %s, want its history and an erasure", len(changes), gone)
	}
	last, prev := changes[len(changes)-1], changes[len(changes)-2]
	want := schemas.TierChange{
		EventID: gone + ":" + strconv.FormatInt(prev.Version+1, 10), CustomerID: gone, Version: prev.Version + 1,
		OccurredAt: day(10), Cause: schemas.CauseErasure, Currency: last.Currency, PolicyVersion: last.PolicyVersion,
	}
	if last.Currency == "" || last.PolicyVersion == "" || !reflect.DeepEqual(last, want) {
		t.Errorf("last change of %s:\n got %+v\nwant %+v (with the base currency and policy version)", gone, last, want)
	}
	if _, ok := ch.ByCustomer["never-seen"]; ok {
		t.Errorf("erasing a customer valora never saw published a change")
	}
	dlq := h.b.ConsumeAll(t, h.topics.DeadLetter)
	if len(dlq) != 1 || header(dlq[0], HeaderReason) != ReasonKeyMismatch || header(dlq[0], HeaderSourceTopic) != h.topics.Erasures {
		t.Errorf("dead letters: %d, want the erasure request with a mismatched key (%s)", len(dlq), ReasonKeyMismatch)
	}

	// The state: gone from customers and timers; the other customer stays.
	snap := snapshot(t, dir)
	if _, ok := snap[gone]; ok {
		t.Errorf("%s is still in the store", gone)
	}
	if _, ok := snap[kept]; !ok {
		t.Errorf("%s is missing from the store", kept)
	}
	assertNoTimer(t, dir, gone)

	// The changelog: a tombstone with its cycle; the state it describes
	// lacks the customer, also once compacted.
	cl := h.b.ConsumeAll(t, group+"-changelog")
	tombstones := 0
	for _, rec := range cl {
		if string(rec.Key) == "c"+gone && rec.Value == nil {
			tombstones++
			if _, _, deleted, err := changelog.CustomerRecord(rec); err != nil || !deleted {
				t.Errorf("tombstone: deleted %v, err %v", deleted, err)
			}
		}
	}
	if tombstones != 1 {
		t.Errorf("%d changelog tombstones for %s, want 1", tombstones, gone)
	}
	for _, recs := range [][]*kgo.Record{cl, deliverytest.Compact(cl)} {
		st, err := changelog.ReadState(context.Background(), t.TempDir(), recs)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := st[gone]; ok {
			t.Errorf("the changelog's state still holds %s", gone)
		}
		if _, ok := st[kept]; !ok {
			t.Errorf("the changelog's state lacks %s", kept)
		}
	}

	// After a compaction, the id is in no file of the state directory.
	if err := state.Purge(context.Background(), state.Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	if files := grepDir(t, dir, gone); len(files) > 0 {
		t.Errorf("after compaction, %q is still in %v", gone, files)
	}
	if files := grepDir(t, dir, kept); len(files) == 0 {
		t.Errorf("%q is in no file of the state directory: the search finds nothing", kept)
	}
	if snap := snapshot(t, dir); len(snap) != 1 || snap[kept].Purchases != 2 {
		t.Errorf("after the purge the store holds %d customers (%s: %+v), want %s alone", len(snap), kept, snap[kept], kept)
	}

	// A new instance on an empty directory restores without the customer;
	// a later purchase starts a new one.
	dir2 := filepath.Join(t.TempDir(), "b")
	r2 := h.start(dir2, group)
	r2.send(h.buy(gone, day(20), 1500))
	if err := r2.shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	c, ok := snapshot(t, dir2)[gone]
	if !ok || c.Purchases != 1 || c.MonetaryMinor != 1500 || c.FirstSeen != day(20) {
		t.Errorf("after the erasure, %s is %+v; want a new customer with one purchase of 1500 on day 20", gone, c)
	}
	// Its changes follow the erasure and start a new chain. (Their event
	// ids repeat the erased customer's first ones: a consumer that keeps
	// event ids to drop repeats forgets them on ERASURE.)
	var after []schemas.TierChange
	erased := false
	for _, rec := range h.b.ConsumeAll(t, h.topics.TierChanges) {
		var tc schemas.TierChange
		if err := h.codec.DecodeTierChange(rec.Value, &tc); err != nil {
			t.Fatal(err)
		}
		switch {
		case tc.CustomerID != gone:
		case tc.Cause == schemas.CauseErasure:
			erased = true
		case erased:
			after = append(after, tc)
		}
	}
	if len(after) != 1 || after[0].PreviousTier != nil || after[0].Version != 1 || after[0].Monetary != 1500 || after[0].Cause != schemas.CausePurchase {
		t.Errorf("changes of %s after its erasure: %+v; want one PURCHASE change of a new customer (version 1, no previous tier, 1500)", gone, after)
	}
}

// assertNoTimer fails the test if the store in dir has a timer for id.
func assertNoTimer(t *testing.T, dir, id string) {
	t.Helper()
	st, err := state.Open(state.Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	parts, err := st.Partitions()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		err := st.ScanTimers(p, 0, 1<<62, func(_ int64, cid []byte) error {
			if string(cid) == id {
				t.Errorf("task %d still has a timer for %s", p, id)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// grepDir lists the files under dir that contain s.
func grepDir(t *testing.T, dir, s string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(s)) {
			out = append(out, filepath.Base(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
