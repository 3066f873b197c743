package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"valora/internal/gen"
	"valora/processor"
	"valora/schemas"
)

// liveFlags are `valora bench --live`'s own flags.
type liveFlags struct {
	live      bool
	duration  time.Duration
	window    time.Duration
	drain     time.Duration
	readyWait time.Duration
	brokerPID int
	joinAt    time.Duration
}

func (l *liveFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&l.live, "live", false, "measure live traffic instead of a backlog: against --brokers, produce at --rate events/s into fresh topics while the scorer runs "+
		"in a fresh group, and time each tier change from its input's produce time to its arrival at a read_committed reader")
	fs.DurationVar(&l.duration, "duration", time.Minute, "with --live: how long to produce after the scorer is ready")
	fs.DurationVar(&l.window, "window", 10*time.Second, "with --live: width of a reported window, from readiness on")
	fs.DurationVar(&l.drain, "drain", 30*time.Second, "with --live: longest wait, once the producer stops, for the last tier changes")
	fs.DurationVar(&l.readyWait, "ready-timeout", time.Minute, "with --live: longest wait for the scorer to be assigned its tasks")
	fs.DurationVar(&l.joinAt, "join-at", 0, "with --live: start a second instance in the group this long after readiness, and report the rebalance: "+
		"how long until the moved tasks publish, and the latency of the moved and the other partitions meanwhile (0: one instance)")
	fs.IntVar(&l.brokerPID, "broker-pid", 0, "with --live: also report the CPU time of this process (the broker, if it runs on this machine; 0: not measured)")
}

// liveWindow is one reported window of a live benchmark: the inputs produced
// in it, and the tier changes whose inputs were produced in it.
type liveWindow struct {
	// Start and End are seconds from readiness; the window before readiness
	// has Start < 0.
	Start      float64 `json:"start_seconds"`
	End        float64 `json:"end_seconds"`
	Produced   int64   `json:"produced"`
	ProducedPS float64 `json:"produced_per_second"`
	// ConsumedPS is valora's rate of input records handled in the window.
	ConsumedPS  float64 `json:"consumed_per_second"`
	TierChanges int     `json:"tier_changes"`
	P50         float64 `json:"p50_seconds"`
	P99         float64 `json:"p99_seconds"`
	P999        float64 `json:"p999_seconds"`
	Max         float64 `json:"max_seconds"`
	// CPU is this process's user+sys CPU time in the window over its
	// length (1 = one core); BrokerCPU the same for --broker-pid.
	CPU       float64 `json:"cpu_cores"`
	BrokerCPU float64 `json:"broker_cpu_cores,omitempty"`
	// Means over the window of valora's commit cycle, its transaction
	// commit (exactly_once) and its processing latency histograms.
	CommitMean      float64 `json:"commit_mean_seconds"`
	Commits         float64 `json:"commits"`
	TxnCommitMean   float64 `json:"transaction_commit_mean_seconds"`
	ProcessingMean  float64 `json:"processing_latency_mean_seconds"`
	LoadAverage1Min float64 `json:"load_average_1m"`
	// Requests are the scorer's Kafka requests in the window, by name.
	Requests map[string]liveRequests `json:"requests"`
}

// liveRequests counts one kind of Kafka request of the scorer's clients
// and their mean round trip (written to response read; a fetch's includes
// the time the broker held it).
type liveRequests struct {
	PerSecond float64 `json:"per_second"`
	Mean      float64 `json:"mean_seconds"`
}

// reqStats counts the requests of every client of the scorer by request
// key, through franz-go's end-to-end hook.
type reqStats struct {
	n, ns [reqKeys]atomic.Int64
}

const reqKeys = 128

// reqShown are the requests that the text report shows.
var reqShown = []int16{
	(&kmsg.ProduceRequest{}).Key(), (&kmsg.FetchRequest{}).Key(), (&kmsg.AddPartitionsToTxnRequest{}).Key(),
	(&kmsg.EndTxnRequest{}).Key(), (&kmsg.MetadataRequest{}).Key(), (&kmsg.ListOffsetsRequest{}).Key(),
}

