// Package budget divides a process's memory among valora's consumers of
// memory: the decoded cache, the write set, Pebble's block cache and
// memtables, fetched and queued records, the known-ids filters and the
// commit cycles' working memory. [Budget.Plan] is pure arithmetic over the
// limit and the sizes an operator fixed; [CgroupLimit] reads the limit a
// container runs under; the Replay constants are a replay's own budget.
//
// The package starts no goroutine and holds no lock.
package budget
