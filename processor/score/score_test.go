package score

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"

	"valora/schemas"
)

const t0 = scenarioEpoch // 2024-01-01T00:00Z

func clone(c *schemas.Customer) *schemas.Customer {
	d := *c
	d.InteractionsByChannel = slices.Clone(c.InteractionsByChannel)
	d.PurchasesByChannel = slices.Clone(c.PurchasesByChannel)
	d.RecentEventHashes = slices.Clone(c.RecentEventHashes)
	if c.ValueClass != nil {
		v := *c.ValueClass
		d.ValueClass = &v
	}
	return &d
}

// eventSeq numbers the events the helpers below build, so that each has
// its own event_id and none is taken for a duplicate.
var eventSeq atomic.Int64

func nextEventID(prefix string) string {
	return prefix + strconv.FormatInt(eventSeq.Add(1), 10)
}

func purchase(at, amount int64) *schemas.Purchase {
	return &schemas.Purchase{EventID: nextEventID("p"), CustomerID: "c", OccurredAt: at, Kind: schemas.KindPurchase,
		AmountMinor: amount, Currency: "USD", Channel: schemas.ChannelWeb, Items: 1}
}

func refund(at, amount int64) *schemas.Purchase {
	e := purchase(at, amount)
	e.Kind = schemas.KindRefund
	return e
}

func interaction(at int64, typ string) *schemas.Interaction {
	return &schemas.Interaction{EventID: nextEventID("i"), CustomerID: "c", OccurredAt: at, Channel: schemas.ChannelEmail, Type: typ}
}

