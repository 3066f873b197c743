//go:build cgo

package main

// With cgo, Pebble allocates its block cache and memtables with the C
// allocator, outside the Go heap: the Go memory limit does not count them.
func pebbleHeapShare(int64) int64 { return 0 }

// pebbleInGoHeap: Pebble's memory is outside the Go heap (memoryBudget).
const pebbleInGoHeap = false
