package state

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
)

const benchKeys = 100_000

// benchID writes the id of benchmark customer i into dst.
func benchID(dst []byte, i uint64) []byte {
	dst = append(dst[:0], "cust-"...)
	return binary.BigEndian.AppendUint64(dst, i)
}

// openBenchStore returns a store with default options holding benchKeys
// customers of ~100 B in partition 0, flushed and compacted like a long-lived
// store.
func openBenchStore(b *testing.B) *Store {
	b.Helper()
	s, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	batch := s.NewBatch()
	defer batch.Close()
	val := make([]byte, 100)
	var id []byte
	for i := range uint64(benchKeys) {
		id = benchID(id, i)
		batch.PutCustomer(0, string(id), val)
		if batch.Len() == 1000 {
			if err := batch.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := batch.Commit(); err != nil {
		b.Fatal(err)
	}
	if err := s.Compact(b.Context()); err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkGetCustomer(b *testing.B) {
	s := openBenchStore(b)
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		rng := rand.New(rand.NewPCG(1, 2))
		id := make([]byte, 0, 32)
		dst := make([]byte, 0, 256)
		for b.Loop() {
			id = benchID(id, rng.Uint64N(benchKeys))
			var found bool
			var err error
			dst, found, err = s.GetCustomer(0, id, dst[:0])
			if err != nil || !found {
				b.Fatalf("GetCustomer: %v, found=%v", err, found)
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		rng := rand.New(rand.NewPCG(1, 2))
		id := make([]byte, 0, 32)
		dst := make([]byte, 0, 256)
		for b.Loop() {
			id = benchID(id, benchKeys+rng.Uint64N(benchKeys))
			var found bool
			var err error
			dst, found, err = s.GetCustomer(0, id, dst[:0])
			if err != nil || found {
				b.Fatalf("GetCustomer: %v, found=%v", err, found)
			}
		}
	})
}

// BenchmarkBatchCommit1000 measures one commit cycle: 1000 customer puts and
// an offset, committed with a sync, into a store of benchKeys customers.
func BenchmarkBatchCommit1000(b *testing.B) {
	s := openBenchStore(b)
	batch := s.NewBatch()
	defer batch.Close()
	ids := make([]string, benchKeys)
	for i := range ids {
		ids[i] = string(benchID(nil, uint64(i)))
	}
	val := make([]byte, 100)
	rng := rand.New(rand.NewPCG(3, 4))
	b.ReportAllocs()
	next := int64(0)
	for b.Loop() {
		for range 1000 {
			batch.PutCustomer(0, ids[rng.IntN(len(ids))], val)
		}
		next += 1000
		batch.SetOffset(0, "purchases", next)
		if err := batch.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/put")
}

func BenchmarkCache(b *testing.B) {
	const capacity = 100_000
	keys := make([]string, 2*capacity)
	bkeys := make([][]byte, len(keys))
	for i := range keys {
		keys[i] = fmt.Sprintf("cust-%08d", i)
		bkeys[i] = []byte(keys[i])
	}
	b.Run("get-hit", func(b *testing.B) {
		c := NewCache[*int](capacity)
		v := new(int)
		for _, k := range keys[:capacity] {
			c.Put(k, v)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok := c.Get(bkeys[i]); !ok {
				b.Fatal("miss")
			}
			i++
			if i == capacity {
				i = 0
			}
		}
	})
	b.Run("put-evict", func(b *testing.B) {
		c := NewCache[*int](capacity)
		v := new(int)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c.Put(keys[i], v)
			i++
			if i == len(keys) {
				i = 0
			}
		}
	})
}