func mustPurchase(t testing.TB, p *Policy, c *schemas.Customer, e *schemas.Purchase) Outcome {
	t.Helper()
	o, err := p.ApplyPurchase(c, e)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestScoreBoundaries checks every boundary of R, F and M one below, exactly
// at and one above.
func TestScoreBoundaries(t *testing.T) {
	p := DefaultPolicy()
	base := func() *schemas.Customer {
		c := &schemas.Customer{CustomerID: "c"}
		mustPurchase(t, p, c, purchase(t0, 1000))
		return c
	}
	t.Run("R", func(t *testing.T) {
		for i, b := range p.Scores.RecencyDays {
			above := int32(5 - i)
			f := func(at int64, want int32) {
				t.Helper()
				c := base()
				p.Evaluate(c, at)
				if c.RScore != want {
					t.Errorf("recency boundary %d days, evaluated %+d ms from the purchase: R = %d, want %d", b, at-t0, c.RScore, want)
				}
			}
			f(t0+(b-1)*DayMs, above)   // one day below
			f(t0+b*DayMs, above)       // exactly at (whole days)
			f(t0+(b+1)*DayMs-1, above) // fractional days floor
			f(t0+(b+1)*DayMs, above-1) // one day above
			f(t0+(b+1)*DayMs+DayMs/2, above-1)
		}
	})
	t.Run("F", func(t *testing.T) {
		for i, b := range p.Scores.Frequency {
			f := func(n int64, want int32) {
				t.Helper()
				c := &schemas.Customer{CustomerID: "c"}
				for j := int64(0); j < n; j++ {
					mustPurchase(t, p, c, purchase(t0+j, 1))
				}
				if n == 0 {
					p.Evaluate(c, t0)
				}
				if n == 0 {
					want = 0 // not scored before the first purchase
				}
				if c.FScore != want {
					t.Errorf("frequency boundary %d, %d purchases: F = %d, want %d", b, n, c.FScore, want)
				}
			}
			below := int32(i + 1)
			if i > 0 && b-1 <= p.Scores.Frequency[i-1] {
				below-- // consecutive boundaries: one below is the previous one
			}
			f(b-1, below)
			f(b, int32(i+1))
			f(b+1, int32(i+2))
		}
	})
	t.Run("M", func(t *testing.T) {
		for i, b := range p.Scores.MonetaryMinor {
			f := func(amount int64, want int32) {
				t.Helper()
				c := &schemas.Customer{CustomerID: "c"}
				mustPurchase(t, p, c, purchase(t0, amount))
				if c.MScore != want {
					t.Errorf("monetary boundary %d, amount %d: M = %d, want %d", b, amount, c.MScore, want)
				}
			}
			f(b-1, int32(i+1))
			f(b, int32(i+1))
			f(b+1, int32(i+2))
		}
		// Zero and negative net values score 1.
		for _, refunded := range []int64{1000, 1001, 1 << 40} {
			c := &schemas.Customer{CustomerID: "c"}
			mustPurchase(t, p, c, purchase(t0, 1000))
			mustPurchase(t, p, c, refund(t0+1, refunded))
			if want := 1000 - refunded; c.MonetaryMinor != want || c.MScore != 1 {
				t.Errorf("refund %d: monetary %d M %d, want %d and 1", refunded, c.MonetaryMinor, c.MScore, want)
			}
		}
	})
	t.Run("FM", func(t *testing.T) {
		for _, tc := range []struct{ f, m, want int }{
			{1, 1, 1}, {1, 2, 2}, {2, 2, 2}, {2, 3, 3}, {1, 5, 3}, {3, 4, 4}, {4, 5, 5}, {5, 5, 5}, {5, 1, 3},
		} {
			if got := combine(tc.f, tc.m); got != tc.want {
				t.Errorf("combine(%d, %d) = %d, want %d", tc.f, tc.m, got, tc.want)
			}
		}
	})
}

func TestVersionIncrements(t *testing.T) {
	p := DefaultPolicy()
	c := &schemas.Customer{CustomerID: "c"}

	// The first evaluation is a change with no previous state.
	o, err := p.ApplyInteraction(c, interaction(t0, "visit"))
	if err != nil || !o.Changed || o.HadPrevious || c.Version != 1 {
		t.Fatalf("first event: %+v, %v, version %d", o, err, c.Version)
	}
	// An event that changes nothing still counts once.
	o, _ = p.ApplyInteraction(c, interaction(t0+1, "visit"))
	if o.Changed || !o.HadPrevious || c.Version != 2 {
		t.Fatalf("second event: %+v, version %d", o, c.Version)
	}
	// An event that changes the tier counts once, not twice.
	o = mustPurchase(t, p, c, purchase(t0+2, 1000))
	if !o.Changed || o.Previous.Tier != "prospect" || c.Version != 3 {
		t.Fatalf("purchase: %+v, version %d", o, c.Version)
	}
	// A timer evaluation that changes nothing leaves the version alone.
	if o := p.Evaluate(c, t0+DayMs); o.Changed || c.Version != 3 {
		t.Fatalf("quiet evaluation: %+v, version %d", o, c.Version)
	}
	// One that changes something counts once.
	if o := p.Evaluate(c, t0+40*DayMs); !o.Changed || c.Version != 4 {
		t.Fatalf("changing evaluation: %+v, version %d", o, c.Version)
	}
	// Evaluating again at the same (or an earlier) time changes nothing.
	for _, at := range []int64{t0 + 40*DayMs, t0} {
		if o := p.Evaluate(c, at); o.Changed || c.Version != 4 || c.EvaluatedAt != t0+40*DayMs {
			t.Fatalf("re-evaluation at %d: %+v, version %d, evaluated %d", at, o, c.Version, c.EvaluatedAt)
		}
	}
	// A rejected event changes nothing at all.
	before := clone(c)
	if _, err := p.ApplyPurchase(c, purchase(t0, -1)); err == nil {
		t.Fatal("negative amount accepted")
	}
	if !reflect.DeepEqual(c, before) {
		t.Fatalf("rejected event changed the customer")
	}
}

// TestFreeOrder checks that a PURCHASE of amount 0 counts as an order
// (frequency, recency, purchase days, channel, lifecycle) and adds nothing to
// the monetary value, and that a customer whose only orders are free is
// scored with the lowest monetary score.
func TestFreeOrder(t *testing.T) {
	p := DefaultPolicy()
	c := &schemas.Customer{CustomerID: "c"}
	o := mustPurchase(t, p, c, purchase(t0, 0))
	if !o.Changed || c.Purchases != 1 || c.MonetaryMinor != 0 || c.FirstPurchase != t0 || c.LastPurchase != t0 ||
		c.LastActivity != t0 || c.LifecycleStage != StageNew || c.Tier == p.compiled().prospect {
		t.Fatalf("first order free: %+v, customer %+v", o, c)
	}
	tc := p.TierChange(c, o, schemas.CausePurchase, t0)
	if tc.RScore != 5 || tc.FScore != 1 || tc.MScore != 1 || tc.Frequency != 1 || tc.Monetary != 0 {
		t.Errorf("tier change of a free order: R %d F %d M %d, frequency %d, monetary %d; want 5 1 1, 1, 0",
			tc.RScore, tc.FScore, tc.MScore, tc.Frequency, tc.Monetary)
	}
	mustPurchase(t, p, c, purchase(t0+3*DayMs, 2500))
	mustPurchase(t, p, c, purchase(t0+9*DayMs, 0))
	if c.Purchases != 3 || c.MonetaryMinor != 2500 || c.RepeatDays != 2 || c.LastPurchase != t0+9*DayMs {
		t.Errorf("after a paid and another free order: purchases %d, monetary %d, repeat days %d, last %d; want 3, 2500, 2, %d",
			c.Purchases, c.MonetaryMinor, c.RepeatDays, c.LastPurchase, t0+9*DayMs)
	}
	// A refund of 0 takes nothing back and is rejected.
	before := clone(c)
	if _, err := p.ApplyPurchase(c, refund(t0+10*DayMs, 0)); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("refund of 0: %v, want ErrInvalidEvent", err)
	}
	if !reflect.DeepEqual(c, before) {
		t.Error("a rejected refund of 0 changed the customer")
	}
}

