package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/gen"
	"valora/schemas"
)

// genFlags configure the traffic generator, shared by gen, dev and bench.
type genFlags struct {
	customers int
	seed      uint64
	events    int64
	rate      float64
	speed     time.Duration
	start     string
	arrival   float64
	bgnbd     string
	gg        string
	prospects float64
	interact  float64
	skew      float64
}

func (g *genFlags) register(fs *flag.FlagSet, customers int, speed time.Duration) {
	d := gen.DefaultParams()
	fs.IntVar(&g.customers, "customers", customers, "number of simulated customers")
	fs.Uint64Var(&g.seed, "seed", 1, "random seed; the same seed and flags give the same events")
	fs.Int64Var(&g.events, "events", 0, "stop after this many events (0: until the model has no more)")
	fs.Float64Var(&g.rate, "rate", 0, "most events per second of wall time (0: no limit)")
	fs.DurationVar(&g.speed, "speed", speed, "simulated time per second of wall time, e.g. 24h; 0 produces as fast as possible")
	fs.StringVar(&g.start, "start", "", "simulated start time, RFC 3339 or YYYY-MM-DD (default: two years ago)")
	fs.Float64Var(&g.arrival, "arrival-days", d.ArrivalDays, "customers' first touches spread over this many days")
	fs.StringVar(&g.bgnbd, "bgnbd", fmt.Sprintf("%g,%g,%g,%g", d.R, d.Alpha, d.A, d.B), "BG/NBD parameters r,alpha,a,b (time unit: day)")
	fs.StringVar(&g.gg, "gamma-gamma", fmt.Sprintf("%g,%g,%g", d.P, d.Q, d.Gamma), "Gamma-Gamma spend parameters p,q,gamma (major units)")
	fs.Float64Var(&g.prospects, "prospect-share", d.ProspectShare, "fraction of customers who interact but never buy")
	fs.Float64Var(&g.interact, "interaction-rate", d.InteractionRate, "mean interactions per day of an alive customer")
	fs.Float64Var(&g.skew, "skew", d.Skew, "Zipf-like skew of activity across customers (0: the pure model)")
}

func parseFloats(flagName, s string, n int) ([]float64, error) {
	parts := strings.Split(s, ",")
	if len(parts) != n {
		return nil, usagef("--%s: want %d comma-separated numbers, got %q", flagName, n, s)
	}
	out := make([]float64, n)
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return nil, usagef("--%s: %q is not a number", flagName, p)
		}
		out[i] = v
	}
	return out, nil
}

// params turns the flags into validated generator parameters.
func (g *genFlags) params(now time.Time) (gen.Params, error) {
	p := gen.DefaultParams()
	p.Customers = g.customers
	p.Seed = g.seed
	p.ArrivalDays = g.arrival
	p.ProspectShare = g.prospects
	p.InteractionRate = g.interact
	p.Skew = g.skew
	p.Start = now.AddDate(-2, 0, 0).Truncate(24 * time.Hour)
	if g.start != "" {
		t, err := time.Parse(time.RFC3339, g.start)
		if err != nil {
			t, err = time.Parse(time.DateOnly, g.start)
		}
		if err != nil {
			return p, usagef("--start: %q is neither RFC 3339 nor YYYY-MM-DD", g.start)
		}
		p.Start = t
	}
	b, err := parseFloats("bgnbd", g.bgnbd, 4)
	if err != nil {
		return p, err
	}
	p.R, p.Alpha, p.A, p.B = b[0], b[1], b[2], b[3]
	s, err := parseFloats("gamma-gamma", g.gg, 3)
	if err != nil {
		return p, err
	}
	p.P, p.Q, p.Gamma = s[0], s[1], s[2]
	if g.rate < 0 {
		return p, usagef("--rate: %g must not be negative", g.rate)
	}
	if g.speed < 0 {
		return p, usagef("--speed: %v must not be negative", g.speed)
	}
	if g.events < 0 {
		return p, usagef("--events: %d must not be negative", g.events)
	}
	if err := p.Validate(); err != nil {
		return p, usageError{err}
	}
	return p, nil
}

// producer feeds generated events to Kafka.
type producer struct {
	cl           *kgo.Client
	codec        *schemas.Codec
	interactions string
	purchases    string
	produced     atomic.Int64
	failed       atomic.Int64
	firstErr     atomic.Value
	simTime      atomic.Int64 // event time of the last event handed to Kafka
}

