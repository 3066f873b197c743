package processor

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"valora/state"
)

// The changelog topic backs the state of every task: partition p holds what
// task p committed, and only the current owner of task p writes to it. Each
// commit cycle appends, in this order, one record per changed customer and
// one checkpoint record:
//
//	key 'c' | customer id   value: format(1) | cycle(8 BE) | Customer (Avro)
//	key 'c' | customer id   value: none (a tombstone: the customer was erased);
//	                        header valora.cycle: format(1) | cycle(8 BE)
//	key 'k'                 value: format(1) | cycle(8 BE) | stream time(8 BE) |
//	                               count(uvarint) | (len(uvarint) | topic | next offset(8 BE))... |
//	                               since(8 BE)
//
// The checkpoint carries the task's input positions and stream time after
// the cycle, so the changelog alone rebuilds a task: its customers and where
// to resume reading the inputs.
//
// The topic is compacted: Kafka keeps only the last record of each key (and
// a tombstone for delete.retention.ms), so older checkpoints disappear and
// the customer records that survive them no longer sit next to their own
// checkpoint. A restore therefore applies every customer record that a
// later checkpoint follows, whatever its cycle, and skips only the tail
// after the last checkpoint: in exactly-once mode read_committed shows no
// such tail, and in at-least-once mode it is what a crash in the middle of
// a produce left. The inputs it came from are read again from the last
// checkpoint's positions; and since those records stay in the log, the
// task that skipped them first publishes a correction cycle, with the
// stored value (or a tombstone) of each customer the tail named, so that
// no restore, before or after compaction, can apply the tail.
//
// A cycle's high 32 bits name the task's incarnation (each task object
// draws them at random; the low half counts its cycles), and a checkpoint
// carries since: the changelog offset at which its incarnation took the
// task over (the end its restore read to). At a checkpoint, a buffered
// record of another incarnation at or past since is dropped: it is a late
// write of a previous owner that its restore never saw (in at-least-once
// mode a killed process's last produce can reach the broker after the new
// owner has read the log), and applying it would bring back an older state.
// A checkpoint without since (written before it existed) applies all.
const (
	changelogCustomer   byte = 'c'
	changelogCheckpoint byte = 'k'
	changelogFormat     byte = 1
	changelogHeaderLen       = 1 + 8
)

// HeaderCycle is the changelog header of a customer tombstone: the cycle
// that erased the customer, encoded as a value header.
const HeaderCycle = "valora.cycle"

// changelogMaxCompactionLag is the max.compaction.lag.ms of a changelog
// topic valora creates: 7 days.
const changelogMaxCompactionLag = "604800000"

// errChangelog marks a changelog record this build cannot read.
var errChangelog = errors.New("changelog record")

// checkpoint is a decoded changelog checkpoint record.
type checkpoint struct {
	cycle      uint64
	streamTime int64
	next       map[string]int64
	since      int64 // -1: not recorded
}

// applies reports whether a customer record of cycle at offset, buffered
// before cp, is part of the state cp completes.
func (cp *checkpoint) applies(cycle uint64, offset int64) bool {
	return cp.since < 0 || offset < cp.since || cycle>>32 == cp.cycle>>32
}

func appendChangelogHeader(dst []byte, cycle uint64) []byte {
	dst = append(dst, changelogFormat)
	return binary.BigEndian.AppendUint64(dst, cycle)
}

// appendCheckpoint appends a checkpoint value with the positions of the
// sources that have one (pos >= 0).
func appendCheckpoint(dst []byte, cycle uint64, st int64, topics *[numSources]string, pos *[numSources]int64, since int64) []byte {
	dst = appendChangelogHeader(dst, cycle)
	dst = binary.BigEndian.AppendUint64(dst, uint64(st))
	n := 0
	for _, p := range pos {
		if p >= 0 {
			n++
		}
	}
	dst = binary.AppendUvarint(dst, uint64(n))
	for src, p := range pos {
		if p < 0 {
			continue
		}
		dst = binary.AppendUvarint(dst, uint64(len(topics[src])))
		dst = append(dst, topics[src]...)
		dst = binary.BigEndian.AppendUint64(dst, uint64(p))
	}
	return binary.BigEndian.AppendUint64(dst, uint64(since))
}

