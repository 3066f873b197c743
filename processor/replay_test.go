package processor

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"valora/internal/kafkatest"
	"valora/schemas"
)

// history produces a seeded workload of both inputs: customers buy,
// refund and interact over two years, in roughly but not strictly
// increasing event time (some records are days late), with a few records
// that must be dead-lettered. It returns the number of records.
func (h *harness) history(t *testing.T, seed uint64, customers, events int) int {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	type ev struct {
		at  int64
		rec *kgo.Record
	}
	evs := make([]ev, 0, events)
	for i := range events {
		id := fmt.Sprintf("c%03d", rng.IntN(customers))
		// Mostly in order; one record in ten up to ten days late.
		at := day(0) + int64(i)*(730*dayMs/int64(events))
		if rng.IntN(10) == 0 {
			at -= rng.Int64N(10 * dayMs)
		}
		eid := fmt.Sprintf("s%d-e%d", seed, i)
		var r *kgo.Record
		switch k := rng.IntN(20); {
		case k < 8:
			r = h.purchase(schemas.Purchase{EventID: eid, CustomerID: id, OccurredAt: at, AmountMinor: 500 + rng.Int64N(50000)})
		case k == 8:
			r = h.purchase(schemas.Purchase{EventID: eid, CustomerID: id, OccurredAt: at, AmountMinor: 100, Kind: schemas.KindRefund})
		case k == 9:
			r = h.purchase(schemas.Purchase{EventID: eid, CustomerID: id, OccurredAt: at, AmountMinor: 100, Currency: "ZZZ"}) // dead letter
		default:
			ch := []schemas.Channel{schemas.ChannelEmail, schemas.ChannelWeb, schemas.ChannelApp, schemas.ChannelPhone}[rng.IntN(4)]
			r = h.interaction(schemas.Interaction{EventID: eid, CustomerID: id, OccurredAt: at, Channel: ch})
		}
		evs = append(evs, ev{at, r})
	}
	recs := make([]*kgo.Record, len(evs))
	for i, e := range evs {
		recs[i] = e.rec
	}
	h.b.Produce(t, recs...)
	return len(recs)
}

// bounds lists the inputs' start and end offsets now: a replay of
// everything produced so far.
func (h *harness) bounds(t *testing.T) Replay {
	t.Helper()
	adm := kadm.NewClient(h.b.Client(t))
	r := Replay{Start: map[string]map[int32]int64{}, End: map[string]map[int32]int64{}}
	kafkatest.Eventually(t, time.Minute, func() error {
		starts, err := adm.ListStartOffsets(t.Context(), h.topics.Interactions, h.topics.Purchases)
		if err == nil {
			err = starts.Error()
		}
		ends, err2 := adm.ListEndOffsets(t.Context(), h.topics.Interactions, h.topics.Purchases)
		if err2 == nil {
			err2 = ends.Error()
		}
		if err != nil || err2 != nil {
			return fmt.Errorf("list offsets: %v, %v", err, err2)
		}
		for _, l := range []struct {
			offs kadm.ListedOffsets
			dst  map[string]map[int32]int64
		}{{starts, r.Start}, {ends, r.End}} {
			l.offs.Each(func(o kadm.ListedOffset) {
				if l.dst[o.Topic] == nil {
					l.dst[o.Topic] = map[int32]int64{}
				}
				l.dst[o.Topic][o.Partition] = o.Offset
			})
		}
		return nil
	})
	return r
}

