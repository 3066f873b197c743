package processor

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/deliverytest"
	"valora/internal/kafkatest"
	"valora/processor/score"
	"valora/schemas"
)

// Every test in this file runs against the broker kafkatest.New picks: the
// real Apache Kafka named by VALORA_TEST_BROKERS, or in-process kfake.

const dayMs = 24 * 60 * 60 * 1000

// customerChanges reads every TierChange in the output topic and returns
// those of one customer in topic order.
func (h *harness) customerChanges(t *testing.T, id string) []schemas.TierChange {
	t.Helper()
	var out []schemas.TierChange
	for _, r := range h.b.ConsumeAll(t, h.topics.TierChanges) {
		var tc schemas.TierChange
		if err := h.codec.DecodeTierChange(r.Value, &tc); err != nil {
			t.Fatalf("decode tier change: %v", err)
		}
		if tc.CustomerID == id {
			out = append(out, tc)
		}
	}
	return out
}

// checkChain checks that a customer's changes form a gap-free chain
// (deliverytest.CheckChain) whose event times never go backwards.
func checkChain(t *testing.T, changes []schemas.TierChange) {
	t.Helper()
	if len(changes) > 0 {
		deliverytest.CheckChain(t, changes[0].CustomerID, changes)
	}
	for i := 1; i < len(changes); i++ {
		prev, cur := changes[i-1], changes[i]
		if cur.OccurredAt < prev.OccurredAt {
			t.Errorf("change %d: occurred_at %d before the previous change's %d", i, cur.OccurredAt, prev.OccurredAt)
		}
	}
}

// transitions returns the changes at which pred became true (it was false
// for the change before, or there was none).
func transitions(changes []schemas.TierChange, pred func(schemas.TierChange) bool) []schemas.TierChange {
	var out []schemas.TierChange
	for i, c := range changes {
		if pred(c) && (i == 0 || !pred(changes[i-1])) {
			out = append(out, c)
		}
	}
	return out
}

func isAtRisk(c schemas.TierChange) bool  { return c.LifecycleStage == "at_risk" }
func isChurned(c schemas.TierChange) bool { return c.ChurnRisk && c.LifecycleStage == "churned" }

// TestInactivityTimers is the scenario of a customer who buys three times
// and then goes silent: as another customer's purchases move stream time
// forward, the silent customer turns at_risk and then churned, each exactly
// once, with cause INACTIVITY and occurred_at at the policy's thresholds,
// never before stream time reaches them, and across a restart in between
// (the timer comes back from the Pebble index).
func TestInactivityTimers(t *testing.T) {
	h := newHarness(t, 1)
	dir, group := t.TempDir(), kafkatest.Name(t, "g")
	pol := score.DefaultPolicy()
	eventTime := func(c *Config) { c.Time = TimeEvent }
	r := h.start(dir, group, eventTime)
	r.send(h.buy("silent", day(0), 2500), h.buy("silent", day(1), 2500), h.buy("silent", day(2), 2500))
	last := day(2)
	atRiskAt := last + pol.Lifecycle.AtRiskDays*dayMs
	churnAt := last + pol.Churn.InactivityDays*dayMs

	// Stream time one millisecond short of the at-risk deadline.
	r.send(h.buy("other", atRiskAt-1, 2500))
	if got := transitions(h.customerChanges(t, "silent"), isAtRisk); len(got) != 0 {
		t.Fatalf("at_risk before stream time reached the deadline: %+v", got)
	}
	// Past it.
	r.send(h.buy("other", atRiskAt+5*dayMs, 2500))
	got := transitions(h.customerChanges(t, "silent"), isAtRisk)
	if len(got) != 1 || got[0].OccurredAt != atRiskAt || got[0].Cause != schemas.CauseInactivity {
		t.Fatalf("at_risk transitions %+v, want one at %d with cause INACTIVITY", got, atRiskAt)
	}

	// The churn timer survives a restart: it is in the Pebble index.
	if err := r.shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	r = h.start(dir, group, eventTime)
	r.send(h.buy("other", churnAt-1, 2500))
	if got := transitions(h.customerChanges(t, "silent"), isChurned); len(got) != 0 {
		t.Fatalf("churned before stream time reached the deadline: %+v", got)
	}
	r.send(h.buy("other", churnAt+10*dayMs, 2500))
	changes := h.customerChanges(t, "silent")
	got = transitions(changes, isChurned)
	if len(got) != 1 || got[0].OccurredAt != churnAt || got[0].Cause != schemas.CauseInactivity {
		t.Fatalf("churn transitions %+v, want one at %d with cause INACTIVITY", got, churnAt)
	}
	if n := len(transitions(changes, isAtRisk)); n != 1 {
		t.Errorf("%d at_risk transitions over the whole history, want 1", n)
	}
	checkChain(t, changes)
	for _, c := range changes[3:] {
		if c.Cause != schemas.CauseInactivity {
			t.Errorf("change after the last purchase with cause %s, want INACTIVITY: %+v", c.Cause, c)
		}
	}
	// The stored state agrees, and its timer is the next deadline.
	if err := r.shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	c := snapshot(t, dir)["silent"]
	if !c.ChurnRisk || c.LifecycleStage != "churned" || c.Version != changes[len(changes)-1].Version {
		t.Errorf("stored customer %+v does not match the last change %+v", c, changes[len(changes)-1])
	}
	if want := pol.NextDeadline(&c); c.TimerAt != want {
		t.Errorf("stored timer_at %d, want the next deadline %d", c.TimerAt, want)
	}
}

