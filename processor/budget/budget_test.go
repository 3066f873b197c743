package budget

import (
	"strings"
	"testing"
)

// TestMemoryBudgetCombinations plans every combination of a limit and the
// overrides, and checks what a plan promises: the sizes fit in the limit
// with the overhead and the collector's room, each override is kept, and
// no share is under its least; a combination is refused only when its
// overrides leave the decoded cache no room, with an error naming every
// flag given.
func TestMemoryBudgetCombinations(t *testing.T) {
	const MiB, GiB = 1 << 20, 1 << 30
	limits := []int64{0, 64 * MiB, 128 * MiB, 256 * MiB, 512 * MiB, GiB, 1536 * MiB, 4 * GiB, 64 * GiB}
	type cache struct {
		n   int
		set bool
	}
	caches := []cache{{}, {0, true}, {-1, true}, {10_000, true}, {100_000, true}, {1_000_000, true}, {10_000_000, true}}
	sizes := []int64{0, 16 * MiB, 64 * MiB, 512 * MiB, 2 * GiB}
	fits, refused := 0, 0
	for _, limit := range limits {
		for _, c := range caches {
			for _, ws := range sizes {
				for _, bc := range sizes {
					for _, inHeap := range []bool{true, false} {
						b := Budget{Limit: limit, PebbleInGoHeap: inHeap, CacheCustomers: c.n, CacheCustomersSet: c.set, WriteSetBytes: ws, BlockCacheBytes: bc}
						s, err := b.Plan()
						if err != nil {
							refused++
							checkRefusal(t, b, err)
							continue
						}
						fits++
						checkPlan(t, b, s)
						// More memory never refuses what fits.
						if limit > 0 {
							bigger := b
							bigger.Limit = 2 * limit
							if _, err := bigger.Plan(); err != nil {
								t.Errorf("%+v fits but twice the limit does not: %v", b, err)
							}
						}
					}
				}
			}
		}
	}
	if fits == 0 || refused == 0 {
		t.Fatalf("%d combinations fit and %d were refused: want some of each", fits, refused)
	}
}

func checkPlan(t *testing.T, b Budget, s Sizes) {
	t.Helper()
	const MiB = 1 << 20
	if b.WriteSetBytes > 0 && s.WriteSetBytes != b.WriteSetBytes {
		t.Errorf("%+v: write set %d, want the override", b, s.WriteSetBytes)
	}
	if b.BlockCacheBytes > 0 && s.BlockCacheBytes != b.BlockCacheBytes {
		t.Errorf("%+v: block cache %d, want the override", b, s.BlockCacheBytes)
	}
	switch {
	case b.CacheCustomersSet && b.CacheCustomers <= 0:
		if s.CacheCustomers != -1 || s.CacheBytes != 0 {
			t.Errorf("%+v: cache %d (%d bytes), want none", b, s.CacheCustomers, s.CacheBytes)
		}
	case b.CacheCustomersSet:
		if s.CacheCustomers != b.CacheCustomers {
			t.Errorf("%+v: cache %d, want the override", b, s.CacheCustomers)
		}
	case b.Limit == 0:
		if s.CacheCustomers != defaultCacheCustomers {
			t.Errorf("%+v: cache %d, want the default", b, s.CacheCustomers)
		}
	default:
		if s.CacheCustomers <= 0 {
			t.Errorf("%+v: no decoded cache", b)
		}
	}
	if s.CacheBytes != int64(max(0, s.CacheCustomers))*CustomerBytes {
		t.Errorf("%+v: cache bytes %d for %d customers", b, s.CacheBytes, s.CacheCustomers)
	}
	if s.MemTableBytes < minMemTableBytes || s.BlockCacheBytes < minBlockCache || s.WriteSetBytes < minShare ||
		s.FetchBytes < minShare || s.QueueBytes < minShare || s.KnownIDsBytes < minShare || s.WorkingBytes < minShare {
		t.Errorf("%+v: a share under its least: %+v", b, s)
	}
	goHeap := s.components(b.PebbleInGoHeap)
	if b.Limit == 0 && s.GoLimit != goHeap {
		t.Errorf("%+v: Go limit %d without a limit, want the components' %d", b, s.GoLimit, goHeap)
	}
	if b.Limit > 0 && s.GoLimit < goHeap+goHeap/4 {
		t.Errorf("%+v: Go limit %d leaves the collector less than a quarter over the components (%d)", b, s.GoLimit, goHeap)
	}
	if b.Limit == 0 {
		return
	}
	total := s.GoLimit + overhead(b.Limit)
	if !b.PebbleInGoHeap {
		total += s.pebble()
	}
	if total > b.Limit {
		t.Errorf("%+v: Go limit %d + overhead %d (+ Pebble %d outside the heap) = %d, over the limit", b, s.GoLimit, overhead(b.Limit), s.pebble(), total)
	}
	// The decoded cache gets what the others leave: a quarter of 1GiB,
	// most of a larger limit.
	if !b.CacheCustomersSet && b.WriteSetBytes == 0 && b.BlockCacheBytes == 0 &&
		(b.Limit >= 1<<30 && s.CacheBytes < b.Limit/4 || b.Limit >= 4<<30 && s.CacheBytes < b.Limit/2) {
		t.Errorf("%+v: the decoded cache gets %d MiB of a %d MiB limit", b, s.CacheBytes/MiB, b.Limit/MiB)
	}
}