// changelogHeader returns a changelog value's cycle and payload.
func changelogHeader(v []byte) (cycle uint64, payload []byte, err error) {
	if len(v) < changelogHeaderLen {
		return 0, nil, fmt.Errorf("%w: value of %d bytes is too short", errChangelog, len(v))
	}
	if v[0] != changelogFormat {
		return 0, nil, fmt.Errorf("%w: format %d is not one this build reads (a newer valora wrote it?)", errChangelog, v[0])
	}
	return binary.BigEndian.Uint64(v[1:9]), v[changelogHeaderLen:], nil
}

// changelogCustomerRecord returns a customer record's cycle and payload;
// deleted is set for a tombstone, whose cycle is in HeaderCycle.
func changelogCustomerRecord(rec *kgo.Record) (cycle uint64, payload []byte, deleted bool, err error) {
	if rec.Value != nil {
		cycle, payload, err = changelogHeader(rec.Value)
		return cycle, payload, false, err
	}
	for _, h := range rec.Headers {
		if h.Key == HeaderCycle {
			cycle, _, err = changelogHeader(h.Value)
			return cycle, nil, true, err
		}
	}
	return 0, nil, false, fmt.Errorf("%w: customer tombstone without a %s header", errChangelog, HeaderCycle)
}

// tombstoneHeaders returns the headers of a tombstone written in cycle.
func tombstoneHeaders(cycle uint64) []kgo.RecordHeader {
	return []kgo.RecordHeader{{Key: HeaderCycle, Value: appendChangelogHeader(make([]byte, 0, changelogHeaderLen), cycle)}}
}

func decodeCheckpoint(v []byte) (checkpoint, error) {
	cycle, b, err := changelogHeader(v)
	if err != nil {
		return checkpoint{}, err
	}
	bad := fmt.Errorf("%w: truncated checkpoint", errChangelog)
	if len(b) < 8 {
		return checkpoint{}, bad
	}
	cp := checkpoint{cycle: cycle, streamTime: int64(binary.BigEndian.Uint64(b)), next: map[string]int64{}, since: -1}
	b = b[8:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > 64 {
		return checkpoint{}, bad
	}
	b = b[k:]
	for range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < l+8 {
			return checkpoint{}, bad
		}
		topic := string(b[k : k+int(l)])
		b = b[k+int(l):]
		cp.next[topic] = int64(binary.BigEndian.Uint64(b))
		b = b[8:]
	}
	switch len(b) {
	case 0: // written before since existed
	case 8:
		cp.since = int64(binary.BigEndian.Uint64(b))
	default:
		return checkpoint{}, bad
	}
	return cp, nil
}

// restoreBatchRecords bounds a restore's Pebble batch; batches are written
// without syncing and the restore ends with one synced commit.
const restoreBatchRecords = 50_000

// restoreIngestRecords is the size of a restore from which the customer
// records skip Pebble's write-ahead log and memtable: they are collected in
// a state.Loader and ingested as sorted tables of up to restoreIngestBytes
// each, each followed by a batch with its last checkpoint. Such a restore
// holds two tables' worth of memory (one filling, one being written), and
// at most restoreIngestSlots tasks of a processor restore so at a time.
const (
	restoreIngestRecords = 200_000
	restoreIngestBytes   = 32 << 20
)

// restoreIngestSlots bounds the tasks of one processor that restore through
// ingested tables at the same time; the others wait for a slot. Restores
// are bound by the CPU and the disk, so running more at once would add
// memory, not speed.
func restoreIngestSlots() int { return max(2, runtime.GOMAXPROCS(0)) }

