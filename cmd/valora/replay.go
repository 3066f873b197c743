package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/processor"
	"valora/processor/budget"
	"valora/state"
)

// replayManifestName is the file, in a replay's state directory, that
// holds the replay's bounds: a replay started again on the directory
// resumes with the same bounds instead of taking new ones.
const replayManifestName = "VALORA-REPLAY.json"

// replayManifest is what a replay's state directory records about it.
type replayManifest struct {
	Group        string                     `json:"group"`
	Interactions string                     `json:"interactions_topic"`
	Purchases    string                     `json:"purchases_topic"`
	Erasures     string                     `json:"erasures_topic,omitempty"`
	From         string                     `json:"from,omitempty"`
	To           string                     `json:"to,omitempty"`
	Start        map[string]map[int32]int64 `json:"start"`
	End          map[string]map[int32]int64 `json:"end"`
	Created      time.Time                  `json:"created"`
}

// replaySummary is what `valora replay` prints when it ends.
type replaySummary struct {
	StateDir        string         `json:"state_dir"`
	OutputTopic     string         `json:"output_topic,omitempty"`
	ProfilesTopic   string         `json:"profiles_topic,omitempty"`
	Resumed         bool           `json:"resumed"`
	Records         int64          `json:"records"`
	Applied         int64          `json:"applied"`
	DeadLettered    int64          `json:"dead_lettered"`
	TierChanges     int64          `json:"tier_changes"`
	Profiles        int64          `json:"profiles"`
	Customers       int            `json:"customers"`
	Tiers           map[string]int `json:"tiers"`
	Stages          map[string]int `json:"lifecycle_stages"`
	ChurnRisk       int            `json:"churn_risk"`
	ValueClasses    map[string]int `json:"value_classes"`
	Digest          string         `json:"digest"`
	Seconds         float64        `json:"seconds"`
	EventsPerSecond float64        `json:"events_per_second"`
}

type replayFlags struct {
	scorer           scorerFlags
	sec              securityFlags
	output           string
	profilesOutput   string
	noOutput         bool
	from, to         string
	json             bool
	progress         bool
	progressInterval time.Duration
}

func (f *replayFlags) register(fs *flag.FlagSet) {
	s := &f.scorer
	fs.StringVar(&s.brokers, "brokers", "127.0.0.1:9092", "comma-separated Kafka bootstrap brokers")
	fs.StringVar(&s.stateDir, "state-dir", "", "a NEW state directory for the rebuilt state (or the directory of an interrupted replay, to resume it)")
	fs.StringVar(&s.group, "group", "", "consumer group of the replay (default: valora-replay- and a hash of the state directory)")
	fs.StringVar(&s.policy, "policy", "", "policy file (default: the built-in policy)")
	fs.StringVar(&s.interactions, "interactions-topic", "interactions", "input topic of Interaction records")
	fs.StringVar(&s.purchases, "purchases-topic", "purchases", "input topic of Purchase records")
	fs.StringVar(&s.erasures, "erasures-topic", processor.DefaultTopics().Erasures, "input topic of ErasureRequest records, replayed in order with the others so that an erased customer stays erased (skipped if it does not exist; empty: none)")
	fs.StringVar(&f.output, "output-topic", "", "shadow topic for the replay's tier changes (never the live one); or --no-output")
	fs.StringVar(&f.profilesOutput, "profiles-output-topic", "", "shadow topic for the replay's customer profiles (never the live one; created compacted if missing); default: none")
	fs.BoolVar(&f.noOutput, "no-output", false, "build state only: produce no tier changes or profiles")
	fs.StringVar(&s.deadLetter, "dead-letter-topic", "", "topic for the replay's dead letters (default: none; they are counted in the summary)")
	fs.StringVar(&f.from, "from", "", "start at the first record with a Kafka timestamp at or after this time (RFC 3339 or YYYY-MM-DD; default: the beginning)")
	fs.StringVar(&f.to, "to", "", "stop before the first record with a Kafka timestamp at or after this time (default: the end offsets when the replay starts)")
	fs.IntVar(&s.commitRecords, "commit-records", budget.ReplayCommitRecords, "records per task after which a commit is forced")
	fs.DurationVar(&s.commitInterval, "commit-interval", budget.ReplayCommitInterval, "longest time between commits (an interrupted replay resumes from its last commit)")
	fs.IntVar(&s.writeSetMiB, "write-set-mib", replayWriteSetMiB, writeSetUsage)
	s.cacheCustomers = optionalInt{v: budget.ReplayCacheCustomers, set: true}
	fs.Var(&s.cacheCustomers, "cache-customers", "customers kept decoded in memory (about 768 bytes each; 0 or negative: none, the write set serves the reads)")
	fs.IntVar(&s.blockCacheMiB, "block-cache-mib", 0, blockCacheUsage)
	fs.DurationVar(&s.maxClockSkew, "max-clock-skew", 24*time.Hour, "event times further than this in the future are dead-lettered")
	s.registerPartitioner(fs)
	fs.DurationVar(&s.lateness, "allowed-lateness", time.Hour, "records this far behind stream time count as late (still applied)")
	fs.BoolVar(&s.createTopics, "create-topics", false, "create missing output topics with the inputs' partition count")
	fs.StringVar(&s.registry, "schema-registry", "", "schema registry URL (Confluent framing)")
	fs.StringVar(&s.httpAddr, "http-addr", "", "serve /metrics (replay progress) on this address (default: no HTTP server)")
	fs.BoolVar(&f.json, "json", false, "print the summary as JSON")
	fs.BoolVar(&f.progress, "progress", true, "report progress on stderr: one line redrawn on a terminal, else a line per --progress-interval")
	fs.DurationVar(&f.progressInterval, "progress-interval", 5*time.Second, "progress line interval when stderr is not a terminal")
	s.logs.register(fs)
	s.http.register(fs)
	f.sec.register(fs)
}

