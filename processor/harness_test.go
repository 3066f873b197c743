package processor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/kafkatest"
	"valora/processor/score"
	"valora/schemas"
	"valora/state"
)

// harness is one test's topics on one broker.
type harness struct {
	t      *testing.T
	b      kafkatest.Broker
	topics Topics
	parts  int32
	codec  *schemas.Codec
}

func newHarness(t *testing.T, parts int32) *harness {
	t.Helper()
	return newHarnessOn(t, kafkatest.New(t), parts)
}

// newHarnessOn is newHarness on a given broker.
func newHarnessOn(t *testing.T, b kafkatest.Broker, parts int32) *harness {
	t.Helper()
	h := &harness{t: t, b: b, parts: parts}
	h.topics = Topics{
		Interactions: kafkatest.Name(t, "interactions"),
		Purchases:    kafkatest.Name(t, "purchases"),
		TierChanges:  kafkatest.Name(t, "tier-changes"),
		DeadLetter:   kafkatest.Name(t, "dlq"),
		Erasures:     kafkatest.Name(t, "erasures"),
	}
	b.CreateTopics(t, parts, h.topics.Interactions, h.topics.Purchases, h.topics.TierChanges, h.topics.DeadLetter, h.topics.Erasures)
	var err error
	h.codec, err = schemas.NewCodec(context.Background(), schemas.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// withOutputs returns a copy of h writing to fresh output topics.
func (h *harness) withOutputs() *harness {
	c := *h
	c.topics.TierChanges = kafkatest.Name(h.t, "tier-changes")
	c.topics.DeadLetter = kafkatest.Name(h.t, "dlq")
	h.b.CreateTopics(h.t, h.parts, c.topics.TierChanges, c.topics.DeadLetter)
	return &c
}

// running is one processor instance over a state directory.
type running struct {
	p     *Processor
	store *state.Store
	reg   *prometheus.Registry
	done  chan error
	stop  context.CancelFunc
	h     *harness
	sent  float64 // records produced through send
}

// start opens the store in dir and runs a processor in group until stopped.
func (h *harness) start(dir, group string, tune ...func(*Config)) *running {
	h.t.Helper()
	return h.startWith(state.Options{Dir: dir}, group, tune...)
}

// startWith is start with the store's options (a file system that injects
// faults, say); the memtable size is the harness's, and so is the cache
// size unless o sets one.
func (h *harness) startWith(o state.Options, group string, tune ...func(*Config)) *running {
	h.t.Helper()
	return h.launch(o, group, nil, tune...)
}

// startCrashing is start with a processor that c crashes (see crasher).
func (h *harness) startCrashing(dir, group string, c *crasher, tune ...func(*Config)) *running {
	h.t.Helper()
	return h.launch(state.Options{Dir: dir}, group, c.attach, tune...)
}

// launch is startWith, with attach (if not nil) called on the processor
// before it runs: a crasher's, or a test sink's.
func (h *harness) launch(o state.Options, group string, attach func(*Processor), tune ...func(*Config)) *running {
	h.t.Helper()
	dir := o.Dir
	o.CacheSize, o.MemTableSize = cmp.Or(o.CacheSize, 8<<20), 4<<20
	st, err := state.Open(o)
	if err != nil {
		h.t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg := Config{
		Brokers:        h.b.Addrs,
		Group:          group,
		Topics:         h.topics,
		Policy:         score.DefaultPolicy(),
		Codec:          h.codec,
		Store:          st,
		CommitInterval: 20 * time.Millisecond,
		Registerer:     reg,
	}
	if os.Getenv("VALORA_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("dir", filepath.Base(dir))
	}
	for _, f := range tune {
		f(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		st.Close()
		h.t.Fatal(err)
	}
	if attach != nil {
		attach(p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: p, store: st, reg: reg, done: make(chan error, 1), stop: cancel, h: h}
	go func() { r.done <- p.Run(ctx) }()
	h.t.Cleanup(func() { r.shutdown(h.t, false) })
	return r
}

// shutdown stops the instance, cleanly or as a crash (abandon: no task
// commits any more, nothing is committed to the group), and closes its
// store. It returns Run's error.
func (r *running) shutdown(t *testing.T, crash bool) error {
	t.Helper()
	if r.store == nil {
		return nil
	}
	if crash {
		r.p.abandon()
	}
	r.stop()
	var err error
	select {
	case err = <-r.done:
	case <-time.After(time.Minute):
		t.Fatal("processor did not stop within a minute")
	}
	if cerr := r.store.Close(); cerr != nil {
		t.Errorf("close store: %v", cerr)
	}
	r.store = nil
	return err
}

// send produces recs and waits until the instance has handled every record
// sent through it.
func (r *running) send(recs ...*kgo.Record) {
	r.h.t.Helper()
	r.h.b.Produce(r.h.t, recs...)
	r.sent += float64(len(recs))
	r.waitHandled(r.h.t, r.sent)
}

// buy is a purchase of amount minor units by id at event time at, its
// event id made of both.
func (h *harness) buy(id string, at, amount int64) *kgo.Record {
	h.t.Helper()
	return h.purchase(schemas.Purchase{EventID: fmt.Sprintf("%s@%d", id, at), CustomerID: id, OccurredAt: at, AmountMinor: amount})
}

// handled is consumed records whose outcome (applied or dead-lettered) is
// durable.
func (r *running) handled() float64 {
	return sumCounter(r.p.m.applied) + sumCounter(r.p.m.deadLettered)
}

func sumCounter(v *prometheus.CounterVec) float64 {
	ch := make(chan prometheus.Metric, 64)
	go func() { v.Collect(ch); close(ch) }()
	var s float64
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err == nil {
			s += d.GetCounter().GetValue()
		}
	}
	return s
}

// waitHandled polls until n records are handled.
func (r *running) waitHandled(t *testing.T, n float64) {
	t.Helper()
	kafkatest.Eventually(t, 90*time.Second, func() error {
		select {
		case err := <-r.done:
			r.done <- err
			return errors.Join(errors.New("processor stopped"), err)
		default:
		}
		if got := r.handled(); got < n {
			return fmt.Errorf("handled %v of %v records", got, n)
		}
		return nil
	})
}

// snapshot reads every customer of the store as encoded bytes.
func snapshot(t *testing.T, dir string) map[string]schemas.Customer {
	t.Helper()
	st, err := state.Open(state.Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := map[string]schemas.Customer{}
	parts, err := st.Partitions()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		err := st.ScanCustomers(p, func(id, v []byte) error {
			var c schemas.Customer
			if err := schemas.DecodeCustomer(v, &c); err != nil {
				return err
			}
			out[string(id)] = c
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func (h *harness) purchase(e schemas.Purchase) *kgo.Record {
	h.t.Helper()
	if e.Kind == "" {
		e.Kind = schemas.KindPurchase
	}
	if e.Channel == "" {
		e.Channel = schemas.ChannelWeb
	}
	if e.Currency == "" {
		e.Currency = "USD"
	}
	if e.Items == 0 {
		e.Items = 1
	}
	v, err := h.codec.AppendPurchase(nil, &e)
	if err != nil {
		h.t.Fatal(err)
	}
	return &kgo.Record{Topic: h.topics.Purchases, Key: []byte(e.CustomerID), Value: v}
}

// erasure is a request to erase id, keyed by id.
func (h *harness) erasure(id string, at int64) *kgo.Record {
	h.t.Helper()
	v, err := h.codec.AppendErasure(nil, &schemas.ErasureRequest{CustomerID: id, RequestedAt: at})
	if err != nil {
		h.t.Fatal(err)
	}
	return &kgo.Record{Topic: h.topics.Erasures, Key: []byte(id), Value: v}
}

func (h *harness) interaction(e schemas.Interaction) *kgo.Record {
	h.t.Helper()
	if e.Channel == "" {
		e.Channel = schemas.ChannelWeb
	}
	if e.Type == "" {
		e.Type = "visit"
	}
	v, err := h.codec.AppendInteraction(nil, &e)
	if err != nil {
		h.t.Fatal(err)
	}
	return &kgo.Record{Topic: h.topics.Interactions, Key: []byte(e.CustomerID), Value: v}
}

// handledInDir is handledInStore for a store that is not open: 0 when the
// directory holds no store yet.
func handledInDir(t *testing.T, dir string) int {
	t.Helper()
	st, err := state.Open(state.Options{Dir: dir, ReadOnly: true})
	if err != nil {
		return 0
	}
	defer st.Close()
	return handledInStore(t, st)
}

type offsetReader interface {
	Partitions() ([]int32, error)
	Offsets(int32) (map[string]int64, error)
}
