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

	"valora/internal/deliverytest"
	"valora/internal/kafkatest"
	"valora/processor/changelog"
	"valora/schemas"
)

// TestScaleOutCrashes runs one workload through a single clean instance,
// then through a group of instances that scales 1 → 3 → 2 while instances
// crash at random points (Processor.abandon at a random step of a commit
// cycle: once it is durable, before it is sent, or once Kafka has it and
// before the store does; no commit after, open transactions left behind)
// and come back, half of the time with an empty state directory (a lost disk:
// the task restores from the changelog from the start; odd seeds restore
// through ingested tables, even ones through batches). Over many seeds
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
	crashBothModes(t, 3, 1, scaleOutCrashes)
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
	adm := kadm.NewClient(h.b.Client(t))
	group := kafkatest.Name(t, "g")
	var commits atomic.Int64
	var slots [3]*running
	var crashers [3]*crasher // per slot: its crash, at a step chosen at start and a cycle set later
	dirs := [3]string{}
	start := func(i int, fresh bool) {
		if fresh || dirs[i] == "" {
			dirs[i] = filepath.Join(t.TempDir(), fmt.Sprint("slot", i))
		}
		crashers[i] = newCrasher(crashWhere(rng.IntN(3)), 0)
		slots[i] = run.startCrashing(dirs[i], group, crashers[i], func(c *Config) {
			c.Guarantee = g
			// Event time: an instance that waits for a crashed one's open
			// transaction (TransactionTimeout) stays idle past
			// IdleTimeout, and the wall clock would move its tasks'
			// stream time, which the clean run's does not.
			c.Time = TimeEvent
			// An instance that comes back with a lost disk has a new
			// transactional id, so the transaction its crashed run left
			// open ends only when the broker times it out; until then it
			// holds read_committed reads of the outputs and the new
			// owners' restores. 10s (plus the broker's abort scan, 10s
			// by default) keeps that well inside the reads' minute.
			c.TransactionTimeout = 10 * time.Second
			if seed%2 == 1 {
				c.restoreIngestAt = 1 // odd seeds restore through ingested tables
			}
			c.CommitRecords = 1 + rng.IntN(40)
			c.ClientOpts = append(c.ClientOpts, small)
			c.OnCommit = func(int, time.Duration) { commits.Add(1) }
		})
	}
	// progress feeds a chunk, then waits for k more commits by any
	// instance, or until the group has handled everything fed.
	progress := func(k int) {
		feed()
		target := commits.Load() + int64(k)
		kafkatest.Eventually(t, time.Minute, func() error {
			handled := deliverytest.GroupHandled(adm, group, h.topics.Interactions, h.topics.Purchases)
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
	crashes, behind := 0, 0
	for range 3 {
		// Crash an instance in one of its next cycles, while a chunk is
		// being processed (the other tasks are anywhere in theirs), or at
		// once if it has nothing left to do.
		i := rng.IntN(3)
		crashers[i].crashIn(1 + int64(rng.IntN(3)))
		progress(1 + rng.IntN(8))
		slots[i].shutdown(t, true)
		if c := crashers[i]; c.crashed() && c.where == afterSend {
			checkBehind(t, dirs[i], c.lost)
			behind++
		}
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
		if got := deliverytest.GroupHandled(adm, group, h.topics.Interactions, h.topics.Purchases); got < int64(n) {
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
	t.Logf("%d records, %d commits, %d crashes (%d once Kafka had a cycle the store did not)", n, commits.Load(), crashes, behind)

	// The clean run, over the same topics.
	ref := h.withOutputs()
	refGroup := kafkatest.Name(t, "ref")
	r := ref.start(filepath.Join(t.TempDir(), "ref"), refGroup, func(c *Config) { c.Guarantee, c.Time = g, TimeEvent })
	r.waitHandled(t, float64(n))
	if err := r.shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	want := deliverytest.ChangelogCustomers(t, h.b, refGroup+"-changelog")
	wantOut := dedupOutputs(t, ref, ref.topics.TierChanges)

	ch := deliverytest.ReadChanges(t, h.b, h.codec, run.topics.TierChanges, g == ExactlyOnce)
	t.Logf("%d distinct tier changes, %d repeats", len(ch.Distinct), ch.Repeats)
	ch.CheckChains(t)
	if !reflect.DeepEqual(ch.Distinct, wantOut) {
		t.Fatalf("tier changes differ from the clean run: got %d distinct, want %d", len(ch.Distinct), len(wantOut))
	}
	got := deliverytest.ChangelogCustomers(t, h.b, group+"-changelog")
	deliverytest.SameState(t, got, want)
	ch.CheckFinal(t, got)
	restoreCompacted(t, h, group+"-changelog", got)
}

// restoreCompacted checks that a changelog still holds the state want
// after Kafka compacts it: it writes what compaction may leave of topic
// (the last record of each key) to a new compacted topic, and a new
// instance with an empty store restores from it the same customers (through
// the restore's ingested tables).
func restoreCompacted(t *testing.T, h *harness, topic string, want map[string]schemas.Customer) {
	t.Helper()
	all := h.b.ConsumeAll(t, topic)
	compacted := deliverytest.Compact(all)
	full, err := changelog.ReadState(context.Background(), t.TempDir(), all)
	if err != nil {
		t.Fatal(err)
	}
	comp, err := changelog.ReadState(context.Background(), t.TempDir(), compacted)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(full, comp) {
		t.Fatalf("compaction changes the changelog's state: %d customers before, %d after", len(full), len(comp))
	}
	target := kafkatest.Name(t, "compacted")
	adm := kadm.NewClient(h.b.Client(t))
	resp, err := adm.CreateTopics(t.Context(), h.parts, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, target)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("create %s: %v", target, err)
	}
	recs := make([]*kgo.Record, len(compacted))
	for i, r := range compacted {
		recs[i] = &kgo.Record{Topic: target, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: r.Headers}
	}
	pcl := h.b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := pcl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", target, err)
	}
	t.Logf("changelog: %d records, %d after compaction", len(all), len(compacted))

	dir := filepath.Join(t.TempDir(), "compacted")
	r := h.start(dir, kafkatest.Name(t, "restore"), func(c *Config) {
		c.Topics.Changelog = target
		c.restoreIngestAt = 1 // through ingested tables, however small
	})
	kafkatest.Eventually(t, time.Minute, func() error {
		r.p.mu.Lock()
		defer r.p.mu.Unlock()
		loaded := 0
		for _, tk := range r.p.tasks {
			if tk.loaded.Load() {
				loaded++
			}
		}
		if loaded < int(h.parts) {
			return fmt.Errorf("%d of %d tasks restored", loaded, h.parts)
		}
		return nil
	})
	if err := r.shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	got := snapshot(t, dir)
	for id, c := range got {
		c.TimerAt = 0
		got[id] = c
	}
	deliverytest.SameState(t, got, want)
}
