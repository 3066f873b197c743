package processor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"valora/processor/changelog"
	"valora/processor/clv"
	"valora/processor/histogram"
	"valora/processor/score"
	"valora/schemas"
	"valora/state"
)

// Input sources of a task, in the order they sort at equal event times.
const (
	srcInteractions = 0
	srcPurchases    = 1
	srcErasures     = 2 // Topics.Erasures; "" when there is none
	numSources      = 3
)

// fetched is one poll's records of one partition number, by source, handed
// to its task. Each source's records are in offset order.
type fetched struct {
	recs [numSources][]*kgo.Record
	at   time.Time
}

// item is one fetched record, decoded and checked, waiting to be applied in
// event-time order.
type item struct {
	r       *kgo.Record
	src     int
	at      int64 // event time; math.MinInt64 for a record that failed checks
	control bool  // a transaction marker: it only moves the position
	reason  string
	err     error

	purchase    schemas.Purchase
	interaction schemas.Interaction
	erasure     schemas.ErasureRequest
}

// Dead-letter headers. The record keeps its original key and value.
const (
	HeaderSourceTopic     = "valora.source.topic"
	HeaderSourcePartition = "valora.source.partition"
	HeaderSourceOffset    = "valora.source.offset"
	HeaderReason          = "valora.reason"
	HeaderError           = "valora.error"
)

// task owns the state of one partition number: partition p of every input
// topic. Only its goroutine touches its fields after start; the processor
// talks to it through in, stopc, abandonCtx and done, and reads beat.
//
// Invariant: every record the task has handled since its last commit is
// reflected in custs (the changed customers), outputs and pos;
// commit sends the outputs, one changelog record per changed customer and a
// checkpoint of pos to Kafka (in exactly-once mode in a transaction of the instance's committer), and
// only once Kafka has them makes the customers, positions and changelog
// position durable in one synced store batch. The store therefore never
// holds an effect Kafka does not: a crash after the Kafka commit leaves the
// store behind, and the restore at the next start reads the missing cycles
// from the changelog; a crash before it (or an aborted transaction) leaves
// both at the previous cycle, and the inputs are read again from there.
type task struct {
	p    *Processor
	part int32
	// cl is the group consumer, whose membership the task's ownership
	// comes from.
	cl *kgo.Client
	// sink takes the task's commit cycles to Kafka.
	sink sink
	// ctx ends when the task is stopped or abandoned (restore, snapshot).
	ctx    context.Context
	cancel context.CancelFunc
	// restored is closed once the task's store is up to date with its
	// changelog and its input positions are final (adjustOffsets waits).
	restored chan struct{}
	// cycle numbers the task's commit cycles in the changelog: the high
	// half names this incarnation, the low half counts.
	cycle uint64
	// since is the changelog offset at which this incarnation took the
	// task over (the end its restore read to), in every checkpoint.
	since int64
	// Per-cycle changelog records and their bytes, reused.
	clBuf  []byte
	clRecs []kgo.Record
	sendQ  []*kgo.Record
	// out is the cycle in flight, as the sink sees it.
	out cycleOut

	// in carries the poll loop's records; it is never closed, so the
	// poll loop may hand records to a task that is stopping (they are
	// not applied, and the stored positions do not cover them).
	in chan fetched
	// stopc is closed by stop: apply what in holds, commit, exit.
	stopc chan struct{}
	quit  sync.Once
	done  chan struct{}
	// abandonCtx ends with abandon: the task exits at its next step
	// without committing, and a commit waiting on Kafka gives up.
	abandonCtx    context.Context
	abandonCancel context.CancelFunc
	// beat is when the task last made progress (Unix nanoseconds): it
	// handled records, finished a tick and its commit, or read a poll of
	// its changelog while restoring. An idle task ticks every
	// CommitInterval, so a beat older than Config.StallTimeout means the
	// task waits on something that does not answer (/healthz).
	beat atomic.Int64

	// custs holds the task's customers: where each one's current value is
	// (customers.go).
	custs customers
	// outputs are the cycle's records for the output and dead-letter
	// topics, reused from cycle to cycle.
	outputs outputs
	next    map[string]int64
	pending int
	oldest  time.Time // fetch time of the oldest uncommitted record

	// topics names the sources; pos is the next offset of each (-1:
	// unknown until the first record or a stored offset).
	topics [numSources]string
	pos    [numSources]int64
	// lastTs is the Kafka timestamp of the last record handled from each
	// source (the consumer lag in seconds is its age while behind).
	lastTs [numSources]time.Time

	// The merge (see merge). q holds each source's records not yet
	// applied, in offset order, undecoded but for the first, which moves
	// decoded into head once the merge needs it (head.r is nil while
	// there is none). In a replay (strict, Config.Replay) end is the
	// offset at which each source stops and finished is set once both
	// reached it and the task committed; live, end is unbounded and
	// waitFrom is when the merge began to wait for a source's next
	// record (zero: not waiting), waitHanding the poll loop's
	// handingTime then, gaveUp that it stopped waiting for the source
	// until its next fetch.
	strict bool
	end    [numSources]int64
	q      [numSources][]*kgo.Record
	// qBytes is the memory of each source's queue (queuedBytes), which a
	// live task bounds by qMaxBytes as it bounds the count by
	// liveQueueMax.
	qBytes      [numSources]int
	qMaxBytes   int
	head        [numSources]item
	paused      [numSources]bool
	finished    bool
	waitFrom    [numSources]time.Time
	waitHanding [numSources]time.Duration
	gaveUp      [numSources]bool
	// committedPos is pos at the last commit, or at load: the durable
	// positions (replay progress, the group's offsets).
	committedPos [numSources]int64
	// startGen is Processor.adjusted when the task was created;
	// startCommitted is set once the positions it started from are
	// committed to the group, or superseded (commitStart).
	startGen       uint64
	startCommitted bool

	// Time (see timers.go). st is the stream time; clk the task's timer
	// bookkeeping.
	st  int64
	clk timerClock
	// loaded is set once load has read the task's state: the task is
	// restored and processes input (/readyz).
	loaded atomic.Bool
	// pol is the policy the task scores with; it switches to the
	// processor's at a commit (switchPolicy).
	pol       *score.Policy
	lastInput time.Time // when the task last received records (or started)

	// per-cycle metric deltas, published at commit
	consumed [numSources]int // by source, as late
	applied  [numSources]int
	dlq      map[[2]string]int
	late     [numSources]int
	fired    int
	changes  map[[3]string]int // tier changes by from, to, cause
	// evAt holds the event time of each record applied in the cycle
	// (daemon only), for valora_event_latency_seconds at commit.
	evAt []int64
	// lateness and evLatency batch the task's observations of
	// valora_timer_lateness_seconds and valora_event_latency_seconds
	// until its commit adds them.
	lateness, evLatency histogram.Batch
	// tcBuf holds the tier change being built (score.Policy.TierChangeTo).
	tcBuf score.TierChangeBuf
	// prBuf holds the profile being built (score.Policy.ProfileTo), and
	// prCust a changed customer decoded from the write set to build it
	// from; profiles counts the cycle's profile records.
	prBuf    score.ProfileBuf
	prCust   schemas.Customer
	profiles int
	// per-task gauge contributions, removed when the task stops; shown*
	// are the parts already added to the gauges (publishCounts).
	tiers, shownTiers   map[string]float64
	stages, shownStages map[string]float64
	classes, shownClass map[string]float64
	churn, shownChurn   float64
	// shownMem is the task's part of Processor.mem (publishMemory).
	shownMem              [numMem]int64
	treated, shownTreated map[string]float64

	// fatal is set when the store fails under a lookup: the task stops
	// without committing, so nothing half-applied becomes durable.
	fatal error

	// nparts is the input topics' partition count (0 when not known: no
	// partition check); partitioner places keys in them.
	// wrongPartWarned is set once a wrong_partition record was logged.
	nparts          int
	partitioner     Partitioner
	wrongPartWarned bool

	batch *state.Batch
}

