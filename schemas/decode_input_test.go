package schemas

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// genericDecodeInteraction decodes a current-schema body with the
// schema-driven decoder the hand-written one replaced, as DecodeInteraction
// did: the destination's attribute map is cleared and reused.
func genericDecodeInteraction(body []byte, v *Interaction) error {
	attrs := v.Attributes
	clear(attrs)
	*v = Interaction{Attributes: attrs}
	return unmarshal(interactionRecord, interactionRecord.schema, body, v)
}

// genericDecodePurchase is genericDecodeInteraction for a Purchase.
func genericDecodePurchase(body []byte, v *Purchase) error {
	*v = Purchase{}
	return unmarshal(purchaseRecord, purchaseRecord.schema, body, v)
}

// inputCase is an input record with its two decoders.
type inputCase[T any] struct {
	hand, generic func([]byte, *T) error
	used          func() *T // a destination already in use
}

var (
	interactionCase = inputCase[Interaction]{
		hand:    decodeInteractionBody,
		generic: genericDecodeInteraction,
		used: func() *Interaction {
			v := sampleInteraction()
			v.Attributes["stale"] = "entry"
			return v
		},
	}
	purchaseCase = inputCase[Purchase]{
		hand:    decodePurchaseBody,
		generic: genericDecodePurchase,
		used:    samplePurchase,
	}
)

// show formats a decoded value for a failure message, pointers followed.
func show(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// same checks that the hand-written and the generic decoders agree on body,
// decoding into a zero and into a used destination: both fail with the same
// Reason, or both succeed with the same value. It returns whether body
// decoded.
func (ic inputCase[T]) same(t testing.TB, body []byte) (ok bool) {
	t.Helper()
	for _, dst := range []func() *T{func() *T { return new(T) }, ic.used} {
		h, g := dst(), dst()
		errH, errG := ic.hand(body, h), ic.generic(body, g)
		if (errH == nil) != (errG == nil) {
			t.Fatalf("decoders disagree on %x:\nhand:    %v\ngeneric: %v", body, errH, errG)
		}
		if errH != nil {
			rh, okH := ReasonOf(errH)
			rg, okG := ReasonOf(errG)
			if !okH || !okG || rh != rg {
				t.Fatalf("decoders fail with different reasons on %x:\nhand:    %v\ngeneric: %v", body, errH, errG)
			}
			continue
		}
		if !reflect.DeepEqual(h, g) {
			t.Fatalf("decoders disagree on %x:\nhand:    %s\ngeneric: %s", body, show(h), show(g))
		}
		ok = true
	}
	return ok
}

// inputString returns a random string: short or long, ASCII or not, now
// and then not even UTF-8.
func inputString(rng *rand.Rand) string {
	if rng.IntN(20) == 0 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return string(b)
	}
	return randomString(rng)
}

func randomInteraction(rng *rand.Rand) *Interaction {
	v := &Interaction{
		EventID:    inputString(rng),
		CustomerID: inputString(rng),
		OccurredAt: randomLong(rng),
		Channel:    Channels[rng.IntN(NumChannels)],
		Type:       inputString(rng),
	}
	if rng.IntN(2) == 0 {
		v.Satisfaction = ptr(randomInt(rng))
	}
	switch rng.IntN(10) {
	case 0:
		return v // nil: encodes as an empty map
	case 1:
		v.Attributes = map[string]string{}
	case 2:
		// More than one block (of 100), with short entries to keep
		// the body small.
		n := 100 + rng.IntN(50)
		v.Attributes = make(map[string]string, n)
		for i := range n {
			v.Attributes["k"+strconv.Itoa(i)] = strconv.Itoa(rng.IntN(1000))
		}
	default:
		n := 1 + rng.IntN(4)
		v.Attributes = make(map[string]string, n)
		for i := range n {
			v.Attributes[inputString(rng)+strconv.Itoa(i)] = inputString(rng)
		}
	}
	return v
}

