package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/plugin/kprom"

	"valora/processor"
	"valora/processor/budget"
	"valora/processor/httpapi"
	"valora/processor/score"
	"valora/schemas"
	"valora/state"
)

// scorerFlags are the flags of the scorer, shared by run, dev and bench.
type scorerFlags struct {
	brokers        string
	group          string
	stateDir       string
	policy         string
	interactions   string
	purchases      string
	tierChanges    string
	profiles       string
	deadLetter     string
	erasures       string
	httpAddr       string
	advertiseURL   string
	guarantee      string
	changelog      string
	instanceID     string
	standbys       int
	sessionTimeout time.Duration
	txnTimeout     time.Duration
	commitInterval time.Duration
	commitRecords  int
	// memoryLimit is --memory-limit: "" for the cgroup's limit (none
	// outside a cgroup with one), else a size; "0" for none.
	memoryLimit    string
	cacheCustomers optionalInt // unset: from the memory budget
	writeSetMiB    int         // 0: from the memory budget
	blockCacheMiB  int         // 0: from the memory budget, or the replay's with bulkLoad
	maxClockSkew   time.Duration
	partitioner    string
	timeMode       string
	lateness       time.Duration
	idleTimeout    time.Duration
	createTopics   bool
	// shutdownTimeout bounds the whole stop after SIGTERM (scorer.run).
	shutdownTimeout time.Duration
	stallTimeout    time.Duration
	bulkLoad        bool // state.Options.BulkLoad: replay and bench --replay
	registry        string
	logs            logFlags
	http            httpFlags
}

