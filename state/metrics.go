package state

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Collector exports a Store's Pebble statistics to Prometheus. It reads
// db.Metrics() at scrape time, so it costs nothing between scrapes. A closed
// store exports nothing.
type Collector struct {
	s *Store
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector over s, to be registered in the caller's
// registry.
func NewCollector(s *Store) prometheus.Collector {
	return &Collector{s: s}
}

func pebbleDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("valora_pebble_"+name, help, nil, nil)
}

var (
	descDiskUsage         = pebbleDesc("disk_usage_bytes", "Disk space used by the state store (sstables, WAL, obsolete files).")
	descL0Files           = pebbleDesc("l0_files", "Number of sstables in L0.")
	descL0Sublevels       = pebbleDesc("l0_sublevels", "Number of L0 sublevels.")
	descReadAmp           = pebbleDesc("read_amplification", "Read amplification: L0 sublevels plus non-empty lower levels.")
	descCompactionDebt    = pebbleDesc("compaction_debt_bytes", "Estimated bytes still to compact for the LSM to reach a stable shape.")
	descCompactionsInProg = pebbleDesc("compactions_in_progress", "Compactions running now.")
	descCompactions       = pebbleDesc("compactions_total", "Compactions since the store was opened.")
	descFlushes           = pebbleDesc("flushes_total", "Memtable flushes since the store was opened.")
	descCacheHits         = pebbleDesc("block_cache_hits_total", "Block cache hits since the store was opened.")
	descCacheMisses       = pebbleDesc("block_cache_misses_total", "Block cache misses since the store was opened.")
	descCacheSize         = pebbleDesc("block_cache_size_bytes", "Bytes held in the block cache.")
	descMemTableSize      = pebbleDesc("memtable_size_bytes", "Bytes allocated by memtables and large batches.")
	descMemTables         = pebbleDesc("memtables", "Number of memtables.")
	descWALBytesWritten   = pebbleDesc("wal_bytes_written_total", "Bytes written to the WAL since the store was opened.")
	descWriteStalls       = pebbleDesc("write_stalls_total", "Write stalls (writes delayed for flushes or compactions) since the store was opened.")
	descWriteStallSecs    = pebbleDesc("write_stall_seconds_total", "Time spent in finished write stalls since the store was opened.")
	descFsync             = pebbleDesc("wal_fsync_duration_seconds", "Duration of WAL fsyncs.")
)

// Describe sends the descriptors of every metric the collector exports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descDiskUsage, descL0Files, descL0Sublevels, descReadAmp, descCompactionDebt,
		descCompactionsInProg, descCompactions, descFlushes, descCacheHits, descCacheMisses,
		descCacheSize, descMemTableSize, descMemTables, descWALBytesWritten, descWriteStalls,
		descWriteStallSecs, descFsync,
	} {
		ch <- d
	}
}

// Collect reads the store's metrics and sends them.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return
	}
	m := s.db.Metrics()
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(descDiskUsage, float64(m.DiskSpaceUsage()))
	gauge(descL0Files, float64(m.Levels[0].TablesCount))
	gauge(descL0Sublevels, float64(m.Levels[0].Sublevels))
	gauge(descReadAmp, float64(m.ReadAmp()))
	gauge(descCompactionDebt, float64(m.Compact.EstimatedDebt))
	gauge(descCompactionsInProg, float64(m.Compact.NumInProgress))
	counter(descCompactions, float64(m.Compact.Count))
	counter(descFlushes, float64(m.Flush.Count))
	counter(descCacheHits, float64(m.BlockCache.Hits))
	counter(descCacheMisses, float64(m.BlockCache.Misses))
	gauge(descCacheSize, float64(m.BlockCache.Size))
	gauge(descMemTableSize, float64(m.MemTable.Size))
	gauge(descMemTables, float64(m.MemTable.Count))
	counter(descWALBytesWritten, float64(m.WAL.BytesWritten))
	counter(descWriteStalls, float64(s.writeStalls.Load()))
	counter(descWriteStallSecs, time.Duration(s.stallNanos.Load()).Seconds())
	if h := m.LogWriter.FsyncLatency; h != nil {
		var pb dto.Metric
		if err := h.Write(&pb); err == nil && pb.Histogram != nil {
			if hm, err := fsyncHistogram(pb.Histogram); err == nil {
				ch <- hm
			}
		}
	}
}

// MemoryUsage returns the bytes Pebble holds in its block cache and in
// its memtables; ok is false once the store is closed.
func (s *Store) MemoryUsage() (blockCache, memTables int64, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, 0, false
	}
	m := s.db.Metrics()
	return m.BlockCache.Size, int64(m.MemTable.Size), true
}

// fsyncBoundsSeconds are the bucket bounds exported for the WAL fsync
// histogram. Pebble records it in nanoseconds over about a hundred buckets;
// the exported histogram keeps, for each bound here, the largest Pebble
// bucket at or under it (cumulative counts stay exact at the bounds kept).
var fsyncBoundsSeconds = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// fsyncHistogram converts Pebble's nanosecond fsync histogram to seconds.
func fsyncHistogram(h *dto.Histogram) (prometheus.Metric, error) {
	buckets := make(map[float64]uint64, len(fsyncBoundsSeconds))
	src := h.GetBucket()
	j := 0
	for _, bound := range fsyncBoundsSeconds {
		var best *dto.Bucket
		for ; j < len(src); j++ {
			ub := src[j].GetUpperBound() / 1e9
			if ub > bound*(1+1e-9) {
				break
			}
			best = src[j]
		}
		if best != nil {
			buckets[best.GetUpperBound()/1e9] = best.GetCumulativeCount()
		}
	}
	return prometheus.NewConstHistogram(descFsync, h.GetSampleCount(), h.GetSampleSum()/1e9, buckets)
}