func randomPurchase(rng *rand.Rand) *Purchase {
	return &Purchase{
		EventID:     inputString(rng),
		CustomerID:  inputString(rng),
		OccurredAt:  randomLong(rng),
		Kind:        kinds[rng.IntN(len(kinds))],
		AmountMinor: randomLong(rng),
		Currency:    inputString(rng),
		Channel:     Channels[rng.IntN(NumChannels)],
		Category:    randomOptString(rng),
		Items:       randomInt(rng),
	}
}

// corrupt returns a copy of body with one random corruption: cut short,
// a byte replaced, a byte inserted, or bytes appended.
func corrupt(rng *rand.Rand, body []byte) []byte {
	b := slices.Clone(body)
	switch rng.IntN(4) {
	case 0:
		return b[:rng.IntN(len(b))]
	case 1:
		b[rng.IntN(len(b))] = byte(rng.Uint32())
		return b
	case 2:
		return slices.Insert(b, rng.IntN(len(b)+1), byte(rng.Uint32()))
	default:
		return append(b, make([]byte, 1+rng.IntN(3))...)
	}
}

// checkInput runs the differential checks for one valid body: it decodes
// to want with both decoders, and every truncation and random corruptions
// decode alike. It counts the corruptions that decoded and that failed.
func checkInput[T any](t *testing.T, ic inputCase[T], rng *rand.Rand, body []byte, want *T, decoded, failed *int) {
	t.Helper()
	if !ic.same(t, body) {
		t.Fatalf("valid body %x did not decode", body)
	}
	var got T
	if err := ic.hand(body, &got); err != nil || !reflect.DeepEqual(&got, want) {
		t.Fatalf("round trip gives %s (%v), want %s", show(&got), err, show(want))
	}
	// Every cut of a short body; 64 random cuts of a long one.
	for i := range body {
		cut := i
		if len(body) > 128 {
			if i == 64 {
				break
			}
			cut = rng.IntN(len(body))
		}
		if ic.same(t, body[:cut]) {
			t.Fatalf("body cut at %d of %d decoded", cut, len(body))
		}
	}
	for range 20 {
		if ic.same(t, corrupt(rng, body)) {
			*decoded++
		} else {
			*failed++
		}
	}
}

// exhaust checks that the decoders agree on every cut of body, and on body
// with each byte flipped in four ways and with three bytes inserted at each
// offset.
func exhaust[T any](t *testing.T, ic inputCase[T], body []byte) {
	t.Helper()
	for i := range len(body) + 1 {
		if i < len(body) {
			if ic.same(t, body[:i]) {
				t.Fatalf("body cut at %d of %d decoded", i, len(body))
			}
			for _, x := range []byte{0x01, 0x40, 0x80, 0xff} {
				b := slices.Clone(body)
				b[i] ^= x
				ic.same(t, b)
			}
		}
		for _, c := range []byte{0x00, 0x80, 0xff} {
			ic.same(t, slices.Insert(slices.Clone(body), i, c))
		}
	}
}

