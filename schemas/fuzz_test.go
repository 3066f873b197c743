package schemas

import (
	"bytes"
	"maps"
	"os"
	"reflect"
	"testing"
)

// fuzzDecoder checks that decoding arbitrary bytes never panics, fails only
// with a *DecodeError, and that whatever decodes re-encodes to something
// that decodes to the same value, also into a destination already in use.
func fuzzDecoder[T any](
	f *testing.F,
	rc recordCase,
	decode func([]byte, *T) error,
	encode func([]byte, *T) ([]byte, error),
	deterministic bool, // no maps: equal values have equal encodings
) {
	c := newSOECodec(f)
	golden, err := os.ReadFile(goldenPath(rc.name))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	for _, s := range rc.samples() {
		b, err := rc.append(c, nil, s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
		f.Add(append(b, 0))
		f.Add(append([]byte{0, 0, 0, 0, 1}, b[soeHeaderLen:]...))
	}
	f.Add([]byte{})
	f.Add([]byte{0xC3})

	same := func(a, b *T) bool {
		if ia, ok := any(a).(*Interaction); ok {
			return sameInteraction(ia, any(b).(*Interaction))
		}
		if !deterministic {
			return reflect.DeepEqual(a, b)
		}
		// Compare encodings, so that NaN equals NaN.
		ea, err1 := encode(nil, a)
		eb, err2 := encode(nil, b)
		return err1 == nil && err2 == nil && bytes.Equal(ea, eb)
	}

	f.Fuzz(func(t *testing.T, in []byte) {
		var v T
		if err := decode(in, &v); err != nil {
			if _, ok := ReasonOf(err); !ok {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		enc, err := encode(nil, &v)
		if err != nil {
			t.Fatalf("decoded value does not encode: %v\n%+v", err, v)
		}
		var again T
		if err := decode(enc, &again); err != nil {
			t.Fatalf("re-encoded value does not decode: %v", err)
		}
		if !same(&v, &again) {
			t.Fatalf("round trip changed the value:\n%+v\n%+v", v, again)
		}
		used := rc.samples()[0].(*T)
		if err := decode(in, used); err != nil {
			t.Fatalf("decode into a used value: %v", err)
		}
		if !same(&v, used) {
			t.Fatalf("decode into a used value differs:\n%+v\n%+v", v, *used)
		}
	})
}

func FuzzDecodeInteraction(f *testing.F) {
	c := newSOECodec(f)
	fuzzDecoder(f, recordCaseNamed(f, NameInteraction), c.DecodeInteraction, c.AppendInteraction, false)
}

func FuzzDecodePurchase(f *testing.F) {
	c := newSOECodec(f)
	fuzzDecoder(f, recordCaseNamed(f, NamePurchase), c.DecodePurchase, c.AppendPurchase, true)
}

func FuzzDecodeErasure(f *testing.F) {
	c := newSOECodec(f)
	fuzzDecoder(f, recordCaseNamed(f, NameErasureRequest), c.DecodeErasure, c.AppendErasure, true)
}

func FuzzDecodeTierChange(f *testing.F) {
	c := newSOECodec(f)
	fuzzDecoder(f, recordCaseNamed(f, NameTierChange), c.DecodeTierChange, c.AppendTierChange, true)
}

func FuzzDecodeCustomer(f *testing.F) {
	fuzzDecoder(f, recordCaseNamed(f, NameCustomerState), DecodeCustomer, AppendCustomer, true)
}

// sameInteraction reports whether a and b are equal, a nil attributes map
// equal to an empty one: the hand-written decoder leaves a nil map nil when
// there are no attributes, where the generic one makes an empty map.
func sameInteraction(a, b *Interaction) bool {
	x, y := *a, *b
	x.Attributes, y.Attributes = nil, nil
	return reflect.DeepEqual(x, y) && maps.Equal(a.Attributes, b.Attributes)
}

// recordCaseNamed returns the record case of the schema named name.
func recordCaseNamed(f *testing.F, name string) recordCase {
	for _, rc := range recordCases {
		if rc.name == name {
			return rc
		}
	}
	f.Fatalf("no record case %s", name)
	return recordCase{}
}