func TestRejectedEventsLeaveCustomerUnchanged(t *testing.T) {
	p := DefaultPolicy()
	sat := func(v int32) *int32 { return &v }
	build := func() *schemas.Customer {
		c := &schemas.Customer{CustomerID: "c"}
		mustPurchase(t, p, c, purchase(t0, 1000))
		if _, err := p.ApplyInteraction(c, interaction(t0+DayMs, "visit")); err != nil {
			t.Fatal(err)
		}
		return c
	}
	purchases := []struct {
		name string
		e    *schemas.Purchase
		want error
	}{
		{"zero time", purchase(0, 100), ErrInvalidEvent},
		{"negative time", purchase(-5, 100), ErrInvalidEvent},
		{"time past year 9999", purchase(MaxEventTime+1, 100), ErrInvalidEvent},
		{"zero refund", refund(t0, 0), ErrInvalidEvent},
		{"negative amount", purchase(t0, -1), ErrInvalidEvent},
		{"negative refund", refund(t0, -1), ErrInvalidEvent},
		{"unknown kind", func() *schemas.Purchase { e := purchase(t0, 1); e.Kind = "GIFT"; return e }(), ErrInvalidEvent},
		{"unknown channel", func() *schemas.Purchase { e := purchase(t0, 1); e.Channel = "PIGEON"; return e }(), ErrInvalidEvent},
		{"unknown currency", func() *schemas.Purchase { e := purchase(t0, 1); e.Currency = "XYZ"; return e }(), ErrUnknownCurrency},
		{"conversion overflow", func() *schemas.Purchase { e := purchase(t0, math.MaxInt64); e.Currency = "GBP"; return e }(), ErrOverflow},
		{"total overflow", purchase(t0, math.MaxInt64-999), ErrOverflow},
	}
	for _, tc := range purchases {
		c := build()
		before := clone(c)
		_, err := p.ApplyPurchase(c, tc.e)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
		if !reflect.DeepEqual(c, before) {
			t.Errorf("%s: customer changed", tc.name)
		}
	}
	// Refunds below MinInt64.
	c := &schemas.Customer{CustomerID: "c", MonetaryMinor: math.MinInt64 + 10}
	if _, err := p.ApplyPurchase(c, refund(t0, 11)); !errors.Is(err, ErrOverflow) {
		t.Errorf("refund underflow: err = %v", err)
	}

	interactions := []struct {
		name string
		e    *schemas.Interaction
	}{
		{"zero time", interaction(0, "visit")},
		{"unknown channel", func() *schemas.Interaction { e := interaction(t0, "visit"); e.Channel = "email"; return e }()},
		{"satisfaction 11", func() *schemas.Interaction { e := interaction(t0, "survey"); e.Satisfaction = sat(11); return e }()},
		{"satisfaction -1", func() *schemas.Interaction { e := interaction(t0, "survey"); e.Satisfaction = sat(-1); return e }()},
	}
	for _, tc := range interactions {
		c := build()
		before := clone(c)
		if _, err := p.ApplyInteraction(c, tc.e); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%s: err = %v, want ErrInvalidEvent", tc.name, err)
		}
		if !reflect.DeepEqual(c, before) {
			t.Errorf("%s: customer changed", tc.name)
		}
	}
}

