// Package deliverytest checks what valora promises the consumers of its
// output topic and the readers of its changelog, for the crash and scale
// tests of the processor and of the binary: tier-change chains, repeats,
// and the committed state.
package deliverytest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/kafkatest"
	"valora/processor/changelog"
	"valora/schemas"
)

// Changes is a tier-change topic as a downstream consumer reads it with
// read_committed.
type Changes struct {
	// ByCustomer holds each customer's distinct changes in topic order.
	ByCustomer map[string][]schemas.TierChange
	// Distinct holds every distinct change by event_id.
	Distinct map[string]schemas.TierChange
	// Repeats counts records whose event_id came before.
	Repeats int
}

// ReadChanges reads a tier-change topic. It fails the test when an
// event_id repeats with other content, and, if exactlyOnce, when one
// repeats at all.
func ReadChanges(t testing.TB, b kafkatest.Broker, codec *schemas.Codec, topic string, exactlyOnce bool) Changes {
	t.Helper()
	out := Changes{ByCustomer: map[string][]schemas.TierChange{}, Distinct: map[string]schemas.TierChange{}}
	for _, rec := range b.ConsumeAll(t, topic) {
		var tc schemas.TierChange
		if err := codec.DecodeTierChange(rec.Value, &tc); err != nil {
			t.Fatalf("decode tier change at %d/%d: %v", rec.Partition, rec.Offset, err)
		}
		if prev, ok := out.Distinct[tc.EventID]; ok {
			out.Repeats++
			if exactlyOnce {
				t.Fatalf("exactly-once: event %s delivered twice", tc.EventID)
			}
			if !reflect.DeepEqual(prev, tc) {
				t.Fatalf("event %s repeated with different content:\n%+v\n%+v", tc.EventID, prev, tc)
			}
			continue
		}
		out.Distinct[tc.EventID] = tc
		out.ByCustomer[tc.CustomerID] = append(out.ByCustomer[tc.CustomerID], tc)
	}
	return out
}

// CheckChains fails the test unless every customer's changes form a chain
// (CheckChain).
func (c Changes) CheckChains(t testing.TB) {
	t.Helper()
	for id, changes := range c.ByCustomer {
		CheckChain(t, id, changes)
	}
}

// CheckChain fails the test unless one customer's changes, in topic order,
// form a chain: versions strictly increasing, each previous_tier the tier
// before. An ERASURE change ends a chain (the next version, no tier); the
// change after it starts a new customer (no previous_tier).
func CheckChain(t testing.TB, id string, changes []schemas.TierChange) {
	t.Helper()
	for i := 1; i < len(changes); i++ {
		prev, cur := changes[i-1], changes[i]
		if prev.Cause == schemas.CauseErasure {
			if cur.PreviousTier != nil {
				t.Fatalf("customer %s, change %d: previous_tier %q after an erasure, want none (a new customer)", id, i, *cur.PreviousTier)
			}
			continue
		}
		if cur.Version <= prev.Version {
			t.Fatalf("customer %s, change %d: version %d after %d", id, i, cur.Version, prev.Version)
		}
		if cur.Cause == schemas.CauseErasure {
			if cur.PreviousTier != nil || cur.Tier != "" {
				t.Fatalf("customer %s, change %d: an erasure with previous_tier %v and tier %q, want neither", id, i, cur.PreviousTier, cur.Tier)
			}
			continue
		}
		if cur.PreviousTier == nil || *cur.PreviousTier != prev.Tier {
			t.Fatalf("customer %s, change %d: previous_tier %v, want %q", id, i, cur.PreviousTier, prev.Tier)
		}
	}
}

// CheckFinal fails the test unless each customer's last change shows its
// final state's tier, churn flag and lifecycle stage.
func (c Changes) CheckFinal(t testing.TB, final map[string]schemas.Customer) {
	t.Helper()
	for id, changes := range c.ByCustomer {
		w, ok := final[id]
		if !ok {
			t.Fatalf("customer %s has tier changes but no state", id)
		}
		last := changes[len(changes)-1]
		if last.Tier != w.Tier || last.ChurnRisk != w.ChurnRisk || last.LifecycleStage != w.LifecycleStage {
			t.Fatalf("customer %s: last change (%s, churn %v, %s) is not its final state (%s, churn %v, %s)",
				id, last.Tier, last.ChurnRisk, last.LifecycleStage, w.Tier, w.ChurnRisk, w.LifecycleStage)
		}
	}
}

// ChangelogCustomers reads the state a changelog topic holds, restoring
// it through changelog.ReadState into a store in a temporary directory.
// TimerAt is zeroed: it is the store's bookkeeping, which a restore
// indexes anew.
func ChangelogCustomers(t testing.TB, b kafkatest.Broker, topic string) map[string]schemas.Customer {
	t.Helper()
	raw, err := changelog.ReadState(context.Background(), t.TempDir(), b.ConsumeAll(t, topic))
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]schemas.Customer, len(raw))
	for id, v := range raw {
		var c schemas.Customer
		if err := schemas.DecodeCustomer(v, &c); err != nil {
			t.Fatalf("decode customer %s from the changelog: %v", id, err)
		}
		c.TimerAt = 0
		out[id] = c
	}
	return out
}

// SameState fails the test unless got and want hold the same customers.
func SameState(t testing.TB, got, want map[string]schemas.Customer) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("customers: got %d, want %d", len(got), len(want))
	}
	for id, w := range want {
		if g := got[id]; !reflect.DeepEqual(g, w) {
			t.Fatalf("customer %s differs from the clean run:\n got %+v\nwant %+v", id, g, w)
		}
	}
}

// GroupHandled sums a group's committed offsets on the given topics: the
// input records whose effects are durable (offsets start at 0). It is 0
// while the group does not exist.
func GroupHandled(adm *kadm.Client, group string, topics ...string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0
	}
	var n int64
	for _, topic := range topics {
		for _, o := range offs[topic] {
			n += max(0, o.At)
		}
	}
	return n
}

// Compact returns what Kafka's log compaction may leave of a topic's
// records (in offset order per partition): the last record of each key per
// partition, tombstones included (as they are for delete.retention.ms), in
// offset order. Transaction markers are dropped.
func Compact(recs []*kgo.Record) []*kgo.Record {
	type pk struct {
		part int32
		key  string
	}
	last := map[pk]int{}
	for i, r := range recs {
		if !r.Attrs.IsControl() {
			last[pk{r.Partition, string(r.Key)}] = i
		}
	}
	var out []*kgo.Record
	for i, r := range recs {
		if j, ok := last[pk{r.Partition, string(r.Key)}]; ok && j == i {
			out = append(out, r)
		}
	}
	return out
}
