package processor

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// clientRole is what a Kafka client of the processor is for. Every client
// the processor creates is built by clientOpts from its role, so the Kafka
// settings can be read here in one place.
type clientRole int

const (
	// roleGroup is the group consumer (Run's client): it joins the group
	// with the co-partition balancer, reads the inputs read_committed,
	// and, in at-least-once mode, produces the tasks' cycles.
	roleGroup clientRole = iota
	// roleTxn is the instance's transactional producer (exactly-once
	// mode): it produces every task's cycles and commits their offsets.
	roleTxn
	// roleRestore is a task's restore reader: it reads one changelog
	// partition from the store's position to its end.
	roleRestore
	// roleStandby is a standby's reader: it follows one changelog
	// partition for as long as the standby runs.
	roleStandby
	// roleAdmin is setUp's client: metadata, topic checks and creation,
	// the broker's API versions. It consumes and produces nothing.
	roleAdmin
)

// txnRetryBackoff is the transactional producer's backoff before it
// retries a request, short at first: since KIP-890 a produce sent right
// after the previous transaction's EndTxn may be refused with
// CONCURRENT_TRANSACTIONS until the coordinator has written that
// transaction's markers, a matter of milliseconds, and each refusal holds
// the whole round and every task in it (BENCHMARKS.md, one transaction per
// instance).
func txnRetryBackoff(fails int) time.Duration {
	d := 10 * time.Millisecond << min(max(fails-1, 0), 7)
	d = min(d, time.Second)
	return d - time.Duration(rand.Int64N(int64(d)/5))
}

// clientOpts returns the options of a client for role, then extra (the
// call's own: what to consume, the transactional id), which take
// precedence. Config.ClientOpts (security, logger, dialers; a replay's
// fetch sizes) go into every client after the role's settings, so they
// take precedence over them, except over the transactional producer's
// client id and hooks, which name it in the client metrics.
//
// What differs by role, and why:
//   - Only the clients that produce (group, txn) take the producer
//     settings (producerOpts); only the group consumer has the group, its
//     callbacks and its fetch bounds (fetchOpts).
//   - The readers of the inputs and of the changelog read read_committed
//     and keep control records: a transaction marker takes an offset, and
//     a task's position, or a restore's, must reach a partition's end
//     offset when it ends with one.
//   - Config.Hooks go on the group consumer and the transactional
//     producer, not on the readers and the setup client: a hook that
//     registers metrics per client (kprom) tells those two apart by their
//     client ids, "valora" and "valora-txn".
//   - The restore reader fetches large: a task waits for its restore,
//     which reads one partition to its end. A standby's reader fetches a
//     quarter of that: it follows new cycles, beside the instance's own
//     tasks, and no task waits for it.
//   - The clients that ask for metadata when they start (group, txn,
//     setup) wait at most metadataMinAge between two requests.
func (p *Processor) clientOpts(role clientRole, extra ...kgo.Opt) []kgo.Opt {
	c := &p.cfg
	var opts, last []kgo.Opt
	switch role {
	case roleGroup:
		opts = []kgo.Opt{
			kgo.ConsumerGroup(c.Group),
			kgo.SessionTimeout(c.SessionTimeout),
			kgo.ConsumeTopics(p.inputTopics()...),
			kgo.Balancers(p.balancers()...),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.KeepControlRecords(),
			// State is the source of truth for positions; Kafka
			// commits are kept only so that lag tooling works.
			kgo.AutoCommitMarks(),
			kgo.AutoCommitInterval(time.Second),
			kgo.BlockRebalanceOnPoll(),
			kgo.OnPartitionsAssigned(p.onAssigned),
			kgo.OnPartitionsRevoked(p.onRevoked),
			kgo.OnPartitionsLost(p.onLost),
			kgo.AdjustFetchOffsetsFn(p.adjustOffsets),
			kgo.ClientID("valora"),
		}
		opts = append(opts, p.fetchOpts()...)
		if c.InstanceID != "" {
			opts = append(opts, kgo.InstanceID(c.InstanceID))
		}
		if len(c.Hooks) > 0 {
			hooks := make([]kgo.Hook, len(c.Hooks))
			copy(hooks, c.Hooks)
			opts = append(opts, kgo.WithHooks(hooks...))
		}
		opts = append(opts, p.producerOpts()...)
	case roleTxn:
		opts = append(p.producerOpts(), kgo.RetryBackoffFn(txnRetryBackoff))
		last = []kgo.Opt{kgo.ClientID("valora-txn"), kgo.WithHooks(c.Hooks...)}
	case roleRestore:
		opts = []kgo.Opt{
			kgo.SeedBrokers(c.Brokers...),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.KeepControlRecords(),
			kgo.FetchMaxBytes(64 << 20),
			kgo.FetchMaxPartitionBytes(32 << 20),
			kgo.ClientID("valora-restore"),
		}
	case roleStandby:
		opts = []kgo.Opt{
			kgo.SeedBrokers(c.Brokers...),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.KeepControlRecords(),
			kgo.FetchMaxBytes(16 << 20),
			kgo.FetchMaxPartitionBytes(8 << 20),
			kgo.ClientID("valora-standby"),
		}
	case roleAdmin:
		opts = []kgo.Opt{
			kgo.SeedBrokers(c.Brokers...),
			kgo.MetadataMinAge(metadataMinAge),
		}
	}
	opts = append(opts, c.ClientOpts...)
	opts = append(opts, last...)
	return append(opts, extra...)
}