// replay runs a replay over dir until it ends by itself, and returns its
// dead-letter count. crashAfter > 0 crashes it (abandon: no commit) right
// after the commit that takes it past that many records, and then returns
// -1.
func (h *harness) replay(t *testing.T, dir, group string, b Replay, crashAfter int, tune ...func(*Config)) float64 {
	t.Helper()
	hit := make(chan struct{}, 1)
	if crashAfter > 0 {
		var total int // only the task goroutines' OnCommit touch it
		var mu sync.Mutex
		tune = append(tune, func(c *Config) {
			c.OnCommit = func(records int, _ time.Duration) {
				mu.Lock()
				defer mu.Unlock()
				if total += records; total >= crashAfter {
					select {
					case hit <- struct{}{}:
					default:
					}
				}
			}
		})
	}
	r := h.start(dir, group, append([]func(*Config){func(c *Config) { c.Replay = &b }}, tune...)...)
	if crashAfter > 0 {
		select {
		case <-hit:
		case <-time.After(2 * time.Minute):
			t.Fatal("replay did not reach the crash point within 2 minutes")
		}
		if err := r.shutdown(t, true); err != nil {
			t.Fatalf("crashed replay: %v", err)
		}
		return -1
	}
	select {
	case err := <-r.done:
		r.done <- err
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("replay did not end within 2 minutes")
	}
	dead := sumCounter(r.p.m.deadLettered)
	if rem := gaugeValue(t, r, "valora_replay_records_remaining"); rem != 0 {
		t.Errorf("replay ended with valora_replay_records_remaining %v, want 0", rem)
	}
	if err := r.shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	return dead
}

// stream reads a topic's records as "partition key value" strings, in
// partition then offset order.
func (h *harness) stream(t *testing.T, topic string) []string {
	t.Helper()
	recs := h.b.ConsumeAll(t, topic)
	slices.SortStableFunc(recs, func(a, b *kgo.Record) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = fmt.Sprintf("%d %s %x", r.Partition, r.Key, r.Value)
	}
	return out
}

// TestReplayDeterministic replays the same topics several ways (one big
// fetch after another, tiny fetches and commits, a write set that fills
// over and over, and a replay killed midway and resumed) and checks that each ends with the same state,
// customer by customer, and the same tier-change stream, record for
// record (the resumed one repeats a suffix of it, with the same event
// ids). Several seeds.
func TestReplayDeterministic(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			h := newHarness(t, 2)
			n := h.history(t, seed, 300, 3000)
			b := h.bounds(t)

			a := h.withOutputs()
			dirA := t.TempDir()
			deadA := a.replay(t, dirA, kafkatest.Name(t, "gA"), b, 0)
			want, wantStream := snapshot(t, dirA), a.stream(t, a.topics.TierChanges)
			if len(want) == 0 || len(wantStream) == 0 || deadA == 0 {
				t.Fatalf("replay A: %d customers, %d tier changes, %v dead letters of %d records", len(want), len(wantStream), deadA, n)
			}
			t.Logf("%d records: %d customers, %d tier changes, %v dead-lettered", n, len(want), len(wantStream), deadA)

			// Tiny fetches and commits: other batch boundaries.
			c := h.withOutputs()
			dirC := t.TempDir()
			c.replay(t, dirC, kafkatest.Name(t, "gC"), b, 0, func(cfg *Config) {
				cfg.CommitRecords = 7
				cfg.ClientOpts = append(cfg.ClientOpts, kgo.FetchMaxPartitionBytes(512), kgo.FetchMaxBytes(1024))
			})
			if got := snapshot(t, dirC); !reflect.DeepEqual(got, want) {
				t.Errorf("small fetches: state differs:\n%s", diffStates(got, want))
			}
			if got := c.stream(t, c.topics.TierChanges); !slices.Equal(got, wantStream) {
				t.Errorf("small fetches: tier-change stream differs (%d records, want %d)", len(got), len(wantStream))
			}

			// A write set so small that it fills every few dozen
			// customers (24 KiB per task: 8 KiB of index, the rest
			// entries of about 250 bytes): clean customers dropped to make
			// room, or a commit when the changed ones fill it. With a
			// decoded cache of two customers per task, the dropped ones
			// are read from the store again.
			w := h.withOutputs()
			dirW := t.TempDir()
			w.replay(t, dirW, kafkatest.Name(t, "gW"), b, 0, func(cfg *Config) {
				cfg.WriteSetBytes = 2 * (24 << 10)
				cfg.CacheCustomers = 4
			})
			if got := snapshot(t, dirW); !reflect.DeepEqual(got, want) {
				t.Errorf("small write set: state differs:\n%s", diffStates(got, want))
			}
			if got := w.stream(t, w.topics.TierChanges); !slices.Equal(got, wantStream) {
				t.Errorf("small write set: tier-change stream differs (%d records, want %d)", len(got), len(wantStream))
			}

			// Every commit waiting for one slot (bigBatchSlots): the
			// tasks' commits one at a time, in whatever order they get it.
			defer func(bytes, slots int) { bigBatchBytes, bigBatchSlots = bytes, slots }(bigBatchBytes, bigBatchSlots)
			bigBatchBytes, bigBatchSlots = 0, 1
			o := h.withOutputs()
			dirO := t.TempDir()
			o.replay(t, dirO, kafkatest.Name(t, "gO"), b, 0, func(cfg *Config) { cfg.CommitRecords = 20 })
			if got := snapshot(t, dirO); !reflect.DeepEqual(got, want) {
				t.Errorf("one commit slot: state differs:\n%s", diffStates(got, want))
			}
			if got := o.stream(t, o.topics.TierChanges); !slices.Equal(got, wantStream) {
				t.Errorf("one commit slot: tier-change stream differs (%d records, want %d)", len(got), len(wantStream))
			}
			bigBatchBytes, bigBatchSlots = 1<<20, 2

			// Killed midway, then resumed on the same store.
			k := h.withOutputs()
			dirK, groupK := t.TempDir(), kafkatest.Name(t, "gK")
			k.replay(t, dirK, groupK, b, n/2, func(cfg *Config) { cfg.CommitRecords = 50 })
			if done := handledInDir(t, dirK); done >= n {
				t.Fatalf("the crash came after the end (%d of %d records committed): nothing to resume", done, n)
			}
			k.replay(t, dirK, groupK, b, 0)
			if got := snapshot(t, dirK); !reflect.DeepEqual(got, want) {
				t.Errorf("resumed: state differs:\n%s", diffStates(got, want))
			}
			if got := dedupe(k.stream(t, k.topics.TierChanges)); !slices.Equal(got, wantStream) {
				t.Errorf("resumed: tier-change stream without repeats differs (%d records, want %d)", len(got), len(wantStream))
			}

			// A finished replay run again: every task finds its work
			// done at load, possibly before the poll loop starts, and
			// the run ends (it hung when the tasks finished before the
			// processor had its partition count), changing nothing.
			for range 5 {
				k.replay(t, dirK, groupK, b, 0)
			}
			if got := snapshot(t, dirK); !reflect.DeepEqual(got, want) {
				t.Errorf("finished replay run again: state differs:\n%s", diffStates(got, want))
			}
		})
	}
}

