package processor

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/gen"
	"valora/internal/kafkatest"
	"valora/schemas"
	"valora/state"
)

// Every test in this file runs against the broker kafkatest.New picks: the
// real Apache Kafka named by VALORA_TEST_BROKERS, or in-process kfake.

var t0 = time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)

func day(n int) int64 { return t0.Add(time.Duration(n) * 24 * time.Hour).UnixMilli() }

// change is the part of a TierChange a scripted test pins down.
type change struct {
	customer string
	version  int64
	prev     string // "" for a new customer
	tier     string
	cause    schemas.Cause
	stage    string
}

func (h *harness) tierChanges(t *testing.T, n int) []change {
	t.Helper()
	recs := h.b.ConsumeN(t, h.topics.TierChanges, n, time.Minute)
	var out []change
	for _, r := range recs {
		var tc schemas.TierChange
		if err := h.codec.DecodeTierChange(r.Value, &tc); err != nil {
			t.Fatalf("decode tier change: %v", err)
		}
		if string(r.Key) != tc.CustomerID {
			t.Errorf("tier change key %q, customer %q", r.Key, tc.CustomerID)
		}
		if want := tc.CustomerID + ":" + strconv.FormatInt(tc.Version, 10); tc.EventID != want {
			t.Errorf("event_id %q, want %q", tc.EventID, want)
		}
		c := change{customer: tc.CustomerID, version: tc.Version, tier: tc.Tier, cause: tc.Cause, stage: tc.LifecycleStage}
		if tc.PreviousTier != nil {
			c.prev = *tc.PreviousTier
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b change) int {
		if a.customer != b.customer {
			if a.customer < b.customer {
				return -1
			}
			return 1
		}
		return int(a.version - b.version)
	})
	return out
}

