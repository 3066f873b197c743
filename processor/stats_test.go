package processor

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/kafkatest"
	"valora/schemas"
)

// TestStats: the snapshot Stats returns holds the values the processor's
// metrics export, while it runs and after Run has returned.
func TestStats(t *testing.T) {
	h := newHarness(t, 2)
	r := h.start(t.TempDir(), kafkatest.Name(t, "g"))
	var recs []*kgo.Record
	for i, id := range []string{"a", "b", "c", "d", "e"} {
		recs = append(recs, h.purchase(schemas.Purchase{EventID: id, CustomerID: id, OccurredAt: day(i), AmountMinor: 100_000}))
	}
	recs = append(recs, &kgo.Record{Topic: h.topics.Purchases, Key: []byte("g"), Value: []byte("not avro")})
	h.b.Produce(t, recs...)
	r.waitHandled(t, float64(len(recs)))
	check := func(when string) {
		t.Helper()
		st := r.p.Stats()
		if st.Consumed != int64(len(recs)) || st.Applied != int64(len(recs)-1) || st.DeadLettered != 1 {
			t.Errorf("%s: consumed %d applied %d dead-lettered %d, want %d, %d, 1", when, st.Consumed, st.Applied, st.DeadLettered, len(recs), len(recs)-1)
		}
		for name, got := range map[string]int64{
			"valora_records_consumed_total":      st.Consumed,
			"valora_records_applied_total":       st.Applied,
			"valora_records_dead_lettered_total": st.DeadLettered,
			"valora_tier_changes_total":          st.TierChanges,
			"valora_profiles_published_total":    st.Profiles,
			"valora_timers_fired_total":          st.TimersFired,
			"valora_customers_churn_risk":        st.ChurnRisk,
			"valora_commit_duration_seconds":     st.Commits,
			"valora_processing_latency_seconds":  st.Batches,
		} {
			if want := gaugeValue(t, r, name); float64(got) != want {
				t.Errorf("%s: %s is %v, the stats say %d", when, name, want, got)
			}
		}
		if st.TierChanges < 5 || st.Commits == 0 || st.CommitSeconds <= 0 {
			t.Errorf("%s: %d tier changes, %d commits taking %vs; want at least 5 and some", when, st.TierChanges, st.Commits, st.CommitSeconds)
		}
		tiers := int64(0)
		for _, n := range st.Tiers {
			tiers += n
		}
		stages := int64(0)
		for _, n := range st.Stages {
			stages += n
		}
		if tiers != 5 || stages != 5 {
			t.Errorf("%s: %v customers by tier, %v by stage; want 5 each", when, st.Tiers, st.Stages)
		}
	}
	check("running")
	lag := r.p.Stats().ConsumerLag[h.topics.Purchases]
	for part, n := range lag {
		if part < 0 || part >= h.parts || n < 0 {
			t.Errorf("consumer lag of partition %d: %d", part, n)
		}
	}
	if err := r.shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	st := r.p.Stats()
	if st.Consumed != int64(len(recs)) {
		t.Errorf("after Run: consumed %d, want %d", st.Consumed, len(recs))
	}
}
