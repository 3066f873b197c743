package state

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// The changelog checkpoint of a partition is the offset of its changelog
// topic partition up to which the store's state of that partition includes
// every committed cycle: a task restores by reading the changelog from
// there. The processor writes it in the same batch as the state and input
// offsets it covers, so the three always agree after a crash.

// SetChangelogNext records next as the first changelog offset that the
// partition's stored state does not include.
func (b *Batch) SetChangelogNext(partition int32, next int64) {
	op := b.b.SetDeferred(partitionedPrefixLen, 8)
	putPrefix(op.Key, KindChangelog, partition)
	binary.BigEndian.PutUint64(op.Value, uint64(next))
	_ = op.Finish()
}

// ChangelogNext returns the partition's changelog checkpoint; found is false
// when the store never recorded one (a task this store has never restored or
// committed with a changelog).
func (s *Store) ChangelogNext(partition int32) (next int64, found bool, err error) {
	k := AppendPartitionPrefix(make([]byte, 0, partitionedPrefixLen), KindChangelog, partition)
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, s.wrap(fmt.Errorf("read changelog checkpoint of partition %d: %w", partition, err))
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, false, s.wrap(fmt.Errorf("read changelog checkpoint of partition %d: %d bytes: %w", partition, len(v), ErrCorrupt))
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

// DeletePartition removes everything the store holds for a partition: its
// customers, timer index, input offsets, clock and changelog checkpoint. A
// task does this in the batch that begins restoring the partition from the
// start of its changelog, so that no customer the changelog does not know
// survives.
func (b *Batch) DeletePartition(partition int32) {
	for _, kind := range []byte{KindCustomer, KindOffset, KindTimer, KindClock, KindChangelog} {
		lower, upper := partitionBounds(kind, partition)
		_ = b.b.DeleteRange(lower, upper, nil)
	}
}

// PartitionEmpty reports whether the store holds nothing for a partition:
// no customer, timer, input offset, clock or changelog checkpoint. A restore
// into an empty partition need not delete it first, which keeps the tables
// it ingests from overlapping a range deletion.
func (s *Store) PartitionEmpty(partition int32) (bool, error) {
	for _, kind := range []byte{KindCustomer, KindOffset, KindTimer, KindClock, KindChangelog} {
		lower, upper := partitionBounds(kind, partition)
		iter, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			return false, s.wrap(fmt.Errorf("read partition %d: %w", partition, err))
		}
		found := iter.First()
		if err := closeIter(iter); err != nil {
			return false, s.wrap(fmt.Errorf("read partition %d: %w", partition, err))
		}
		if found {
			return false, nil
		}
	}
	return true, nil
}

// CommitNoSync writes the batch atomically without waiting for the disk,
// then empties it. A crash may lose it (and any later ones) but never part
// of it; bulk loads use it and end with a Commit, which syncs every earlier
// write too.
func (b *Batch) CommitNoSync() error {
	pb := b.b // write may return while Pebble still holds it (see renew)
	if err := b.s.write("commit state batch", func() error { return pb.Commit(pebble.NoSync) }); err != nil {
		b.renew()
		return err
	}
	b.b.Reset()
	return nil
}