func (f *scorerFlags) register(fs *flag.FlagSet, defaultHTTP string) {
	t := processor.DefaultTopics()
	fs.StringVar(&f.brokers, "brokers", "127.0.0.1:9092", "comma-separated Kafka bootstrap brokers")
	fs.StringVar(&f.group, "group", "valora", "consumer group id shared by every instance of one deployment")
	fs.StringVar(&f.stateDir, "state-dir", "valora-state", "directory of the Pebble state store (one per instance)")
	fs.StringVar(&f.policy, "policy", "", "policy file (YAML); empty uses the built-in default policy")
	fs.StringVar(&f.interactions, "interactions-topic", t.Interactions, "input topic of Interaction records")
	fs.StringVar(&f.purchases, "purchases-topic", t.Purchases, "input topic of Purchase records (co-partitioned with interactions)")
	fs.StringVar(&f.tierChanges, "tier-changes-topic", t.TierChanges, "output topic of TierChange records")
	fs.StringVar(&f.deadLetter, "dlq-topic", t.DeadLetter, "dead-letter topic for records that cannot be applied")
	fs.StringVar(&f.profiles, "profiles-topic", t.Profiles, "compacted output topic of CustomerProfile records: each changed customer's profile once per commit cycle, a tombstone on erasure (created compacted if missing); empty: no profiles")
	fs.StringVar(&f.erasures, "erasures-topic", t.Erasures, "input topic of ErasureRequest records (co-partitioned with the inputs; created if missing); empty: no erasure requests")
	fs.StringVar(&f.httpAddr, "http-addr", defaultHTTP, "address of the HTTP server (/metrics, /healthz, /readyz, /v1/customers/{id}); empty disables it")
	fs.StringVar(&f.advertiseURL, "advertise-url", "", "base URL other instances and clients reach this instance's HTTP server at (e.g. http://valora-0.valora:8080), advertised to the group so that any instance names a customer's owner (default: from --http-addr, with the host name when it listens on all interfaces; none for port 0)")
	fs.StringVar(&f.guarantee, "guarantee", string(processor.ExactlyOnce), "output guarantee: exactly_once (outputs, changelog and input positions commit in one Kafka transaction per instance and commit round; read the outputs with isolation.level=read_committed) or at_least_once (faster; a crash may repeat an output with the same event_id and version)")
	fs.StringVar(&f.changelog, "changelog-topic", "", "compacted topic that backs the state, one partition per task (default \"<group>-changelog\"; created if missing)")
	fs.StringVar(&f.instanceID, "instance-id", "", "static group membership id, unique per instance (e.g. the pod name): a restart within --session-timeout keeps its tasks without a rebalance")
	fs.IntVar(&f.standbys, "standby-replicas", 0, "how many other instances keep a warm copy of each task, following its changelog, so that a task whose instance fails moves to one that only reads the last cycles (needs as many more instances; each copy costs its share of disk and a changelog reader)")
	fs.DurationVar(&f.sessionTimeout, "session-timeout", 45*time.Second, "how long the group waits for a silent instance before moving its tasks")
	fs.DurationVar(&f.txnTimeout, "transaction-timeout", time.Minute, "longest the instance's transaction may stay open before the broker aborts it (exactly_once); also how long a dead instance that does not restart holds its tasks' new owners")
	fs.DurationVar(&f.commitInterval, "commit-interval", 100*time.Millisecond, "longest time an applied record waits to become durable")
	fs.IntVar(&f.commitRecords, "commit-records", 20000, "records per task after which a commit is forced")
	fs.StringVar(&f.memoryLimit, "memory-limit", "", memoryLimitUsage)
	fs.Var(&f.cacheCustomers, "cache-customers", "`customers` kept decoded in memory per instance, about 768 bytes each (0 or negative disables the cache; default: what --memory-limit leaves, or 1000000 without a limit)")
	fs.IntVar(&f.writeSetMiB, "write-set-mib", 0, writeSetUsage+" (0: from --memory-limit, at most 64)")
	fs.IntVar(&f.blockCacheMiB, "block-cache-mib", 0, blockCacheUsage)
	fs.DurationVar(&f.maxClockSkew, "max-clock-skew", 24*time.Hour, "event times further than this in the future are dead-lettered")
	f.registerPartitioner(fs)
	fs.StringVar(&f.timeMode, "time", string(processor.TimeLive), "what moves stream time: live (event time, and the wall clock minus --allowed-lateness once a task is caught up and idle) or event (event time only)")
	fs.DurationVar(&f.lateness, "allowed-lateness", time.Hour, "records this far behind stream time count as late (still applied); an idle task's stream time trails the wall clock by this much")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", 30*time.Second, "how long a task must be caught up before its stream time follows the wall clock (live mode)")
	fs.BoolVar(&f.createTopics, "create-topics", false, "create missing output topics with the inputs' partition count")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "longest time the process takes to exit after SIGTERM or SIGINT, whatever the brokers do: a commit that cannot finish by then is abandoned (the state stays at the last durable cycle, as after a crash) and the exit code is 3; keep it under the pod's termination grace period (a second signal exits at once)")
	fs.DurationVar(&f.stallTimeout, "stall-timeout", 2*time.Minute, "how long the poll loop or a task may make no progress (waiting on a broker that does not answer) before /healthz answers 503; more than the 1m a commit waits for Kafka")
	fs.StringVar(&f.registry, "schema-registry", "", "schema registry URL: write the Confluent framing and resolve unknown schema ids (default: Avro single-object encoding, no registry)")
	f.logs.register(fs)
	f.http.register(fs)
}

// inputPartitionerUsage documents --input-partitioner.
const inputPartitionerUsage = "how the producers of the input topics place keys in partitions: murmur2 (Kafka's Java client and franz-go, librdkafka's murmur2_random) " +
	"or crc32 (librdkafka's default, consistent_random: kcat, confluent-kafka-python, confluent-kafka-go), when every producer uses it; " +
	"a record in another partition than its key's is dead-lettered as wrong_partition, and the customer lookup finds a customer's task with it"

func (f *scorerFlags) registerPartitioner(fs *flag.FlagSet) {
	fs.StringVar(&f.partitioner, "input-partitioner", string(processor.PartitionerMurmur2), inputPartitionerUsage)
}

