package state

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Errors returned by the store. Each is wrapped with context; test with
// errors.Is.
var (
	// ErrInvalidKey is returned by DecodeKey, and by scans that meet a key
	// that does not decode.
	ErrInvalidKey = errors.New("state: invalid key")
	// ErrUnknownValueVersion is returned when a stored customer value has an
	// envelope version this build does not know, typically because a newer
	// build wrote it.
	ErrUnknownValueVersion = errors.New("state: unknown value version")
	// ErrUnsupportedFormat is returned by Open for a store whose format marker
	// is newer than this build supports, or for a non-empty directory without
	// a marker (not a store of this package).
	ErrUnsupportedFormat = errors.New("state: unsupported store format")
	// ErrCorrupt is returned when a stored value does not have the shape its
	// key kind requires (an empty customer envelope, an offset that is not 8
	// bytes, an unreadable format marker).
	ErrCorrupt = errors.New("state: corrupt value")
)

// StoreFormat is the format of the key layout and value encodings written by
// this build. Open writes it to a fresh store and refuses a store marked with
// a newer one.
const StoreFormat = 1

// valueVersion1 is the leading byte of every customer value envelope written
// by this build.
const valueVersion1 byte = 1

// Store is the embedded state of one valora instance: for each partition
// (task), its customer records and its input offsets. It is safe for
// concurrent use; each task goroutine uses its own Batch.
type Store struct {
	db       *pebble.DB
	dir      string
	fs       vfs.FS
	readOnly bool
	// failed holds the cause of the first write that failed; the store
	// refuses every write after it (see write).
	failed atomic.Pointer[error]
	// bgErr is the last error of a flush or compaction, nil once one
	// succeeds again.
	bgErr atomic.Pointer[error]
	// stopped is closed by stop; stalled says a write may be stuck in
	// Pebble, which Close must then not wait for.
	stopped  chan struct{}
	stopOnce sync.Once
	stalled  atomic.Bool
	// writerOpts are the options of the tables a Loader writes: those of
	// the tables Pebble writes itself (format, compression, filters).
	writerOpts sstable.WriterOptions

	keyBufs sync.Pool // *[]byte scratch keys for lookups

	writeStalls atomic.Uint64
	stallStart  atomic.Int64 // unix nanos of the current stall, 0 if none
	stallNanos  atomic.Int64

	mu     sync.RWMutex // guards closed against a concurrent metrics scrape
	closed bool
}

// Open opens (or, unless ReadOnly, creates) the store in o.Dir with options
// tuned for small values and a high write rate, then checks the store's format
// marker: a fresh store gets the current StoreFormat, a store with a newer one
// is refused with an error wrapping ErrUnsupportedFormat.
func Open(o Options) (*Store, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	s := &Store{dir: o.Dir, fs: o.FS, readOnly: o.ReadOnly, stopped: make(chan struct{})}
	s.keyBufs.New = func() any {
		b := make([]byte, 0, 64)
		return &b
	}
	po := s.pebbleOptions(o)
	po.EnsureDefaults()
	db, err := pebble.Open(o.Dir, po)
	if err != nil {
		return nil, s.wrap(fmt.Errorf("open: %w", err))
	}
	s.db = db
	s.writerOpts = po.MakeWriterOptions(0, db.TableFormat())
	if !o.ReadOnly {
		// Tables a Loader wrote but the store had not ingested before a
		// crash: their writes were never recorded as loaded.
		if err := s.fs.RemoveAll(s.fs.PathJoin(o.Dir, ingestDir)); err != nil {
			_ = db.Close()
			return nil, s.wrap(fmt.Errorf("open: %w", err))
		}
	}
	if err := s.checkFormat(); err != nil {
		_ = db.Close()
		return nil, s.wrap(fmt.Errorf("open: %w", err))
	}
	return s, nil
}

// checkFormat validates the format marker, writing it to a fresh store.
func (s *Store) checkFormat() error {
	key := AppendMetaKey(nil, metaFormatName)
	v, closer, err := s.db.Get(key)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return s.initFormat(key)
	case err != nil:
		return fmt.Errorf("read format marker: %w", err)
	}
	defer closer.Close()
	format, n := binary.Uvarint(v)
	if n <= 0 || n != len(v) {
		return fmt.Errorf("format marker %x: %w", v, ErrCorrupt)
	}
	if format > StoreFormat {
		return fmt.Errorf("store format %d is newer than format %d that this build supports; open it with a newer valora: %w",
			format, StoreFormat, ErrUnsupportedFormat)
	}
	if format < 1 {
		return fmt.Errorf("store format %d: %w", format, ErrUnsupportedFormat)
	}
	return nil
}

