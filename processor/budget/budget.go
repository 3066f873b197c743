package budget

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultWriteSetBytes is the write set of all tasks when neither a limit
// nor --write-set-mib sizes it (processor.DefaultWriteSetBytes).
const DefaultWriteSetBytes int64 = 64 << 20

// Budget divides a process's memory limit among valora's consumers
// of memory. Plan is pure arithmetic: it takes the limit and the sizes the
// operator fixed (overrides) and returns every size, or an error naming
// the flags that cannot fit together.
//
// The limit is the process's resident memory, not the Go heap alone:
//
//	limit = overhead + Go heap limit (+ Pebble's memory, with cgo)
//	Go heap limit = components + room for the collector
//
// where overhead (see overhead) covers the binary, goroutine
// stacks, the runtime's own structures and freed pages not yet returned;
// the room is a quarter of the components, so that the collector runs
// once per allocated quarter of the live heap rather than back to back;
// and the components are the decoded cache, the write set, Pebble's block
// cache and memtables, the fetch buffers, the queued records, the
// known-ids filters, and the commit cycles' working memory (store
// batches, outputs, the timers of changed customers), which no flag sets.
// In a build without cgo (the release build) Pebble's memory is in the Go
// heap and counts under the Go limit; with cgo it is allocated by the C
// allocator and the Go limit leaves it out.
//
// Without a limit, the components take their defaults and the Go limit is
// their sum: the components are bounds that the live heap rarely reaches
// all at once, and the limit keeps the heap from doubling past them.
type Budget struct {
	// Limit is the process's memory limit in bytes; 0: none. LimitFrom
	// says where it came from when not from --memory-limit (the cgroup).
	Limit     int64
	LimitFrom string
	// PebbleInGoHeap is set in a build without cgo.
	PebbleInGoHeap bool
	// The overrides; zero (or CacheCustomersSet false) means "from the
	// budget". Each names its flag in errors.
	CacheCustomers    int // customers; <= 0 with CacheCustomersSet disables the cache
	CacheCustomersSet bool
	WriteSetBytes     int64
	BlockCacheBytes   int64
}

// Sizes are the sizes a budget gives each consumer of memory.
type Sizes struct {
	// GoLimit is the Go runtime's soft memory limit
	// (runtime/debug.SetMemoryLimit).
	GoLimit int64
	// CacheCustomers is the decoded cache's capacity (processor.Config;
	// -1: none).
	CacheCustomers int
	// CacheBytes is what CacheCustomers take, by CustomerBytes.
	CacheBytes      int64
	WriteSetBytes   int64
	BlockCacheBytes int64
	// MemTableBytes is one memtable; Pebble keeps up to two.
	MemTableBytes int64
	// FetchBytes bounds the records fetched and not yet handed to the
	// tasks; QueueBytes those handed to the tasks and not yet applied.
	FetchBytes int64
	QueueBytes int64
	// KnownIDsBytes bounds the known-ids filters of all tasks.
	KnownIDsBytes int64
	// WorkingBytes is kept for the commit cycles' working memory.
	WorkingBytes int64
}

// components returns the sum of the sizes the Go limit must hold.
func (s Sizes) components(pebbleInGoHeap bool) int64 {
	n := s.CacheBytes + s.WriteSetBytes + s.FetchBytes + s.QueueBytes + s.KnownIDsBytes + s.WorkingBytes
	if pebbleInGoHeap {
		n += s.pebble()
	}
	return n
}

// pebble returns Pebble's memory: the block cache and two memtables.
func (s Sizes) pebble() int64 { return s.BlockCacheBytes + 2*s.MemTableBytes }

// CustomerBytes is the memory one customer takes in the decoded cache
// (processor.CacheCustomerBytes).
const CustomerBytes = 768

