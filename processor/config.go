package processor

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/processor/budget"
	"valora/processor/score"
	"valora/schemas"
	"valora/state"
)

// Guarantee names the delivery guarantee of the outputs.
type Guarantee string

// The guarantees. State always counts every input record exactly once; the
// guarantee is about the output topics.
const (
	// AtLeastOnce produces outputs and changelog records before the state
	// and offsets that cover them become durable in the store: a crash may
	// repeat an output, always with the same event_id and version.
	AtLeastOnce Guarantee = "at_least_once"
	// ExactlyOnce (the default of a daemon) commits a task's outputs, its
	// changelog records and its input positions in one Kafka transaction
	// of the instance's transactional producer, shared with the other
	// tasks due in the same round and fenced by the group generation; the
	// store receives the cycle only after the transaction committed. A
	// read_committed consumer sees every output once.
	ExactlyOnce Guarantee = "exactly_once"
)

// Write set bounds (Config.WriteSetBytes).
const (
	DefaultWriteSetBytes int64 = budget.DefaultWriteSetBytes
	MaxWriteSetBytes     int64 = 64 << 30
)

// Defaults of the other memory bounds (Config.FetchBytes, QueueBytes,
// KnownIDsBytes).
const (
	DefaultFetchBytes    int64 = 64 << 20
	DefaultQueueBytes    int64 = 64 << 20
	DefaultKnownIDsBytes int64 = 64 << 20
)

// TimeMode chooses what moves a task's stream time.
type TimeMode string

// The time modes.
const (
	// TimeLive: event time, and the wall clock (minus the allowed
	// lateness) once a task has been caught up for the idle timeout, so
	// that deadlines pass even when no record arrives.
	TimeLive TimeMode = "live"
	// TimeEvent: event time only; the same input always gives the same
	// timer firings. Replays use it.
	TimeEvent TimeMode = "event"
)

// Topics names the topics the processor reads and writes.
type Topics struct {
	Interactions string
	Purchases    string
	TierChanges  string
	DeadLetter   string
	// Erasures is the input topic of ErasureRequest records, keyed by
	// customer id and co-partitioned with the other inputs
	// ("customer-erasures" in DefaultTopics); empty for none. valora
	// creates it with the inputs' partition count when it is missing,
	// except in a replay, which reads it only if it exists.
	Erasures string
	// Profiles is the compacted output topic of CustomerProfile records
	// ("customer-profiles" in DefaultTopics); empty for none. Each commit
	// cycle publishes, in its transaction, the profile of every customer it
	// changed and a tombstone for every customer it erased. valora creates
	// it when it is missing (compacted, with the inputs' partition count
	// and the changelog's max.compaction.lag.ms), and refuses one whose
	// cleanup.policy lacks compact. In a replay it is the shadow topic of
	// the replay's profiles.
	Profiles string
	// Changelog is the compacted topic that backs the state: one record
	// per changed customer per commit, and one checkpoint record per
	// commit with the task's input positions. Default "<group>-changelog".
	// A replay has none.
	Changelog string
}

// DefaultTopics returns the topic names of the contract.
func DefaultTopics() Topics {
	return Topics{
		Interactions: "interactions",
		Purchases:    "purchases",
		TierChanges:  "customer-tier-changes",
		DeadLetter:   "valora-dlq",
		Erasures:     "customer-erasures",
		Profiles:     "customer-profiles",
	}
}

