package state

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// The timer index holds at most one entry per customer: the event time at
// which the customer's derived fields next change with no new event (a churn
// deadline, a lifecycle move, a risk expiry). Entries sort by due time, then
// customer id, so the task fires them in that order with one forward scan.
//
// The index is owned by its caller's invariant, not by this package: the
// processor writes an entry in the same Batch as the customer whose deadline
// it records (deleting the entry it replaces), so the index and the customer
// records are always consistent with each other after any crash.

// PutTimer adds a timer index entry for a customer due at due (event time
// in milliseconds, >= 0).
func (b *Batch) PutTimer(partition int32, due int64, customerID string) {
	op := b.b.SetDeferred(partitionedPrefixLen+8+len(customerID), 0)
	putTimerKey(op.Key, partition, due, customerID)
	_ = op.Finish()
}

// DeleteTimer removes a timer index entry. Deleting an entry that does not
// exist is not an error.
func (b *Batch) DeleteTimer(partition int32, due int64, customerID string) {
	op := b.b.DeleteDeferred(partitionedPrefixLen + 8 + len(customerID))
	putTimerKey(op.Key, partition, due, customerID)
	_ = op.Finish()
}

// DeleteTimers removes every timer index entry of a partition (to rebuild
// the index from the customers).
func (b *Batch) DeleteTimers(partition int32) {
	lower, upper := partitionBounds(KindTimer, partition)
	_ = b.b.DeleteRange(lower, upper, nil)
}

func putTimerKey(k []byte, partition int32, due int64, customerID string) {
	putPrefix(k, KindTimer, partition)
	binary.BigEndian.PutUint64(k[partitionedPrefixLen:], uint64(due))
	copy(k[partitionedPrefixLen+8:], customerID)
}

// ErrStopScan may be returned by a ScanTimers callback to end the scan early
// without an error.
var ErrStopScan = errors.New("stop scan")

// ScanTimers calls fn for every timer index entry of a partition with a due
// time in [from, to], in (due, customer id) order. id is valid only during
// the call. Returning ErrStopScan from fn ends the scan with a nil error; any
// other error ends it and is returned as is.
func (s *Store) ScanTimers(partition int32, from, to int64, fn func(due int64, customerID []byte) error) error {
	if from < 0 {
		from = 0
	}
	if to < from {
		return nil
	}
	lower := AppendPartitionPrefix(make([]byte, 0, partitionedPrefixLen+8), KindTimer, partition)
	lower = binary.BigEndian.AppendUint64(lower, uint64(from))
	upper := AppendPartitionPrefix(make([]byte, 0, partitionedPrefixLen+8), KindTimer, partition)
	if to == 1<<63-1 {
		_, upper = partitionBounds(KindTimer, partition)
	} else {
		upper = binary.BigEndian.AppendUint64(upper, uint64(to)+1)
	}
	iter, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return s.wrap(fmt.Errorf("scan timers of partition %d: %w", partition, err))
	}
	for valid := iter.First(); valid; valid = iter.Next() {
		k := iter.Key()
		if len(k) < partitionedPrefixLen+8 {
			_ = iter.Close()
			return s.wrap(fmt.Errorf("scan timers of partition %d: key of %d bytes: %w", partition, len(k), ErrCorrupt))
		}
		due := int64(binary.BigEndian.Uint64(k[partitionedPrefixLen:]))
		if err := fn(due, k[partitionedPrefixLen+8:]); err != nil {
			_ = iter.Close()
			if errors.Is(err, ErrStopScan) {
				return nil
			}
			return err
		}
	}
	if err := closeIter(iter); err != nil {
		return s.wrap(fmt.Errorf("scan timers of partition %d: %w", partition, err))
	}
	return nil
}

// CountTimers returns the number of timer index entries of a partition.
func (s *Store) CountTimers(partition int32) (int, error) {
	n := 0
	err := s.ScanTimers(partition, 0, 1<<63-1, func(int64, []byte) error { n++; return nil })
	return n, err
}

// Clock is a task's time bookkeeping, stored beside its offsets.
type Clock struct {
	// StreamTime is the task's stream time (event time, milliseconds): the
	// largest event time it has applied, or the idle wall clock it followed.
	StreamTime int64
	// TimerDigest identifies what the timer index was computed with (the
	// scoring policy); a task rebuilds the index when it differs.
	TimerDigest []byte
}

// SetClock records a partition's clock in the batch.
func (b *Batch) SetClock(partition int32, c Clock) {
	op := b.b.SetDeferred(partitionedPrefixLen, 8+len(c.TimerDigest))
	putPrefix(op.Key, KindClock, partition)
	binary.BigEndian.PutUint64(op.Value, uint64(c.StreamTime))
	copy(op.Value[8:], c.TimerDigest)
	_ = op.Finish()
}

// Clock returns a partition's stored clock; found is false when none was
// ever committed.
func (s *Store) Clock(partition int32) (c Clock, found bool, err error) {
	k := AppendPartitionPrefix(make([]byte, 0, partitionedPrefixLen), KindClock, partition)
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return Clock{}, false, nil
	}
	if err != nil {
		return Clock{}, false, s.wrap(fmt.Errorf("read clock of partition %d: %w", partition, err))
	}
	defer closer.Close()
	if len(v) < 8 {
		return Clock{}, false, s.wrap(fmt.Errorf("read clock of partition %d: %d bytes: %w", partition, len(v), ErrCorrupt))
	}
	c.StreamTime = int64(binary.BigEndian.Uint64(v))
	c.TimerDigest = append([]byte(nil), v[8:]...)
	return c, true, nil
}
