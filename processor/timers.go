package processor

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"

	"valora/processor/score"
	"valora/schemas"
	"valora/state"
)

// Timers
//
// A customer who stops buying sends no events, so whatever time alone
// changes (the churn flag, lifecycle moves, the end of a risk period, the
// recency score) is driven by timers. Every customer has at most one: the
// event time at which its derived fields next change with no new event,
// score.Policy.NextDeadline.
//
// Where a customer's deadline lives:
//   - clean customers (not changed since the last commit): in the Pebble
//     timer index, as the entry (c.TimerAt, id), written in the same batch
//     as the customer itself;
//   - dirty customers: in the timer clock's in-memory heap, since their
//     index entry is stale until commit moves it.
//
// Firing merges the two in (due, customer id) order, skipping index entries
// of dirty customers. A timer fires when the task's stream time reaches its
// due time: before a record with a later event time is applied, or when an
// idle task's stream time follows the wall clock. The customer is evaluated
// at the due time, so its TierChange carries occurred_at = due and cause
// INACTIVITY, and it goes through the commit cycle like a record's.
//
// A policy change (at load, or SetPolicy while running) rebuilds the index
// under the new policy; a customer evaluated under another policy version
// gets a deadline equal to its own EvaluatedAt, which no ordinary deadline
// can be (NextDeadline is always later), so fire recognises it and
// evaluates it at the current stream time with cause POLICY_CHANGE.
//
// Invariant, after every advance(T): no customer has a deadline <= T, so
// the index holds no live entry at or before stream time, and new entries
// written at commit (deadlines of dirty customers) are all after it.

// due is one timer: a customer and its due time.
type due struct {
	at int64
	id string
}

func (a due) less(b due) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.id < b.id
}

// timerClock is a task's timer bookkeeping. Only the task goroutine uses it.
type timerClock struct {
	// idx gives every dirty customer its place in dues, which holds its
	// current deadline (0: none). heap orders deadlines of dirty
	// customers by (deadline, id), as (deadline, place in dues) pairs; a
	// reschedule pushes a new entry and leaves the old one, which is
	// dropped when it reaches the top and no longer matches dues
	// (heapMin).
	idx  map[string]int32
	dues []dirtyDue
	heap []heapRef
	// cycle numbers the commit cycles (committed moves it on): a place in
	// dues given out in one cycle is valid until its end, as dues only
	// grows within a cycle. A customer the task holds decoded keeps its
	// place, and the cycle it was given in (cust), so that only its first
	// change in a cycle looks it up in idx (task.schedule).
	cycle uint64

	// The index cursor: entries up to and including cursor have been read;
	// buf[bufPos:] are read and not yet consumed. next is a lower bound on
	// the due time of the first index entry after the cursor (-1: unknown,
	// math.MaxInt64: none). readFrom is the cursor before buf was read.
	//
	// buf holds entries beyond stream time too, so that a scan serves many
	// advances. It is exact only until the next commit, which moves the
	// index entries of the customers it writes: commit drops it (dropBuf),
	// and the next read starts again after the last consumed entry. Until
	// then an entry of a customer changed since is stale, and skipped
	// because the customer is dirty.
	cursor   due
	readFrom due
	buf      []due
	bufPos   int
	next     int64

	// pending counts the entries in the index (for the gauge).
	pending int
	// digest of the policy the index was built with.
	digest []byte
}

// dirtyDue is a dirty customer's id and current deadline (0: none).
type dirtyDue struct {
	id string
	at int64
}

// heapRef is an entry of timerClock.heap: a deadline and the place in dues
// of the customer it was scheduled for.
type heapRef struct {
	at int64
	i  int32
}

func (c *timerClock) init() {
	c.idx = make(map[string]int32)
	c.cycle = 1 // a cust's zero cycle is never valid
	c.dues, c.heap = c.dues[:0], c.heap[:0]
	c.cursor = due{at: -1}
	c.next = -1
}

// schedule records id's deadline after a change (0: none), and returns
// the customer's place in dues.
func (c *timerClock) schedule(id string, at int64) int32 {
	if i, ok := c.idx[id]; ok {
		c.reschedule(i, at)
		return i
	}
	c.dues = append(c.dues, dirtyDue{id: id, at: at})
	i := int32(len(c.dues) - 1)
	c.idx[id] = i
	if at != 0 {
		c.push(heapRef{at, i})
	}
	return i
}

