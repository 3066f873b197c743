package score

import (
	"testing"

	"valora/schemas"
)

// benchCustomer returns a customer with some history.
func benchCustomer(b *testing.B, p *Policy) *schemas.Customer {
	b.Helper()
	c := &schemas.Customer{CustomerID: "customer-000001"}
	for i := int64(0); i < 5; i++ {
		if _, err := p.ApplyPurchase(c, purchase(t0+i*7*DayMs, 4000)); err != nil {
			b.Fatal(err)
		}
	}
	return c
}

// benchIDs returns distinct event ids, more than any duplicate window
// holds, so that cycling through them never repeats within a window.
func benchIDs() []string {
	ids := make([]string, 4*MaxDedupWindow)
	for i := range ids {
		ids[i] = nextEventID("bench-event-")
	}
	return ids
}

func BenchmarkApplyPurchase(b *testing.B) {
	p := DefaultPolicy()
	c := benchCustomer(b, p)
	e := purchase(c.LastActivity, 2599)
	e.Currency = "EUR"
	ids := benchIDs()
	b.ReportAllocs()
	for n := 0; b.Loop(); n++ {
		e.OccurredAt += 3600_000
		e.EventID = ids[n%len(ids)]
		if _, err := p.ApplyPurchase(c, e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApplyInteraction(b *testing.B) {
	p := DefaultPolicy()
	c := benchCustomer(b, p)
	e := interaction(c.LastActivity, "survey_response")
	s := int32(7)
	e.Satisfaction = &s
	ids := benchIDs()
	b.ReportAllocs()
	for n := 0; b.Loop(); n++ {
		e.OccurredAt += 3600_000
		e.EventID = ids[n%len(ids)]
		if _, err := p.ApplyInteraction(c, e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEvaluate(b *testing.B) {
	p := DefaultPolicy()
	c := benchCustomer(b, p)
	at := c.EvaluatedAt
	b.ReportAllocs()
	for b.Loop() {
		at += 3600_000
		p.Evaluate(c, at)
	}
}

func BenchmarkNextDeadline(b *testing.B) {
	p := DefaultPolicy()
	c := benchCustomer(b, p)
	b.ReportAllocs()
	for b.Loop() {
		p.NextDeadline(c)
	}
}

func BenchmarkTierChange(b *testing.B) {
	p := DefaultPolicy()
	c := benchCustomer(b, p)
	o := Outcome{Changed: true, HadPrevious: true, Previous: Derived{Tier: "loyal"}}
	b.ReportAllocs()
	for b.Loop() {
		_ = p.TierChange(c, o, schemas.CausePurchase, c.EvaluatedAt)
	}
}

// benchModelPolicy is the default policy with models, the P(alive) churn
// rule and value classes: every evaluation runs the models.
func benchModelPolicy(b *testing.B) *Policy {
	return modelPolicy(b, 0.3, &ValueClasses{HighYieldCLVMinor: 1e5, HighYieldMonetaryMinor: 1e5, HighPotentialCLVMinor: 1e4, BelowZeroCLVMinor: 100})
}

// BenchmarkApplyPurchaseModels is BenchmarkApplyPurchase under a policy with
// models: the difference is the per-event cost of the models.
func BenchmarkApplyPurchaseModels(b *testing.B) {
	p := benchModelPolicy(b)
	c := benchCustomer(b, p)
	e := purchase(c.LastActivity, 2599)
	e.Currency = "EUR"
	ids := benchIDs()
	b.ReportAllocs()
	for n := 0; b.Loop(); n++ {
		e.OccurredAt += 3600_000
		e.EventID = ids[n%len(ids)]
		if _, err := p.ApplyPurchase(c, e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEvaluateModels(b *testing.B) {
	p := benchModelPolicy(b)
	c := benchCustomer(b, p)
	at := c.EvaluatedAt
	b.ReportAllocs()
	for b.Loop() {
		at += 3600_000
		p.Evaluate(c, at)
	}
}

func BenchmarkNextDeadlineModels(b *testing.B) {
	p := benchModelPolicy(b)
	c := benchCustomer(b, p)
	b.ReportAllocs()
	for b.Loop() {
		p.NextDeadline(c)
	}
}
