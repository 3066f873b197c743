// Package state is valora's embedded store: a Pebble database that holds,
// for each Kafka partition number (a task), the records of the customers
// whose keys hash to that partition and the input offsets up to which those
// records are up to date. It also provides the in-memory cache of hot
// customers (Cache) and a Prometheus collector of Pebble's statistics
// (NewCollector).
//
// The package imports no other package of the project: customer values are
// opaque bytes to it, encoded and decoded by its callers.
//
// # Key layout
//
// Every key starts with a one-byte kind; partitioned kinds follow it with the
// partition as 4 bytes big-endian, then the rest (the Kind constants list
// every kind, including the one reserved for the changelog checkpoint):
//
//	'c' | partition | customerID          customer record
//	'o' | partition | topic               next offset to consume from topic
//	't' | partition | due | customerID    timer index entry (due: 8 bytes BE)
//	's' | partition                       task clock (stream time, timer digest)
//	'm' | name                            store metadata (the store format marker)
//
// The fixed-width partition makes each (kind, partition) a contiguous key
// range of its own: a scan of one partition never sees another, whatever the
// customer ids.
//
// Customer values are stored in a versioned envelope: one leading format
// byte (currently 1) before the caller's bytes. Reads strip it and refuse an
// unknown version with ErrUnknownValueVersion rather than hand back bytes
// they cannot vouch for. The store as a whole carries a format marker
// (StoreFormat); Open refuses a store written by a newer format.
//
// # Invariant: state and offsets move together
//
// The customer values and the input offsets of a partition change only
// together, in one Batch committed with Commit. Commit syncs the write-ahead
// log before returning (pebble.Sync), so once it returns the batch survives a
// process or machine crash, and after any crash either all of a batch is
// visible or none of it. Offsets(p) therefore always names exactly the input
// records whose effects the customers of p hold: a task restarts from those
// offsets and counts every record once. Nothing is written outside a batch
// except the format marker, and the store never holds effects that were not
// committed downstream first (the caller's commit cycle orders that).
//
// # File system and faults
//
// Options.FS is the file system the store lives on (nil: the operating
// system's): Pebble's files and the few this package handles itself (the
// tables a Loader writes before the store ingests them, the MANIFEST files
// Purge removes) all go through it, so that tests can run the store on a
// file system that injects faults (Pebble's errorfs) on the real disk.
//
// Every error of an operation on the store is an *Error, which names the
// store's directory once, then the operation and its cause (errors.Is
// finds syscall.ENOSPC and the like through it). The first failed write
// (a commit, an ingest) stops the store's writes for good: Pebble cannot
// go on after a failed write-ahead log write or sync, so every later write
// fails at once with the first cause, while reads go on. A commit that
// stalls behind flushes or compactions that keep failing (a full disk)
// fails too, rather than wait for the disk to be mended. A fault Pebble
// meets on its own goroutines where it cannot report it (a failed MANIFEST
// write in a flush or compaction) goes to Options.OnFatal, which ends the
// process. In every case the files stay consistent: reopened once the
// fault is mended, the store holds every batch whose Commit returned nil,
// and each batch whole or not at all.
//
// # Concurrency
//
// A Store is safe for concurrent use by the task goroutines of one instance.
// A Batch and a Cache are not: each task goroutine owns its own Batch and its
// own Cache, and keeps them for the life of the task. The cache is a read
// accelerator over values the task itself wrote; it is never the source of
// truth, and a task that loses its partition drops its cache.
package state
