package processor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/processor/group"
	"valora/processor/score"
)

// ErrNotCoPartitioned is returned when the input topics do not have the same
// number of partitions, so that partition p of each cannot hold the same
// customers. It is group.ErrNotCoPartitioned, which the group leader's
// balancer sets when it sees such topics.
var ErrNotCoPartitioned = group.ErrNotCoPartitioned

// pollRecords bounds one poll; with BlockRebalanceOnPoll it also bounds how
// long a rebalance waits for the poll loop.
const pollRecords = 10000

// Processor consumes the input topics as a member of a consumer group and
// runs one task per assigned partition number. Create it with New and call
// Run once.
type Processor struct {
	cfg Config
	log *slog.Logger
	m   *metrics
	// mem holds the tasks' memory by component (valora_memory_bytes),
	// which each task updates at its commits.
	mem [numMem]atomic.Int64

	mu sync.Mutex // guards the fields below
	// partitions is the input topics' partition count, known after
	// checkTopics (before the group client exists) and fixed for the life
	// of the processor.
	partitions int
	tasks      map[int32]*task
	// retiring holds the tasks being stopped (no longer in tasks), so
	// that abandon reaches them too.
	retiring map[*task]struct{}
	cl       *kgo.Client
	// abandoned is set by abandon: tasks stop without committing, and
	// none starts any more.
	abandoned bool
	// finished holds the tasks of a replay that reached their end offsets
	// and committed; Run returns once it holds every partition.
	finished map[int32]bool
	// standbys are the running standby copies (standby.go); wantStandby
	// the tasks the latest assignment names this member a standby for.
	standbys    map[int32]*standby
	wantStandby map[int32]bool
	standbyOff  bool // set at shutdown: no standby starts any more

	// txn sends the tasks' commit cycles in exactly-once mode (txn.go);
	// nil otherwise. Set before the group client exists, so before any
	// task.
	txn *committer
	// newSink gives a new task the sink its cycles go to Kafka through:
	// taskSink, set by New. Tests of this package wrap it, to fail a
	// cycle at a chosen point.
	newSink func(cl *kgo.Client) sink
	// implicitOffsets: the brokers add a group to a transaction on
	// TxnOffsetCommit by themselves (setUp asks them).
	implicitOffsets bool

	// ingestSlots holds a token per task restoring through ingested
	// tables (restoreIngestSlots).
	ingestSlots chan struct{}
	// commitSlots holds a token per task building or committing a store
	// batch of bigBatchBytes or more.
	commitSlots chan struct{}

	cancel context.CancelCauseFunc
	ready  chan struct{} // closed once the first assignment has started its tasks
	once   sync.Once

	// policy is the policy in force; tasks switch to a new one at their
	// next commit (SetPolicy).
	policy atomic.Pointer[score.Policy]

	// handing is when the poll loop started handing a poll's records to
	// the tasks (Unix nanoseconds; 0: it is not handing any): /healthz
	// reads a hand-off older than StallTimeout as a wedged loop.
	handing atomic.Int64
	// handClock is the time the poll loop has spent handing, in one word
	// so that it reads consistently (handingTime): the nanoseconds of the
	// handings that ended, minus the Unix nanoseconds at which the one
	// under way started, if any (which makes it negative). Only the poll
	// loop writes it.
	handClock atomic.Int64
	// timedOut is set when a shutdown outlasted ShutdownTimeout.
	timedOut atomic.Bool

	// adjusted counts the adjustOffsets calls that have returned: the
	// client has taken the offsets they chose (see task.commitStart).
	adjusted atomic.Uint64

	// listedAt is when watchEnds last listed the input offsets (Unix
	// nanoseconds; 0: never): /readyz reads it as "the brokers answer".
	listedAt atomic.Int64
	// listFailing is set while the latest offset listing failed.
	listFailing atomic.Bool

	// owners caches which member owns each task and the URL it
	// advertises, for lookups of customers this instance does not own.
	owners ownerCache

	// ends holds the latest end offsets of the inputs, by partition,
	// refreshed by watchEnds; tasks read it to know whether they are
	// caught up (idle time, lag gauges).
	ends sync.Map // int32 → *endOffsets
}

