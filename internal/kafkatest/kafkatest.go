// Package kafkatest gives tests a Kafka broker: the real one named by
// VALORA_TEST_BROKERS when it is set (CI starts one with
// deploy/kafka-local/up.sh), or else an in-process kfake cluster. Every
// helper registers its cleanup with t.Cleanup and polls with deadlines
// instead of sleeping.
package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EnvBrokers names the environment variable with a real broker's address.
const EnvBrokers = "VALORA_TEST_BROKERS"

// Broker is a broker a test talks to.
type Broker struct {
	// Addrs are the bootstrap addresses.
	Addrs []string
	// Kind is "kafka" for a real broker or "kfake" for the in-process one.
	Kind string
}

// New returns the broker for a test: the real broker named by
// VALORA_TEST_BROKERS, or a new single-node kfake cluster closed when the
// test ends. It logs which one the test runs against.
func New(t testing.TB) Broker {
	t.Helper()
	if v := os.Getenv(EnvBrokers); v != "" {
		b := Broker{Addrs: strings.Split(v, ","), Kind: "kafka"}
		t.Logf("broker: real Apache Kafka at %s", v)
		return b
	}
	b, _ := NewKfake(t)
	t.Logf("(set %s to run against a real broker)", EnvBrokers)
	return b
}

// NewKfake returns a new single-node kfake cluster, closed when the test
// ends, for tests that control its requests (faults, delays), which only
// kfake can do.
func NewKfake(t testing.TB) (Broker, *kfake.Cluster) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	t.Logf("broker: in-process kfake at %s", c.ListenAddrs()[0])
	return Broker{Addrs: c.ListenAddrs(), Kind: "kfake"}, c
}

// RequireReal skips the test, saying why, unless a real broker is
// configured.
func RequireReal(t testing.TB) Broker {
	t.Helper()
	if os.Getenv(EnvBrokers) == "" {
		t.Skipf("needs a real Apache Kafka broker: set %s (deploy/kafka-local/up.sh prints it)", EnvBrokers)
	}
	return New(t)
}

var seq atomic.Int64

var unsafe = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// Name returns a topic or group name unique to this test and call, so that
// tests can share one real broker.
func Name(t testing.TB, base string) string {
	n := unsafe.ReplaceAllString(t.Name(), "_")
	if len(n) > 80 {
		n = n[len(n)-80:]
	}
	return fmt.Sprintf("%s.%s.%d.%d", base, n, time.Now().UnixNano()%1e9, seq.Add(1))
}

// Client returns a kgo client for the broker, closed at cleanup.
func (b Broker) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addrs...)}, opts...)...)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// CreateTopics creates topics with the given partition count and waits
// until their metadata is visible.
func (b Broker) CreateTopics(t testing.TB, partitions int32, topics ...string) {
	t.Helper()
	cl := b.Client(t)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopics(ctx, partitions, 1, nil, topics...)
	if err != nil {
		t.Fatalf("create topics %v: %v", topics, err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil {
			t.Fatalf("create topic %s: %v", r.Topic, r.Err)
		}
	}
	Eventually(t, 30*time.Second, func() error {
		d, err := adm.ListTopics(ctx, topics...)
		if err != nil {
			return err
		}
		for _, name := range topics {
			td, ok := d[name]
			if !ok || td.Err != nil || len(td.Partitions) != int(partitions) {
				return fmt.Errorf("topic %s not ready", name)
			}
		}
		return nil
	})
}

// Produce writes records synchronously and fails the test on any error.
func (b Broker) Produce(t testing.TB, rs ...*kgo.Record) {
	t.Helper()
	cl := b.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// ConsumeN reads topic from the start until it has at least n records, and
// fails the test if that takes longer than timeout. It reads committed
// records only.
func (b Broker) ConsumeN(t testing.TB, topic string, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl := b.Client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume %s: got %d of %d records within %v", topic, len(out), n, timeout)
		}
		if err := fs.Err0(); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("consume %s: %v", topic, err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// ConsumeAll reads every committed record of topic up to its current end
// offsets (read_committed: records of aborted or still open transactions
// are left out, and transaction markers, which take offsets, are not
// records). It fails the test if the end is not reached within a minute.
func (b Broker) ConsumeAll(t testing.TB, topic string) []*kgo.Record {
	t.Helper()
	cl := b.Client(t)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A topic created moments ago may still be electing its leaders on a
	// real broker: retry until every partition answers.
	var ends kadm.ListedOffsets
	Eventually(t, time.Minute, func() error {
		var err error
		ends, err = adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return fmt.Errorf("end offsets of %s: %w", topic, err)
		}
		return nil
	})
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return nil
	}
	rd := b.Client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	var out []*kgo.Record
	for len(want) > 0 {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume %s: %d partitions short of their end offsets within a minute: %v", topic, len(want), want)
		}
		if err := fs.Err0(); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("consume %s: %v", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; !ok || r.Offset >= end {
				return
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if r.Offset+1 >= want[r.Partition] {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

// Eventually polls fn every 20ms until it returns nil, and fails the test
// with fn's last error when timeout passes.
func Eventually(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true within %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
