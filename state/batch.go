package state

import (
	"encoding/binary"

	"github.com/cockroachdb/pebble/v2"
)

// Batch collects customer writes and input offsets of one commit cycle, to be
// made durable together by Commit: after a crash either all of a batch is
// visible or none of it. Nothing is visible to readers before Commit.
//
// A Batch is not safe for concurrent use; each task goroutine owns its own.
// Commit leaves it empty and ready for the next cycle, so one Batch can serve
// a task for its whole life without allocating per cycle. Close releases it.
type Batch struct {
	b  *pebble.Batch
	db *pebble.DB
	s  *Store
}

// NewBatch returns an empty batch for the store.
func (s *Store) NewBatch() *Batch {
	return &Batch{b: s.db.NewBatch(), db: s.db, s: s}
}

// reserveMin is the smallest reservation Reserve acts on. Pebble keeps a
// committed batch's buffer for the next use only up to 1 MiB; a larger one
// is dropped at Commit, and the next cycle grows a new one by doubling.
const reserveMin = 1 << 20

// Reserve makes room for about n bytes of writes in an empty batch, so
// that a large cycle's buffer is allocated once at its size instead of
// grown by doubling (which allocates about twice the final size, copying
// as it goes). It does nothing to a batch that holds writes, or for n
// below 1 MiB, which the batch's retained buffer serves.
func (b *Batch) Reserve(n int) {
	if n < reserveMin || !b.b.Empty() {
		return
	}
	_ = b.b.Close()
	b.b = b.db.NewBatchWithSize(n)
}

// PutCustomer sets a customer's value, wrapped in the current value envelope.
// value is copied; the caller may reuse it at once.
func (b *Batch) PutCustomer(partition int32, customerID string, value []byte) {
	op := b.b.SetDeferred(partitionedPrefixLen+len(customerID), 1+len(value))
	putPrefix(op.Key, KindCustomer, partition)
	copy(op.Key[partitionedPrefixLen:], customerID)
	op.Value[0] = valueVersion1
	copy(op.Value[1:], value)
	_ = op.Finish() // fails only for indexed batches
}

// DeleteCustomer removes a customer of a partition. Deleting a customer that
// does not exist is not an error.
func (b *Batch) DeleteCustomer(partition int32, customerID string) {
	op := b.b.DeleteDeferred(partitionedPrefixLen + len(customerID))
	putPrefix(op.Key, KindCustomer, partition)
	copy(op.Key[partitionedPrefixLen:], customerID)
	_ = op.Finish()
}

// SetOffset records next as the next offset to consume from topic in the
// partition, i.e. the last applied record's offset plus one.
func (b *Batch) SetOffset(partition int32, topic string, next int64) {
	op := b.b.SetDeferred(partitionedPrefixLen+len(topic), 8)
	putPrefix(op.Key, KindOffset, partition)
	copy(op.Key[partitionedPrefixLen:], topic)
	binary.BigEndian.PutUint64(op.Value, uint64(next))
	_ = op.Finish()
}

// putPrefix writes the 5-byte prefix of a partitioned key into k.
func putPrefix(k []byte, kind byte, partition int32) {
	k[0] = kind
	binary.BigEndian.PutUint32(k[1:partitionedPrefixLen], uint32(partition))
}

// Len returns the number of writes (puts, deletes, offsets) in the batch.
func (b *Batch) Len() int { return int(b.b.Count()) }

// Commit writes the batch atomically and syncs it to disk (pebble.Sync)
// before returning, then empties the batch for reuse. An empty batch commits
// at no cost (no sync). After an error (an *Error) the batch's contents were
// possibly written, possibly not, and the store takes no more writes (see
// Store.write); the caller must not go on with its in-memory state as if
// they were (stop, and reopen the store once the fault is mended), and
// should Close the batch.
func (b *Batch) Commit() error {
	pb := b.b // write may return while Pebble still holds it (see renew)
	if err := b.s.write("commit state batch", func() error { return pb.Commit(pebble.Sync) }); err != nil {
		b.renew()
		return err
	}
	b.b.Reset()
	return nil
}

// renew replaces the batch after a failed commit, which leaves Pebble's
// batch unusable (a write to it panics) or, when the store stopped on a
// stalled commit, still in Pebble's hands, by an empty one, so that the
// Batch's later writes are accepted and its later commits fail (the store
// refuses them) instead of panicking.
func (b *Batch) renew() { b.b = b.db.NewBatch() }

// Reset discards the batch's pending writes, keeping its buffer for reuse.
func (b *Batch) Reset() { b.b.Reset() }

// Close releases the batch without committing its pending writes. The batch
// must not be used afterwards.
func (b *Batch) Close() { _ = b.b.Close() }