// producerPartitioner returns the options that make a client of valora's
// own (the traffic of dev and bench) place keys as --input-partitioner
// says, so that the scorer applies its records: none for murmur2, kgo's
// default.
func (f *scorerFlags) producerPartitioner() ([]kgo.Opt, error) {
	switch p := processor.Partitioner(f.partitioner); p {
	case processor.PartitionerMurmur2:
		return nil, nil
	case processor.PartitionerCRC32:
		return []kgo.Opt{kgo.RecordPartitioner(kgo.StickyKeyPartitioner(func(key []byte, n int) int {
			return int(p.Partition(key, n))
		}))}, nil
	}
	return nil, usagef("--input-partitioner %q: want %s or %s", f.partitioner, processor.PartitionerMurmur2, processor.PartitionerCRC32)
}

func (f *scorerFlags) topics() processor.Topics {
	return processor.Topics{
		Interactions: f.interactions, Purchases: f.purchases,
		TierChanges: f.tierChanges, DeadLetter: f.deadLetter,
		Erasures: f.erasures, Changelog: f.changelog, Profiles: f.profiles,
	}
}

// maxBlockCacheMiB bounds --block-cache-mib (64 GiB).
const maxBlockCacheMiB = 64 << 10

const blockCacheUsage = "Pebble block cache in MiB: the customers not in the decoded cache are read through it " +
	"(0: from --memory-limit for the daemon, at most 128; 32 for a replay, which reads most customers from its write set, see --write-set-mib)"

const memoryLimitUsage = "memory the process stays under, such as 1GiB or 512MiB (Kubernetes' plain bytes too): valora divides it among the decoded cache, " +
	"the write set, Pebble's block cache and memtables, fetched and queued records and the known-ids filters, and sets the Go memory limit from it; " +
	"--cache-customers, --write-set-mib and --block-cache-mib override their shares, and a combination that does not fit stops the program " +
	"(default: the container's cgroup memory limit when there is one; 0: no limit, the default sizes)"

// blockCache returns the block cache size in bytes a store opened for f
// gets: --block-cache-mib, or the replay's default, or 0 for the store's own
// default (state.DefaultCacheSize).
func (f *scorerFlags) blockCache() int64 {
	switch {
	case f.blockCacheMiB > 0:
		return int64(f.blockCacheMiB) << 20
	case f.bulkLoad:
		return budget.ReplayBlockCacheBytes
	}
	return 0
}

// cacheSize returns processor.Config.CacheCustomers for --cache-customers:
// 0 disables the cache, as a negative count does, where the Config's 0
// means its default of 1,000,000 (a replay given 0 held a million decoded
// customers, far past its memory bound).
func (f *scorerFlags) cacheSize() int {
	if f.cacheCustomers.v <= 0 {
		return -1
	}
	return f.cacheCustomers.v
}

// checkMemoryFlags validates --block-cache-mib and --write-set-mib; a
// replay (bulkLoad) sizes its write set by the flag alone, so it must be
// given one.
func (f *scorerFlags) checkMemoryFlags(replay bool) error {
	if f.blockCacheMiB < 0 || f.blockCacheMiB > maxBlockCacheMiB {
		return usagef("--block-cache-mib %d: want 0 (the default) to %d", f.blockCacheMiB, maxBlockCacheMiB)
	}
	least := 0
	if replay {
		least = 1
	}
	if maxMiB := int(processor.MaxWriteSetBytes >> 20); f.writeSetMiB < least || f.writeSetMiB > maxMiB {
		return usagef("--write-set-mib %d: want %d to %d", f.writeSetMiB, least, maxMiB)
	}
	return nil
}

// cgroupRoot and selfCgroup are where the cgroup memory limit is read.
const (
	cgroupRoot = "/sys/fs/cgroup"
	selfCgroup = "/proc/self/cgroup"
)