// initFormat writes the format marker to a store that has none, after making
// sure the store is empty: keys without a marker mean the directory belongs to
// something else.
func (s *Store) initFormat(key []byte) error {
	iter, err := s.db.NewIter(nil)
	if err != nil {
		return fmt.Errorf("check empty store: %w", err)
	}
	nonEmpty := iter.First()
	if err := closeIter(iter); err != nil {
		return fmt.Errorf("check empty store: %w", err)
	}
	if nonEmpty {
		return fmt.Errorf("store has keys but no format marker, not a valora state directory: %w", ErrUnsupportedFormat)
	}
	if s.readOnly {
		return nil // an empty store: nothing to read, nothing to mark
	}
	val := binary.AppendUvarint(nil, StoreFormat)
	return s.write("write format marker", func() error { return s.db.Set(key, val, pebble.Sync) })
}

// Close flushes nothing (every committed batch is already durable) and
// releases the store. Calling it again returns nil. No other method may be
// called after Close. A store that stopped with its writes stalled behind
// a failing flush (see Store.stop) is not closed: Close returns an error
// at once, and the process should end.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.stalled.Load() {
		// Pebble retries the failed flush or compaction until the fault
		// is mended, and its Close would wait for it.
		return s.wrap(fmt.Errorf("close: %w: Pebble is left waiting for the fault to be mended; end the process", errStopped))
	}
	if err := s.db.Close(); err != nil {
		return s.wrap(fmt.Errorf("close: %w", err))
	}
	return nil
}

// DB returns the underlying Pebble database, for checkpoints and diagnostics. Its
// users must keep to the key layout, write through synced batches, and never
// change customer or offset keys except through Batch, which keeps the
// envelope and the all-or-nothing invariant.
func (s *Store) DB() *pebble.DB { return s.db }

// GetCustomer looks up a customer of a partition and appends its value (the
// bytes given to Batch.PutCustomer) to dst. It does not allocate when dst has
// enough capacity. found is false, and val is dst, when there is no such
// customer. A value with an unknown envelope version gives an error wrapping
// ErrUnknownValueVersion.
func (s *Store) GetCustomer(partition int32, customerID []byte, dst []byte) (val []byte, found bool, err error) {
	kb := s.keyBufs.Get().(*[]byte)
	*kb = AppendCustomerKey((*kb)[:0], partition, customerID)
	v, closer, err := s.db.Get(*kb)
	s.keyBufs.Put(kb)
	if errors.Is(err, pebble.ErrNotFound) {
		return dst, false, nil
	}
	if err != nil {
		return dst, false, s.wrap(fmt.Errorf("get customer in partition %d: %w", partition, err))
	}
	payload, err := openEnvelope(v)
	if err == nil {
		dst = append(dst, payload...)
	}
	closeErr := closer.Close()
	if err != nil {
		return dst, false, s.wrap(fmt.Errorf("get customer in partition %d: %w", partition, err))
	}
	if closeErr != nil {
		return dst, false, s.wrap(fmt.Errorf("get customer in partition %d: %w", partition, closeErr))
	}
	return dst, true, nil
}

// openEnvelope returns the payload of a customer value envelope.
func openEnvelope(v []byte) ([]byte, error) {
	if len(v) == 0 {
		return nil, fmt.Errorf("empty value envelope: %w", ErrCorrupt)
	}
	if v[0] != valueVersion1 {
		return nil, fmt.Errorf("value version %d: %w", v[0], ErrUnknownValueVersion)
	}
	return v[1:], nil
}

// Offsets returns, for each input topic of a partition, the next offset to
// consume: the position committed together with the customers' state. A
// partition with no committed batch gives an empty map.
func (s *Store) Offsets(partition int32) (map[string]int64, error) {
	lower, upper := partitionBounds(KindOffset, partition)
	iter, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, s.wrap(fmt.Errorf("read offsets of partition %d: %w", partition, err))
	}
	out := make(map[string]int64)
	for valid := iter.First(); valid; valid = iter.Next() {
		topic := string(iter.Key()[partitionedPrefixLen:])
		v, verr := iter.ValueAndErr()
		if verr == nil && len(v) != 8 {
			verr = fmt.Errorf("offset of topic %q is %d bytes, want 8: %w", topic, len(v), ErrCorrupt)
		}
		if verr != nil {
			_ = iter.Close()
			return nil, s.wrap(fmt.Errorf("read offsets of partition %d: %w", partition, verr))
		}
		out[topic] = int64(binary.BigEndian.Uint64(v))
	}
	if err := closeIter(iter); err != nil {
		return nil, s.wrap(fmt.Errorf("read offsets of partition %d: %w", partition, err))
	}
	return out, nil
}

