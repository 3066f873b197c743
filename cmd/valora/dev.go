package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/gen"
	"valora/processor"
	"valora/processor/score"
	"valora/schemas"
)

// devFlags are dev's own flags; it also takes the scorer's and gen's.
type devFlags struct {
	kafkaPort  int
	partitions int
	brokerOnly bool
	summary    time.Duration
	keepState  bool
	models     bool
	history    float64
}

func (d *devFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&d.kafkaPort, "kafka-port", 9092, "port of the embedded Kafka-protocol broker on 127.0.0.1 (0: any free port)")
	fs.IntVar(&d.partitions, "partitions", 6, "partitions of each topic")
	fs.BoolVar(&d.brokerOnly, "broker-only", false, "run only the embedded broker with the topics, for trying other clients")
	fs.DurationVar(&d.summary, "summary-interval", 5*time.Second, "how often to print the summary")
	fs.BoolVar(&d.keepState, "keep-state", false, "keep the state directory at exit (by default a temporary one is removed)")
	fs.BoolVar(&d.models, "models", true, "score with lifetime-value models (p_alive, clv, value classes): the generator's own BG/NBD and Gamma-Gamma parameters, unless --policy has models; false runs the policy as it is")
	fs.Float64Var(&d.history, "history-days", 365, "simulated days from --start produced at once, as fast as the scorer takes them, before the live part paced by --speed (0: none); --events and --rate apply to the live part only")
}