// OnBrokerE2E implements kgo.HookBrokerE2E.
func (r *reqStats) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if key < 0 || key >= reqKeys || e2e.WriteErr != nil || e2e.ReadErr != nil {
		return
	}
	r.n[key].Add(1)
	r.ns[key].Add(int64(e2e.DurationE2E()))
}

func (r *reqStats) snap() (n, ns [reqKeys]int64) {
	for k := range reqKeys {
		n[k], ns[k] = r.n[k].Load(), r.ns[k].Load()
	}
	return n, ns
}

// liveResult is what `valora bench --live` reports.
type liveResult struct {
	Brokers      string  `json:"brokers"`
	Guarantee    string  `json:"guarantee"`
	Partitions   int     `json:"partitions"`
	Rate         float64 `json:"rate"`
	Customers    int     `json:"customers"`
	Group        string  `json:"group"`
	ReadySeconds float64 `json:"ready_seconds"`
	Produced     int64   `json:"produced"`
	Handled      float64 `json:"handled"`
	TierChanges  int     `json:"tier_changes_timed"`
	// Unread counts the tier changes valora counted but the reader had not
	// seen when the drain ended.
	Unread    float64      `json:"tier_changes_unread"`
	Windows   []liveWindow `json:"windows"`
	Settled   liveWindow   `json:"from_ready_plus_5s"`
	CPUUser   float64      `json:"cpu_user_seconds"`
	CPUSys    float64      `json:"cpu_sys_seconds"`
	BrokerCPU float64      `json:"broker_cpu_seconds,omitempty"`
	PeakRSS   int64        `json:"peak_rss_bytes"`
	// Join is the rebalance of a run with --join-at.
	Join      *liveJoinResult `json:"rebalance,omitempty"`
	GoMaxProc int             `json:"gomaxprocs"`
	Load      [3]float64      `json:"load_average"`
}

// liveSettle is how long after readiness the settled summary starts.
const liveSettle = 5 * time.Second

// validate checks the live flags and fills in their defaults. set names the
// flags given on the command line.
func (l *liveFlags) validate(set map[string]bool, sf *scorerFlags, gf *genFlags) error {
	if !l.live {
		for _, name := range []string{"duration", "window", "drain", "ready-timeout", "broker-pid", "join-at"} {
			if set[name] {
				return usagef("--%s: only with --live", name)
			}
		}
		return nil
	}
	for _, name := range []string{"replay", "events"} {
		if set[name] {
			return usagef("--%s: not with --live", name)
		}
	}
	if !set["brokers"] {
		return usagef("--brokers: required with --live (deploy/kafka-local/up.sh starts a local Apache Kafka)")
	}
	if len(splitList(sf.brokers)) == 0 {
		return usagef("--brokers: no broker in %q", sf.brokers)
	}
	if !set["rate"] {
		gf.rate = 1000
	}
	if gf.rate <= 0 || math.IsInf(gf.rate, 0) || math.IsNaN(gf.rate) {
		return usagef("--rate: %g must be a positive number of events per second with --live", gf.rate)
	}
	if !set["customers"] {
		gf.customers = 100_000
	}
	if l.duration <= 0 {
		return usagef("--duration: %v must be positive", l.duration)
	}
	if l.window <= 0 || l.window > l.duration {
		return usagef("--window: %v must be positive and at most --duration (%v)", l.window, l.duration)
	}
	if l.drain <= 0 {
		return usagef("--drain: %v must be positive", l.drain)
	}
	if l.readyWait <= 0 {
		return usagef("--ready-timeout: %v must be positive", l.readyWait)
	}
	if l.joinAt < 0 || l.joinAt >= l.duration {
		return usagef("--join-at: %v must be in [0, --duration %v)", l.joinAt, l.duration)
	}
	if l.brokerPID < 0 {
		return usagef("--broker-pid: %d is not a process id", l.brokerPID)
	}
	if sf.guarantee != string(processor.ExactlyOnce) && sf.guarantee != string(processor.AtLeastOnce) {
		return usagef("--guarantee: %q is neither %s nor %s", sf.guarantee, processor.ExactlyOnce, processor.AtLeastOnce)
	}
	return nil
}