// validate checks the flags that need no I/O.
func (f *replayFlags) validate() error {
	s := &f.scorer
	switch {
	case s.stateDir == "":
		return usagef("--state-dir: required (a new directory)")
	case f.noOutput && f.output != "":
		return usagef("--output-topic %q and --no-output: choose one", f.output)
	case f.noOutput && f.profilesOutput != "":
		return usagef("--profiles-output-topic %q and --no-output: choose one", f.profilesOutput)
	case f.profilesOutput != "" && f.profilesOutput == f.output:
		return usagef("--profiles-output-topic %q: the tier changes' shadow topic; give the profiles their own", f.profilesOutput)
	case !f.noOutput && f.output == "":
		return usagef("--output-topic: required (a shadow topic, not the live one), or --no-output to build state only")
	case f.progressInterval <= 0:
		return usagef("--progress-interval %v: want a positive duration", f.progressInterval)
	}
	if err := s.checkMemoryFlags(true); err != nil {
		return err
	}
	for _, t := range []struct{ name, v string }{{"--from", f.from}, {"--to", f.to}} {
		if t.v == "" {
			continue
		}
		if _, err := parseReplayTime(t.v); err != nil {
			return usagef("%s %q: %v", t.name, t.v, err)
		}
	}
	if f.from != "" && f.to != "" {
		from, _ := parseReplayTime(f.from)
		to, _ := parseReplayTime(f.to)
		if !from.Before(to) {
			return usagef("--from %s is not before --to %s", f.from, f.to)
		}
	}
	return nil
}

func parseReplayTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, errors.New("want RFC 3339 (2006-01-02T15:04:05Z) or a date (2006-01-02)")
	}
	return t, nil
}

