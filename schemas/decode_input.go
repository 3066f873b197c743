package schemas

import "fmt"

// Hand-written decoders for the two input records, decoded once per consumed
// Kafka record: the Interaction and the Purchase written under the current
// interaction.avsc and purchase.avsc. See decode.go for what they accept and
// reject.
//
// The decoded values may outlive the decode and the input (the processor
// keeps a batch of them, and a new customer keeps the event's customer_id
// as its own), so no string aliases the input. Identifiers and attribute
// values are carved from the reader's slab, whose bytes are never written
// twice; event types, currencies, categories and attribute names, which
// take few distinct values, are interned; enum fields hold the package's
// constants.

// kinds lists the PurchaseKind symbols in enum order.
var kinds = [...]PurchaseKind{KindPurchase, KindRefund}

// enum reads the index of a symbol of an enum of n symbols.
func (r *bodyReader) enum(n int) int {
	i := r.int()
	if r.err != nil {
		return 0
	}
	if i < 0 || int(i) >= n {
		r.fail(fmt.Errorf("reading enum: unknown symbol index %d of %d", i, n))
		return 0
	}
	return int(i)
}

// channel reads a Channel.
func (r *bodyReader) channel() Channel {
	if i := r.enum(NumChannels); r.err == nil {
		return Channels[i]
	}
	return ""
}

// optInt reads a ["null", "int"] union.
func (r *bodyReader) optInt() *int32 {
	if !r.nonNull() {
		return nil
	}
	v := r.int()
	if r.err != nil {
		return nil
	}
	return &v
}

// stringMap reads a map of strings into m, or into a new map if m is nil,
// and returns it: an empty Avro map gives an empty map, never nil. Like the
// generic decoder, it takes a block with a negative count -n and a byte size
// as a block of n entries, and bounds neither the count nor the number of
// entries: each entry takes at least two bytes of the input, so a count the
// input cannot hold ends in an error, and nothing is allocated by count.
// A count of -2⁶³, whose negation overflows, is an empty block, as in the
// generic decoder.
func (r *bodyReader) stringMap(m map[string]string) map[string]string {
	if m == nil {
		m = make(map[string]string)
	}
	for r.err == nil {
		count := r.long()
		if count == 0 || r.err != nil {
			break
		}
		if count < 0 {
			count = -count
			_ = r.long() // the block's size in bytes
		}
		for ; count > 0 && r.err == nil; count-- {
			k := r.word()
			if v := r.string(); r.err == nil {
				m[k] = v
			}
		}
	}
	return m
}

// decodeInteractionBody decodes the body of an Interaction written under
// the current schema into v. Like DecodeInteraction on the generic path, it
// clears v's attribute map and reuses it, if there is one.
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
	return r.done(interactionRecord)
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
	if i := r.enum(len(kinds)); r.err == nil {
		v.Kind = kinds[i]
	}
	v.AmountMinor = r.long()
	v.Currency = r.word()
	v.Channel = r.channel()
	v.Category = r.optWord()
	v.Items = r.int()
	return r.done(purchaseRecord)
}
