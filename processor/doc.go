// Package processor is valora's consume → score → produce engine. It joins
// a Kafka consumer group over the two input topics, owns one task per
// assigned partition number, applies each record to the customer's state
// with the pure scoring rules of package score, publishes a TierChange when a
// customer's tier, churn flag, lifecycle stage or value class changes, and
// sends records it cannot apply to the dead-letter topic.
//
// # Tasks and ownership
//
// Partition p of the interactions topic and partition p of the purchases
// topic hold the same customers (both keyed by customer id, same partition
// count: checked at start, ErrNotCoPartitioned otherwise). They form task p.
// The group balancer (package group) assigns whole tasks and keeps a
// member's tasks where it can. It rebalances cooperatively (protocol
// "valora-copartition-v2"): a task that moves is left out of the first
// round, so that only it stops on its old owner, and the next round hands
// it over; the other tasks run on. The eager protocol
// "valora-copartition-v1" is offered second, for a group with members that
// know only it. With Config.StandbyReplicas, the leader
// also names, for each task, members that keep a standby copy of it: a
// store that follows the task's changelog (standby.go, through the
// restore's changelog.Restorer), so that the task's next owner, chosen
// among them, restores only the last cycles. One goroutine owns a task and its
// state, so the hot path takes no locks: the poll loop hands each task its
// fetched records over a channel, and a rebalance waits (BlockRebalanceOnPoll)
// until revoked tasks have drained what they were given and committed.
//
// A task's customers (customers.go) are found in pend (changed customers
// not yet encoded), its decoded cache, its write set, and only then the
// store; the type's doc comment states the one invariant that places a
// customer's current value in these layers. A task's load scans the
// partition's customers once (for the gauges, the cache and the timer
// index) and records every id in a Bloom filter (package knownids), to
// which it adds every customer it creates: a lookup the filter answers
// "absent" is a new customer, and skips the store read that would find
// nothing.
//
// Memory is bounded per instance, whatever the number of customers and
// partitions: each task takes its share (by the partition count) of
// CacheCustomers, WriteSetBytes, QueueBytes (its input queues, whose
// partitions it pauses past it) and KnownIDsBytes (its filter answers
// "maybe" more often past it), and the group consumer's fetches are
// bounded by FetchBytes. valora_memory_bytes shows each part (memory.go).
//
// # Commit cycle and guarantees
//
// A task applies records to a write set of changed customers (encoded in a
// pointer-free arena, writeset.go, where clean customers also stay while
// there is room) and collects its outputs. Every CommitInterval, after
// CommitRecords records, when its changed customers fill its share of
// WriteSetBytes (clean ones make way for them), and before it hands a task
// over, it commits:
//
//  1. send the outputs (tier changes, dead letters, and, with
//     Topics.Profiles, the profile of each changed customer and a
//     tombstone per erased one, each built and encoded once here), one
//     changelog record per changed customer and one checkpoint record (the task's input
//     positions and stream time) to Kafka, and wait until Kafka has them.
//     The task hands the cycle to its sink (txn.go), and does not know
//     the guarantee otherwise: with AtLeastOnce a producer, with
//     ExactlyOnce (the default) the instance's committer, which sends the cycles of every task
//     due in the same round in one transaction of the instance's
//     transactional producer (transactional id "<group>-<instance key>"),
//     with the tasks' input positions committed to the group in it; the
//     tasks of an exactly-once instance tick together, at multiples of
//     CommitInterval, so that a round holds them all;
//  2. write the changed customers, the next input offset of each topic and
//     the changelog position in one synced Pebble batch.
//
// Pebble never holds an effect Kafka does not. A crash after step 1 leaves
// the store one or more cycles behind the changelog; before a task reads any
// input it restores (changelog.go): it reads its changelog partition, with
// read_committed, from the store's changelog position (from the start if
// the store has none: a new instance or a lost disk), and hands the records
// to a changelog.Restorer, which applies the customer records that a
// checkpoint follows at that checkpoint, so state and input positions move
// together, and so a compacted changelog (only the last record of each key
// left) restores the same state. Package changelog holds the record format
// and that one restorer, which standbys and the tools that read a
// changelog's state use too.
// adjustOffsets waits for the restore, then starts each input at the stored
// position. Offsets are also committed to the group after each cycle (in
// the transaction, in exactly-once mode), for lag tooling and fencing;
// the state, not the group, is where a task starts from.
//
// Zombies are fenced by the group, as in KIP-447: the transaction's offset
// commit carries the member id and generation the tasks were assigned
// under, the coordinator refuses it from a member the group has moved past,
// and the round is aborted. A task's new owner, before it restores, waits
// until the group has no offset commit pending for the task's inputs
// (waitStable), so the old owner's last transaction is committed (and
// restored) or aborted; a read_committed consumer sees each tier change
// once. A round refused for a passing reason (a new generation, a moved
// coordinator) is aborted and sent again without the tasks abandoned
// meanwhile. With AtLeastOnce the
// cycle is not a transaction: a crash between the acknowledgement and the
// Pebble batch repeats the cycle's outputs with the same event_id (customer
// id and state version) and version, so consumers can drop repeats; the
// restore skips a tail no checkpoint follows, and the task publishes a
// correction cycle for the customers it named before it reads input. Within a partition,
// one customer's tier changes are published in version order. A task whose
// commit fails stops the processor (Run returns the error): its in-memory
// state holds effects Kafka refused, and a restart restores from the
// changelog. A replay keeps no changelog and is at-least-once.
//
// Every consumed record is either applied or dead-lettered, so
// valora_records_consumed_total = valora_records_applied_total +
// valora_records_dead_lettered_total once a cycle is committed. Stats
// returns these counts, and the others a report needs, as typed values.
//
// # Dead letters
//
// A dead-letter record keeps the original key and value and carries the
// headers valora.source.topic, valora.source.partition,
// valora.source.offset, valora.reason (a short code, also the metric label)
// and valora.error (a message). Reasons: the schemas.Reason codes for bytes
// that do not decode, and missing_customer_id, key_mismatch,
// wrong_partition, invalid_timestamp, future_timestamp, unknown_currency,
// amount_overflow and invalid_field for records that decode but fail
// validation, and
// duplicate_event for a repeat of an event_id in the customer's duplicate
// window (see score.Dedup). DeadLetterReasons lists them all, and the
// processor creates valora_records_dead_lettered_total for each input topic
// and reason at 0 when it starts (with the consumed, applied and late
// counters of each input), so that the first dead letter of a kind shows
// as an increase. A schema registry that cannot be reached is not a
// dead-letter reason: the task stops without committing, and the record is
// read again on restart.
//
// A record whose key maps to another partition than its own under
// Config.InputPartitioner (package partition; murmur2 by default, as
// Kafka's Java client and franz-go place keys; crc32 for producers that all
// use librdkafka's default) is dead-lettered as wrong_partition: applied,
// it would start a second state of a customer that another task owns, and
// the lookup would not find it. The first such record of a task is logged,
// with the likely cause. The check runs after the key check, so a record without a key (or
// with another key than its customer_id) stays missing_customer_id or
// key_mismatch.
//
// # Erasure
//
// An ErasureRequest on Topics.Erasures (co-partitioned with the inputs) is
// merged with the task's other records by requested_at, without moving
// stream time. The task drops the customer from its write set, cache and
// timer heap at once; the commit deletes its state and timer index entry
// and writes a changelog tombstone (no value, a valora.cycle header), and a
// last TierChange with cause ERASURE and no personal fields goes out with
// the cycle (score.Policy.ErasureChange). A later event of the same id
// starts a new customer. state.Purge removes the id from the store's files.
//
// # Policy
//
// Config.Policy is in force at start; SetPolicy replaces it while running.
// Each task switches at the end of a commit cycle, rebuilds its timer index
// under the new policy and re-evaluates, at its stream time, every customer
// last evaluated under another policy version; the changes carry cause
// POLICY_CHANGE (see timers.go). valora_policy_info{policy_version} is 1 for
// the policy in force.
//
// # Goroutines, owners and locks
//
// Run's goroutine is the poll loop: it polls the group client and hands
// each task its records over the task's channel. It owns the group client
// and the watchEnds goroutine (offset listings for lag, idle time and
// /readyz), and stops both before it returns. It alone writes the atomics
// that time its hand-offs (handing, handClock), which /healthz and the
// tasks' merges read. kgo's group goroutine calls
// onAssigned, onRevoked, onLost and the balancer's callbacks; they start
// and stop tasks and standbys. Each task runs one goroutine (task.run),
// started by onAssigned and stopped by stopPartitions, which waits for it;
// the task owns its state and its restore reader. In exactly-once mode
// Run also owns the committer's goroutine (committer.run), which owns the
// instance's transactional producer: it starts before the group client and
// stops after every task has stopped, since the tasks' last cycles go out
// through it; a task waits for its round's answer, or until it is
// abandoned. Each standby runs one goroutine (followChangelog), started
// under p.mu and stopped by whoever takes it out of p.standbys, who waits
// for it after releasing p.mu. The HTTP API (package httpapi) calls
// Stalled, Readiness, TaskOf, Customer, Policy and Owner (status.go) from
// the HTTP server's goroutines: they read atomics or the store, or take
// p.mu briefly; only Owner waits on the network, without a lock. Run
// returns only once every task has exited: it waits for the tasks it
// stops, and closing the group client waits for kgo's callbacks, which
// wait for the tasks they stop; so no task writes to the store once Run
// has returned, abandoned or not.
//
// Locks, in the order they may nest: Processor.mu (tasks, retiring,
// standbys, partitions, cancel, abandoned), then ownerCache.mu (the owners'
// URLs). Neither is ever held while waiting on a channel, another
// goroutine or the network: the poll loop copies the tasks it hands
// records to under p.mu and sends without it; a standby or task that must
// exit is taken out of its map under p.mu and waited for after; the owner
// lookup releases ownerCache.mu across DescribeGroups. So a task that
// fails (fail takes p.mu), a health probe, and kgo's callbacks never wait
// behind a blocked hand-off.
//
// # Faults
//
// A commit waits for Kafka for at most a minute (commitTimeout), and not
// at all once the task is abandoned: records are produced with the commit's
// context (produceAll), which a broker that stopped answering cannot
// outlast. A commit that fails stops the processor: Run returns the error,
// and a restart restores from the changelog. At shutdown the tasks finish
// their cycles within Config.ShutdownTimeout, or the processor abandons
// them (Processor.abandon) and Run returns ErrShutdownAbandoned: each task
// exits at its next step without starting a cycle, a commit waiting on
// Kafka (the sink's send, the committer's round, a slot for a large store
// batch) gives up, the committer ends no transaction any more, and no
// offsets go to the group. A cycle whose send has returned still goes to
// the store, unless it waits for a batch slot; one whose send gave up does
// not, and if Kafka has it after all the store is behind the changelog, as
// after a crash, and the next restore catches up. The task of a lost
// partition (onLost) is abandoned alone, the same way. The crash tests
// take this path too, at chosen steps of a cycle, through a sink that
// wraps the task's (Processor.newSink).
//
// /healthz reports a hand-off or a task that made no progress for
// Config.StallTimeout. Fetch errors that say the brokers cannot be reached
// are retried (the client reconnects); /readyz is 503 meanwhile. A store
// error (a *state.Error: a failed write, sync or read, a full disk) stops
// the task and the processor the same way: the store never holds an effect
// Kafka does not, so a restart on a mended disk restores what is missing
// from the changelog.
//
// # Order
//
// Within a task, records of one topic are applied in offset order, and the
// topics are merged by (event time, topic, offset) across fetches: a task
// holds one input's records back while another input is known to have more
// to read (task.waitFor), so a backlog is applied in event-time order
// however the fetches bring it. Records that arrive while the task is caught
// up are applied as they come; counts and sums do not depend on that
// interleaving, which intermediate tier changes are published can. A replay
// merges strictly: it waits for each input until its end offset.
//
// # Packages and clients
//
// The processor's pure parts and data structures are packages of their
// own, below it, each tested alone: group (the group protocol: balancer,
// member and assignment metadata, the plan of owners and standbys),
// changelog (the changelog's format and restorer), knownids (the tasks'
// filters of known ids), histogram (the histograms the tasks fill in
// batches) and partition (key to partition, as the producers place keys).
// The processor supplies them its state as values and functions: the
// balancer calls warmTasks and setStandbys. The HTTP API, package
// httpapi, sits beside the processor rather than below it: it declares the
// methods it needs (httpapi.Instance, which *Processor implements) and
// imports neither the processor nor the store; the command wires the two. Every Kafka client the
// processor creates (the group consumer, the transactional producer, the
// restore and standby readers, the setup client) is built by clientOpts
// (clients.go), which says what each role sets and why.
package processor