// TestHandInputDecodersMatch checks the hand-written Interaction and
// Purchase decoders against the generic ones over thousands of random
// values (every channel and kind, null and non-null unions, nil, empty,
// small and multi-block maps, non-ASCII and non-UTF-8 strings): each value
// round-trips through the generic encoder and the hand decoder, truncations
// of its encoding fail in both, and random corruptions (replaced, inserted
// and appended bytes) give the same value or the same Reason in both. On
// the fixed samples, every cut, every byte flipped and bytes inserted at
// every offset give the same outcome in both.
func TestHandInputDecodersMatch(t *testing.T) {
	t.Run("samples", func(t *testing.T) {
		several := sampleInteraction()
		several.Attributes = map[string]string{"a": "1", "b": "", "": "é"}
		for _, v := range []*Interaction{sampleInteraction(), minimalInteraction(), several} {
			exhaust(t, interactionCase, bytes.Join(interactionFields(v), nil))
		}
		noCategory := samplePurchase()
		noCategory.Category = nil
		for _, v := range []*Purchase{samplePurchase(), minimalPurchase(), noCategory} {
			exhaust(t, purchaseCase, bytes.Join(purchaseFields(v), nil))
		}
	})

	seeds := uint64(1000)
	if testing.Short() {
		seeds = 200
	}
	t.Run("interaction", func(t *testing.T) {
		decoded, failed := 0, 0
		for seed := range seeds {
			rng := rand.New(rand.NewPCG(seed, 17))
			v := randomInteraction(rng)
			body, err := appendRecord(nil, nil, interactionRecord, v)
			if err != nil {
				t.Fatal(err)
			}
			if v.Attributes == nil {
				v.Attributes = map[string]string{} // how an empty map decodes
			}
			checkInput(t, interactionCase, rng, body, v, &decoded, &failed)
		}
		if decoded == 0 || failed == 0 {
			t.Fatalf("corruptions: %d decoded, %d failed: want some of each", decoded, failed)
		}
	})
	t.Run("purchase", func(t *testing.T) {
		decoded, failed := 0, 0
		for seed := range seeds {
			rng := rand.New(rand.NewPCG(seed, 19))
			v := randomPurchase(rng)
			body, err := appendRecord(nil, nil, purchaseRecord, v)
			if err != nil {
				t.Fatal(err)
			}
			checkInput(t, purchaseCase, rng, body, v, &decoded, &failed)
		}
		if decoded == 0 || failed == 0 {
			t.Fatalf("corruptions: %d decoded, %d failed: want some of each", decoded, failed)
		}
	})
}

// padVarint returns the varint b (as appendLong writes it) padded with
// continuation bytes to n bytes: the same value, overlong.
func padVarint(b []byte, n int) []byte {
	b = slices.Clone(b)
	for len(b) < n {
		b[len(b)-1] |= 0x80
		b = append(b, 0)
	}
	return b
}

// appendEntries appends the entries of m in key order.
func appendEntries(dst []byte, m map[string]string) []byte {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		dst = appendString(appendString(dst, k), m[k])
	}
	return dst
}

// interactionFields returns the encoding of each field of v, the map in
// one block.
func interactionFields(v *Interaction) [][]byte {
	attrs := []byte{0}
	if len(v.Attributes) > 0 {
		attrs = append(appendEntries(appendLong(nil, int64(len(v.Attributes))), v.Attributes), 0)
	}
	return [][]byte{
		appendString(nil, v.EventID),
		appendString(nil, v.CustomerID),
		appendLong(nil, v.OccurredAt),
		appendLong(nil, int64(ChannelIndex(v.Channel))),
		appendString(nil, v.Type),
		appendOptInt(nil, v.Satisfaction),
		attrs,
	}
}

// purchaseFields returns the encoding of each field of v.
func purchaseFields(v *Purchase) [][]byte {
	return [][]byte{
		appendString(nil, v.EventID),
		appendString(nil, v.CustomerID),
		appendLong(nil, v.OccurredAt),
		appendLong(nil, int64(slices.Index(kinds[:], v.Kind))),
		appendLong(nil, v.AmountMinor),
		appendString(nil, v.Currency),
		appendLong(nil, int64(ChannelIndex(v.Channel))),
		appendOptString(nil, v.Category),
		appendLong(nil, int64(v.Items)),
	}
}

// edge is a body built from a record's fields with one replaced, and
// whether it must decode.
type edge struct {
	name string
	body []byte
	ok   bool
}

// with returns fields joined, field i replaced by the concatenation of b.
func with(fields [][]byte, i int, b ...[]byte) []byte {
	f := slices.Clone(fields)
	f[i] = bytes.Join(b, nil)
	return bytes.Join(f, nil)
}

// long encodes an Avro long.
func long(v int64) []byte { return appendLong(nil, v) }

