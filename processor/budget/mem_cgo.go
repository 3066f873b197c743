//go:build cgo

package budget

// With cgo, Pebble allocates its block cache and memtables with the C
// allocator, outside the Go heap: the Go memory limit does not count them.
func PebbleHeapShare(int64) int64 { return 0 }

// PebbleInGoHeap: Pebble's memory is outside the Go heap (Budget).
const PebbleInGoHeap = false