func TestRiskRules(t *testing.T) {
	sat := func(v int32) *int32 { return &v }
	for _, tc := range []struct {
		name      string
		threshold int32
		types     []string
		typ       string
		sat       *int32
		wantUntil int64 // days after the interaction; 0 for none
	}{
		{"complaint", 3, []string{"complaint"}, "complaint", nil, 30},
		{"other type", 3, []string{"complaint"}, "visit", nil, 0},
		{"custom complaint type", 3, []string{"complaint", "chargeback"}, "chargeback", nil, 30},
		{"complaints disabled", 3, []string{}, "complaint", nil, 0},
		{"satisfaction at threshold", 3, nil, "survey", sat(3), 20},
		{"satisfaction below", 3, nil, "survey", sat(0), 20},
		{"satisfaction above", 3, nil, "survey", sat(4), 0},
		{"rule disabled", -1, nil, "survey", sat(0), 0},
		{"threshold 10", 10, nil, "survey", sat(10), 20},
		{"complaint with low score: the longer window", 3, []string{"complaint"}, "complaint", sat(1), 30},
	} {
		p := DefaultPolicy()
		p.Risk.LowSatisfaction = tc.threshold
		p.Risk.ComplaintTypes = tc.types
		p.Risk.RiskDays = 20
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
		c := &schemas.Customer{CustomerID: "c"}
		mustPurchase(t, p, c, purchase(t0, 1000))
		e := interaction(t0+DayMs, tc.typ)
		e.Satisfaction = tc.sat
		if _, err := p.ApplyInteraction(c, e); err != nil {
			t.Fatal(err)
		}
		var want int64
		if tc.wantUntil != 0 {
			want = t0 + DayMs + tc.wantUntil*DayMs
		}
		if c.RiskUntil != want {
			t.Errorf("%s: RiskUntil = %d, want %d", tc.name, c.RiskUntil, want)
		}
		if wantAtRisk := want != 0; (c.LifecycleStage == StageAtRisk) != wantAtRisk {
			t.Errorf("%s: stage %s", tc.name, c.LifecycleStage)
		}
	}
}

