package budget

import "time"

// A replay's budget, which is its own: a replay runs once, over records
// that are all there, and is bounded to stay under 1 GiB whatever the
// number of customers (BENCHMARKS.md, "Replay").
//
// Its write set holds the customers, encoded, and serves the replay's
// reads of them, so memory goes to it rather than to the block cache or a
// decoded cache: most hits of a cache were of customers the task changed
// last, which it holds decoded anyway. The Go heap's soft limit gives the
// collector room above the write set, which is most of the heap: at the
// limit the collector runs back to back. In a build without cgo Pebble's
// memory is in the Go heap, and the limit grows by it (PebbleHeapShare).
//
// A replay commits when a task's share of the write set is full, after
// ReplayCommitRecords records, or every ReplayCommitInterval, which bounds
// what an interrupted replay does again: the rarer the commits, the fewer
// the writes, since each writes every customer changed since the last.
const (
	ReplayWriteSetBytes   = 384 << 20
	ReplayBlockCacheBytes = 32 << 20
	ReplayMemTableBytes   = 32 << 20
	ReplayGoLimit         = 804 << 20
	ReplayCacheCustomers  = 0
	ReplayCommitRecords   = 2_000_000
	ReplayCommitInterval  = 10 * time.Second
)
