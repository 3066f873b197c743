package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable/block"
)

// openTest opens a store in a fresh temporary directory, with a small cache
// and memtable, and closes it at the end of the test.
func openTest(t testing.TB) *Store {
	t.Helper()
	return openTestDir(t, t.TempDir())
}

func openTestDir(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(Options{Dir: dir, CacheSize: 8 << 20, MemTableSize: 4 << 20})
	if err != nil {
		t.Fatalf("Open(%q): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func mustGet(t *testing.T, s *Store, p int32, id string) (string, bool) {
	t.Helper()
	v, found, err := s.GetCustomer(p, []byte(id), nil)
	if err != nil {
		t.Fatalf("GetCustomer(%d, %q): %v", p, id, err)
	}
	return string(v), found
}

func mustOffsets(t *testing.T, s *Store, p int32) map[string]int64 {
	t.Helper()
	offs, err := s.Offsets(p)
	if err != nil {
		t.Fatalf("Offsets(%d): %v", p, err)
	}
	return offs
}

func mustCommit(t *testing.T, b *Batch) {
	t.Helper()
	if err := b.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// scanAll returns id=value pairs of a partition in scan order.
func scanAll(t *testing.T, s *Store, p int32) []string {
	t.Helper()
	var out []string
	err := s.ScanCustomers(p, func(id, v []byte) error {
		out = append(out, string(id)+"="+string(v))
		return nil
	})
	if err != nil {
		t.Fatalf("ScanCustomers(%d): %v", p, err)
	}
	return out
}

func TestBatchAtomicity(t *testing.T) {
	s := openTest(t)
	b := s.NewBatch()
	defer b.Close()

	b.PutCustomer(1, "alice", []byte("a1"))
	b.PutCustomer(1, "bob", []byte("b1"))
	b.SetOffset(1, "purchases", 10)
	b.SetOffset(1, "interactions", 20)
	if got := b.Len(); got != 4 {
		t.Fatalf("Len = %d, want 4", got)
	}

	// Nothing is visible before Commit.
	if _, found := mustGet(t, s, 1, "alice"); found {
		t.Fatal("customer visible before Commit")
	}
	if offs := mustOffsets(t, s, 1); len(offs) != 0 {
		t.Fatalf("offsets visible before Commit: %v", offs)
	}

	mustCommit(t, b)
	if got := b.Len(); got != 0 {
		t.Fatalf("Len after Commit = %d, want 0 (Commit resets)", got)
	}
	if v, found := mustGet(t, s, 1, "alice"); !found || v != "a1" {
		t.Fatalf("alice = %q, %v; want a1, true", v, found)
	}
	if got, want := mustOffsets(t, s, 1), map[string]int64{"purchases": 10, "interactions": 20}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Offsets = %v, want %v", got, want)
	}

	// The reused batch carries only its new writes.
	b.DeleteCustomer(1, "alice")
	b.PutCustomer(1, "bob", []byte("b2"))
	b.SetOffset(1, "purchases", 11)
	mustCommit(t, b)
	if got, want := scanAll(t, s, 1), []string{"bob=b2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("scan = %v, want %v", got, want)
	}
	if got, want := mustOffsets(t, s, 1), map[string]int64{"purchases": 11, "interactions": 20}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Offsets = %v, want %v", got, want)
	}

	// Reset discards pending writes.
	b.PutCustomer(1, "carol", []byte("c"))
	b.Reset()
	mustCommit(t, b)
	if _, found := mustGet(t, s, 1, "carol"); found {
		t.Fatal("write discarded by Reset was committed")
	}
}

func TestValueCopiedAtPut(t *testing.T) {
	s := openTest(t)
	b := s.NewBatch()
	defer b.Close()
	val := []byte("first")
	b.PutCustomer(0, "x", val)
	copy(val, "XXXXX")
	mustCommit(t, b)
	if v, _ := mustGet(t, s, 0, "x"); v != "first" {
		t.Fatalf("value = %q, want first (PutCustomer must copy)", v)
	}
}

func TestGetCustomerAppendsToDst(t *testing.T) {
	s := openTest(t)
	b := s.NewBatch()
	defer b.Close()
	b.PutCustomer(2, "id", []byte("value"))
	b.PutCustomer(2, "empty", nil)
	mustCommit(t, b)

	dst := append(make([]byte, 0, 64), "prefix:"...)
	got, found, err := s.GetCustomer(2, []byte("id"), dst)
	if err != nil || !found || string(got) != "prefix:value" {
		t.Fatalf("GetCustomer = %q, %v, %v; want prefix:value, true, nil", got, found, err)
	}
	got, found, err = s.GetCustomer(2, []byte("missing"), dst)
	if err != nil || found || string(got) != "prefix:" {
		t.Fatalf("GetCustomer(missing) = %q, %v, %v; want prefix:, false, nil", got, found, err)
	}
	got, found, err = s.GetCustomer(2, []byte("empty"), nil)
	if err != nil || !found || len(got) != 0 {
		t.Fatalf("GetCustomer(empty) = %q, %v, %v; want empty, true, nil", got, found, err)
	}

	buf := make([]byte, 0, 64)
	key := []byte("id")
	allocs := testing.AllocsPerRun(200, func() {
		buf, _, _ = s.GetCustomer(2, key, buf[:0])
	})
	// Pebble's read path may allocate on some calls (iterator pools refill);
	// the store itself must add nothing per call.
	if allocs > 1 {
		t.Fatalf("GetCustomer hit allocates %v times per call", allocs)
	}
}

func TestReopenPersistence(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	for i := range 100 {
		b.PutCustomer(int32(i%3), fmt.Sprintf("c%03d", i), []byte(fmt.Sprint(i)))
	}
	b.SetOffset(0, "purchases", 42)
	b.SetOffset(2, "interactions", 7)
	mustCommit(t, b)
	b.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}

	s = openTestDir(t, dir)
	if v, found := mustGet(t, s, 1, "c004"); !found || v != "4" {
		t.Fatalf("c004 = %q, %v after reopen", v, found)
	}
	if got := mustOffsets(t, s, 0); got["purchases"] != 42 {
		t.Fatalf("offsets of 0 = %v after reopen", got)
	}
	parts, err := s.Partitions()
	if err != nil {
		t.Fatal(err)
	}
	if want := []int32{0, 1, 2}; !reflect.DeepEqual(parts, want) {
		t.Fatalf("Partitions = %v, want %v", parts, want)
	}
	for p, want := range []int{34, 33, 33} {
		n, err := s.CountCustomers(int32(p))
		if err != nil || n != want {
			t.Fatalf("CountCustomers(%d) = %d, %v; want %d", p, n, err, want)
		}
	}
}