// Config is everything a Processor needs. The caller owns Store and Codec:
// it opens them before New and closes them after Run returns.
type Config struct {
	// Brokers is the Kafka bootstrap list. Required.
	Brokers []string
	// Group is the consumer group id; every instance of one deployment
	// shares it. Required.
	Group  string
	Topics Topics

	// Guarantee of the outputs. Default ExactlyOnce; a replay is always
	// AtLeastOnce.
	Guarantee Guarantee
	// InstanceID, if set, makes this instance a static member of the group
	// (KIP-345): a restart within the session timeout gets its tasks back
	// without a rebalance. Each instance needs its own.
	InstanceID string
	// StandbyReplicas is how many other members keep a standby copy of
	// each task (standby.go): a warm store that follows the task's
	// changelog, so that when the task moves to one of them its restore
	// reads only the last cycles. Default 0 (none); needs a changelog.
	StandbyReplicas int

	Policy *score.Policy
	Codec  *schemas.Codec
	Store  *state.Store

	// CommitInterval bounds how long an applied record waits before its
	// effects become durable. Default 100ms.
	CommitInterval time.Duration
	// CommitRecords forces a commit once a task has applied this many
	// records since its last commit. Default 20000.
	CommitRecords int
	// WriteSetBytes bounds the memory of the customers changed since their
	// task's last commit, across all tasks of this instance (each task gets
	// its share, as for CacheCustomers): a task holds them encoded until its
	// commit writes each once, and commits when its share is full. A larger
	// write set lets a cycle coalesce more changes per customer: a replay
	// runs with hundreds of MiB and a long CommitInterval. Default 64 MiB.
	WriteSetBytes int64
	// CacheCustomers bounds the number of customers kept decoded in memory
	// across all tasks of this instance. Default 1,000,000; 0 keeps the
	// default, negative disables the cache.
	CacheCustomers int
	// FetchBytes bounds the input records fetched from Kafka and not yet
	// queued in their task: the group consumer fetches at most a tenth of
	// it per request, two requests at a time, and a task's channel holds
	// up to four polls. Default DefaultFetchBytes. (A replay's fetch
	// options, in ClientOpts, take precedence.)
	FetchBytes int64
	// QueueBytes bounds the records queued in the tasks, waiting for the
	// merge (live mode): each source of each task gets its share, and
	// its partition is paused while its queue holds more. Default
	// DefaultQueueBytes.
	QueueBytes int64
	// KnownIDsBytes bounds the known-ids filters of all tasks (each task
	// gets its share, as for CacheCustomers): past it a filter answers
	// "maybe" more often, and more lookups of new customers read the
	// store. Default DefaultKnownIDsBytes.
	KnownIDsBytes int64
	// InputPartitioner is how the producers of the input topics place keys
	// (see Partitioner). A record in another partition than the one its
	// key maps to is dead-lettered as wrong_partition; the HTTP lookup
	// finds a customer's task with it. Default PartitionerMurmur2.
	InputPartitioner Partitioner
	// MaxClockSkew is how far in the future (by the wall clock) an event
	// time may be before the record is dead-lettered. Default 24h.
	MaxClockSkew time.Duration
	// Time chooses what moves stream time: TimeLive (default) lets an idle,
	// caught-up task follow the wall clock; TimeEvent uses event time only.
	Time TimeMode
	// AllowedLateness is how far behind stream time a record may be before
	// it counts as late; in live mode an idle task's stream time trails the
	// wall clock by this much. Default 1h. A late record is still applied.
	AllowedLateness time.Duration
	// IdleTimeout is how long a task must be caught up (its position at
	// the end of both input partitions) before its stream time follows the
	// wall clock, in live mode. Default 30s.
	IdleTimeout time.Duration
	// SessionTimeout is how long the group waits for a silent member
	// (one that crashed) before it moves its tasks. Default 45s.
	SessionTimeout time.Duration
	// TransactionTimeout bounds the instance's transaction in exactly-once
	// mode: the broker aborts one left open longer. It is also how long an
	// instance that died with a transaction open, and does not restart,
	// holds the new owners of its tasks (see committer). Default 60s.
	TransactionTimeout time.Duration
	// ShutdownTimeout bounds how long Run takes to stop once its context
	// ends: tasks that have not finished their commit cycle by then are
	// abandoned (the state stays at the last durable cycle, as after a
	// crash) and Run returns ErrShutdownAbandoned. Default 20s, under the
	// 30s a Kubernetes pod gets after SIGTERM.
	ShutdownTimeout time.Duration
	// StallTimeout is how long the poll loop may wait to hand records to
	// a task, or a task go without progress (records handled, a commit
	// cycle finished, a changelog poll restored), before /healthz reports
	// the instance wedged. An idle task completes a cycle every
	// CommitInterval, and a commit gives up after a minute, so only a
	// wait that nothing will end lasts this long. Default 2m.
	StallTimeout time.Duration
	// CreateTopics creates missing output topics with the inputs'
	// partition count. Default false: missing topics are an error.
	CreateTopics bool

	// Logger receives lifecycle logs; nothing is logged per record.
	// Default: discard.
	Logger *slog.Logger
	// Registerer receives the processor's metrics. Default: a private
	// registry that nobody scrapes.
	Registerer prometheus.Registerer
	// Now is the wall clock (validation of far-future timestamps). Default
	// time.Now.
	Now func() time.Time
	// ClientOpts are appended to the options of every Kafka client the
	// processor creates (the group consumer, the transactional producer,
	// restore and standby readers, the client that checks the topics):
	// TLS, SASL, logger, dialers in tests. They take precedence over the
	// processor's settings, except the transactional producer's client id
	// and hooks.
	ClientOpts []kgo.Opt
	// Hooks are installed on the group consumer's client and, in
	// exactly-once mode, on the instance's transactional producer (not on
	// restore and standby readers): a hook that registers metrics per
	// client must tell the two apart (kprom.WithClientLabel).
	Hooks []kgo.Hook
	// AdvertiseURL is the base URL (http or https, host and port, no path)
	// at which other instances and clients reach this instance's HTTP API,
	// such as http://valora-0.valora:8080. The instance advertises it to
	// the group in its join metadata, so that any instance asked for a
	// customer it does not own names the owner. Empty: not advertised.
	AdvertiseURL string
	// Replay, if set, makes this a bounded replay instead of a daemon (see
	// Replay). Time must then be TimeEvent (the default for a replay).
	Replay *Replay
	// OnCommit, if set, is called by a task after each durable commit with
	// the number of records it covered and the time from the earliest of
	// their fetches to durability. Benchmarks use it; it must be fast.
	OnCommit func(records int, latency time.Duration)

	// restoreIngestAt is the number of changelog records from which a
	// restore ingests sorted tables instead of writing batches; 0 means
	// restoreIngestRecords. Tests lower it to take that path.
	restoreIngestAt int64
}

