package state

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// ingestDir is the directory, inside the store's, where a Loader writes its
// tables before the store ingests them. Open removes what a crash left there.
const ingestDir = "ingest"

// Loader bulk-loads the customer records of one partition: it collects them
// in memory and Ingest writes them, sorted, to a table file that the store
// ingests. The writes skip the write-ahead log, the memtable and its flush,
// which is most of what a batch costs per record when the records come by
// the hundred thousand (a task's restore from its changelog).
//
// Invariants: within one Loader, a later write to a customer replaces an
// earlier one (Ingest keeps the last); the writes of a later Ingest replace
// those of earlier ones and of every batch committed before it, as if they
// had been committed in a batch at the moment of the Ingest. An Ingest is
// durable when it returns (the table is synced, the store's manifest
// records it) but not atomic with any batch: a caller that records how far
// it has loaded (a checkpoint) commits that in a batch after the Ingest, so
// that after a crash the checkpoint never runs ahead of the data.
//
// A Loader is not safe for concurrent use. Close releases its memory.
type Loader struct {
	s    *Store
	part int32
	// pages hold the keys and values, appended to pages[cur] until it is
	// full: fixed pages are never copied as the collection grows, and are
	// kept for the next chunk.
	pages [][]byte
	cur   int
	size  int
	ents  []loadEntry
}

// loaderPage is the size of a Loader's pages; a larger write gets a page of
// its own.
const loaderPage = 1 << 20

// loadEntry locates one write in the Loader's pages: the key (prefix
// included) at pages[page][off:off+klen], the value after it (vlen bytes,
// envelope included), or a deletion.
type loadEntry struct {
	// abbr holds the 8 key bytes after the prefix the chunk's keys share
	// (big-endian, zero-padded), so that most comparisons of the sort read
	// the entries alone and not the pages, where every key is a cache miss.
	abbr uint64
	page uint32
	off  uint32
	klen uint32
	vlen uint32
	seq  uint32
	del  bool
}

// loaderSeq numbers the table files of the store's loaders.
var loaderSeq atomic.Uint64

// NewLoader returns an empty loader for the customers of partition.
func (s *Store) NewLoader(partition int32) *Loader {
	return &Loader{s: s, part: partition}
}

// PutCustomer sets a customer's value, wrapped in the current value
// envelope. Both slices are copied.
func (l *Loader) PutCustomer(customerID, value []byte) { l.add(customerID, value, false) }

// DeleteCustomer removes a customer. Deleting a customer that does not exist
// is not an error.
func (l *Loader) DeleteCustomer(customerID []byte) { l.add(customerID, nil, true) }

// add copies a write's key, and unless del its enveloped value, to a page.
func (l *Loader) add(customerID, value []byte, del bool) {
	n := partitionedPrefixLen + len(customerID)
	if !del {
		n += 1 + len(value)
	}
	pi := l.room(n)
	p := l.pages[pi]
	off := len(p)
	p = AppendCustomerKey(p, l.part, customerID)
	e := loadEntry{page: uint32(pi), off: uint32(off), klen: uint32(len(p) - off), seq: uint32(len(l.ents)), del: del}
	if !del {
		p = append(p, valueVersion1)
		p = append(p, value...)
		e.vlen = uint32(1 + len(value))
	}
	l.pages[pi] = p
	l.size += n
	l.ents = append(l.ents, e)
}

// room returns the index of a page with room for n more bytes.
func (l *Loader) room(n int) int {
	for ; l.cur < len(l.pages); l.cur++ {
		if p := l.pages[l.cur]; cap(p)-len(p) >= n {
			return l.cur
		}
	}
	l.pages = append(l.pages, make([]byte, 0, max(n, loaderPage)))
	return l.cur
}

// key returns e's key.
func (l *Loader) key(e *loadEntry) []byte { return l.pages[e.page][e.off : e.off+e.klen] }

// Len returns the number of writes collected since the last Ingest.
func (l *Loader) Len() int { return len(l.ents) }

// Size returns the bytes of keys and values collected since the last Ingest.
func (l *Loader) Size() int { return l.size }