func newTask(p *Processor, part int32, cl *kgo.Client) *task {
	wsMax := int(max(1, p.cfg.WriteSetBytes/int64(max(1, p.partitions))))
	// A source's queue holds at most its share of QueueBytes (live).
	qMaxBytes := int(max(1, p.cfg.QueueBytes/int64(max(1, p.partitions)*numSources)))
	capacity := p.cfg.CacheCustomers
	if capacity > 0 {
		// The cache budget is per instance; spread it over the tasks this
		// instance can own at most (all of them, when it is alone).
		capacity = max(1, capacity/max(1, p.partitions))
	}
	t := &task{
		p:            p,
		part:         part,
		cl:           cl,
		sink:         p.newSink(cl),
		startGen:     p.adjusted.Load(),
		in:           make(chan fetched, 4),
		stopc:        make(chan struct{}),
		done:         make(chan struct{}),
		custs:        newCustomers(p.cfg.Store, part, capacity, wsMax, int(min(p.cfg.KnownIDsBytes/int64(max(1, p.partitions)), math.MaxInt32))),
		qMaxBytes:    qMaxBytes,
		next:         make(map[string]int64, 2),
		dlq:          make(map[[2]string]int),
		changes:      make(map[[3]string]int),
		tiers:        make(map[string]float64),
		stages:       make(map[string]float64),
		shownTiers:   make(map[string]float64),
		shownStages:  make(map[string]float64),
		classes:      make(map[string]float64),
		shownClass:   make(map[string]float64),
		topics:       p.sourceTopics(),
		nparts:       p.partitions,
		partitioner:  p.cfg.InputPartitioner,
		pos:          [numSources]int64{-1, -1, -1},
		pol:          p.policy.Load(),
		restored:     make(chan struct{}),
		cycle:        rand.Uint64() &^ 0xffffffff, // unique per incarnation; low half counts
		treated:      make(map[string]float64),
		shownTreated: make(map[string]float64),
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.abandonCtx, t.abandonCancel = context.WithCancel(context.Background())
	t.beat.Store(time.Now().UnixNano())
	t.lateness, t.evLatency = p.m.timerLateness.Batch(), p.m.eventLatency.Batch()
	t.end = [numSources]int64{math.MaxInt64, math.MaxInt64, math.MaxInt64}
	if r := p.cfg.Replay; r != nil {
		t.strict = true
		for src, topic := range t.topics {
			t.end[src] = r.End[topic][part]
			if topic == "" {
				t.end[src] = -1 // no such source: nothing to wait for
			}
		}
	}
	t.clk.init()
	return t
}

// requestStop asks the task to apply what it was handed, commit, and
// exit; done is closed once it has.
func (t *task) requestStop() {
	t.cancel()
	t.quit.Do(func() { close(t.stopc) })
}

// abandoned reports whether abandon was called.
func (t *task) abandoned() bool { return t.abandonCtx.Err() != nil }

// abandon makes the task exit at its next step without committing.
func (t *task) abandon() {
	t.abandonCancel()
	t.cancel()
}

func (t *task) run() {
	defer close(t.done)
	defer t.dropGauges()
	defer t.cancel()
	defer t.abandonCancel()
	t.lastInput = time.Now()
	if err := t.startChangelog(); err != nil {
		if t.ctx.Err() == nil {
			t.p.fail(fmt.Errorf("task %d: %w", t.part, err))
		}
		return
	}
	close(t.restored)
	if err := t.load(); err != nil {
		t.p.fail(fmt.Errorf("task %d: load state: %w", t.part, err))
		return
	}
	t.loaded.Store(true)
	if err := t.checkFinished(); err != nil {
		t.p.fail(fmt.Errorf("task %d: %w", t.part, err))
		return
	}
	every := t.p.cfg.CommitInterval
	first := every
	if t.p.txn != nil {
		// The instance's tasks tick together, at multiples of the
		// interval on the wall clock, so that their cycles share one
		// transaction (committer).
		first = every - time.Duration(time.Now().UnixNano()%int64(every))
	}
	tick := time.NewTicker(first)
	defer tick.Stop()
	for {
		t.beat.Store(time.Now().UnixNano())
		select {
		case <-t.abandonCtx.Done():
			return
		case <-t.stopc:
			if err := t.drain(); err != nil {
				t.p.fail(fmt.Errorf("task %d: %w", t.part, err))
				return
			}
			if err := t.commit(); err != nil {
				t.p.fail(fmt.Errorf("task %d: final commit: %w", t.part, err))
			}
			return
		case f := <-t.in:
			if err := t.handle(f); err != nil {
				t.p.fail(fmt.Errorf("task %d: %w", t.part, err))
				return
			}
			if err := t.checkFinished(); err != nil {
				t.p.fail(fmt.Errorf("task %d: %w", t.part, err))
				return
			}
		case <-tick.C:
			if first != every {
				tick.Reset(every)
				first = every
			}
			t.commitStart()
			if err := t.tick(); err != nil {
				t.p.fail(fmt.Errorf("task %d: %w", t.part, err))
				return
			}
			if err := t.commit(); err != nil {
				t.p.fail(fmt.Errorf("task %d: commit: %w", t.part, err))
				return
			}
			if pol := t.p.policy.Load(); pol != t.pol && !t.custs.hasChanged() && !t.abandoned() {
				if err := t.switchPolicy(pol); err != nil {
					t.p.fail(fmt.Errorf("task %d: switch policy: %w", t.part, err))
					return
				}
			}
		}
	}
}

// drain applies the records the poll loop handed over before stop.
func (t *task) drain() error {
	for {
		select {
		case f := <-t.in:
			if err := t.handle(f); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

// load scans the task's customers once: it counts them per tier, stage and
// churn flag for the gauges, warms the cache up to its capacity, records
// their ids in known (sized for twice their number), and rebuilds the
// timer index if it was built under another policy. Then it
// fires the timers that are already due at the stored stream time.
func (t *task) load() error {
	store := t.p.cfg.Store
	offsets, err := store.Offsets(t.part)
	if err != nil {
		return err
	}
	for src, topic := range t.topics {
		if topic == "" {
			continue
		}
		if next, ok := offsets[topic]; ok {
			t.pos[src] = next
		} else if r := t.p.cfg.Replay; r != nil {
			t.pos[src] = r.Start[topic][t.part]
		}
	}
	t.committedPos = t.pos
	if t.strict {
		var remaining int64
		for src := range t.pos {
			remaining += max(0, t.end[src]-t.pos[src])
		}
		t.p.m.replayRemaining.Add(float64(remaining))
	}
	clock, _, err := store.Clock(t.part)
	if err != nil {
		return err
	}
	t.st = clock.StreamTime
	digest := t.pol.Digest()
	t.clk.digest = digest
	var rb *timerRebuild
	if !bytes.Equal(clock.TimerDigest, digest) {
		rb = t.newTimerRebuild(digest)
	}
	stored := 0
	err = store.ScanCustomers(t.part, func(id, value []byte) error {
		stored++
		c := new(cust)
		if err := schemas.DecodeCustomer(value, &c.Customer); err != nil {
			return fmt.Errorf("decode customer in task %d: %w", t.part, err)
		}
		t.count(&c.Customer, 1)
		if rb != nil {
			if err := rb.add(&c.Customer); err != nil {
				return err
			}
		} else if c.TimerAt != 0 {
			t.clk.pending++
		}
		t.custs.scanned(c)
		return nil
	})
	if err != nil {
		return err
	}
	if rb != nil {
		if err := rb.finish(); err != nil {
			return err
		}
	}
	// A replay's write set keeps every customer put into it until a
	// commit drops some: from an empty store it is complete.
	t.custs.loaded(t.strict && stored == 0)
	t.p.m.timersPending.Add(float64(t.clk.pending))
	t.publishCounts()
	return t.advance(t.st)
}

func (t *task) count(c *schemas.Customer, d float64) {
	t.tiers[c.Tier] += d
	t.stages[c.LifecycleStage] += d
	if c.ValueClass != nil {
		t.classes[*c.ValueClass] += d
	}
	if c.Treatment != "" {
		t.treated[c.Treatment] += d
	}
	if c.ChurnRisk {
		t.churn += d
	}
}

// publishCounts adds what count changed since the last call to the
// customer gauges, and the tier changes counted since then to their
// counter: once per commit rather than once per change, which keeps the
// metric vectors' label hashing and locks off the per-record path.
func (t *task) publishCounts() {
	m := t.p.m
	for k, v := range t.tiers {
		if d := v - t.shownTiers[k]; d != 0 {
			m.customers.WithLabelValues(k).Add(d)
			t.shownTiers[k] = v
		}
	}
	for k, v := range t.stages {
		if d := v - t.shownStages[k]; d != 0 {
			m.stages.WithLabelValues(k).Add(d)
			t.shownStages[k] = v
		}
	}
	for k, v := range t.classes {
		if d := v - t.shownClass[k]; d != 0 {
			m.classes.WithLabelValues(k).Add(d)
			t.shownClass[k] = v
		}
	}
	for k, v := range t.treated {
		if d := v - t.shownTreated[k]; d != 0 {
			m.treatments.WithLabelValues(k).Add(d)
			t.shownTreated[k] = v
		}
	}
	if d := t.churn - t.shownChurn; d != 0 {
		m.churnRisk.Add(d)
		t.shownChurn = t.churn
	}
	t.publishMemory()
	for k, n := range t.changes {
		m.tierChanges.WithLabelValues(k[0], k[1], k[2]).Add(float64(n))
	}
	clear(t.changes)
}

func (t *task) dropGauges() {
	m := t.p.m
	m.timersPending.Sub(float64(t.clk.pending))
	part := strconv.Itoa(int(t.part))
	m.watermarkLag.DeleteLabelValues(part)
	for _, topic := range t.topics {
		if topic == "" {
			continue
		}
		m.consumerLag.DeleteLabelValues(topic, part)
		m.consumerLagSeconds.DeleteLabelValues(topic, part)
	}
	for k, v := range t.shownTiers {
		m.customers.WithLabelValues(k).Sub(v)
	}
	for k, v := range t.shownStages {
		m.stages.WithLabelValues(k).Sub(v)
	}
	for k, v := range t.shownClass {
		m.classes.WithLabelValues(k).Sub(v)
	}
	for k, v := range t.shownTreated {
		m.treatments.WithLabelValues(k).Sub(v)
	}
	m.churnRisk.Sub(t.shownChurn)
	t.dropMemory()
}

// handle takes one fetched batch: its records join their sources' queues,
// and merge applies what it can in (event time, source, offset) order,
// each record after the timers due before its event time have fired. It
// never logs: a record that cannot be applied becomes a dead-letter
// output. It returns an error only when the task cannot go on (the store
// or a commit failed, the schema registry is unreachable); nothing is
// committed then.
func (t *task) handle(f fetched) error {
	if t.pending == 0 || f.at.Before(t.oldest) {
		t.oldest = f.at
	}
	t.lastInput = time.Now()
	t.enqueue(f)
	return t.merge()
}

// full reports whether the cycle must commit now: CommitRecords records are
// pending, or the changed customers fill the task's share of WriteSetBytes
// (customers.full).
func (t *task) full() bool {
	if t.pending >= t.p.cfg.CommitRecords {
		return true
	}
	return t.custs.full()
}

// step applies one decoded record: it moves stream time to the record's
// event time first (firing the timers due before it), counts it late when
// it is more than the allowed lateness behind, and applies it or dead-
// letters it. A transaction marker is skipped.
func (t *task) step(it *item) error {
	if it.control {
		return nil
	}
	t.pending++
	t.consumed[it.src]++
	if it.err != nil {
		t.deadLetter(it.r, it.reason, it.err)
		return nil
	}
	// An erasure request takes its place in the merge by requested_at,
	// but it is not an event of the customer's history: it neither moves
	// stream time nor counts as late.
	if it.src == srcErasures {
	} else if it.at > t.st {
		if err := t.advance(it.at); err != nil {
			return err
		}
	} else if it.at < t.st-t.p.cfg.AllowedLateness.Milliseconds() {
		t.late[it.src]++
	}
	reason, err := t.apply(it)
	if t.fatal != nil {
		return t.fatal
	}
	if err != nil {
		t.deadLetter(it.r, reason, err)
		return nil
	}
	t.applied[it.src]++
	if !t.strict {
		t.evAt = append(t.evAt, it.at)
	}
	// A late record may leave its customer with a deadline at or before
	// stream time: fire it now rather than at the next advance.
	if t.clk.heapMin() <= t.st {
		return t.advance(t.st)
	}
	return nil
}

// replayQueueMax and liveQueueMax bound a source's queue: beyond it the
// source's partition is paused until the queue is half drained. Records
// already in flight still arrive, so it is a soft bound.
//
// It must hold more than one partition's fetch of small records: pausing
// drops whatever the client has already fetched for the partition, to be
// fetched again on resume, so a bound below one fetch would pause the
// partition on every fetch and leave the task waiting for the fetch again. The queued records, and the fetched batches they keep, are
// live heap under a replay's memory limit (BENCHMARKS.md). A live queue
// grows only while the merge waits for the task's other input, and a pause
// can hold the task up for a fetch's longest wait, so the live bound sits
// well above what draining a backlog queues. A live queue is bounded in
// bytes too, by its share of Config.QueueBytes, which bounds the memory
// of the queues whatever the number of partitions; the consumer's fetches
// of a partition are half that share at most (Processor.fetchOpts).
const (
	replayQueueMax = 4096
	liveQueueMax   = 1 << 16
)

// mergeWaitMax is the longest a live task holds back its other sources'
// records while it waits for a source that is known to have more to read
// (or whose end is unknown). The wait normally lasts one fetch; the bound
// keeps a partition that cannot be fetched (its leader is down) from
// stopping the task's other inputs. Time the poll loop spends handing
// records to other tasks does not count (waitFor).
const mergeWaitMax = 5 * time.Second

// enqueue adds f's records to their sources' queues, in offset order,
// leaving out any at or past the replay's end offsets. They stay undecoded
// until they reach the head of their queue: a decoded record takes several
// times the memory of its fetched bytes, and the merge only compares heads.
func (t *task) enqueue(f fetched) {
	queueMax := liveQueueMax
	if t.strict {
		queueMax = replayQueueMax
	}
	for src, recs := range f.recs {
		if len(recs) > 0 {
			t.waitFrom[src], t.gaveUp[src] = time.Time{}, false
		}
		for _, r := range recs {
			if r.Offset >= t.end[src] || r.Offset < t.pos[src] {
				continue
			}
			t.q[src] = append(t.q[src], r)
			t.qBytes[src] += queuedBytes(r)
		}
		if (len(t.q[src]) > queueMax || !t.strict && t.qBytes[src] > t.qMaxBytes) && !t.paused[src] {
			t.paused[src] = true
			t.cl.PauseFetchPartitions(map[string][]int32{t.topics[src]: {t.part}})
		}
	}
}

// fillHead decodes the first queued record of src into its head, if the
// head is empty and a record is queued; it reports whether src has a head.
func (t *task) fillHead(src int) (bool, error) {
	if t.head[src].r != nil {
		return true, nil
	}
	if len(t.q[src]) == 0 {
		return false, nil
	}
	if err := t.decodeItem(&t.head[src], t.q[src][0], src); err != nil {
		t.head[src] = item{}
		return false, err // the task stops; the record stays queued
	}
	t.qBytes[src] -= queuedBytes(t.q[src][0])
	t.q[src][0] = nil // the head holds it until it is applied
	t.q[src] = t.q[src][1:]
	if len(t.q[src]) == 0 {
		t.q[src] = t.q[src][:0:0] // drop the drained array
		t.qBytes[src] = 0
	}
	if t.paused[src] && len(t.q[src]) < t.queueLow() && (t.strict || t.qBytes[src] < t.qMaxBytes/2) {
		t.paused[src] = false
		t.cl.ResumeFetchPartitions(map[string][]int32{t.topics[src]: {t.part}})
	}
	return true, nil
}

// recordOverhead is the memory of a queued record besides its key and
// value: the kgo.Record and its place in the queue.
const recordOverhead = 200

// queuedBytes is what a queued record counts against its queue's bound.
func queuedBytes(r *kgo.Record) int { return len(r.Key) + len(r.Value) + recordOverhead }

// queueLow is the queue length below which a paused source resumes.
func (t *task) queueLow() int {
	if t.strict {
		return replayQueueMax / 2
	}
	return liveQueueMax / 2
}

// merge applies queued records in (event time, source, offset) order of
// the sources' head records. It stops when a source with nothing queued
// may have a record that comes first (waitFor). Positions move record by
// record, so a commit may happen anywhere.
//
// Merging across fetches, not only within one, matters when a task starts
// behind on both inputs: a fetch may bring days of one input before the
// other's first records, and applying them at once would move stream
// time past the other's records (counted late, and timers fired before
// the purchases that would have cancelled them).
func (t *task) merge() error {
	for {
		pick := -1
		for src := range numSources {
			ok, err := t.fillHead(src)
			if err != nil {
				return err
			}
			if !ok {
				if t.waitFor(src) {
					return nil
				}
				continue
			}
			if pick < 0 || before(&t.head[src], &t.head[pick]) {
				pick = src
			}
		}
		if pick < 0 {
			return nil // both sources reached their end
		}
		it := &t.head[pick]
		if err := t.step(it); err != nil {
			return err
		}
		next := it.r.Offset + 1
		t.pos[pick] = next
		t.next[t.topics[pick]] = next
		t.lastTs[pick] = it.r.Timestamp
		t.head[pick] = item{} // let the record go
		if t.full() {
			if err := t.commit(); err != nil {
				return fmt.Errorf("commit: %w", err)
			}
		}
	}
}

// waitFor reports whether the merge must wait for src, which has nothing
// queued. A replay waits until src reaches its end offset. A live task
// waits while the latest listing of the input's committed end shows src
// has more to read, or while there is no recent listing yet (not when the
// listing fails), for at most mergeWaitMax; then it goes on without src
// until src's next fetch.
func (t *task) waitFor(src int) bool {
	if t.strict {
		return t.pos[src] < t.end[src]
	}
	if t.topics[src] == "" || t.gaveUp[src] {
		return false
	}
	if e := t.p.endOffsets(t.part); e != nil && time.Since(e.at) < t.p.endsStale() {
		pos := t.pos[src]
		if pos < 0 {
			pos = e.start[src]
		}
		if pos >= e.end[src] {
			t.waitFrom[src] = time.Time{}
			return false
		}
	} else if t.p.listFailing.Load() {
		// The offsets cannot be listed (the brokers are unreachable,
		// or the listing is not authorised): nothing to go by, and
		// holding records back would only delay them.
		return false
	}
	now := time.Now()
	if t.waitFrom[src].IsZero() {
		t.waitFrom[src], t.waitHanding[src] = now, t.p.handingTime(now)
		return true
	}
	// While the poll loop waits for busy tasks to take their records, no
	// fetch reaches this one: that time says nothing of src. Counting it
	// would make a saturated instance (a backlog after downtime) give up
	// on sources that merely wait their turn, and apply its inputs out of
	// event-time order, with churn fired early.
	waited := now.Sub(t.waitFrom[src]) - (t.p.handingTime(now) - t.waitHanding[src])
	if waited >= mergeWaitMax {
		t.gaveUp[src] = true
		return false
	}
	return true
}

// queued reports whether records wait in the merge.
func (t *task) queued() bool {
	for src := range numSources {
		if t.head[src].r != nil || len(t.q[src]) > 0 {
			return true
		}
	}
	return false
}

// before orders items by (event time, source, offset); records that failed
// their checks and transaction markers have the smallest event time, so
// they go as soon as they are at the head of their source.
func before(a, b *item) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	if a.src != b.src {
		return a.src < b.src
	}
	return a.r.Offset < b.r.Offset
}

// checkFinished ends a replay task once both sources have reached their
// end offsets: it commits, and tells the processor.
func (t *task) checkFinished() error {
	if !t.strict || t.finished {
		return nil
	}
	for src := range numSources {
		if t.head[src].r != nil || len(t.q[src]) > 0 || t.pos[src] < t.end[src] {
			return nil
		}
	}
	if err := t.advance(t.st); err != nil {
		return err
	}
	if err := t.commit(); err != nil {
		return fmt.Errorf("final commit: %w", err)
	}
	t.finished = true
	t.p.taskFinished(t.part)
	return nil
}

// decodeItem decodes and checks r into it. It returns an error only when
// the record cannot be judged (the schema registry is unreachable).
func (t *task) decodeItem(it *item, r *kgo.Record, src int) error {
	it.r, it.src, it.reason, it.err, it.control = r, src, "", nil, false
	if r.Attrs.IsControl() {
		it.control, it.at = true, math.MinInt64
		return nil
	}
	var id string
	var at int64
	var err error
	switch src {
	case srcPurchases:
		it.purchase = schemas.Purchase{}
		err = t.p.cfg.Codec.DecodePurchase(r.Value, &it.purchase)
		id, at = it.purchase.CustomerID, it.purchase.OccurredAt
	case srcErasures:
		it.erasure = schemas.ErasureRequest{}
		err = t.p.cfg.Codec.DecodeErasure(r.Value, &it.erasure)
		id, at = it.erasure.CustomerID, it.erasure.RequestedAt
	default:
		// The decoder overwrites every field, and reuses the item's
		// attributes map rather than making one per record.
		err = t.p.cfg.Codec.DecodeInteraction(r.Value, &it.interaction)
		id, at = it.interaction.CustomerID, it.interaction.OccurredAt
	}
	switch {
	case errors.Is(err, schemas.ErrRegistryUnavailable):
		// The record may be fine: stop rather than dead-letter it.
		return err
	case err != nil:
		it.reason, it.err = decodeReason(err), err
	default:
		it.reason, it.err = t.validate(r, id, at)
	}
	it.at = at
	if it.err != nil {
		it.at = math.MinInt64
	}
	return nil
}

// apply applies one checked record to its customer.
func (t *task) apply(it *item) (string, error) {
	if it.src == srcErasures {
		t.erase(&it.erasure)
		return "", nil
	}
	if it.src == srcPurchases {
		e := &it.purchase
		c, isNew := t.lookup(e.CustomerID)
		if c == nil {
			return "", nil // t.fatal is set
		}
		o, err := t.pol.ApplyPurchase(&c.Customer, e)
		if err != nil {
			return scoreReason(err), err
		}
		cause := schemas.CausePurchase
		if e.Kind == schemas.KindRefund {
			cause = schemas.CauseRefund
		}
		t.changed(c, isNew, o, cause, e.OccurredAt)
		return "", nil
	}
	e := &it.interaction
	c, isNew := t.lookup(e.CustomerID)
	if c == nil {
		return "", nil // t.fatal is set
	}
	o, err := t.pol.ApplyInteraction(&c.Customer, e)
	if err != nil {
		return scoreReason(err), err
	}
	t.changed(c, isNew, o, schemas.CauseInteraction, e.OccurredAt)
	return "", nil
}

func (t *task) validate(r *kgo.Record, id string, at int64) (string, error) {
	switch {
	case id == "":
		return ReasonMissingCustomerID, errors.New("customer_id is empty")
	case string(r.Key) != id:
		return ReasonKeyMismatch, fmt.Errorf("record key %q differs from customer_id %q", truncate(r.Key), id)
	case t.nparts > 0 && t.partitioner.Partition(r.Key, t.nparts) != r.Partition:
		want := t.partitioner.Partition(r.Key, t.nparts)
		t.warnWrongPartition(r, want)
		return ReasonWrongPartition, fmt.Errorf("the key maps to partition %d of %d under the %s partitioner, not to %d",
			want, t.nparts, t.partitioner, r.Partition)
	case at < 0:
		return ReasonInvalidTimestamp, fmt.Errorf("occurred_at %d is before 1970", at)
	case at > t.p.cfg.Now().Add(t.p.cfg.MaxClockSkew).UnixMilli():
		return ReasonFutureTimestamp, fmt.Errorf("occurred_at %s is more than %v in the future",
			time.UnixMilli(at).UTC().Format(time.RFC3339), t.p.cfg.MaxClockSkew)
	}
	return "", nil
}

// warnWrongPartition logs the first wrong_partition record of the task,
// with the likely cause: a producer that partitions with the other
// function (librdkafka's default is CRC32), or by other means.
func (t *task) warnWrongPartition(r *kgo.Record, want int32) {
	if t.wrongPartWarned {
		return
	}
	t.wrongPartWarned = true
	cause := "the producer chose the partition by other means (an explicit partition, a custom partitioner, " +
		"or a partition count that changed): produce with the key alone deciding the partition"
	switch {
	case t.partitioner == PartitionerMurmur2 && PartitionerCRC32.Partition(r.Key, t.nparts) == r.Partition:
		cause = "the producer partitions by CRC32 of the key, librdkafka's default (kcat, confluent-kafka-python, " +
			"confluent-kafka-go): set partitioner=murmur2_random on it, or, if every producer of the inputs does " +
			"the same, run with --input-partitioner crc32"
	case t.partitioner == PartitionerCRC32 && PartitionerMurmur2.Partition(r.Key, t.nparts) == r.Partition:
		cause = "the producer partitions by murmur2 of the key (the Java client's and franz-go's default, " +
			"librdkafka's murmur2_random), not by CRC32 as --input-partitioner crc32 says: set " +
			"partitioner=consistent_random on it, or, if every producer does the same, run with --input-partitioner murmur2"
	}
	t.p.log.Warn("input record in a partition its key does not map to: dead-lettered as wrong_partition (logged once per task)",
		"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "key_partition", want,
		"input_partitioner", string(t.partitioner), "likely_cause", cause)
}

// lookup returns the current customer id, or a new customer
// (customers.get). It returns nil and sets t.fatal if the store fails.
func (t *task) lookup(id string) (c *cust, isNew bool) {
	c, isNew, err := t.custs.get(id, t.clk.cycle)
	if err != nil {
		t.fatal = err
		return nil, false
	}
	return c, isNew
}

// schedule records c's deadline after a change (0: none) in the timer
// clock, by the place c keeps if it is valid in this cycle: a lookup in
// the clock's index for every change took about a tenth of a replay's CPU
// (BENCHMARKS.md).
func (t *task) schedule(c *cust, at int64) {
	if c.cycle == t.clk.cycle {
		t.clk.reschedule(c.slot, at)
		return
	}
	c.slot, c.cycle = t.clk.schedule(c.CustomerID, at), t.clk.cycle
}

// changed records c as changed (customers.changed, with its new deadline
// as TimerAt) and, if a derived field moved, the TierChange output and the
// gauges.
func (t *task) changed(cs *cust, isNew bool, o score.Outcome, cause schemas.Cause, at int64) {
	c := &cs.Customer
	cs.valued, cs.value = o.Valued, o.Value
	due := t.pol.NextDeadline(c)
	t.schedule(cs, due)
	if err := t.custs.changed(cs, due, t.clk.cycle); err != nil {
		t.fatal = err
		return
	}
	if !o.Changed {
		return
	}
	from := "none"
	if o.HadPrevious && !isNew {
		prev := schemas.Customer{Tier: o.Previous.Tier, LifecycleStage: o.Previous.LifecycleStage, ChurnRisk: o.Previous.ChurnRisk,
			ValueClass: o.Previous.ValueClass, Treatment: o.Previous.Treatment}
		t.count(&prev, -1)
		from = o.Previous.Tier
	}
	t.count(c, 1)
	t.changes[[3]string{from, c.Tier, string(cause)}]++
	if r := t.p.cfg.Replay; r != nil && r.NoOutput {
		return
	}
	t.output(c.CustomerID, t.pol.TierChangeTo(&t.tcBuf, c, o, cause, at))
}

// encodePending moves the customers of pend into the write set, encoded
// (customers.encodePending); it sets t.fatal if one fails to encode.
func (t *task) encodePending() {
	if err := t.custs.encodePending(t.clk.cycle); err != nil {
		t.fatal = err
	}
}

// output adds a TierChange for the customer id to the cycle's outputs,
// its key and encoding appended to the outputs' current chunk.
func (t *task) output(id string, tc *schemas.TierChange) {
	b := t.outputs.buf()
	k := len(b)
	b = append(b, id...)
	v := len(b)
	b, err := t.p.cfg.Codec.AppendTierChange(b, tc)
	if err != nil {
		// Our own record failed to encode: a bug, not bad input.
		t.fatal = fmt.Errorf("encode tier change: %w", err)
		return
	}
	t.outputs.keep(b)
	// Sliced to their length: a later append to the chunk never writes
	// into them.
	r := t.outputs.add()
	r.Topic, r.Key, r.Value = t.p.cfg.Topics.TierChanges, b[k:v:v], b[v:len(b):len(b)]
}

// publishProfiles adds the cycle's profile records to its outputs: a
// tombstone for each customer erased in the cycle, then the profile of
// each changed customer, as it is at the end of the cycle (so a customer
// erased and seen again gets its tombstone, then its new profile). Each
// profile is built and encoded once per cycle, here, from the decoded
// customer in the cache (with the models' values of its last evaluation,
// when it had them) or, if it is not there, from its encoding in the
// write set.
func (t *task) publishProfiles(dirty []commitRef) {
	topic := t.p.cfg.Topics.Profiles
	for id := range t.custs.erasures() {
		b := t.outputs.buf()
		k := len(b)
		b = append(b, id...)
		t.outputs.keep(b)
		r := t.outputs.add()
		r.Topic, r.Key = topic, b[k:len(b):len(b)]
		t.profiles++
	}
	for _, ref := range dirty {
		idb := t.custs.id(ref)
		cs := &t.prCust
		var value *clv.Value
		if c, ok := t.custs.cached(idb); ok {
			cs = &c.Customer
			if c.valued {
				value = &c.value
			}
		} else if err := schemas.DecodeCustomer(t.custs.enc(ref), cs); err != nil {
			t.fatal = fmt.Errorf("decode changed customer: %w", err)
			return
		}
		b := t.outputs.buf()
		k := len(b)
		b = append(b, idb...)
		v := len(b)
		b, err := t.p.cfg.Codec.AppendProfile(b, t.pol.ProfileTo(&t.prBuf, cs, value))
		if err != nil {
			// Our own record failed to encode: a bug, not bad input.
			t.fatal = fmt.Errorf("encode profile: %w", err)
			return
		}
		t.outputs.keep(b)
		r := t.outputs.add()
		r.Topic, r.Key, r.Value = topic, b[k:v:v], b[v:len(b):len(b)]
		t.profiles++
	}
}

// erase forgets a customer (an ErasureRequest): it leaves the write set,
// the cache and the timer heap at once; the commit deletes its state and
// its timer index entry from the store and writes a changelog tombstone.
// A customer valora holds gets one last TierChange, with cause ERASURE and
// no personal fields (see score.Policy.ErasureChange). A later event for
// the same id starts a new customer, at version 1. Erasing a customer
// valora does not hold changes nothing.
func (t *task) erase(e *schemas.ErasureRequest) {
	id := e.CustomerID
	c, isNew := t.lookup(id)
	if c == nil || isNew {
		return // t.fatal is set, or there is nothing to erase
	}
	t.custs.erase(c)
	t.clk.schedule(id, 0) // its index entry is stale from now on
	t.count(&c.Customer, -1)
	t.changes[[3]string{c.Tier, "none", string(schemas.CauseErasure)}]++
	if r := t.p.cfg.Replay; r != nil && r.NoOutput {
		return
	}
	tc := t.pol.ErasureChange(&c.Customer, e.RequestedAt)
	t.output(id, &tc)
}

func (t *task) deadLetter(r *kgo.Record, reason string, err error) {
	t.dlq[[2]string{r.Topic, reason}]++
	if rp := t.p.cfg.Replay; rp != nil && rp.NoDeadLetter {
		return
	}
	msg := err.Error()
	if len(msg) > 512 {
		msg = msg[:512]
	}
	*t.outputs.add() = kgo.Record{
		Topic: t.p.cfg.Topics.DeadLetter,
		Key:   r.Key,
		Value: r.Value,
		Headers: []kgo.RecordHeader{
			{Key: HeaderSourceTopic, Value: []byte(r.Topic)},
			{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(r.Partition), 10)},
			{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, r.Offset, 10)},
			{Key: HeaderReason, Value: []byte(reason)},
			{Key: HeaderError, Value: []byte(msg)},
		},
	}
}

// commit makes the cycle durable: outputs acknowledged by Kafka, then the
// changed customers, their timer index entries, the input offsets and the
// task clock in one synced batch. A cycle with nothing applied and nothing
// fired commits nothing.
func (t *task) commit() error {
	if t.pending == 0 && !t.custs.hasChanged() && t.custs.erasedLen() == 0 && t.outputs.len() == 0 && t.pos == t.committedPos {
		return nil
	}
	if t.abandoned() {
		return nil // no cycle starts once the task is abandoned
	}
	start := time.Now()
	// An abandon (a shutdown past its timeout, a lost partition) ends a
	// commit that waits on Kafka; the store then stays at the previous
	// cycle, whether Kafka has this one or not.
	ctx, cancel := context.WithTimeout(t.abandonCtx, commitTimeout)
	defer cancel()
	cycle := t.nextCycle()
	t.encodePending()
	if t.fatal != nil {
		return t.fatal
	}
	dirty, moves, batchBytes := t.custs.commitOrder()
	defer putRefs(dirty, moves)
	if t.p.profilesOn() {
		t.publishProfiles(*dirty)
		if t.fatal != nil {
			return t.fatal
		}
	}
	t.changelogRecords(cycle, *dirty)
	if err := t.send(ctx, cycle); err != nil {
		if t.abandoned() {
			return nil // the task gave the cycle up: not a failure
		}
		return err
	}
	// Kafka has the cycle's records: now the store's batch, built only
	// after send so that a large one is in memory for as short a time as
	// possible, and only commitSlots of them at once.
	if size := batchBytes + 64*t.custs.erasedLen() + 1024; size >= bigBatchBytes {
		select {
		case t.p.commitSlots <- struct{}{}:
			defer func() { <-t.p.commitSlots }()
		case <-t.abandonCtx.Done():
			return nil // the restore catches up from the changelog
		}
	}
	pendingDelta := t.fillBatch(batchBytes, *dirty, *moves)
	if err := t.batch.Commit(); err != nil {
		return err // a *state.Error: names the directory and the cause
	}
	t.committed(start, pendingDelta)
	return nil
}

// changelogRecords builds the cycle's changelog records in clRecs: a
// tombstone per erased customer, then a record per dirty one, in their
// batch order. The checkpoint is added by send.
func (t *task) changelogRecords(cycle uint64, dirty []commitRef) {
	t.clBuf = t.clBuf[:0]
	t.clRecs = t.clRecs[:0]
	if t.p.cfg.Topics.Changelog == "" {
		return
	}
	for id := range t.custs.erasures() {
		k := len(t.clBuf)
		t.clBuf = append(t.clBuf, changelog.KindCustomer)
		t.clBuf = append(t.clBuf, id...)
		t.clRecs = append(t.clRecs, kgo.Record{Key: t.clBuf[k:len(t.clBuf):len(t.clBuf)], Headers: changelog.TombstoneHeaders(cycle)})
	}
	for _, r := range dirty {
		// Key 'c'+id, value header+customer, in clBuf (sliced once it
		// stops growing).
		idb := t.custs.id(r)
		k := len(t.clBuf)
		t.clBuf = append(t.clBuf, changelog.KindCustomer)
		t.clBuf = append(t.clBuf, idb...)
		v := len(t.clBuf)
		t.clBuf = changelog.AppendHeader(t.clBuf, cycle)
		t.clBuf = append(t.clBuf, t.custs.enc(r)...)
		t.clRecs = append(t.clRecs, kgo.Record{Key: t.clBuf[k:v:v], Value: t.clBuf[v:len(t.clBuf):len(t.clBuf)]})
	}
}

// fillBatch writes the cycle to the task's store batch: erasures first (a
// customer erased and seen again in this cycle is deleted, then written
// anew, later in the batch and in the log), the dirty customers, the input
// offsets and the clock, then the moves of the dirty customers' timer
// index entries in key order (see commitorder.go), and the changelog
// position. It returns the change in indexed timers.
func (t *task) fillBatch(batchBytes int, dirty, moves []commitRef) (pendingDelta int) {
	if t.batch == nil {
		t.batch = t.p.cfg.Store.NewBatch()
	}
	b := t.batch
	b.Reserve(batchBytes + 64*t.custs.erasedLen() + 1024)
	pendingDelta = t.custs.fillBatch(b, dirty)
	for topic, next := range t.next {
		b.SetOffset(t.part, topic, next)
	}
	b.SetClock(t.part, state.Clock{StreamTime: t.st, TimerDigest: t.clk.digest})
	// Each dirty customer's timer index entry moves with it: the entry the
	// store holds is due at storedAt, the new one at the deadline scheduled
	// at the customer's last change (its encoding's TimerAt).
	for _, r := range moves {
		id := string(t.custs.id(r))
		if r.put {
			b.PutTimer(t.part, int64(r.abbr), id)
			t.clk.indexed(int64(r.abbr))
			pendingDelta++
		} else {
			b.DeleteTimer(t.part, int64(r.abbr), id)
			pendingDelta--
		}
	}
	if t.p.cfg.Topics.Changelog != "" {
		b.SetChangelogNext(t.part, t.sendQ[len(t.sendQ)-1].Offset+1)
	}
	return pendingDelta
}

// committed runs once a cycle is durable in Kafka and in the store: it
// publishes the cycle's metrics, marks the positions for the group, and
// starts the next cycle.
func (t *task) committed(start time.Time, pendingDelta int) {
	now := time.Now()
	m := t.p.m
	m.commitTime.Observe(now.Sub(start).Seconds())
	if t.pending > 0 {
		m.latency.Observe(now.Sub(t.oldest).Seconds())
	}
	m.commits.Inc()
	for src := range numSources {
		if n := t.consumed[src]; n > 0 {
			m.consumed.WithLabelValues(t.topics[src]).Add(float64(n))
		}
		if n := t.applied[src]; n > 0 {
			m.applied.WithLabelValues(t.topics[src]).Add(float64(n))
		}
	}
	for k, n := range t.dlq {
		m.deadLettered.WithLabelValues(k[0], k[1]).Add(float64(n))
	}
	for src, n := range t.late {
		if n > 0 {
			m.late.WithLabelValues(t.topics[src]).Add(float64(n))
		}
	}
	m.timersFired.Add(float64(t.fired))
	t.lateness.Add()
	hits, misses := t.custs.takeCounts()
	m.cacheHits.Add(float64(hits))
	m.cacheMisses.Add(float64(misses))
	m.profiles.Add(float64(t.profiles))
	t.profiles = 0
	t.publishCounts()
	nowMs := now.UnixMilli()
	for _, at := range t.evAt {
		t.evLatency.Observe(max(0, float64(nowMs-at)/1000))
	}
	t.evLatency.Add()
	t.evAt = t.evAt[:0]
	if t.strict {
		var covered int64
		for src := range t.pos {
			covered += t.pos[src] - t.committedPos[src]
		}
		m.replayRemaining.Sub(float64(covered))
	}
	t.committedPos = t.pos
	t.clk.pending += pendingDelta
	m.timersPending.Add(float64(pendingDelta))
	if f := t.p.cfg.OnCommit; f != nil && t.pending > 0 {
		f(t.pending, now.Sub(t.oldest))
	}
	if len(t.next) > 0 {
		t.sink.durable(&t.out)
		t.startCommitted = true // the positions handed to the group supersede them
	}
	// A replay keeps clean customers in the write set: its decoded cache is
	// small, and the write set serves its reads (BENCHMARKS.md).
	t.custs.committed(t.strict)
	t.clk.committed()
	t.consumed, t.applied = [numSources]int{}, [numSources]int{}
	clear(t.dlq)
	t.late = [numSources]int{}
	t.fired = 0
	t.outputs.reset()
	clear(t.sendQ)
	t.sendQ = t.sendQ[:0]
	t.pending = 0
}

// A commit whose store batch takes bigBatchBytes or more waits for one of
// bigBatchSlots slots before it builds the batch, and holds it until the
// batch is committed. Such a batch is a copy of the task's dirty
// customers, up to its share of Config.WriteSetBytes, and Pebble holds it
// until it has flushed it: a replay's tasks reach their commit interval
// together, and twelve batches of about 20 MiB built at once took a replay
// past its 1 GiB (BENCHMARKS.md). A daemon's batches, built every commit
// interval, are rarely this large; none waits for another's network round
// trip, since the batch is built after send. (Variables only so that a test
// can make every commit wait for a single slot.)
var (
	bigBatchBytes = 1 << 20
	bigBatchSlots = 2
)

// commitTimeout bounds a commit's wait for Kafka: a commit that has not
// been acknowledged by then fails, and the task stops.
const commitTimeout = time.Minute

// send hands the cycle's outputs, changelog records and checkpoint to
// Kafka and returns once Kafka has them: in exactly-once mode, once the
// task's transaction committed. The checkpoint is last in sendQ. Whatever
// fails, the cycle is not in the store, and the task must stop.
func (t *task) send(ctx context.Context, cycle uint64) error {
	// Every record of a cycle carries the time it is sent: the client would
	// read the clock for each record without a timestamp.
	now := time.Now()
	t.sendQ = t.sendQ[:0]
	for i := range t.outputs.len() {
		r := t.outputs.at(i)
		r.Timestamp = now
		t.sendQ = append(t.sendQ, r)
	}
	if topic := t.p.cfg.Topics.Changelog; topic != "" {
		for i := range t.clRecs {
			r := &t.clRecs[i]
			r.Topic, r.Partition, r.Timestamp = topic, t.part, now
			t.sendQ = append(t.sendQ, r)
		}
		k := len(t.clBuf)
		t.clBuf = append(t.clBuf, changelog.KindCheckpoint)
		v := len(t.clBuf)
		t.clBuf = changelog.AppendCheckpoint(t.clBuf, cycle, t.st, t.topics[:], t.pos[:], t.since)
		t.clRecs = append(t.clRecs, kgo.Record{Topic: topic, Partition: t.part, Key: t.clBuf[k:v:v], Value: t.clBuf[v:], Timestamp: now})
		t.sendQ = append(t.sendQ, &t.clRecs[len(t.clRecs)-1])
	}
	t.out = cycleOut{part: t.part, recs: t.sendQ, topics: &t.topics, pos: t.pos, group: t.cl, abandoned: t.abandonCtx.Done()}
	if len(t.sendQ) == 0 {
		return nil
	}
	return t.sink.send(ctx, &t.out)
}

// commitStart commits the positions the task started from to the group,
// once. The client takes the offsets adjustOffsets chose as already
// committed, so a task restored past the group's offsets (another member
// processed records, and crashed before its offsets reached the group)
// would otherwise leave them behind until it applies a new record.
//
// It runs at the first tick after the client has taken the offsets of the
// task's assignment: an adjustOffsets call that returned after the task was
// created. Committed earlier, the commit works, but its response can come
// back before the client has set up the new session's offsets, and
// franz-go then logs a warning ("after our group session has ended") on
// every start. Once the task has marked positions of its own, they
// supersede the start.
func (t *task) commitStart() {
	if t.startCommitted || t.p.adjusted.Load() == t.startGen {
		return
	}
	t.startCommitted = true
	all := t.positions()
	if len(all) == 0 {
		return
	}
	t.cl.CommitOffsets(t.ctx, all, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		if err != nil && t.ctx.Err() == nil {
			t.p.log.Warn("commit restored positions to the group", "task", t.part, "err", err)
		}
	})
}

// positions returns the task's durable input positions (those of its last
// commit, or of its load), to commit to the group: the group's offsets
// must never run ahead of the state, since tooling (and tests) read them
// as what has been processed.
func (t *task) positions() map[string]map[int32]kgo.EpochOffset {
	return positionsOf(t.part, &t.topics, t.committedPos)
}

func decodeReason(err error) string {
	if r, ok := schemas.ReasonOf(err); ok {
		return string(r)
	}
	return string(schemas.ReasonMalformed)
}

func scoreReason(err error) string {
	switch {
	case errors.Is(err, score.ErrUnknownCurrency):
		return ReasonUnknownCurrency
	case errors.Is(err, score.ErrOverflow):
		return ReasonAmountOverflow
	case errors.Is(err, score.ErrDuplicateEvent):
		return ReasonDuplicateEvent
	}
	return ReasonInvalidField
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return string(b)
}