func runReplay(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := newFlagSet("replay", "Rebuild state from the input topics, from the beginning (or --from) up to their end offsets\n"+
		"when it starts (or --to), in strict event-time order, into a new state directory and a shadow\n"+
		"output topic; then print a summary. A live `valora run` on the same topics is not disturbed.\n"+
		"Started again on the directory of an interrupted replay, it resumes it.", stderr)
	var f replayFlags
	f.register(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return err
	}
	f.scorer.bulkLoad = true // writes dominate: bulk-load tuning, the replay's memory budget
	if os.Getenv("GOMEMLIMIT") == "" {
		// The Go heap's share of a replay's memory budget (BENCHMARKS.md);
		// the garbage collector works harder near it instead of letting
		// the heap double.
		// Pebble's cache and memtables count too when they live in the
		// Go heap (a build without cgo).
		debug.SetMemoryLimit(budget.ReplayGoLimit + budget.PebbleHeapShare(f.scorer.blockCache()))
	}
	log, err := f.scorer.logs.logger(stderr)
	if err != nil {
		return err
	}
	kafkaOpts, err := f.sec.clientOpts(getenv, log)
	if err != nil {
		return err
	}
	s := &f.scorer
	abs, err := filepath.Abs(s.stateDir)
	if err != nil {
		return usagef("--state-dir %q: %v", s.stateDir, err)
	}
	if s.group == "" {
		sum := sha256.Sum256([]byte(abs))
		s.group = "valora-replay-" + hex.EncodeToString(sum[:6])
	}
	s.tierChanges = f.output
	s.profiles = f.profilesOutput
	s.timeMode = string(processor.TimeEvent)

	man, resumed, err := readReplayManifest(abs)
	if err != nil {
		return err
	}
	if !resumed {
		if err := checkNewStateDir(abs); err != nil {
			return err
		}
		seeds := splitList(s.brokers)
		if err := checkBrokers(ctx, seeds, kafkaOpts); err != nil {
			return err
		}
		man, err = replayBounds(ctx, seeds, kafkaOpts, &f)
		if err != nil {
			return err
		}
	} else if man.Interactions != s.interactions || man.Purchases != s.purchases || (man.Erasures != "" && man.Erasures != s.erasures) {
		return usagef("--state-dir %s: an interrupted replay of %s and %s; resume it with the same topics", s.stateDir, man.Interactions, man.Purchases)
	} else {
		s.group = man.Group
		s.erasures = man.Erasures // "" when the topic did not exist at the start
		log.Info("resuming an interrupted replay", "state_dir", abs, "group", man.Group, "from", man.From, "to", man.To)
	}
	rp := &processor.Replay{Start: man.Start, End: man.End, NoOutput: f.noOutput, NoDeadLetter: s.deadLetter == ""}
	var target int64
	for topic, parts := range man.End {
		for p, end := range parts {
			target += max(0, end-man.Start[topic][p])
		}
	}

	if !resumed {
		// The manifest goes first: a directory with state and no manifest
		// is refused, so an interrupted start must leave one.
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return fmt.Errorf("--state-dir: %w", err)
		}
		if err := writeReplayManifest(abs, man); err != nil {
			return err
		}
	}
	var prog *progress // set before the processor runs, so before any commit
	sc, err := newScorer(ctx, s, log, func(c *processor.Config) {
		c.Replay = rp
		c.ClientOpts = append(c.ClientOpts, kafkaOpts...)
		c.OnCommit = func(records int, _ time.Duration) { prog.Add(int64(records)) }
		if s.deadLetter == "" {
			// Unused (NoDeadLetter) but must not collide with another topic.
			c.Topics.DeadLetter = "valora-replay-unused-dead-letters"
		}
		if f.noOutput {
			c.Topics.TierChanges = "valora-replay-unused-tier-changes"
		}
	})
	if err != nil {
		if !resumed {
			os.Remove(filepath.Join(abs, replayManifestName))
		}
		return err
	}
	prog, err = startProgress(progressOptions{
		Label: "replay", Unit: "records", Out: stderr, Terminal: isTerminal(stderr),
		Interval: f.progressInterval, Off: !f.progress, Registerer: sc.reg,
	}, target)
	if err != nil {
		sc.store.Close()
		return err
	}
	defer prog.Stop()
	if resumed {
		// Count what the interrupted run already committed.
		for topic, parts := range man.Start {
			for p, from := range parts {
				offs, err := sc.store.Offsets(p)
				if err != nil {
					sc.store.Close()
					return err
				}
				if next, ok := offs[topic]; ok {
					prog.Add(max(0, next-from))
				}
			}
		}
	}
	start := time.Now()
	if err := sc.run(ctx); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return errors.New("interrupted; run the same command again to resume")
	}
	prog.Stop()
	el := time.Since(start)
	sum := replaySummary{StateDir: abs, OutputTopic: f.output, ProfilesTopic: f.profilesOutput, Resumed: resumed, Seconds: el.Seconds()}
	stats := sc.proc.Stats()
	sum.Records, sum.Applied, sum.DeadLettered = stats.Consumed, stats.Applied, stats.DeadLettered
	sum.TierChanges, sum.Profiles = stats.TierChanges, stats.Profiles
	if el > 0 {
		sum.EventsPerSecond = float64(sum.Records) / el.Seconds()
	}
	st, err := state.Open(state.Options{Dir: abs, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("open the rebuilt state: %w", err)
	}
	defer st.Close()
	parts, err := st.Partitions()
	if err != nil {
		return err
	}
	slices.Sort(parts)
	is, err := summarizeState(st, parts, nil)
	if err != nil {
		return err
	}
	sum.Customers, sum.Tiers, sum.Stages, sum.ChurnRisk, sum.Digest = is.Customers, is.Tiers, is.Stages, is.ChurnRisk, is.Digest
	sum.ValueClasses = is.ValueClasses
	return sum.write(stdout, f.json)
}

func (s *replaySummary) write(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	out := s.OutputTopic
	if out == "" {
		out = "(none: --no-output)"
	}
	fmt.Fprintf(w, "replay done in %.1fs: %d records (%.0f/s), %d applied, %d dead-lettered, %d tier changes to %s\n",
		s.Seconds, s.Records, s.EventsPerSecond, s.Applied, s.DeadLettered, s.TierChanges, out)
	fmt.Fprintf(w, "state %s: %d customers, %d with churn risk, digest %s\n", s.StateDir, s.Customers, s.ChurnRisk, s.Digest)
	names := make([]string, 0, len(s.Tiers))
	for k := range s.Tiers {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		fmt.Fprintf(w, "  %-20s %d\n", k, s.Tiers[k])
	}
	return nil
}

