package processor

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/kafkatest"
	"valora/state"
)

// customersOf returns task part's customers in store as encoded values.
func customersOf(t *testing.T, store *state.Store, part int32) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	if err := store.ScanCustomers(part, func(id, v []byte) error {
		out[string(id)] = bytes.Clone(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStandbyTakeover runs two instances with one standby replica each:
// each keeps a copy of the other's tasks that follows their changelog
// until its store holds, for each, the owner's customers byte for byte at
// the owner's changelog position. When one instance crashes, the other
// takes its tasks over and its restore reads only what its copy had not
// seen (here at most the last transaction marker of each task, against the
// whole changelog of those tasks for an instance without a copy); then it processes on, and every customer ends
// with every purchase counted once.
func TestStandbyTakeover(t *testing.T) {
	h := newHarness(t, 4)
	group := kafkatest.Name(t, "g")
	withStandby := func(c *Config) { c.StandbyReplicas = 1 }
	dirB := t.TempDir()
	a := h.start(t.TempDir(), group, withStandby)
	b := h.start(dirB, group, withStandby)
	kafkatest.Eventually(t, 90*time.Second, func() error {
		if na, nb := len(ownedTasks(a)), len(ownedTasks(b)); na != 2 || nb != 2 {
			return fmt.Errorf("tasks owned: %d and %d, want 2 and 2", na, nb)
		}
		return nil
	})
	const n = 40
	var batch []*kgo.Record
	for d := 1; d <= 3; d++ {
		for i := range n {
			batch = append(batch, h.buy(fmt.Sprintf("cust-%02d", i), day(d), 100))
		}
	}
	h.b.Produce(t, batch...)
	kafkatest.Eventually(t, 90*time.Second, func() error {
		if got := a.handled() + b.handled(); got < 3*n {
			return fmt.Errorf("%v of %d records handled", got, 3*n)
		}
		return nil
	})

	// b's copies of a's tasks catch up with a's store.
	aTasks := slices.Sorted(func(yield func(int32) bool) {
		for p := range ownedTasks(a) {
			if !yield(p) {
				return
			}
		}
	})
	var changelogRecords int64
	kafkatest.Eventually(t, 90*time.Second, func() error {
		if g := gaugeValue(t, b, "valora_standby_tasks"); g != 2 {
			return fmt.Errorf("b runs %v standbys, want 2", g)
		}
		changelogRecords = 0
		for _, p := range aTasks {
			want, _, err := a.store.ChangelogNext(p)
			if err != nil {
				return err
			}
			got, found, err := b.store.ChangelogNext(p)
			if err != nil {
				return err
			}
			if !found || got != want {
				return fmt.Errorf("task %d: b's copy at changelog offset %d (found %v), a's store at %d", p, got, found, want)
			}
			changelogRecords += want
			ca, cb := customersOf(t, a.store, p), customersOf(t, b.store, p)
			if len(ca) == 0 || len(ca) != len(cb) {
				return fmt.Errorf("task %d: %d customers in a's store, %d in b's copy", p, len(ca), len(cb))
			}
			for id, v := range ca {
				if !bytes.Equal(cb[id], v) {
					return fmt.Errorf("task %d: customer %s differs in b's copy", p, id)
				}
			}
		}
		return nil
	})
	if sb := gaugeValue(t, b, "valora_standby_records_total"); sb < float64(changelogRecords) {
		t.Errorf("b's standbys read %v changelog records, want at least a's %d", sb, changelogRecords)
	}

	// a crashes; b takes over from its copies.
	restoredBefore := gaugeValue(t, b, "valora_restored_records_total")
	if err := a.shutdown(t, true); err != nil {
		t.Fatal(err)
	}
	kafkatest.Eventually(t, 90*time.Second, func() error {
		if nb := len(ownedTasks(b)); nb != 4 {
			return fmt.Errorf("b owns %d tasks, want 4", nb)
		}
		if r := readyTasks(b); r != 4 {
			return fmt.Errorf("%d of b's tasks restored", r)
		}
		return nil
	})
	// The copies stand at the offset after the last checkpoint; the last
	// cycle's transaction marker (exactly-once) follows it.
	if d := gaugeValue(t, b, "valora_restored_records_total") - restoredBefore; d > float64(len(aTasks)) {
		t.Errorf("b's takeover restored %v changelog offsets, want at most one transaction marker per task (%d): its copies were at the end (a full restore reads %d)", d, len(aTasks), changelogRecords)
	}
	if g := gaugeValue(t, b, "valora_standby_tasks"); g != 0 {
		t.Errorf("b still runs %v standbys after taking every task over", g)
	}

	batch = batch[:0]
	for i := range n {
		batch = append(batch, h.buy(fmt.Sprintf("cust-%02d", i), day(4), 100))
	}
	hb := b.handled()
	h.b.Produce(t, batch...)
	kafkatest.Eventually(t, 90*time.Second, func() error {
		if got := b.handled() - hb; got < n {
			return fmt.Errorf("b handled %v of the last %d records", got, n)
		}
		return nil
	})
	if err := b.shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	got := snapshot(t, dirB)
	if len(got) != n {
		t.Fatalf("%d customers in b's store, want %d", len(got), n)
	}
	for id, c := range got {
		if c.Purchases != 4 {
			t.Errorf("%s: %d purchases, want 4", id, c.Purchases)
		}
	}
}

// readyTasks counts r's tasks that are restored and processing.
func readyTasks(r *running) int {
	n := 0
	for _, tk := range ownedTasks(r) {
		if tk.loaded.Load() {
			n++
		}
	}
	return n
}