// scalarEdges returns edge cases of the fields of a record: a long at
// longAt; an int at intAt, after intPrefix; an enum of n symbols at
// enumAt; a ["null", T] union at unionAt, value being a valid T; a string
// at stringAt.
func scalarEdges(fields [][]byte, longAt, intAt int, intPrefix []byte, enumAt, n, unionAt int, value []byte, stringAt int) []edge {
	e := []edge{
		{"long padded to 10 bytes", with(fields, longAt, padVarint(fields[longAt], 10)), true},
		{"long padded to 11 bytes", with(fields, longAt, padVarint(fields[longAt], 11)), false},
		{"long overflowing in its 10th byte", with(fields, longAt, bytes.Repeat([]byte{0xff}, 9), []byte{0x7f}), true},
		{"int padded to 5 bytes", with(fields, intAt, intPrefix, padVarint(long(-7), 5)), true},
		{"int padded to 6 bytes", with(fields, intAt, intPrefix, padVarint(long(-7), 6)), false},
		{"int overflowing in its 5th byte", with(fields, intAt, intPrefix, []byte{0xff, 0xff, 0xff, 0xff, 0x7f}), true},
		{"int with 5 continuation bytes", with(fields, intAt, intPrefix, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0}), false},
		{"enum index -1", with(fields, enumAt, long(-1)), false},
		{"enum index past the symbols", with(fields, enumAt, long(int64(n))), false},
		{"enum index 2³¹-1", with(fields, enumAt, long(math.MaxInt32)), false},
		// 2³² zig-zags to 2³³, whose low 32 bits are an int's 0.
		{"enum index 2³²", with(fields, enumAt, long(1<<32)), true},
		{"enum index padded to 5 bytes", with(fields, enumAt, padVarint(long(1), 5)), true},
		{"enum index padded to 6 bytes", with(fields, enumAt, padVarint(long(1), 6)), false},
		// 0x82 ... 0x10 is 2 + 2³², an int's 2 (symbol 1) once the
		// bits past 32 are dropped, and a long's 2³¹+1.
		{"enum index wrapping in 5 bytes", with(fields, enumAt, []byte{0x82, 0x80, 0x80, 0x80, 0x10}), true},
		{"union null", with(fields, unionAt, long(0)), true},
		{"union value", with(fields, unionAt, long(1), value), true},
		{"union index 2", with(fields, unionAt, long(2), value), false},
		{"union index -1", with(fields, unionAt, long(-1), value), false},
		{"union index padded to 5 bytes", with(fields, unionAt, padVarint(long(1), 5), value), true},
		{"union index padded to 6 bytes", with(fields, unionAt, padVarint(long(0), 6)), false},
		{"union index wrapping in 5 bytes", with(fields, unionAt, []byte{0x82, 0x80, 0x80, 0x80, 0x10}, value), true},
		{"union cut after the index", bytes.Join(append(slices.Clone(fields[:unionAt]), long(1)), nil), false},
		{"empty string", with(fields, stringAt, long(0)), true},
		{"string of 33 bytes", with(fields, stringAt, appendString(nil, strings.Repeat("x", 33))), true},
		{"string of 300 bytes", with(fields, stringAt, appendString(nil, strings.Repeat("é", 150))), true},
		{"string at the length bound", with(fields, stringAt, appendString(nil, strings.Repeat("x", maxBytesLen))), true},
		{"string past the length bound", with(fields, stringAt, appendString(nil, strings.Repeat("x", maxBytesLen+1))), false},
		{"string length -1", with(fields, stringAt, long(-1)), false},
		{"string length -2⁶³", with(fields, stringAt, long(math.MinInt64)), false},
		{"string length 2⁴⁰", with(fields, stringAt, long(1<<40)), false},
		{"string length 2⁶³-1", with(fields, stringAt, long(math.MaxInt64)), false},
		{"string longer than the input", with(fields, stringAt, long(1000), []byte("abc")), false},
		{"string length padded to 10 bytes", with(fields, stringAt, padVarint(long(3), 10), []byte("abc")), true},
		{"string length padded to 11 bytes", with(fields, stringAt, padVarint(long(3), 11), []byte("abc")), false},
		{"trailing zero", append(bytes.Join(fields, nil), 0), false},
		{"trailing bytes", append(bytes.Join(fields, nil), 1, 2, 3), false},
		{"empty", nil, false},
	}
	for i := range n {
		e = append(e, edge{"enum symbol " + strconv.Itoa(i), with(fields, enumAt, long(int64(i))), true})
	}
	return e
}