// TestReplayReusesDecodedCustomers replays a history in which each task
// changes more customers per commit cycle than pend holds (pendMax), in
// two cycles, with a decoded cache of two customers per task, and with
// none: customers encoded mid-cycle, evicted from the cache (or held by
// pend alone) and reused (spare) to decode others, among them customers
// the first cycle left clean in the write set. Each must end as a replay
// whose cache holds every customer (so that none is reused) does, state
// and tier changes: a reused customer that kept its place in the timer
// clock's dues moved another customer's deadline.
func TestReplayReusesDecodedCustomers(t *testing.T) {
	for _, seed := range []uint64{4, 5} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			h := newHarness(t, 2)
			h.history(t, seed, 3*pendMax, 16*pendMax)
			b := h.bounds(t)
			twoCycles := func(cfg *Config) {
				cfg.CommitInterval = time.Hour
				cfg.CommitRecords = 4 * pendMax // of about 8 per task
			}
			ref := h.withOutputs()
			dirRef := t.TempDir()
			ref.replay(t, dirRef, kafkatest.Name(t, "gRef"), b, 0, twoCycles, func(cfg *Config) { cfg.CacheCustomers = 1 << 20 })
			want, wantStream := snapshot(t, dirRef), ref.stream(t, ref.topics.TierChanges)
			if len(want) < 2*pendMax || len(wantStream) == 0 {
				t.Fatalf("reference replay: %d customers, %d tier changes", len(want), len(wantStream))
			}
			for _, cache := range []int{4, -1} {
				c := h.withOutputs()
				dirC := t.TempDir()
				c.replay(t, dirC, kafkatest.Name(t, fmt.Sprint("gC", cache)), b, 0, twoCycles, func(cfg *Config) { cfg.CacheCustomers = cache })
				if got := snapshot(t, dirC); !reflect.DeepEqual(got, want) {
					t.Errorf("cache %d: state differs:\n%s", cache, diffStates(got, want))
				}
				if got := c.stream(t, c.topics.TierChanges); !slices.Equal(got, wantStream) {
					t.Errorf("cache %d: tier-change stream differs (%d records, want %d)", cache, len(got), len(wantStream))
				}
			}
		})
	}
}

