//go:build !cgo

package budget

// Without cgo (the static release build), Pebble allocates its block cache
// and memtables in the Go heap: a Go memory limit must leave room for them
// (the store keeps at most two memtables).
func PebbleHeapShare(cacheBytes int64) int64 { return cacheBytes + 2*ReplayMemTableBytes }

// PebbleInGoHeap: Pebble's memory is in the Go heap (Budget).
const PebbleInGoHeap = true