// checkNewStateDir refuses a directory that holds anything: a replay
// rebuilds state from nothing, next to the live state, never over it.
func checkNewStateDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return usagef("--state-dir %s: %v", dir, err)
	case len(entries) > 0:
		return usagef("--state-dir %s: not empty and not an interrupted replay; give a new directory (a replay never writes over existing state)", dir)
	}
	return nil
}

func readReplayManifest(dir string) (replayManifest, bool, error) {
	var m replayManifest
	b, err := os.ReadFile(filepath.Join(dir, replayManifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return m, false, nil
	}
	if err != nil {
		return m, false, fmt.Errorf("read replay manifest: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Group == "" || m.End == nil {
		return m, false, fmt.Errorf("%s: not a valid replay manifest (%v); give a new --state-dir", filepath.Join(dir, replayManifestName), err)
	}
	return m, true, nil
}

// writeReplayManifest writes the manifest atomically, next to the store's
// files (Pebble ignores files it does not know).
func writeReplayManifest(dir string, m replayManifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, replayManifestName+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write replay manifest: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, replayManifestName)); err != nil {
		return fmt.Errorf("write replay manifest: %w", err)
	}
	return nil
}

// replayBounds lists the offsets a new replay covers: from the start of
// each input partition (or the first record at or after --from) to its
// end offset now (or the first record at or after --to, if earlier).
func replayBounds(ctx context.Context, seeds []string, opts []kgo.Opt, f *replayFlags) (replayManifest, error) {
	s := &f.scorer
	m := replayManifest{Group: s.group, Interactions: s.interactions, Purchases: s.purchases,
		From: f.from, To: f.to, Created: time.Now().UTC()}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, opts...)...)
	if err != nil {
		return m, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics := []string{s.interactions, s.purchases}
	if s.erasures != "" {
		d, err := adm.ListTopics(ctx, s.erasures)
		if err != nil {
			return m, fmt.Errorf("list topics: %w", err)
		}
		if td, ok := d[s.erasures]; ok && td.Err == nil {
			topics = append(topics, s.erasures)
			m.Erasures = s.erasures
		} else {
			s.erasures = "" // none to replay
		}
	}
	list := func(what string, fn func() (kadm.ListedOffsets, error)) (map[string]map[int32]int64, error) {
		// A leader election can fail a listing for a moment: retry briefly.
		var lastErr error
		for attempt := 0; attempt < 20; attempt++ {
			offs, err := fn()
			if err == nil {
				err = offs.Error()
			}
			if err == nil {
				out := map[string]map[int32]int64{}
				offs.Each(func(o kadm.ListedOffset) {
					if out[o.Topic] == nil {
						out[o.Topic] = map[int32]int64{}
					}
					out[o.Topic][o.Partition] = o.Offset
				})
				return out, nil
			}
			lastErr = err
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
		}
		return nil, fmt.Errorf("list %s offsets of %v: %w", what, topics, lastErr)
	}
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return m, fmt.Errorf("list topics: %w", err)
	}
	for _, t := range topics {
		if d, ok := details[t]; !ok || d.Err != nil {
			return m, fmt.Errorf("input topic %q does not exist", t)
		}
	}
	if m.Start, err = list("start", func() (kadm.ListedOffsets, error) { return adm.ListStartOffsets(ctx, topics...) }); err != nil {
		return m, err
	}
	if m.End, err = list("end", func() (kadm.ListedOffsets, error) { return adm.ListEndOffsets(ctx, topics...) }); err != nil {
		return m, err
	}
	bound := func(dst map[string]map[int32]int64, at string, keepMax bool) error {
		t, _ := parseReplayTime(at)
		offs, err := list("--from/--to", func() (kadm.ListedOffsets, error) { return adm.ListOffsetsAfterMilli(ctx, t.UnixMilli(), topics...) })
		if err != nil {
			return err
		}
		for topic, parts := range offs {
			for p, o := range parts {
				if o < 0 { // no record at or after t
					o = m.End[topic][p]
				}
				cur := dst[topic][p]
				if keepMax {
					dst[topic][p] = max(cur, o)
				} else {
					dst[topic][p] = min(cur, o)
				}
			}
		}
		return nil
	}
	if f.from != "" {
		if err := bound(m.Start, f.from, true); err != nil {
			return m, err
		}
	}
	if f.to != "" {
		if err := bound(m.End, f.to, false); err != nil {
			return m, err
		}
	}
	return m, nil
}
