package processor

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/kafkatest"
	"valora/processor/partition"
	"valora/schemas"
	"valora/state"
)

// TestLiveMergesBacklogAcrossFetches starts a live processor (kfake) on a
// backlog whose interactions take several fetches while the purchases of
// the same weeks come in the first: the records must be applied in
// event-time order across fetches, so none is late and each customer
// equals a replay's of the same records.
func TestLiveMergesBacklogAcrossFetches(t *testing.T) {
	h := newHarness(t, 1)
	const (
		interactions = 30000 // about 3 MiB: several fetches of 1 MiB
		purchases    = 600
		customers    = 500
	)
	var recs []*kgo.Record
	pad := make([]byte, 64)
	for i := range interactions {
		id := fmt.Sprintf("c%04d", i%customers)
		at := t0.Add(time.Duration(i) * time.Minute).UnixMilli()
		recs = append(recs, h.interaction(schemas.Interaction{EventID: fmt.Sprintf("i%d", i), CustomerID: id, OccurredAt: at, Attributes: map[string]string{"pad": string(pad)}}))
	}
	for i := range purchases {
		id := fmt.Sprintf("c%04d", (i*7)%customers)
		at := t0.Add(time.Duration(i*interactions/purchases)*time.Minute + 30*time.Second).UnixMilli()
		recs = append(recs, h.buy(id, at, 1000+int64(i)))
	}
	h.b.Produce(t, recs...)

	dirL := t.TempDir()
	live := h.start(dirL, kafkatest.Name(t, "live"), func(c *Config) { c.Time = TimeEvent })
	live.waitHandled(t, float64(len(recs)))
	checkMergedAsReplay(t, h, live, dirL, customers)
}

// checkMergedAsReplay stops live, which has handled every input record of
// h from an empty state in dirL, and fails the test if it counted a record
// late or if any of its customers (there must be customers) differs from
// a replay's of the same records.
func checkMergedAsReplay(t *testing.T, h *harness, live *running, dirL string, customers int) {
	t.Helper()
	if late := sumCounter(live.p.m.late); late != 0 {
		t.Errorf("%v records counted late: the inputs were not merged in event-time order across fetches", late)
	}
	if err := live.shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	r := h.withOutputs()
	dirR := t.TempDir()
	r.replay(t, dirR, kafkatest.Name(t, "replay"), h.bounds(t), 0)
	got, want := snapshot(t, dirR), snapshot(t, dirL)
	if len(got) != customers || len(want) != customers {
		t.Fatalf("customers: replay %d, live %d, want %d", len(got), len(want), customers)
	}
	for id, l := range want {
		g := got[id]
		g.Version, l.Version = 0, 0 // counts intermediate changes
		if !reflect.DeepEqual(g, l) {
			t.Errorf("customer %s:\nreplay %+v\n  live %+v", id, g, l)
		}
	}
}

