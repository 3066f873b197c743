package processor

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"valora/internal/kafkatest"
	"valora/processor/score"
	"valora/state"
)

// staleMember is a group membership the group has moved past: a zombie's.
type staleMember struct {
	member string
	gen    int32
}

func (s staleMember) GroupMetadata() (string, int32) { return s.member, s.gen }

// TestCommitterFencedByGeneration checks the zombie fence of the
// instance's transactions: a round that carries a generation the group has
// left behind is refused by the coordinator and aborted, so a
// read_committed reader sees none of its records and the group's offsets
// do not move; the same round under the current membership commits.
// Against kfake, or the broker of VALORA_TEST_BROKERS.
func TestCommitterFencedByGeneration(t *testing.T) {
	h := newHarness(t, 1)
	// With AddOffsetsToTxn, as for brokers without KIP-890's implicit
	// addition of the group, and as the broker allows.
	for _, explicit := range []bool{true, false} {
		t.Run(map[bool]string{true: "AddOffsetsToTxn", false: "as the broker allows"}[explicit], func(t *testing.T) {
			testCommitterFenced(t, h.withOutputs(), explicit)
		})
	}
}

// startCommitter runs a committer for group over a processor on h's
// topics, stopped at cleanup.
func startCommitter(t *testing.T, h *harness, group string, explicit bool) (*Processor, *committer) {
	t.Helper()
	st, err := state.Open(state.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p, err := New(Config{Brokers: h.b.Addrs, Group: group, Topics: h.topics, Policy: score.DefaultPolicy(),
		Codec: h.codec, Store: st, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.setUp(ctx); err != nil {
		t.Fatal(err)
	}
	key, err := p.instanceKey()
	if err != nil {
		t.Fatal(err)
	}
	c, err := newCommitter(ctx, p, key, explicit || !p.implicitOffsets)
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	go c.run(rctx)
	t.Cleanup(func() { rcancel(); <-c.done })
	return p, c
}

// joinedMember returns a consumer of h's interactions in group, once it has
// joined.
func joinedMember(t *testing.T, h *harness, group string) *kgo.Client {
	t.Helper()
	cl := h.b.Client(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(h.topics.Interactions))
	kafkatest.Eventually(t, time.Minute, func() error {
		if _, gen := cl.GroupMetadata(); gen <= 0 {
			return errors.New("not in the group yet")
		}
		return nil
	})
	return cl
}

// tierJob is a commit cycle of task 0 with one output record and input
// positions 7 and 3.
func tierJob(h *harness, value string, m groupMember, abandoned chan struct{}) *cycleOut {
	return &cycleOut{part: 0, recs: []*kgo.Record{{Topic: h.topics.TierChanges, Partition: 0, Key: []byte("c1"), Value: []byte(value)}},
		topics: &[numSources]string{h.topics.Interactions, h.topics.Purchases, ""}, pos: [numSources]int64{7, 3, -1}, group: m, abandoned: abandoned}
}

func testCommitterFenced(t *testing.T, h *harness, explicit bool) {
	group := kafkatest.Name(t, "g")
	p, c := startCommitter(t, h, group, explicit)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A member between sessions has no membership to fence by: no round
	// goes out. (try runs here while the committer has no round.)
	if _, err := c.try(ctx, []*cycleOut{tierJob(h, "no member", staleMember{"", -1}, nil)}); !errors.Is(err, errNotInGroup) {
		t.Fatalf("a round without a membership: %v, want errNotInGroup", err)
	}

	// Two members: the second's join moves the group to a new generation.
	join := func() *kgo.Client {
		return h.b.Client(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(h.topics.Interactions))
	}
	first := joinedMember(t, h, group)
	oldMember, oldGen := first.GroupMetadata()
	second := join()
	kafkatest.Eventually(t, time.Minute, func() error {
		_, g1 := first.GroupMetadata()
		_, g2 := second.GroupMetadata()
		if g1 <= oldGen || g2 != g1 {
			return errors.New("the group has not moved to a new generation with both members yet")
		}
		return nil
	})

	job := func(value string, m groupMember, abandoned chan struct{}) *cycleOut {
		return tierJob(h, value, m, abandoned)
	}
	aborts := func() float64 { return testutil.ToFloat64(p.m.transactions.WithLabelValues("abort")) }

	// The zombie's round: refused and aborted, again and again, until its
	// task is abandoned.
	abandoned := make(chan struct{})
	zombie := make(chan error, 1)
	go func() { zombie <- c.send(ctx, job("zombie", staleMember{oldMember, oldGen}, abandoned)) }()
	kafkatest.Eventually(t, time.Minute, func() error {
		if aborts() < 2 {
			return errors.New("the stale round has not been refused twice yet")
		}
		return nil
	})
	close(abandoned)
	if err := <-zombie; !errors.Is(err, errAbandoned) {
		t.Fatalf("the stale round ended with %v, want it refused until its task was abandoned", err)
	}

	// The same round under the current membership commits.
	if err := c.send(ctx, job("owner", first, make(chan struct{}))); err != nil {
		t.Fatalf("current membership: %v", err)
	}
	recs := h.b.ConsumeAll(t, h.topics.TierChanges)
	if len(recs) != 1 || string(recs[0].Value) != "owner" {
		var vals []string
		for _, r := range recs {
			vals = append(vals, string(r.Value))
		}
		t.Fatalf("read_committed reader saw %q, want only the owner's record", vals)
	}
	offs, err := kadm.NewClient(h.b.Client(t)).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	for topic, want := range map[string]int64{h.topics.Interactions: 7, h.topics.Purchases: 3} {
		o, ok := offs.Lookup(topic, 0)
		if !ok || o.At != want {
			t.Errorf("group offset of %s[0]: %+v, want %d (committed in the transaction)", topic, o, want)
		}
	}
	if !retriableTxn(kerr.IllegalGeneration) || retriableTxn(kerr.ProducerFenced) {
		t.Error("retriableTxn: a stale generation must be retried, a fenced producer must not")
	}
}

// TestNewOwnerWaitsForPendingOffsets checks the other half of the fence: a
// task's new owner does not restore while a transaction of the previous
// owner, whose offsets the coordinator has accepted, is still open (its
// EndTxn held at the broker), and goes on once it has ended. It needs
// kfake, to hold the EndTxn.
func TestNewOwnerWaitsForPendingOffsets(t *testing.T) {
	b, cluster := kafkatest.NewKfake(t)
	h := newHarnessOn(t, b, 1)
	group := kafkatest.Name(t, "g")
	p, c := startCommitter(t, h, group, false)
	member := joinedMember(t, h, group)
	var held atomic.Bool
	release := make(chan struct{})
	cluster.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if req.(*kmsg.EndTxnRequest).Commit && held.CompareAndSwap(false, true) {
			cluster.SleepControl(func() { <-release })
		}
		return nil, nil, false // the broker answers it
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	committed := make(chan error, 1)
	go func() { committed <- c.send(ctx, tierJob(h, "old owner", member, make(chan struct{}))) }()
	kafkatest.Eventually(t, 30*time.Second, func() error {
		if !held.Load() {
			return errors.New("the old owner's EndTxn has not reached the broker yet")
		}
		return nil
	})
	waited := make(chan error, 1)
	go func() { waited <- p.waitStable(ctx, b.Client(t), 0) }()
	// The wait must hold while the transaction is open; a second is many
	// round trips of the offset fetch it repeats.
	select {
	case err := <-waited:
		close(release)
		t.Fatalf("the new owner went on (%v) while the old owner's transaction was open", err)
	case <-time.After(time.Second):
	}
	close(release)
	if err := <-committed; err != nil {
		t.Fatalf("old owner's round: %v", err)
	}
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("waitStable after the transaction ended: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the new owner still waits after the old owner's transaction ended")
	}
}

// TestUnconfirmedCommitFails answers a round's EndTxn(commit) with
// UNKNOWN_SERVER_ERROR, which leaves the commit's outcome unknown (the
// broker may have committed it): the round must fail rather than go again,
// since its records sent again would be published twice had the broker
// committed. The committer then commits the next round, and a
// read_committed reader sees only that one. It needs kfake, to answer the
// request.
func TestUnconfirmedCommitFails(t *testing.T) {
	b, cluster := kafkatest.NewKfake(t)
	h := newHarnessOn(t, b, 1)
	group := kafkatest.Name(t, "g")
	_, c := startCommitter(t, h, group, false)
	member := joinedMember(t, h, group)
	var commits atomic.Int32
	cluster.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if !req.(*kmsg.EndTxnRequest).Commit || commits.Add(1) > 1 {
			return nil, nil, false // the broker answers it
		}
		resp := req.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.UnknownServerError.Code
		return resp, nil, true
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := c.send(ctx, tierJob(h, "unconfirmed", member, make(chan struct{})))
	if !errors.Is(err, errCommitUnconfirmed) {
		t.Fatalf("a round whose commit is unconfirmed: %v, want errCommitUnconfirmed", err)
	}
	if n := commits.Load(); n != 1 {
		t.Fatalf("%d EndTxn(commit) requests for the round, want 1: it was sent again", n)
	}
	if err := c.send(ctx, tierJob(h, "next", member, make(chan struct{}))); err != nil {
		t.Fatalf("the next round: %v", err)
	}
	var vals []string
	for _, r := range h.b.ConsumeAll(t, h.topics.TierChanges) {
		vals = append(vals, string(r.Value))
	}
	if len(vals) != 1 || vals[0] != "next" {
		t.Fatalf("read_committed reader saw %q, want only the next round's record", vals)
	}
}
