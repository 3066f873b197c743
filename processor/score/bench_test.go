package score

import (
	"testing"

	"valora/processor/clv"
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

// benchApplyPurchase applies purchases an hour apart, cycling over 1,000
// hours so that the customer's repeat days stay bounded (about 40) however
// long the benchmark runs: the models' cost depends on them.
func benchApplyPurchase(b *testing.B, p *Policy) {
	c := benchCustomer(b, p)
	e := purchase(c.LastActivity, 2599)
	e.Currency = "EUR"
	start := e.OccurredAt
	ids := benchIDs()
	b.ReportAllocs()
	for n := 0; b.Loop(); n++ {
		e.OccurredAt = start + int64(n%1000+1)*3600_000
		e.EventID = ids[n%len(ids)]
		if _, err := p.ApplyPurchase(c, e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApplyPurchase(b *testing.B) { benchApplyPurchase(b, DefaultPolicy()) }

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

// benchModelPolicies are the default policy with models: with the P(alive)
// churn rule only (the models run for P(alive) at each evaluation and in
// full only on a change), and with value classes too (in full at every
// evaluation, for the CLV).
// The mbgnbd and paretonbd policies are the same with the count model
// MBG/NBD or Pareto/NBD.
func benchModelPolicies(b *testing.B) map[string]*Policy {
	classes := func() *ValueClasses {
		return &ValueClasses{ReviewDays: 7,
			HighYieldCLVMinor: 1e5, HighYieldMonetaryMinor: 1e5, HighPotentialCLVMinor: 1e4, BelowZeroCLVMinor: 100}
	}
	mbg := func(p *Policy) *Policy {
		q := *p
		q.Models = testMBGModels()
		if err := q.Validate(); err != nil {
			b.Fatal(err)
		}
		return &q
	}
	pnbd := func(p *Policy) *Policy {
		q := *p
		q.Models = testModels()
		q.Models.Count, q.Models.BGNBD = clv.CountParetoNBD, clv.BGNBD{}
		q.Models.ParetoNBD = &clv.ParetoNBD{R: 0.553, Alpha: 10.578 * 7, S: 0.606, Beta: 11.669 * 7}
		if err := q.Validate(); err != nil {
			b.Fatal(err)
		}
		return &q
	}
	return map[string]*Policy{
		"p_alive":                modelPolicy(b, 0.3, nil),
		"p_alive+classes":        modelPolicy(b, 0.3, classes()),
		"mbgnbd/p_alive":         mbg(modelPolicy(b, 0.3, nil)),
		"mbgnbd/p_alive+classes": mbg(modelPolicy(b, 0.3, classes())),
		"paretonbd/p_alive":      pnbd(modelPolicy(b, 0.3, nil)),
	}
}

// BenchmarkApplyPurchaseModels is BenchmarkApplyPurchase under policies with
// models: the difference is the per-event cost of the models.
func BenchmarkApplyPurchaseModels(b *testing.B) {
	for name, p := range benchModelPolicies(b) {
		b.Run(name, func(b *testing.B) { benchApplyPurchase(b, p) })
	}
}

func BenchmarkNextDeadlineModels(b *testing.B) {
	for name, p := range benchModelPolicies(b) {
		b.Run(name, func(b *testing.B) {
			c := benchCustomer(b, p)
			b.ReportAllocs()
			for b.Loop() {
				p.NextDeadline(c)
			}
		})
	}
}

// BenchmarkProfile measures ProfileTo, which a task runs once per changed
// customer per commit cycle, under the default policy and under one with
// models (which it evaluates for the profile's p_alive and clv).
func BenchmarkProfile(b *testing.B) {
	for name, p := range map[string]*Policy{"default": DefaultPolicy(), "models": benchModelPolicies(b)["p_alive+classes"]} {
		b.Run(name, func(b *testing.B) {
			c := benchCustomer(b, p)
			var buf ProfileBuf
			b.ReportAllocs()
			for b.Loop() {
				_ = p.ProfileTo(&buf, c, nil)
			}
		})
	}
}
