package processor

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/kafkatest"
	"valora/processor/score"
	"valora/schemas"
)

// hostileRecord is a record the processor must reject, and the reason it
// must give.
type hostileRecord struct {
	rec    *kgo.Record
	reason string
	// after is the valid record this one must follow (a repeat of it), or
	// -1.
	after int
}

// hostileInput builds a valid history and every kind of bad record.
//
// The valid records are in increasing event time (each customer's and all
// of them together), purchases for some customers and interactions, all
// earlier than any purchase, for prospects that never buy. So however the
// fetches cut them, a task applies them in one order and fires the same
// timers, and a run over them alone has one final state. Bad records that
// pass the processor's own checks and are refused by scoring (which still
// moves stream time, see step) carry an event time no later than the
// earliest valid one, so they cannot fire a timer either; repeats carry
// their original's time and follow it.
func hostileInput(h *harness, rng *rand.Rand) (valid []*kgo.Record, bad []hostileRecord) {
	t := h.t
	t.Helper()
	base := time.Now().AddDate(-2, 0, 0).Truncate(24 * time.Hour).UnixMilli()
	const dayMs = score.DayMs

	// Prospects: interactions in the 60 days before base.
	prospects := []string{"ic0", "ic1", "ic2", "long-" + strings.Repeat("x", 10<<10)}
	types := []string{"visit", "click", "complaint", "survey_response"}
	at := base - 60*dayMs
	var firstInteraction []int // index in valid of each prospect's first event
	seen := map[string]bool{}
	for k := range 30 {
		at += 1 + rng.Int64N(2*dayMs)
		at = min(at, base-1)
		c := prospects[rng.IntN(len(prospects))]
		e := schemas.Interaction{EventID: fmt.Sprintf("%.8s-i%d", c, k), CustomerID: c, OccurredAt: at,
			Channel: schemas.Channels[rng.IntN(schemas.NumChannels)], Type: types[rng.IntN(len(types))]}
		if e.Type == "survey_response" {
			s := int32(rng.IntN(11))
			e.Satisfaction = &s
		}
		if !seen[c] {
			seen[c] = true
			firstInteraction = append(firstInteraction, len(valid))
		}
		valid = append(valid, h.interaction(e))
	}
	// Buyers: purchases and refunds from base on, gaps of an hour to 25
	// days, so that timers (new → active, at risk, churned) fire between
	// them. The latest is about 21 months after base, before now.
	buyers := []string{"pc0", "pc1", "pc2", "pc3", "pc4"}
	currencies := []string{"USD", "USD", "EUR", "JPY"}
	at = base
	for k := range 25 {
		if k > 0 {
			at += 3600_000 + rng.Int64N(25*dayMs)
		}
		c := buyers[rng.IntN(len(buyers))]
		e := schemas.Purchase{EventID: fmt.Sprintf("%s-p%d", c, k), CustomerID: c, OccurredAt: at,
			AmountMinor: 100 + rng.Int64N(50000), Currency: currencies[rng.IntN(len(currencies))],
			Channel: schemas.Channels[rng.IntN(schemas.NumChannels)]}
		if k > 0 && rng.IntN(5) == 0 {
			e.Kind = schemas.KindRefund
		}
		if k == 3 {
			e.EventID = strings.Repeat("e", 50<<10) // long but within the decoder's bound
		}
		if k == 5 {
			e.Kind, e.AmountMinor = schemas.KindPurchase, 0 // a free order is valid
		}
		valid = append(valid, h.purchase(e))
	}

	add := func(r *kgo.Record, reason string) {
		bad = append(bad, hostileRecord{rec: r, reason: reason, after: -1})
	}
	ancient := base - 100*dayMs // valid, earlier than every valid record
	p := func(e schemas.Purchase) *kgo.Record {
		if e.OccurredAt == 0 {
			e.OccurredAt = ancient
		}
		if e.AmountMinor == 0 {
			e.AmountMinor = 1000
		}
		return h.purchase(e)
	}
	raw := func(topic, key string, value []byte) *kgo.Record {
		return &kgo.Record{Topic: topic, Key: []byte(key), Value: value}
	}
	good := p(schemas.Purchase{EventID: "g", CustomerID: "pc0"})
	soeHeader := good.Value[:10]
	body := good.Value[10:]
	P, I := h.topics.Purchases, h.topics.Interactions

	// Framing.
	add(raw(P, "pc0", []byte("garbage bytes, not avro")), string(schemas.ReasonBadMagic))
	add(raw(I, "ic0", append([]byte{0xC3, 0x02}, body...)), string(schemas.ReasonBadMagic))
	add(raw(P, "pc1", nil), string(schemas.ReasonTruncated))
	add(raw(P, "pc1", []byte{0xC3, 0x01, 1, 2, 3}), string(schemas.ReasonTruncated))
	add(raw(I, "ic1", []byte{0x00, 0, 1}), string(schemas.ReasonTruncated))
	unknownFP := append([]byte{0xC3, 0x01, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef}, body...)
	add(raw(P, "pc2", unknownFP), string(schemas.ReasonUnknownSchema))
	add(raw(P, "pc2", append([]byte{0x00, 0, 0, 0x10, 0x92}, body...)), string(schemas.ReasonUnknownSchema)) // no registry
	wrongType := h.interaction(schemas.Interaction{EventID: "w", CustomerID: "pc3", OccurredAt: ancient})
	add(raw(P, "pc3", wrongType.Value), string(schemas.ReasonUnknownSchema)) // an Interaction on purchases

	// Avro bodies.
	cut := slicesClone(good.Value)
	add(raw(P, "pc0", cut[:len(cut)-3]), string(schemas.ReasonMalformed))
	add(raw(P, "pc0", append(slicesClone(good.Value), 0)), string(schemas.ReasonMalformed))
	add(raw(P, "pc4", append(slicesClone(soeHeader), 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01)), string(schemas.ReasonMalformed))
	huge := strings.Repeat("h", 300<<10) // over the 64 KiB string bound; 1 MiB would pass it too, but not the broker's record size limit
	add(p(schemas.Purchase{EventID: "h1", CustomerID: huge}), string(schemas.ReasonMalformed))
	add(p(schemas.Purchase{EventID: huge, CustomerID: "pc1"}), string(schemas.ReasonMalformed))
	hugeKey := p(schemas.Purchase{EventID: "h2", CustomerID: huge})
	hugeKey.Key = []byte("pc1")
	add(hugeKey, string(schemas.ReasonMalformed))
	// A kind (enum of two symbols) with index 7: event_id "k", customer
	// "pc2", then occurred_at, then the kind.
	enum := p(schemas.Purchase{EventID: "k", CustomerID: "pc2"})
	kindAt := 10 + 2 + 4 + len(binary.AppendVarint(nil, ancient))
	enum.Value[kindAt] = byte(binary.AppendVarint(nil, 7)[0])
	add(enum, string(schemas.ReasonMalformed))

	// Checks of the processor.
	add(p(schemas.Purchase{EventID: "m", CustomerID: ""}), ReasonMissingCustomerID)
	mismatch := p(schemas.Purchase{EventID: "m", CustomerID: "pc3"})
	mismatch.Key = []byte("pc4")
	add(mismatch, ReasonKeyMismatch)
	// A record without a key lands in any partition; it is a key
	// mismatch, checked before the partition.
	noKey := p(schemas.Purchase{EventID: "m", CustomerID: "pc2"})
	noKey.Key = nil
	add(noKey, ReasonKeyMismatch)
	add(p(schemas.Purchase{EventID: "t", CustomerID: "pc0", OccurredAt: -1000}), ReasonInvalidTimestamp)
	add(h.interaction(schemas.Interaction{EventID: "t", CustomerID: "ic0", OccurredAt: math.MinInt64}), ReasonInvalidTimestamp)
	add(p(schemas.Purchase{EventID: "t", CustomerID: "pc1", OccurredAt: time.Now().Add(72 * time.Hour).UnixMilli()}), ReasonFutureTimestamp)
	add(h.interaction(schemas.Interaction{EventID: "t", CustomerID: "ic1", OccurredAt: math.MaxInt64}), ReasonFutureTimestamp)

	// Checks of scoring.
	add(p(schemas.Purchase{EventID: "a", CustomerID: "pc2", AmountMinor: -5}), ReasonInvalidField)
	add(p(schemas.Purchase{EventID: "a", CustomerID: "pc2", AmountMinor: math.MinInt64, Kind: schemas.KindRefund}), ReasonInvalidField)
	add(h.purchase(schemas.Purchase{EventID: "a", CustomerID: "pc3", OccurredAt: ancient, Kind: schemas.KindRefund, AmountMinor: 0}), ReasonInvalidField)
	add(h.interaction(schemas.Interaction{EventID: "z", CustomerID: "ic2", OccurredAt: 0}), ReasonInvalidField)
	for _, s := range []int32{11, -1, math.MaxInt32} {
		add(h.interaction(schemas.Interaction{EventID: "s", CustomerID: "ic2", OccurredAt: ancient, Satisfaction: &s}), ReasonInvalidField)
	}
	add(p(schemas.Purchase{EventID: "c", CustomerID: "pc4", Currency: "ZZZ"}), ReasonUnknownCurrency)
	add(p(schemas.Purchase{EventID: "c", CustomerID: "pc4", Currency: "usd"}), ReasonUnknownCurrency)
	add(p(schemas.Purchase{EventID: "o", CustomerID: "pc0", AmountMinor: math.MaxInt64, Currency: "EUR"}), ReasonAmountOverflow)

	// Repeats of valid records, each after its original: the same bytes,
	// or the same event_id with other content.
	for range 8 {
		j := rng.IntN(len(valid))
		bad = append(bad, hostileRecord{rec: copyRecord(valid[j]), reason: ReasonDuplicateEvent, after: j})
	}
	for _, j := range firstInteraction[:min(2, len(firstInteraction))] {
		var e schemas.Interaction
		if err := h.codec.DecodeInteraction(valid[j].Value, &e); err != nil {
			t.Fatal(err)
		}
		e.Type, e.Satisfaction = "complaint", nil
		bad = append(bad, hostileRecord{rec: h.interaction(e), reason: ReasonDuplicateEvent, after: j})
	}
	return valid, bad
}

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }

