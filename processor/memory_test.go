package processor

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMemoryBounded runs the processor with small memory sizes over many
// more customers than its decoded cache holds, and checks that the Go heap
// it adds stays under the sum of its sizes and a working allowance, and
// that each component of valora_memory_bytes stays under its own size.
// The broker's records are in the heap before the processor starts, and
// are left out of what is measured.
func TestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("produces and scores 100,000 customers")
	}
	const (
		customers = 100_000
		cache     = 4096
		writeSet  = 1 << 20
		fetch     = 2 << 20
		queue     = 2 << 20
		known     = 128 << 10
		// The store's block cache and memtables (startWith), counted
		// whether or not they live in the Go heap.
		pebble = 8<<20 + 2*(4<<20)
		// working covers what no size bounds: the commit cycles (up to
		// CommitRecords records), the Kafka clients, the metrics.
		working = 24 << 20
		bound   = cache*CacheCustomerBytes + writeSet + fetch + queue + known + pebble + working
	)
	h := newHarness(t, 4)
	at := time.Now().Add(-48 * time.Hour).UnixMilli()
	recs := make([]*kgo.Record, 0, 10_000)
	for i := range customers {
		recs = append(recs, h.buy(fmt.Sprintf("customer-%07d", i), at+int64(i), 1000+int64(i%500)))
		if len(recs) == cap(recs) {
			h.b.Produce(t, recs...)
			recs = recs[:0]
		}
	}
	h.b.Produce(t, recs...)
	recs = nil

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	r := h.start(t.TempDir(), "g-memory", func(c *Config) {
		c.CacheCustomers, c.WriteSetBytes = cache, writeSet
		c.FetchBytes, c.QueueBytes, c.KnownIDsBytes = fetch, queue, known
		c.CommitRecords = 2000
	})
	var peak uint64
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(3 * time.Minute)
	for r.handled() < customers {
		if time.Now().After(deadline) {
			t.Fatalf("handled %v of %d records in 3 minutes", r.handled(), customers)
		}
		<-tick.C
		runtime.GC()
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc-min(base, ms.HeapAlloc))
		checkMemoryComponents(t, r, map[string]int64{
			"decoded_cache": cache * CacheCustomerBytes,
			"write_set":     2 * writeSet,  // the arena may hold a share and half again
			"input_queues":  queue + fetch, // a fetch in flight lands past a full queue
			"known_ids":     known,
		})
	}
	t.Logf("%d customers: the processor's live heap peaked at %.1f MiB (bound %.1f MiB)", customers, float64(peak)/(1<<20), float64(bound)/(1<<20))
	if peak > bound {
		t.Errorf("the processor's live heap reached %.1f MiB, over its bound of %.1f MiB", float64(peak)/(1<<20), float64(bound)/(1<<20))
	}
}

// checkMemoryComponents checks valora_memory_bytes against each bound.
func checkMemoryComponents(t *testing.T, r *running, bounds map[string]int64) {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, mf := range mfs {
		if mf.GetName() != "valora_memory_bytes" {
			continue
		}
		for _, m := range mf.GetMetric() {
			comp := m.GetLabel()[0].GetValue()
			v := int64(m.GetGauge().GetValue())
			if b, ok := bounds[comp]; ok {
				seen++
				if v > b {
					t.Errorf("valora_memory_bytes{component=%q} = %d, over its bound of %d", comp, v, b)
				}
			}
		}
	}
	if seen != len(bounds) {
		t.Fatalf("valora_memory_bytes has %d of the %d components", seen, len(bounds))
	}
}