// checkRefusal checks that a refused budget names its flags and really
// does not fit: its overrides and the least shares of the rest exceed
// what the limit leaves for them.
func checkRefusal(t *testing.T, b Budget, err error) {
	t.Helper()
	if b.Limit == 0 {
		t.Errorf("%+v: refused without a limit: %v", b, err)
		return
	}
	msg := err.Error()
	want := []string{"--memory-limit " + FormatBytes(b.Limit)}
	if b.CacheCustomersSet && b.CacheCustomers > 0 {
		want = append(want, "--cache-customers")
	}
	if b.WriteSetBytes > 0 {
		want = append(want, "--write-set-mib")
	}
	if b.BlockCacheBytes > 0 {
		want = append(want, "--block-cache-mib")
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("%+v: error %q does not name %s", b, msg, w)
		}
	}
	usable := (b.Limit - overhead(b.Limit)) * 4 / 5
	need := max(b.WriteSetBytes, minShare) + max(b.BlockCacheBytes, minBlockCache) + 2*minMemTableBytes + 4*minShare
	switch {
	case b.CacheCustomersSet && b.CacheCustomers > 0:
		need += int64(b.CacheCustomers) * CustomerBytes
	case !b.CacheCustomersSet:
		need += minCacheBytes
	}
	// The shares not overridden take up to 1/16 (1/8 for the block
	// cache, 1/32 per memtable, 1/6 for the working memory) of what is
	// usable, past their least.
	slack := usable/16*4 + usable/8 + usable/16 + usable/6
	if need <= usable-slack {
		t.Errorf("%+v: refused though it needs %d of %d: %v", b, need, usable, err)
	}
}

func TestMemoryBudgetExamples(t *testing.T) {
	const MiB, GiB = 1 << 20, 1 << 30
	s, err := Budget{Limit: GiB, PebbleInGoHeap: true}.Plan()
	if err != nil {
		t.Fatal(err)
	}
	if s.GoLimit != GiB-64*MiB {
		t.Errorf("1GiB: Go limit %d MiB, want 960", s.GoLimit>>20)
	}
	if s.CacheCustomers < 300_000 || s.CacheCustomers > 500_000 {
		t.Errorf("1GiB: %d customers decoded, want 300,000-500,000", s.CacheCustomers)
	}
	cgo, err := Budget{Limit: GiB}.Plan()
	if err != nil {
		t.Fatal(err)
	}
	if cgo.GoLimit != s.GoLimit-s.pebble() || cgo.CacheCustomers != s.CacheCustomers {
		t.Errorf("1GiB with cgo: %+v, want Pebble's %d outside the Go limit of %+v", cgo, s.pebble(), s)
	}
	def, _ := Budget{PebbleInGoHeap: true}.Plan()
	if def.CacheCustomers != defaultCacheCustomers || def.GoLimit > 1536*MiB-overhead(1536*MiB) {
		t.Errorf("no limit: %+v: want the default cache and a Go limit that keeps the process under 1.5GiB", def)
	}
	_, err = Budget{Limit: 256 * MiB, LimitFrom: "the cgroup's", CacheCustomers: 1_000_000, CacheCustomersSet: true, WriteSetBytes: 64 * MiB}.Plan()
	if err == nil || !strings.Contains(err.Error(), "--memory-limit 256MiB (the cgroup's), --cache-customers 1000000 (732.42MiB), --write-set-mib 64: do not fit") {
		t.Errorf("256MiB and a million customers: %v", err)
	}
}

func TestParseBytes(t *testing.T) {
	f := func(in string, want int64) {
		t.Helper()
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	f("0", 0)
	f("1073741824", 1<<30)
	f("1GiB", 1<<30)
	f("1Gi", 1<<30)
	f("1.5GiB", 3<<29)
	f("512MiB", 512<<20)
	f("512 MiB", 512<<20)
	f("100M", 100e6)
	f("2GB", 2e9)
	f("64KiB", 64<<10)
	for _, bad := range []string{"", "GiB", "1XB", "-1GiB", "1.2.3MiB", "1e30GiB"} {
		if v, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) = %d, want an error", bad, v)
		}
	}
	for _, n := range []int64{1 << 30, 3 << 29, 512 << 20, 1000} {
		if got, err := ParseBytes(FormatBytes(n)); err != nil || got != n {
			t.Errorf("ParseBytes(FormatBytes(%d) = %q) = %d, %v", n, FormatBytes(n), got, err)
		}
	}
}