// ScanCustomers calls fn for every customer of a partition, in key (customer
// id byte) order, with the id and the value given to Batch.PutCustomer. Both
// slices are valid only during the call. An error from fn stops the scan and
// is returned as is.
func (s *Store) ScanCustomers(partition int32, fn func(customerID, value []byte) error) error {
	lower, upper := partitionBounds(KindCustomer, partition)
	iter, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return s.wrap(fmt.Errorf("scan customers of partition %d: %w", partition, err))
	}
	for valid := iter.First(); valid; valid = iter.Next() {
		v, err := iter.ValueAndErr()
		if err == nil {
			v, err = openEnvelope(v)
		}
		if err != nil {
			_ = iter.Close()
			return s.wrap(fmt.Errorf("scan customers of partition %d: %w", partition, err))
		}
		if err := fn(iter.Key()[partitionedPrefixLen:], v); err != nil {
			_ = iter.Close()
			return err
		}
	}
	if err := closeIter(iter); err != nil {
		return s.wrap(fmt.Errorf("scan customers of partition %d: %w", partition, err))
	}
	return nil
}

// CountCustomers returns the number of customers of a partition. It reads
// every key of the partition, not the values.
func (s *Store) CountCustomers(partition int32) (int, error) {
	lower, upper := partitionBounds(KindCustomer, partition)
	iter, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, s.wrap(fmt.Errorf("count customers of partition %d: %w", partition, err))
	}
	n := 0
	for valid := iter.First(); valid; valid = iter.Next() {
		n++
	}
	if err := closeIter(iter); err != nil {
		return 0, s.wrap(fmt.Errorf("count customers of partition %d: %w", partition, err))
	}
	return n, nil
}