// memoryPlan divides --memory-limit (or the cgroup's limit) among the
// consumers of memory, with the flags that override their shares.
func (f *scorerFlags) memoryPlan() (budget.Sizes, budget.Budget, error) {
	b := budget.Budget{
		PebbleInGoHeap:    budget.PebbleInGoHeap,
		CacheCustomers:    f.cacheCustomers.v,
		CacheCustomersSet: f.cacheCustomers.set,
		WriteSetBytes:     int64(f.writeSetMiB) << 20,
		BlockCacheBytes:   int64(f.blockCacheMiB) << 20,
	}
	if f.memoryLimit == "" {
		self, _ := os.ReadFile(selfCgroup) // none: the root's limit
		n, err := budget.CgroupLimit(cgroupRoot, self)
		if err != nil {
			return budget.Sizes{}, b, usagef("--memory-limit: not given, and %v; give it", err)
		}
		b.Limit, b.LimitFrom = n, "the cgroup's limit"
	} else {
		n, err := budget.ParseBytes(f.memoryLimit)
		if err != nil {
			return budget.Sizes{}, b, usagef("--memory-limit %v", err)
		}
		b.Limit = n
	}
	s, err := b.Plan()
	if err != nil {
		return s, b, usageError{err}
	}
	return s, b, nil
}

// optionalInt is an int flag that records whether it was given (on the
// command line or in the environment).
type optionalInt struct {
	v   int
	set bool
}

func (o *optionalInt) String() string {
	if o == nil || !o.set {
		return ""
	}
	return strconv.Itoa(o.v)
}

func (o *optionalInt) Set(s string) error {
	v, err := strconv.ParseInt(s, 0, strconv.IntSize)
	if err != nil {
		return errors.New("parse error")
	}
	o.v, o.set = int(v), true
	return nil
}

// The write set (processor.Config.WriteSetBytes): the memory for customers
// changed since their task's last commit. A replay commits rarely and
// coalesces a customer's changes into one write per commit
// (BENCHMARKS.md); the daemon commits every --commit-interval, long before
// its write set fills.
const (
	defaultWriteSetMiB = int(processor.DefaultWriteSetBytes >> 20)
	replayWriteSetMiB  = int(budget.ReplayWriteSetBytes >> 20)
)

const writeSetUsage = "MiB of changed customers (encoded) held until their task's commit writes them, across all tasks; a task whose share is full of changed customers commits"

// scorer is a wired processor with its store, codec, registry and HTTP
// server. close releases them in reverse order.
type scorer struct {
	// mem is the memory budget's sizes (the daemon's; a replay's are its
	// own): run sets the Go memory limit from it.
	mem   budget.Sizes
	proc  *processor.Processor
	store *state.Store
	reg   *prometheus.Registry
	srv   *http.Server
	ln    net.Listener
	log   *slog.Logger
	// policyPath is the --policy file, reloaded on SIGHUP ("" for the
	// built-in default: nothing to reload).
	policyPath string
	// reload delivers reload requests (SIGHUP); tests send on it directly.
	reload chan os.Signal
	// shutdownTimeout bounds run's stop once ctx ends (0: unbounded);
	// past it, exit ends the process.
	shutdownTimeout time.Duration
	exit            func(code int)
}

// defaultShutdownTimeout is under the 30 s Kubernetes gives a pod between
// SIGTERM and SIGKILL.
const defaultShutdownTimeout = 25 * time.Second

// processorShare is the part of --shutdown-timeout the processor gets to
// finish its cycles; the rest is for the HTTP server and the store to close.
func processorShare(d time.Duration) time.Duration { return d * 4 / 5 }