func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(Options{Dir: dir + "/missing", ReadOnly: true}); err == nil {
		t.Fatal("read-only Open of a missing store succeeded")
	}
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	b.PutCustomer(0, "a", []byte("v"))
	mustCommit(t, b)
	b.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	ro, err := Open(Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open: %v", err)
	}
	defer ro.Close()
	if v, found := mustGet(t, ro, 0, "a"); !found || v != "v" {
		t.Fatalf("a = %q, %v in read-only store", v, found)
	}
	b = ro.NewBatch()
	defer b.Close()
	b.PutCustomer(0, "b", nil)
	if err := b.Commit(); !errors.Is(err, pebble.ErrReadOnly) {
		t.Fatalf("Commit on read-only store = %v, want ErrReadOnly", err)
	}
}

// Partition p's scans, counts and offsets never see p's neighbours, even with
// customer ids that are prefixes of each other and partitions whose
// encodings are adjacent (0x00ff / 0x0100, 0x7fffffff / -0x80000000).
func TestPartitionIsolation(t *testing.T) {
	s := openTest(t)
	b := s.NewBatch()
	defer b.Close()
	parts := []int32{1, 2, 255, 256, 0x7fffffff, -0x80000000, -1}
	ids := []string{"", "a", "ab", "abc", "b", "\x00", "\xff", "\xff\xff\xff\xff"}
	for _, p := range parts {
		for _, id := range ids {
			b.PutCustomer(p, id, []byte(fmt.Sprintf("%d/%q", p, id)))
		}
		b.SetOffset(p, "t", int64(p))
		b.SetOffset(p, "t2", int64(p)+1)
	}
	mustCommit(t, b)

	for _, p := range parts {
		var got []string
		err := s.ScanCustomers(p, func(id, v []byte) error {
			want := fmt.Sprintf("%d/%q", p, id)
			if string(v) != want {
				t.Errorf("partition %d: scan saw %q, want %q", p, v, want)
			}
			got = append(got, string(id))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// Scan order is byte order of ids.
		want := []string{"", "\x00", "a", "ab", "abc", "b", "\xff", "\xff\xff\xff\xff"}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("partition %d: scan ids %q, want %q", p, got, want)
		}
		if n, err := s.CountCustomers(p); err != nil || n != len(ids) {
			t.Fatalf("CountCustomers(%d) = %d, %v; want %d", p, n, err, len(ids))
		}
		if got, want := mustOffsets(t, s, p), map[string]int64{"t": int64(p), "t2": int64(p) + 1}; !reflect.DeepEqual(got, want) {
			t.Fatalf("Offsets(%d) = %v, want %v", p, got, want)
		}
	}
	for _, p := range []int32{0, 3, 254, 257, 0x7ffffffe, -2} {
		if n, _ := s.CountCustomers(p); n != 0 {
			t.Fatalf("empty partition %d has %d customers", p, n)
		}
	}
	got, err := s.Partitions()
	if err != nil {
		t.Fatal(err)
	}
	if want := []int32{-0x80000000, -1, 1, 2, 255, 256, 0x7fffffff}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Partitions = %v, want %v", got, want)
	}
}