// restore brings the task's partition of the store up to the committed end
// of its changelog partition, before the task reads any input:
//
//   - a store with a checkpoint for the task reads the changelog past it
//     (usually nothing, or the cycles a crash kept from the store);
//   - a store without one reads the changelog from the start, and the first
//     cycle it applies replaces whatever the store held for the task;
//   - if the changelog holds no cycle at all but the store holds state for
//     the task (a store from before the changelog, or a recreated topic),
//     the task publishes that state as its first cycle (publishCycle).
//
// In exactly-once mode the end it reads to is final: waitStable has
// waited for the previous owner's last transaction to end.
func (t *task) restore(ctx context.Context) error {
	topic := t.p.cfg.Topics.Changelog
	store := t.p.cfg.Store
	next, found, err := store.ChangelogNext(t.part)
	if err != nil {
		return err
	}
	if t.p.txn != nil {
		if err := t.p.waitStable(ctx, t.cl, t.part); err != nil {
			return err
		}
	}
	so, eo, err := t.p.changelogBounds(ctx, t.cl, t.part)
	if err != nil {
		return err
	}
	end := eo.Offset
	t.since = end // records of another incarnation from here on are late writes
	if found && next > end {
		t.p.log.Warn("changelog ends before the store's checkpoint (topic recreated?); restoring it from the start",
			"task", t.part, "checkpoint", next, "changelog_end", end)
		found = false
	}
	from := max(next, so.Offset)
	if !found {
		from = so.Offset
	}
	remaining := max(0, end-from)
	t.p.m.restoreRemaining.Add(float64(remaining))
	defer func() { t.p.m.restoreRemaining.Sub(float64(remaining)) }()
	applied := 0
	if remaining > 0 {
		start := time.Now()
		t.p.log.Info("restoring task from changelog", "task", t.part, "from", from, "to", end, "records", remaining)
		rd, err := kgo.NewClient(append([]kgo.Opt{
			kgo.SeedBrokers(t.p.cfg.Brokers...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {t.part: kgo.NewOffset().At(from)}}),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.KeepControlRecords(),
			kgo.FetchMaxBytes(64 << 20),
			kgo.FetchMaxPartitionBytes(32 << 20),
			kgo.ClientID("valora-restore"),
		}, t.p.cfg.ClientOpts...)...)
		if err != nil {
			return fmt.Errorf("changelog reader: %w", err)
		}
		defer rd.Close()
		r := restorer{part: t.part, b: store.NewBatch(), wipe: !found}
		if r.wipe {
			// Nothing to replace in an empty store (a new instance, or a
			// task new to it): no range deletion under the restored state.
			empty, err := store.PartitionEmpty(t.part)
			if err != nil {
				return err
			}
			r.wipe = !empty
		}
		if remaining >= cmp.Or(t.p.cfg.restoreIngestAt, restoreIngestRecords) {
			select {
			case t.p.ingestSlots <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			defer func() { <-t.p.ingestSlots }()
			r.l = store.NewLoader(t.part)
		}
		r.pipeline(ctx, store)
		defer r.close()
		pos := from
		lastLog := start
		for pos < end {
			fs := rd.PollRecords(ctx, 10000)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := fs.Err0(); err != nil {
				return fmt.Errorf("read changelog: %w", err)
			}
			t.beat.Store(time.Now().UnixNano())
			var ferr error
			before := pos
			fs.EachRecord(func(rec *kgo.Record) {
				if ferr != nil || rec.Offset >= end {
					return
				}
				pos = max(pos, rec.Offset+1)
				ferr = r.add(ctx, rec)
			})
			// The gauges move once per poll, not per record.
			if read := pos - before; read > 0 {
				t.p.m.restoreRemaining.Sub(float64(read))
				t.p.m.restored.Add(float64(read))
				remaining -= read
			}
			if ferr != nil {
				return fmt.Errorf("at changelog offset %d: %w", pos, ferr) // the caller names the task
			}
			if now := time.Now(); now.Sub(lastLog) >= 10*time.Second {
				lastLog = now
				done := pos - from
				rate := float64(done) / now.Sub(start).Seconds()
				eta := time.Duration(float64(end-pos) / max(rate, 1) * float64(time.Second))
				t.p.log.Info("restoring task", "task", t.part, "done", done, "remaining", end-pos,
					"records_per_second", int(rate), "eta", eta.Round(time.Second))
			}
		}
		if err := r.finish(ctx); err != nil {
			return err // the caller names the task
		}
		applied = r.cycles
		t.p.log.Info("task restored", "task", t.part, "records", end-from, "checkpoints", applied,
			"skipped_records", len(r.ids), "stale_records", r.stale, "seconds", time.Since(start).Seconds())
		if len(r.ids) > 0 {
			// A tail no checkpoint covers (an at-least-once crash in the
			// middle of a produce): correct each customer it names.
			t.p.log.Info("publishing a correction for the changelog's uncommitted tail", "task", t.part, "records", len(r.ids))
			if err := t.publishCycle(ctx, r.ids); err != nil {
				return err
			}
		}
	}
	if !found && applied == 0 {
		offsets, err := store.Offsets(t.part)
		if err != nil {
			return err
		}
		n, err := store.CountCustomers(t.part)
		if err != nil {
			return err
		}
		if n > 0 || len(offsets) > 0 {
			t.p.log.Info("changelog has no state for the task; publishing the stored state as its first cycle",
				"task", t.part, "customers", n)
			return t.publishCycle(ctx, nil)
		}
	}
	return nil
}