// producerOpts are the settings of the clients that produce: the group
// consumer (outputs in at-least-once mode) and the transactional producer.
//
// Batches are compressed with snappy, which franz-go encodes with an
// assembly encoder (lz4's is pure Go): a workload that produces three tier
// changes per input event compresses a lot, and snappy was the faster for
// a few per cent more bytes (BENCHMARKS.md).
func (p *Processor) producerOpts() []kgo.Opt {
	c := &p.cfg
	return []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.RecordPartitioner(newTaskPartitioner(c.Topics.Changelog)),
		kgo.ProducerLinger(2 * time.Millisecond),
		kgo.ProducerBatchCompression(kgo.SnappyCompression(), kgo.NoCompression()),
		// A client waits this long between metadata requests, also when
		// it needs one to start: a group consumer just assigned its
		// partitions needs one to load their offsets, a few ms after the
		// one it joined with, and the tasks need the new changelog's, so
		// with franz-go's default a new instance would fetch nothing for
		// that long.
		kgo.MetadataMinAge(metadataMinAge),
	}
}

// metadataMinAge is the least time between two metadata requests of a
// client (see producerOpts).
const metadataMinAge = 250 * time.Millisecond

// fetchOpts bound the group consumer's fetches by Config.FetchBytes: two
// requests at a time of a tenth each, so that what the client buffers and
// what waits in the tasks' channels (four polls each) stay within it; and
// a partition's part of a fetch by half its queue's share of
// Config.QueueBytes, since a queue paused below one fetch would drop
// (and fetch again) every fetch it gets.
func (p *Processor) fetchOpts() []kgo.Opt {
	c := &p.cfg
	if c.Replay != nil {
		// A replay's fetches are bounded, since the records fetched and
		// not yet merged are most of its heap, and the broker holds one
		// that finds nothing new only briefly: the records are all there,
		// and the default wait left the last partitions of a replay idle
		// between fetches (BENCHMARKS.md).
		return []kgo.Opt{
			kgo.FetchMaxBytes(16 << 20),
			kgo.FetchMaxPartitionBytes(256 << 10),
			kgo.MaxConcurrentFetches(2),
			kgo.FetchMaxWait(100 * time.Millisecond),
		}
	}
	part := c.QueueBytes / int64(max(1, p.partitions)*numSources) / 2
	return []kgo.Opt{
		kgo.FetchMaxBytes(int32(min(c.FetchBytes/10, math.MaxInt32))),
		kgo.MaxConcurrentFetches(2),
		kgo.FetchMaxPartitionBytes(int32(min(max(part, minPartitionFetch), maxPartitionFetch))),
	}
}

// The bounds of a partition's part of a fetch: franz-go's default at most,
// and at least a few batches.
const (
	minPartitionFetch = 64 << 10
	maxPartitionFetch = 1 << 20
)