func TestTierChange(t *testing.T) {
	p := DefaultPolicy()
	c := &schemas.Customer{CustomerID: "cust-7"}
	o, _ := p.ApplyInteraction(c, interaction(t0, "visit"))
	tc := p.TierChange(c, o, schemas.CauseInteraction, t0)
	want := schemas.TierChange{
		EventID: "cust-7:1", CustomerID: "cust-7", Version: 1, OccurredAt: t0,
		Cause: schemas.CauseInteraction, Tier: "prospect", LifecycleStage: StageProspect,
		Currency: "USD", RScore: 0, FScore: 0, MScore: 0, PolicyVersion: "default-1",
		Action: ptr(ActionAcquire), Treatment: ptr("acquire"), Relationship: ptr(RelationshipAutomated), RelationshipCostMinor: ptr(int64(20)),
	}
	if !reflect.DeepEqual(tc, want) {
		t.Errorf("prospect:\n got %+v\nwant %+v", tc, want)
	}

	mustPurchase(t, p, c, purchase(t0+2*DayMs, 25000))
	o = p.Evaluate(c, t0+40*DayMs)
	if !o.Changed {
		t.Fatal("no change")
	}
	vc := "high_yield"
	c.ValueClass = &vc
	tc = p.TierChange(c, o, schemas.CauseInactivity, t0+40*DayMs)
	want = schemas.TierChange{
		EventID: "cust-7:3", CustomerID: "cust-7", Version: 3, OccurredAt: t0 + 40*DayMs,
		Cause: schemas.CauseInactivity, PreviousTier: ptr("potential_loyalist"), Tier: "potential_loyalist",
		LifecycleStage: StageActive, ValueClass: ptr("high_yield"), RecencyDays: ptr(int32(38)),
		Frequency: 1, Monetary: 25000, Currency: "USD", RScore: 4, FScore: 1, MScore: 3,
		PolicyVersion: "default-1", Action: ptr(ActionGrow),
		Treatment: ptr(ActionGrow), Relationship: ptr(RelationshipSelfService), RelationshipCostMinor: ptr(int64(100)),
	}
	if !reflect.DeepEqual(tc, want) {
		t.Errorf("customer:\n got %+v\nwant %+v", tc, want)
	}
	// The record shares no memory with the customer.
	*tc.ValueClass = "below_zero"
	*tc.PreviousTier = "x"
	if *c.ValueClass != "high_yield" || c.Tier != "potential_loyalist" {
		t.Error("TierChange aliases the customer")
	}

	// A tier without an action has a nil Action.
	p2 := DefaultPolicy()
	p2.Tiers[1].Action = "" // potential_loyalist is index 7; clear them all
	for i := range p2.Tiers {
		p2.Tiers[i].Action = ""
	}
	if err := p2.Validate(); err != nil {
		t.Fatal(err)
	}
	if tc := p2.TierChange(c, o, schemas.CauseInactivity, 0); tc.Action != nil {
		t.Errorf("Action = %q, want nil", *tc.Action)
	}
}

func ptr[T any](v T) *T { return &v }

func TestPolicyChangeReevaluation(t *testing.T) {
	p := DefaultPolicy()
	c := &schemas.Customer{CustomerID: "c"}
	mustPurchase(t, p, c, purchase(t0, 1000))
	if c.Tier != "new_customers" {
		t.Fatalf("tier %s", c.Tier)
	}
	// A stricter policy where 1 day is already R4.
	p2 := DefaultPolicy()
	p2.Version = "strict"
	p2.Scores.RecencyDays = []int64{0, 90, 180, 365}
	if err := p2.Validate(); err != nil {
		t.Fatal(err)
	}
	// NextDeadline sees the stale state as due now.
	p.Evaluate(c, t0+DayMs)
	if d := p2.NextDeadline(c); d != c.EvaluatedAt {
		t.Errorf("stale NextDeadline = %d, want %d", d, c.EvaluatedAt)
	}
	o := p2.Evaluate(c, t0+DayMs)
	if !o.Changed || c.Tier != "promising" || c.PolicyVersion != "strict" || c.Version != 2 {
		t.Errorf("after policy change: %+v tier %s policy %s version %d", o, c.Tier, c.PolicyVersion, c.Version)
	}
}

// TestZeroAllocations checks the per-event methods allocate nothing, under
// the default policy and under one with models, the P(alive) churn rule and
// value classes.
func TestZeroAllocations(t *testing.T) {
	classes := &ValueClasses{ReviewDays: 7, HighYieldCLVMinor: 1e5, HighYieldMonetaryMinor: 1e5, HighPotentialCLVMinor: 1e4, BelowZeroCLVMinor: 100}
	for name, p := range map[string]*Policy{"default": DefaultPolicy(), "models": modelPolicy(t, 0.3, classes)} {
		t.Run(name, func(t *testing.T) { checkZeroAllocations(t, p) })
	}
}

