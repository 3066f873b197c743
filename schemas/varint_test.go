package schemas

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// varintCases returns boundary values (every power of two and its
// neighbours) and random values of every bit length.
func varintCases(rng *rand.Rand) []uint64 {
	vs := []uint64{0, 1, 0x7f, 0x80, math.MaxUint64, math.MaxUint64 - 1}
	for s := range 64 {
		p := uint64(1) << s
		vs = append(vs, p-1, p, p+1)
		for range 50 {
			vs = append(vs, p|rng.Uint64()&(p-1))
		}
	}
	return vs
}

// TestAppendUvarint checks the array encoder, whose items of more than 56
// bits go through the loop-free appendUvarint9, against
// binary.AppendUvarint, byte for byte, after a prefix of every length mod
// 16, so that the eight-byte stores meet every alignment and capacity.
func TestAppendUvarint(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		for i, u := range varintCases(rng) {
			prefix := bytes.Repeat([]byte{0xaa}, i%16)
			want := binary.AppendUvarint(bytes.Clone(prefix), u)
			got := appendLongs(bytes.Clone(prefix), []int64{int64(u>>1) ^ -int64(u&1)})
			want = append(append(binary.AppendUvarint(bytes.Clone(prefix), 2), want[len(prefix):]...), 0) // one block of one item
			if !bytes.Equal(got, want) {
				t.Fatalf("seed %d: value %#x: got % x, want % x", seed, u, got, want)
			}
		}
	}
}

// TestLongDecodesEveryLength checks the reader's long, whose fast paths
// (one byte, or ten bytes available) and byte loop (near the end of the
// input) must agree with binary.Uvarint on every value and with each
// other on what they reject.
func TestLongDecodesEveryLength(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 11))
		for _, u := range varintCases(rng) {
			enc := binary.AppendUvarint(nil, u)
			want := int64(u>>1) ^ -int64(u&1)
			// Alone (the byte loop for more than one byte) and followed
			// by padding (the ten-byte path).
			for _, in := range [][]byte{enc, append(bytes.Clone(enc), make([]byte, maxVarintLen)...)} {
				r := bodyReader{b: in}
				if got := r.long(); r.err != nil || got != want || r.pos != len(enc) {
					t.Fatalf("seed %d: % x: got %d at %d (err %v), want %d at %d", seed, in, got, r.pos, r.err, want, len(enc))
				}
			}
		}
	}
	// A tenth byte keeps its low bit; one with a continuation bit is an
	// overflow, on both paths.
	over := bytes.Repeat([]byte{0xff}, maxVarintLen)
	tenth := append(bytes.Repeat([]byte{0x80}, 9), 0x03)
	for _, pad := range []int{0, 4} {
		r := bodyReader{b: append(bytes.Clone(tenth), make([]byte, pad)...)}
		// u = 1<<63, zig-zag decoded.
		if got := r.long(); r.err != nil || got != 1<<62 || r.pos != maxVarintLen {
			t.Errorf("pad %d: tenth byte 0x03: got %d at %d (err %v), want 1<<62 at %d", pad, got, r.pos, r.err, maxVarintLen)
		}
		r = bodyReader{b: append(bytes.Clone(over), make([]byte, pad)...)}
		if r.long(); r.err == nil {
			t.Errorf("pad %d: eleven-byte varint read without error", pad)
		}
	}
}
