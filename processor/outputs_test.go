package processor

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestOutputsKeepRecords fills outputs over several cycles with records of
// random sizes (some larger than a chunk's headroom, some larger than a
// chunk) and checks that every record of a cycle still holds its own key
// and value when the cycle ends, and that reset bounds what is kept.
func TestOutputsKeepRecords(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var o outputs
		for cycle := range 4 {
			n := rng.IntN(5 * outBlock)
			want := make([][2][]byte, n)
			for i := range n {
				key := fmt.Appendf(nil, "customer-%d-%d", cycle, i)
				size := rng.IntN(600)
				switch rng.IntN(100) {
				case 0:
					size = outHeadroom + rng.IntN(outHeadroom)
				case 1:
					size = outChunk + rng.IntN(1000)
				}
				val := make([]byte, size)
				for j := range val {
					val[j] = byte(i + j)
				}
				b := o.buf()
				k := len(b)
				b = append(b, key...)
				v := len(b)
				b = append(b, val...)
				o.keep(b)
				r := o.add()
				r.Key, r.Value = b[k:v:v], b[v:len(b):len(b)]
				want[i] = [2][]byte{key, val}
			}
			if o.len() != n {
				t.Fatalf("seed %d cycle %d: len %d, want %d", seed, cycle, o.len(), n)
			}
			for i := range n {
				r := o.at(i)
				if !bytes.Equal(r.Key, want[i][0]) || !bytes.Equal(r.Value, want[i][1]) {
					t.Fatalf("seed %d cycle %d: record %d holds key %q (%d value bytes), want %q (%d)",
						seed, cycle, i, r.Key, len(r.Value), want[i][0], len(want[i][1]))
				}
			}
			o.reset()
			if o.len() != 0 || len(o.blocks) > outRetainBlocks || len(o.chunks) > outRetainChunks {
				t.Fatalf("seed %d cycle %d: after reset %d records, %d blocks, %d chunks kept", seed, cycle, o.len(), len(o.blocks), len(o.chunks))
			}
			for _, blk := range o.blocks {
				for i := range blk {
					if blk[i].Key != nil || blk[i].Value != nil {
						t.Fatalf("seed %d cycle %d: a kept block still references a record's bytes", seed, cycle)
					}
				}
			}
		}
	}
}