// TestScriptedHistory feeds a handful of customers a known history, in
// causal phases, and checks the exact tier changes.
func TestScriptedHistory(t *testing.T) {
	h := newHarness(t, 3)
	r := h.start(t.TempDir(), kafkatest.Name(t, "g"))
	phase := func(total float64, recs ...*kgo.Record) {
		t.Helper()
		h.b.Produce(t, recs...)
		r.waitHandled(t, total)
	}
	phase(5,
		h.purchase(schemas.Purchase{EventID: "a1", CustomerID: "alice", OccurredAt: day(0), AmountMinor: 3000}),
		h.interaction(schemas.Interaction{EventID: "b1", CustomerID: "bob", OccurredAt: day(0)}),
		h.purchase(schemas.Purchase{EventID: "c1", CustomerID: "carol", OccurredAt: day(0), AmountMinor: 1000, Currency: "EUR"}),
		h.purchase(schemas.Purchase{EventID: "d1", CustomerID: "dave", OccurredAt: day(0), AmountMinor: 1000, Currency: "XXX"}),
		h.purchase(schemas.Purchase{EventID: "e1", CustomerID: "erin", OccurredAt: day(0), AmountMinor: 5000}),
	)
	phase(9,
		// F=2, M=23000 → M=3, FM=3, R=5: loyal.
		h.purchase(schemas.Purchase{EventID: "a2", CustomerID: "alice", OccurredAt: day(10), AmountMinor: 20000}),
		// F=1, M=5, FM=3, R=5: loyal.
		h.purchase(schemas.Purchase{EventID: "b2", CustomerID: "bob", OccurredAt: day(1), AmountMinor: 200000}),
		// Refund of the whole order: M stays 1, no change.
		h.purchase(schemas.Purchase{EventID: "c2", CustomerID: "carol", OccurredAt: day(2), AmountMinor: 1000, Currency: "EUR", Kind: schemas.KindRefund}),
		// 200 days later. Stream time on erin's partition jumps to day 200
		// first, so the timers of carol and erin (same partition) fire
		// before the interaction is applied: each stage move and recency
		// step in between is a change with cause INACTIVITY. Then the
		// interaction makes erin active again (R=2, FM=1: hibernating).
		h.interaction(schemas.Interaction{EventID: "e2", CustomerID: "erin", OccurredAt: day(200), Channel: schemas.ChannelEmail, Type: "email_open"}),
	)
	got := h.tierChanges(t, 19)
	in := schemas.CauseInactivity
	want := []change{
		{"alice", 1, "", "new_customers", schemas.CausePurchase, "new"},
		{"alice", 2, "new_customers", "loyal", schemas.CausePurchase, "new"},
		{"bob", 1, "", "prospect", schemas.CauseInteraction, "prospect"},
		{"bob", 2, "prospect", "loyal", schemas.CausePurchase, "new"},
		{"carol", 1, "", "new_customers", schemas.CausePurchase, "new"},
		// Version 2 is the refund: an applied event with no visible change.
		{"carol", 3, "new_customers", "new_customers", in, "active"},    // day 30: no longer new
		{"carol", 4, "new_customers", "promising", in, "active"},        // recency score falls
		{"carol", 5, "promising", "about_to_sleep", in, "active"},       // and again
		{"carol", 6, "about_to_sleep", "about_to_sleep", in, "at_risk"}, // day 2+90
		{"carol", 7, "about_to_sleep", "hibernating", in, "at_risk"},    // recency score falls
		{"carol", 8, "hibernating", "hibernating", in, "churned"},       // day 2+180
		{"erin", 1, "", "new_customers", schemas.CausePurchase, "new"},
		{"erin", 2, "new_customers", "new_customers", in, "active"},    // day 30
		{"erin", 3, "new_customers", "promising", in, "active"},        // recency
		{"erin", 4, "promising", "promising", in, "at_risk"},           // day 90
		{"erin", 5, "promising", "about_to_sleep", in, "at_risk"},      // recency
		{"erin", 6, "about_to_sleep", "about_to_sleep", in, "churned"}, // day 180
		{"erin", 7, "about_to_sleep", "hibernating", in, "churned"},    // recency
		{"erin", 8, "hibernating", "hibernating", schemas.CauseInteraction, "active"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tier changes:\n got %+v\nwant %+v", got, want)
	}
	dlq := h.b.ConsumeN(t, h.topics.DeadLetter, 1, time.Minute)
	if len(dlq) != 1 || header(dlq[0], HeaderReason) != ReasonUnknownCurrency || string(dlq[0].Key) != "dave" {
		t.Errorf("dead letters: want dave's unknown currency, got %d records, first reason %q", len(dlq), header(dlq[0], HeaderReason))
	}
	if err := r.shutdown(t, false); err != nil {
		t.Fatalf("run: %v", err)
	}
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// TestDeadLetters sends every kind of bad record between good ones and
// checks that each lands in the dead-letter topic with its reason and source,
// and that processing goes on.
func TestDeadLetters(t *testing.T) {
	h := newHarness(t, 1)
	dir := t.TempDir()
	r := h.start(dir, kafkatest.Name(t, "g"))
	good := h.purchase(schemas.Purchase{EventID: "ok1", CustomerID: "ok", OccurredAt: day(0), AmountMinor: 1000})
	truncated := h.purchase(schemas.Purchase{EventID: "x", CustomerID: "trunc", OccurredAt: day(0), AmountMinor: 1000})
	truncated.Value = truncated.Value[:len(truncated.Value)-3]
	mismatch := h.purchase(schemas.Purchase{EventID: "x", CustomerID: "mallory", OccurredAt: day(0), AmountMinor: 1000})
	mismatch.Key = []byte("someone-else")
	bad := []struct {
		rec    *kgo.Record
		reason string
	}{
		{&kgo.Record{Topic: h.topics.Purchases, Key: []byte("g"), Value: []byte("garbage bytes, not avro")}, string(schemas.ReasonBadMagic)},
		{truncated, string(schemas.ReasonMalformed)},
		{h.purchase(schemas.Purchase{EventID: "x", CustomerID: "cur", OccurredAt: day(0), AmountMinor: 1000, Currency: "ZZZ"}), ReasonUnknownCurrency},
		{h.purchase(schemas.Purchase{EventID: "x", CustomerID: "", OccurredAt: day(0), AmountMinor: 1000}), ReasonMissingCustomerID},
		{h.purchase(schemas.Purchase{EventID: "x", CustomerID: "future", OccurredAt: time.Now().Add(72 * time.Hour).UnixMilli(), AmountMinor: 1000}), ReasonFutureTimestamp},
		{mismatch, ReasonKeyMismatch},
		{h.purchase(schemas.Purchase{EventID: "x", CustomerID: "neg", OccurredAt: day(0), AmountMinor: -5}), ReasonInvalidField},
		{h.interaction(schemas.Interaction{EventID: "x", CustomerID: "past", OccurredAt: -1000}), ReasonInvalidTimestamp},
	}
	recs := []*kgo.Record{good}
	for _, b := range bad {
		recs = append(recs, b.rec)
	}
	recs = append(recs, h.purchase(schemas.Purchase{EventID: "ok2", CustomerID: "ok", OccurredAt: day(1), AmountMinor: 1000}))
	h.b.Produce(t, recs...) // produced in order: offsets follow the slice per topic
	r.waitHandled(t, float64(len(recs)))

	dlq := h.b.ConsumeN(t, h.topics.DeadLetter, len(bad), time.Minute)
	if len(dlq) != len(bad) {
		t.Fatalf("dead letters: got %d, want %d", len(dlq), len(bad))
	}
	byOffset := map[string]*kgo.Record{}
	for _, d := range dlq {
		byOffset[header(d, HeaderSourceTopic)+"/"+header(d, HeaderSourceOffset)] = d
	}
	for _, b := range bad {
		key := b.rec.Topic + "/" + strconv.FormatInt(b.rec.Offset, 10)
		d := byOffset[key]
		if d == nil {
			t.Errorf("no dead letter for %s (want reason %s)", key, b.reason)
			continue
		}
		if got := header(d, HeaderReason); got != b.reason {
			t.Errorf("%s: reason %q, want %q (error: %s)", key, got, b.reason, header(d, HeaderError))
		}
		if header(d, HeaderError) == "" || header(d, HeaderSourcePartition) != "0" {
			t.Errorf("%s: missing error or partition header: %v", key, d.Headers)
		}
		if string(d.Value) != string(b.rec.Value) || string(d.Key) != string(b.rec.Key) {
			t.Errorf("%s: dead letter does not carry the original key and value", key)
		}
	}
	consumed := sumCounter(r.p.m.consumed)
	applied := sumCounter(r.p.m.applied)
	dead := sumCounter(r.p.m.deadLettered)
	if consumed != applied+dead || applied != 2 || dead != float64(len(bad)) {
		t.Errorf("consumed %v, applied %v, dead-lettered %v: want consumed = applied + dead-lettered, 2 applied", consumed, applied, dead)
	}
	if err := r.shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	st := snapshot(t, dir)
	if c, ok := st["ok"]; !ok || c.Purchases != 2 {
		t.Errorf("customer ok: %+v, want 2 purchases", c)
	}
	if len(st) != 1 {
		t.Errorf("state has %d customers, want only the valid one", len(st))
	}
}

// TestRefusesNotCoPartitioned checks that the processor will not start on
// inputs with different partition counts, and says what to fix.
func TestRefusesNotCoPartitioned(t *testing.T) {
	h := newHarness(t, 2)
	h.topics.Interactions = kafkatest.Name(t, "interactions3")
	h.b.CreateTopics(t, 3, h.topics.Interactions)
	r := h.start(t.TempDir(), kafkatest.Name(t, "g"))
	var err error
	select {
	case err = <-r.done:
		r.done <- err
	case <-time.After(time.Minute):
		t.Fatal("processor did not refuse to start")
	}
	if !errors.Is(err, ErrNotCoPartitioned) {
		t.Fatalf("err = %v, want ErrNotCoPartitioned", err)
	}
	t.Logf("refused with: %v", err)
}

// workload produces a generated purchase history and returns the number of
// records. Only purchases are used, so that each partition's records have
// one order whatever the fetch interleaving, and outputs are comparable
// record for record across runs.
func (h *harness) workload(t *testing.T, seed uint64, customers int) int {
	t.Helper()
	recs := h.workloadRecords(t, seed, customers)
	h.b.Produce(t, recs...)
	return len(recs)
}

// workloadRecords returns the records of workload without producing them.
func (h *harness) workloadRecords(t *testing.T, seed uint64, customers int) []*kgo.Record {
	t.Helper()
	p := gen.DefaultParams()
	p.Seed = seed
	p.Customers = customers
	p.Start = t0.AddDate(-1, 0, 0)
	p.Horizon = 300 * 24 * time.Hour
	p.R, p.Alpha = 1, 10 // about one purchase in ten days
	p.Currencies = []string{"USD", "EUR", "JPY"}
	g, err := gen.New(p)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	var ev gen.Event
	for g.Next(&ev) {
		if ev.Kind == gen.KindPurchase {
			recs = append(recs, h.purchase(ev.Purchase))
		}
	}
	// A few bad records, so that dead letters are part of the replay too.
	for i := range 5 {
		recs = append(recs, &kgo.Record{Topic: h.topics.Purchases, Key: []byte(fmt.Sprint("junk", i)), Value: []byte{0xC3, 0x01, byte(i)}})
	}
	return recs
}

// TestCrashRestartSameState runs a workload once without interruption, and
// once crashed (Processor.abandon: nothing committed after the crash) at
// random points and restarted on the same state directory, over many
// seeds. A crash comes after a random number of commit cycles of any task
// (the other tasks are then anywhere in theirs), at a random step of the
// cycle: once it is durable, before it is sent (the inputs are read
// again), or once Kafka has it and before the store does; after the
// latter, the next run must restore the cycle from the changelog before it
// reads input. The final states must be equal, and the tier changes of the
// interrupted run, once repeats (same event_id) are dropped, must equal the
// uninterrupted run's.
func TestCrashRestartSameState(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 2
	}
	seeds = crashSeeds(t, seeds)
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			h := newHarness(t, 3)
			n := h.workload(t, seed+1, 150)
			t.Logf("workload: %d records", n)

			refDir := filepath.Join(t.TempDir(), "ref")
			ref := h.start(refDir, kafkatest.Name(t, "ref"))
			ref.waitHandled(t, float64(n))
			if err := ref.shutdown(t, false); err != nil {
				t.Fatal(err)
			}
			want := snapshot(t, refDir)
			wantOut := dedupOutputs(t, h, h.topics.TierChanges)

			crash := h.withOutputs()
			dir := filepath.Join(t.TempDir(), "crash")
			group := kafkatest.Name(t, "crash")
			rng := rand.New(rand.NewPCG(seed, 42))
			restarts, caughtUp := 0, 0
			var lost []lostCycle // cycles Kafka has and the store does not yet
			for {
				crashing := restarts < 8 && handledInDir(t, dir) < n
				c := newCrasher(crashWhere(rng.IntN(3)), 0)
				if crashing {
					at := int64(rng.IntN(12))
					if c.where != afterCommit {
						at = max(at, 1) // a send step needs a cycle
					}
					c.at.Store(at)
				}
				commitRecords := 1 + rng.IntN(100)
				r := crash.startCrashing(dir, group, c, func(cfg *Config) { cfg.CommitRecords = commitRecords })
				if crashing && c.at.Load() == 0 {
					c.crash()
				}
				if crashing {
					kafkatest.Eventually(t, time.Minute, func() error {
						if c.crashed() || handledInStore(t, r.store) >= n {
							return nil
						}
						return fmt.Errorf("%d cycles, waiting for %d (%v)", c.n.Load(), c.at.Load(), c.where)
					})
					r.shutdown(t, true)
					restarts++
				} else {
					kafkatest.Eventually(t, time.Minute, func() error {
						if got := handledInStore(t, r.store); got < n {
							return fmt.Errorf("state covers %d of %d records", got, n)
						}
						return nil
					})
					if err := r.shutdown(t, false); err != nil {
						t.Fatal(err)
					}
				}
				// A lost cycle whose task sent in this run was restored
				// before.
				kept := lost[:0]
				for _, l := range lost {
					if got, ok := c.restoredAt(l.part); ok {
						checkRestored(t, l, got)
						caughtUp++
					} else {
						kept = append(kept, l)
					}
				}
				lost = kept
				if c.crashed() && c.where == afterSend {
					checkBehind(t, dir, c.lost)
					lost = append(lost, c.lost)
				}
				if !crashing {
					break
				}
			}
			// A lost cycle whose task sent nothing since: the store holds
			// what its last restore left.
			for _, l := range lost {
				st, err := state.Open(state.Options{Dir: dir, ReadOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				next, _, err := st.ChangelogNext(l.part)
				if err != nil {
					t.Fatal(err)
				}
				pos, err := st.Offsets(l.part)
				st.Close()
				if err != nil {
					t.Fatal(err)
				}
				checkRestored(t, l, storedAt{next: next, pos: pos})
				caughtUp++
			}
			t.Logf("%d crashes; cycles Kafka had and the store did not, restored from the changelog: %d", restarts, caughtUp)
			got := snapshot(t, dir)
			if len(got) != len(want) {
				t.Fatalf("customers: got %d, want %d", len(got), len(want))
			}
			for id, w := range want {
				if g := got[id]; !reflect.DeepEqual(g, w) {
					t.Fatalf("customer %s differs after crashes:\n got %+v\nwant %+v", id, g, w)
				}
			}
			gotOut := dedupOutputs(t, crash, crash.topics.TierChanges)
			if !reflect.DeepEqual(gotOut, wantOut) {
				t.Fatalf("tier changes differ: got %d distinct, want %d", len(gotOut), len(wantOut))
			}
		})
	}
}

