package schemas

import (
	"testing"
)

// benchCodecs returns a codec per framing.
func benchCodecs(b *testing.B) []*Codec {
	_, cl := newRegistry(b)
	return []*Codec{newSOECodec(b), newConfluentCodec(b, cl)}
}

func BenchmarkDecodePurchase(b *testing.B) {
	for _, c := range benchCodecs(b) {
		b.Run(c.Framing().String(), func(b *testing.B) {
			in, err := c.AppendPurchase(nil, samplePurchase())
			if err != nil {
				b.Fatal(err)
			}
			var v Purchase
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if err := c.DecodePurchase(in, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeInteraction(b *testing.B) {
	for _, c := range benchCodecs(b) {
		b.Run(c.Framing().String(), func(b *testing.B) {
			in, err := c.AppendInteraction(nil, sampleInteraction())
			if err != nil {
				b.Fatal(err)
			}
			var v Interaction
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if err := c.DecodeInteraction(in, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendTierChange(b *testing.B) {
	for _, c := range benchCodecs(b) {
		b.Run(c.Framing().String(), func(b *testing.B) {
			v := sampleTierChange()
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			for b.Loop() {
				out, err := c.AppendTierChange(buf[:0], v)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(out)))
			}
		})
	}
}

func BenchmarkAppendCustomer(b *testing.B) {
	v := sampleCustomer()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		out, err := AppendCustomer(buf[:0], v)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(out)))
	}
}

func BenchmarkDecodeCustomer(b *testing.B) {
	in, err := AppendCustomer(nil, sampleCustomer())
	if err != nil {
		b.Fatal(err)
	}
	var v Customer
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if err := DecodeCustomer(in, &v); err != nil {
			b.Fatal(err)
		}
	}
}