func copyRecord(r *kgo.Record) *kgo.Record {
	return &kgo.Record{Topic: r.Topic, Key: slicesClone(r.Key), Value: slicesClone(r.Value)}
}

// mix returns valid with bad inserted at random places, keeping the valid
// records' order and putting each repeat after its original.
func mix(rng *rand.Rand, valid []*kgo.Record, bad []hostileRecord) []*kgo.Record {
	// slots[i] holds the bad records that go right after valid[i-1]
	// (slot 0: before everything).
	slots := make([][]*kgo.Record, len(valid)+1)
	for _, b := range bad {
		lo := 0
		if b.after >= 0 {
			lo = b.after + 1
		}
		i := lo + rng.IntN(len(valid)+1-lo)
		slots[i] = append(slots[i], b.rec)
	}
	var out []*kgo.Record
	for i := range slots {
		out = append(out, slots[i]...)
		if i < len(valid) {
			out = append(out, valid[i])
		}
	}
	return out
}

// withInputs returns a copy of h with fresh input and output topics.
func (h *harness) withInputs() *harness {
	c := h.withOutputs()
	c.topics.Interactions = kafkatest.Name(h.t, "interactions")
	c.topics.Purchases = kafkatest.Name(h.t, "purchases")
	h.b.CreateTopics(h.t, h.parts, c.topics.Interactions, c.topics.Purchases)
	return c
}

