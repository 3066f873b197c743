package schemas

import "fmt"

// Hand-written decoders for the bodies of the two input records, written
// under their current schemas: every input record is decoded once, and the
// schema-driven decoder made a map for every Interaction (its attributes)
// and spent most of its time in reflection. They accept and reject what the
// generic decoder does (TestHandInputDecodersMatchSchema,
// FuzzDecodeInputHand), with two differences: an empty attributes map
// leaves a nil destination map nil, and a map block count of -2^63, which
// the generic decoder reads as an empty block, is rejected. Values written
// under an earlier or an unknown schema go through the generic decoder,
// which resolves them.

// channel reads a valora.Channel enum symbol.
func (r *bodyReader) channel() Channel {
	i := r.int()
	if r.err != nil {
		return ""
	}
	if i < 0 || int(i) >= NumChannels {
		r.fail(fmt.Errorf("decode enum symbol: unknown symbol index %d of valora.Channel", i))
		return ""
	}
	return Channels[i]
}

// optInt reads a ["null", "int"] union.
func (r *bodyReader) optInt() *int32 {
	if !r.present() {
		return nil
	}
	v := r.int()
	if r.err != nil {
		return nil
	}
	return &v
}

// stringMap reads a map of string into m, returning m, or a new map when m
// is nil and the value has entries.
func (r *bodyReader) stringMap(m map[string]string) map[string]string {
	for {
		count := r.blockCount("map")
		if count == 0 {
			return m
		}
		for ; count > 0 && r.err == nil; count-- {
			k := r.bytes()
			v := r.bytes()
			if r.err != nil {
				break
			}
			if m == nil {
				m = make(map[string]string)
			}
			m[string(k)] = string(v)
		}
	}
}

// decodeInteractionBody decodes the body of an Interaction written under
// the current schema into v, reusing v's map.
func decodeInteractionBody(b []byte, v *Interaction) error {
	r := bodyReader{b: b}
	defer r.release()
	attrs := v.Attributes
	clear(attrs)
	*v = Interaction{}
	v.EventID = r.string()
	v.CustomerID = r.string()
	v.OccurredAt = r.long()
	v.Channel = r.channel()
	v.Type = r.word()
	v.Satisfaction = r.optInt()
	v.Attributes = r.stringMap(attrs)
	return r.end(interactionRecord.name)
}

// decodePurchaseBody decodes the body of a Purchase written under the
// current schema into v.
func decodePurchaseBody(b []byte, v *Purchase) error {
	r := bodyReader{b: b}
	defer r.release()
	*v = Purchase{}
	v.EventID = r.string()
	v.CustomerID = r.string()
	v.OccurredAt = r.long()
	switch i := r.int(); {
	case r.err != nil:
	case i == 0:
		v.Kind = KindPurchase
	case i == 1:
		v.Kind = KindRefund
	default:
		r.fail(fmt.Errorf("decode enum symbol: unknown symbol index %d of valora.PurchaseKind", i))
	}
	v.AmountMinor = r.long()
	v.Currency = r.word()
	v.Channel = r.channel()
	v.Category = r.optWord()
	v.Items = r.int()
	return r.end(purchaseRecord.name)
}
