package changelog

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"valora/state"
)

// batchRecords bounds a restorer's Pebble batch; batches are written
// without syncing and Finish ends with one synced commit.
const batchRecords = 50_000

// ingestBytes is the size of the sorted tables a restorer with
// Options.Ingest ingests: such a restorer holds two tables' worth of memory
// (one filling, one being written).
const ingestBytes = 32 << 20

// Options configures a Restorer.
type Options struct {
	// Wipe deletes everything the store holds for the partition in the
	// batch of the first checkpoint applied: a restore from the start of
	// the changelog replaces the partition's state.
	Wipe bool
	// Ingest collects the customer records in a state.Loader, whose sorted
	// tables are ingested, skipping Pebble's write-ahead log and memtable:
	// for a large restore.
	Ingest bool
	// Pipeline commits full batches (and tables) on a goroutine of the
	// restorer, in order and unsynced, while the caller fills the next.
	Pipeline bool
}

// Restorer applies the records of one changelog partition, in offset
// order, to partition part of a store: the customer records since the last
// checkpoint wait in ids and vals (nil: erased) and are written, with the
// checkpoint's input positions, stream time and the changelog position
// after it, at the next checkpoint. The store therefore only ever holds a
// state some committed cycle produced.
//
// With a loader l (Options.Ingest), the customer records go to l and b
// takes only the checkpoints: each chunk's table is ingested before its
// batch is committed, so a checkpoint in the store never runs ahead of the
// customers it covers. A crash between the two leaves customers newer than
// the checkpoint; the next restore reads the changelog again from the
// checkpoint and rewrites them with the same values, in order.
//
// A Restorer is used by one goroutine; Close releases it.
type Restorer struct {
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
	// With a pipeline, full batches go to a goroutine that commits them in
	// order (unsynced) while the restore fills the next one: work takes a
	// full batch, free gives an empty one back, flushErr holds the first
	// commit error.
	work     chan chunk
	free     chan chunk
	flushed  chan struct{}
	flushMu  sync.Mutex
	flushErr error
}

// recordAt is a buffered customer record's cycle and changelog offset.
type recordAt struct {
	cycle  uint64
	offset int64
}

// NewRestorer returns a restorer of partition part of store. With
// o.Pipeline it starts its committer, which uses ctx for ingests and stops
// at Finish or Close.
func NewRestorer(ctx context.Context, store *state.Store, part int32, o Options) *Restorer {
	r := &Restorer{part: part, b: store.NewBatch(), wipe: o.Wipe}
	if o.Ingest {
		r.l = store.NewLoader(part)
	}
	if o.Pipeline {
		r.pipeline(ctx, store)
	}
	return r
}

// Checkpoints returns the number of checkpoints applied so far.
func (r *Restorer) Checkpoints() int { return r.cycles }

// Stale returns the number of customer records dropped as late writes of a
// previous owner.
func (r *Restorer) Stale() int { return r.stale }

// Tail returns the keys (customer ids) of the customer records added since
// the last checkpoint: after the last record of a partition, the tail no
// checkpoint covers, which the store does not hold. The slices are the
// records' own.
func (r *Restorer) Tail() [][]byte { return r.ids }

// chunk is what the pipeline commits in one step: a loader's table (if
// any), then a batch.
type chunk struct {
	b *state.Batch
	l *state.Loader
}

// commit ingests c's table, then commits its batch without syncing.
func (c chunk) commit(ctx context.Context) error {
	if c.l != nil {
		if err := c.l.Ingest(ctx); err != nil {
			return err
		}
	}
	return c.b.CommitNoSync()
}

// close releases c's batch and loader.
func (c chunk) close() {
	c.b.Close()
	if c.l != nil {
		c.l.Close()
	}
}

// reset drops c's writes.
func (c chunk) reset() {
	c.b.Reset()
	if c.l != nil {
		c.l.Reset()
	}
}

// pipeline starts r's committer, with a second chunk (batch, and loader if r
// has one) of store.
func (r *Restorer) pipeline(ctx context.Context, store *state.Store) {
	r.work = make(chan chunk, 1)
	r.free = make(chan chunk, 2)
	r.flushed = make(chan struct{})
	spare := chunk{b: store.NewBatch()}
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
func (r *Restorer) flush(ctx context.Context) error {
	c := chunk{b: r.b, l: r.l}
	if r.work == nil {
		return c.commit(ctx)
	}
	r.work <- c
	c = <-r.free
	r.b, r.l = c.b, c.l
	return r.err()
}

// Flush writes what the checkpoints applied so far hold, without syncing:
// a crash may lose it, and the changelog is then read again from the
// store's last checkpoint.
func (r *Restorer) Flush(ctx context.Context) error {
	if r.b.Len() == 0 {
		return r.err()
	}
	return r.flush(ctx)
}

// err returns the pipeline's first commit error so far.
func (r *Restorer) err() error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	return r.flushErr
}

// Finish waits for the pipeline's commits, ingests the loader's last
// table, then commits the current batch synced, which syncs every earlier
// write too.
func (r *Restorer) Finish(ctx context.Context) error {
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

// Close stops the pipeline (if Finish did not) and releases the batches;
// what was not flushed or finished is dropped.
func (r *Restorer) Close() {
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
	chunk{b: r.b, l: r.l}.close()
}

// Add applies rec, the next record of the partition: a customer record is
// buffered, a checkpoint applies the records buffered since the previous
// one. Control records are skipped. An error wraps ErrRecord for a record
// this build cannot read, or is the store's.
func (r *Restorer) Add(ctx context.Context, rec *kgo.Record) error {
	if rec.Attrs.IsControl() {
		return nil
	}
	if len(rec.Key) == 0 {
		return fmt.Errorf("%w: empty key", ErrRecord)
	}
	switch rec.Key[0] {
	case KindCustomer:
		cycle, payload, _, err := CustomerRecord(rec)
		if err != nil {
			return err
		}
		r.ids = append(r.ids, rec.Key[1:])
		r.vals = append(r.vals, payload)
		r.at = append(r.at, recordAt{cycle, rec.Offset})
		return nil
	case KindCheckpoint:
		cp, err := DecodeCheckpoint(rec.Value)
		if err != nil {
			return err
		}
		return r.apply(ctx, cp, rec.Offset+1)
	}
	return fmt.Errorf("%w: unknown key kind %q", ErrRecord, rec.Key[0])
}

// apply writes the records buffered since the last checkpoint and cp to
// the batch.
func (r *Restorer) apply(ctx context.Context, cp Checkpoint, next int64) error {
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
		if !cp.Applies(r.at[i].cycle, r.at[i].offset) {
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
	for topic, off := range cp.Next {
		b.SetOffset(r.part, topic, off)
	}
	// No timer digest: the restored customers' timers are indexed anew by
	// load, under the policy in force.
	b.SetClock(r.part, state.Clock{StreamTime: cp.StreamTime})
	b.SetChangelogNext(r.part, next)
	r.ids, r.vals, r.at = r.ids[:0], r.vals[:0], r.at[:0]
	r.cycles++
	if (r.l == nil && b.Len() >= batchRecords) || (r.l != nil && r.l.Size() >= ingestBytes) {
		return r.flush(ctx)
	}
	return nil
}
