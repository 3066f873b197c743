package knownids

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestFilter checks the filter's contract over many seeds: no id added is
// ever reported absent, through layers added as it grows, and ids never
// added are reported present rarely (false positives) at the designed load.
func TestFilter(t *testing.T) {
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 7))
		k := New(0)
		reserved := 0
		if seed%2 == 0 {
			reserved = rng.IntN(200_000)
			k.Reserve(reserved)
		}
		n := rng.IntN(300_000)
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("c-%d-%x", seed, rng.Uint64())
			k.Add(k.Hash(ids[i]))
		}
		for _, id := range ids {
			if !k.MayContain(k.Hash(id)) {
				t.Fatalf("seed %d: %q added but reported absent (%d ids, %d layers)", seed, id, n, len(k.layers))
			}
		}
		// Every layer is at most at its designed load, and together they
		// hold every id.
		total := 0
		for _, l := range k.layers {
			if l.n > l.max {
				t.Fatalf("seed %d: a layer holds %d ids, designed for %d", seed, l.n, l.max)
			}
			total += l.n
		}
		if total != n {
			t.Fatalf("seed %d: layers hold %d ids, want %d", seed, total, n)
		}
		// False positives: about 0.1 % per layer at its designed load.
		const probes = 20_000
		fp := 0
		for i := range probes {
			if k.MayContain(k.Hash(fmt.Sprintf("absent-%d-%d", seed, i))) {
				fp++
			}
		}
		if limit := probes * len(k.layers) / 200; fp > limit {
			t.Errorf("seed %d: %d of %d absent ids reported present with %d layers (limit %d)",
				seed, fp, probes, len(k.layers), limit)
		}
	}
}

// TestFilterGrowth checks that layers double and that a reserved first
// layer takes the load without growing.
func TestFilterGrowth(t *testing.T) {
	k := New(0)
	k.Reserve(2 * 100_000)
	for i := range 200_000 {
		k.Add(k.Hash(fmt.Sprint("id", i)))
	}
	if len(k.layers) != 1 {
		t.Fatalf("%d layers after the reserved number of ids, want 1", len(k.layers))
	}
	k.Add(k.Hash("one more"))
	if len(k.layers) != 2 || k.layers[1].max != 2*k.layers[0].max {
		t.Fatalf("after one more id: %d layers, want a second one of twice the capacity", len(k.layers))
	}
	for i, l := range k.layers {
		if got, want := 8*len(l.words), l.max*bitsPerID/8; got < want || got > want+64 {
			t.Fatalf("layer %d holds %d bytes for %d ids, want about %d", i, got, l.max, want)
		}
	}
	if e := New(0); e.MayContain(e.Hash("x")) {
		t.Fatal("an empty filter reports an id present")
	}
}

// BenchmarkFilter measures a lookup's query of the filter for an absent
// id (the case that saves a store read) and a present one, at the designed
// load of a layer of 1,048,576 ids (2 MiB), with 524,288 ids of each kind
// queried in turn, so that most queries miss the CPU caches as a task's
// do.
func BenchmarkFilter(b *testing.B) {
	const n = 1 << 20
	k := New(0)
	k.Reserve(n)
	for i := range n {
		k.Add(k.Hash(fmt.Sprint("c", i)))
	}
	absent, present := make([]string, 1<<19), make([]string, 1<<19)
	for i := range absent {
		absent[i], present[i] = fmt.Sprint("x", i), fmt.Sprint("c", (i*251)%n)
	}
	for _, tc := range []struct {
		name string
		ids  []string
	}{{"absent", absent}, {"present", present}} {
		b.Run(tc.name, func(b *testing.B) {
			hits := 0
			for i := 0; b.Loop(); i++ {
				if k.MayContain(k.Hash(tc.ids[i%len(tc.ids)])) {
					hits++
				}
			}
			if tc.name == "present" && hits != b.N {
				b.Fatalf("%d of %d present ids found", hits, b.N)
			}
		})
	}
}

// TestFilterBounded checks a filter with a memory bound over many seeds:
// its layers never take more than the bound, and no id added is reported
// absent once the bound is reached and the newest layer is overloaded.
func TestFilterBounded(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 11))
		maxBytes := 64 + rng.IntN(1<<20)
		k := New(maxBytes)
		if seed%2 == 0 {
			k.Reserve(rng.IntN(1 << 20))
		}
		n := rng.IntN(400_000)
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("c-%d-%x", seed, rng.Uint64())
			k.Add(k.Hash(ids[i]))
		}
		size := 0
		for _, l := range k.layers {
			size += 8 * len(l.words)
		}
		if size > maxBytes || size != k.bytes {
			t.Fatalf("seed %d: layers of %d bytes (counted %d), bound %d", seed, size, k.bytes, maxBytes)
		}
		for _, id := range ids {
			if !k.MayContain(k.Hash(id)) {
				t.Fatalf("seed %d: %q added but reported absent (%d ids, %d bytes)", seed, id, n, size)
			}
		}
	}
}
