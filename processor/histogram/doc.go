// Package histogram is a Prometheus histogram for observations made on a
// hot path (Batched): per record or per timer firing, where a
// prometheus.Histogram's atomics, shared by every task's goroutine, would
// have the cores take turns at its cache lines. A task observes into a
// Batch of its own and adds it at commit, so a scrape sees the
// observations of committed cycles. Its buckets, counts and sums are those
// a prometheus.Histogram fed the same values shows (a model test checks
// it). The package imports no other package of the project.
package histogram
