package schemas

import (
	"testing"
)

// benchCodecs returns a codec per framing.
func benchCodecs(b *testing.B) []*Codec {
	_, cl := newRegistry(b)
	return []*Codec{newSOECodec(b), newConfluentCodec(b, cl)}
}

// BenchmarkDecodePurchase measures DecodePurchase in each framing.
func BenchmarkDecodePurchase(b *testing.B) {
	for _, c := range benchCodecs(b) {
		benchDecode(b, c, c.AppendPurchase, c.DecodePurchase, samplePurchase())
	}
}

// BenchmarkDecodeInteraction measures DecodeInteraction in each framing.
func BenchmarkDecodeInteraction(b *testing.B) {
	for _, c := range benchCodecs(b) {
		benchDecode(b, c, c.AppendInteraction, c.DecodeInteraction, sampleInteraction())
	}
}

// benchDecode runs a sub-benchmark named for c's framing that decodes the
// encoding of sample into one reused destination.
func benchDecode[T any](b *testing.B, c *Codec, encode func([]byte, *T) ([]byte, error), decode func([]byte, *T) error, sample *T) {
	b.Run(c.Framing().String(), func(b *testing.B) {
		in, err := encode(nil, sample)
		if err != nil {
			b.Fatal(err)
		}
		var v T
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			if err := decode(in, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
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

// BenchmarkAppendCustomer measures the hand-written customer encoder
// ("hand", what AppendCustomer runs) against the schema-driven one
// ("generic", which it replaced), in one run.
func BenchmarkAppendCustomer(b *testing.B) {
	v := sampleCustomer()
	encoders := []struct {
		name string
		fn   func([]byte) ([]byte, error)
	}{
		{"hand", func(dst []byte) ([]byte, error) { return AppendCustomer(dst, v) }},
		{"generic", func(dst []byte) ([]byte, error) {
			return appendRecord(dst, customerStateRecord.soeHeader[:], customerStateRecord, v)
		}},
	}
	for _, e := range encoders {
		b.Run(e.name, func(b *testing.B) {
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			for b.Loop() {
				out, err := e.fn(buf[:0])
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(out)))
			}
		})
	}
}

// BenchmarkAppendTierChangeGeneric is BenchmarkAppendTierChange's
// single-object case with the schema-driven encoder the hand-written one
// replaced, for the ratio.
func BenchmarkAppendTierChangeGeneric(b *testing.B) {
	c := benchCodecs(b)[0]
	v := sampleTierChange()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		out, err := appendRecord(buf[:0], c.tierChanges.header, tierChangeRecord, v)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(out)))
	}
}

// BenchmarkDecodeCustomer measures the hand-written customer decoder
// ("hand", what DecodeCustomer runs for the current schema) against the
// schema-driven one ("generic"), in one run.
func BenchmarkDecodeCustomer(b *testing.B) {
	in, err := AppendCustomer(nil, sampleCustomer())
	if err != nil {
		b.Fatal(err)
	}
	decoders := []struct {
		name string
		fn   func(*Customer) error
	}{
		{"hand", func(v *Customer) error { return DecodeCustomer(in, v) }},
		{"generic", func(v *Customer) error { return genericDecodeCustomer(in[soeHeaderLen:], v) }},
	}
	for _, d := range decoders {
		b.Run(d.name, func(b *testing.B) {
			var v Customer
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if err := d.fn(&v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendProfile measures AppendProfile on the sample profile with
// per-channel counters in place of its maps, as a task builds it: what it
// pays per changed customer per commit cycle to encode its profile.
func BenchmarkAppendProfile(b *testing.B) {
	c := benchCodecs(b)[0]
	v := sampleProfile()
	v.InteractionCounts, v.PurchaseCounts = countsOf(v.InteractionsByChannel), countsOf(v.PurchasesByChannel)
	v.InteractionsByChannel, v.PurchasesByChannel = nil, nil
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		out, err := c.AppendProfile(buf[:0], v)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(out)))
	}
}
