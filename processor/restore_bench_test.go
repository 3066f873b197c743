package processor

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/kafkatest"
	"valora/processor/changelog"
	"valora/processor/score"
	"valora/schemas"
	"valora/state"
)

// BenchmarkRestore measures a task's restore from its changelog partition
// into an empty store: 500,000 customer records (in random key order, as
// customers change) in cycles of 1,000, read with read_committed and
// written to Pebble, ending with a synced commit. It reports changelog
// records per second for both ways of writing: the sorted tables that
// Pebble ingests, which a large restore uses, and the batches of a small
// one. The broker is kfake in-process (sharing the CPU) unless
// VALORA_TEST_BROKERS is set.
func BenchmarkRestore(b *testing.B) {
	const customers, cycle = 500_000, 1_000
	br := kafkatest.New(b)
	topic := kafkatest.Name(b, "changelog")
	inI, inP := kafkatest.Name(b, "in-i"), kafkatest.Name(b, "in-p")
	br.CreateTopics(b, 1, topic, inI, inP)
	cl := br.Client(b, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5*time.Millisecond))
	ctx := context.Background()
	pol := score.DefaultPolicy()
	var buf []byte
	var recs []*kgo.Record
	var seq uint64
	produced := 0
	// The changelog names customers in the order they changed, not in key
	// order: a fixed permutation.
	ids := rand.New(rand.NewPCG(1, 2)).Perm(customers)
	for i := range customers {
		if i%cycle == 0 {
			seq++
		}
		c := &schemas.Customer{CustomerID: fmt.Sprintf("customer-%07d", ids[i])}
		if _, err := pol.ApplyPurchase(c, &schemas.Purchase{EventID: fmt.Sprint("e", i), CustomerID: c.CustomerID,
			OccurredAt: 1_700_000_000_000 + int64(i)*1000, Kind: schemas.KindPurchase, AmountMinor: 2500, Currency: "USD",
			Channel: schemas.ChannelWeb, Items: 1}); err != nil {
			b.Fatal(err)
		}
		buf = changelog.AppendHeader(buf[:0], seq)
		buf, _ = schemas.AppendCustomer(buf, c)
		recs = append(recs, &kgo.Record{Topic: topic, Key: append([]byte{changelog.KindCustomer}, c.CustomerID...), Value: append([]byte(nil), buf...)})
		if i%cycle == cycle-1 {
			pos := [numSources]int64{int64(i), int64(i)}
			names := [numSources]string{inI, inP}
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte{changelog.KindCheckpoint}, Value: changelog.AppendCheckpoint(nil, seq, int64(i)*1000, names[:], pos[:], 0)})
		}
		if len(recs) >= 10_000 {
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			produced += len(recs)
			recs = recs[:0]
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	produced += len(recs)
	codec, err := schemas.NewCodec(ctx, schemas.Options{})
	if err != nil {
		b.Fatal(err)
	}
	p, err := New(Config{Brokers: br.Addrs, Group: "bench", Policy: pol, Codec: codec, Store: &state.Store{},
		Topics: Topics{Interactions: inI, Purchases: inP, Changelog: topic}})
	if err != nil {
		b.Fatal(err)
	}
	p.partitions = 1
	for _, path := range []struct {
		name     string
		ingestAt int64
	}{{"tables", 0}, {"batches", math.MaxInt64}} {
		b.Run(path.name, func(b *testing.B) {
			p.cfg.restoreIngestAt = path.ingestAt
			var took time.Duration
			for b.Loop() {
				b.StopTimer()
				st, err := state.Open(state.Options{Dir: filepath.Join(b.TempDir(), "state")})
				if err != nil {
					b.Fatal(err)
				}
				p.cfg.Store = st
				t := newTask(p, 0, cl)
				b.StartTimer()
				start := time.Now()
				if err := t.restore(ctx); err != nil {
					b.Fatal(err)
				}
				took += time.Since(start)
				b.StopTimer()
				if n, err := st.CountCustomers(0); err != nil || n != customers {
					b.Fatalf("restored %d customers (%v), want %d", n, err, customers)
				}
				st.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(produced)*float64(b.N)/took.Seconds(), "records/s")
		})
	}
}