// TestIdleWallClock checks live mode with no traffic at all: once a task is
// caught up, after the idle timeout its stream time follows the (injected)
// wall clock minus the allowed lateness, and the churn flag rises within
// idle timeout + one commit interval of the last record, not before the
// idle timeout.
func TestIdleWallClock(t *testing.T) {
	h := newHarness(t, 1)
	pol := score.DefaultPolicy()
	const (
		idle     = 400 * time.Millisecond
		interval = 50 * time.Millisecond
		lateness = time.Minute
	)
	// The wall clock is half a year and a bit ahead of the real one, so
	// a purchase made "now" in event time is already past its churn
	// deadline by the clock: only the idle rule stands between.
	ahead := time.Duration(pol.Churn.InactivityDays)*24*time.Hour + lateness + time.Hour
	wall := func() time.Time { return time.Now().Add(ahead) }
	// fetched is when the poll loop handed the purchase to its task (the
	// start of its first committed cycle): the task's last input.
	var mu sync.Mutex
	var fetched time.Time
	r := h.start(t.TempDir(), kafkatest.Name(t, "g"), func(c *Config) {
		c.Time = TimeLive
		c.Now = wall
		c.IdleTimeout = idle
		c.CommitInterval = interval
		c.AllowedLateness = lateness
		c.OnCommit = func(records int, latency time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			if records > 0 && fetched.IsZero() {
				fetched = time.Now().Add(-latency)
			}
		}
	})
	<-r.p.Ready()
	at := time.Now().Add(-time.Hour).UnixMilli()
	rec := h.purchase(schemas.Purchase{EventID: "p1", CustomerID: "quiet", OccurredAt: at, AmountMinor: 900})
	h.b.Produce(t, rec) // sets rec.Timestamp: when the purchase was produced
	r.waitHandled(t, 1)
	// The churn change's own Kafka timestamp is when the task produced it,
	// so the delay below does not include this test's reading of the
	// output topic.
	var churn []schemas.TierChange
	stamps := map[string]time.Time{} // event_id → Kafka timestamp
	kafkatest.Eventually(t, 30*time.Second, func() error {
		var changes []schemas.TierChange
		for _, out := range h.b.ConsumeAll(t, h.topics.TierChanges) {
			var tc schemas.TierChange
			if err := h.codec.DecodeTierChange(out.Value, &tc); err != nil {
				t.Fatalf("decode tier change: %v", err)
			}
			if tc.CustomerID == "quiet" {
				changes = append(changes, tc)
				stamps[tc.EventID] = out.Timestamp
			}
		}
		if churn = transitions(changes, isChurned); len(churn) == 0 {
			return fmt.Errorf("no churn yet")
		}
		return nil
	})
	seen := stamps[churn[0].EventID].Sub(rec.Timestamp)
	mu.Lock()
	sinceInput := stamps[churn[0].EventID].Sub(fetched)
	mu.Unlock()
	t.Logf("churn produced %v after the purchase was produced, %v after the task received it (idle timeout %v, commit interval %v)",
		seen, sinceInput, idle, interval)
	if want := at + pol.Churn.InactivityDays*dayMs; len(churn) != 1 || churn[0].OccurredAt != want || churn[0].Cause != schemas.CauseInactivity {
		t.Fatalf("churn transitions %+v, want one at %d with cause INACTIVITY", churn, want)
	}
	if seen < idle {
		t.Errorf("churn produced %v after the record: before the idle timeout %v", seen, idle)
	}
	// The bound of the contract is idle + one commit interval from the
	// last record the task received (its start-up, which on a real broker
	// takes a second or more, is not part of it); the test allows two
	// seconds more for the listing of end offsets that tells the task it
	// is caught up, on a loaded 2-core machine. That still fails if the
	// task waits for anything but the idle timeout (the default is 30 s).
	if limit := idle + interval + 2*time.Second; sinceInput > limit {
		t.Errorf("churn produced %v after the task received the record, want within %v", sinceInput, limit)
	}
	// The counter moves once the cycle that produced the change is in the
	// store, a moment after Kafka has the change.
	kafkatest.Eventually(t, 10*time.Second, func() error {
		if v := gaugeValue(t, r, "valora_timers_fired_total"); v < 1 {
			return fmt.Errorf("valora_timers_fired_total = %v, want >= 1", v)
		}
		return nil
	})
}

