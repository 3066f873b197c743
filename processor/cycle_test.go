package processor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/processor/changelog"
	"valora/processor/score"
	"valora/schemas"
	"valora/state"
)

// memSink takes commit cycles without a broker: it gives each record the
// next offset of its topic and partition, as Kafka would, and keeps a copy
// of every record of every cycle it accepts. fail, if set, refuses the
// cycles it returns an error for (a broker that refuses a transaction):
// their records are not kept.
type memSink struct {
	next     map[string]int64
	recs     []*kgo.Record
	cycles   int
	durables int
	fail     func(cycle int) error
}

func (s *memSink) send(_ context.Context, c *cycleOut) error {
	s.cycles++
	if s.fail != nil {
		if err := s.fail(s.cycles); err != nil {
			return err
		}
	}
	for _, r := range c.recs {
		k := fmt.Sprint(r.Topic, "/", r.Partition)
		r.Offset = s.next[k]
		s.next[k]++
		cp := *r
		cp.Key, cp.Value, cp.Headers = bytes.Clone(r.Key), bytes.Clone(r.Value), slices.Clone(r.Headers)
		s.recs = append(s.recs, &cp)
	}
	return nil
}

func (s *memSink) durable(*cycleOut) { s.durables++ }

func (s *memSink) topic(name string) []*kgo.Record {
	var out []*kgo.Record
	for _, r := range s.recs {
		if r.Topic == name {
			out = append(out, r)
		}
	}
	return out
}

// TestCommitCycleModel drives a task's commit cycle with no broker, over
// many seeds: records in chunks of random sizes, a commit after each, and
// at a random cycle a sink that refuses it (a failed transaction). After
// every accepted cycle the store must hold exactly the state a restore of
// the sink's changelog records gives, and its input positions must be the
// last checkpoint's; after a refused cycle the store must still be at the
// cycle before (it never holds an effect Kafka does not). Every tier
// change the sink took is a distinct (customer, version).
func TestCommitCycleModel(t *testing.T) {
	seeds := 8
	if testing.Short() {
		seeds = 3
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { testCommitCycleModel(t, uint64(seed)) })
	}
}

func testCommitCycleModel(t *testing.T, seed uint64) {
	ctx := context.Background()
	codec, err := schemas.NewCodec(ctx, schemas.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, parts: 1, codec: codec, topics: Topics{
		Interactions: "interactions", Purchases: "purchases", TierChanges: "tier-changes",
		DeadLetter: "dlq", Changelog: "changelog",
	}}
	st, err := state.Open(state.Options{Dir: t.TempDir(), CacheSize: 8 << 20, MemTableSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p, err := New(Config{Brokers: []string{"127.0.0.1:1"}, Group: "model", Topics: h.topics,
		Policy: score.DefaultPolicy(), Codec: codec, Store: st, Registerer: prometheus.NewRegistry(),
		Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	sink := &memSink{next: map[string]int64{}}
	failAt := 2 + rng.IntN(12)
	if seed%4 == 0 {
		failAt = -1 // a seed in four never fails
	}
	sink.fail = func(cycle int) error {
		if cycle == failAt {
			return errors.New("transaction refused")
		}
		return nil
	}
	tk := newTask(p, 0, nil)
	tk.sink = sink
	if err := tk.load(); err != nil {
		t.Fatal(err)
	}
	recs := h.workloadRecords(t, seed, 40)
	offsets := map[string]int64{}
	for _, r := range recs {
		r.Partition, r.Offset = 0, offsets[r.Topic]
		offsets[r.Topic]++
	}

	// The inputs' end offsets, as watchEnds would list them: the task
	// holds no input back for the other.
	p.ends.Store(int32(0), &endOffsets{end: [numSources]int64{0, offsets[h.topics.Purchases], 0}, at: time.Now()})
	var accepted []*kgo.Record // the changelog records of the accepted cycles
	for i := 0; i < len(recs); {
		n := 1 + rng.IntN(60)
		var f fetched
		f.at = t0
		f.recs[srcPurchases] = append(f.recs[srcPurchases], recs[i:min(i+n, len(recs))]...)
		i += n
		if err := tk.handle(f); err != nil {
			t.Fatalf("handle: %v", err)
		}
		before := storeState(t, st)
		beforeOffsets, err := st.Offsets(0)
		if err != nil {
			t.Fatal(err)
		}
		err = tk.commit()
		if sink.cycles == failAt {
			if err == nil {
				t.Fatalf("cycle %d: the sink refused it, but commit returned nil", failAt)
			}
			if got := storeState(t, st); !maps.EqualFunc(got, before, bytes.Equal) {
				t.Fatalf("cycle %d was refused, but the store changed (%d customers before, %d after)", failAt, len(before), len(got))
			}
			if got, _ := st.Offsets(0); !maps.Equal(got, beforeOffsets) {
				t.Fatalf("cycle %d was refused, but the store's positions moved: %v → %v", failAt, beforeOffsets, got)
			}
			return // a task whose commit fails stops
		}
		if err != nil {
			t.Fatalf("commit: %v", err)
		}
		accepted = sink.topic(h.topics.Changelog)
		want, err := changelog.ReadState(ctx, t.TempDir(), accepted)
		if err != nil {
			t.Fatal(err)
		}
		if got := storeState(t, st); !maps.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("after cycle %d the store holds %d customers, a restore of the changelog %d, or their values differ",
				sink.cycles, len(got), len(want))
		}
		last := accepted[len(accepted)-1]
		cp, err := changelog.DecodeCheckpoint(last.Value)
		if err != nil {
			t.Fatalf("the cycle's last changelog record is not its checkpoint: %v", err)
		}
		got, err := st.Offsets(0)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, cp.Next) {
			t.Fatalf("after cycle %d the store's positions are %v, its checkpoint's %v", sink.cycles, got, cp.Next)
		}
		if next, _, _ := st.ChangelogNext(0); next != last.Offset+1 {
			t.Fatalf("after cycle %d the store's changelog position is %d, want %d", sink.cycles, next, last.Offset+1)
		}
	}
	if sink.durables == 0 {
		t.Error("the sink was never told a cycle was durable")
	}
	seen := map[string]bool{}
	for _, r := range sink.topic(h.topics.TierChanges) {
		var tc schemas.TierChange
		if err := codec.DecodeTierChange(r.Value, &tc); err != nil {
			t.Fatal(err)
		}
		k := fmt.Sprint(tc.CustomerID, "@", tc.Version)
		if seen[k] {
			t.Fatalf("tier change %s published twice", k)
		}
		seen[k] = true
	}
	if len(seen) == 0 {
		t.Fatal("no tier change was published: the model checks nothing")
	}
}

// storeState returns partition 0's customers in st.
func storeState(t *testing.T, st *state.Store) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	if err := st.ScanCustomers(0, func(id, v []byte) error {
		out[string(id)] = bytes.Clone(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
