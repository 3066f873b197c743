package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/gen"
	"valora/processor"
	"valora/processor/budget"
	"valora/schemas"
)

// benchResult is what `valora bench` reports.
type benchResult struct {
	Customers  int    `json:"customers"`
	Events     int64  `json:"events"`
	Partitions int    `json:"partitions"`
	Mode       string `json:"mode"`
	// Broker is "embedded" (kfake, in this process) or the --brokers given.
	Broker           string  `json:"broker"`
	ProduceSeconds   float64 `json:"produce_seconds"`
	ProducePerSecond float64 `json:"produce_events_per_second"`
	Seconds          float64 `json:"seconds"`
	EventsPerSecond  float64 `json:"events_per_second"`
	DeadLettered     float64 `json:"dead_lettered"`
	TierChanges      float64 `json:"tier_changes"`
	Profiles         float64 `json:"profiles"`
	// TimersFired counts the inactivity (and model) timers that fired;
	// Churned and Stages describe the customers at the end.
	TimersFired  float64            `json:"timers_fired"`
	Churned      float64            `json:"churned"`
	Stages       map[string]float64 `json:"lifecycle_stages"`
	LatencyP50   float64            `json:"latency_p50_seconds"`
	LatencyP99   float64            `json:"latency_p99_seconds"`
	LatencyMax   float64            `json:"latency_max_seconds"`
	PeakRSSBytes int64              `json:"peak_rss_bytes"`
	GoMaxProcs   int                `json:"gomaxprocs"`
}