func runDev(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev", "Start an embedded Kafka-protocol broker on 127.0.0.1, create the topics, generate\n"+
		"traffic with simulated time running fast, run the scorer and print a live summary.\nCtrl-C stops everything.", stderr)
	var d devFlags
	var sf scorerFlags
	var gf genFlags
	d.register(fs)
	sf.register(fs, "127.0.0.1:8089")
	if fl := fs.Lookup("brokers"); fl != nil {
		fl.Usage, fl.DefValue = "not taken: dev runs its own broker (see --kafka-port)", ""
	}
	gf.register(fs, 2000, 24*time.Hour)
	// Customers keep arriving over the two years up to now (the default
	// --start), so that new customers join all along, and the traffic
	// goes on in real time once it has caught up with the wall clock.
	fs.Lookup("arrival-days").DefValue = "730"
	gf.arrival = 730
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if givenFlags(fs)["brokers"] {
		// Silently scoring the embedded broker's traffic instead would
		// hide that the user's brokers were never read.
		return usagef("--brokers (or %s): valora dev runs its own broker (--kafka-port); for your brokers, run valora run, with valora gen for traffic", envName("brokers"))
	}
	if !(d.history >= 0) || d.history > gen.MaxSpan.Hours()/24 {
		return usagef("--history-days: %v must be in [0, %v]", d.history, gen.MaxSpan.Hours()/24)
	}
	if d.partitions < 1 {
		return usagef("--partitions: %d must be at least 1", d.partitions)
	}
	if d.kafkaPort < 0 || d.kafkaPort > 65535 {
		return usagef("--kafka-port: %d is not a port", d.kafkaPort)
	}
	params, err := gf.params(time.Now())
	if err != nil {
		return err
	}
	params.Horizon = 0 // until the model runs dry, in real time once caught up
	partOpts, err := sf.producerPartitioner()
	if err != nil {
		return err
	}
	pol, err := loadPolicy(sf.policy)
	if err != nil {
		return err
	}
	modelsLine := "models: none (--models=false): tier changes carry no p_alive, clv or value_class"
	if d.models {
		if modelsLine, err = devPolicy(pol, sf.policy, params); err != nil {
			return err
		}
	} else if pol.Models != nil {
		modelsLine = "models: from --policy " + sf.policy
	}
	log, err := sf.logs.logger(stderr)
	if err != nil {
		return err
	}
	if sf.stateDir == "valora-state" && !d.keepState {
		dir, err := os.MkdirTemp("", "valora-dev-")
		if err != nil {
			return fmt.Errorf("state dir: %w", err)
		}
		defer os.RemoveAll(dir)
		sf.stateDir = dir
	}

	topics := []string{sf.interactions, sf.purchases, sf.tierChanges, sf.deadLetter}
	if sf.erasures != "" {
		topics = append(topics, sf.erasures)
	}
	cluster, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(d.kafkaPort),
		kfake.SeedTopics(int32(d.partitions), topics...),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(d.partitions),
	)
	if err != nil {
		return fmt.Errorf("embedded broker on port %d: %w", d.kafkaPort, err)
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]
	fmt.Fprintf(stdout, "broker: %s (topics %s, %d partitions each)\n", addr, strings.Join(topics, ", "), d.partitions)
	if processor.Partitioner(sf.partitioner) == processor.PartitionerCRC32 {
		fmt.Fprintf(stdout, "try:    kcat -b %s -L   (inputs partitioned by CRC32 of the key, kcat's default)\n", addr)
	} else {
		fmt.Fprintf(stdout, "try:    kcat -b %s -L   (when producing with kcat, add -X partitioner=murmur2_random, or start dev with --input-partitioner crc32)\n", addr)
	}
	if d.brokerOnly {
		<-ctx.Done()
		fmt.Fprintln(stdout, "broker stopped")
		return nil
	}

	sf.brokers = addr
	sf.createTopics = true
	paceFrom := params.Start.Add(time.Duration(d.history * 24 * float64(time.Hour)))
	if d.history > 0 {
		fmt.Fprintf(stdout, "traffic: %d customers arriving over %g days from %s; the first %g days at once, then %v of simulated time per second from %s\n",
			params.Customers, params.ArrivalDays, params.Start.Format(time.DateOnly), d.history, gf.speed, paceFrom.Format(time.DateOnly))
	} else {
		fmt.Fprintf(stdout, "traffic: %d customers arriving over %g days from %s, %v of simulated time per second\n",
			params.Customers, params.ArrivalDays, params.Start.Format(time.DateOnly), gf.speed)
	}
	fmt.Fprintf(stdout, "%s\n", modelsLine)
	codec, err := newCodec(ctx, sf.registry, schemas.TopicNames{
		Interactions: sf.interactions, Purchases: sf.purchases, TierChanges: sf.tierChanges})
	if err != nil {
		return err
	}
	pcl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ProducerLinger(5 * time.Millisecond)}, partOpts...)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer pcl.Close()
	gn, err := gen.New(params)
	if err != nil {
		return usageError{err}
	}
	prod := &producer{cl: pcl, codec: codec, interactions: sf.interactions, purchases: sf.purchases}
	if d.history > 0 {
		// The history is a backlog in both inputs before the scorer
		// starts, as it is for a new deployment on existing topics.
		began := time.Now()
		n, err := prod.history(ctx, gn, paceFrom.UnixMilli())
		if err != nil {
			return fmt.Errorf("generator: %w", err)
		}
		fmt.Fprintf(stdout, "history: %d events of the %g days from %s to %s produced in %v\n",
			n, d.history, params.Start.Format(time.DateOnly), paceFrom.Format(time.DateOnly), time.Since(began).Round(time.Millisecond))
	}
	s, err := newScorer(ctx, &sf, log, func(c *processor.Config) { c.Policy = pol })
	if err != nil {
		return err
	}
	if s.ln != nil {
		fmt.Fprintf(stdout, "http:   http://%s/metrics\n", s.ln.Addr())
	}
	fmt.Fprintf(stdout, "state:  %s\n\n", sf.stateDir)

	tail := newTierTail(codec)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	wg.Go(func() {
		if err := prod.run(ctx, gn, gf.events, gf.speed, gf.rate); err != nil {
			errs <- fmt.Errorf("generator: %w", err)
			cancel()
		}
	})
	wg.Go(func() {
		if err := tail.run(ctx, addr, sf.tierChanges); err != nil {
			errs <- fmt.Errorf("tier-change tail: %w", err)
			cancel()
		}
	})
	exp, _ := score.MinorUnits(pol.BaseCurrency)
	wg.Go(func() { summarize(ctx, stdout, d.summary, s.proc, prod, tail, pol.BaseCurrency, math.Pow10(exp)) })
	err = s.run(ctx)
	cancel()
	wg.Wait()
	close(errs)
	if err != nil {
		return err
	}
	for e := range errs {
		return e
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}

// tierTail follows the tier-change topic and keeps the latest few changes.
type tierTail struct {
	codec *schemas.Codec
	mu    sync.Mutex
	last  []schemas.TierChange
	total int
}

func newTierTail(c *schemas.Codec) *tierTail { return &tierTail{codec: c} }

