package state

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestLoaderIngest checks the loader's replacement rules against a store
// that already holds customers: within a loader the last write to a key
// wins, an ingest replaces what batches wrote before it, a batch committed
// after an ingest replaces the ingest, and other partitions are untouched.
func TestLoaderIngest(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	b := s.NewBatch()
	defer b.Close()
	for _, id := range []string{"a", "b", "c"} {
		b.PutCustomer(3, id, []byte("old-"+id))
		b.PutCustomer(4, id, []byte("other-"+id))
	}
	mustCommit(t, b)

	l := s.NewLoader(3)
	defer l.Close()
	l.PutCustomer([]byte("a"), []byte("a1"))
	l.PutCustomer([]byte("b"), []byte("new-b"))
	l.PutCustomer([]byte("d"), []byte("d"))
	l.PutCustomer([]byte("e"), []byte("e"))
	l.DeleteCustomer([]byte("e"))
	l.PutCustomer([]byte("a"), []byte("a2"))
	l.DeleteCustomer([]byte("c"))
	if l.Len() != 7 {
		t.Fatalf("Len = %d, want 7", l.Len())
	}
	if err := l.Ingest(ctx); err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	if l.Len() != 0 || l.Size() != 0 {
		t.Fatalf("after Ingest: Len %d, Size %d; want an empty loader", l.Len(), l.Size())
	}
	want := []string{"a=a2", "b=new-b", "d=d"}
	if got := scanAll(t, s, 3); !slices.Equal(got, want) {
		t.Fatalf("partition 3 after ingest = %v, want %v", got, want)
	}
	if got, want := scanAll(t, s, 4), []string{"a=other-a", "b=other-b", "c=other-c"}; !slices.Equal(got, want) {
		t.Fatalf("partition 4 = %v, want %v (untouched)", got, want)
	}

	// A second ingest replaces the first; a batch after it replaces both.
	l.PutCustomer([]byte("d"), []byte("d2"))
	if err := l.Ingest(ctx); err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	b.PutCustomer(3, "d", []byte("d3"))
	mustCommit(t, b)
	if v, _ := mustGet(t, s, 3, "d"); v != "d3" {
		t.Fatalf("d = %q, want the batch's d3", v)
	}
	// A partition deleted (a restore from the start) and then loaded
	// holds only what was loaded.
	b.DeletePartition(3)
	if err := b.CommitNoSync(); err != nil {
		t.Fatal(err)
	}
	l.PutCustomer([]byte("z"), []byte("z"))
	if err := l.Ingest(ctx); err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	if got, want := scanAll(t, s, 3), []string{"z=z"}; !slices.Equal(got, want) {
		t.Fatalf("partition 3 deleted, then loaded = %v, want %v", got, want)
	}
	// An empty ingest does nothing.
	if err := l.Ingest(ctx); err != nil {
		t.Fatalf("empty Ingest: %v", err)
	}
	entries, err := os.ReadDir(filepath.Join(s.dir, ingestDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("the ingest directory still holds %d files after ingesting", len(entries))
	}
}

// TestLoaderModel runs random writes through loaders and batches, many
// seeds, against a map: ids of varied lengths that share long prefixes
// (so the sort's abbreviated keys tie and fall back to whole keys), ids
// that are prefixes of each other, the empty id, values larger than a page,
// and the store reopened at the end.
func TestLoaderModel(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(16) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			dir := t.TempDir()
			s, err := Open(Options{Dir: dir, CacheSize: 8 << 20, MemTableSize: 4 << 20})
			if err != nil {
				t.Fatal(err)
			}
			model := map[string]string{}
			id := func() string {
				switch rng.IntN(4) {
				case 0:
					return fmt.Sprintf("customer-%0*d", rng.IntN(12), rng.IntN(300))
				case 1:
					return fmt.Sprintf("customer-0000000000%d", rng.IntN(300))
				case 2:
					return string(make([]byte, rng.IntN(3))) // "", "\x00", "\x00\x00"
				default:
					return fmt.Sprintf("%x", rng.Uint64()%500)
				}
			}
			l := s.NewLoader(1)
			b := s.NewBatch()
			// Each ingest and synced batch costs a few fsyncs: about 20 of
			// them per seed.
			for step := range 300 {
				k := id()
				switch r := rng.IntN(100); {
				case r < 64:
					v := fmt.Sprintf("v%d-%d", step, rng.Uint32())
					if rng.IntN(50) == 0 {
						v += string(bytes.Repeat([]byte{'x'}, loaderPage+rng.IntN(1000)))
					}
					l.PutCustomer([]byte(k), []byte(v))
					model[k] = v
				case r < 94:
					l.DeleteCustomer([]byte(k))
					delete(model, k)
				case r < 97:
					if err := l.Ingest(ctx); err != nil {
						t.Fatalf("Ingest: %v", err)
					}
				default:
					// A batch takes over: what the loader holds must be
					// ingested first to keep the order of the writes.
					if err := l.Ingest(ctx); err != nil {
						t.Fatalf("Ingest: %v", err)
					}
					v := fmt.Sprint("batch", step)
					b.PutCustomer(1, k, []byte(v))
					model[k] = v
					mustCommit(t, b)
				}
			}
			if err := l.Ingest(ctx); err != nil {
				t.Fatalf("Ingest: %v", err)
			}
			l.Close()
			b.Close()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openTestDir(t, dir)
			got := map[string]string{}
			if err := s.ScanCustomers(1, func(id, v []byte) error {
				got[string(id)] = string(v)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, model) {
				for k, v := range model {
					if got[k] != v {
						t.Errorf("customer %q = %.20q, want %.20q", k, got[k], v)
					}
				}
				for k := range got {
					if _, ok := model[k]; !ok {
						t.Errorf("customer %q present, want absent", k)
					}
				}
				t.FailNow()
			}
		})
	}
}

// TestOpenRemovesIngestLeftovers checks that Open removes the tables a
// crash left in the ingest directory before the store ingested them.
func TestOpenRemovesIngestLeftovers(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(dir, ingestDir, "p0-1.sst")
	if err := os.MkdirAll(filepath.Dir(left), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(left, []byte("half a table"), 0o644); err != nil {
		t.Fatal(err)
	}
	openTestDir(t, dir)
	if _, err := os.Stat(filepath.Join(dir, ingestDir)); !os.IsNotExist(err) {
		t.Fatalf("ingest directory after Open: %v, want it gone", err)
	}
}

// TestPartitionEmpty checks PartitionEmpty for each kind of key a
// partition holds.
func TestPartitionEmpty(t *testing.T) {
	s := openTest(t)
	b := s.NewBatch()
	defer b.Close()
	check := func(p int32, want bool) {
		t.Helper()
		got, err := s.PartitionEmpty(p)
		if err != nil || got != want {
			t.Fatalf("PartitionEmpty(%d) = %v, %v; want %v", p, got, err, want)
		}
	}
	check(0, true)
	b.PutCustomer(0, "a", []byte("v"))
	b.SetOffset(1, "purchases", 7)
	b.PutTimer(2, 100, "a")
	b.SetClock(3, Clock{StreamTime: 5})
	b.SetChangelogNext(4, 9)
	mustCommit(t, b)
	for p := range int32(5) {
		check(p, false)
	}
	check(5, true)
	b.DeletePartition(0)
	mustCommit(t, b)
	check(0, true)
}