// Replay bounds a run to fixed offset ranges of the inputs and makes its
// result a function of the topics' contents alone:
//
//   - each task starts at Start (when its store has no offset for the
//     partition) and stops at End, exclusive; Run returns nil once every
//     task has reached End on both inputs and committed;
//   - the two inputs of a task are merged strictly: the next record
//     applied is the one with the smallest (event time, topic, offset)
//     among the head records of both inputs, and a task waits for a record
//     of each input that has not reached End before it applies anything;
//     so the order, and with it every timer firing and tier change, does
//     not depend on how the records were fetched or on restarts;
//   - stream time is event time only.
//
// Interrupted (crash, SIGTERM) and started again on the same store with
// the same bounds, a replay resumes from its last commit and ends with the
// same state and the same outputs as an uninterrupted one (outputs may
// repeat, as in at-least-once mode, with the same event ids).
type Replay struct {
	// Start and End are offsets by topic and partition. A partition
	// missing from Start starts at offset 0; one missing from End is
	// empty.
	Start, End map[string]map[int32]int64
	// NoOutput builds state only: no tier changes or profiles are produced.
	NoOutput bool
	// NoDeadLetter counts rejected records (metrics) without producing
	// them to a dead-letter topic.
	NoDeadLetter bool
}

func (c *Config) setDefaults() {
	if c.Guarantee == "" {
		c.Guarantee = ExactlyOnce
		if c.Replay != nil {
			c.Guarantee = AtLeastOnce
		}
	}
	d := DefaultTopics()
	if c.Topics.Interactions == "" {
		c.Topics.Interactions = d.Interactions
	}
	if c.Topics.Purchases == "" {
		c.Topics.Purchases = d.Purchases
	}
	if c.Topics.TierChanges == "" {
		c.Topics.TierChanges = d.TierChanges
	}
	if c.Topics.DeadLetter == "" {
		c.Topics.DeadLetter = d.DeadLetter
	}
	if c.Topics.Changelog == "" && c.Replay == nil && c.Group != "" {
		c.Topics.Changelog = c.Group + "-changelog"
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = 100 * time.Millisecond
	}
	if c.CommitRecords == 0 {
		c.CommitRecords = 20000
	}
	if c.CacheCustomers == 0 {
		c.CacheCustomers = 1_000_000
	}
	if c.WriteSetBytes == 0 {
		c.WriteSetBytes = DefaultWriteSetBytes
	}
	if c.FetchBytes == 0 {
		c.FetchBytes = DefaultFetchBytes
	}
	if c.QueueBytes == 0 {
		c.QueueBytes = DefaultQueueBytes
	}
	if c.KnownIDsBytes == 0 {
		c.KnownIDsBytes = DefaultKnownIDsBytes
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = 24 * time.Hour
	}
	if c.InputPartitioner == "" {
		c.InputPartitioner = PartitionerMurmur2
	}
	if c.Time == "" {
		c.Time = TimeLive
		if c.Replay != nil {
			c.Time = TimeEvent
		}
	}
	if c.AllowedLateness == 0 {
		c.AllowedLateness = time.Hour
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 30 * time.Second
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 45 * time.Second
	}
	if c.TransactionTimeout == 0 {
		c.TransactionTimeout = time.Minute
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 20 * time.Second
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = 2 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate applies defaults and reports every invalid field, including
// missing dependencies (Policy, Codec, Store).
func (c *Config) Validate() error {
	err := c.ValidateSettings()
	var errs []error
	if c.Policy == nil {
		errs = append(errs, errors.New("policy: required"))
	}
	if c.Codec == nil {
		errs = append(errs, errors.New("codec: required"))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("store: required"))
	}
	return errors.Join(append([]error{err}, errs...)...)
}

// ValidateSettings applies defaults and checks every plain setting, but not
// the dependencies that a caller opens (Codec, Store): a command calls it
// before opening anything.
func (c *Config) ValidateSettings() error {
	c.setDefaults()
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one broker address is required"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("group: a consumer group id is required"))
	}
	switch c.Guarantee {
	case AtLeastOnce:
	case ExactlyOnce:
		if c.Replay != nil {
			errs = append(errs, errors.New("guarantee: a replay is at_least_once (it builds a new state directory and keeps no changelog)"))
		}
	default:
		errs = append(errs, fmt.Errorf("guarantee: %q is not one of at_least_once, exactly_once", c.Guarantee))
	}
	t := c.Topics
	names := map[string]string{}
	for _, f := range [...]struct{ field, name string }{
		{"topics.interactions", t.Interactions}, {"topics.purchases", t.Purchases},
		{"topics.tier_changes", t.TierChanges}, {"topics.dead_letter", t.DeadLetter},
		{"topics.changelog", t.Changelog}, {"topics.erasures", t.Erasures},
		{"topics.profiles", t.Profiles},
	} {
		if f.name == "" {
			continue
		}
		if other, dup := names[f.name]; dup {
			errs = append(errs, fmt.Errorf("%s: topic %q is also used as %s", f.field, f.name, other))
		}
		names[f.name] = f.field
	}
	if c.CommitInterval < 0 {
		errs = append(errs, fmt.Errorf("commit_interval: %v must be positive", c.CommitInterval))
	}
	if c.AdvertiseURL != "" {
		u, err := url.Parse(c.AdvertiseURL)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("advertise_url: %w", err))
		case u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.Path != "" && u.Path != "/", u.RawQuery != "", u.User != nil:
			errs = append(errs, fmt.Errorf("advertise_url: %q: want http:// or https:// and a host (and port), no path, query or user", c.AdvertiseURL))
		}
	}
	if c.StandbyReplicas < 0 {
		errs = append(errs, fmt.Errorf("standby_replicas: %d must not be negative", c.StandbyReplicas))
	} else if c.StandbyReplicas > 0 && c.Topics.Changelog == "" {
		errs = append(errs, errors.New("standby_replicas: standby copies follow the changelog, and there is none (a replay)"))
	}
	if c.CommitRecords < 0 {
		errs = append(errs, fmt.Errorf("commit_records: %d must be positive", c.CommitRecords))
	}
	if c.WriteSetBytes < 0 || c.WriteSetBytes > MaxWriteSetBytes {
		errs = append(errs, fmt.Errorf("write_set_bytes: %d must be between 0 (the default, %d) and %d", c.WriteSetBytes, DefaultWriteSetBytes, MaxWriteSetBytes))
	}
	for _, f := range [...]struct {
		name string
		v    int64
	}{{"fetch_bytes", c.FetchBytes}, {"queue_bytes", c.QueueBytes}, {"known_ids_bytes", c.KnownIDsBytes}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %d must not be negative (0: the default)", f.name, f.v))
		}
	}
	if err := validatePartitioner(c.InputPartitioner); err != nil {
		errs = append(errs, err)
	}
	if c.MaxClockSkew < 0 {
		errs = append(errs, fmt.Errorf("max_clock_skew: %v must be positive", c.MaxClockSkew))
	}
	switch c.Time {
	case TimeLive, TimeEvent:
	default:
		errs = append(errs, fmt.Errorf("time: %q is not one of live, event", c.Time))
	}
	if c.Replay != nil && c.Topics.Changelog != "" {
		errs = append(errs, errors.New("topics.changelog: a replay keeps no changelog"))
	}
	if c.Replay != nil && c.Time != TimeEvent {
		errs = append(errs, fmt.Errorf("time: a replay moves stream time by event time only, not %q", c.Time))
	}
	if c.AllowedLateness < 0 {
		errs = append(errs, fmt.Errorf("allowed_lateness: %v must not be negative", c.AllowedLateness))
	}
	if c.SessionTimeout < 0 {
		errs = append(errs, fmt.Errorf("session_timeout: %v must be positive", c.SessionTimeout))
	}
	if c.TransactionTimeout < time.Second {
		errs = append(errs, fmt.Errorf("transaction_timeout: %v must be at least 1s", c.TransactionTimeout))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("shutdown_timeout: %v must be positive", c.ShutdownTimeout))
	}
	if c.StallTimeout < 0 || (c.StallTimeout > 0 && c.StallTimeout <= commitTimeout) {
		errs = append(errs, fmt.Errorf("stall_timeout: %v must be longer than a commit may wait for Kafka (%v)", c.StallTimeout, commitTimeout))
	}
	if c.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("idle_timeout: %v must not be negative", c.IdleTimeout))
	}
	return errors.Join(errs...)
}