// The defaults without a limit, and the most any share of a limit takes
// unless overridden: beyond them the decoded cache gets the memory, since
// it serves the reads that the others only make cheaper.
const (
	defaultCacheCustomers  = 1_000_000
	defaultBlockCacheBytes = 128 << 20
	defaultMemTableBytes   = 64 << 20
	defaultFetchBytes      = 64 << 20
	defaultQueueBytes      = 64 << 20
	defaultKnownIDsBytes   = 64 << 20
	defaultWriteSetBytes   = DefaultWriteSetBytes
	defaultWorkingBytes    = 192 << 20
)

// The least of each share: a budget that cannot give them is refused.
const (
	minMemTableBytes = 4 << 20
	minBlockCache    = 8 << 20
	minShare         = 4 << 20 // write set, fetches, queues, known ids
	minCacheBytes    = 1 << 20 // the decoded cache, when not overridden
	minOverhead      = 32 << 20
)

// overhead returns the part of a limit outside the Go heap's components
// and room.
func overhead(limit int64) int64 { return max(minOverhead, limit/16) }

// Plan returns the sizes for b, or an error naming the flags when the
// overrides do not fit in the limit.
func (b Budget) Plan() (Sizes, error) {
	if b.Limit < 0 {
		return Sizes{}, fmt.Errorf("--memory-limit %d: must not be negative", b.Limit)
	}
	if b.Limit == 0 {
		return b.unlimited(), nil
	}
	avail := b.Limit - overhead(b.Limit)
	// usable is what the components may take: avail less the collector's
	// room of a quarter of them.
	usable := avail * 4 / 5
	if usable <= 0 {
		return Sizes{}, b.tooSmall(Sizes{}, usable)
	}
	share := func(frac, lo, hi int64) int64 { return min(hi, max(lo, usable/frac)) }
	s := Sizes{
		MemTableBytes:   share(32, minMemTableBytes, defaultMemTableBytes),
		BlockCacheBytes: cmp0(b.BlockCacheBytes, share(8, minBlockCache, defaultBlockCacheBytes)),
		WriteSetBytes:   cmp0(b.WriteSetBytes, share(16, minShare, defaultWriteSetBytes)),
		FetchBytes:      share(16, minShare, defaultFetchBytes),
		QueueBytes:      share(16, minShare, defaultQueueBytes),
		KnownIDsBytes:   share(16, minShare, defaultKnownIDsBytes),
		WorkingBytes:    share(6, minShare, defaultWorkingBytes),
	}
	rest := usable - s.components(true) // Pebble takes its share of the limit either way
	switch {
	case b.CacheCustomersSet && b.CacheCustomers <= 0:
		s.CacheCustomers = -1
	case b.CacheCustomersSet:
		s.CacheCustomers = b.CacheCustomers
		s.CacheBytes = int64(b.CacheCustomers) * CustomerBytes
		if s.CacheBytes > rest {
			return Sizes{}, b.tooSmall(s, usable)
		}
	case rest < minCacheBytes:
		return Sizes{}, b.tooSmall(s, usable)
	default:
		s.CacheCustomers = int(min(rest/CustomerBytes, math.MaxInt32))
		s.CacheBytes = int64(s.CacheCustomers) * CustomerBytes
	}
	if rest < 0 {
		return Sizes{}, b.tooSmall(s, usable)
	}
	s.GoLimit = avail
	if !b.PebbleInGoHeap {
		s.GoLimit -= s.pebble()
	}
	return s, nil
}

// unlimited returns the default sizes, or the overrides, and a Go limit
// that holds them.
func (b Budget) unlimited() Sizes {
	s := Sizes{
		CacheCustomers:  defaultCacheCustomers,
		BlockCacheBytes: cmp0(b.BlockCacheBytes, defaultBlockCacheBytes),
		WriteSetBytes:   cmp0(b.WriteSetBytes, defaultWriteSetBytes),
		MemTableBytes:   defaultMemTableBytes,
		FetchBytes:      defaultFetchBytes,
		QueueBytes:      defaultQueueBytes,
		KnownIDsBytes:   defaultKnownIDsBytes,
		WorkingBytes:    defaultWorkingBytes,
	}
	if b.CacheCustomersSet {
		s.CacheCustomers = b.CacheCustomers
		if s.CacheCustomers <= 0 {
			s.CacheCustomers = -1
		}
	}
	s.CacheBytes = int64(max(0, s.CacheCustomers)) * CustomerBytes
	s.GoLimit = s.components(b.PebbleInGoHeap)
	return s
}

