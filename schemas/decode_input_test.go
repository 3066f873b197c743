package schemas

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
)

// sameInputDecode checks that the hand-written and the generic decoders of
// an input record agree on body: both fail (the hand-written one with
// ReasonMalformed), or both succeed with the same value. It reports whether
// body decoded. A body whose map block count the hand-written decoder finds
// out of bounds is not compared (see decode_input.go).
func sameInputDecode(t *testing.T, body []byte) (ok bool) {
	t.Helper()
	var hi, gi Interaction
	errH := decodeInteractionBody(body, &hi)
	if errors.Is(errH, errArrayBound) {
		return false
	}
	errG := unmarshal(interactionRecord, interactionRecord.schema, body, &gi)
	sameErrors(t, "interaction", body, errH, errG)
	if errH == nil && !sameInteraction(&hi, &gi) {
		t.Fatalf("interaction decoders disagree on %x:\nhand:    %+v\ngeneric: %+v", body, hi, gi)
	}
	var hp, gp Purchase
	errHP := decodePurchaseBody(body, &hp)
	errGP := unmarshal(purchaseRecord, purchaseRecord.schema, body, &gp)
	sameErrors(t, "purchase", body, errHP, errGP)
	if errHP == nil && !reflect.DeepEqual(hp, gp) {
		t.Fatalf("purchase decoders disagree on %x:\nhand:    %+v\ngeneric: %+v", body, hp, gp)
	}
	return errH == nil || errHP == nil
}

func sameErrors(t *testing.T, what string, body []byte, hand, generic error) {
	t.Helper()
	if (hand == nil) != (generic == nil) {
		t.Fatalf("%s decoders disagree on %x:\nhand:    %v\ngeneric: %v", what, body, hand, generic)
	}
	if hand != nil {
		if r, _ := ReasonOf(hand); r != ReasonMalformed {
			t.Fatalf("hand %s decoder: reason %q, want %q (%v)", what, r, ReasonMalformed, hand)
		}
	}
}

func randomInteraction(rng *rand.Rand) *Interaction {
	v := &Interaction{
		EventID:    randomString(rng),
		CustomerID: randomString(rng),
		OccurredAt: randomLong(rng),
		Channel:    Channels[rng.IntN(NumChannels)],
		Type:       randomString(rng),
	}
	if rng.IntN(2) == 0 {
		v.Satisfaction = ptr(randomInt(rng))
	}
	if n := rng.IntN(4); n > 0 {
		v.Attributes = make(map[string]string)
		for range n {
			v.Attributes[randomString(rng)] = randomString(rng)
		}
	}
	return v
}

func randomPurchase(rng *rand.Rand) *Purchase {
	v := &Purchase{
		EventID:     randomString(rng),
		CustomerID:  randomString(rng),
		OccurredAt:  randomLong(rng),
		Kind:        []PurchaseKind{KindPurchase, KindRefund}[rng.IntN(2)],
		AmountMinor: randomLong(rng),
		Currency:    randomString(rng),
		Channel:     Channels[rng.IntN(NumChannels)],
		Category:    randomOptString(rng),
		Items:       randomInt(rng),
	}
	return v
}

// TestHandInputDecodersMatchSchema checks the hand-written Interaction and
// Purchase decoders against the generic ones over many seeds: on random
// values of both records (each body also given to the other record's
// decoders), on every kind of corruption of their encodings, and on map
// blocks with a negative count and a byte size.
func TestHandInputDecodersMatchSchema(t *testing.T) {
	c := newSOECodec(t)
	decoded, failed := 0, 0
	for seed := uint64(1); seed <= 500; seed++ {
		rng := rand.New(rand.NewPCG(seed, 17))
		var enc []byte
		var err error
		if seed%2 == 0 {
			enc, err = c.AppendInteraction(nil, randomInteraction(rng))
		} else {
			enc, err = c.AppendPurchase(nil, randomPurchase(rng))
		}
		if err != nil {
			t.Fatal(err)
		}
		body := enc[soeHeaderLen:]
		if !sameInputDecode(t, body) {
			t.Fatalf("seed %d: a valid body did not decode", seed)
		}
		for range 20 {
			b := corrupt(rng, body)
			if sameInputDecode(t, b) {
				decoded++
			} else {
				failed++
			}
		}
	}
	if decoded == 0 || failed == 0 {
		t.Fatalf("corruptions: %d decoded, %d failed: want some of each", decoded, failed)
	}

	// A map block with a negative count carries its size in bytes.
	v := sampleInteraction()
	v.Attributes = nil
	enc, err := c.AppendInteraction(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	head := enc[soeHeaderLen : len(enc)-1] // without the empty map's end
	neg := appendLong(appendLong(append([]byte(nil), head...), -2), 22)
	neg = append(appendString(appendString(appendString(appendString(neg, "campaign"), "spring"), "page"), "home"), 0)
	var got Interaction
	if !sameInputDecode(t, neg) || decodeInteractionBody(neg, &got) != nil ||
		!reflect.DeepEqual(got.Attributes, map[string]string{"campaign": "spring", "page": "home"}) {
		t.Fatalf("negative block count: got %v", got.Attributes)
	}
}

// TestDecodeInteractionReusesMap checks that decoding into a used value
// reuses its attributes map and leaves none of the old entries, and that a
// record without attributes leaves a nil map nil (no allocation).
func TestDecodeInteractionReusesMap(t *testing.T) {
	c := newSOECodec(t)
	with, err := c.AppendInteraction(nil, sampleInteraction())
	if err != nil {
		t.Fatal(err)
	}
	none := sampleInteraction()
	none.Attributes, none.Satisfaction = nil, nil
	without, err := c.AppendInteraction(nil, none)
	if err != nil {
		t.Fatal(err)
	}
	var v Interaction
	if err := c.DecodeInteraction(without, &v); err != nil || v.Attributes != nil {
		t.Fatalf("no attributes: map %v (err %v), want nil", v.Attributes, err)
	}
	if err := c.DecodeInteraction(with, &v); err != nil || v.Attributes["campaign"] != "spring-2026" {
		t.Fatalf("attributes: %v (err %v)", v.Attributes, err)
	}
	m := v.Attributes
	if err := c.DecodeInteraction(without, &v); err != nil || len(v.Attributes) != 0 ||
		reflect.ValueOf(v.Attributes).Pointer() != reflect.ValueOf(m).Pointer() {
		t.Fatalf("used value: map %v (err %v), want the same map, emptied", v.Attributes, err)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = c.DecodeInteraction(without, &v) }); n > 0 {
		t.Errorf("DecodeInteraction without attributes allocates %v times per call", n)
	}
}

// FuzzDecodeInputHand checks the hand-written input decoders against the
// generic ones on arbitrary bodies.
func FuzzDecodeInputHand(f *testing.F) {
	c := newSOECodec(f)
	for _, enc := range [][]byte{
		must(c.AppendInteraction(nil, sampleInteraction())),
		must(c.AppendInteraction(nil, minimalInteraction())),
		must(c.AppendPurchase(nil, samplePurchase())),
		must(c.AppendPurchase(nil, minimalPurchase())),
	} {
		f.Add(enc[soeHeaderLen:])
	}
	f.Fuzz(func(t *testing.T, body []byte) { sameInputDecode(t, body) })
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