// advertise returns the URL to advertise to the group: --advertise-url, or
// one derived from --http-addr (the host name for a wildcard address), or
// "" without an HTTP server or on a random port.
func (f *scorerFlags) advertise(tls bool) (string, error) {
	if f.advertiseURL != "" || f.httpAddr == "" {
		return f.advertiseURL, nil
	}
	host, port, err := net.SplitHostPort(f.httpAddr)
	if err != nil {
		return "", usagef("--http-addr %q: %v", f.httpAddr, err)
	}
	if port == "0" {
		return "", nil
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if host, err = os.Hostname(); err != nil {
			return "", fmt.Errorf("--advertise-url: no host name to derive it from: %w", err)
		}
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// loadPolicy reads the policy file, or returns the default policy.
func loadPolicy(path string) (*score.Policy, error) {
	if path == "" {
		return score.DefaultPolicy(), nil
	}
	p, err := score.LoadPolicy(path)
	if err != nil {
		return nil, usageError{fmt.Errorf("--policy %s: %w", path, err)}
	}
	return p, nil
}

// newCodec builds the codec: single-object framing, or Confluent framing
// with a registry.
func newCodec(ctx context.Context, registry string, t schemas.TopicNames) (*schemas.Codec, error) {
	opts := schemas.Options{Framing: schemas.FramingSingleObject, Topics: t}
	if registry != "" {
		cl, err := sr.NewClient(sr.URLs(registry))
		if err != nil {
			return nil, usageError{fmt.Errorf("--schema-registry %q: %w", registry, err)}
		}
		opts.Framing = schemas.FramingConfluent
		opts.Registry = cl
	}
	c, err := schemas.NewCodec(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("schemas: %w", err)
	}
	return c, nil
}

// newScorer validates the flags, then opens the store, the codec and the
// HTTP listener, in that order. Nothing is opened when a flag is invalid.
//
// Callers such as bench adjust the processor config through tune.
func newScorer(ctx context.Context, f *scorerFlags, log *slog.Logger, tune ...func(*processor.Config)) (*scorer, error) {
	pol, err := loadPolicy(f.policy)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	// The group consumer and the transactional producer each register
	// their metrics, told apart by client_id ("valora", "valora-txn").
	kp := kprom.NewMetrics("valora_kafka", kprom.Registry(reg), kprom.WithClientLabel())
	httpCfg, err := f.http.config()
	if err != nil {
		return nil, err
	}
	advertise, err := f.advertise(httpCfg.CertFile != "")
	if err != nil {
		return nil, err
	}
	if err := f.checkMemoryFlags(f.bulkLoad); err != nil {
		return nil, err
	}
	// A replay's sizes are its flags' (its write set, no decoded cache)
	// and the processor's defaults.
	mem := budget.Sizes{CacheCustomers: f.cacheSize(), WriteSetBytes: int64(f.writeSetMiB) << 20}
	if !f.bulkLoad {
		// A replay keeps its own budget (budget.ReplayGoLimit and its sizes).
		var b budget.Budget
		if mem, b, err = f.memoryPlan(); err != nil {
			return nil, err
		}
		log.Info("memory budget", "limit", budget.FormatBytes(b.Limit), "go_limit", budget.FormatBytes(mem.GoLimit),
			"cache_customers", mem.CacheCustomers, "write_set", budget.FormatBytes(mem.WriteSetBytes),
			"block_cache", budget.FormatBytes(mem.BlockCacheBytes), "memtable", budget.FormatBytes(mem.MemTableBytes),
			"fetch", budget.FormatBytes(mem.FetchBytes), "queues", budget.FormatBytes(mem.QueueBytes), "known_ids", budget.FormatBytes(mem.KnownIDsBytes))
		budget.Register(reg, b, mem)
	}
	cfg := processor.Config{
		AdvertiseURL:       advertise,
		Brokers:            splitList(f.brokers),
		Group:              f.group,
		Topics:             f.topics(),
		Guarantee:          processor.Guarantee(f.guarantee),
		InstanceID:         f.instanceID,
		StandbyReplicas:    f.standbys,
		SessionTimeout:     f.sessionTimeout,
		TransactionTimeout: f.txnTimeout,
		Policy:             pol,
		CommitInterval:     f.commitInterval,
		CommitRecords:      f.commitRecords,
		CacheCustomers:     mem.CacheCustomers,
		WriteSetBytes:      mem.WriteSetBytes,
		KnownIDsBytes:      mem.KnownIDsBytes,
		FetchBytes:         mem.FetchBytes,
		QueueBytes:         mem.QueueBytes,
		MaxClockSkew:       f.maxClockSkew,
		InputPartitioner:   processor.Partitioner(f.partitioner),
		Time:               processor.TimeMode(f.timeMode),
		AllowedLateness:    f.lateness,
		IdleTimeout:        f.idleTimeout,
		ShutdownTimeout:    processorShare(f.shutdownTimeout),
		StallTimeout:       f.stallTimeout,
		CreateTopics:       f.createTopics,
		Logger:             log,
		Registerer:         reg,
		ClientOpts:         []kgo.Opt{kgo.WithLogger(kslogAdapter{log})},
		Hooks:              []kgo.Hook{kp},
	}
	for _, fn := range tune {
		fn(&cfg)
	}
	// A bad flag stops us before any file or socket is touched.
	if err := errors.Join(cfg.ValidateSettings(), httpCfg.Validate()); err != nil {
		return nil, usageError{err}
	}
	if f.stateDir == "" {
		return nil, usagef("--state-dir: required")
	}
	// Stop now, with the reason, if the brokers cannot be reached or
	// refuse the TLS or SASL settings.
	if err := checkBrokers(ctx, cfg.Brokers, cfg.ClientOpts); err != nil {
		return nil, err
	}
	if f.shutdownTimeout < 0 {
		return nil, usagef("--shutdown-timeout: %v must be positive", f.shutdownTimeout)
	}
	s := &scorer{mem: mem, reg: reg, log: log, policyPath: f.policy, reload: make(chan os.Signal, 1),
		shutdownTimeout: f.shutdownTimeout, exit: os.Exit}
	codec, err := newCodec(ctx, f.registry, schemas.TopicNames{
		Interactions: f.interactions, Purchases: f.purchases, TierChanges: f.tierChanges,
		Erasures: cmp.Or(f.erasures, processor.DefaultTopics().Erasures), // a subject name only
		Profiles: f.profiles,
	})
	if err != nil {
		return nil, err
	}
	cfg.Codec = codec
	opts := state.Options{Dir: f.stateDir, Logger: log, BulkLoad: f.bulkLoad, CacheSize: f.blockCache(), OnFatal: stateFatal}
	if !f.bulkLoad {
		opts.CacheSize, opts.MemTableSize = mem.BlockCacheBytes, uint64(mem.MemTableBytes)
	}
	if f.bulkLoad {
		// A replay's memory is bounded whatever the number of customers
		// (BENCHMARKS.md).
		opts.MemTableSize = budget.ReplayMemTableBytes
	}
	s.store, err = state.Open(opts)
	if err != nil {
		return nil, err // names the directory
	}
	cfg.Store = s.store
	reg.MustRegister(state.NewCollector(s.store))
	s.proc, err = processor.New(cfg)
	if err != nil {
		s.store.Close()
		return nil, usageError{err}
	}
	if f.httpAddr != "" {
		s.ln, err = net.Listen("tcp", f.httpAddr)
		if err != nil {
			s.store.Close()
			return nil, fmt.Errorf("--http-addr %s: %w", f.httpAddr, err)
		}
		s.srv = httpCfg.Server(httpapi.Handler(s.proc, reg, &httpCfg))
		s.ln = httpCfg.Listener(s.srv, s.ln)
	}
	return s, nil
}

// stateFatal ends the process on a disk fault that Pebble meets on its own
// goroutines (a failed MANIFEST write in a flush or compaction), where no
// error can be returned and Pebble must not go on: with the exit code and
// the message of a failed state directory, as a failed commit gives.
func stateFatal(err error) {
	fmt.Fprintf(os.Stderr, "valora: %v\n", err)
	os.Exit(exitState)
}

// run serves HTTP and processes until ctx ends; then it shuts both down
// and closes the store. It always closes what newScorer opened.
func (s *scorer) run(ctx context.Context) error {
	httpErr := make(chan error, 1)
	if s.srv != nil {
		// Read before Serve: Serve configures HTTP/2 into TLSConfig.
		tls := s.srv.TLSConfig != nil
		go func() { httpErr <- s.srv.Serve(s.ln) }()
		s.log.Info("http listening", "addr", s.ln.Addr().String(), "tls", tls)
	} else {
		httpErr <- http.ErrServerClosed
	}
	rctx, stopReload := context.WithCancel(ctx)
	reloadDone := make(chan struct{})
	go func() {
		defer close(reloadDone)
		s.reloadPolicy(rctx)
	}()
	// The last resort of a bounded shutdown: whatever still waits (a
	// broker that does not answer a client's goodbye, a slow disk) when
	// shutdownTimeout has passed since ctx ended, the process exits.
	ran := make(chan struct{})
	defer close(ran)
	if s.shutdownTimeout > 0 {
		go func() {
			select {
			case <-ran:
				return
			case <-ctx.Done():
			}
			t := time.NewTimer(s.shutdownTimeout)
			defer t.Stop()
			select {
			case <-ran:
			case <-t.C:
				s.log.Error("shutdown timed out; exiting (the state stays at the last durable cycle)", "shutdown_timeout", s.shutdownTimeout)
				s.exit(exitShutdownAbandoned)
			}
		}()
	}
	err := s.proc.Run(ctx)
	stopReload()
	<-reloadDone
	if s.srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.srv.Shutdown(sctx)
		cancel()
	}
	if herr := <-httpErr; herr != nil && !errors.Is(herr, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("http: %w", herr)
	}
	start := time.Now()
	if cerr := s.store.Close(); cerr != nil && err == nil {
		err = cerr // names the directory
	}
	s.log.Info("state closed", "took", time.Since(start).Round(time.Millisecond))
	return err
}

// reloadPolicy reloads the policy file on each SIGHUP until ctx ends. A
// file that does not load (unreadable, invalid) is logged, with the field
// at fault, and the policy in force stays.
func (s *scorer) reloadPolicy(ctx context.Context) {
	signal.Notify(s.reload, syscall.SIGHUP)
	defer signal.Stop(s.reload)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.reload:
		}
		if s.policyPath == "" {
			s.log.Warn("SIGHUP: no --policy file to reload; the built-in default policy stays in force")
			continue
		}
		pol, err := score.LoadPolicy(s.policyPath)
		if err == nil {
			err = s.proc.SetPolicy(pol)
		}
		if err != nil {
			s.log.Error("SIGHUP: policy not reloaded; the policy in force stays", "file", s.policyPath, "err", err)
		}
	}
}