// reschedule records the deadline of the dirty customer at place i in dues.
func (c *timerClock) reschedule(i int32, at int64) {
	if c.dues[i].at == at {
		return
	}
	c.dues[i].at = at
	if at != 0 {
		c.push(heapRef{at, i})
	}
}

// dirty reports whether id changed since the last commit.
func (c *timerClock) dirty(id string) bool {
	_, ok := c.idx[id]
	return ok
}

// heapMin returns the earliest deadline of a dirty customer, or
// math.MaxInt64.
func (c *timerClock) heapMin() int64 {
	for len(c.heap) > 0 {
		top := c.heap[0]
		if c.dues[top.i].at == top.at {
			return top.at
		}
		c.pop()
	}
	return math.MaxInt64
}

// top returns the earliest deadline of a dirty customer and its id; it
// must follow a heapMin that found one.
func (c *timerClock) top() due {
	r := c.heap[0]
	return due{r.at, c.dues[r.i].id}
}

// indexed notes a new index entry written at commit.
func (c *timerClock) indexed(at int64) {
	if c.next == -1 || at < c.next {
		c.next = at
	}
}

// committed forgets the dirty customers' deadlines: they are in the index.
// Called after the commit has written the index.
func (c *timerClock) committed() {
	c.dropBuf()
	clear(c.idx)
	clear(c.dues) // let go of the ids
	c.dues, c.heap = c.dues[:0], c.heap[:0]
	c.cycle++
}

// dropBuf forgets the read-ahead entries: the next read starts after the
// last consumed entry. next stays a lower bound: the first dropped entry
// bounds what the index holds after the cursor (new entries lowered next
// through indexed).
func (c *timerClock) dropBuf() {
	if c.bufPos < len(c.buf) {
		if c.bufPos > 0 {
			c.cursor = c.buf[c.bufPos-1]
		} else {
			c.cursor = c.readFrom
		}
		if at := c.buf[c.bufPos].at; c.next != -1 && at < c.next {
			c.next = at
		}
	}
	clear(c.buf)
	c.buf, c.bufPos = c.buf[:0], 0
}

// less orders two heap entries by (deadline, id).
func (c *timerClock) less(a, b heapRef) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return c.dues[a.i].id < c.dues[b.i].id
}

func (c *timerClock) push(r heapRef) {
	c.heap = append(c.heap, r)
	i := len(c.heap) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !c.less(c.heap[i], c.heap[parent]) {
			break
		}
		c.heap[i], c.heap[parent] = c.heap[parent], c.heap[i]
		i = parent
	}
}

// pop drops the top entry.
func (c *timerClock) pop() {
	n := len(c.heap) - 1
	c.heap[0] = c.heap[n]
	c.heap = c.heap[:n]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && c.less(c.heap[l], c.heap[m]) {
			m = l
		}
		if r < n && c.less(c.heap[r], c.heap[m]) {
			m = r
		}
		if m == i {
			return
		}
		c.heap[i], c.heap[m] = c.heap[m], c.heap[i]
		i = m
	}
}

// indexBatch is how many index entries one scan reads at most.
const indexBatch = 512

// indexHead returns the first live index entry due at or before T (an
// entry of a clean customer), or ok false.
func (t *task) indexHead(T int64) (d due, ok bool, err error) {
	c := &t.clk
	for {
		for c.bufPos < len(c.buf) {
			e := c.buf[c.bufPos]
			if e.at > T {
				return due{}, false, nil
			}
			if c.dirty(e.id) {
				c.bufPos++ // stale: the customer's deadline is in the heap
				continue
			}
			return e, true, nil
		}
		if c.next != -1 && c.next > T {
			return due{}, false, nil
		}
		if err := t.readIndex(T); err != nil {
			return due{}, false, err
		}
		if len(c.buf) == 0 {
			return due{}, false, nil
		}
	}
}

// readIndex refills the buffer with up to indexBatch entries after the
// cursor, and updates next. It reads past T (entries due later stay in the
// buffer for the advances to come) unless the first entry is already past
// T: then it reads nothing, and next is that entry's due time.
func (t *task) readIndex(T int64) error {
	c := &t.clk
	clear(c.buf)
	c.buf, c.bufPos = c.buf[:0], 0
	c.next = math.MaxInt64
	c.readFrom = c.cursor
	from := max(c.cursor.at, 0)
	err := t.p.cfg.Store.ScanTimers(t.part, from, math.MaxInt64, func(at int64, id []byte) error {
		if at == c.cursor.at && string(id) <= c.cursor.id {
			return nil // read before
		}
		if (at > T && len(c.buf) == 0) || len(c.buf) == indexBatch {
			c.next = at
			return state.ErrStopScan
		}
		c.buf = append(c.buf, due{at, string(id)})
		return nil
	})
	if err != nil {
		return fmt.Errorf("read timer index: %w", err)
	}
	if n := len(c.buf); n > 0 {
		c.cursor = c.buf[n-1]
	}
	return nil
}