// TestHandInputDecodersEdges checks the hand-written decoders against the
// generic ones, and the outcome against what the generic decoder is known
// to do, on crafted bodies: overlong and overflowing varints, every enum
// symbol and out-of-range indexes, union branches, string lengths at and
// past the bounds, map blocks with negative, huge and overflowing counts,
// trailing bytes.
func TestHandInputDecodersEdges(t *testing.T) {
	check := func(t *testing.T, edges []edge, same func(testing.TB, []byte) bool) {
		t.Helper()
		for _, e := range edges {
			if got := same(t, e.body); got != e.ok {
				t.Errorf("%s: decoded %v, want %v (%x)", e.name, got, e.ok, e.body)
			}
		}
	}

	t.Run("interaction", func(t *testing.T) {
		v := sampleInteraction()
		v.Attributes = map[string]string{"campaign": "spring-2026", "page": "/", "": ""}
		f := interactionFields(v)
		const attrs = 6
		entries := appendEntries(nil, v.Attributes)
		one := appendEntries(nil, map[string]string{"k": "v"})
		many := map[string]string{}
		for i := range 250 {
			many["key-"+strconv.Itoa(i)] = strings.Repeat("v", i%40)
		}
		edges := scalarEdges(f, 2, 5, long(1), 3, NumChannels, 5, long(7), 0)
		edges = append(edges, []edge{
			{"type of 33 bytes", with(f, 4, appendString(nil, strings.Repeat("t", 33))), true},
			{"empty map", with(f, attrs, long(0)), true},
			{"map in one block", with(f, attrs, long(3), entries, long(0)), true},
			{"map in three blocks", with(f, attrs, long(1), one, long(3), entries, long(0)), true},
			{"map of 250 entries", with(f, attrs, long(250), appendEntries(nil, many), long(0)), true},
			{"duplicate keys", with(f, attrs, long(2), one, appendEntries(nil, map[string]string{"k": "w"}), long(0)), true},
			{"negative block count with its size", with(f, attrs, long(-3), long(int64(len(entries))), entries, long(0)), true},
			{"negative block count with a wrong size", with(f, attrs, long(-3), long(-12345), entries, long(0)), true},
			{"negative block count without its size", with(f, attrs, long(-1)), false},
			{"negative block count, then a positive one", with(f, attrs, long(-1), long(4), one, long(3), entries, long(0)), true},
			{"block count -2⁶³", with(f, attrs, long(math.MinInt64), long(0), long(1), one, long(0)), true},
			{"block count -2⁶³ without its size", with(f, attrs, long(math.MinInt64)), false},
			{"block count 2⁶³-1", with(f, attrs, long(math.MaxInt64), one, long(0)), false},
			{"block count -(2⁶³-1)", with(f, attrs, long(-math.MaxInt64), long(2), one, long(0)), false},
			{"block count 2⁴⁰", with(f, attrs, long(1<<40), entries, long(0)), false},
			{"block count past the entries", with(f, attrs, long(4), entries, long(0)), false},
			{"block count short of the entries", with(f, attrs, long(2), entries, long(0)), false},
			{"no end block", with(f, attrs, long(3), entries), false},
			{"key length -1", with(f, attrs, long(1), long(-1)), false},
			{"value length -1", with(f, attrs, long(1), long(0), long(-1)), false},
			{"key past the length bound", with(f, attrs, long(1), appendString(nil, strings.Repeat("k", maxBytesLen+1)), long(0), long(0)), false},
			{"key of 33 bytes", with(f, attrs, long(1), appendString(nil, strings.Repeat("k", 33)), long(0), long(0)), true},
			{"block count padded to 10 bytes", with(f, attrs, padVarint(long(3), 10), entries, long(0)), true},
			{"block count padded to 11 bytes", with(f, attrs, padVarint(long(3), 11), entries, long(0)), false},
		}...)
		check(t, edges, interactionCase.same)

		// The decoded map of the negative-count and the multi-block
		// bodies, beyond agreeing with the generic decoder.
		var got Interaction
		for _, body := range [][]byte{
			with(f, attrs, long(-3), long(int64(len(entries))), entries, long(0)),
			with(f, attrs, long(math.MinInt64), long(0), long(2), appendEntries(nil, map[string]string{"": "", "campaign": "spring-2026"}), long(-1), long(0), appendString(appendString(nil, "page"), "/"), long(0)),
		} {
			if err := decodeInteractionBody(body, &got); err != nil || !reflect.DeepEqual(&got, v) {
				t.Errorf("got %s (%v), want %s", show(&got), err, show(v))
			}
		}
	})

	t.Run("purchase", func(t *testing.T) {
		f := purchaseFields(samplePurchase())
		edges := scalarEdges(f, 4, 8, nil, 3, len(kinds), 7, appendString(nil, "toys"), 1)
		edges = append(edges, scalarEdges(f, 2, 8, nil, 6, NumChannels, 7, appendString(nil, strings.Repeat("c", 40)), 5)...)
		check(t, edges, purchaseCase.same)
	})

	// The customer state's ["null", "string"] union, whose index the
	// generic decoder also reads as an int.
	t.Run("customer", func(t *testing.T) {
		c := sampleCustomer()
		c.ValueClass = nil
		body := appendCustomerBody(nil, c)
		tail := appendLongs(appendLong(appendString(appendLong(nil, c.EvaluatedAt), c.PolicyVersion), c.TimerAt), c.RecentEventHashes)
		head := body[:len(body)-len(tail)-1]
		f := [][]byte{head, {0}, tail}
		value := appendString(nil, "high_potential")
		check(t, []edge{
			{"union null", with(f, 1, long(0)), true},
			{"union value", with(f, 1, long(1), value), true},
			{"union index padded to 5 bytes", with(f, 1, padVarint(long(1), 5), value), true},
			{"union index padded to 6 bytes", with(f, 1, padVarint(long(0), 6)), false},
			{"union index wrapping in 5 bytes", with(f, 1, []byte{0x82, 0x80, 0x80, 0x80, 0x10}, value), true},
		}, sameDecode)
	})
}