func checkZeroAllocations(t *testing.T, p *Policy) {
	c := &schemas.Customer{CustomerID: "c"}
	mustPurchase(t, p, c, purchase(t0, 1000))
	at := t0
	e := purchase(at, 1000)
	e.Currency = "EUR"
	i := interaction(at, "complaint")
	s := int32(2)
	i.Satisfaction = &s
	// Distinct ids, made beforehand; the window fills before measuring.
	ids := make([]string, 1000)
	for k := range ids {
		ids[k] = nextEventID("z")
	}
	n := 0
	for range DefaultDedupWindow {
		at += DayMs
		e.OccurredAt, e.EventID = at, ids[n]
		n++
		mustPurchase(t, p, c, e)
	}
	for name, fn := range map[string]func(){
		"ApplyPurchase": func() {
			at += DayMs
			e.OccurredAt, e.EventID = at, ids[n%len(ids)]
			n++
			if _, err := p.ApplyPurchase(c, e); err != nil {
				t.Fatal(err)
			}
		},
		"ApplyInteraction": func() {
			at += DayMs
			i.OccurredAt, i.EventID = at, ids[n%len(ids)]
			n++
			if _, err := p.ApplyInteraction(c, i); err != nil {
				t.Fatal(err)
			}
		},
		"Evaluate": func() {
			at += DayMs
			p.Evaluate(c, at)
		},
		"NextDeadline": func() { p.NextDeadline(c) },
		"ToBase":       func() { _, _ = p.ToBase(12345, "JPY") },
	} {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s allocates %v times per call", name, n)
		}
	}
}

// randomEvent is one input of a random history.
type randomEvent struct {
	purchase    *schemas.Purchase
	interaction *schemas.Interaction
	evalAt      int64 // a timer evaluation when both are nil
}

// randomHistory makes a customer history: mostly increasing times with
// some late events, purchases, refunds, interactions (complaints, survey
// scores), a few invalid events and timer evaluations.
func randomHistory(rng *rand.Rand, n int) []randomEvent {
	currencies := []string{"USD", "USD", "EUR", "GBP", "JPY", "XYZ"}
	types := []string{"visit", "click", "complaint", "survey_response"}
	now := t0 + rng.Int64N(100*DayMs)
	var out []randomEvent
	for i := 0; i < n; i++ {
		// Gaps from minutes to a year, so every threshold is crossed.
		switch rng.IntN(4) {
		case 0:
			now += rng.Int64N(3600_000)
		case 1:
			now += rng.Int64N(10 * DayMs)
		case 2:
			now += rng.Int64N(100 * DayMs)
		default:
			now += rng.Int64N(400 * DayMs)
		}
		at := now
		if rng.IntN(8) == 0 {
			at -= rng.Int64N(200 * DayMs) // late
		}
		switch k := rng.IntN(10); {
		case k < 5:
			e := &schemas.Purchase{EventID: fmt.Sprint(i), CustomerID: "c", OccurredAt: at,
				Kind: schemas.KindPurchase, AmountMinor: 1 + rng.Int64N(60000),
				Currency: currencies[rng.IntN(len(currencies))], Channel: schemas.Channels[rng.IntN(schemas.NumChannels)], Items: 1}
			if rng.IntN(5) == 0 {
				e.Kind = schemas.KindRefund
			}
			if rng.IntN(30) == 0 {
				e.AmountMinor = 0 // a free order, or an invalid refund
			}
			out = append(out, randomEvent{purchase: e})
		case k < 9:
			e := &schemas.Interaction{EventID: fmt.Sprint(i), CustomerID: "c", OccurredAt: at,
				Channel: schemas.Channels[rng.IntN(schemas.NumChannels)], Type: types[rng.IntN(len(types))]}
			if e.Type == "survey_response" {
				s := int32(rng.IntN(12)) // 11 is invalid
				e.Satisfaction = &s
			}
			out = append(out, randomEvent{interaction: e})
		default:
			out = append(out, randomEvent{evalAt: at})
		}
	}
	return out
}

// apply applies one random event, returning whether it was applied and its
// outcome.
func (p *Policy) applyRandom(c *schemas.Customer, ev randomEvent) (Outcome, bool) {
	switch {
	case ev.purchase != nil:
		o, err := p.ApplyPurchase(c, ev.purchase)
		return o, err == nil
	case ev.interaction != nil:
		o, err := p.ApplyInteraction(c, ev.interaction)
		return o, err == nil
	}
	return p.Evaluate(c, ev.evalAt), false
}

