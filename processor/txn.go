package processor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// errAbandoned ends a commit that the task's abandon interrupted: Kafka
// may have the cycle or not, and the store does not.
var errAbandoned = errors.New("commit abandoned")

// taskPartitioner partitions the changelog by hand (record.Partition is
// the task) and every other topic by the default key hash, so that a
// customer's outputs share a partition, as Java clients would place them.
type taskPartitioner struct {
	changelog string
	def       kgo.Partitioner
}

func newTaskPartitioner(changelog string) taskPartitioner {
	return taskPartitioner{changelog: changelog, def: kgo.UniformBytesPartitioner(64<<10, true, true, nil)}
}

func (p taskPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if topic == p.changelog {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return p.def.ForTopic(topic)
}

// nextCycle returns a new cycle number for the changelog.
func (t *task) nextCycle() uint64 {
	t.cycle++
	return t.cycle
}

// startChangelog restores the store from the changelog before the task
// reads input. Without a changelog (a replay) it does nothing.
func (t *task) startChangelog() error {
	if t.p.cfg.Topics.Changelog == "" {
		return nil
	}
	if err := t.restore(t.ctx); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

// produceAll produces recs and waits until Kafka has acknowledged them
// all, returning the first error, or until ctx ends. Unlike ProduceSync,
// it does not wait past ctx: an idempotent producer keeps retrying a batch
// that may have reached a broker that stopped answering, so ProduceSync
// can wait forever. The records' fate is then settled when the client is
// closed (it fails them), and the task, which stops, never reuses them.
func produceAll(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	var (
		left  atomic.Int64
		first atomic.Pointer[error]
		done  = make(chan struct{})
	)
	left.Store(int64(len(recs)))
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			first.CompareAndSwap(nil, &err)
		}
		if left.Add(-1) == 0 {
			close(done)
		}
	}
	for _, r := range recs {
		cl.Produce(ctx, r, promise)
	}
	select {
	case <-done:
		if err := first.Load(); err != nil {
			return *err
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("produce: %w", context.Cause(ctx))
	}
}

// groupMember is a group consumer's current membership.
type groupMember interface {
	GroupMetadata() (memberID string, generation int32)
}

// A sink takes a task's commit cycle to Kafka: send returns once Kafka has
// it all, or with the reason it does not. What the task does after (its
// store batch) depends only on that answer, so the task does not know which
// guarantee it runs under. Two sinks exist: the instance's committer
// (exactly-once: the cycle goes out in a transaction shared with the other
// tasks due in the same round) and producerSink (at-least-once: the
// cycle's records are produced and acknowledged).
type sink interface {
	send(ctx context.Context, c *cycleOut) error
	// durable is told once the cycle is in the store too, so that the
	// sink can hand the group the positions it covers (they must never
	// run ahead of the state: lag tooling reads them as processed).
	durable(c *cycleOut)
}

// taskSink returns the sink of a task whose group consumer is cl: the
// instance's committer in exactly-once mode, else a producerSink.
func (p *Processor) taskSink(cl *kgo.Client) sink {
	if p.txn != nil {
		return p.txn
	}
	return producerSink{cl}
}

// producerSink sends a cycle without a transaction, through the group
// consumer's client, and marks its positions for the group's next
// offset commit once the store has it.
type producerSink struct{ cl *kgo.Client }

func (s producerSink) send(ctx context.Context, c *cycleOut) error {
	if err := produceAll(ctx, s.cl, c.recs); err != nil {
		return fmt.Errorf("produce outputs: %w", err)
	}
	return nil
}

func (s producerSink) durable(c *cycleOut) {
	if all := c.positions(); len(all) > 0 {
		s.cl.MarkCommitOffsets(all)
	}
}

// positions returns the cycle's input positions by topic, as the group
// client takes them.
func (c *cycleOut) positions() map[string]map[int32]kgo.EpochOffset {
	return positionsOf(c.part, c.topics, c.pos)
}

// positionsOf returns partition part's positions pos of the sources
// topics, by topic, as the group client takes them; an unknown position
// (-1) or an absent source is left out.
func positionsOf(part int32, topics *[numSources]string, pos [numSources]int64) map[string]map[int32]kgo.EpochOffset {
	all := make(map[string]map[int32]kgo.EpochOffset, numSources)
	for src, next := range pos {
		if next >= 0 && topics[src] != "" {
			all[topics[src]] = map[int32]kgo.EpochOffset{part: {Epoch: -1, Offset: next}}
		}
	}
	return all
}

// A cycleOut is what one task's commit cycle sends to Kafka.
type cycleOut struct {
	part int32
	// recs are the cycle's records, changelog checkpoint last. The
	// committer owns them until it answers on done.
	recs []*kgo.Record
	// topics and pos are the task's inputs and its positions after the
	// cycle (-1: none yet): the transaction commits them to the group,
	// which is what fences it.
	topics *[numSources]string
	pos    [numSources]int64
	// group is the group consumer (a *kgo.Client) whose membership the
	// task's ownership comes from.
	group groupMember
	// abandoned is closed when the task is abandoned: its job is left
	// out of any transaction not yet begun.
	abandoned <-chan struct{}
	// done receives the job's outcome, once.
	done chan error
}

// committer sends the commit cycles of all of an instance's tasks in one
// transaction per round (exactly-once mode), as Kafka Streams' stream
// threads do since KIP-447: a transaction costs the broker the same
// transaction-log writes and EndTxn whatever it holds, so one per round
// instead of one per task takes that cost off the broker per task.
//
// Zombie fencing comes from the group: every transaction commits its
// tasks' input positions to the group with TxnOffsetCommit, carrying the
// member id and generation under which they were assigned. The coordinator
// refuses that commit from a member that is no longer in the generation,
// and the committer then aborts the transaction, so an instance that lost
// its tasks cannot commit outputs or changelog records for them. A new
// owner waits, before it restores, until the group has no offset commit
// pending for the task's inputs (waitStable, as a KIP-447 consumer fetches
// its offsets with require_stable): a transaction of the old owner whose
// offsets the coordinator accepted is then either committed, and in what
// the new owner restores, or aborted.
//
// The transactional id is the group's plus the instance's key (Config's
// InstanceID, else a key kept in the store), so that a restarted instance
// fences its previous run and aborts the transaction that run left open.
//
// One goroutine (run, owned by Processor.Run) sends the transactions. The
// tasks hand it jobs over jobs and wait for the answer on the job's done
// channel, or until they are abandoned.
type committer struct {
	p    *Processor
	id   string
	cl   *kgo.Client
	jobs chan *cycleOut
	// addOffsets: the brokers lack KIP-890's implicit addition of the
	// group to the transaction, so AddOffsetsToTxn comes first.
	addOffsets bool

	// abandoned is closed by abandon (Processor.abandon): the committer
	// ends no transaction any more.
	abandoned   chan struct{}
	abandonOnce sync.Once
	done        chan struct{} // closed when run returns
}

// committerLinger is how long a round waits, after its first job, for the
// other tasks' jobs of the same commit interval: the tasks' ticks are
// aligned, but each builds its cycle before it hands it over.
const committerLinger = 5 * time.Millisecond

// newCommitter creates the instance's transactional producer and
// initialises it, which fences an earlier run of this instance and aborts
// the transaction it left open.
func newCommitter(ctx context.Context, p *Processor, key string, addOffsets bool) (*committer, error) {
	id := p.cfg.Group + "-" + key
	// TxnOffsetCommit is sent by hand (below), so its version is capped at
	// one that names topics (v6 names them by id): v5 where the brokers
	// add the group to the transaction themselves (KIP-890), else v4.
	vers := kversion.Stable()
	vers.SetMaxKeyVersion(int16(kmsg.TxnOffsetCommit), 5)
	if addOffsets {
		vers.SetMaxKeyVersion(int16(kmsg.TxnOffsetCommit), 4)
	}
	cl, err := kgo.NewClient(p.clientOpts(roleTxn,
		kgo.TransactionalID(id),
		kgo.TransactionTimeout(p.cfg.TransactionTimeout),
		kgo.MaxVersions(vers),
	)...)
	if err != nil {
		return nil, fmt.Errorf("transactional producer: %w", err)
	}
	if _, _, err := cl.ProducerID(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("initialise transactional producer %q: %w", id, err)
	}
	return &committer{
		p: p, id: id, cl: cl, addOffsets: addOffsets,
		jobs:      make(chan *cycleOut, 1024),
		abandoned: make(chan struct{}),
		done:      make(chan struct{}),
	}, nil
}

// durable does nothing: the transaction committed the positions.
func (c *committer) durable(*cycleOut) {}

// send hands a cycle to the committer and waits for its outcome. It
// returns errAbandoned if the task is abandoned first: the cycle may still
// commit in Kafka (as when a process dies after its EndTxn), which a
// restore catches up with.
func (c *committer) send(ctx context.Context, j *cycleOut) error {
	j.done = make(chan error, 1)
	select {
	case c.jobs <- j:
	case <-j.abandoned:
		return errAbandoned
	case <-ctx.Done():
		return fmt.Errorf("commit: %w", context.Cause(ctx))
	case <-c.done:
		return errCommitterStopped
	}
	select {
	case err := <-j.done:
		return err
	case <-j.abandoned:
		return errAbandoned
	case <-ctx.Done():
		return fmt.Errorf("commit: %w", context.Cause(ctx))
	}
}

var (
	errCommitterStopped = errors.New("the instance's transactional producer has stopped")
	// errCommitUnconfirmed fails a round whose EndTxn(commit) got no
	// clear answer: it is never sent again (retriableTxn).
	errCommitUnconfirmed = errors.New("the transaction's commit is unconfirmed")
	// errNotInGroup refuses a round while the instance is not a member of
	// the group; it is sent again (retriableTxn) until it is, or until its
	// tasks are abandoned.
	errNotInGroup = errors.New("not a member of the group")
)

// run sends rounds until ctx ends (after every task has stopped), then
// closes the client. A job that arrives after ctx ended gets
// errCommitterStopped.
func (c *committer) run(ctx context.Context) {
	defer close(c.done)
	defer c.cl.Close()
	var round []*cycleOut
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-c.jobs:
			round = append(round[:0], j)
		}
		linger := time.NewTimer(committerLinger)
	gather:
		for {
			select {
			case j := <-c.jobs:
				round = append(round, j)
			case <-linger.C:
				break gather
			case <-ctx.Done():
				break gather
			}
		}
		linger.Stop()
		c.commit(ctx, round)
		clear(round)
	}
}

