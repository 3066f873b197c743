// Package changelog is the record format of valora's changelog topic and
// the one code that applies its records to a store (Restorer): a task's
// restore, a standby copy and the tools and tests that read a changelog's
// state all go through it. Reading the topic from Kafka is the caller's
// part; the package imports the state package and no other of the project.
//
// # Format
//
// The changelog topic backs the state of every task: partition p holds what
// task p committed, and only the current owner of task p writes to it. Each
// commit cycle appends, in this order, one record per changed customer and
// one checkpoint record:
//
//	key 'c' | customer id   value: format(1) | cycle(8 BE) | Customer (Avro)
//	key 'c' | customer id   value: none (a tombstone: the customer was erased);
//	                        header valora.cycle: format(1) | cycle(8 BE)
//	key 'k'                 value: format(1) | cycle(8 BE) | stream time(8 BE) |
//	                               count(uvarint) | (len(uvarint) | topic | next offset(8 BE))... |
//	                               since(8 BE)
//
// The checkpoint carries the task's input positions and stream time after
// the cycle, so the changelog alone rebuilds a task: its customers and where
// to resume reading the inputs.
//
// # Applying records
//
// The topic is compacted: Kafka keeps only the last record of each key (and
// a tombstone for delete.retention.ms), so older checkpoints disappear and
// the customer records that survive them no longer sit next to their own
// checkpoint. A restore therefore applies every customer record that a
// later checkpoint follows, whatever its cycle, and skips only the tail
// after the last checkpoint: in exactly-once mode read_committed shows no
// such tail, and in at-least-once mode it is what a crash in the middle of
// a produce left. The inputs it came from are read again from the last
// checkpoint's positions; and since those records stay in the log, the
// task that skipped them first publishes a correction cycle, with the
// stored value (or a tombstone) of each customer the tail named
// (Restorer.Tail), so that no restore, before or after compaction, can
// apply the tail.
//
// A cycle's high 32 bits name the task's incarnation (each task object
// draws them at random; the low half counts its cycles), and a checkpoint
// carries since: the changelog offset at which its incarnation took the
// task over (the end its restore read to). At a checkpoint, a buffered
// record of another incarnation at or past since is dropped: it is a late
// write of a previous owner that its restore never saw (in at-least-once
// mode a killed process's last produce can reach the broker after the new
// owner has read the log), and applying it would bring back an older state.
// A checkpoint without since (written before it existed) applies all.
package changelog