// TestLiveMergeWaitsOutABusyTask starts a live processor on a backlog of
// two partitions whose interactions take many small fetches, and holds
// task 0's first commit for longer than mergeWaitMax, as a saturated
// instance catching up after downtime holds a busy task: its hand-off
// channel fills and the poll loop waits on it, so no fetch reaches task 1
// meanwhile. Task 1 must not take that for an input that cannot be
// fetched: it keeps waiting, applies both inputs in event-time order (none
// late), and every customer equals a replay's.
func TestLiveMergeWaitsOutABusyTask(t *testing.T) {
	h := newHarness(t, 2)
	const (
		perPart      = 100 // customers
		interactions = 6000
		purchases    = 300
	)
	var ids [2][]string
	for i := 0; len(ids[0]) < perPart || len(ids[1]) < perPart; i++ {
		id := fmt.Sprintf("c%04d", i)
		if p := partition.Murmur2.Partition([]byte(id), 2); len(ids[p]) < perPart {
			ids[p] = append(ids[p], id)
		}
	}
	var recs []*kgo.Record
	pad := make([]byte, 64)
	for p, pids := range ids {
		for i := range interactions {
			at := t0.Add(time.Duration(i) * time.Minute).UnixMilli()
			recs = append(recs, h.interaction(schemas.Interaction{EventID: fmt.Sprintf("i%d-%d", p, i), CustomerID: pids[i%perPart],
				OccurredAt: at, Attributes: map[string]string{"pad": string(pad)}}))
		}
		for i := range purchases {
			at := t0.Add(time.Duration(i*interactions/purchases)*time.Minute + 30*time.Second).UnixMilli()
			recs = append(recs, h.buy(pids[(i*7)%perPart], at, 1000+int64(i)))
		}
	}
	// Small batches, so that a fetch (which returns at least one whole
	// batch) brings few records.
	if err := h.b.Client(t, kgo.ProducerBatchMaxBytes(4<<10)).ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	hold := mergeWaitMax + 3*time.Second
	dirL := t.TempDir()
	live := h.launch(state.Options{Dir: dirL}, kafkatest.Name(t, "live"), func(p *Processor) {
		real := p.newSink
		p.newSink = func(cl *kgo.Client) sink { return &holdingSink{sink: real(cl), part: 0, hold: hold} }
	}, func(c *Config) {
		c.Time = TimeEvent
		c.ClientOpts = append(c.ClientOpts, kgo.FetchMaxPartitionBytes(8<<10))
	})
	live.waitHandled(t, float64(len(recs)))
	if d := live.p.handingTime(time.Now()); d < mergeWaitMax {
		t.Fatalf("the poll loop waited %v on the held task, under mergeWaitMax (%v): the test did not hold it up", d, mergeWaitMax)
	}
	checkMergedAsReplay(t, h, live, dirL, 2*perPart)
}

// holdingSink holds the first cycle of task part for hold before it sends
// it, as a task busy for that long would (one per task).
type holdingSink struct {
	sink
	part int32
	hold time.Duration
	held bool
}

func (s *holdingSink) send(ctx context.Context, co *cycleOut) error {
	if co.part == s.part && !s.held {
		s.held = true
		select {
		case <-time.After(s.hold):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.sink.send(ctx, co)
}

// TestMergeWaitCountsOnlyFreePolling checks waitFor's clock without a
// broker: a wait for a source with more to read ends in giving up once
// mergeWaitMax has passed, less the time the poll loop spent handing
// records meanwhile (finished handings and the one under way).
func TestMergeWaitCountsOnlyFreePolling(t *testing.T) {
	const src = srcInteractions
	for _, c := range []struct {
		name     string
		waited   time.Duration // since the wait began
		handed   time.Duration // handings that ended since then
		handing  time.Duration // the handing under way began this long ago (0: none)
		giveUpIs bool
	}{
		{"free poll loop, under the bound", mergeWaitMax - time.Second, 0, 0, false},
		{"free poll loop, past the bound", mergeWaitMax + time.Second, 0, 0, true},
		{"handings ended", mergeWaitMax + time.Second, 3 * time.Second, 0, false},
		{"a handing under way", mergeWaitMax + time.Second, 0, 3 * time.Second, false},
		{"both, past the bound all the same", mergeWaitMax + 5*time.Second, 2 * time.Second, 2 * time.Second, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &Processor{cfg: Config{IdleTimeout: time.Second}}
			p.ends.Store(int32(0), &endOffsets{end: [numSources]int64{src: 10}, at: time.Now()})
			tk := &task{p: p, part: 0}
			tk.topics[src] = "interactions"
			if !tk.waitFor(src) {
				t.Fatal("a source with more to read is not waited for")
			}
			// Move the clocks as the case says.
			now := time.Now()
			tk.waitFrom[src] = now.Add(-c.waited)
			p.handClock.Add(int64(c.handed))
			if c.handing > 0 {
				p.handClock.Add(-now.Add(-c.handing).UnixNano())
			}
			if got := !tk.waitFor(src); got != c.giveUpIs {
				t.Errorf("gave up: %v, want %v", got, c.giveUpIs)
			}
			if tk.gaveUp[src] != c.giveUpIs {
				t.Errorf("gaveUp = %v, want %v", tk.gaveUp[src], c.giveUpIs)
			}
		})
	}
}