// abandon stops the committer for Processor.abandon (a shutdown past
// ShutdownTimeout): no transaction is ended any more, and the open one
// stays open until the next run of the instance fences it or the broker
// aborts it.
func (c *committer) abandon() {
	c.abandonOnce.Do(func() { close(c.abandoned) })
}

// commit sends one round of jobs in a transaction and answers each. A
// round the coordinator refuses for a passing reason (a rebalance moved
// the generation, the coordinator moved) is aborted and sent again, without
// the jobs of tasks abandoned meanwhile, until commitTimeout.
func (c *committer) commit(ctx context.Context, jobs []*cycleOut) {
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	go func() {
		select {
		case <-c.abandoned:
			cancel()
		case <-ctx.Done():
		}
	}()
	backoff := 20 * time.Millisecond
	for {
		select {
		case <-c.abandoned:
			for _, j := range jobs {
				j.done <- errAbandoned
			}
			return
		default:
		}
		live := jobs[:0]
		for _, j := range jobs {
			select {
			case <-j.abandoned:
				j.done <- errAbandoned
			default:
				live = append(live, j)
			}
		}
		jobs = live
		if len(jobs) == 0 {
			return
		}
		failed, err := c.try(ctx, jobs)
		if err == nil {
			for _, j := range jobs {
				j.done <- nil
			}
			return
		}
		if failed != nil {
			// One job's records were refused: it fails alone, and the
			// others go again.
			jobs = removeJob(jobs, failed, err)
			continue
		}
		if !retriableTxn(err) || ctx.Err() != nil {
			for _, j := range jobs {
				j.done <- err
			}
			return
		}
		c.p.log.Debug("transaction refused; sending the round again", "err", err, "tasks", len(jobs))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(2*backoff, time.Second)
	}
}