// advance moves stream time to T (if later), firing every timer due at or
// before T in (due, customer id) order.
func (t *task) advance(T int64) error { return t.advanceTo(T, false) }

// advanceTo is advance; bounded, it stops once the cycle must commit
// (full), with stream time just before the due time it fired last (every
// deadline before it has fired), for the caller to commit and call again.
// An idle task's jump to the wall clock (tick) is bounded: it can pass the
// deadlines of every customer of the partition (a task that caught up on
// old records), and firing them all in one cycle would hold every one of
// them, and their outputs, in memory until the commit.
func (t *task) advanceTo(T int64, bounded bool) error {
	c := &t.clk
	for {
		h := c.heapMin()
		ix, ok, err := t.indexHead(T)
		if err != nil {
			return err
		}
		var d due
		switch {
		case ok && (h > T || ix.less(c.top())):
			d = ix
			c.bufPos++
		case h <= T:
			d = c.top()
			c.pop()
		default:
			if T > t.st {
				t.st = T
			}
			return nil
		}
		if err := t.fire(d, T); err != nil {
			return err
		}
		if bounded && t.full() {
			t.st = max(t.st, d.at-1)
			return nil
		}
	}
}

// fire evaluates one customer at its due time.
func (t *task) fire(d due, T int64) error {
	c, isNew := t.lookup(d.id)
	if c == nil {
		return t.fatal
	}
	if isNew {
		// An index entry without its customer: impossible while the
		// entry and the customer are written in one batch. Drop it.
		t.clk.schedule(d.id, 0)
		return nil
	}
	// A customer due at its evaluation time itself, where no ordinary
	// deadline can be, was evaluated under another policy: the timer index
	// rebuild scheduled it so (or score.Policy.NextDeadline did, for stored
	// fields stale under the policy). The policy changed at the current
	// stream time, so it is evaluated there, and its change, if any, is the
	// policy's doing.
	cause, at := schemas.CauseInactivity, d.at
	if d.at <= c.EvaluatedAt {
		cause, at = schemas.CausePolicyChange, max(d.at, t.st)
	}
	o := t.pol.Evaluate(&c.Customer, at)
	t.changed(c, false, o, cause, at)
	if t.fatal != nil {
		return t.fatal
	}
	t.fired++
	t.lateness.Observe(float64(T-at) / 1000)
	return nil
}

// tick runs on the commit ticker: it publishes the time gauges and, in live
// mode, lets a caught-up, idle task's stream time follow the wall clock.
func (t *task) tick() error {
	cfg := t.p.cfg
	now := cfg.Now()
	m := t.p.m
	part := strconv.Itoa(int(t.part))
	if t.st > 0 {
		m.watermarkLag.WithLabelValues(part).Set(max(0, float64(now.UnixMilli()-t.st)/1000))
	}
	// A merge waiting for a source that cannot be fetched gives up here,
	// when no fetch comes to end the wait.
	if !t.strict && t.queued() {
		if err := t.merge(); err != nil {
			return err
		}
	}
	ends := t.p.endOffsets(t.part)
	caughtUp := ends != nil && time.Since(ends.at) < t.p.endsStale()
	if ends != nil {
		for src, topic := range t.topics {
			if topic == "" {
				continue
			}
			pos := t.pos[src]
			if pos < 0 {
				pos = ends.start[src]
			}
			m.consumerLag.WithLabelValues(topic, part).Set(float64(max(0, ends.end[src]-pos)))
			switch {
			case pos >= ends.end[src]:
				m.consumerLagSeconds.WithLabelValues(topic, part).Set(0)
			case !t.lastTs[src].IsZero():
				m.consumerLagSeconds.WithLabelValues(topic, part).Set(max(0, now.Sub(t.lastTs[src]).Seconds()))
			}
			if pos < ends.end[src] {
				caughtUp = false
			}
		}
	}
	if cfg.Time != TimeLive || !caughtUp || len(t.in) > 0 || t.queued() || !ends.at.After(t.lastInput) {
		return nil
	}
	// A listing taken after the last input showed nothing more to read:
	// the task has been caught up since lastInput.
	if time.Since(t.lastInput) < cfg.IdleTimeout {
		return nil
	}
	if wall := now.Add(-cfg.AllowedLateness).UnixMilli(); wall > t.st {
		return t.advanceTo(wall, true)
	}
	return nil
}

