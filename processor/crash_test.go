package processor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/kafkatest"
	"valora/state"
)

// crashSeeds is the number of seeds a crash test runs: def, or
// VALORA_CRASH_SEEDS if that is more (make crash).
func crashSeeds(t *testing.T, def int) int {
	t.Helper()
	v := os.Getenv("VALORA_CRASH_SEEDS")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("VALORA_CRASH_SEEDS=%q: want a positive number", v)
	}
	return max(n, def)
}

// crashBothModes runs crash(t, g, seed) for each guarantee over the
// seeds (def, or short with -short; VALORA_CRASH_SEEDS can raise them).
func crashBothModes(t *testing.T, def, short int, crash func(t *testing.T, g Guarantee, seed uint64)) {
	t.Helper()
	seeds := def
	if testing.Short() {
		seeds = short
	}
	seeds = crashSeeds(t, seeds)
	for _, g := range []Guarantee{ExactlyOnce, AtLeastOnce} {
		t.Run(string(g), func(t *testing.T) {
			for seed := range uint64(seeds) {
				t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { crash(t, g, seed) })
			}
		})
	}
}

// crashWhere is the step of a commit cycle at which a crasher crashes the
// processor.
type crashWhere int

const (
	// afterCommit: once the cycle is durable, in Kafka and in the store
	// (Config.OnCommit).
	afterCommit crashWhere = iota
	// beforeSend: before the cycle goes to Kafka: the next run reads its
	// inputs again.
	beforeSend
	// afterSend: once Kafka has the cycle and before the store does: the
	// next run's restore must read it from the changelog.
	afterSend
)

func (w crashWhere) String() string {
	return [...]string{"after commit", "before send", "after send"}[w]
}

// errCrash is what a crashSink's send returns for the cycle it crashes at.
var errCrash = errors.New("crashed by the test")

// A crasher crashes one processor at its at-th commit cycle (counted over
// all of its tasks, from 1; 0: never), at step where. The crash is
// Processor.abandon, the path of a shutdown that outlasts its timeout: no
// task commits any more and Run returns without committing to the group,
// as if the process had died. The send steps are taken through crashSink,
// which wraps every task's sink (harness.startCrashing); afterCommit
// through Config.OnCommit.
//
// The crasher also records, at each task's first send, what the store
// holds for the task: what its restore left.
type crasher struct {
	where crashWhere
	at    atomic.Int64

	p    *Processor
	n    atomic.Int64 // cycles counted
	once sync.Once
	hit  chan struct{} // closed at the crash

	// lost is the cycle an afterSend crash kept from the store; it is
	// written before hit is closed.
	lost lostCycle

	mu       sync.Mutex
	restored map[int32]storedAt // by task, at its first send
}

// lostCycle is a cycle Kafka has and the store does not.
type lostCycle struct {
	part       int32
	checkpoint int64            // changelog offset of its checkpoint record
	records    int              // its changelog records, checkpoint included
	pos        map[string]int64 // the input positions it covers
}

// storedAt is what the store holds for a task: its changelog position and
// input positions.
type storedAt struct {
	next int64
	pos  map[string]int64
}

func newCrasher(where crashWhere, at int64) *crasher {
	c := &crasher{where: where, hit: make(chan struct{}), restored: map[int32]storedAt{}}
	c.at.Store(at)
	return c
}

// attach wraps p's task sinks, and Config.OnCommit; it is called before p
// runs.
func (c *crasher) attach(p *Processor) {
	c.p = p
	real := p.newSink
	p.newSink = func(cl *kgo.Client) sink { return &crashSink{sink: real(cl), c: c} }
	if c.where == afterCommit {
		prev := p.cfg.OnCommit
		p.cfg.OnCommit = func(records int, latency time.Duration) {
			if prev != nil {
				prev(records, latency)
			}
			if c.n.Add(1) == c.at.Load() {
				c.crash()
			}
		}
	}
}

// crashIn sets the crash k cycles after those counted so far.
func (c *crasher) crashIn(k int64) { c.at.Store(c.n.Load() + k) }

// crash abandons the processor, once.
func (c *crasher) crash() {
	c.once.Do(func() {
		c.p.abandon()
		close(c.hit)
	})
}

// crashed reports whether the crash happened.
func (c *crasher) crashed() bool {
	select {
	case <-c.hit:
		return true
	default:
		return false
	}
}

// restoredAt returns what the store held for part at its task's first
// send, and whether the task sent anything.
func (c *crasher) restoredAt(part int32) (storedAt, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.restored[part]
	return s, ok
}

// crashSink is a task's sink that crashes the processor as its crasher
// says: it fails the chosen cycle before the real sink has it, or after.
type crashSink struct {
	sink
	c     *crasher
	first bool
}

func (s *crashSink) send(ctx context.Context, co *cycleOut) error {
	if !s.first {
		s.first = true
		s.c.recordRestored(co.part)
	}
	if s.c.where == afterCommit {
		return s.sink.send(ctx, co)
	}
	k := s.c.n.Add(1)
	at := s.c.at.Load()
	if k == at && s.c.where == beforeSend {
		s.c.crash()
		return errCrash
	}
	if err := s.sink.send(ctx, co); err != nil {
		return err
	}
	if k == at && s.c.where == afterSend {
		s.c.lost = s.c.lostOf(co)
		s.c.crash()
		return errCrash
	}
	return nil
}

// recordRestored notes what the store holds for part: called at the task's
// first send, before the task has committed anything, it is what the
// restore left.
func (c *crasher) recordRestored(part int32) {
	st := c.p.cfg.Store
	next, _, err := st.ChangelogNext(part)
	if err != nil {
		next = -1
	}
	pos, err := st.Offsets(part)
	if err != nil {
		pos = nil
	}
	c.mu.Lock()
	c.restored[part] = storedAt{next: next, pos: pos}
	c.mu.Unlock()
}

