package changelog

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"

	"valora/state"
)

// Restore applies recs, records of one changelog partition in offset
// order, to partition part of store through a Restorer with o, and
// finishes it: what a task's restore does with the records it reads. It
// returns the restorer's tail (Restorer.Tail). An error names the offset
// of the record it stopped at.
func Restore(ctx context.Context, store *state.Store, part int32, recs []*kgo.Record, o Options) (tail [][]byte, err error) {
	r := NewRestorer(ctx, store, part, o)
	defer r.Close()
	for _, rec := range recs {
		if err := r.Add(ctx, rec); err != nil {
			return nil, fmt.Errorf("at changelog offset %d: %w", rec.Offset, err)
		}
	}
	if err := r.Finish(ctx); err != nil {
		return nil, err
	}
	return r.Tail(), nil
}

// ReadState returns the state that recs, records of a changelog topic in
// offset order per partition, describe: each customer's latest value (the
// bytes schemas.DecodeCustomer reads; erased customers are absent), as a
// restore from the start of the changelog leaves it. It restores each
// partition, with Restore, into a new store in dir (which must not hold
// one) and removes nothing: the caller owns dir. Tools and tests use it to
// read the state a deployment committed without opening its stores.
func ReadState(ctx context.Context, dir string, recs []*kgo.Record) (st map[string][]byte, err error) {
	store, err := state.Open(state.Options{Dir: dir, CacheSize: 8 << 20, MemTableSize: 4 << 20})
	if err != nil {
		return nil, err
	}
	defer func() { err = cmp.Or(err, store.Close()) }()
	byPart := map[int32][]*kgo.Record{}
	for _, rec := range recs {
		byPart[rec.Partition] = append(byPart[rec.Partition], rec)
	}
	parts := make([]int32, 0, len(byPart))
	for part := range byPart {
		parts = append(parts, part)
	}
	slices.Sort(parts)
	st = map[string][]byte{}
	for _, part := range parts {
		if _, err := Restore(ctx, store, part, byPart[part], Options{}); err != nil {
			return nil, fmt.Errorf("changelog partition %d: %w", part, err)
		}
		err := store.ScanCustomers(part, func(id, v []byte) error {
			if _, dup := st[string(id)]; dup {
				return fmt.Errorf("%w: customer %q in two partitions", ErrRecord, id)
			}
			st[string(id)] = slices.Clone(v)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("changelog partition %d: %w", part, err)
		}
	}
	return st, nil
}