// Ingest writes the collected writes to a table, sorted by key with the
// last write to each key kept, and ingests it into the store; then it
// empties the loader. With nothing collected it does nothing. After an
// error the writes were possibly ingested, possibly not, and the loader is
// emptied all the same.
func (l *Loader) Ingest(ctx context.Context) error {
	if len(l.ents) == 0 {
		return nil
	}
	defer l.Reset()
	l.abbreviate()
	slices.SortFunc(l.ents, func(a, b loadEntry) int {
		if c := cmp.Compare(a.abbr, b.abbr); c != 0 {
			return c
		}
		if c := bytes.Compare(l.key(&a), l.key(&b)); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	if first := l.s.failed.Load(); first != nil {
		// The store takes no more writes: write no table for it either.
		return l.s.wrap(fmt.Errorf("ingest table of partition %d: %w: %w", l.part, errStopped, *first))
	}
	w, path, err := l.s.createTable("p" + strconv.Itoa(int(l.part)) + "-" + strconv.FormatUint(loaderSeq.Add(1), 10) + ".sst")
	if err != nil {
		return l.s.wrap(fmt.Errorf("ingest table of partition %d: %w", l.part, err))
	}
	defer l.s.fs.Remove(path) // the store holds a link to it once ingested
	for i := range l.ents {
		e := &l.ents[i]
		k := l.key(e)
		if i+1 < len(l.ents) && l.ents[i+1].abbr == e.abbr && bytes.Equal(k, l.key(&l.ents[i+1])) {
			continue // a later write to the same key replaces it
		}
		if e.del {
			err = w.Delete(k)
		} else {
			err = w.Set(k, l.pages[e.page][e.off+e.klen:e.off+e.klen+e.vlen])
		}
		if err != nil {
			_ = w.Close()
			return l.s.wrap(fmt.Errorf("ingest table of partition %d: write: %w", l.part, err))
		}
	}
	if err := w.Close(); err != nil { // flushes and syncs the file
		return l.s.wrap(fmt.Errorf("ingest table of partition %d: write: %w", l.part, err))
	}
	return l.s.write("ingest table of partition "+strconv.Itoa(int(l.part)), func() error {
		return l.s.db.Ingest(ctx, []string{path})
	})
}

// abbreviate sets each entry's abbr: the key bytes [p, p+8) where p is the
// length of the prefix all keys share. Keys that are equal on those bytes
// compare in full, so the order is the keys' order whatever p is.
func (l *Loader) abbreviate() {
	first := l.key(&l.ents[0])
	p := len(first)
	for i := 1; i < len(l.ents) && p > 0; i++ {
		k := l.key(&l.ents[i])
		n := 0
		for n < min(p, len(k)) && k[n] == first[n] {
			n++
		}
		p = n
	}
	for i := range l.ents {
		e := &l.ents[i]
		var a [8]byte
		if k := l.key(e); len(k) > p {
			copy(a[:], k[p:])
		}
		e.abbr = binary.BigEndian.Uint64(a[:])
	}
}

// createTable creates the file name in the store's ingest directory and
// returns a writer of a table with the options of the tables Pebble writes
// itself, and the file's path. Closing the writer flushes and syncs it.
func (s *Store) createTable(name string) (*sstable.Writer, string, error) {
	dir := s.fs.PathJoin(s.dir, ingestDir)
	if err := s.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	path := s.fs.PathJoin(dir, name)
	f, err := s.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, "", err
	}
	return sstable.NewWriter(objstorageprovider.NewFileWritable(f), s.writerOpts), path, nil
}

// Reset drops the writes collected since the last Ingest, keeping the
// pages for the next ones.
func (l *Loader) Reset() {
	for i := range l.pages {
		l.pages[i] = l.pages[i][:0]
	}
	l.cur, l.size, l.ents = 0, 0, l.ents[:0]
}

// Close releases the loader's memory, dropping writes not yet ingested.
func (l *Loader) Close() { l.pages, l.cur, l.size, l.ents = nil, 0, 0, nil }
