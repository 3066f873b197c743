package schemas

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// Hand-written encoders for the records valora writes once per change:
// the customer state and the CustomerProfile (every dirty customer, at
// every commit) and the TierChange (every output record). They append the Avro binary encoding
// straight to dst, with no reflection, no pooled writer and no copy, and
// produce the same bytes as the generic encoder over the same schema:
// zig-zag varints for int and long, a length-prefixed string, one byte for
// a boolean, the branch index before a union's value, eight little-endian
// bytes for a double, and arrays in blocks of at most arrayBlockLength items,
// each prefixed with its item count only (DisableBlockSizeHeader), then an
// empty block. TestHandEncodersMatchSchema checks them against the generic
// encoder on random values; a change to customer_state.avsc,
// customer_profile.avsc or tier_change.avsc must change them too.

// arrayBlockLength is the number of items per array block the generic
// encoder writes (hamba/avro's default BlockLength).
const arrayBlockLength = 100

func appendLong(dst []byte, v int64) []byte {
	return binary.AppendUvarint(dst, uint64(v<<1)^uint64(v>>63))
}

// appendUvarint9 appends the varint of u, which has more than 56 bits (nine
// or ten bytes: an event hash, most often), without AppendUvarint's loop:
// it spreads the low 56 bits over eight bytes (spreadVarint) and stores
// them at once, then adds the rest. It writes the same bytes as
// binary.AppendUvarint (TestAppendUvarint). Shorter values are faster with
// the loop.
func appendUvarint9(dst []byte, u uint64) []byte {
	n := len(dst)
	if cap(dst)-n < maxVarintLen {
		dst = slices.Grow(dst, maxVarintLen)
	}
	dst = dst[:n+maxVarintLen]
	binary.LittleEndian.PutUint64(dst[n:], spreadVarint(u)|0x8080808080808080)
	if u < 1<<63 {
		dst[n+8] = byte(u >> 56)
		return dst[:n+9]
	}
	dst[n+8] = byte(u>>56) | 0x80
	dst[n+9] = 1
	return dst[:n+10]
}

// spreadVarint spreads the low 56 bits of u into eight 7-bit groups, one
// per byte, little endian: the inverse of packVarint.
func spreadVarint(u uint64) uint64 {
	x := u&0x000000000fffffff | u<<4&0x0fffffff00000000 // bits 56 and up drop out
	x = x&0x00003fff00003fff | x<<2&0x3fff00003fff0000
	return x&0x007f007f007f007f | x<<1&0x7f007f007f007f00
}

