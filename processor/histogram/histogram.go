package histogram

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Batched is a Prometheus histogram (a prometheus.Collector) filled in
// batches: each goroutine that observes counts in a Batch of its own,
// without atomics, and adds the batch when it chooses. Collect shows what
// the batches have added.
type Batched struct {
	desc  *prometheus.Desc
	upper []float64 // bucket upper bounds, ascending; +Inf is implied

	mu     sync.Mutex
	counts []uint64 // per bucket (not cumulative), +Inf last
	sum    float64
}

// New returns a histogram of the given buckets (sorted here; +Inf is
// implied) with no labels.
func New(name, help string, buckets []float64) *Batched {
	upper := append([]float64(nil), buckets...)
	sort.Float64s(upper)
	return &Batched{
		desc:   prometheus.NewDesc(name, help, nil, nil),
		upper:  upper,
		counts: make([]uint64, len(upper)+1),
	}
}

// Describe implements prometheus.Collector.
func (h *Batched) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

// Collect implements prometheus.Collector.
func (h *Batched) Collect(ch chan<- prometheus.Metric) {
	buckets := make(map[float64]uint64, len(h.upper))
	h.mu.Lock()
	var cum uint64
	for i, u := range h.upper {
		cum += h.counts[i]
		buckets[u] = cum
	}
	count, sum := cum+h.counts[len(h.upper)], h.sum
	h.mu.Unlock()
	ch <- prometheus.MustNewConstHistogram(h.desc, count, sum, buckets)
}

// Batch is one goroutine's observations of a Batched since its last
// Add. Not safe for concurrent use.
type Batch struct {
	h      *Batched
	counts []uint64
	sum    float64
	n      int
}

// Batch returns an empty batch of h.
func (h *Batched) Batch() Batch {
	return Batch{h: h, counts: make([]uint64, len(h.upper)+1)}
}

// Observe counts v in the bucket of the smallest upper bound >= v, as a
// prometheus.Histogram does.
func (b *Batch) Observe(v float64) {
	b.counts[sort.SearchFloat64s(b.h.upper, v)]++
	b.sum += v
	b.n++
}

// Add adds the batch to its histogram and empties it.
func (b *Batch) Add() {
	if b.n == 0 {
		return
	}
	h := b.h
	h.mu.Lock()
	for i, n := range b.counts {
		h.counts[i] += n
	}
	h.sum += b.sum
	h.mu.Unlock()
	clear(b.counts)
	b.sum, b.n = 0, 0
}