// gaugeValue sums a metric family's samples from an instance's registry:
// counter and gauge values, and histograms' sample counts.
func gaugeValue(t *testing.T, r *running, name string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var s float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			s += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return s
}

// TestTimerHeap checks the dirty-customer heap against a sorted reference
// over many seeds: reschedules supersede earlier deadlines, commits empty
// it, heapMin always returns the earliest live one, and the heap keeps its
// invariants after every change.
func TestTimerHeap(t *testing.T) {
	for seed := uint64(1); seed <= 400; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		var c timerClock
		c.init()
		ref := map[string]int64{}
		for range 300 {
			id := fmt.Sprintf("c%d", rng.IntN(40))
			switch rng.IntN(4) {
			case 0:
				c.schedule(id, 0)
				ref[id] = 0
			default:
				at := rng.Int64N(1000) + 1
				c.schedule(id, at)
				ref[id] = at
			}
			// heapMin after every change, so that it meets every
			// reschedule, of the top's customer and of others.
			if m := c.heapMin(); m != refMin(ref) || (m != 1<<63-1 && ref[c.top().id] != m) {
				t.Fatalf("seed %d: heapMin %d, want %d", seed, m, refMin(ref))
			}
			checkHeap(t, &c)
			if rng.IntN(60) == 0 {
				c.committed() // a commit: every deadline is in the index now
				clear(ref)
			}
			if rng.IntN(7) == 0 && len(c.heap) > 0 && c.heapMin() != 1<<63-1 {
				top := c.top()
				c.pop()
				c.schedule(top.id, 0)
				ref[top.id] = 0
			}
		}
		var got, want []int64
		for c.heapMin() != 1<<63-1 {
			top := c.top()
			got = append(got, top.at)
			id := top.id
			c.pop()
			c.schedule(id, 0)
		}
		for _, at := range ref {
			if at != 0 {
				want = append(want, at)
			}
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d: drained %v, want %v", seed, got, want)
		}
	}
}