// waitStable waits, in exactly-once mode, until the group has no
// transactional offset commit pending for partition part of the inputs: a
// previous owner's transaction whose offsets the coordinator accepted has
// then ended, committed (and its changelog records are in what the restore
// reads) or aborted. A transaction whose offsets were not accepted can
// never commit (the generation fences it). A previous owner that died
// with such a transaction open holds the wait until the broker aborts it
// (Config.TransactionTimeout), unless it restarts first, which aborts it
// at once.
func (p *Processor) waitStable(ctx context.Context, cl *kgo.Client, part int32) error {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.RequireStable = true
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = p.cfg.Group
	for _, topic := range p.inputTopics() {
		rt := kmsg.NewOffsetFetchRequestGroupTopic()
		rt.Topic = topic
		rt.Partitions = []int32{part}
		rg.Topics = append(rg.Topics, rt)
	}
	req.Groups = append(req.Groups, rg)
	waitUntil := time.Now().Add(p.cfg.TransactionTimeout + 30*time.Second)
	logged := false
	for {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := req.RequestWith(lctx, cl)
		cancel()
		if err == nil {
			err = offsetFetchErr(resp)
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, kerr.UnstableOffsetCommit) && !kerr.IsRetriable(err) {
			return fmt.Errorf("fetch the group's offsets of task %d: %w", part, err)
		}
		if !logged && errors.Is(err, kerr.UnstableOffsetCommit) {
			p.log.Info("waiting for a transaction of the task's previous owner to end before restoring", "task", part)
			logged = true
		}
		if time.Now().After(waitUntil) {
			return fmt.Errorf("task %d: a transaction of its previous owner stayed open past the transaction timeout: %w", part, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// offsetFetchErr returns the first error an OffsetFetch response carries,
// in either of its forms (a group per request before v8, several after).
func offsetFetchErr(resp *kmsg.OffsetFetchResponse) error {
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return err
			}
		}
	}
	for _, g := range resp.Groups {
		if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
			return err
		}
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// changelogBounds lists the start and committed end (last stable offset)
// of partition part of the changelog. A topic created a moment ago may not be
// known to every broker yet: retriable errors are retried for up to 30s.
func (p *Processor) changelogBounds(ctx context.Context, cl *kgo.Client, part int32) (start, end kadm.ListedOffset, err error) {
	topic := p.cfg.Topics.Changelog
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(30 * time.Second)
	for {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var ends, starts kadm.ListedOffsets
		ends, err = adm.ListCommittedOffsets(lctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			starts, err = adm.ListStartOffsets(lctx, topic)
			if err == nil {
				err = starts.Error()
			}
		}
		cancel()
		if err == nil {
			var ok, ok2 bool
			end, ok = ends.Lookup(topic, part)
			start, ok2 = starts.Lookup(topic, part)
			if ok && ok2 {
				return start, end, nil
			}
			err = fmt.Errorf("changelog %q has no partition %d: %w", topic, part, kerr.UnknownTopicOrPartition)
		}
		if ctx.Err() != nil {
			return start, end, ctx.Err()
		}
		if time.Now().After(deadline) || !(kerr.IsRetriable(err) || errors.Is(err, kerr.UnknownTopicOrPartition)) {
			return start, end, fmt.Errorf("list changelog offsets: %w", err)
		}
		select {
		case <-ctx.Done():
			return start, end, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// restorer applies changelog records to a store batch: the customer
// records since the last checkpoint wait in ids and vals (nil: erased) and
// are applied at the next checkpoint.
//
// With a loader l (a large restore), the customer records go to l and b
// takes only the checkpoints: each chunk's table is ingested before its
// batch is committed, so a checkpoint in the store never runs ahead of the
// customers it covers. A crash between the two leaves customers newer than
// the checkpoint; the next restore reads the changelog again from the
// checkpoint and rewrites them with the same values, in order.
type restorer struct {
	part int32
	b    *state.Batch
	l    *state.Loader
	wipe bool // delete the partition before the first checkpoint
	ids  [][]byte
	vals [][]byte
	at   []recordAt
	// cycles counts the checkpoints applied; stale the late writes of a
	// previous owner that were dropped.
	cycles int
	stale  int
	// With pipeline, full batches go to a goroutine that commits them in
	// order (unsynced) while the restore fills the next one: work takes a
	// full batch, free gives an empty one back, flushErr holds the first
	// commit error.
	work     chan restoreChunk
	free     chan restoreChunk
	flushed  chan struct{}
	flushMu  sync.Mutex
	flushErr error
}

// restoreChunk is what the pipeline commits in one step: a loader's table
// (if any), then a batch.
type restoreChunk struct {
	b *state.Batch
	l *state.Loader
}

// commit ingests c's table, then commits its batch without syncing.
func (c restoreChunk) commit(ctx context.Context) error {
	if c.l != nil {
		if err := c.l.Ingest(ctx); err != nil {
			return err
		}
	}
	return c.b.CommitNoSync()
}

// close releases c's batch and loader.
func (c restoreChunk) close() {
	c.b.Close()
	if c.l != nil {
		c.l.Close()
	}
}

// reset drops c's writes.
func (c restoreChunk) reset() {
	c.b.Reset()
	if c.l != nil {
		c.l.Reset()
	}
}

// pipeline starts r's committer, with a second chunk (batch, and loader if r
// has one) of store.
func (r *restorer) pipeline(ctx context.Context, store *state.Store) {
	r.work = make(chan restoreChunk, 1)
	r.free = make(chan restoreChunk, 2)
	r.flushed = make(chan struct{})
	spare := restoreChunk{b: store.NewBatch()}
	if r.l != nil {
		spare.l = store.NewLoader(r.part)
	}
	r.free <- spare
	work, free, flushed := r.work, r.free, r.flushed
	go func() {
		defer close(flushed)
		var err error
		for c := range work {
			if err == nil {
				err = c.commit(ctx)
			}
			if err != nil {
				c.reset()
				r.flushMu.Lock()
				r.flushErr = err
				r.flushMu.Unlock()
			}
			free <- c
		}
	}()
}

// flush writes the current chunk without syncing: inline, or through the
// pipeline, taking an empty chunk in exchange.
func (r *restorer) flush(ctx context.Context) error {
	c := restoreChunk{b: r.b, l: r.l}
	if r.work == nil {
		return c.commit(ctx)
	}
	r.work <- c
	c = <-r.free
	r.b, r.l = c.b, c.l
	return r.err()
}

// err returns the pipeline's first commit error so far.
func (r *restorer) err() error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	return r.flushErr
}

// finish waits for the pipeline's commits, ingests the loader's last
// table, then commits the current batch synced, which syncs every earlier
// write too.
func (r *restorer) finish(ctx context.Context) error {
	if r.work != nil {
		close(r.work)
		r.work = nil
		<-r.flushed
		if err := r.err(); err != nil {
			return err
		}
	}
	if r.l != nil {
		if err := r.l.Ingest(ctx); err != nil {
			return err
		}
	}
	return r.b.Commit()
}

// close stops the pipeline (if finish did not) and releases the batches.
func (r *restorer) close() {
	if r.work != nil {
		close(r.work)
		r.work = nil
		<-r.flushed
	}
	if r.free != nil {
		for len(r.free) > 0 {
			(<-r.free).close()
		}
	}
	restoreChunk{b: r.b, l: r.l}.close()
}

// recordAt is a buffered customer record's cycle and changelog offset.
type recordAt struct {
	cycle  uint64
	offset int64
}

func (r *restorer) add(ctx context.Context, rec *kgo.Record) error {
	if rec.Attrs.IsControl() {
		return nil
	}
	if len(rec.Key) == 0 {
		return fmt.Errorf("%w: empty key", errChangelog)
	}
	switch rec.Key[0] {
	case changelogCustomer:
		cycle, payload, _, err := changelogCustomerRecord(rec)
		if err != nil {
			return err
		}
		r.ids = append(r.ids, rec.Key[1:])
		r.vals = append(r.vals, payload)
		r.at = append(r.at, recordAt{cycle, rec.Offset})
		return nil
	case changelogCheckpoint:
		cp, err := decodeCheckpoint(rec.Value)
		if err != nil {
			return err
		}
		return r.apply(ctx, cp, rec.Offset+1)
	}
	return fmt.Errorf("%w: unknown key kind %q", errChangelog, rec.Key[0])
}

// apply writes the records buffered since the last checkpoint and cp to
// the batch.
func (r *restorer) apply(ctx context.Context, cp checkpoint, next int64) error {
	b := r.b
	if r.wipe {
		b.DeletePartition(r.part)
		r.wipe = false
		if r.l != nil {
			// The deletion must come before the first table. Nothing is in
			// the pipeline yet: this is the restore's first checkpoint.
			if err := b.CommitNoSync(); err != nil {
				return err
			}
		}
	}
	for i, id := range r.ids {
		if !cp.applies(r.at[i].cycle, r.at[i].offset) {
			r.stale++
			continue
		}
		switch {
		case r.l != nil && r.vals[i] == nil:
			r.l.DeleteCustomer(id)
		case r.l != nil:
			r.l.PutCustomer(id, r.vals[i])
		case r.vals[i] == nil:
			b.DeleteCustomer(r.part, string(id))
		default:
			b.PutCustomer(r.part, string(id), r.vals[i])
		}
	}
	for topic, off := range cp.next {
		b.SetOffset(r.part, topic, off)
	}
	// No timer digest: the restored customers' timers are indexed anew by
	// load, under the policy in force.
	b.SetClock(r.part, state.Clock{StreamTime: cp.streamTime})
	b.SetChangelogNext(r.part, next)
	r.ids, r.vals, r.at = r.ids[:0], r.vals[:0], r.at[:0]
	r.cycles++
	if (r.l == nil && b.Len() >= restoreBatchRecords) || (r.l != nil && r.l.Size() >= restoreIngestBytes) {
		return r.flush(ctx)
	}
	return nil
}

// publishCycle writes one cycle to the changelog from the store: the
// stored value of each customer in ids (a tombstone for one the store does
// not hold), or every customer the store holds for the task when ids is
// nil; then a checkpoint of the stored input positions and stream time. It
// records the changelog position in the store. In exactly-once mode the
// cycle is one transaction.
//
// With ids nil it publishes the store as the task's first cycle (a store
// from before the changelog, or a recreated topic); with ids it corrects
// the tail of a crashed at-least-once cycle.
func (t *task) publishCycle(ctx context.Context, ids [][]byte) error {
	store := t.p.cfg.Store
	offsets, err := store.Offsets(t.part)
	if err != nil {
		return err
	}
	clock, _, err := store.Clock(t.part)
	if err != nil {
		return err
	}
	cycle := t.nextCycle()
	topic := t.p.cfg.Topics.Changelog
	var recs []*kgo.Record
	emit := func(id, value []byte) error {
		rec := &kgo.Record{Topic: topic, Partition: t.part, Key: append([]byte{changelogCustomer}, id...)}
		if value == nil {
			rec.Headers = tombstoneHeaders(cycle)
		} else {
			rec.Value = append(appendChangelogHeader(make([]byte, 0, changelogHeaderLen+len(value)), cycle), value...)
		}
		recs = append(recs, rec)
		return nil
	}
	if ids == nil {
		err = store.ScanCustomers(t.part, emit)
	} else {
		seen := make(map[string]bool, len(ids))
		for _, id := range ids {
			if seen[string(id)] {
				continue
			}
			seen[string(id)] = true
			val, found, gerr := store.GetCustomer(t.part, id, nil)
			if gerr != nil {
				err = gerr
				break
			}
			if !found {
				val = nil
			}
			if err = emit(id, val); err != nil {
				break
			}
		}
	}
	if err != nil {
		return err
	}
	n := len(recs)
	pos := [numSources]int64{-1, -1, -1}
	for src, tp := range t.topics {
		if next, ok := offsets[tp]; ok {
			pos[src] = next
		}
	}
	cp := &kgo.Record{Topic: topic, Partition: t.part, Key: []byte{changelogCheckpoint},
		Value: appendCheckpoint(nil, cycle, clock.StreamTime, &t.topics, &pos, t.since)}
	recs = append(recs, cp)
	if t.p.txn != nil {
		err = t.p.txn.submit(ctx, &txnJob{part: t.part, recs: recs, topics: &t.topics, pos: pos, group: t.cl, dead: t.dead})
	} else {
		err = produceAll(ctx, t.cl, recs)
	}
	if err != nil {
		return fmt.Errorf("publish state to changelog: %w", err)
	}
	b := store.NewBatch()
	defer b.Close()
	b.SetChangelogNext(t.part, cp.Offset+1)
	if err := b.Commit(); err != nil {
		return err
	}
	t.p.log.Info("published the task's stored state to the changelog", "task", t.part, "customers", n, "correction", ids != nil)
	return nil
}

// checkChangelog makes sure the changelog topic exists with one partition
// per task and compaction on: it creates a missing one (whatever
// CreateTopics says: it is valora's own topic), and refuses one with the
// wrong partition count or cleanup policy, since either would lose state.
func (p *Processor) checkChangelog(ctx context.Context, adm *kadm.Client, parts int) error {
	topic := p.cfg.Topics.Changelog
	if topic == "" {
		return nil
	}
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("list changelog topic: %w", err)
	}
	d, ok := details[topic]
	if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		// max.compaction.lag.ms bounds how long a superseded value (an
		// erased customer's last state, before its tombstone) may stay in
		// the log: a week, then the active segment rolls and is compacted.
		cfg := map[string]*string{
			"cleanup.policy":        kadm.StringPtr("compact"),
			"max.compaction.lag.ms": kadm.StringPtr(changelogMaxCompactionLag),
		}
		err := createTopic(ctx, adm, topic, int32(parts), cfg)
		if errors.Is(err, kerr.InvalidConfig) {
			// A broker that does not know the setting (kfake): without it.
			p.log.Warn("the broker refused max.compaction.lag.ms for the changelog topic; creating it without",
				"topic", topic, "err", err)
			delete(cfg, "max.compaction.lag.ms")
			err = createTopic(ctx, adm, topic, int32(parts), cfg)
		}
		if err != nil {
			return fmt.Errorf("create changelog topic %q: %w", topic, err)
		}
		lag := "broker default"
		if v := cfg["max.compaction.lag.ms"]; v != nil {
			lag = *v
		}
		p.log.Info("created changelog topic", "topic", topic, "partitions", parts, "cleanup.policy", "compact", "max.compaction.lag.ms", lag)
		return nil
	}
	if d.Err != nil {
		return fmt.Errorf("describe changelog topic %q: %w", topic, d.Err)
	}
	if len(d.Partitions) != parts {
		return fmt.Errorf("changelog topic %q has %d partitions, but the inputs have %d: each task needs its own partition; "+
			"point --changelog-topic at a new topic (valora creates it) and the tasks publish their state there", topic, len(d.Partitions), parts)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err == nil {
		var rc kadm.ResourceConfig
		rc, err = rcs.On(topic, nil)
		if err == nil && rc.Err == nil {
			for _, c := range rc.Configs {
				if c.Key == "cleanup.policy" && c.Value != nil && !strings.Contains(*c.Value, "compact") {
					return fmt.Errorf("changelog topic %q has cleanup.policy=%s: it must include compact, or old state is deleted by retention", topic, *c.Value)
				}
			}
			return nil
		}
		if err == nil {
			err = rc.Err
		}
	}
	p.log.Warn("cannot check the changelog topic's cleanup policy", "topic", topic, "err", err)
	return nil
}

// ChangelogState decodes records of a changelog topic, in offset order per
// partition, into the state they describe: each customer's latest value
// (the bytes schemas.DecodeCustomer reads; erased customers are absent)
// from the records a checkpoint follows, exactly as a restore applies
// them. Tools and tests use it to
// read the state a deployment committed without opening its stores.
func ChangelogState(recs []*kgo.Record) (map[string][]byte, error) {
	type pending struct {
		ids  []string
		vals [][]byte
		at   []recordAt
	}
	parts := map[int32]*pending{}
	out := map[string][]byte{}
	for _, rec := range recs {
		if rec.Attrs.IsControl() {
			continue
		}
		pd := parts[rec.Partition]
		if pd == nil {
			pd = &pending{}
			parts[rec.Partition] = pd
		}
		if len(rec.Key) == 0 {
			return nil, fmt.Errorf("%w: empty key at %d/%d", errChangelog, rec.Partition, rec.Offset)
		}
		switch rec.Key[0] {
		case changelogCustomer:
			cycle, payload, _, err := changelogCustomerRecord(rec)
			if err != nil {
				return nil, fmt.Errorf("%w at %d/%d", err, rec.Partition, rec.Offset)
			}
			pd.ids = append(pd.ids, string(rec.Key[1:]))
			pd.vals = append(pd.vals, payload)
			pd.at = append(pd.at, recordAt{cycle, rec.Offset})
		case changelogCheckpoint:
			cp, err := decodeCheckpoint(rec.Value)
			if err != nil {
				return nil, err
			}
			for i, id := range pd.ids {
				if !cp.applies(pd.at[i].cycle, pd.at[i].offset) {
					continue
				}
				if pd.vals[i] == nil {
					delete(out, id)
				} else {
					out[id] = pd.vals[i]
				}
			}
			*pd = pending{}
		default:
			return nil, fmt.Errorf("%w: unknown key kind %q at %d/%d", errChangelog, rec.Key[0], rec.Partition, rec.Offset)
		}
	}
	return out, nil
}

// profilesOn reports whether the processor publishes profiles.
func (p *Processor) profilesOn() bool {
	r := p.cfg.Replay
	return p.cfg.Topics.Profiles != "" && (r == nil || !r.NoOutput)
}

// checkProfiles makes sure the profile topic, if any, exists and is
// compacted, so that reading it from the start gives every live customer's
// latest profile: it creates a missing one (compacted, with the inputs'
// partition count and the changelog's max.compaction.lag.ms, which bounds
// how long an erased customer's last profile stays before its tombstone
// compacts it away), and refuses one whose cleanup.policy lacks compact.
func (p *Processor) checkProfiles(ctx context.Context, adm *kadm.Client, parts int) error {
	if !p.profilesOn() {
		return nil
	}
	topic := p.cfg.Topics.Profiles
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("list profile topic: %w", err)
	}
	d, ok := details[topic]
	if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		cfg := map[string]*string{
			"cleanup.policy":        kadm.StringPtr("compact"),
			"max.compaction.lag.ms": kadm.StringPtr(changelogMaxCompactionLag),
		}
		err := createTopic(ctx, adm, topic, int32(parts), cfg)
		if errors.Is(err, kerr.InvalidConfig) {
			delete(cfg, "max.compaction.lag.ms") // a broker that does not know it (kfake)
			err = createTopic(ctx, adm, topic, int32(parts), cfg)
		}
		if err != nil {
			return fmt.Errorf("create profile topic %q (create it compacted, or run without profiles: --profiles-topic \"\"): %w", topic, err)
		}
		p.log.Info("created profile topic", "topic", topic, "partitions", parts, "cleanup.policy", "compact")
		return nil
	}
	if d.Err != nil {
		return fmt.Errorf("describe profile topic %q: %w", topic, d.Err)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err == nil {
		var rc kadm.ResourceConfig
		if rc, err = rcs.On(topic, nil); err == nil {
			err = rc.Err
		}
		if err == nil {
			for _, c := range rc.Configs {
				if c.Key == "cleanup.policy" && c.Value != nil && !strings.Contains(*c.Value, "compact") {
					return fmt.Errorf("profile topic %q has cleanup.policy=%s: it must include compact, or customers whose profile has not changed for the retention time disappear from it", topic, *c.Value)
				}
			}
			return nil
		}
	}
	p.log.Warn("cannot check the profile topic's cleanup policy", "topic", topic, "err", err)
	return nil
}
