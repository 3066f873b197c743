// Package knownids is the filter of the customer ids a task's partition
// of the store may hold (Filter). A task's lookup that misses every
// in-memory place asks it before the store: an id it has never seen is a
// new customer, and the store is not read. A store read for an absent key
// is a seek in each memtable and a filter probe in each level, and every
// customer's first event is one.
//
// Its promise is no false negatives, which the task keeps by one
// invariant: every customer id the partition's store holds was added. The
// task adds each id its load scan reads and each id its lookup creates (a
// superset of those its commits write). Nothing else writes a task's
// customers while it runs: restores finish before load, and a standby
// replica's writes are loaded by the task that takes the partition over.
// An erased customer stays as a false positive, whose store read finds
// nothing. The task sizes it with its share of Config.KnownIDsBytes.
//
// The package imports no other package of the project.
package knownids