func runRun(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", "Run the scorer against real Kafka brokers until SIGINT or SIGTERM.", stderr)
	var f scorerFlags
	var sec securityFlags
	f.register(fs, ":8089")
	sec.register(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	log, err := f.logs.logger(stderr)
	if err != nil {
		return err
	}
	kafkaOpts, err := sec.clientOpts(getenv, log)
	if err != nil {
		return err
	}
	s, err := newScorer(ctx, &f, log, func(c *processor.Config) { c.ClientOpts = append(c.ClientOpts, kafkaOpts...) })
	if err != nil {
		return err
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// The daemon has the process to itself (dev and bench share it
		// with a broker or a generator, whose memory is not budgeted).
		debug.SetMemoryLimit(s.mem.GoLimit)
	}
	return s.run(ctx)
}

// kslogAdapter routes franz-go's logs to slog at their own levels.
type kslogAdapter struct{ l *slog.Logger }

func (a kslogAdapter) Level() kgo.LogLevel {
	ctx := context.Background()
	switch {
	case a.l.Enabled(ctx, slog.LevelDebug):
		return kgo.LogLevelDebug
	case a.l.Enabled(ctx, slog.LevelInfo):
		return kgo.LogLevelInfo
	case a.l.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	default:
		return kgo.LogLevelError
	}
}

func (a kslogAdapter) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var l slog.Level
	switch level {
	case kgo.LogLevelError:
		l = slog.LevelError
	case kgo.LogLevelWarn:
		l = slog.LevelWarn
	case kgo.LogLevelInfo:
		// franz-go's info is chatty (every fetch session, every join step);
		// keep it one level down.
		l = slog.LevelDebug
	default:
		l = slog.LevelDebug - 4
	}
	a.l.Log(context.Background(), l, msg, append(keyvals, "component", "kafka")...)
}