func (t *tierTail) run(ctx context.Context, addr, topic string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err := fs.Err0(); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		fs.EachRecord(func(r *kgo.Record) {
			var tc schemas.TierChange
			if err := t.codec.DecodeTierChange(r.Value, &tc); err != nil {
				return
			}
			t.mu.Lock()
			t.total++
			t.last = append(t.last, tc)
			if len(t.last) > 5 {
				t.last = t.last[len(t.last)-5:]
			}
			t.mu.Unlock()
		})
	}
}

func (t *tierTail) snapshot() (int, []schemas.TierChange) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total, append([]schemas.TierChange(nil), t.last...)
}

// summarize prints a short summary every interval until ctx ends.
//
// CLVs are shown in major units of currency, minorPerMajor minor units each.
func summarize(ctx context.Context, w io.Writer, every time.Duration, proc *processor.Processor, p *producer, tail *tierTail, currency string, minorPerMajor float64) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var lastConsumed float64
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			st := proc.Stats()
			consumed := float64(st.Consumed)
			dlq := float64(st.DeadLettered)
			tiers := floats(st.Tiers)
			rate := (consumed - lastConsumed) / now.Sub(last).Seconds()
			lastConsumed, last = consumed, now
			total, changes := tail.snapshot()
			var b strings.Builder
			fmt.Fprintf(&b, "── %s  sim %s  produced %d  consumed %.0f (%.0f events/s)  dead-lettered %.0f  tier changes %d\n",
				now.Format(time.TimeOnly), time.UnixMilli(p.simTime.Load()).UTC().Format(time.DateOnly),
				p.produced.Load(), consumed, rate, dlq, total)
			names := make([]string, 0, len(tiers))
			for k := range tiers {
				names = append(names, k)
			}
			sort.Slice(names, func(i, j int) bool { return tiers[names[i]] > tiers[names[j]] })
			b.WriteString("   customers per tier:")
			for _, k := range names {
				if tiers[k] > 0 {
					fmt.Fprintf(&b, " %s=%.0f", k, tiers[k])
				}
			}
			b.WriteString("\n")
			writeCounts(&b, "   customers per stage:", floats(st.Stages), devStages)
			if classes := floats(st.ValueClasses); len(classes) > 0 {
				writeCounts(&b, "   customers per value class:", classes, devClasses)
			}
			if tr := floats(st.Treatments); len(tr) > 0 {
				writeCounts(&b, "   customers per treatment:", tr, slices.Sorted(maps.Keys(tr)))
			}
			for _, c := range changes {
				prev := "(new)"
				if c.PreviousTier != nil {
					prev = *c.PreviousTier
				}
				fmt.Fprintf(&b, "   %s %-10s %-18s → %-18s %-11s stage=%s churn=%v",
					time.UnixMilli(c.OccurredAt).UTC().Format(time.DateOnly), c.CustomerID, prev, c.Tier,
					c.Cause, c.LifecycleStage, c.ChurnRisk)
				if c.PAlive != nil && c.CLV != nil {
					fmt.Fprintf(&b, " p_alive=%.2f clv=%.2f %s", *c.PAlive, *c.CLV/minorPerMajor, currency)
				}
				if c.ValueClass != nil {
					fmt.Fprintf(&b, " class=%s", *c.ValueClass)
				}
				if c.Treatment != nil && c.Relationship != nil {
					fmt.Fprintf(&b, " treatment=%s (%s)", *c.Treatment, *c.Relationship)
				}
				b.WriteString("\n")
			}
			fmt.Fprint(w, b.String())
		}
	}
}

// The stages and value classes in the order the summary lists them.
var (
	devStages  = []string{score.StageProspect, score.StageNew, score.StageActive, score.StageAtRisk, score.StageChurned, score.StageReactivated}
	devClasses = []string{score.ClassHighYield, score.ClassHighPotential, score.ClassBelowZero}
)

// writeCounts writes title and each count of order (0 included), then any
// other label, and a newline.
func writeCounts(b *strings.Builder, title string, counts map[string]float64, order []string) {
	b.WriteString(title)
	for _, k := range order {
		fmt.Fprintf(b, " %s=%.0f", k, counts[k])
	}
	for k, v := range counts {
		if !slices.Contains(order, k) && v > 0 {
			fmt.Fprintf(b, " %s=%.0f", k, v)
		}
	}
	b.WriteString("\n")
}