func appendString(dst []byte, s string) []byte {
	dst = appendLong(dst, int64(len(s)))
	return append(dst, s...)
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

func appendLongs(dst []byte, vs []int64) []byte {
	for len(vs) > 0 {
		n := min(len(vs), arrayBlockLength)
		dst = appendLong(dst, int64(n))
		for _, v := range vs[:n] {
			// Event hashes are most of a customer's arrays, and most of
			// them take nine or ten bytes.
			if u := uint64(v<<1) ^ uint64(v>>63); u >= 1<<56 {
				dst = appendUvarint9(dst, u)
			} else {
				dst = binary.AppendUvarint(dst, u)
			}
		}
		vs = vs[n:]
	}
	return append(dst, 0)
}

func appendOptString(dst []byte, s *string) []byte {
	if s == nil {
		return append(dst, 0)
	}
	return appendString(append(dst, 2), *s)
}

func appendOptInt(dst []byte, v *int32) []byte {
	if v == nil {
		return append(dst, 0)
	}
	return appendLong(append(dst, 2), int64(*v))
}

func appendOptLong(dst []byte, v *int64) []byte {
	if v == nil {
		return append(dst, 0)
	}
	return appendLong(append(dst, 2), *v)
}

func appendOptDouble(dst []byte, v *float64) []byte {
	if v == nil {
		return append(dst, 0)
	}
	return binary.LittleEndian.AppendUint64(append(dst, 2), math.Float64bits(*v))
}

// appendCustomerBody appends the Avro binary encoding of v under
// customer_state.avsc.
func appendCustomerBody(dst []byte, v *Customer) []byte {
	dst = appendString(dst, v.CustomerID)
	dst = appendLong(dst, v.Version)
	dst = appendLong(dst, v.FirstSeen)
	dst = appendLong(dst, v.LastActivity)
	dst = appendLong(dst, v.FirstPurchase)
	dst = appendLong(dst, v.LastPurchase)
	dst = appendLong(dst, v.Purchases)
	dst = appendLong(dst, v.Refunds)
	dst = appendLong(dst, v.RepeatDays)
	dst = appendLong(dst, v.MonetaryMinor)
	dst = appendLongs(dst, v.InteractionsByChannel)
	dst = appendLongs(dst, v.PurchasesByChannel)
	dst = appendLong(dst, v.RiskUntil)
	dst = appendLong(dst, v.ReactivatedAt)
	dst = appendString(dst, v.Tier)
	dst = appendLong(dst, int64(v.RScore))
	dst = appendLong(dst, int64(v.FScore))
	dst = appendLong(dst, int64(v.MScore))
	dst = appendBool(dst, v.ChurnRisk)
	dst = appendString(dst, v.LifecycleStage)
	dst = appendOptString(dst, v.ValueClass)
	dst = appendLong(dst, v.EvaluatedAt)
	dst = appendString(dst, v.PolicyVersion)
	dst = appendLong(dst, v.TimerAt)
	dst = appendLongs(dst, v.RecentEventHashes)
	return appendCustomerHistory(dst, v)
}

// appendCustomerHistory appends the fields of v after recent_event_hashes:
// the service history, channel, consent and category fields, and the
// treatment.
func appendCustomerHistory(dst []byte, v *Customer) []byte {
	dst = appendLong(dst, v.Complaints)
	dst = appendLong(dst, v.ComplaintsResolved)
	dst = appendLong(dst, v.LastComplaintAt)
	dst = appendLong(dst, v.LastResolvedAt)
	dst = appendLong(dst, v.LowSatisfactionUntil)
	dst = appendLong(dst, int64(v.LastSatisfaction))
	dst = appendLong(dst, v.LastSatisfactionAt)
	dst = appendLongs(dst, v.InteractionLastAt)
	dst = appendLongs(dst, v.Consent)
	dst = appendCategories(dst, v.Categories)
	dst = appendLong(dst, v.DistinctCategories)
	return appendString(dst, v.Treatment)
}

// appendCategories appends an array of CategoryStat records.
func appendCategories(dst []byte, cs []CategoryStat) []byte {
	for len(cs) > 0 {
		n := min(len(cs), arrayBlockLength)
		dst = appendLong(dst, int64(n))
		for i := range cs[:n] {
			dst = appendString(dst, cs[i].Category)
			dst = appendLong(dst, cs[i].Purchases)
			dst = appendLong(dst, cs[i].NetMinor)
		}
		cs = cs[n:]
	}
	return append(dst, 0)
}

// causeIndex returns the position of c among the Cause enum's symbols.
func causeIndex(c Cause) (int64, bool) {
	switch c {
	case CausePurchase:
		return 0, true
	case CauseRefund:
		return 1, true
	case CauseInteraction:
		return 2, true
	case CauseInactivity:
		return 3, true
	case CausePolicyChange:
		return 4, true
	case CauseErasure:
		return 5, true
	}
	return 0, false
}

// appendTierChangeBody appends the Avro binary encoding of v under
// tier_change.avsc. An unknown cause is an error, as in the generic
// encoder; dst is then returned unchanged.
func appendTierChangeBody(dst []byte, v *TierChange) ([]byte, error) {
	cause, ok := causeIndex(v.Cause)
	if !ok {
		return dst, fmt.Errorf("unknown cause %q", v.Cause)
	}
	n := len(dst)
	dst, err := appendTierChangeFields(dst, v, cause)
	if err != nil {
		return dst[:n], err
	}
	return dst, nil
}

func appendTierChangeFields(dst []byte, v *TierChange, cause int64) ([]byte, error) {
	dst = appendString(dst, v.EventID)
	dst = appendString(dst, v.CustomerID)
	dst = appendLong(dst, v.Version)
	dst = appendLong(dst, v.OccurredAt)
	dst = appendLong(dst, cause)
	dst = appendOptString(dst, v.PreviousTier)
	dst = appendString(dst, v.Tier)
	dst = appendBool(dst, v.ChurnRisk)
	dst = appendString(dst, v.LifecycleStage)
	dst = appendOptString(dst, v.ValueClass)
	dst = appendOptInt(dst, v.RecencyDays)
	dst = appendLong(dst, v.Frequency)
	dst = appendLong(dst, v.Monetary)
	dst = appendString(dst, v.Currency)
	dst = appendLong(dst, int64(v.RScore))
	dst = appendLong(dst, int64(v.FScore))
	dst = appendLong(dst, int64(v.MScore))
	dst = appendOptDouble(dst, v.PAlive)
	dst = appendOptDouble(dst, v.ExpectedPurchases)
	dst = appendOptDouble(dst, v.CLV)
	dst = appendString(dst, v.PolicyVersion)
	dst = appendOptString(dst, v.Action)
	dst = appendOptString(dst, v.RiskReason)
	dst, err := appendChannels(dst, v.ContactableChannels)
	if err != nil {
		return dst, err
	}
	dst = appendOptString(dst, v.Treatment)
	dst = appendOptString(dst, v.Relationship)
	return appendOptLong(dst, v.RelationshipCostMinor), nil
}

// appendChannels appends an array of Channel enum symbols; an unknown
// channel is an error.
func appendChannels(dst []byte, chs []Channel) ([]byte, error) {
	if len(chs) > arrayBlockLength {
		return dst, fmt.Errorf("%d channels: more than one array block", len(chs))
	}
	if len(chs) > 0 {
		dst = appendLong(dst, int64(len(chs)))
		for _, ch := range chs {
			i := ChannelIndex(ch)
			if i < 0 {
				return dst, fmt.Errorf("unknown channel %q", ch)
			}
			dst = appendLong(dst, int64(i))
		}
	}
	return append(dst, 0), nil
}

// appendChannelMap appends a map of long keyed by channel name, in
// Channels order; a key that is not a channel is an error.
func appendChannelMap(dst []byte, m map[string]int64) ([]byte, error) {
	if len(m) > 0 {
		dst = appendLong(dst, int64(len(m)))
		found := 0
		for _, ch := range Channels {
			if v, ok := m[string(ch)]; ok {
				dst = appendLong(appendString(dst, string(ch)), v)
				found++
			}
		}
		if found != len(m) {
			return dst, fmt.Errorf("a per-channel map has a key that is not a channel")
		}
	}
	return append(dst, 0), nil
}

// appendChannelCounts appends m, or, when m is nil, the non-zero counters
// of counts (indexed like Channels) as the same map.
func appendChannelCounts(dst []byte, m map[string]int64, counts []int64) ([]byte, error) {
	if m != nil || len(counts) == 0 {
		return appendChannelMap(dst, m)
	}
	n := 0
	for i, c := range counts {
		if c != 0 && i < NumChannels {
			n++
		}
	}
	if n > 0 {
		dst = appendLong(dst, int64(n))
		for i, c := range counts {
			if c != 0 && i < NumChannels {
				dst = appendLong(appendString(dst, string(Channels[i])), c)
			}
		}
	}
	return append(dst, 0), nil
}

// appendProfileBody appends the Avro binary encoding of v under
// customer_profile.avsc. On error dst is returned as far as it got; the
// caller cuts it back.
func appendProfileBody(dst []byte, v *CustomerProfile) ([]byte, error) {
	dst = appendString(dst, v.CustomerID)
	dst = appendLong(dst, v.Version)
	dst = appendString(dst, v.Tier)
	dst = appendLong(dst, int64(v.RScore))
	dst = appendLong(dst, int64(v.FScore))
	dst = appendLong(dst, int64(v.MScore))
	dst = appendBool(dst, v.ChurnRisk)
	dst = appendString(dst, v.LifecycleStage)
	dst = appendOptString(dst, v.ValueClass)
	dst = appendOptString(dst, v.RiskReason)
	dst = appendOptInt(dst, v.RecencyDays)
	dst = appendLong(dst, v.Purchases)
	dst = appendLong(dst, v.Refunds)
	dst = appendLong(dst, v.RepeatDays)
	dst = appendLong(dst, v.MonetaryMinor)
	dst = appendString(dst, v.Currency)
	dst = appendOptDouble(dst, v.PAlive)
	dst = appendOptDouble(dst, v.ExpectedPurchases)
	dst = appendOptDouble(dst, v.CLV)
	dst = appendLong(dst, v.FirstSeen)
	dst = appendLong(dst, v.LastActivity)
	dst = appendLong(dst, v.FirstPurchase)
	dst = appendLong(dst, v.LastPurchase)
	dst = appendLong(dst, v.RiskUntil)
	dst = appendLong(dst, v.ReactivatedAt)
	dst = appendLong(dst, v.EvaluatedAt)
	dst = appendString(dst, v.PolicyVersion)
	dst = appendOptString(dst, v.Action)
	dst, err := appendChannelCounts(dst, v.InteractionsByChannel, v.InteractionCounts)
	if err != nil {
		return dst, err
	}
	if dst, err = appendChannelCounts(dst, v.PurchasesByChannel, v.PurchaseCounts); err != nil {
		return dst, err
	}
	if ch := v.PreferredChannel; ch == nil {
		dst = append(dst, 0)
	} else {
		i := ChannelIndex(*ch)
		if i < 0 {
			return dst, fmt.Errorf("unknown preferred channel %q", *ch)
		}
		dst = appendLong(append(dst, 2), int64(i))
	}
	if dst, err = appendChannels(dst, v.ContactableChannels); err != nil {
		return dst, err
	}
	dst = appendCategories(dst, v.Categories)
	dst = appendOptString(dst, v.FavouriteCategory)
	dst = appendLong(dst, v.DistinctCategories)
	dst = appendLong(dst, v.Complaints)
	dst = appendLong(dst, v.ComplaintsResolved)
	dst = appendLong(dst, v.LastComplaintAt)
	dst = appendOptInt(dst, v.LastSatisfaction)
	dst = appendOptString(dst, v.Treatment)
	dst = appendOptString(dst, v.Relationship)
	return appendOptLong(dst, v.RelationshipCostMinor), nil
}