// timerRebuild rewrites a task's timer index from its customers, when the
// index was built under another policy (or never). It deletes the old
// entries, writes one entry per customer with a deadline (and the
// customer, if its TimerAt changes), and records the new digest last, in
// batches: a crash midway leaves the old digest, so the next load rebuilds
// again.
type timerRebuild struct {
	t      *task
	b      *state.Batch
	digest []byte
	buf    []byte
}

func (t *task) newTimerRebuild(digest []byte) *timerRebuild {
	b := t.p.cfg.Store.NewBatch()
	b.DeleteTimers(t.part)
	t.clk.pending = 0
	return &timerRebuild{t: t, b: b, digest: digest}
}

const rebuildBatch = 10000

func (r *timerRebuild) add(c *schemas.Customer) error {
	t := r.t
	at := t.pol.NextDeadline(c)
	if c.EvaluatedAt > 0 && c.PolicyVersion != t.pol.Version {
		// Evaluated under another policy: due at once, so that fire
		// re-evaluates it at stream time under this one.
		at = c.EvaluatedAt
	}
	if at != 0 {
		r.b.PutTimer(t.part, at, c.CustomerID)
		t.clk.pending++
	}
	if at != c.TimerAt {
		c.TimerAt = at
		var err error
		r.buf, err = schemas.AppendCustomer(r.buf[:0], c)
		if err != nil {
			return fmt.Errorf("encode customer: %w", err)
		}
		r.b.PutCustomer(t.part, c.CustomerID, r.buf)
	}
	if r.b.Len() >= rebuildBatch {
		if err := r.b.Commit(); err != nil {
			return fmt.Errorf("rebuild timer index: %w", err)
		}
	}
	return nil
}

// switchPolicy puts pol in force in the task, right after a commit (no
// customer is dirty, so the store holds every customer as the cache does).
// Under a policy with another digest it rebuilds the timer index as load
// does; the customers whose stored fields are stale under pol are due at
// once (score.Policy.NextDeadline), so advance re-evaluates them now, with
// cause POLICY_CHANGE, and the next commit makes their changes durable.
func (t *task) switchPolicy(pol *score.Policy) error {
	t.pol = pol
	digest := pol.Digest()
	if bytes.Equal(digest, t.clk.digest) {
		return nil
	}
	t.p.m.timersPending.Sub(float64(t.clk.pending))
	// The rebuild rewrites customers whose deadline moves: drop the write
	// set's copies (all clean, after a commit) rather than let them go
	// stale.
	t.custs.dropClean()
	rb := t.newTimerRebuild(digest)
	err := t.p.cfg.Store.ScanCustomers(t.part, func(id, value []byte) error {
		// A cached customer is the same as the stored one after a
		// commit; rebuild on the cached object so its TimerAt stays true.
		c, ok := t.custs.cached(id)
		if !ok {
			c = new(cust)
			if err := schemas.DecodeCustomer(value, &c.Customer); err != nil {
				return fmt.Errorf("decode customer in task %d: %w", t.part, err)
			}
		}
		return rb.add(&c.Customer)
	})
	if err == nil {
		err = rb.finish()
	} else {
		rb.b.Close()
	}
	t.p.m.timersPending.Add(float64(t.clk.pending))
	if err != nil {
		return err
	}
	// The index was rewritten: read it again from the start.
	t.clk.cursor, t.clk.buf, t.clk.bufPos, t.clk.next = due{at: -1}, t.clk.buf[:0], 0, -1
	return t.advance(t.st)
}

func (r *timerRebuild) finish() error {
	defer r.b.Close()
	t := r.t
	// Keep the stored stream time; only the digest changes.
	r.b.SetClock(t.part, state.Clock{StreamTime: t.st, TimerDigest: r.digest})
	if err := r.b.Commit(); err != nil {
		return fmt.Errorf("rebuild timer index: %w", err)
	}
	t.clk.digest = r.digest
	return nil
}