// TestPropertyDeterministic applies random histories to two copies and
// checks they end identical, that Evaluate is a pure function of the
// customer and the time, and that Version counts exactly the applied
// events plus the changed evaluations.
func TestPropertyDeterministic(t *testing.T) {
	p := DefaultPolicy()
	for seed := uint64(0); seed < 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		hist := randomHistory(rng, 1+rng.IntN(60))
		a := &schemas.Customer{CustomerID: "c"}
		b := &schemas.Customer{CustomerID: "c"}
		var wantVersion int64
		for _, ev := range hist {
			before := clone(a)
			oa, applied := p.applyRandom(a, ev)
			ob, _ := p.applyRandom(b, ev)
			if !reflect.DeepEqual(oa, ob) {
				t.Fatalf("seed %d: outcomes differ: %+v vs %+v", seed, oa, ob)
			}
			if applied || (ev.purchase == nil && ev.interaction == nil && oa.Changed) {
				wantVersion++
			}
			if a.Version != wantVersion {
				t.Fatalf("seed %d: version %d, want %d", seed, a.Version, wantVersion)
			}
			if a.EvaluatedAt < before.EvaluatedAt || a.LastActivity < before.LastActivity ||
				a.LastPurchase < before.LastPurchase || a.RiskUntil < before.RiskUntil ||
				a.RepeatDays < before.RepeatDays || a.Purchases < before.Purchases {
				t.Fatalf("seed %d: a monotonic field went back:\n%+v\n%+v", seed, before, a)
			}
			if a.RepeatDays >= max(a.Purchases, 1) {
				t.Fatalf("seed %d: repeat days %d with %d purchases", seed, a.RepeatDays, a.Purchases)
			}
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("seed %d: copies differ:\n%+v\n%+v", seed, a, b)
		}
		// Evaluate is deterministic: same input, same result.
		at := a.EvaluatedAt + rng.Int64N(500*DayMs)
		x, y := clone(a), clone(a)
		ox, oy := p.Evaluate(x, at), p.Evaluate(y, at)
		if !reflect.DeepEqual(x, y) || !reflect.DeepEqual(ox, oy) {
			t.Fatalf("seed %d: Evaluate not deterministic", seed)
		}
		// And idempotent at a fixed time.
		if o := p.Evaluate(x, at); o.Changed || !reflect.DeepEqual(x, y) {
			t.Fatalf("seed %d: second Evaluate at the same time changed something", seed)
		}
	}
}

// TestPropertyNextDeadline drives random customers with timers only and
// checks that NextDeadline predicts every change: evaluating anywhere before
// the deadline changes nothing, evaluating at it changes something, and
// after the last deadline nothing ever changes.
func TestPropertyNextDeadline(t *testing.T) {
	p := DefaultPolicy()
	fired := 0
	for seed := uint64(0); seed < 500; seed++ {
		rng := rand.New(rand.NewPCG(seed, 11))
		c := &schemas.Customer{CustomerID: "c"}
		for _, ev := range randomHistory(rng, 1+rng.IntN(20)) {
			p.applyRandom(c, ev)
		}
		if c.EvaluatedAt == 0 {
			continue // every event was rejected
		}
		for steps := 0; ; steps++ {
			if steps > 20 {
				t.Fatalf("seed %d: more than 20 deadlines", seed)
			}
			now := c.EvaluatedAt
			d := p.NextDeadline(c)
			if d != 0 && d <= now {
				t.Fatalf("seed %d: deadline %d not after %d", seed, d, now)
			}
			end := d
			if d == 0 {
				end = now + 1000*DayMs // far beyond every window
			}
			// Nothing changes strictly before the deadline.
			probes := []int64{now + 1, end - 1}
			for i := 0; i < 20; i++ {
				probes = append(probes, now+1+rng.Int64N(end-now-1))
			}
			for _, at := range probes {
				x := clone(c)
				if o := p.Evaluate(x, at); o.Changed {
					t.Fatalf("seed %d: change at %d before deadline %d (evaluated %d): %+v -> %s/%s",
						seed, at, d, now, o.Previous, x.Tier, x.LifecycleStage)
				}
			}
			if d == 0 {
				break
			}
			// Something changes at it.
			if o := p.Evaluate(c, d); !o.Changed {
				t.Fatalf("seed %d: nothing changed at deadline %d", seed, d)
			}
			fired++
		}
	}
	if fired < 500 {
		t.Errorf("only %d deadlines fired: the histories are too tame", fired)
	}
}