// run produces events from g until it is exhausted, limit events have been
// produced (limit > 0), or ctx ends. With speed > 0 it paces event time to wall time
// (speed of simulated time per second, never ahead of the wall clock); with
// rate > 0 it caps events per second. It flushes before returning.
func (p *producer) run(ctx context.Context, g *gen.Generator, limit int64, speed time.Duration, rate float64) error {
	var ev gen.Event
	start := time.Now()
	var simStart int64
	if t, ok := g.Peek(); ok {
		simStart = t
	}
	var n int64
	for limit == 0 || n < limit {
		if ctx.Err() != nil {
			break
		}
		at, ok := g.Peek()
		if !ok {
			break
		}
		if speed > 0 || rate > 0 {
			var wait time.Duration
			if speed > 0 {
				simElapsed := time.Duration(at-simStart) * time.Millisecond
				due := start.Add(time.Duration(float64(simElapsed) / float64(speed) * float64(time.Second)))
				// Never produce an event time that is ahead of the wall clock.
				if wall := time.UnixMilli(at); wall.After(due) {
					due = wall
				}
				wait = time.Until(due)
			}
			if rate > 0 {
				due := start.Add(time.Duration(float64(n) / rate * float64(time.Second)))
				wait = max(wait, time.Until(due))
			}
			if wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					continue
				case <-t.C:
				}
			}
		}
		g.Next(&ev)
		rec, err := p.record(&ev)
		if err != nil {
			return err
		}
		p.cl.Produce(ctx, rec, p.done)
		p.simTime.Store(at)
		n++
	}
	fctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.cl.Flush(fctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if e, ok := p.firstErr.Load().(error); ok {
		return fmt.Errorf("%d records failed to produce, first: %w", p.failed.Load(), e)
	}
	return nil
}

// history produces the events of g before until (Unix ms) as fast as
// Kafka takes them, then flushes. Produce it before the scorer starts: a
// backlog in both inputs is merged in event-time order, while records
// produced as the scorer reads may reach it in another order than their
// event times (late).
func (p *producer) history(ctx context.Context, g *gen.Generator, until int64) (int64, error) {
	var ev gen.Event
	var n int64
	for ctx.Err() == nil {
		at, ok := g.Peek()
		if !ok || at >= until {
			break
		}
		g.Next(&ev)
		rec, err := p.record(&ev)
		if err != nil {
			return n, err
		}
		p.cl.Produce(ctx, rec, p.done)
		p.simTime.Store(at)
		n++
	}
	if err := p.cl.Flush(ctx); err != nil {
		return n, fmt.Errorf("flush: %w", err)
	}
	if e, ok := p.firstErr.Load().(error); ok {
		return n, fmt.Errorf("%d records failed to produce, first: %w", p.failed.Load(), e)
	}
	return n, nil
}

func (p *producer) record(ev *gen.Event) (*kgo.Record, error) {
	var (
		val   []byte
		err   error
		topic string
		key   string
	)
	switch ev.Kind {
	case gen.KindPurchase:
		val, err = p.codec.AppendPurchase(nil, &ev.Purchase)
		topic, key = p.purchases, ev.Purchase.CustomerID
	default:
		val, err = p.codec.AppendInteraction(nil, &ev.Interaction)
		topic, key = p.interactions, ev.Interaction.CustomerID
	}
	if err != nil {
		return nil, fmt.Errorf("encode generated event: %w", err)
	}
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: val}, nil
}

func (p *producer) done(_ *kgo.Record, err error) {
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return
		}
		p.failed.Add(1)
		p.firstErr.CompareAndSwap(nil, err)
		return
	}
	p.produced.Add(1)
}

func runGen(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := newFlagSet("gen", "Produce synthetic Interaction and Purchase records from a BG/NBD + Gamma-Gamma customer-base model.", stderr)
	var g genFlags
	g.register(fs, 10000, 0)
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated Kafka bootstrap brokers")
	interactions := fs.String("interactions-topic", "interactions", "topic for Interaction records")
	purchases := fs.String("purchases-topic", "purchases", "topic for Purchase records")
	registry := fs.String("schema-registry", "", "schema registry URL (Confluent framing); default single-object encoding")
	var sec securityFlags
	sec.register(fs)
	var logs logFlags
	logs.register(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	log, err := logs.logger(stderr)
	if err != nil {
		return err
	}
	kafkaOpts, err := sec.clientOpts(getenv, log)
	if err != nil {
		return err
	}
	params, err := g.params(time.Now())
	if err != nil {
		return err
	}
	gn, err := gen.New(params)
	if err != nil {
		return usageError{err}
	}
	codec, err := newCodec(ctx, *registry, schemas.TopicNames{Interactions: *interactions, Purchases: *purchases})
	if err != nil {
		return err
	}
	seeds := splitList(*brokers)
	if err := checkBrokers(ctx, seeds, kafkaOpts); err != nil {
		return err
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ProducerLinger(5 * time.Millisecond),
		kgo.WithLogger(kslogAdapter{log})}, kafkaOpts...)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	p := &producer{cl: cl, codec: codec, interactions: *interactions, purchases: *purchases}
	start := time.Now()
	err = p.run(ctx, gn, g.events, g.speed, g.rate)
	el := time.Since(start)
	fmt.Fprintf(stdout, "produced %d events in %v (%.0f events/s)\n", p.produced.Load(), el.Round(time.Millisecond),
		float64(p.produced.Load())/el.Seconds())
	return err
}