// Partitions returns, in ascending order, the partitions that have at least
// one customer or offset (keys of the reserved kinds are not considered). It
// seeks once per partition rather than reading every key.
func (s *Store) Partitions() ([]int32, error) {
	var out []int32
	for _, kind := range []byte{KindCustomer, KindOffset} {
		iter, err := s.db.NewIter(&pebble.IterOptions{
			LowerBound: []byte{kind},
			UpperBound: []byte{kind + 1},
		})
		if err != nil {
			return nil, s.wrap(fmt.Errorf("list partitions: %w", err))
		}
		for valid := iter.First(); valid; {
			_, p, _, err := DecodeKey(iter.Key())
			if err != nil {
				_ = iter.Close()
				return nil, s.wrap(fmt.Errorf("list partitions: %w", err))
			}
			out = append(out, p)
			_, next := partitionBounds(kind, p)
			if next == nil || next[0] != kind {
				break // the last partition of this kind
			}
			valid = iter.SeekGE(next)
		}
		if err := closeIter(iter); err != nil {
			return nil, s.wrap(fmt.Errorf("list partitions: %w", err))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Purge makes deleted data (erased customers) leave the files of the store
// in dir, which no process may have open. It rewrites the store's tables:
// it writes every live key and value to new tables and, in one atomic
// step, ingests them in place of all the old ones (Pebble's excise), so no
// deleted value and no tombstone (whose key names the customer) survives.
// A compaction cannot promise that: Pebble moves a lone table down the
// levels without rewriting it, tombstones and all. Purge then opens the
// store once more and flushes, which starts a new MANIFEST that names only
// the new tables, and removes the older MANIFEST files, whose version edits
// still name the old tables and their first and last keys. Pebble reads
// only the MANIFEST its marker names, and keeps older ones for debugging,
// deleting them in the background at its own pace. Afterwards a deleted
// customer's id is in no file of dir. A crash part way leaves the store
// consistent: either the old tables or the new ones are live.
func Purge(ctx context.Context, o Options) error {
	if o.ReadOnly || o.BulkLoad {
		return errors.New("state options: Purge takes neither ReadOnly nor BulkLoad")
	}
	s, err := Open(o)
	if err != nil {
		return err
	}
	err = s.rewrite(ctx)
	if err := errors.Join(err, s.Close()); err != nil {
		return err
	}
	// The first version edit after an open starts a new MANIFEST, which
	// holds a snapshot of the live tables; a flush is such an edit.
	if s, err = Open(o); err != nil {
		return err
	}
	err = s.write("purge: flush", s.flush)
	if err := errors.Join(err, s.Close()); err != nil {
		return err
	}
	return s.removeOldManifests()
}

// flush flushes the memtable to a table; it returns once the table is
// written and recorded.
func (s *Store) flush() error { return s.db.Flush() }

// purgeTableSize is the size at which rewrite starts a new table.
const purgeTableSize = 64 << 20

// purgeSpan holds every key the store writes: each starts with a Kind
// letter.
var purgeSpan = pebble.KeyRange{Start: []byte{0x00}, End: []byte{0xff}}

// rewrite replaces all tables of the store by new ones that hold its live
// keys and values, written by an iterator, and nothing else.
func (s *Store) rewrite(ctx context.Context) error {
	// Flushed, no memtable holds data that the new tables would not
	// replace (the excise applies to tables).
	if err := s.write("purge: flush", s.flush); err != nil {
		return err
	}
	// The store holds links to the tables once ingested.
	defer s.fs.RemoveAll(s.fs.PathJoin(s.dir, ingestDir))
	iter, err := s.db.NewIter(nil)
	if err != nil {
		return s.wrap(fmt.Errorf("purge: %w", err))
	}
	paths, err := s.writeLiveTables(ctx, iter)
	if err := errors.Join(err, iter.Close()); err != nil {
		return s.wrap(fmt.Errorf("purge: %w", err))
	}
	return s.write("purge: replace the tables", func() error {
		_, err := s.db.IngestAndExcise(ctx, paths, nil, nil, purgeSpan)
		return err
	})
}

// writeLiveTables writes the keys and values iter yields, in order, to
// tables of about purgeTableSize each in the ingest directory, and returns
// their paths.
func (s *Store) writeLiveTables(ctx context.Context, iter *pebble.Iterator) ([]string, error) {
	var (
		paths []string
		w     *sstable.Writer
	)
	closeTable := func() error {
		if w == nil {
			return nil
		}
		err := w.Close() // flushes and syncs the file
		w = nil
		return err
	}
	for valid := iter.First(); valid; valid = iter.Next() {
		k := iter.Key()
		if k[0] == purgeSpan.End[0] {
			_ = closeTable()
			return nil, fmt.Errorf("key %x: %w", k, ErrInvalidKey)
		}
		if w == nil {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			var path string
			var err error
			if w, path, err = s.createTable("purge-" + strconv.Itoa(len(paths)) + ".sst"); err != nil {
				return nil, err
			}
			paths = append(paths, path)
		}
		v, err := iter.ValueAndErr()
		if err == nil {
			err = w.Set(k, v)
		}
		if err != nil {
			_ = closeTable()
			return nil, fmt.Errorf("write table: %w", err)
		}
		if w.Raw().EstimatedSize() >= purgeTableSize {
			if err := closeTable(); err != nil {
				return nil, fmt.Errorf("write table: %w", err)
			}
		}
	}
	if err := errors.Join(iter.Error(), closeTable()); err != nil {
		return nil, fmt.Errorf("write table: %w", err)
	}
	return paths, nil
}

// removeOldManifests deletes the MANIFEST files of the closed store s
// other than the current one, which the single marker.manifest.* file
// names (its name ends with ".MANIFEST-<number>").
func (s *Store) removeOldManifests() error {
	names, err := s.fs.List(s.dir)
	if err != nil {
		return s.wrap(fmt.Errorf("purge: %w", err))
	}
	var current []string
	for _, e := range names {
		if name, ok := strings.CutPrefix(e, "marker.manifest."); ok {
			if i := strings.Index(name, ".MANIFEST-"); i >= 0 {
				current = append(current, name[i+1:])
			}
		}
	}
	if len(current) != 1 {
		return s.wrap(fmt.Errorf("purge: want one manifest marker, found %d", len(current)))
	}
	if _, err := s.fs.Stat(s.fs.PathJoin(s.dir, current[0])); err != nil {
		return s.wrap(fmt.Errorf("purge: the current manifest: %w", err))
	}
	for _, e := range names {
		if strings.HasPrefix(e, "MANIFEST-") && e != current[0] {
			if err := s.fs.Remove(s.fs.PathJoin(s.dir, e)); err != nil {
				return s.wrap(fmt.Errorf("purge: %w", err))
			}
		}
	}
	return nil
}

// Compact compacts the whole key space down to the last level, so that
// deleted customers' old values and tombstones are physically dropped (no
// snapshot or checkpoint may still reference them). It blocks until done or
// ctx is cancelled.
func (s *Store) Compact(ctx context.Context) error {
	return s.write("compact", func() error { return s.db.Compact(ctx, []byte{0x00}, []byte{0xff}, true) })
}
