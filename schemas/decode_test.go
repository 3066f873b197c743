package schemas

import (
	"errors"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"testing"
)

// genericDecodeCustomer decodes a current-schema body with the schema-driven
// decoder the hand-written one replaced.
func genericDecodeCustomer(body []byte, v *Customer) error {
	*v = Customer{
		InteractionsByChannel: v.InteractionsByChannel[:0],
		PurchasesByChannel:    v.PurchasesByChannel[:0],
		RecentEventHashes:     v.RecentEventHashes[:0],
		InteractionLastAt:     v.InteractionLastAt[:0],
		Consent:               v.Consent[:0],
		Categories:            v.Categories[:0],
	}
	return unmarshal(customerStateRecord, customerStateRecord.schema, body, v)
}

// sameDecode checks that the hand-written and the generic decoders agree on
// body: both fail, or both succeed with the same value. A body whose array
// block counts the hand-written decoder finds out of bounds is not given to
// the generic one: it sums the counts in an int that wraps, and then builds
// a slice of negative length, and may crash.
func sameDecode(t *testing.T, body []byte) (ok bool) {
	t.Helper()
	var hand, generic Customer
	errH := decodeCustomerBody(body, &hand)
	if errors.Is(errH, errArrayBound) {
		return false
	}
	errG := genericDecodeCustomer(body, &generic)
	if (errH == nil) != (errG == nil) {
		t.Fatalf("decoders disagree on %x:\nhand:    %v\ngeneric: %v", body, errH, errG)
	}
	if errH != nil {
		if r, _ := ReasonOf(errH); r != ReasonMalformed {
			t.Fatalf("hand decoder: reason %q, want %q (%v)", r, ReasonMalformed, errH)
		}
		return false
	}
	if !reflect.DeepEqual(normCustomer(&hand), normCustomer(&generic)) {
		t.Fatalf("decoders disagree on %x:\nhand:    %+v\ngeneric: %+v", body, hand, generic)
	}
	return true
}

// corrupt returns a copy of body cut short, with a byte changed, or with a
// byte inserted.
func corrupt(rng *rand.Rand, body []byte) []byte {
	b := append([]byte(nil), body...)
	switch rng.IntN(3) {
	case 0:
		return b[:rng.IntN(len(b))]
	case 1:
		b[rng.IntN(len(b))] = byte(rng.Uint32())
		return b
	default:
		i := rng.IntN(len(b) + 1)
		return append(b[:i:i], append([]byte{byte(rng.Uint32())}, body[i:]...)...)
	}
}

// TestHandDecoderMatchesSchema checks the hand-written customer decoder
// against the generic one over many seeds: on random values, on every
// truncation and on random corruptions of their encodings, and on arrays
// written in blocks with a negative count and a byte size.
func TestHandDecoderMatchesSchema(t *testing.T) {
	decoded, failed := 0, 0
	for seed := uint64(1); seed <= 500; seed++ {
		rng := rand.New(rand.NewPCG(seed, 13))
		c := randomCustomer(rng)
		body := appendCustomerBody(nil, c)
		if !sameDecode(t, body) {
			t.Fatalf("seed %d: a valid body did not decode", seed)
		}
		var back Customer
		if err := decodeCustomerBody(body, &back); err != nil || !reflect.DeepEqual(normCustomer(&back), normCustomer(c)) {
			t.Fatalf("seed %d: round trip gives %+v (%v), want %+v", seed, back, err, *c)
		}
		for range 20 {
			b := corrupt(rng, body)
			if sameDecode(t, b) {
				decoded++
			} else {
				failed++
			}
		}
	}
	if decoded == 0 || failed == 0 {
		t.Fatalf("corruptions: %d decoded, %d failed: want some of each", decoded, failed)
	}

	// Blocks with a negative count carry their size in bytes.
	c := sampleCustomer()
	c.RecentEventHashes = []int64{1, -2, 3}
	c.InteractionsByChannel = nil
	body := appendCustomerBody(nil, c)
	history := appendCustomerHistory(nil, c)
	tail := appendLongs(nil, c.RecentEventHashes)
	if !sameDecode(t, body) {
		t.Fatal("sample did not decode")
	}
	head := body[:len(body)-len(tail)-len(history)]
	neg := appendLong(appendLong(append([]byte(nil), head...), -3), 3)
	neg = append(append(appendLong(appendLong(appendLong(neg, 1), -2), 3), 0), history...)
	var v Customer
	if !sameDecode(t, neg) || decodeCustomerBody(neg, &v) != nil || !reflect.DeepEqual(v.RecentEventHashes, c.RecentEventHashes) {
		t.Fatalf("negative block count: got %v, want %v", v.RecentEventHashes, c.RecentEventHashes)
	}
}

// TestDecodeCustomerReusesSlices checks that decoding into a used value
// reuses its arrays and leaves nothing of the old value behind.
func TestDecodeCustomerReusesSlices(t *testing.T) {
	big := sampleCustomer()
	big.RecentEventHashes = make([]int64, 50)
	for i := range big.RecentEventHashes {
		big.RecentEventHashes[i] = int64(i)
	}
	small := sampleCustomer()
	small.RecentEventHashes = []int64{7}
	small.ValueClass = nil
	var v Customer
	for _, c := range []*Customer{big, small} {
		b, _ := AppendCustomer(nil, c)
		if err := DecodeCustomer(b, &v); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(normCustomer(&v), normCustomer(c)) {
			t.Fatalf("decoded %+v, want %+v", v, *c)
		}
	}
	if cap(v.RecentEventHashes) < 50 {
		t.Errorf("hashes reallocated: cap %d", cap(v.RecentEventHashes))
	}
}

// FuzzDecodeCustomerHand checks the hand-written customer decoder against
// the generic one on arbitrary bodies.
func FuzzDecodeCustomerHand(f *testing.F) {
	golden, err := os.ReadFile(goldenPath(NameCustomerState))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden[soeHeaderLen:])
	f.Add(appendCustomerBody(nil, sampleCustomer()))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) { sameDecode(t, body) })
}

// TestCustomerUnionIndexIsInt checks the branch index of the customer's
// ["null", "string"] union against the generic decoder, which reads it as
// an int: padded to 5 bytes it is read, padded to 6 it is malformed, and
// of a 5-byte index that overflows 32 bits the low bits count.
func TestCustomerUnionIndexIsInt(t *testing.T) {
	c := sampleCustomer()
	c.ValueClass = nil
	body := appendCustomerBody(nil, c)
	// The fields after value_class, and what comes before its index.
	tail := appendCustomerHistory(appendLongs(appendLong(appendString(appendLong(nil, c.EvaluatedAt), c.PolicyVersion), c.TimerAt), c.RecentEventHashes), c)
	head := body[:len(body)-len(tail)-1]
	value := appendString(nil, "high_potential")
	for _, tc := range []struct {
		name  string
		union []byte
		ok    bool
	}{
		{"null", appendLong(nil, 0), true},
		{"value", append(appendLong(nil, 1), value...), true},
		{"index padded to 5 bytes", append([]byte{0x82, 0x80, 0x80, 0x80, 0x00}, value...), true},
		{"index padded to 6 bytes", []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, false},
		{"index wrapping in 5 bytes", append([]byte{0x82, 0x80, 0x80, 0x80, 0x10}, value...), true},
	} {
		b := append(append(slices.Clone(head), tc.union...), tail...)
		if ok := sameDecode(t, b); ok != tc.ok {
			t.Errorf("%s: decoded %v, want %v", tc.name, ok, tc.ok)
		}
	}
}
