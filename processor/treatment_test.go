package processor

import (
	"fmt"
	"testing"
	"time"

	"valora/internal/kafkatest"
	"valora/processor/score"
	"valora/schemas"
)

// TestValueClassChangesTreatment runs the processor (kfake) under a policy
// whose treatments go by value class: a one-time buyer's lifetime value
// decays while its tier and stage stay the same, its class falls from
// high_potential to none at a review timer, and that change alone must
// publish a tier change naming the new treatment, relationship and cost;
// the treatment gauge must follow.
func TestValueClassChangesTreatment(t *testing.T) {
	h := newHarness(t, 1)
	// The buyer's CLV at days 45 and 75 under the models, from a policy
	// without classes: the high_potential threshold goes between them.
	probe := modelsPolicy(t, "probe", nil)
	clvAt := func(d int) float64 {
		c := &schemas.Customer{CustomerID: "buyer"}
		if _, err := probe.ApplyPurchase(c, &schemas.Purchase{EventID: "b0", CustomerID: "buyer", OccurredAt: day(0),
			Kind: schemas.KindPurchase, AmountMinor: 3000, Currency: "USD", Channel: schemas.ChannelWeb, Items: 1}); err != nil {
			t.Fatal(err)
		}
		c.Tier = "" // force a change, so that the models run
		return *probe.TierChange(c, probe.Evaluate(c, day(d)), schemas.CauseInactivity, day(d)).CLV
	}
	early, late := clvAt(45), clvAt(75)
	if !(late < early) {
		t.Fatalf("CLV at day 45 %v, at day 75 %v: want it to decay", early, late)
	}
	pol := modelsPolicy(t, "treat-1", &score.ValueClasses{ReviewDays: 7, HighYieldMonetaryMinor: 1 << 40, HighYieldCLVMinor: 1 << 40,
		HighPotentialCLVMinor: (early + late) / 2, BelowZeroCLVMinor: 1})
	pol.Treatments = []score.TreatmentRule{
		{ValueClass: score.Match{score.ClassHighPotential}, Treatment: "develop", Action: score.ActionGrow, Relationship: score.RelationshipPersonal},
		{Treatment: "standard", Relationship: score.RelationshipSelfService},
	}
	if err := pol.Validate(); err != nil {
		t.Fatal(err)
	}
	r := h.start(t.TempDir(), kafkatest.Name(t, "g"), func(c *Config) { c.Time = TimeEvent; c.Policy = pol })
	r.send(h.buy("buyer", day(0), 3000))
	r.send(h.buy("other", day(85), 3000)) // stream time past the class change

	changes := h.customerChanges(t, "buyer")
	checkChain(t, changes)
	var found bool
	for i := 1; i < len(changes); i++ {
		prev, cur := changes[i-1], changes[i]
		if cur.Treatment == nil || cur.Relationship == nil || cur.RelationshipCostMinor == nil {
			t.Fatalf("change %d has no treatment: %+v", i, cur)
		}
		if prev.ValueClass == nil || *prev.ValueClass != score.ClassHighPotential || cur.ValueClass != nil {
			continue
		}
		found = true
		if cur.Tier != prev.Tier || cur.LifecycleStage != prev.LifecycleStage || cur.ChurnRisk != prev.ChurnRisk {
			t.Fatalf("class change at day %d also changed tier, stage or churn: %+v -> %+v", (cur.OccurredAt-day(0))/dayMs, prev, cur)
		}
		if *prev.Treatment != "develop" || *prev.Relationship != score.RelationshipPersonal || *prev.Action != score.ActionGrow {
			t.Errorf("before: treatment %s relationship %s action %s, want develop, personal, grow", *prev.Treatment, *prev.Relationship, *prev.Action)
		}
		if *cur.Treatment != "standard" || *cur.Relationship != score.RelationshipSelfService || *cur.RelationshipCostMinor != 100 || cur.Cause != schemas.CauseInactivity {
			t.Errorf("after: treatment %s relationship %s cost %d cause %s, want standard, self_service, 100, INACTIVITY",
				*cur.Treatment, *cur.Relationship, *cur.RelationshipCostMinor, cur.Cause)
		}
	}
	if !found {
		t.Fatalf("no change from high_potential to no class among %d changes", len(changes))
	}
	// Both customers end under "standard" or "develop"; the gauge counts
	// each under its latest treatment.
	want := map[string]float64{}
	for _, id := range []string{"buyer", "other"} {
		cs := h.customerChanges(t, id)
		want[*cs[len(cs)-1].Treatment]++
	}
	kafkatest.Eventually(t, 10*time.Second, func() error {
		got := map[string]float64{}
		mfs, err := r.reg.Gather()
		if err != nil {
			return err
		}
		for _, mf := range mfs {
			if mf.GetName() == "valora_customers_treatment" {
				for _, m := range mf.GetMetric() {
					if v := m.GetGauge().GetValue(); v != 0 {
						got[m.GetLabel()[0].GetValue()] = v
					}
				}
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("valora_customers_treatment %v, want %v", got, want)
		}
		return nil
	})
}

// TestPolicyReloadTreatments changes only the treatment table of a running
// processor (SetPolicy under a new version, what SIGHUP does): every
// customer gets one POLICY_CHANGE naming its new treatment and
// relationship, with its tier unchanged.
func TestPolicyReloadTreatments(t *testing.T) {
	h := newHarness(t, 2)
	r := h.start(t.TempDir(), kafkatest.Name(t, "g"), func(c *Config) { c.Time = TimeEvent })
	const n = 20
	for i := range n {
		r.send(h.buy(fmt.Sprintf("c%02d", i), day(0), 2500))
	}
	pilot := score.DefaultPolicy()
	pilot.Version = "pilot-1"
	pilot.Treatments = []score.TreatmentRule{
		{Tier: score.Match{"prospect"}, Treatment: "acquire", Relationship: score.RelationshipAutomated},
		{Treatment: "pilot", Action: score.ActionNurture, Relationship: score.RelationshipCommunity},
	}
	if err := pilot.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := r.p.SetPolicy(pilot); err != nil {
		t.Fatal(err)
	}
	kafkatest.Eventually(t, time.Minute, func() error {
		for i := range n {
			cs := h.customerChanges(t, fmt.Sprintf("c%02d", i))
			last := cs[len(cs)-1]
			if last.Cause != schemas.CausePolicyChange {
				return fmt.Errorf("c%02d: no POLICY_CHANGE yet", i)
			}
			if len(cs) != 2 || *last.Treatment != "pilot" || *last.Relationship != score.RelationshipCommunity ||
				*last.RelationshipCostMinor != 50 || *last.Action != score.ActionNurture || last.Tier != cs[0].Tier || last.PolicyVersion != "pilot-1" {
				t.Fatalf("c%02d: changes %+v, want one POLICY_CHANGE to pilot under pilot-1, same tier", i, cs)
			}
		}
		return nil
	})
}
