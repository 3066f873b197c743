package processor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"valora/processor/changelog"
)

// The changelog's record format and the application of its records to
// the store are package changelog's; this file holds the processor's side:
// the restore's reading of a task's partition (the topic is checked in
// topics.go), and the cycles a task publishes from its store.

// restoreIngestRecords is the size of a restore from which the customer
// records skip Pebble's write-ahead log and memtable: they are collected in
// a state.Loader and ingested as sorted tables (changelog.Options.Ingest),
// each followed by a batch with its last checkpoint. Such a restore holds
// two tables' worth of memory (one filling, one being written), and at most
// restoreIngestSlots tasks of a processor restore so at a time.
const restoreIngestRecords = 200_000

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
		rd, err := kgo.NewClient(t.p.clientOpts(roleRestore,
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {t.part: kgo.NewOffset().At(from)}}))...)
		if err != nil {
			return fmt.Errorf("changelog reader: %w", err)
		}
		defer rd.Close()
		o := changelog.Options{Wipe: !found, Pipeline: true}
		if o.Wipe {
			// Nothing to replace in an empty store (a new instance, or a
			// task new to it): no range deletion under the restored state.
			empty, err := store.PartitionEmpty(t.part)
			if err != nil {
				return err
			}
			o.Wipe = !empty
		}
		if remaining >= cmp.Or(t.p.cfg.restoreIngestAt, restoreIngestRecords) {
			select {
			case t.p.ingestSlots <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			defer func() { <-t.p.ingestSlots }()
			o.Ingest = true
		}
		r := changelog.NewRestorer(ctx, store, t.part, o)
		defer r.Close()
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
				ferr = r.Add(ctx, rec)
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
		if err := r.Finish(ctx); err != nil {
			return err // the caller names the task
		}
		applied = r.Checkpoints()
		tail := r.Tail()
		t.p.log.Info("task restored", "task", t.part, "records", end-from, "checkpoints", applied,
			"skipped_records", len(tail), "stale_records", r.Stale(), "seconds", time.Since(start).Seconds())
		if len(tail) > 0 {
			// A tail no checkpoint covers (an at-least-once crash in the
			// middle of a produce): correct each customer it names.
			t.p.log.Info("publishing a correction for the changelog's uncommitted tail", "task", t.part, "records", len(tail))
			if err := t.publishCycle(ctx, tail); err != nil {
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
	logged := false
	err := retry(ctx, p.cfg.TransactionTimeout+30*time.Second, 100*time.Millisecond, func(err error) bool {
		if !errors.Is(err, kerr.UnstableOffsetCommit) {
			return kerr.IsRetriable(err)
		}
		if !logged {
			p.log.Info("waiting for a transaction of the task's previous owner to end before restoring", "task", part)
			logged = true
		}
		return true
	}, func(ctx context.Context) error {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		resp, err := req.RequestWith(lctx, cl)
		if err == nil {
			err = offsetFetchErr(resp)
		}
		return err
	})
	switch {
	case err == nil || ctx.Err() != nil:
		return err
	case errors.Is(err, kerr.UnstableOffsetCommit):
		return fmt.Errorf("task %d: a transaction of its previous owner stayed open past the transaction timeout: %w", part, err)
	}
	return fmt.Errorf("fetch the group's offsets of task %d: %w", part, err)
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
	err = retry(ctx, 30*time.Second, 250*time.Millisecond, func(err error) bool {
		return kerr.IsRetriable(err) || errors.Is(err, kerr.UnknownTopicOrPartition)
	}, func(ctx context.Context) error {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		ends, err := adm.ListCommittedOffsets(lctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return err
		}
		starts, err := adm.ListStartOffsets(lctx, topic)
		if err == nil {
			err = starts.Error()
		}
		if err != nil {
			return err
		}
		var ok, ok2 bool
		end, ok = ends.Lookup(topic, part)
		start, ok2 = starts.Lookup(topic, part)
		if !ok || !ok2 {
			return fmt.Errorf("changelog %q has no partition %d: %w", topic, part, kerr.UnknownTopicOrPartition)
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("list changelog offsets: %w", err)
	}
	return start, end, err
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
		rec := &kgo.Record{Topic: topic, Partition: t.part, Key: append([]byte{changelog.KindCustomer}, id...)}
		if value == nil {
			rec.Headers = changelog.TombstoneHeaders(cycle)
		} else {
			rec.Value = append(changelog.AppendHeader(make([]byte, 0, changelog.HeaderLen+len(value)), cycle), value...)
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
	cp := &kgo.Record{Topic: topic, Partition: t.part, Key: []byte{changelog.KindCheckpoint},
		Value: changelog.AppendCheckpoint(nil, cycle, clock.StreamTime, t.topics[:], pos[:], t.since)}
	recs = append(recs, cp)
	if err := t.sink.send(ctx, &cycleOut{part: t.part, recs: recs, topics: &t.topics, pos: pos, group: t.cl, abandoned: t.abandonCtx.Done()}); err != nil {
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

// profilesOn reports whether the processor publishes profiles.
func (p *Processor) profilesOn() bool {
	r := p.cfg.Replay
	return p.cfg.Topics.Profiles != "" && (r == nil || !r.NoOutput)
}