func runBench(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", "Run a fixed workload through the real pipeline (embedded broker, Pebble on disk):\n"+
		"generate and produce the events first, then score them all and report events/s,\n"+
		"latency percentiles (a fetched batch to its durable commit) and peak RSS. With --brokers:\n"+
		"against that broker (fresh topics and group, deleted at the end) instead.\n"+
		"With --live: run the scorer against --brokers while producing at --rate, and report\n"+
		"per --window the latency from an input's produce time to its tier change at a\n"+
		"read_committed reader, records/s and CPU.", stderr)
	var sf scorerFlags
	var gf genFlags
	sf.register(fs, "")
	gf.register(fs, 1_000_000, 0)
	partitions := fs.Int("partitions", 12, "partitions of each input topic")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	replay := fs.Bool("replay", false, "score as `valora replay` does (bounded, strict event-time merge, event time only) instead of as the daemon")
	cpuProfile := fs.String("cpu-profile", "", "write a CPU profile of the scoring phase to this `file` (read it with go tool pprof)")
	var lf liveFlags
	lf.register(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	given := givenFlags(fs)
	if err := lf.validate(given, &sf, &gf); err != nil {
		return err
	}
	if *partitions < 1 {
		return usagef("--partitions: %d must be at least 1", *partitions)
	}
	if lf.live {
		return runLiveBench(ctx, &sf, &gf, &lf, *partitions, *asJSON, *cpuProfile, stdout, stderr)
	}
	if *replay {
		// Score with `valora replay`'s defaults, but for the flags given.
		if !given["commit-records"] {
			sf.commitRecords = budget.ReplayCommitRecords
		}
		if !given["commit-interval"] {
			sf.commitInterval = budget.ReplayCommitInterval
		}
		if !given["write-set-mib"] {
			sf.writeSetMiB = replayWriteSetMiB
		}
		if !given["cache-customers"] {
			sf.cacheCustomers = optionalInt{v: budget.ReplayCacheCustomers, set: true}
		}
	}
	if gf.events == 0 {
		gf.events = 10_000_000
	}
	if gf.skew == 0 {
		gf.skew = 1
	}
	now := time.Now()
	params, err := gf.params(now)
	if err != nil {
		return err
	}
	if gf.start == "" {
		params.Start = now.AddDate(-3, 0, 0).Truncate(24 * time.Hour)
	}
	// Every event time must lie in the past, or it would be dead-lettered
	// as a future timestamp.
	params.Horizon = now.Sub(params.Start) - time.Hour
	log, err := sf.logs.logger(stderr)
	if err != nil {
		return err
	}
	partOpts, err := sf.producerPartitioner()
	if err != nil {
		return err
	}
	if sf.stateDir == "valora-state" {
		dir, err := os.MkdirTemp("", "valora-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		sf.stateDir = dir
	}
	topics := []string{sf.interactions, sf.purchases, sf.tierChanges, sf.deadLetter}
	if sf.erasures != "" {
		topics = append(topics, sf.erasures)
	}
	var addr string
	if given["brokers"] {
		// A broker of the user's: fresh topics and a fresh group, deleted
		// at the end, as for the live benchmark.
		stamp := "valora-bench-" + strconv.FormatInt(now.UnixMilli(), 36)
		sf.group = stamp
		sf.interactions, sf.purchases = stamp+"-interactions", stamp+"-purchases"
		sf.tierChanges, sf.deadLetter = stamp+"-tier-changes", stamp+"-dead-letter"
		sf.erasures, sf.changelog = "", ""
		if sf.profiles != "" {
			sf.profiles = stamp + "-profiles"
		}
		topics = []string{sf.interactions, sf.purchases, sf.tierChanges, sf.deadLetter}
		seeds := kgo.SeedBrokers(splitList(sf.brokers)...)
		acl, err := kgo.NewClient(seeds)
		if err != nil {
			return fmt.Errorf("kafka client: %w", err)
		}
		adm := kadm.NewClient(acl)
		resp, err := adm.CreateTopics(ctx, int32(*partitions), -1, nil, topics...)
		if err == nil {
			err = resp.Error()
		}
		if err == nil {
			err = waitTopics(ctx, adm, *partitions, topics...)
		}
		acl.Close()
		if err != nil {
			return fmt.Errorf("create topics: %w", err)
		}
		drop := append(slices.Clone(topics), sf.group+"-changelog")
		if sf.profiles != "" {
			drop = append(drop, sf.profiles)
		}
		defer dropLive(seeds, stderr, sf.group, drop...)
		addr = sf.brokers
	} else {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(*partitions), topics...))
		if err != nil {
			return fmt.Errorf("embedded broker: %w", err)
		}
		defer cluster.Close()
		addr = cluster.ListenAddrs()[0]
	}

	// Phase 1: produce the workload.
	gn, err := gen.New(params)
	if err != nil {
		return usageError{err}
	}
	codec, err := newCodec(ctx, "", schemas.TopicNames{})
	if err != nil {
		return err
	}
	pcl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(splitList(addr)...), kgo.ProducerLinger(5 * time.Millisecond),
		kgo.MaxBufferedRecords(200_000), kgo.ProducerBatchMaxBytes(4 << 20)}, partOpts...)...)
	if err != nil {
		return err
	}
	prod := &producer{cl: pcl, codec: codec, interactions: sf.interactions, purchases: sf.purchases}
	fmt.Fprintf(stderr, "bench: producing up to %d events for %d customers into %d partitions...\n",
		gf.events, params.Customers, *partitions)
	pstart := time.Now()
	err = prod.run(ctx, gn, gf.events, 0, 0)
	pcl.Close()
	if err != nil {
		return err
	}
	res := benchResult{
		Customers: params.Customers, Events: prod.produced.Load(), Partitions: *partitions,
		ProduceSeconds: time.Since(pstart).Seconds(), GoMaxProcs: runtime.GOMAXPROCS(0), Broker: "embedded",
	}
	if given["brokers"] {
		res.Broker = addr
	}
	res.ProducePerSecond = float64(res.Events) / res.ProduceSeconds
	fmt.Fprintf(stderr, "bench: produced %d events in %.1fs; scoring...\n", res.Events, res.ProduceSeconds)

	// Phase 2: score everything.
	var mu sync.Mutex
	type obs struct {
		n   int
		lat time.Duration
	}
	var lats []obs
	sf.brokers = addr
	sf.createTopics = true
	sf.httpAddr = ""
	res.Mode = "daemon"
	var bounds *processor.Replay
	if *replay {
		res.Mode = "replay"
		sf.timeMode = string(processor.TimeEvent)
		sf.bulkLoad = true
		sf.guarantee = string(processor.AtLeastOnce)
		bounds = &processor.Replay{Start: map[string]map[int32]int64{}, End: map[string]map[int32]int64{}}
		lcl, err := kgo.NewClient(kgo.SeedBrokers(splitList(addr)...))
		if err != nil {
			return err
		}
		ends, err := kadm.NewClient(lcl).ListEndOffsets(ctx, topics[:2]...)
		if err == nil {
			err = ends.Error()
		}
		lcl.Close()
		if err != nil {
			return fmt.Errorf("end offsets: %w", err)
		}
		ends.Each(func(o kadm.ListedOffset) {
			if bounds.End[o.Topic] == nil {
				bounds.End[o.Topic] = map[int32]int64{}
			}
			bounds.End[o.Topic][o.Partition] = o.Offset
		})
	}
	s, err := newScorer(ctx, &sf, log, func(c *processor.Config) {
		c.Replay = bounds
		c.OnCommit = func(n int, lat time.Duration) {
			mu.Lock()
			lats = append(lats, obs{n, lat})
			mu.Unlock()
		}
	})
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.run(rctx) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var handled float64
wait:
	for {
		select {
		case err := <-done:
			if bounds == nil || err != nil {
				return fmt.Errorf("scorer stopped early: %w", err)
			}
			done <- nil // a replay ends by itself
			res.Seconds = time.Since(start).Seconds()
			res.outcomes(s.proc.Stats())
			break wait
		case <-ctx.Done():
			cancel()
			<-done
			return ctx.Err()
		case <-tick.C:
			st := s.proc.Stats()
			handled = float64(st.Applied + st.DeadLettered)
			if handled >= float64(res.Events) {
				res.Seconds = time.Since(start).Seconds()
				res.outcomes(st)
				break wait
			}
		}
	}
	cancel()
	if err := <-done; err != nil {
		return err
	}
	res.EventsPerSecond = float64(res.Events) / res.Seconds
	mu.Lock()
	slices.SortFunc(lats, func(a, b obs) int { return int(a.lat - b.lat) })
	var total int
	for _, o := range lats {
		total += o.n
	}
	pct := func(q float64) float64 {
		target := int(q * float64(total))
		acc := 0
		for _, o := range lats {
			acc += o.n
			if acc >= target {
				return o.lat.Seconds()
			}
		}
		return 0
	}
	res.LatencyP50, res.LatencyP99 = pct(0.50), pct(0.99)
	if len(lats) > 0 {
		res.LatencyMax = lats[len(lats)-1].lat.Seconds()
	}
	mu.Unlock()
	res.PeakRSSBytes = peakRSS()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Fprintf(stdout, "workload:   %d events, %d customers, %d partitions (GOMAXPROCS %d), scored as %s, broker %s\n",
		res.Events, res.Customers, res.Partitions, res.GoMaxProcs, res.Mode, res.Broker)
	fmt.Fprintf(stdout, "produce:    %.1fs (%.0f events/s)\n", res.ProduceSeconds, res.ProducePerSecond)
	fmt.Fprintf(stdout, "score:      %.1fs (%.0f events/s end to end)\n", res.Seconds, res.EventsPerSecond)
	fmt.Fprintf(stdout, "latency:    p50 %.1fms  p99 %.1fms  max %.1fms (fetched batch to durable commit)\n",
		res.LatencyP50*1e3, res.LatencyP99*1e3, res.LatencyMax*1e3)
	fmt.Fprintf(stdout, "outputs:    %.0f tier changes, %.0f profiles, %.0f dead-lettered\n", res.TierChanges, res.Profiles, res.DeadLettered)
	fmt.Fprintf(stdout, "timers:     %.0f fired; %.0f customers churned at the end\n", res.TimersFired, res.Churned)
	held := "embedded broker holding every record, "
	if res.Broker != "embedded" {
		held = ""
	}
	fmt.Fprintf(stdout, "peak RSS:   %.0f MiB (whole process: %sscorer, Pebble caches)\n", float64(res.PeakRSSBytes)/(1<<20), held)
	return nil
}

// outcomes records what the scoring produced, from the processor's stats.
func (r *benchResult) outcomes(st processor.Stats) {
	r.DeadLettered = float64(st.DeadLettered)
	r.TierChanges = float64(st.TierChanges)
	r.Profiles = float64(st.Profiles)
	r.TimersFired = float64(st.TimersFired)
	r.Churned = float64(st.ChurnRisk)
	r.Stages = floats(st.Stages)
}

// floats returns counts as the reports print them.
func floats(counts map[string]int64) map[string]float64 {
	out := make(map[string]float64, len(counts))
	for k, v := range counts {
		out[k] = float64(v)
	}
	return out
}

// peakRSS reads the process's peak resident set size (VmHWM) on Linux; 0
// elsewhere.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