// TestFinishedReplayEndsWhileTopicsAreChecked runs a finished replay again
// while the broker holds the processor's topic check for a few seconds
// (the creation of a new output topic, a request the client sends on a
// connection of its own): the group must not start tasks before the check
// is done. When it did, the tasks found their work done at load before the
// processor knew its partition count, and the run never ended. It needs
// kfake, to hold the request.
func TestFinishedReplayEndsWhileTopicsAreChecked(t *testing.T) {
	b, cluster := kafkatest.NewKfake(t)
	h := newHarnessOn(t, b, 2).withOutputs()
	h.history(t, 11, 30, 300)
	bounds := h.bounds(t)
	dir, group := t.TempDir(), kafkatest.Name(t, "g")
	h.replay(t, dir, group, bounds, 0)
	want := snapshot(t, dir)

	out := kafkatest.Name(t, "tier-changes")
	var held atomic.Bool
	cluster.ControlKey(int16(kmsg.CreateTopics), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		for _, topic := range req.(*kmsg.CreateTopicsRequest).Topics {
			if topic.Topic == out && held.CompareAndSwap(false, true) {
				cluster.SleepControl(func() { time.Sleep(5 * time.Second) })
			}
		}
		return nil, nil, false // the broker answers it
	})
	h.replay(t, dir, group, bounds, 0, func(c *Config) {
		c.Topics.TierChanges = out
		c.CreateTopics = true
	})
	if !held.Load() {
		t.Fatal("the topic check was never held: the test checks nothing")
	}
	if got := snapshot(t, dir); !reflect.DeepEqual(got, want) {
		t.Errorf("finished replay run again: state differs:\n%s", diffStates(got, want))
	}
}

// TestReplayEqualsLive checks that a replay over topics a live processor
// (event time) has processed ends with the same scores, tier, stage and
// counts for every customer.
func TestReplayEqualsLive(t *testing.T) {
	h := newHarness(t, 2)
	n := h.history(t, 7, 25, 800)
	dirL := t.TempDir()
	live := h.start(dirL, kafkatest.Name(t, "live"), func(c *Config) { c.Time = TimeEvent })
	live.waitHandled(t, float64(n))
	if err := live.shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	r := h.withOutputs()
	dirR := t.TempDir()
	r.replay(t, dirR, kafkatest.Name(t, "replay"), h.bounds(t), 0)
	got, want := snapshot(t, dirR), snapshot(t, dirL)
	if len(got) != len(want) {
		t.Fatalf("replay has %d customers, live %d", len(got), len(want))
	}
	for id, l := range want {
		g := got[id]
		// The version counts intermediate changes, and the duplicate
		// window lists event ids in application order: both depend on
		// the order within a fetch. The customer itself must not.
		g.Version, l.Version = 0, 0
		g.RecentEventHashes, l.RecentEventHashes = nil, nil
		if !reflect.DeepEqual(g, l) {
			t.Errorf("customer %s:\nreplay %+v\n  live %+v", id, g, l)
		}
	}
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func diffStates(got, want map[string]schemas.Customer) string {
	var b bytes.Buffer
	for id, w := range want {
		if g, ok := got[id]; !ok || !reflect.DeepEqual(g, w) {
			fmt.Fprintf(&b, "%s:\n got %+v\nwant %+v\n", id, g, w)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			fmt.Fprintf(&b, "%s: not in the reference\n", id)
		}
	}
	return b.String()
}