// liveSample is one timed tier change: its input's produce time and its
// latency, in nanoseconds.
type liveSample struct {
	at, lat int64
	part    int32 // of the tier change, as of its input
}

// liveReader follows the tier-change topic as a read_committed consumer
// would, and times each tier change that an input caused.
//
// The producer stamps each input's occurred_at (and its record timestamp)
// with the wall clock when it hands the record to its client, and valora
// copies the occurred_at of the input that caused a tier change into it, so
// a tier change's arrival time minus its occurred_at is the input's produce
// to output-visible latency, to the millisecond, with no table to match
// inputs and outputs. Tier changes that timers caused carry a deadline
// instead and are not timed. Producer and reader share this machine's clock.
//
// The reader is at least as prompt as a Java consumer, so that what it
// times is valora's latency, not its own: it refreshes metadata promptly
// (its first fetch needs a second metadata request to list its offsets)
// and a fetch the broker holds waits less for data than a Java consumer's.
type liveReader struct {
	codec   *schemas.Codec
	mu      sync.Mutex
	samples []liveSample
	read    atomic.Int64 // every tier change read, timed or not
}

func (r *liveReader) run(ctx context.Context, opts []kgo.Opt) error {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("reader: %w", err)
	}
	defer cl.Close()
	var tc schemas.TierChange
	for {
		fs := cl.PollFetches(ctx)
		now := time.Now().UnixNano()
		if ctx.Err() != nil {
			return nil
		}
		if err := fs.Err0(); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("reader: %w", err)
		}
		r.mu.Lock()
		fs.EachRecord(func(rec *kgo.Record) {
			r.read.Add(1)
			if err := r.codec.DecodeTierChange(rec.Value, &tc); err != nil {
				return
			}
			switch tc.Cause {
			case schemas.CausePurchase, schemas.CauseRefund, schemas.CauseInteraction:
				at := tc.OccurredAt * int64(time.Millisecond)
				r.samples = append(r.samples, liveSample{at: at, lat: now - at, part: rec.Partition})
			}
		})
		r.mu.Unlock()
	}
}

// liveSnap is what is sampled at each window boundary.
type liveSnap struct {
	at                 time.Time
	produced           int64
	handled            float64
	cpu, brokerCPU     float64
	commitSum, commitN float64
	txnSum, txnN       float64
	procSum, procN     float64
	load               float64
	reqN, reqNS        [reqKeys]int64
}