// endOffsets is one listing of an input partition's offsets, by source.
type endOffsets struct {
	start [numSources]int64
	end   [numSources]int64
	at    time.Time
}

// sourceTopics names the inputs by source; Erasures may be "" (none).
func (p *Processor) sourceTopics() [numSources]string {
	t := p.cfg.Topics
	return [numSources]string{srcInteractions: t.Interactions, srcPurchases: t.Purchases, srcErasures: t.Erasures}
}

// inputTopics lists the input topics that are configured.
func (p *Processor) inputTopics() []string {
	var out []string
	for _, t := range p.sourceTopics() {
		if t != "" {
			out = append(out, t)
		}
	}
	return out
}

// endOffsets returns the latest listing for a partition, or nil.
func (p *Processor) endOffsets(part int32) *endOffsets {
	v, ok := p.ends.Load(part)
	if !ok {
		return nil
	}
	return v.(*endOffsets)
}

// endsInterval is how often watchEnds lists the input offsets: often enough
// that an idle task notices it is caught up well within the idle timeout.
func (p *Processor) endsInterval() time.Duration {
	return min(time.Second, max(50*time.Millisecond, p.cfg.IdleTimeout/4))
}

// endsStale is the age past which a listing no longer says where an input
// ends: a few intervals, so that one slow listing does not count.
func (p *Processor) endsStale() time.Duration {
	return 3*p.endsInterval() + time.Second
}

// handingTime is the time the poll loop has spent handing records to the
// tasks, the handing under way up to now included.
func (p *Processor) handingTime(now time.Time) time.Duration {
	v := p.handClock.Load()
	if v < 0 {
		v += now.UnixNano()
	}
	return time.Duration(v)
}

// watchEnds lists the start and end offsets of both inputs at once and then
// every endsInterval until ctx ends. Failures are logged and retried at the
// next interval; tasks treat a listing older than endsStale as unknown. The
// end is the last stable offset, the end a read_committed consumer reaches:
// past it, an open transaction's records cannot be fetched yet.
func (p *Processor) watchEnds(ctx context.Context, adm *kadm.Client) {
	tick := time.NewTicker(p.endsInterval())
	defer tick.Stop()
	topics := p.sourceTopics()
	inputs := p.inputTopics()
	failing := false
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		starts, serr := adm.ListStartOffsets(lctx, inputs...)
		ends, eerr := adm.ListCommittedOffsets(lctx, inputs...)
		cancel()
		err := errors.Join(serr, eerr, starts.Error(), ends.Error())
		if err != nil {
			if !failing && ctx.Err() == nil {
				p.log.Warn("list input offsets", "err", err)
			}
			failing = true
			p.listFailing.Store(true)
			continue
		}
		failing = false
		p.listFailing.Store(false)
		p.listedAt.Store(time.Now().UnixNano())
		now := time.Now()
		byPart := map[int32]*endOffsets{}
		for src, topic := range topics {
			ends.Each(func(o kadm.ListedOffset) {
				if topic == "" || o.Topic != topic {
					return
				}
				e := byPart[o.Partition]
				if e == nil {
					e = &endOffsets{at: now}
					byPart[o.Partition] = e
				}
				e.end[src] = o.Offset
				if so, ok := starts.Lookup(topic, o.Partition); ok {
					e.start[src] = so.Offset
				}
			})
		}
		for part, e := range byPart {
			p.ends.Store(part, e)
		}
	}
}

// New validates cfg and returns a Processor. It does no I/O.
func New(cfg Config) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("processor config: %w", err)
	}
	p := &Processor{
		cfg:      cfg,
		log:      cfg.Logger,
		m:        newMetrics(cfg.Registerer, cfg.Replay != nil, cfg.Topics),
		tasks:    make(map[int32]*task),
		retiring: make(map[*task]struct{}),
		ready:    make(chan struct{}),
		finished: make(map[int32]bool),
		standbys: make(map[int32]*standby),

		ingestSlots: make(chan struct{}, restoreIngestSlots()),
		commitSlots: make(chan struct{}, bigBatchSlots),
	}
	p.newSink = p.taskSink
	p.policy.Store(cfg.Policy)
	p.m.policy.WithLabelValues(cfg.Policy.Version).Set(1)
	cfg.Registerer.MustRegister(&memoryCollector{p: p})
	return p, nil
}

