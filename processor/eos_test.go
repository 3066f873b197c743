package processor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/kafkatest"
	"valora/schemas"
)

// TestScaleOutCrashes runs one workload through a single clean instance,
// then through a group of instances that scales 1 → 3 → 2 while instances
// crash at random points (no commit, open transactions left behind) and
// come back, half of the time with an empty state directory (a lost disk:
// the task restores from the changelog from the start). Over many seeds
// and in both modes it checks what downstream systems rely on:
//
//   - each customer's tier changes, read with read_committed, form a chain:
//     versions strictly increasing, each previous_tier the tier before;
//   - exactly-once: no event_id appears twice; at-least-once: a repeated
//     event_id repeats the same record;
//   - the distinct tier changes equal the clean run's, and each customer's
//     last change matches its final state;
//   - the final state of every customer, read from the changelog, equals
//     the clean run's.
func TestScaleOutCrashes(t *testing.T) {
	seeds := 4
	if testing.Short() {
		seeds = 2
	}
	for _, g := range []Guarantee{ExactlyOnce, AtLeastOnce} {
		t.Run(string(g), func(t *testing.T) {
			for seed := range uint64(seeds) {
				t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { scaleOutCrashes(t, g, seed) })
			}
		})
	}
}

func scaleOutCrashes(t *testing.T, g Guarantee, seed uint64) {
	h := newHarness(t, 4)
	recs := h.workloadRecords(t, seed+1, 120)
	n := len(recs)
	rng := rand.New(rand.NewPCG(seed, 7))
	// The input arrives in chunks while the group changes, and small
	// fetches make many commit cycles, so that crashes land mid-stream.
	chunks, fed := 0, 0
	feed := func() {
		if chunks < 8 {
			lo, hi := chunks*n/8, (chunks+1)*n/8
			h.b.Produce(t, recs[lo:hi]...)
			chunks, fed = chunks+1, hi
		}
	}
	small := kgo.FetchMaxPartitionBytes(2 << 10)

	run := h.withOutputs()
	group := kafkatest.Name(t, "g")
	var commits atomic.Int64
	var slots [3]*running
	var procs [3]atomic.Pointer[Processor]
	var own, killAt [3]atomic.Int64 // per slot: commits, and the commit to crash at (0: none)
	dirs := [3]string{}
	start := func(i int, fresh bool) {
		if fresh || dirs[i] == "" {
			dirs[i] = filepath.Join(t.TempDir(), fmt.Sprint("slot", i))
		}
		own[i].Store(0)
		procs[i].Store(nil)
		slots[i] = run.start(dirs[i], group, func(c *Config) {
			c.Guarantee = g
			c.CommitRecords = 1 + rng.IntN(40)
			c.ClientOpts = append(c.ClientOpts, small)
			c.OnCommit = func(int, time.Duration) {
				commits.Add(1)
				if k := own[i].Add(1); k == killAt[i].Load() {
					if p := procs[i].Load(); p != nil {
						go p.kill() // mid-stream: the other tasks are anywhere in their cycles
					}
				}
			}
		})
		procs[i].Store(slots[i].p)
	}
	// progress feeds a chunk, then waits for k more commits by any
	// instance, or until the group has handled everything fed.
	progress := func(k int) {
		feed()
		target := commits.Load() + int64(k)
		kafkatest.Eventually(t, time.Minute, func() error {
			handled := groupHandled(t, h, group)
			if commits.Load() >= target || handled >= int64(fed) {
				return nil
			}
			return fmt.Errorf("%d commits, waiting for %d; the group committed %d of the %d records fed", commits.Load(), target, handled, fed)
		})
	}
	start(0, false)
	progress(1 + rng.IntN(6))
	start(1, false)
	start(2, false)
	progress(1 + rng.IntN(6))
	crashes := 0
	for range 3 {
		// Crash an instance at one of its next commits, while a chunk
		// is being processed (or at once if it has nothing left to do).
		i := rng.IntN(3)
		killAt[i].Store(own[i].Load() + 1 + int64(rng.IntN(3)))
		progress(1 + rng.IntN(8))
		slots[i].shutdown(t, true)
		killAt[i].Store(0)
		crashes++
		start(i, rng.IntN(2) == 0)
	}
	// Scale in to two: one instance leaves cleanly.
	i := rng.IntN(3)
	if err := slots[i].shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	slots[i] = nil
	for chunks < 8 {
		feed()
	}
	kafkatest.Eventually(t, 2*time.Minute, func() error {
		if got := groupHandled(t, h, group); got < int64(n) {
			return fmt.Errorf("group committed %d of %d records", got, n)
		}
		return nil
	})
	for _, s := range slots {
		if s != nil {
			if err := s.shutdown(t, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("%d records, %d commits, %d crashes", n, commits.Load(), crashes)

	// The clean run, over the same topics.
	ref := h.withOutputs()
	refGroup := kafkatest.Name(t, "ref")
	r := ref.start(filepath.Join(t.TempDir(), "ref"), refGroup, func(c *Config) { c.Guarantee = g })
	r.waitHandled(t, float64(n))
	if err := r.shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	want := changelogCustomers(t, h, refGroup+"-changelog")
	wantOut := dedupOutputs(t, ref, ref.topics.TierChanges)

	// The chains, read as a downstream consumer does.
	byCustomer := map[string][]schemas.TierChange{}
	seen := map[string]schemas.TierChange{}
	repeats := 0
	for _, rec := range h.b.ConsumeAll(t, run.topics.TierChanges) {
		var tc schemas.TierChange
		if err := h.codec.DecodeTierChange(rec.Value, &tc); err != nil {
			t.Fatal(err)
		}
		if prev, ok := seen[tc.EventID]; ok {
			repeats++
			if g == ExactlyOnce {
				t.Fatalf("exactly-once: event %s delivered twice", tc.EventID)
			}
			if !reflect.DeepEqual(prev, tc) {
				t.Fatalf("event %s repeated with different content:\n%+v\n%+v", tc.EventID, prev, tc)
			}
			continue
		}
		seen[tc.EventID] = tc
		byCustomer[tc.CustomerID] = append(byCustomer[tc.CustomerID], tc)
	}
	t.Logf("%d distinct tier changes, %d repeats", len(seen), repeats)
	for _, changes := range byCustomer {
		checkChain(t, changes)
	}
	if !reflect.DeepEqual(seen, wantOut) {
		t.Fatalf("tier changes differ from the clean run: got %d distinct, want %d", len(seen), len(wantOut))
	}

	got := changelogCustomers(t, h, group+"-changelog")
	if len(got) != len(want) {
		t.Fatalf("customers in the changelog: got %d, want %d", len(got), len(want))
	}
	for id, w := range want {
		if g := got[id]; !reflect.DeepEqual(g, w) {
			t.Fatalf("customer %s differs from the clean run:\n got %+v\nwant %+v", id, g, w)
		}
		if changes := byCustomer[id]; len(changes) > 0 {
			last := changes[len(changes)-1]
			if last.Tier != w.Tier || last.ChurnRisk != w.ChurnRisk || last.LifecycleStage != w.LifecycleStage {
				t.Fatalf("customer %s: last change (%s, churn %v, %s) is not its final state (%s, churn %v, %s)",
					id, last.Tier, last.ChurnRisk, last.LifecycleStage, w.Tier, w.ChurnRisk, w.LifecycleStage)
			}
		}
	}
}

// changelogCustomers reads a changelog topic's committed state.
func changelogCustomers(t *testing.T, h *harness, topic string) map[string]schemas.Customer {
	t.Helper()
	raw, err := ChangelogState(h.b.ConsumeAll(t, topic))
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]schemas.Customer, len(raw))
	for id, v := range raw {
		var c schemas.Customer
		if err := schemas.DecodeCustomer(v, &c); err != nil {
			t.Fatalf("decode customer %s from the changelog: %v", id, err)
		}
		// The timer entry is the store's bookkeeping; a restore indexes it
		// anew and a later commit of the customer carries the new one.
		c.TimerAt = 0
		out[id] = c
	}
	return out
}

// groupHandled sums the group's committed offsets on the input topics:
// the records whose effects are durable (offsets start at 0).
func groupHandled(t *testing.T, h *harness, group string) int64 {
	t.Helper()
	adm := kadm.NewClient(h.b.Client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0 // the group may not exist yet
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == h.topics.Interactions || o.Topic == h.topics.Purchases {
			n += max(0, o.At)
		}
	})
	return n
}