func removeJob(jobs []*cycleOut, failed *cycleOut, err error) []*cycleOut {
	kept := jobs[:0]
	for _, j := range jobs {
		if j == failed {
			j.done <- err
			continue
		}
		kept = append(kept, j)
	}
	return kept
}

// try sends jobs in one transaction. If a job's records are refused, it
// returns that job with the error; the transaction is then aborted.
func (c *committer) try(ctx context.Context, jobs []*cycleOut) (*cycleOut, error) {
	start := time.Now()
	// The membership is read before the records are produced: if it has
	// changed by the offset commit, the coordinator refuses the commit.
	member, gen := jobs[0].group.GroupMetadata()
	if member == "" || gen < 0 {
		// Between a lost session and the next join: an offset commit
		// without a member would not be fenced, so none is sent.
		return nil, errNotInGroup
	}
	if err := c.cl.BeginTransaction(); err != nil {
		return nil, fmt.Errorf("begin transaction: %w", err)
	}
	var (
		left    atomic.Int64
		failed  atomic.Pointer[cycleOut]
		failErr atomic.Pointer[error]
		acked   = make(chan struct{})
	)
	n := 0
	for _, j := range jobs {
		n += len(j.recs)
	}
	left.Store(int64(n) + 1)
	for _, j := range jobs {
		promise := func(_ *kgo.Record, err error) {
			if err != nil && failed.CompareAndSwap(nil, j) {
				failErr.Store(&err)
			}
			if left.Add(-1) == 0 {
				close(acked)
			}
		}
		for _, r := range j.recs {
			c.cl.Produce(ctx, r, promise)
		}
	}
	if left.Add(-1) == 0 {
		close(acked)
	}
	// The offsets go to the group while the records are in flight: the
	// fence does not depend on their order, since a new owner waits for
	// a pending offset commit to end before it restores (waitStable).
	offsets := make(chan error, 1)
	go func() { offsets <- c.commitOffsets(ctx, jobs, member, gen) }()
	var offErr error
	select {
	case <-acked:
		offErr = <-offsets
	case <-ctx.Done():
		<-offsets
		c.abort(ctx)
		return nil, fmt.Errorf("produce in transaction: %w", context.Cause(ctx))
	}
	if j := failed.Load(); j != nil {
		c.abort(ctx)
		return j, fmt.Errorf("produce in transaction: %w", *failErr.Load())
	}
	if offErr != nil {
		c.abort(ctx)
		return nil, offErr
	}
	select {
	case <-c.abandoned:
		// Abandoned before the EndTxn: the transaction stays open
		// until the next run of the instance fences it, or it times out.
		return nil, errAbandoned
	default:
	}
	if err := c.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		c.abort(ctx)
		if errors.Is(err, kerr.TransactionAbortable) || errors.Is(err, kerr.OperationNotAttempted) {
			// The commit was refused or not attempted: the abort ended
			// the transaction, and the round may go again.
			return nil, fmt.Errorf("commit transaction: %w", err)
		}
		// Any other answer (a timeout, a coordinator that moved,
		// UNKNOWN_SERVER_ERROR) leaves the commit's outcome unknown: the
		// broker may have committed the round, and sending its records
		// again would publish them twice. The round fails instead, and
		// its tasks restore from what Kafka has.
		return nil, fmt.Errorf("commit transaction: %w: %w", errCommitUnconfirmed, err)
	}
	m := c.p.m
	m.transactions.WithLabelValues("commit").Inc()
	m.txnTime.Observe(time.Since(start).Seconds())
	m.txnTasks.Observe(float64(len(jobs)))
	return nil, nil
}