// SetPolicy puts a new scoring policy in force while the processor runs
// (a reload). It validates pol, then each task switches at the end of its
// next commit cycle: it rebuilds its timer index under pol, and every
// customer last evaluated under another policy is re-evaluated at once;
// each one whose tier, churn flag, lifecycle stage or value class changes
// gets a TierChange with cause POLICY_CHANGE, through the ordinary commit
// cycle. Consumption pauses only while a task rescans its customers. The
// same holds across a restart with a new policy, so a customer is
// announced once per policy version it moves under.
func (p *Processor) SetPolicy(pol *score.Policy) error {
	if pol == nil {
		return errors.New("set policy: nil")
	}
	if err := pol.Validate(); err != nil {
		return fmt.Errorf("set policy: %w", err)
	}
	old := p.policy.Swap(pol)
	if old.Version != pol.Version {
		p.m.policy.DeleteLabelValues(old.Version)
	}
	p.m.policy.WithLabelValues(pol.Version).Set(1)
	p.log.Info("policy set; tasks switch at their next commit", "policy_version", pol.Version, "previous", old.Version)
	return nil
}

// Run joins the group and processes until ctx is cancelled or a task fails.
// On cancellation every task finishes its commit cycle before Run returns
// nil. Run returns the first task or client error otherwise.
func (p *Processor) Run(ctx context.Context) error {
	// The group client joins the group, and may be assigned partitions and
	// start tasks, as soon as it exists: before that, the topics are
	// checked (and the changelog created) and the partition count is known
	// (tasks take their share of memory by it), and cancel is in place (a
	// replay whose tasks all find their work done at load ends through it).
	if err := p.setUp(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	p.mu.Lock()
	p.cancel = cancel
	p.mu.Unlock()
	if p.cfg.Guarantee == ExactlyOnce && p.cfg.Topics.Changelog != "" {
		key, err := p.instanceKey()
		if err != nil {
			return err
		}
		txn, err := newCommitter(ctx, p, key, !p.implicitOffsets)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		// The committer outlives the poll loop: the tasks' last cycles
		// go out after it ends.
		tctx, tcancel := context.WithCancel(context.Background())
		p.mu.Lock()
		p.txn = txn
		p.mu.Unlock()
		go txn.run(tctx)
		defer func() {
			tcancel()
			<-txn.done
		}()
	}
	cl, err := kgo.NewClient(p.clientOpts(roleGroup)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	// With BlockRebalanceOnPoll, Close would wait for a rebalance that the
	// last poll still blocks. Leaving the group is bounded: a broker that
	// does not answer must not hold the shutdown (the group then moves
	// the tasks after the session timeout).
	defer func() {
		cl.AllowRebalance()
		lctx, lcancel := context.WithTimeout(context.Background(), leaveTimeout)
		if err := cl.LeaveGroupContext(lctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			p.log.Warn("leave group", "err", err)
		}
		lcancel()
		cl.Close()
	}()
	p.mu.Lock()
	p.cl = cl
	p.mu.Unlock()
	adm := kadm.NewClient(cl)
	p.owners.mu.Lock()
	p.owners.adm = adm
	p.owners.mu.Unlock()
	var watchers sync.WaitGroup
	watchers.Go(func() { p.watchEnds(ctx, adm) })
	defer watchers.Wait()
	defer cancel(nil)
	p.log.Info("processor started", "group", p.cfg.Group, "brokers", p.cfg.Brokers,
		"interactions", p.cfg.Topics.Interactions, "purchases", p.cfg.Topics.Purchases,
		"erasures", p.cfg.Topics.Erasures, "guarantee", p.cfg.Guarantee, "replay", p.cfg.Replay != nil)
	if r := p.cfg.Replay; r != nil {
		var target int64
		for _, topic := range p.inputTopics() {
			for part, end := range r.End[topic] {
				target += max(0, end-r.Start[topic][part])
			}
		}
		p.m.replayTarget.Set(float64(target))
	}

	var targets []*task
	brokersDown := false
	for {
		fs := cl.PollRecords(ctx, pollRecords)
		if fs.IsClientClosed() || ctx.Err() != nil {
			break
		}
		var fatal error
		fs.EachError(func(topic string, part int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			if groupHiccup(err) {
				// The client rejoins by itself; the tasks were stopped
				// through onLost or onRevoked and start again on the
				// next assignment.
				p.log.Warn("group session interrupted; rejoining", "err", err)
				return
			}
			if unreachable(err) {
				// The brokers are down or restarting: the client
				// retries; /readyz says so meanwhile, and a task
				// whose commit cannot finish stops the processor.
				if !brokersDown {
					p.log.Warn("brokers unreachable; retrying", "err", err)
				}
				brokersDown = true
				return
			}
			// kgo retries retryable errors internally; what reaches us is
			// data loss or an authorization or config problem.
			fatal = fmt.Errorf("fetch %s[%d]: %w", topic, part, err)
		})
		if fatal != nil {
			cl.AllowRebalance()
			cancel(fatal)
			break
		}
		if brokersDown && len(fs) > 0 && fs.NumRecords() > 0 {
			p.log.Info("brokers reachable again")
			brokersDown = false
		}
		now := time.Now()
		// Hand each task both of its inputs' records of this poll at once,
		// so that it can merge them in event-time order.
		byPart := map[int32]*fetched{}
		var parts []int32
		fs.EachPartition(func(ftp kgo.FetchTopicPartition) {
			if len(ftp.Records) == 0 {
				return
			}
			f := byPart[ftp.Partition]
			if f == nil {
				f = &fetched{at: now}
				byPart[ftp.Partition] = f
				parts = append(parts, ftp.Partition)
			}
			src := srcInteractions
			switch ftp.Topic {
			case p.cfg.Topics.Purchases:
				src = srcPurchases
			case p.cfg.Topics.Erasures:
				src = srcErasures
			}
			f.recs[src] = append(f.recs[src], ftp.Records...)
		})
		// The tasks are looked up under p.mu and handed their records
		// without it: a task may take a while to accept (it commits),
		// and whoever stops or fails a task needs p.mu meanwhile.
		p.mu.Lock()
		targets = targets[:0]
		for _, part := range parts {
			if t := p.tasks[part]; t != nil {
				targets = append(targets, t)
			} // else not ours any more: the next owner reads from state offsets
		}
		p.mu.Unlock()
		p.handing.Store(now.UnixNano())
		p.handClock.Add(-now.UnixNano())
	hand:
		for _, t := range targets {
			select {
			case t.in <- *byPart[t.part]:
			case <-t.done:
			case <-ctx.Done():
				break hand
			}
		}
		p.handClock.Add(time.Now().UnixNano())
		p.handing.Store(0)
		cl.AllowRebalance()
	}

	cause := context.Cause(ctx)
	if errors.Is(cause, context.Canceled) {
		cause = nil
	}
	// The tasks finish their cycles, unless that takes longer than
	// ShutdownTimeout (a broker that does not answer): then they are
	// abandoned, and the state stays at the last durable cycle, as after
	// a crash.
	stopping := time.Now()
	timeout := time.AfterFunc(p.cfg.ShutdownTimeout, func() {
		p.log.Error("shutdown: tasks did not finish their commit cycle in time; abandoning it (the state stays at the last durable cycle)",
			"shutdown_timeout", p.cfg.ShutdownTimeout)
		p.timedOut.Store(true)
		p.abandon()
	})
	p.mu.Lock()
	abandoned := p.abandoned
	p.mu.Unlock()
	p.stopStandbys()
	p.stopTasks(!abandoned)
	p.mu.Lock()
	abandoned = p.abandoned
	p.mu.Unlock()
	if !abandoned {
		left := p.cfg.ShutdownTimeout - time.Since(stopping)
		cctx, ccancel := context.WithTimeout(context.Background(), min(10*time.Second, max(left, 0)))
		if err := cl.CommitMarkedOffsets(cctx); err != nil {
			p.log.Warn("commit offsets to kafka at shutdown", "err", err)
		}
		ccancel()
	}
	timeout.Stop()
	if p.timedOut.Load() && cause == nil {
		cause = ErrShutdownAbandoned
	}
	p.log.Info("processor stopped", "err", cause, "stop_seconds", time.Since(stopping).Seconds())
	return cause
}

// leaveTimeout bounds how long Run waits for the group coordinator to
// acknowledge that this member leaves.
const leaveTimeout = 3 * time.Second

// ErrShutdownAbandoned is returned by Run when the tasks could not finish
// their commit cycle within Config.ShutdownTimeout after Run's context
// ended: the cycle in flight was abandoned, and the state is that of the
// last durable cycle (a restart resumes from it, as after a crash).
var ErrShutdownAbandoned = errors.New("shutdown timed out: the commit in flight was abandoned; the state stays at the last durable cycle")

// groupHiccup reports whether a fetch error is the group session ending
// (a missed heartbeat deadline, a rebalance racing a commit): the client
// rejoins on its own, so it is not a reason to stop.
func groupHiccup(err error) bool {
	for _, e := range []error{kerr.UnknownMemberID, kerr.IllegalGeneration, kerr.RebalanceInProgress,
		kerr.StaleMemberEpoch, kerr.CoordinatorNotAvailable, kerr.NotCoordinator, kerr.CoordinatorLoadInProgress} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// unreachable reports whether a fetch error says the brokers cannot be
// reached (refused or dropped connections): the client retries, so it is
// not a reason to stop.
func unreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// Ready is closed once this instance has been assigned its first tasks.
func (p *Processor) Ready() <-chan struct{} { return p.ready }

// taskFinished records that a replay task reached its end offsets and
// committed; the last one ends Run.
func (p *Processor) taskFinished(part int32) {
	p.mu.Lock()
	p.finished[part] = true
	done := len(p.finished) >= p.partitions
	cancel := p.cancel
	p.mu.Unlock()
	if done && cancel != nil {
		p.log.Info("replay reached its end offsets on every partition")
		cancel(context.Canceled)
	}
}

// abandon gives up the work in flight, for a shutdown that outlasted
// ShutdownTimeout: every task exits at its next step without committing (a
// commit waiting on Kafka gives up), no task starts any more, the
// committer ends no transaction any more, and Run returns without
// committing offsets to the group. The store stays at the last cycle it
// holds, as after a crash; Kafka may hold later ones, which a restart
// restores from the changelog. Run still waits for every task to exit, so
// none writes to the store once it returns.
func (p *Processor) abandon() {
	p.mu.Lock()
	p.abandoned = true
	for _, t := range p.tasks {
		t.abandon()
	}
	for t := range p.retiring {
		t.abandon()
	}
	cancel := p.cancel
	txn := p.txn
	p.mu.Unlock()
	if txn != nil {
		txn.abandon()
	}
	if cancel != nil {
		cancel(context.Canceled)
	}
}

// fail stops the processor with err; called by a task that cannot go on.
func (p *Processor) fail(err error) {
	p.mu.Lock()
	cancel := p.cancel
	p.mu.Unlock()
	if cancel != nil {
		cancel(err)
	}
}

// setUp checks the topics with a client of its own, outside the group.
func (p *Processor) setUp(ctx context.Context) error {
	cl, err := kgo.NewClient(p.clientOpts(roleAdmin)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	if err := p.checkTopics(ctx, kadm.NewClient(cl)); err != nil {
		return err
	}
	if p.cfg.Guarantee == ExactlyOnce && p.cfg.Topics.Changelog != "" {
		ok, err := supportsImplicitOffsets(ctx, cl)
		if err != nil {
			return err
		}
		p.implicitOffsets = ok
	}
	return nil
}

// checkTopics verifies that the inputs exist and are co-partitioned, and
// that the outputs exist (creating them if configured to).
func (p *Processor) checkTopics(ctx context.Context, adm *kadm.Client) error {
	t := p.cfg.Topics
	var outputs []string
	if r := p.cfg.Replay; r == nil || !r.NoOutput {
		outputs = append(outputs, t.TierChanges)
	}
	if r := p.cfg.Replay; r == nil || !r.NoDeadLetter {
		outputs = append(outputs, t.DeadLetter)
	}
	details, err := adm.ListTopics(ctx, append([]string{t.Interactions, t.Purchases}, outputs...)...)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	parts := map[string]int{}
	for _, name := range []string{t.Interactions, t.Purchases} {
		d, ok := details[name]
		if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("input topic %q does not exist: create it with the same partition count as the other input", name)
		}
		if d.Err != nil {
			return fmt.Errorf("describe topic %q: %w", name, d.Err)
		}
		parts[name] = len(d.Partitions)
	}
	p.mu.Lock()
	p.partitions = parts[t.Purchases]
	p.mu.Unlock()
	if parts[t.Interactions] != parts[t.Purchases] {
		return fmt.Errorf("%w: %q has %d partitions and %q has %d; give both the same partition count and key both by customer id",
			ErrNotCoPartitioned, t.Interactions, parts[t.Interactions], t.Purchases, parts[t.Purchases])
	}
	if err := p.checkErasures(ctx, adm, parts[t.Purchases]); err != nil {
		return err
	}
	if err := p.checkChangelog(ctx, adm, parts[t.Purchases]); err != nil {
		return err
	}
	if err := p.checkProfiles(ctx, adm, parts[t.Purchases]); err != nil {
		return err
	}
	var missing []string
	for _, name := range outputs {
		if d, ok := details[name]; !ok || d.Err != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	if !p.cfg.CreateTopics {
		return fmt.Errorf("output topics %v do not exist: create them, or let valora create them with --create-topics", missing)
	}
	return p.createTopics(ctx, adm, missing, int32(parts[t.Purchases]))
}

// checkErasures makes sure the erasure topic, if any, is co-partitioned with
// the inputs. The daemon creates a missing one (erasure requests must have
// somewhere to go from the first day); a replay, which only reads, refuses
// it (leave Topics.Erasures empty to replay without one).
func (p *Processor) checkErasures(ctx context.Context, adm *kadm.Client, parts int) error {
	name := p.cfg.Topics.Erasures
	if name == "" {
		return nil
	}
	details, err := adm.ListTopics(ctx, name)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	d, ok := details[name]
	switch {
	case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
		if p.cfg.Replay != nil {
			return fmt.Errorf("erasure topic %q does not exist", name)
		}
		if err := createTopic(ctx, adm, name, int32(parts), nil); err != nil {
			return fmt.Errorf("create erasure topic %q (create it with %d partitions, or run without one: --erasures-topic \"\"): %w", name, parts, err)
		}
		p.log.Info("created erasure topic", "topic", name, "partitions", parts)
		return nil
	case d.Err != nil:
		return fmt.Errorf("describe topic %q: %w", name, d.Err)
	case len(d.Partitions) != parts:
		return fmt.Errorf("%w: erasure topic %q has %d partitions and the inputs %d; give it the inputs' partition count and key it by customer id",
			ErrNotCoPartitioned, name, len(d.Partitions), parts)
	}
	return nil
}

// createTopics creates output topics with the inputs' partition count.
func (p *Processor) createTopics(ctx context.Context, adm *kadm.Client, missing []string, parts int32) error {
	for _, topic := range missing {
		if err := createTopic(ctx, adm, topic, parts, nil); err != nil {
			return fmt.Errorf("create output topic %q: %w", topic, err)
		}
		p.log.Info("created output topic", "topic", topic, "partitions", parts)
	}
	return nil
}

// onAssigned starts a task for every newly assigned partition number.
func (p *Processor) onAssigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	nums := map[int32]bool{}
	for _, ps := range assigned {
		for _, n := range ps {
			nums[n] = true
		}
	}
	p.mu.Lock()
	if p.abandoned {
		p.mu.Unlock()
		return
	}
	// A task is registered at once, so that no standby of it starts
	// again, but runs only once its standby has exited: the standby's
	// last write must be in the store before the task's restore reads it.
	var starting []*task
	var standbys []*standby
	for n := range nums {
		if p.tasks[n] != nil {
			continue
		}
		if s := p.takeStandbyLocked(n); s != nil {
			standbys = append(standbys, s)
		}
		t := newTask(p, n, cl)
		p.tasks[n] = t
		starting = append(starting, t)
	}
	p.m.rebalances.Inc()
	p.m.tasks.Set(float64(len(p.tasks)))
	owned := len(p.tasks)
	p.mu.Unlock()
	for _, s := range standbys {
		<-s.done
	}
	for _, t := range starting {
		go t.run()
	}
	p.log.Info("tasks assigned", "started", len(starting), "owned", owned)
	p.once.Do(func() { close(p.ready) })
}

// onRevoked lets every revoked task finish its commit cycle, then commits
// the marked offsets to Kafka for lag tooling.
func (p *Processor) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	p.stopPartitions(revoked, true)
	p.mu.Lock()
	abandoned := p.abandoned
	p.mu.Unlock()
	if !abandoned {
		if err := cl.CommitMarkedOffsets(ctx); err != nil {
			p.log.Warn("commit offsets to kafka on revoke", "err", err)
		}
	}
}

// onLost drops the tasks' uncommitted work: another member may own them now.
func (p *Processor) onLost(ctx context.Context, cl *kgo.Client, lost map[string][]int32) {
	p.stopPartitions(lost, false)
}

func (p *Processor) stopPartitions(parts map[string][]int32, graceful bool) {
	nums := map[int32]bool{}
	for _, ps := range parts {
		for _, n := range ps {
			nums[n] = true
		}
	}
	p.mu.Lock()
	var stopping []*task
	for n := range nums {
		if t := p.tasks[n]; t != nil {
			delete(p.tasks, n)
			p.retiring[t] = struct{}{}
			stopping = append(stopping, t)
		}
	}
	p.m.tasks.Set(float64(len(p.tasks)))
	if p.abandoned {
		graceful = false
	}
	p.mu.Unlock()
	// Each task is told first and waited for after, so that they finish
	// their last cycles together.
	for _, t := range stopping {
		if !graceful {
			t.abandon()
		}
		t.requestStop()
	}
	for _, t := range stopping {
		<-t.done
	}
	// A task this member stands by for now follows its changelog again.
	p.mu.Lock()
	for _, t := range stopping {
		delete(p.retiring, t)
		if p.wantStandby[t.part] && p.tasks[t.part] == nil {
			p.startStandbyLocked(t.part)
		}
	}
	p.mu.Unlock()
	if len(stopping) > 0 {
		p.log.Info("tasks stopped", "stopped", len(stopping), "graceful", graceful)
	}
}

func (p *Processor) stopTasks(graceful bool) {
	p.mu.Lock()
	all := map[string][]int32{"": nil}
	for n := range p.tasks {
		all[""] = append(all[""], n)
	}
	p.mu.Unlock()
	p.stopPartitions(all, graceful)
}

// adjustOffsets starts each assigned partition at the position recorded in
// the state store together with the state it covers. A partition the store
// has never seen starts at the beginning of the topic, so that its state is
// rebuilt from every input record.
//
// It first waits for each partition's task to restore its state from the
// changelog (heartbeats go on meanwhile; a rebalance cancels ctx), so that
// the stored positions are final: a task reads no input before it is
// restored.
func (p *Processor) adjustOffsets(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	byPart := map[int32]map[string]int64{}
	for _, ps := range offsets {
		for part := range ps {
			p.mu.Lock()
			t := p.tasks[part]
			p.mu.Unlock()
			if t == nil {
				continue
			}
			select {
			case <-t.restored:
			case <-t.done:
				return nil, fmt.Errorf("task %d stopped before it was restored", part)
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	for topic, ps := range offsets {
		for part := range ps {
			stored, ok := byPart[part]
			if !ok {
				var err error
				stored, err = p.cfg.Store.Offsets(part)
				if err != nil {
					return nil, fmt.Errorf("read stored offsets of task %d: %w", part, err)
				}
				byPart[part] = stored
			}
			if next, ok := stored[topic]; ok {
				ps[part] = kgo.NewOffset().At(next).WithEpoch(-1)
			} else if r := p.cfg.Replay; r != nil {
				ps[part] = kgo.NewOffset().At(r.Start[topic][part]).WithEpoch(-1)
			} else {
				ps[part] = kgo.NewOffset().AtStart()
			}
		}
	}
	p.adjusted.Add(1)
	return offsets, nil
}