// tooSmall names the limit and every override that shares it, and how
// much the components need.
func (b Budget) tooSmall(s Sizes, usable int64) error {
	limit := "--memory-limit " + FormatBytes(b.Limit)
	if b.LimitFrom != "" {
		limit += " (" + b.LimitFrom + ")"
	}
	flags := []string{limit}
	if b.CacheCustomersSet && b.CacheCustomers > 0 {
		flags = append(flags, fmt.Sprintf("--cache-customers %d (%s)", b.CacheCustomers, FormatBytes(int64(b.CacheCustomers)*CustomerBytes)))
	}
	if b.WriteSetBytes > 0 {
		flags = append(flags, "--write-set-mib "+strconv.FormatInt(b.WriteSetBytes>>20, 10))
	}
	if b.BlockCacheBytes > 0 {
		flags = append(flags, "--block-cache-mib "+strconv.FormatInt(b.BlockCacheBytes>>20, 10))
	}
	need := s.components(true) + max(s.CacheBytes, minCacheBytes)
	return fmt.Errorf("%s: do not fit: they need %s for the decoded cache, write set, Pebble, fetches, queues, known-ids filters and commit cycles, and the limit leaves %s for them (the rest is for the runtime and the garbage collector); raise --memory-limit or lower the others",
		strings.Join(flags, ", "), FormatBytes(need), FormatBytes(max(0, usable)))
}

// cmp0 returns v if it is positive, else def.
func cmp0(v, def int64) int64 {
	if v > 0 {
		return v
	}
	return def
}

// ParseBytes reads a size: a number of bytes, or a number with a unit,
// binary (KiB, MiB, GiB, TiB, or Ki, Mi, Gi, Ti as Kubernetes writes
// them) or decimal (kB, MB, GB, TB, or k, M, G, T).
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	mult, ok := byteUnits[unit]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit %q (want bytes, or KiB, MiB, GiB, TiB, or kB, MB, GB, TB)", s, unit)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q: want a size such as 1GiB or 512MiB", s)
	}
	if v*float64(mult) >= math.MaxInt64 {
		return 0, errors.New("too large")
	}
	return int64(v * float64(mult)), nil
}

var byteUnits = map[string]int64{
	"": 1, "B": 1,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
	"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
	"kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
	"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
}

// FormatBytes writes n in the largest binary unit that keeps it readable.
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return trimFloat(float64(n)/(1<<30)) + "GiB"
	case n >= 1<<20:
		return trimFloat(float64(n)/(1<<20)) + "MiB"
	case n >= 1<<10:
		return trimFloat(float64(n)/(1<<10)) + "KiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}

func trimFloat(v float64) string {
	s := strconv.FormatFloat(v, 'f', 2, 64)
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// Register exports the budget's sizes as valora_memory_budget_bytes,
// beside valora_memory_bytes (what each component holds).
func Register(reg prometheus.Registerer, b Budget, s Sizes) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "valora_memory_budget_bytes",
		Help: "The memory budget: the process's limit (process; 0: none), the Go memory limit (go_limit), and the share of each consumer of memory.",
	}, []string{"component"})
	reg.MustRegister(g)
	for name, v := range map[string]int64{
		"process": b.Limit, "go_limit": s.GoLimit, "decoded_cache": s.CacheBytes, "write_set": s.WriteSetBytes,
		"pebble_block_cache": s.BlockCacheBytes, "pebble_memtables": 2 * s.MemTableBytes,
		"fetch": s.FetchBytes, "input_queues": s.QueueBytes, "known_ids": s.KnownIDsBytes,
	} {
		g.WithLabelValues(name).Set(float64(v))
	}
}