// handledInStore sums the stored input offsets: the records whose effects
// are durable (offsets start at 0, one partition per task).
func handledInStore(t *testing.T, st offsetReader) int {
	t.Helper()
	parts, err := st.Partitions()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, p := range parts {
		offs, err := st.Offsets(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range offs {
			n += o
		}
	}
	return int(n)
}

// dedupOutputs reads a tier-change topic and returns its records by
// event_id, failing if two records with one event_id differ.
func dedupOutputs(t *testing.T, h *harness, topic string) map[string]schemas.TierChange {
	t.Helper()
	out := map[string]schemas.TierChange{}
	repeats := 0
	for _, r := range h.b.ConsumeAll(t, topic) {
		var tc schemas.TierChange
		if err := h.codec.DecodeTierChange(r.Value, &tc); err != nil {
			t.Fatal(err)
		}
		if prev, ok := out[tc.EventID]; ok {
			repeats++
			if !reflect.DeepEqual(prev, tc) {
				t.Fatalf("event %s repeated with different content:\n%+v\n%+v", tc.EventID, prev, tc)
			}
		}
		out[tc.EventID] = tc
	}
	if repeats > 0 {
		t.Logf("%s: %d repeats dropped by event_id", topic, repeats)
	}
	return out
}

// TestFutureBoundFollowsClock checks the future-timestamp check against a
// clock that moves (kfake): the task reads the clock again before it
// dead-letters a record past the bound it computed earlier, so a record
// within the skew of the current time is applied however old that bound,
// and one beyond it is still dead-lettered.
func TestFutureBoundFollowsClock(t *testing.T) {
	h := newHarness(t, 1)
	var nowMs atomic.Int64
	t0 := time.Now()
	nowMs.Store(t0.UnixMilli())
	const skew = time.Hour
	r := h.start(t.TempDir(), kafkatest.Name(t, "g"), func(c *Config) {
		c.Now = func() time.Time { return time.UnixMilli(nowMs.Load()) }
		c.MaxClockSkew = skew
		c.Time = TimeEvent
	})
	r.send(h.purchase(schemas.Purchase{EventID: "p1", CustomerID: "a", OccurredAt: t0.UnixMilli(), AmountMinor: 1000}))
	// The task's bound is now t0 + skew; the clock moves two days on.
	later := t0.Add(48 * time.Hour)
	nowMs.Store(later.UnixMilli())
	within := h.purchase(schemas.Purchase{EventID: "p2", CustomerID: "a", OccurredAt: later.Add(skew / 2).UnixMilli(), AmountMinor: 1000})
	beyond := h.purchase(schemas.Purchase{EventID: "p3", CustomerID: "a", OccurredAt: later.Add(2 * skew).UnixMilli(), AmountMinor: 1000})
	r.send(within, beyond)

	dlq := h.b.ConsumeN(t, h.topics.DeadLetter, 1, time.Minute)
	if len(dlq) != 1 || header(dlq[0], HeaderReason) != ReasonFutureTimestamp ||
		header(dlq[0], HeaderSourceOffset) != strconv.FormatInt(beyond.Offset, 10) {
		t.Fatalf("dead letters: got %d (%v), want only offset %d as %s", len(dlq), dlq, beyond.Offset, ReasonFutureTimestamp)
	}
	if got := sumCounter(r.p.m.applied); got != 2 {
		t.Errorf("applied: %v records, want 2 (p1 and p2)", got)
	}
}