// runLiveBench is `valora bench --live`.
func runLiveBench(ctx context.Context, sf *scorerFlags, gf *genFlags, lf *liveFlags, partitions int, asJSON bool,
	cpuProfile string, stdout, stderr io.Writer) error {
	now := time.Now()
	params, err := gf.params(now)
	if err != nil {
		return err
	}
	if _, err := loadPolicy(sf.policy); err != nil {
		return err
	}
	log, err := sf.logs.logger(stderr)
	if err != nil {
		return err
	}
	gn, err := gen.New(params)
	if err != nil {
		return usageError{err}
	}
	// Fresh topics and a fresh group: a first start, as for a new deployment.
	stamp := "valora-live-" + strconv.FormatInt(now.UnixMilli(), 36)
	sf.group = stamp
	sf.interactions, sf.purchases = stamp+"-interactions", stamp+"-purchases"
	sf.tierChanges, sf.deadLetter = stamp+"-tier-changes", stamp+"-dead-letter"
	sf.erasures, sf.changelog = "", ""
	if sf.profiles != "" {
		sf.profiles = stamp + "-profiles" // valora creates it
	}
	sf.createTopics = true
	if sf.stateDir == "valora-state" {
		dir, err := os.MkdirTemp("", "valora-bench-live-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		sf.stateDir = dir
	}
	codec, err := newCodec(ctx, sf.registry, schemas.TopicNames{
		Interactions: sf.interactions, Purchases: sf.purchases, TierChanges: sf.tierChanges})
	if err != nil {
		return err
	}
	reqs := &reqStats{}
	s, err := newScorer(ctx, sf, log, func(c *processor.Config) {
		c.ClientOpts = append(c.ClientOpts, kgo.WithHooks(reqs))
	})
	if err != nil {
		return err
	}
	seeds := kgo.SeedBrokers(splitList(sf.brokers)...)
	started := false
	defer func() {
		if !started { // s.run closes these once it has started
			if s.ln != nil {
				s.ln.Close()
			}
			s.store.Close()
		}
	}()

	// The topics exist, with all their partitions, before anything else
	// starts; valora creates its changelog itself.
	acl, err := kgo.NewClient(seeds)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	adm := kadm.NewClient(acl)
	resp, err := adm.CreateTopics(ctx, int32(partitions), -1, nil,
		sf.interactions, sf.purchases, sf.tierChanges, sf.deadLetter)
	if err == nil {
		err = resp.Error()
	}
	if err == nil {
		// A loaded broker may answer metadata requests without topics
		// it has just created: the scorer would take them for missing.
		err = waitTopics(ctx, adm, partitions, sf.interactions, sf.purchases, sf.tierChanges, sf.deadLetter)
	}
	acl.Close()
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	// The run's topics (with the changelog and the profiles) and group go
	// when it ends, however it ends; the deferred call runs after every
	// goroutine is stopped.
	drop := []string{sf.interactions, sf.purchases, sf.tierChanges, sf.deadLetter, sf.group + "-changelog"}
	if sf.profiles != "" {
		drop = append(drop, sf.profiles)
	}
	defer dropLive(seeds, stderr, sf.group, drop...)
	fmt.Fprintf(stderr, "bench: topics %s-* (%d partitions), group %s, %s, %g events/s\n",
		stamp, partitions, sf.group, sf.guarantee, gf.rate)

	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	pcl, err := kgo.NewClient(seeds, kgo.ProducerLinger(time.Millisecond), kgo.MaxBufferedRecords(1<<20),
		kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer pcl.Close()
	prod := &producer{cl: pcl, codec: codec, interactions: sf.interactions, purchases: sf.purchases}
	reader := &liveReader{codec: codec}

	sctx, stopScorer := context.WithCancel(ctx)
	defer stopScorer()
	rctx, stopReader := context.WithCancel(ctx)
	defer stopReader()
	pctx, stopProducer := context.WithCancel(ctx)
	defer stopProducer()

	scorerDone := make(chan error, 1)
	readerDone := make(chan error, 1)
	prodDone := make(chan error, 1)
	start := time.Now()
	started = true
	go func() { scorerDone <- s.run(sctx) }()
	go func() {
		readerDone <- reader.run(rctx, []kgo.Opt{seeds, kgo.ConsumeTopics(sf.tierChanges),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchMaxWait(100 * time.Millisecond), kgo.MetadataMinAge(100 * time.Millisecond)})
	}()
	var stopAt atomic.Int64 // wall time (ns) to stop producing; 0 until ready
	go func() { prodDone <- liveProduce(pctx, prod, gn, gf.rate, &stopAt) }()
	var join *liveJoin // the second instance of --join-at, once ready
	// Whatever happens, every goroutine is stopped and waited for.
	stopAll := func() error {
		stopProducer()
		perr := <-prodDone
		var jerr error
		if join != nil {
			jerr = join.stop()
		}
		stopScorer()
		serr := <-scorerDone
		stopReader()
		rerr := <-readerDone
		return errors.Join(serr, jerr, perr, rerr)
	}

	snap := func(at time.Time) liveSnap {
		st := s.proc.Stats()
		sn := liveSnap{at: at, produced: prod.produced.Load(), handled: float64(st.Consumed), load: loadAverage()[0]}
		u, sy := procCPU(0)
		sn.cpu = u + sy
		if lf.brokerPID > 0 {
			u, sy = procCPU(lf.brokerPID)
			sn.brokerCPU = u + sy
		}
		sn.commitSum, sn.commitN = st.CommitSeconds, float64(st.Commits)
		sn.txnSum, sn.txnN = st.TransactionSeconds, float64(st.Transactions)
		sn.procSum, sn.procN = st.BatchSeconds, float64(st.Batches)
		sn.reqN, sn.reqNS = reqs.snap()
		return sn
	}
	first := snap(start)
	var ready time.Time
	readyTimer := time.NewTimer(lf.readyWait)
	defer readyTimer.Stop()
	select {
	case <-s.proc.Ready():
		ready = time.Now()
	case err := <-scorerDone:
		scorerDone <- err
		return errors.Join(fmt.Errorf("scorer stopped before it was ready: %w", err), stopAll())
	case <-readyTimer.C:
		return errors.Join(fmt.Errorf("--ready-timeout: the scorer was not assigned its tasks within %v", lf.readyWait), stopAll())
	case <-ctx.Done():
		return errors.Join(ctx.Err(), stopAll())
	}
	stopAt.Store(ready.Add(lf.duration).UnixNano())
	if lf.joinAt > 0 {
		join = startJoin(ctx, sf, log, ready.Add(lf.joinAt))
	}
	fmt.Fprintf(stderr, "bench: ready after %.2fs; producing for %v\n", ready.Sub(start).Seconds(), lf.duration)

	// Sample at every window boundary while producing.
	snaps := []liveSnap{first, snap(ready)}
	nwin := int((lf.duration + lf.window - 1) / lf.window)
	var runErr error
	for k := 1; k <= nwin && runErr == nil; k++ {
		end := ready.Add(min(time.Duration(k)*lf.window, lf.duration))
		t := time.NewTimer(time.Until(end))
		select {
		case <-t.C:
			snaps = append(snaps, snap(end))
		case err := <-scorerDone:
			scorerDone <- err
			runErr = fmt.Errorf("scorer stopped: %w", err)
		case err := <-prodDone:
			prodDone <- err
			switch {
			case errors.Is(err, errGenDone):
				runErr = errors.New("the generator ran out of events: raise --customers")
			case err != nil:
				runErr = fmt.Errorf("producer: %w", err)
			default: // it stopped at the end: the last boundary is due now
				<-t.C
				snaps = append(snaps, snap(end))
			}
		case err := <-readerDone:
			readerDone <- err
			runErr = fmt.Errorf("reader stopped: %w", err)
		case <-ctx.Done():
			runErr = ctx.Err()
		}
		t.Stop()
	}
	if runErr != nil {
		return errors.Join(runErr, stopAll())
	}
	// The producer stops by itself at stopAt; then wait until valora has
	// handled every input and the reader has seen every tier change.
	if err := <-prodDone; err != nil {
		prodDone <- nil
		return errors.Join(fmt.Errorf("producer: %w", err), stopAll())
	}
	prodDone <- nil
	deadline := time.Now().Add(lf.drain)
	var handled, counted float64 // by both instances
	for {
		st := s.proc.Stats()
		handled, counted = float64(st.Consumed), float64(st.TierChanges)
		if join != nil {
			join.mu.Lock()
			jp := join.proc
			join.mu.Unlock()
			if jp != nil {
				jst := jp.Stats()
				handled += float64(jst.Consumed)
				counted += float64(jst.TierChanges)
			}
		}
		if handled >= float64(prod.produced.Load()) && float64(reader.read.Load()) >= counted {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			fmt.Fprintf(stderr, "bench: drain ended after %v with work left\n", lf.drain)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	res := liveResult{
		Brokers: sf.brokers, Guarantee: sf.guarantee, Partitions: partitions, Rate: gf.rate,
		Customers: params.Customers, Group: sf.group, ReadySeconds: ready.Sub(start).Seconds(),
		Produced: prod.produced.Load(), Handled: handled, GoMaxProc: runtime.GOMAXPROCS(0),
	}
	res.Unread = max(0, counted-float64(reader.read.Load()))
	if err := stopAll(); err != nil {
		return err
	}
	reader.mu.Lock()
	samples := reader.samples
	reader.mu.Unlock()
	res.TierChanges = len(samples)
	res.Windows, res.Settled = liveWindows(samples, snaps, ready, ready.Add(lf.duration))
	if join != nil {
		res.Join = join.result(samples, ready, lf.window)
	}
	res.CPUUser, res.CPUSys = procCPU(0)
	if lf.brokerPID > 0 {
		u, sy := procCPU(lf.brokerPID)
		res.BrokerCPU = u + sy
	}
	res.PeakRSS = peakRSS()
	res.Load = loadAverage()
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	res.print(stdout)
	return nil
}

// dropLive deletes a live run's group and topics, as far as the broker
// lets it; what it cannot delete it names on stderr.
func dropLive(seeds kgo.Opt, stderr io.Writer, group string, topics ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(seeds)
	if err != nil {
		fmt.Fprintf(stderr, "bench: delete topics %v and group %s: %v\n", topics, group, err)
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if r, err := adm.DeleteGroup(ctx, group); err != nil || r.Err != nil {
		fmt.Fprintf(stderr, "bench: delete group %s: %v\n", group, errors.Join(err, r.Err))
	}
	resp, err := adm.DeleteTopics(ctx, topics...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: delete topics %v: %v\n", topics, err)
	}
}

// errGenDone says that the generator had no more events.
var errGenDone = errors.New("no more generated events")

// liveProduce produces generated events at rate per second, each stamped
// with the wall clock as its event time, until stopAt (once set) or ctx
// ends, or the generator has no more events (errGenDone). It flushes before
// returning.
func liveProduce(ctx context.Context, p *producer, g *gen.Generator, rate float64, stopAt *atomic.Int64) error {
	var ev gen.Event
	exhausted := false
	start := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for n := int64(0); ctx.Err() == nil; n++ {
		due := start.Add(time.Duration(float64(n) / rate * float64(time.Second)))
		if wait := time.Until(due); wait > 0 {
			t.Reset(wait)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			if ctx.Err() != nil {
				break
			}
		}
		now := time.Now()
		if s := stopAt.Load(); s != 0 && now.UnixNano() >= s {
			break
		}
		if !g.Next(&ev) {
			exhausted = true
			break
		}
		at := now.UnixMilli()
		if ev.Kind == gen.KindPurchase {
			ev.Purchase.OccurredAt = at
		} else {
			ev.Interaction.OccurredAt = at
		}
		rec, err := p.record(&ev)
		if err != nil {
			return err
		}
		rec.Timestamp = time.UnixMilli(at)
		p.cl.Produce(ctx, rec, p.done)
	}
	fctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.cl.Flush(fctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if e, ok := p.firstErr.Load().(error); ok {
		return fmt.Errorf("%d records failed to produce, first: %w", p.failed.Load(), e)
	}
	if exhausted {
		return errGenDone
	}
	return nil
}

// liveWindows groups the samples by their input's produce time into the
// window before readiness and the windows between the snapshots, and
// summarises the samples produced from readiness+liveSettle to end.
func liveWindows(samples []liveSample, snaps []liveSnap, ready, end time.Time) ([]liveWindow, liveWindow) {
	slices.SortFunc(samples, func(a, b liveSample) int { return int(a.at - b.at) })
	r := ready.UnixNano()
	var out []liveWindow
	for i := 1; i < len(snaps); i++ {
		a, b := snaps[i-1], snaps[i]
		lo, hi := a.at.UnixNano(), b.at.UnixNano()
		if i == 1 {
			lo = math.MinInt64 // inputs stamped before the start, to the millisecond
		}
		w := summarise(samples, lo, hi)
		w.Start, w.End = a.at.Sub(ready).Seconds(), b.at.Sub(ready).Seconds()
		secs := b.at.Sub(a.at).Seconds()
		w.Produced = b.produced - a.produced
		w.ProducedPS = float64(w.Produced) / secs
		w.ConsumedPS = (b.handled - a.handled) / secs
		w.CPU = (b.cpu - a.cpu) / secs
		w.BrokerCPU = (b.brokerCPU - a.brokerCPU) / secs
		w.Commits = b.commitN - a.commitN
		w.CommitMean = ratio(b.commitSum-a.commitSum, b.commitN-a.commitN)
		w.TxnCommitMean = ratio(b.txnSum-a.txnSum, b.txnN-a.txnN)
		w.ProcessingMean = ratio(b.procSum-a.procSum, b.procN-a.procN)
		w.LoadAverage1Min = b.load
		w.Requests = map[string]liveRequests{}
		for k := range reqKeys {
			if n := b.reqN[k] - a.reqN[k]; n > 0 {
				w.Requests[kmsg.NameForKey(int16(k))] = liveRequests{
					PerSecond: float64(n) / secs, Mean: time.Duration((b.reqNS[k] - a.reqNS[k]) / n).Seconds()}
			}
		}
		out = append(out, w)
	}
	settled := summarise(samples, r+int64(liveSettle), end.UnixNano())
	settled.Start, settled.End = liveSettle.Seconds(), end.Sub(ready).Seconds()
	return out, settled
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// summarise gives the latency percentiles of the samples (sorted by at)
// whose input was produced in [lo, hi).
func summarise(samples []liveSample, lo, hi int64) liveWindow {
	i, _ := slices.BinarySearchFunc(samples, lo, func(s liveSample, t int64) int { return cmpInt(s.at, t) })
	j, _ := slices.BinarySearchFunc(samples, hi, func(s liveSample, t int64) int { return cmpInt(s.at, t) })
	lats := make([]int64, 0, j-i)
	for _, s := range samples[i:j] {
		lats = append(lats, s.lat)
	}
	slices.Sort(lats)
	w := liveWindow{TierChanges: len(lats)}
	if len(lats) == 0 {
		return w
	}
	q := func(p float64) float64 {
		k := int(math.Ceil(p*float64(len(lats)))) - 1
		return time.Duration(lats[max(0, k)]).Seconds()
	}
	w.P50, w.P99, w.P999 = q(0.50), q(0.99), q(0.999)
	w.Max = time.Duration(lats[len(lats)-1]).Seconds()
	return w
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (r *liveResult) print(w io.Writer) {
	fmt.Fprintf(w, "live:      %s, %d partitions, %g events/s, %d customers, brokers %s (GOMAXPROCS %d)\n",
		r.Guarantee, r.Partitions, r.Rate, r.Customers, r.Brokers, r.GoMaxProc)
	fmt.Fprintf(w, "ready:     %.2fs after start (fresh group and topics)\n", r.ReadySeconds)
	fmt.Fprintf(w, "latency:   input produced -> tier change read (read_committed), by the input's produce time\n")
	fmt.Fprintf(w, "%-13s %8s %8s %7s %8s %8s %8s %8s %5s %6s %7s %7s %7s %5s\n", "window (s)", "prod/s", "cons/s", "timed",
		"p50 ms", "p99 ms", "p99.9 ms", "max ms", "cpu", "broker", "commit", "txn ms", "proc ms", "load")
	row := func(label string, x liveWindow, metrics bool) {
		fmt.Fprintf(w, "%-13s %8.0f %8.0f %7d %8.1f %8.1f %8.1f %8.1f", label, x.ProducedPS, x.ConsumedPS, x.TierChanges,
			x.P50*1e3, x.P99*1e3, x.P999*1e3, x.Max*1e3)
		if metrics {
			fmt.Fprintf(w, " %5.2f %6.2f %7.1f %7.1f %7.1f %5.2f", x.CPU, x.BrokerCPU, x.CommitMean*1e3, x.TxnCommitMean*1e3,
				x.ProcessingMean*1e3, x.LoadAverage1Min)
		}
		fmt.Fprintln(w)
	}
	for i, x := range r.Windows {
		label := fmt.Sprintf("%.0f-%.0f", x.Start, x.End)
		if i == 0 {
			label = "start-ready"
		}
		row(label, x, true)
	}
	row(fmt.Sprintf("%.0f-%.0f all", r.Settled.Start, r.Settled.End), r.Settled, false)
	if r.Join != nil {
		r.Join.print(w)
	}
	fmt.Fprintf(w, "requests:  the scorer's Kafka requests per second / mean round trip in ms\n%-13s", "window (s)")
	for _, k := range reqShown {
		fmt.Fprintf(w, " %22s", kmsg.NameForKey(k))
	}
	fmt.Fprintln(w)
	for i, x := range r.Windows {
		label := fmt.Sprintf("%.0f-%.0f", x.Start, x.End)
		if i == 0 {
			label = "start-ready"
		}
		fmt.Fprintf(w, "%-13s", label)
		for _, k := range reqShown {
			q := x.Requests[kmsg.NameForKey(k)]
			fmt.Fprintf(w, " %12.0f/s %6.1fms", q.PerSecond, q.Mean*1e3)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "columns:   cpu/broker = cores used by this process/--broker-pid; commit, txn, proc = means of valora's commit cycle,\n"+
		"           transaction commit and processing latency; load = 1-minute load average at the window's end\n")
	fmt.Fprintf(w, "records:   %d produced, %.0f handled by valora, %d tier changes timed, %.0f unread at the end\n",
		r.Produced, r.Handled, r.TierChanges, r.Unread)
	fmt.Fprintf(w, "cpu:       this process %.1fs user + %.1fs sys", r.CPUUser, r.CPUSys)
	if r.BrokerCPU > 0 {
		fmt.Fprintf(w, "; broker %.1fs", r.BrokerCPU)
	}
	fmt.Fprintf(w, "\npeak RSS:  %.0f MiB (scorer, producer, reader and generator)\n", float64(r.PeakRSS)/(1<<20))
	fmt.Fprintf(w, "load:      %.2f %.2f %.2f at the end\n", r.Load[0], r.Load[1], r.Load[2])
}

// procCPU returns the user and system CPU seconds of process pid (0: this
// one) from /proc, or zeros where there is none.
func procCPU(pid int) (user, sys float64) {
	path := "/proc/self/stat"
	if pid > 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/stat"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	// The command name may hold spaces: fields count from its ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0
	}
	// utime and stime are fields 14 and 15 of stat, in clock ticks (USER_HZ, 100 on Linux).
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return u / 100, s / 100
}

// loadAverage reads /proc/loadavg; zeros where there is none.
func loadAverage() [3]float64 {
	var out [3]float64
	f, err := os.Open("/proc/loadavg")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if sc.Scan() {
		for i, s := range strings.Fields(sc.Text()) {
			if i == 3 {
				break
			}
			out[i], _ = strconv.ParseFloat(s, 64)
		}
	}
	return out
}

// waitTopics polls the brokers' metadata, for at most 30 s, until every
// topic is listed with n partitions, each with a leader.
func waitTopics(ctx context.Context, adm *kadm.Client, n int, topics ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		td, err := adm.ListTopics(ctx, topics...)
		ready := err == nil
		for _, t := range topics {
			d, ok := td[t]
			if !ok || d.Err != nil || len(d.Partitions) != n {
				ready = false
				break
			}
			for _, p := range d.Partitions {
				if p.Leader < 0 || p.Err != nil {
					ready = false
				}
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics %v not all listed with %d partitions: %w", topics, n, errors.Join(err, ctx.Err()))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