// abort ends the open transaction without committing, as far as the
// broker still lets it.
func (c *committer) abort(ctx context.Context) {
	c.p.m.transactions.WithLabelValues("abort").Inc()
	if err := c.cl.AbortBufferedRecords(ctx); err == nil {
		_ = c.cl.EndTransaction(ctx, kgo.TryAbort)
	}
}

// commitOffsets commits the jobs' input positions to the group within the
// transaction, as the member of generation gen: the fence (see committer).
func (c *committer) commitOffsets(ctx context.Context, jobs []*cycleOut, member string, gen int32) error {
	id, epoch, err := c.cl.ProducerID(ctx)
	if err != nil {
		return fmt.Errorf("producer id: %w", err)
	}
	if c.addOffsets {
		req := kmsg.NewPtrAddOffsetsToTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = c.id, id, epoch, c.p.cfg.Group
		err := retryConcurrent(ctx, func() error {
			resp, err := req.RequestWith(ctx, c.cl)
			if err == nil {
				err = kerr.ErrorForCode(resp.ErrorCode)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("add offsets to transaction: %w", err)
		}
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = c.id, c.p.cfg.Group, id, epoch
	req.MemberID, req.Generation = member, gen
	if iid := c.p.cfg.InstanceID; iid != "" {
		req.InstanceID = &iid
	}
	byTopic := map[string]int{}
	for _, j := range jobs {
		for src, next := range j.pos {
			topic := j.topics[src]
			if next < 0 || topic == "" {
				continue
			}
			i, ok := byTopic[topic]
			if !ok {
				i = len(req.Topics)
				byTopic[topic] = i
				rt := kmsg.NewTxnOffsetCommitRequestTopic()
				rt.Topic = topic
				req.Topics = append(req.Topics, rt)
			}
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = j.part, next, -1
			req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		}
	}
	if len(req.Topics) == 0 {
		// No task of the round has input positions yet (it has consumed
		// nothing): nothing to fence by, and nothing another owner could
		// have applied.
		return nil
	}
	err = retryConcurrent(ctx, func() error {
		resp, err := req.RequestWith(ctx, c.cl)
		if err != nil {
			return err
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit offsets in transaction (generation %d): %w", gen, err)
	}
	return nil
}

// retryConcurrent calls fn until it returns something else than
// CONCURRENT_TRANSACTIONS (the previous transaction's markers are still
// being written), waiting as txnRetryBackoff says, or until ctx ends.
func retryConcurrent(ctx context.Context, fn func() error) error {
	for fails := 1; ; fails++ {
		err := fn()
		if !errors.Is(err, kerr.ConcurrentTransactions) {
			return err
		}
		select {
		case <-time.After(txnRetryBackoff(fails)):
		case <-ctx.Done():
			return fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		}
	}
}

// retriableTxn reports whether a refused round may be sent again: the
// group moved to a new generation or its coordinator moved, or the broker
// asks for the transaction to be aborted. A fenced producer (another run
// of this instance), a refused authorization, or a commit whose outcome is
// unknown is final.
func retriableTxn(err error) bool {
	if errors.Is(err, errCommitUnconfirmed) {
		return false
	}
	for _, e := range []error{errNotInGroup, kerr.IllegalGeneration, kerr.UnknownMemberID, kerr.RebalanceInProgress,
		kerr.StaleMemberEpoch, kerr.GroupIDNotFound, kerr.CoordinatorNotAvailable, kerr.NotCoordinator,
		kerr.CoordinatorLoadInProgress, kerr.ConcurrentTransactions, kerr.TransactionAbortable,
		kerr.UnknownServerError} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// instanceKey names this instance in its transactional id: Config's
// InstanceID if set, else a key generated once and kept in the store, so
// that a restart on the same state directory reuses it.
func (p *Processor) instanceKey() (string, error) {
	if id := p.cfg.InstanceID; id != "" {
		return id, nil
	}
	k, err := p.cfg.Store.InstanceKey()
	if err != nil {
		return "", fmt.Errorf("instance key: %w", err)
	}
	return k, nil
}

// supportsImplicitOffsets reports whether the brokers add a group to a
// transaction on TxnOffsetCommit by themselves (KIP-890 part 2: feature
// transaction.version 2 and TxnOffsetCommit v5).
func supportsImplicitOffsets(ctx context.Context, cl *kgo.Client) (bool, error) {
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		return false, fmt.Errorf("api versions: %w", err)
	}
	tv2 := false
	for _, f := range resp.FinalizedFeatures {
		if f.Name == "transaction.version" && f.MaxVersionLevel >= 2 {
			tv2 = true
		}
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey == int16(kmsg.TxnOffsetCommit) {
			return tv2 && k.MaxVersion >= 5, nil
		}
	}
	return false, nil
}
