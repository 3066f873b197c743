package histogram

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestBatched feeds the same values, over many seeds, to a
// Batched (through several batches, added at random points) and
// to a prometheus.Histogram: the exposed counts, buckets and sums agree.
func TestBatched(t *testing.T) {
	buckets := []float64{0, 1, 10, 60, 600, 3600}
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 3))
		want := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Help: "h", Buckets: buckets})
		got := New("h", "h", buckets)
		batches := []Batch{got.Batch(), got.Batch(), got.Batch()}
		for range rng.IntN(5000) {
			var v float64
			switch rng.IntN(4) {
			case 0:
				v = buckets[rng.IntN(len(buckets))] // on a bound
			case 1:
				v = -rng.Float64() // below the lowest
			default:
				v = rng.ExpFloat64() * 300
			}
			want.Observe(v)
			b := &batches[rng.IntN(len(batches))]
			b.Observe(v)
			if rng.IntN(50) == 0 {
				b.Add()
			}
		}
		for i := range batches {
			batches[i].Add()
		}
		w, g := collectOne(t, want), collectOne(t, got)
		if w.GetSampleCount() != g.GetSampleCount() || math.Abs(w.GetSampleSum()-g.GetSampleSum()) > 1e-6*math.Max(1, math.Abs(w.GetSampleSum())) {
			t.Fatalf("seed %d: count %d sum %v, want %d and %v", seed, g.GetSampleCount(), g.GetSampleSum(), w.GetSampleCount(), w.GetSampleSum())
		}
		if len(w.Bucket) != len(g.Bucket) {
			t.Fatalf("seed %d: %d buckets, want %d", seed, len(g.Bucket), len(w.Bucket))
		}
		for i := range w.Bucket {
			if w.Bucket[i].GetUpperBound() != g.Bucket[i].GetUpperBound() || w.Bucket[i].GetCumulativeCount() != g.Bucket[i].GetCumulativeCount() {
				t.Fatalf("seed %d: bucket %d is le=%v %d, want le=%v %d", seed, i,
					g.Bucket[i].GetUpperBound(), g.Bucket[i].GetCumulativeCount(),
					w.Bucket[i].GetUpperBound(), w.Bucket[i].GetCumulativeCount())
			}
		}
	}
}

func collectOne(t *testing.T, c prometheus.Collector) *dto.Histogram {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram()
}