// TestHostileInput feeds valid records mixed, in a different order per
// seed, with every kind of bad record: broken framing, unknown schemas,
// broken Avro, strings past the decoder's bound, missing or mismatched
// customer ids, ancient and future timestamps, bad amounts, currencies and
// scores, overflowing amounts and repeated event ids. Processing must go
// on, every bad record must be dead-lettered with its reason (and counted
// by reason), consumed must equal applied + dead-lettered, and the final
// state must equal that of a run, on a fresh group and state directory,
// over the valid records alone.
func TestHostileInput(t *testing.T) {
	seeds := 3
	if testing.Short() {
		seeds = 1
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			h := newHarness(t, 2)
			rng := rand.New(rand.NewPCG(seed, 99))
			valid, bad := hostileInput(h, rng)
			recs := mix(rng, valid, bad)
			h.b.Produce(t, recs...) // in order: offsets follow the slice per partition
			eventTime := func(c *Config) { c.Time = TimeEvent }

			dir := filepath.Join(t.TempDir(), "mixed")
			r := h.start(dir, kafkatest.Name(t, "mixed"), eventTime)
			r.waitHandled(t, float64(len(recs)))

			// Metrics: by reason, and consumed = applied + dead-lettered.
			wantByReason := map[[2]string]int{}
			for _, b := range bad {
				wantByReason[[2]string{b.rec.Topic, b.reason}]++
			}
			for k, n := range wantByReason {
				if got := testutil.ToFloat64(r.p.m.deadLettered.WithLabelValues(k[0], k[1])); got != float64(n) {
					t.Errorf("valora_records_dead_lettered_total{topic=%q,reason=%q} = %v, want %d", k[0], k[1], got, n)
				}
			}
			consumed, applied, dead := sumCounter(r.p.m.consumed), sumCounter(r.p.m.applied), sumCounter(r.p.m.deadLettered)
			if consumed != applied+dead || applied != float64(len(valid)) || dead != float64(len(bad)) {
				t.Errorf("consumed %v, applied %v, dead-lettered %v: want consumed = applied + dead-lettered, %d applied, %d dead-lettered",
					consumed, applied, dead, len(valid), len(bad))
			}

			// Every bad record is dead-lettered, with its reason.
			dlq := h.b.ConsumeN(t, h.topics.DeadLetter, int(dead), time.Minute)
			if len(dlq) != len(bad) {
				t.Errorf("dead letters: got %d, want %d", len(dlq), len(bad))
			}
			bySource := map[string]*kgo.Record{}
			for _, d := range dlq {
				bySource[header(d, HeaderSourceTopic)+"/"+header(d, HeaderSourcePartition)+"/"+header(d, HeaderSourceOffset)] = d
			}
			for _, b := range bad {
				src := b.rec.Topic + "/" + strconv.Itoa(int(b.rec.Partition)) + "/" + strconv.FormatInt(b.rec.Offset, 10)
				d := bySource[src]
				if d == nil {
					t.Errorf("no dead letter for %s (want reason %s)", src, b.reason)
					continue
				}
				if got := header(d, HeaderReason); got != b.reason {
					t.Errorf("%s: reason %q, want %q (error: %.200s)", src, got, b.reason, header(d, HeaderError))
				}
				if !bytes.Equal(d.Value, b.rec.Value) || !bytes.Equal(d.Key, b.rec.Key) {
					t.Errorf("%s: dead letter does not carry the original key and value", src)
				}
				if len(header(d, HeaderError)) > 512 {
					t.Errorf("%s: error header of %d bytes", src, len(header(d, HeaderError)))
				}
			}

			if err := r.shutdown(t, false); err != nil {
				t.Fatal(err)
			}
			got := snapshot(t, dir)

			// The valid records alone, on fresh topics, group and state.
			h2 := h.withInputs()
			var again []*kgo.Record
			for _, v := range valid {
				c := copyRecord(v)
				if v.Topic == h.topics.Purchases {
					c.Topic = h2.topics.Purchases
				} else {
					c.Topic = h2.topics.Interactions
				}
				again = append(again, c)
			}
			h2.b.Produce(t, again...)
			dir2 := filepath.Join(t.TempDir(), "valid")
			r2 := h2.start(dir2, kafkatest.Name(t, "valid"), eventTime)
			r2.waitHandled(t, float64(len(again)))
			if dead := sumCounter(r2.p.m.deadLettered); dead != 0 {
				t.Errorf("the valid records alone: %v dead-lettered", dead)
			}
			if err := r2.shutdown(t, false); err != nil {
				t.Fatal(err)
			}
			want := snapshot(t, dir2)

			if len(got) != len(want) {
				t.Errorf("state has %d customers, want %d (the valid records' customers only)", len(got), len(want))
			}
			for id, w := range want {
				g, ok := got[id]
				if !ok {
					t.Errorf("customer %.20q missing", id)
					continue
				}
				if !reflect.DeepEqual(g, w) {
					t.Errorf("customer %.20q:\n got %+v\nwant %+v", id, g, w)
				}
				// The duplicate window is bounded and holds no raw ids.
				if n := len(g.RecentEventHashes); n > score.DefaultDedupWindow {
					t.Errorf("customer %.20q: window of %d entries", id, n)
				}
				b, err := schemas.AppendCustomer(nil, &g)
				if err != nil {
					t.Fatal(err)
				}
				if size := len(b) - len(id); size > 1024 {
					t.Errorf("customer %.20q: %d bytes of state besides the id", id, size)
				}
			}
			if _, ok := got["pc0"]; !ok {
				t.Errorf("a buyer is missing from the state: %d customers", len(got))
			}
		})
	}
}