// checkHeap checks the heap's invariants: every dirty customer is in idx
// at its place in dues, every deadline in dues has its entry in the heap,
// and no entry is less than its parent.
func checkHeap(t *testing.T, c *timerClock) {
	t.Helper()
	live := map[heapRef]bool{}
	for _, r := range c.heap {
		live[r] = true
	}
	for i, e := range c.dues {
		if j, ok := c.idx[e.id]; !ok || j != int32(i) {
			t.Fatalf("%s at %d in dues, found at %d (%v)", e.id, i, j, ok)
		}
		if e.at != 0 && !live[heapRef{e.at, int32(i)}] {
			t.Fatalf("%s: deadline %d not in the heap", e.id, e.at)
		}
	}
	if len(c.idx) != len(c.dues) {
		t.Fatalf("%d dirty customers, %d in idx", len(c.dues), len(c.idx))
	}
	for k := 1; k < len(c.heap); k++ {
		if c.less(c.heap[k], c.heap[(k-1)/2]) {
			t.Fatalf("heap entry %d less than its parent", k)
		}
	}
}

func refMin(ref map[string]int64) int64 {
	m := int64(1<<63 - 1)
	for _, at := range ref {
		if at != 0 && at < m {
			m = at
		}
	}
	return m
}

// TestIdleJumpBoundedCycles checks that an idle task whose stream time
// jumps to the wall clock past the deadlines of all its customers fires
// them over several commit cycles, each within the task's share of the
// write set, rather than all in one (which would hold every customer and
// its output in memory): every customer churns, and no transaction of the
// tier changes holds more than a few cycles' worth.
func TestIdleJumpBoundedCycles(t *testing.T) {
	h := newHarness(t, 1)
	pol := score.DefaultPolicy()
	const (
		customers = 3000
		writeSet  = 32 << 10
		lateness  = time.Minute
	)
	ahead := time.Duration(pol.Churn.InactivityDays)*24*time.Hour + lateness + time.Hour
	at := time.Now().Add(-time.Hour).UnixMilli()
	recs := make([]*kgo.Record, customers)
	for i := range recs {
		recs[i] = h.buy(fmt.Sprintf("c%05d", i), at+int64(i), 900)
	}
	h.b.Produce(t, recs...)
	r := h.start(t.TempDir(), kafkatest.Name(t, "g"), func(c *Config) {
		c.Time = TimeLive
		c.Now = func() time.Time { return time.Now().Add(ahead) }
		c.IdleTimeout = 300 * time.Millisecond
		c.CommitInterval = 50 * time.Millisecond
		c.AllowedLateness = lateness
		c.WriteSetBytes = writeSet
	})
	r.waitHandled(t, customers)
	var outs []*kgo.Record
	churned := map[string]bool{}
	kafkatest.Eventually(t, time.Minute, func() error {
		outs = h.b.ConsumeAll(t, h.topics.TierChanges)
		for _, out := range outs {
			var tc schemas.TierChange
			if err := h.codec.DecodeTierChange(out.Value, &tc); err != nil {
				t.Fatalf("decode tier change: %v", err)
			}
			if tc.Cause == schemas.CauseInactivity && isChurned(tc) {
				churned[tc.CustomerID] = true
			}
		}
		if len(churned) < customers {
			return fmt.Errorf("%d of %d customers churned", len(churned), customers)
		}
		return nil
	})
	// A transaction's records have consecutive offsets; its commit marker
	// takes the next one.
	largest, run := 0, 0
	for i, out := range outs {
		if i > 0 && out.Offset != outs[i-1].Offset+1 {
			run = 0
		}
		run++
		largest = max(largest, run)
	}
	perCycle := writeSet/pendEntryBytes + 1
	t.Logf("%d tier changes; the largest transaction held %d (a cycle fires about %d customers)", len(outs), largest, perCycle)
	if largest > 4*perCycle {
		t.Errorf("a transaction held %d tier changes: the jump fired more than a few cycles' worth (%d each) at once", largest, perCycle)
	}
}