// lostOf describes a cycle Kafka has acknowledged.
func (c *crasher) lostOf(co *cycleOut) lostCycle {
	l := lostCycle{part: co.part, checkpoint: -1, pos: map[string]int64{}}
	for _, r := range co.recs {
		if r.Topic == c.p.cfg.Topics.Changelog {
			l.records++
			l.checkpoint = r.Offset // the checkpoint is last
		}
	}
	for src, next := range co.pos {
		if next >= 0 && co.topics[src] != "" {
			l.pos[co.topics[src]] = next
		}
	}
	return l
}

// checkRestored checks that a cycle the store lost was restored from the
// changelog before its task read input again: at the task's first send of
// a later run, the store held the cycle's input positions and a changelog
// position past its checkpoint. (Nothing else moves them: the task the
// cycle was lost by committed nothing after it.)
func checkRestored(t *testing.T, l lostCycle, got storedAt) {
	t.Helper()
	if got.next <= l.checkpoint || !maps.Equal(got.pos, l.pos) {
		t.Fatalf("task %d restored to changelog position %d and input positions %v; the cycle Kafka had (checkpoint at %d) covers %v",
			l.part, got.next, got.pos, l.checkpoint, l.pos)
	}
}

// checkBehind checks that a crash after Kafka had a cycle left the store in
// dir without it.
func checkBehind(t *testing.T, dir string, l lostCycle) {
	t.Helper()
	st, err := state.Open(state.Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	next, _, err := st.ChangelogNext(l.part)
	if err != nil {
		t.Fatal(err)
	}
	pos, err := st.Offsets(l.part)
	if err != nil {
		t.Fatal(err)
	}
	if next > l.checkpoint || maps.Equal(pos, l.pos) {
		t.Fatalf("after the crash the store of task %d is at changelog position %d, positions %v: it should be behind the cycle Kafka has (checkpoint at %d, positions %v)",
			l.part, next, pos, l.checkpoint, l.pos)
	}
}

// TestCrashKafkaAheadOfStore crashes a processor once Kafka has a commit
// cycle and before the store has it (afterSend), in both modes and at
// several cycles. The store must be left behind the changelog; the next
// run must restore the cycle from the changelog before it reads input (at
// its first send, the store holds the cycle's input positions and a
// changelog position past its checkpoint), and end with the state and
// tier changes of a run without a crash.
func TestCrashKafkaAheadOfStore(t *testing.T) {
	crashBothModes(t, 2, 1, crashKafkaAheadOfStore)
}

func crashKafkaAheadOfStore(t *testing.T, g Guarantee, seed uint64) {
	h := newHarness(t, 1)
	recs := h.workloadRecords(t, seed+1, 40)
	// Small fetches and cycles, so that the crash comes early in the
	// first half of the input; the second half comes after the crash, so
	// that the next run sends.
	tune := func(c *Config) {
		c.Guarantee = g
		c.CommitRecords = 8
		c.ClientOpts = append(c.ClientOpts, kgo.FetchMaxPartitionBytes(2<<10))
	}
	half := len(recs) / 2
	run := h.withOutputs()
	dir := filepath.Join(t.TempDir(), "crash")
	group := kafkatest.Name(t, "crash")
	c := newCrasher(afterSend, 2+int64(seed%3))
	h.b.Produce(t, recs[:half]...)
	r := run.startCrashing(dir, group, c, tune)
	select {
	case <-c.hit:
	case <-time.After(time.Minute):
		t.Fatalf("no crash at cycle %d within a minute (%d cycles sent)", c.at.Load(), c.n.Load())
	}
	r.shutdown(t, true)
	checkBehind(t, dir, c.lost)

	h.b.Produce(t, recs[half:]...)
	next := newCrasher(afterSend, 0) // records what the restore left; never crashes
	r = run.startCrashing(dir, group, next, tune)
	kafkatest.Eventually(t, time.Minute, func() error {
		if got := handledInStore(t, r.store); got < len(recs) {
			return fmt.Errorf("state covers %d of %d records", got, len(recs))
		}
		return nil
	})
	restored := testutil.ToFloat64(r.p.m.restored)
	if err := r.shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	got, ok := next.restoredAt(c.lost.part)
	if !ok {
		t.Fatalf("task %d sent nothing after the restart", c.lost.part)
	}
	checkRestored(t, c.lost, got)
	if restored < float64(c.lost.records) {
		t.Fatalf("the restore read %v changelog records, fewer than the %d of the cycle the store lost", restored, c.lost.records)
	}
	t.Logf("crashed after cycle %d was sent (checkpoint at changelog offset %d, %d records); the restore read %v records",
		c.at.Load(), c.lost.checkpoint, c.lost.records, restored)

	// A run without a crash over the same input.
	ref := h.withOutputs()
	refDir := filepath.Join(t.TempDir(), "ref")
	r = ref.start(refDir, kafkatest.Name(t, "ref"), func(c *Config) { c.Guarantee = g })
	r.waitHandled(t, float64(len(recs)))
	if err := r.shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	if got, want := snapshot(t, dir), snapshot(t, refDir); !reflect.DeepEqual(got, want) {
		t.Fatalf("state after the crash differs from the clean run's: %d customers, want %d", len(got), len(want))
	}
	if got, want := dedupOutputs(t, run, run.topics.TierChanges), dedupOutputs(t, ref, ref.topics.TierChanges); !reflect.DeepEqual(got, want) {
		t.Fatalf("tier changes differ from the clean run's: got %d distinct, want %d", len(got), len(want))
	}
}