// TestDecodeInteractionAttributes checks what DecodeInteraction does with
// the destination's attribute map, on the hand-written path as on the
// generic one: an empty Avro map decodes to an empty map, never nil; a map
// already in the destination is cleared and reused.
func TestDecodeInteractionAttributes(t *testing.T) {
	c := newSOECodec(t)
	enc := func(attrs map[string]string) []byte {
		v := sampleInteraction()
		v.Attributes = attrs
		b, err := c.AppendInteraction(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	empty, one := enc(nil), enc(map[string]string{"a": "b"})
	decoders := []struct {
		name   string
		decode func([]byte, *Interaction) error
	}{
		{"hand", c.DecodeInteraction},
		{"generic", func(b []byte, v *Interaction) error { return genericDecodeInteraction(b[soeHeaderLen:], v) }},
	}
	for _, d := range decoders {
		var v Interaction
		if err := d.decode(empty, &v); err != nil || v.Attributes == nil || len(v.Attributes) != 0 {
			t.Fatalf("%s: empty map into a zero value: %v (%v)", d.name, v.Attributes, err)
		}
		m := map[string]string{"stale": "entry"}
		v.Attributes = m
		for _, in := range [][]byte{one, empty, one} {
			if err := d.decode(in, &v); err != nil {
				t.Fatal(err)
			}
			if reflect.ValueOf(v.Attributes).UnsafePointer() != reflect.ValueOf(m).UnsafePointer() {
				t.Fatalf("%s: the destination's map was not reused", d.name)
			}
			if _, stale := m["stale"]; stale || len(m) > 1 {
				t.Fatalf("%s: the destination's map was not cleared: %v", d.name, m)
			}
		}
		if !maps.Equal(m, map[string]string{"a": "b"}) {
			t.Fatalf("%s: attributes %v", d.name, m)
		}
	}
}

// TestDecodeInputUsesHandDecoder checks that the Codec runs the
// hand-written decoders for values written under the current schema, in
// either framing: only they report an unknown enum symbol this way.
func TestDecodeInputUsesHandDecoder(t *testing.T) {
	_, cl := newRegistry(t)
	for _, c := range []*Codec{newSOECodec(t), newConfluentCodec(t, cl)} {
		p := samplePurchase()
		b, err := c.AppendPurchase(nil, p)
		if err != nil {
			t.Fatal(err)
		}
		header := len(b) - len(bytes.Join(purchaseFields(p), nil))
		badKind := append(slices.Clone(b[:header]), with(purchaseFields(p), 3, long(2))...)
		if err := c.DecodePurchase(badKind, new(Purchase)); !isReason(err, ReasonMalformed) || !strings.Contains(err.Error(), "reading enum") {
			t.Errorf("%s: purchase with kind 2: %v", c.Framing(), err)
		}
		i := sampleInteraction()
		b, err = c.AppendInteraction(nil, i)
		if err != nil {
			t.Fatal(err)
		}
		header = len(b) - len(bytes.Join(interactionFields(i), nil))
		badChannel := append(slices.Clone(b[:header]), with(interactionFields(i), 3, long(10))...)
		if err := c.DecodeInteraction(badChannel, new(Interaction)); !isReason(err, ReasonMalformed) || !strings.Contains(err.Error(), "reading enum") {
			t.Errorf("%s: interaction with channel 10: %v", c.Framing(), err)
		}
	}
}

// TestDecodedInputOutlivesInput checks that decoded strings stay intact
// when the input is overwritten and other values are decoded after them, as
// the processor keeps a batch of decoded records and new customers keep
// the event's customer_id.
func TestDecodedInputOutlivesInput(t *testing.T) {
	c := newSOECodec(t)
	rng := rand.New(rand.NewPCG(3, 5))
	var kept []Interaction
	var want [][]byte
	for range 200 {
		v := randomInteraction(rng)
		b, err := c.AppendInteraction(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		var got Interaction
		if err := c.DecodeInteraction(b, &got); err != nil {
			t.Fatal(err)
		}
		want = append(want, bytes.Join(interactionFields(&got), nil))
		for i := range b {
			b[i] = 0xAA
		}
		kept = append(kept, got)
	}
	for i := range kept {
		if got := bytes.Join(interactionFields(&kept[i]), nil); !bytes.Equal(got, want[i]) {
			t.Fatalf("value %d changed after later decodes:\n%x\n%x", i, got, want[i])
		}
	}
}

// FuzzDecodeInteractionHand checks the hand-written Interaction decoder
// against the generic one on arbitrary bodies.
func FuzzDecodeInteractionHand(f *testing.F) {
	fuzzHand(f, NameInteraction, interactionCase, func(v *Interaction) []byte { return bytes.Join(interactionFields(v), nil) }, sampleInteraction(), minimalInteraction())
}

// FuzzDecodePurchaseHand checks the hand-written Purchase decoder against
// the generic one on arbitrary bodies.
func FuzzDecodePurchaseHand(f *testing.F) {
	fuzzHand(f, NamePurchase, purchaseCase, func(v *Purchase) []byte { return bytes.Join(purchaseFields(v), nil) }, samplePurchase(), minimalPurchase())
}

func fuzzHand[T any](f *testing.F, name string, ic inputCase[T], encode func(*T) []byte, samples ...*T) {
	golden, err := os.ReadFile(goldenPath(name))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden[soeHeaderLen:])
	for _, s := range samples {
		f.Add(encode(s))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) { ic.same(t, body) })
}