func TestPartitionsWithOnlyOffsets(t *testing.T) {
	s := openTest(t)
	b := s.NewBatch()
	defer b.Close()
	b.SetOffset(5, "purchases", 1)
	b.PutCustomer(3, "x", nil)
	mustCommit(t, b)
	got, err := s.Partitions()
	if err != nil || !reflect.DeepEqual(got, []int32{3, 5}) {
		t.Fatalf("Partitions = %v, %v; want [3 5]", got, err)
	}
}

func TestScanStopsOnCallbackError(t *testing.T) {
	s := openTest(t)
	b := s.NewBatch()
	defer b.Close()
	for i := range 10 {
		b.PutCustomer(0, fmt.Sprint(i), nil)
	}
	mustCommit(t, b)
	stop := errors.New("stop")
	calls := 0
	err := s.ScanCustomers(0, func(_, _ []byte) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 3 {
		t.Fatalf("ScanCustomers = %v after %d calls, want stop after 3", err, calls)
	}
}

func TestUnknownValueVersion(t *testing.T) {
	s := openTest(t)
	key := AppendCustomerKey(nil, 1, "future")
	if err := s.DB().Set(key, []byte{9, 'x'}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.GetCustomer(1, []byte("future"), nil); !errors.Is(err, ErrUnknownValueVersion) {
		t.Fatalf("GetCustomer of version 9 = %v, want ErrUnknownValueVersion", err)
	}
	err := s.ScanCustomers(1, func(_, _ []byte) error { return nil })
	if !errors.Is(err, ErrUnknownValueVersion) {
		t.Fatalf("ScanCustomers over version 9 = %v, want ErrUnknownValueVersion", err)
	}

	if err := s.DB().Set(AppendCustomerKey(nil, 2, "empty"), nil, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.GetCustomer(2, []byte("empty"), nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("GetCustomer of empty envelope = %v, want ErrCorrupt", err)
	}
	if err := s.DB().Set(AppendOffsetKey(nil, 3, "t"), []byte{1, 2}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Offsets(3); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Offsets with a 2-byte value = %v, want ErrCorrupt", err)
	}
}

func TestEnvelopeOnDisk(t *testing.T) {
	s := openTest(t)
	b := s.NewBatch()
	defer b.Close()
	b.PutCustomer(1, "a", []byte("payload"))
	mustCommit(t, b)
	v, closer, err := s.DB().Get(AppendCustomerKey(nil, 1, "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if want := []byte("\x01payload"); !bytes.Equal(v, want) {
		t.Fatalf("stored value %q, want %q", v, want)
	}
}

func TestOptionsValidate(t *testing.T) {
	f := func(o Options, wantFields ...string) {
		t.Helper()
		err := o.Validate()
		if len(wantFields) == 0 {
			if err != nil {
				t.Fatalf("Validate(%+v) = %v, want nil", o, err)
			}
			return
		}
		if err == nil {
			t.Fatalf("Validate(%+v) = nil, want errors naming %v", o, wantFields)
		}
		for _, field := range wantFields {
			if !strings.Contains(err.Error(), field) {
				t.Fatalf("Validate(%+v) = %q, does not name %s", o, err, field)
			}
		}
		if _, openErr := Open(o); openErr == nil {
			t.Fatalf("Open(%+v) succeeded with invalid options", o)
		}
	}
	f(Options{Dir: "x"})
	f(Options{Dir: "x", BulkLoad: true, Logger: slog.Default(), CacheSize: 1, MemTableSize: MaxMemTableSize})
	f(Options{}, "Dir")
	f(Options{Dir: "x", CacheSize: -1}, "CacheSize")
	f(Options{Dir: "x", MemTableSize: MaxMemTableSize + 1}, "MemTableSize")
	f(Options{Dir: "x", BulkLoad: true, ReadOnly: true}, "BulkLoad", "ReadOnly")
	f(Options{CacheSize: -5}, "Dir", "CacheSize")
}

func TestFormatMarker(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	v, closer, err := s.DB().Get(AppendMetaKey(nil, metaFormatName))
	if err != nil {
		t.Fatalf("format marker missing: %v", err)
	}
	if !bytes.Equal(v, []byte{StoreFormat}) {
		t.Fatalf("format marker = %x, want %x", v, StoreFormat)
	}
	closer.Close()
	// A newer format is refused, in read-write and read-only mode.
	if err := s.DB().Set(AppendMetaKey(nil, metaFormatName), []byte{StoreFormat + 1}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		_, err = Open(Options{Dir: dir, ReadOnly: ro})
		if !errors.Is(err, ErrUnsupportedFormat) {
			t.Fatalf("Open(ReadOnly=%v) of a newer format = %v, want ErrUnsupportedFormat", ro, err)
		}
		if !strings.Contains(err.Error(), "newer") {
			t.Fatalf("error %q does not say the format is newer", err)
		}
	}

	// A Pebble directory with keys but no marker is not ours.
	foreign := t.TempDir()
	db, err := pebble.Open(foreign, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("something"), []byte("else"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Dir: foreign}); !errors.Is(err, ErrUnsupportedFormat) {
		t.Fatalf("Open of a foreign store = %v, want ErrUnsupportedFormat", err)
	}
}

func TestCompactDropsDeleted(t *testing.T) {
	s := openTest(t)
	b := s.NewBatch()
	defer b.Close()
	secret := bytes.Repeat([]byte("S"), 100)
	for i := range 1000 {
		b.PutCustomer(0, fmt.Sprintf("c%04d", i), secret)
	}
	mustCommit(t, b)
	if err := s.DB().Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		b.DeleteCustomer(0, fmt.Sprintf("c%04d", i))
	}
	mustCommit(t, b)
	if err := s.Compact(context.Background()); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	if n, _ := s.CountCustomers(0); n != 0 {
		t.Fatalf("%d customers after deleting all", n)
	}
	m := s.DB().Metrics()
	if tables := m.Total().TablesCount; tables > 1 {
		t.Fatalf("%d sstables after compacting a store with only the format marker\n%s", tables, m)
	}
	if m.Keys.TombstoneCount != 0 {
		t.Fatalf("%d tombstones left after full compaction", m.Keys.TombstoneCount)
	}
}

func TestBulkLoadOpens(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), BulkLoad: true, CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := s.NewBatch()
	defer b.Close()
	b.PutCustomer(0, "a", []byte("v"))
	mustCommit(t, b)
	if v, found := mustGet(t, s, 0, "a"); !found || v != "v" {
		t.Fatalf("a = %q, %v", v, found)
	}
}

// recordingHandler is a slog handler that keeps the records it is given.
type recordingHandler struct {
	slog.Handler
	records *[]slog.Record
}

func (h recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordingHandler) Handle(_ context.Context, r slog.Record) error {
	*h.records = append(*h.records, r)
	return nil
}

func TestPebbleLoggerBridge(t *testing.T) {
	var records []slog.Record
	l := pebbleLogger{l: slog.New(recordingHandler{records: &records})}
	l.Infof("hello %d", 1)
	l.Errorf("bad %s", "thing")
	func() {
		defer func() {
			if r := recover(); r == nil {
				t.Error("Fatalf did not panic")
			}
		}()
		l.Fatalf("fatal %v", true)
	}()
	if len(records) != 3 {
		t.Fatalf("got %d records, want 3", len(records))
	}
	for i, want := range []struct {
		level slog.Level
		msg   string
	}{{slog.LevelInfo, "hello 1"}, {slog.LevelError, "bad thing"}, {slog.LevelError, "fatal true"}} {
		if records[i].Level != want.level || records[i].Message != want.msg {
			t.Errorf("record %d = %v %q, want %v %q", i, records[i].Level, records[i].Message, want.level, want.msg)
		}
	}
}

// TestBlockCacheHoldsBlocks checks that the block cache holds CacheSize
// bytes of blocks beside full memtables: Pebble charges memtables to the
// cache, and a cache no larger than the memtables held no block at all.
// Both the live and the bulk-load settings, each with a cache the size of
// its two memtables.
func TestBlockCacheHoldsBlocks(t *testing.T) {
	for _, bulk := range []bool{false, true} {
		const memTable = 4 << 20
		s, err := Open(Options{Dir: t.TempDir(), BulkLoad: bulk, CacheSize: 2 * memTable, MemTableSize: memTable})
		if err != nil {
			t.Fatal(err)
		}
		b := s.NewBatch()
		val := bytes.Repeat([]byte("v"), 200)
		const n = 20_000 // about 4 MiB of customers
		for i := range n {
			b.PutCustomer(int32(i%4), fmt.Sprintf("c%06d", i), val)
			if b.Len() == 1000 {
				mustCommit(t, b)
			}
		}
		mustCommit(t, b)
		b.Close()
		if err := s.Compact(context.Background()); err != nil {
			t.Fatal(err)
		}
		b = s.NewBatch() // memtables full again: their reservations
		for i := range n {
			b.PutCustomer(9, fmt.Sprintf("m%06d", i), val)
			if b.Len() == 1000 {
				mustCommit(t, b)
			}
		}
		mustCommit(t, b)
		b.Close()
		read := func() {
			for i := range n {
				if _, found := mustGet(t, s, int32(i%4), fmt.Sprintf("c%06d", i)); !found {
					t.Fatalf("c%06d not found", i)
				}
			}
		}
		read()
		before := s.DB().Metrics().BlockCache
		read()
		after := s.DB().Metrics().BlockCache
		hits, misses := after.Hits-before.Hits, after.Misses-before.Misses
		t.Logf("bulk load %v: second read %d hits, %d misses; %d bytes of blocks cached", bulk, hits, misses, after.Size)
		if after.Size == 0 || hits < 10*misses {
			t.Errorf("bulk load %v: the block cache holds %d bytes, and a second read of %d customers hit it %d times and missed %d times: want most reads served from the cache",
				bulk, after.Size, n, hits, misses)
		}
		s.Close()
	}
}

// TestPurge writes and deletes customers at random (in memtables, flushed
// tables, compacted tables and tables a Loader ingested, across reopens),
// then purges the store. Afterwards the store holds the live customers
// with their values, no internal key but theirs (no tombstone, no old
// version), and no file of the directory contains a deleted customer's
// id. The first seeds cover the case a compaction alone gets wrong: a
// deleted customer's tombstone in a single table that Pebble moves down
// the levels without rewriting.
func TestPurge(t *testing.T) {
	type key struct {
		p  int32
		id string
	}
	for seed := range int64(100) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 7))
			dir := t.TempDir()
			live := map[key]string{}
			deleted := map[key]bool{}
			id := func(i int) string { return fmt.Sprintf("purge-%d-%08x", i, uint32(seed)*2654435761+uint32(i)) }
			n := 2 + rng.IntN(400)
			phases := rng.IntN(4) // none: the store holds only what follows
			for range phases {
				s, err := Open(Options{Dir: dir, CacheSize: 8 << 20, MemTableSize: 4 << 20})
				if err != nil {
					t.Fatal(err)
				}
				ops := 1 + rng.IntN(3*n)
				b := s.NewBatch()
				for j := range ops {
					k := key{p: 2 * rng.Int32N(2), id: id(rng.IntN(n))}
					if rng.IntN(3) == 0 {
						b.DeleteCustomer(k.p, k.id)
						if _, ok := live[k]; ok {
							deleted[k] = true
						}
						delete(live, k)
					} else {
						v := fmt.Sprintf("v%d-%d", j, rng.Int())
						b.PutCustomer(k.p, k.id, []byte(v))
						live[k] = v
						delete(deleted, k)
					}
					if rng.IntN(50) == 0 || j == ops-1 {
						mustCommit(t, b)
					}
					switch rng.IntN(200) {
					case 0:
						mustCommit(t, b)
						if err := s.DB().Flush(); err != nil {
							t.Fatal(err)
						}
					case 1:
						mustCommit(t, b)
						if err := s.Compact(context.Background()); err != nil {
							t.Fatal(err)
						}
					}
				}
				b.Close()
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			// Always a customer the purge must remove, in a partition
			// before, among or after the others' (so its tombstone may
			// land in a table of its own).
			k := key{p: rng.Int32N(4), id: id(n)}
			s, err := Open(Options{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			b := s.NewBatch()
			b.PutCustomer(k.p, k.id, []byte("secret"))
			mustCommit(t, b)
			b.DeleteCustomer(k.p, k.id)
			mustCommit(t, b)
			b.Close()
			deleted[k] = true
			if rng.IntN(2) == 0 {
				if err := s.DB().Flush(); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			if err := Purge(context.Background(), Options{Dir: dir}); err != nil {
				t.Fatalf("Purge: %v", err)
			}

			s, err = Open(Options{Dir: dir, ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got := map[key]string{}
			for p := range int32(4) {
				if err := s.ScanCustomers(p, func(id, v []byte) error {
					got[key{p, string(id)}] = string(v)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			if !reflect.DeepEqual(got, live) {
				t.Fatalf("after the purge the store holds %d customers, want %d (the live ones with their values)", len(got), len(live))
			}
			// Every internal key is a live key's one version.
			keys := 0
			err = s.DB().ScanInternal(context.Background(), block.CategoryUnknown, nil, nil,
				func(ik *pebble.InternalKey, _ pebble.LazyValue, _ pebble.IteratorLevel) error {
					keys++
					if k := ik.Kind(); k != pebble.InternalKeyKindSet && k != pebble.InternalKeyKindSetWithDelete {
						return fmt.Errorf("internal key %q of kind %s", ik.UserKey, k)
					}
					return nil
				}, nil, nil, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if keys != len(live)+1 { // and the format marker
				t.Fatalf("%d internal keys, want %d: one per live customer and the format marker", keys, len(live)+1)
			}
			liveIDs := map[string]bool{}
			for k := range live {
				liveIDs[k.id] = true
			}
			files, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				if f.IsDir() {
					continue
				}
				data, err := os.ReadFile(filepath.Join(dir, f.Name()))
				if err != nil {
					t.Fatal(err)
				}
				for k := range deleted {
					if !liveIDs[k.id] && bytes.Contains(data, []byte(k.id)) {
						t.Errorf("deleted customer %s is still in %s", k.id, f.Name())
					}
				}
			}
		})
	}
}
