package processor

import (
	rtmetrics "runtime/metrics"

	"github.com/prometheus/client_golang/prometheus"

	"valora/processor/budget"
)

// CacheCustomerBytes is the memory one customer takes in the decoded cache
// (Config.CacheCustomers): the decoded customer, its maps and strings, and
// its cache entry, as heap profiles of the daemon measured them
// (BENCHMARKS.md). Budgets divide by it, and valora_memory_bytes
// multiplies the cached customers by it.
const CacheCustomerBytes = budget.CustomerBytes

// The components of valora_memory_bytes that the tasks account for.
const (
	memDecodedCache = iota
	memWriteSet
	memInputQueues
	memKnownIDs
	numMem
)

var memNames = [numMem]string{"decoded_cache", "write_set", "input_queues", "known_ids"}

var descMemory = prometheus.NewDesc("valora_memory_bytes",
	"Memory held by each consumer of it: decoded_cache (cached customers times their measured size), write_set, "+
		"input_queues (records waiting for the merge), known_ids (filters), pebble_block_cache, pebble_memtables, "+
		"and go_heap (the Go heap's objects, which hold the others, and Pebble's in a build without cgo).",
	[]string{"component"}, nil)

// memoryCollector exports valora_memory_bytes at scrape time: the tasks'
// components as they last published them (at their last commit), the
// store's Pebble memory, and the Go heap.
type memoryCollector struct{ p *Processor }

var _ prometheus.Collector = (*memoryCollector)(nil)

func (c *memoryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descMemory }

func (c *memoryCollector) Collect(ch chan<- prometheus.Metric) {
	send := func(name string, v int64) {
		ch <- prometheus.MustNewConstMetric(descMemory, prometheus.GaugeValue, float64(v), name)
	}
	for i, name := range memNames {
		send(name, c.p.mem[i].Load())
	}
	if st := c.p.cfg.Store; st != nil {
		if cache, memtables, ok := st.MemoryUsage(); ok {
			send("pebble_block_cache", cache)
			send("pebble_memtables", memtables)
		}
	}
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	rtmetrics.Read(s)
	if s[0].Value.Kind() == rtmetrics.KindUint64 {
		send("go_heap", int64(s[0].Value.Uint64()))
	}
}

// publishMemory adds what the task's components changed since the last
// call to the processor's totals; once per commit, off the per-record
// path.
func (t *task) publishMemory() {
	var now [numMem]int64
	now[memDecodedCache], now[memWriteSet], now[memKnownIDs] = t.custs.memory()
	for _, b := range t.qBytes {
		now[memInputQueues] += int64(b)
	}
	for i, v := range now {
		if d := v - t.shownMem[i]; d != 0 {
			t.p.mem[i].Add(d)
			t.shownMem[i] = v
		}
	}
}

// dropMemory removes the task's part of the totals when it stops.
func (t *task) dropMemory() {
	for i, v := range t.shownMem {
		t.p.mem[i].Add(-v)
		t.shownMem[i] = 0
	}
}
