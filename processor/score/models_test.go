package score

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"valora/processor/clv"
	"valora/schemas"
)

// testModels is a model in days: the published CDNOW BG/NBD estimates
// (weeks: r 0.243, alpha 4.414, a 0.793, b 2.426) with alpha converted to
// days, and the published Gamma-Gamma estimates (p 6.25, q 3.74, gamma
// 15.44), over one year at 10% a year.
func testModels() *clv.Model {
	return &clv.Model{
		Unit:         clv.Day,
		BGNBD:        clv.BGNBD{R: 0.243, Alpha: 4.414 * 7, A: 0.793, B: 2.426},
		GammaGamma:   clv.GammaGamma{P: 6.25, Q: 3.74, Gamma: 15.44},
		Horizon:      365,
		DiscountRate: 0.1,
	}
}

// modelPolicy is the default policy with testModels, the P(alive) churn
// rule at pAlive (0: off) and, when classes is set, value classes.
func modelPolicy(t testing.TB, pAlive float64, classes *ValueClasses) *Policy {
	t.Helper()
	p := DefaultPolicy()
	p.Version = "models-1"
	p.Models = testModels()
	p.Churn.PAliveBelow = pAlive
	p.ValueClasses = classes
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTierChangeModelFields checks that a TierChange carries the models'
// evaluation on the customer's summary at the evaluation time, computed
// here from the purchase times by hand, with CLV in minor units; and that
// without models, or for a prospect, the fields are nil.
func TestTierChangeModelFields(t *testing.T) {
	p := modelPolicy(t, 0, nil)
	c := &schemas.Customer{CustomerID: "c"}
	// Two purchases on the first day (merged), one 10 days later, one 30
	// days later: x = 2, t_x = 30 days; the total is 100.00 USD over 4.
	mustPurchase(t, p, c, purchase(t0, 2000))
	mustPurchase(t, p, c, purchase(t0+3600_000, 3000))
	mustPurchase(t, p, c, purchase(t0+10*DayMs, 1000))
	mustPurchase(t, p, c, purchase(t0+30*DayMs, 4000))
	at := t0 + 45*DayMs
	o := p.Evaluate(c, at)
	m := testModels()
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	want := m.Evaluate(clv.Summary{X: 2, Tx: 30, T: 45}, 25.00)
	if o.Valued && o.Value != want {
		t.Fatalf("value %+v, want %+v", o.Value, want)
	}
	// A change always carries the evaluation.
	if o := p.Evaluate(clone(c), at+200*DayMs); !o.Changed || !o.Valued {
		t.Errorf("changed outcome %+v is not valued", o)
	}
	tc := p.TierChange(c, o, schemas.CauseInactivity, at)
	if tc.PAlive == nil || tc.ExpectedPurchases == nil || tc.CLV == nil {
		t.Fatalf("model fields missing: %+v", tc)
	}
	if *tc.PAlive != want.PAlive || *tc.ExpectedPurchases != want.ExpectedPurchases || *tc.CLV != want.CLV*100 {
		t.Errorf("p_alive %v expected_purchases %v clv %v, want %v %v %v (minor units)",
			*tc.PAlive, *tc.ExpectedPurchases, *tc.CLV, want.PAlive, want.ExpectedPurchases, want.CLV*100)
	}
	if !(want.PAlive > 0 && want.PAlive < 1 && want.ExpectedPurchases > 0 && want.CLV > 0) {
		t.Errorf("implausible evaluation %+v", want)
	}

	// A prospect has no model values.
	pr := &schemas.Customer{CustomerID: "p"}
	o, err := p.ApplyInteraction(pr, interaction(t0, "visit"))
	if err != nil {
		t.Fatal(err)
	}
	if tc := p.TierChange(pr, o, schemas.CauseInteraction, t0); o.Valued || tc.PAlive != nil || tc.CLV != nil || tc.ExpectedPurchases != nil {
		t.Errorf("prospect valued: %+v", tc)
	}
	// Without models, nothing.
	d := DefaultPolicy()
	o = d.Evaluate(c, at+DayMs)
	if tc := d.TierChange(c, o, schemas.CauseInactivity, at); o.Valued || tc.PAlive != nil || tc.CLV != nil {
		t.Errorf("valued without models: %+v", tc)
	}
}

// TestPAliveChurn checks the P(alive) rule: a frequent buyer who stops is
// churned when P(alive) falls below the threshold, long before the
// inactivity window, at exactly the time NextDeadline predicts, and a new
// purchase brings it back.
func TestPAliveChurn(t *testing.T) {
	const threshold = 0.3
	p := modelPolicy(t, threshold, nil)
	c := &schemas.Customer{CustomerID: "c"}
	// A purchase every 5 days for 50 days: x = 10, t_x = 50 days.
	for d := int64(0); d <= 50; d += 5 {
		mustPurchase(t, p, c, purchase(t0+d*DayMs, 3000))
	}
	if c.ChurnRisk {
		t.Fatal("churned right after buying")
	}
	// Walk the deadlines until churned; none may be missed.
	var churnAt int64
	for range 10 {
		d := p.NextDeadline(c)
		if d == 0 {
			t.Fatal("no deadline before churn")
		}
		if before := clone(c); p.Evaluate(before, d-1).Changed {
			t.Fatalf("change at %d, before the deadline %d", d-1, d)
		}
		if o := p.Evaluate(c, d); !o.Changed {
			t.Fatalf("nothing changed at deadline %d", d)
		}
		if c.ChurnRisk {
			churnAt = d
			break
		}
	}
	if churnAt == 0 {
		t.Fatal("never churned")
	}
	if c.LifecycleStage != StageChurned {
		t.Errorf("stage %s, want churned", c.LifecycleStage)
	}
	idle := churnAt - c.LastActivity
	if idle >= p.Churn.InactivityDays*DayMs {
		t.Errorf("churned after %d days idle: the inactivity rule, not P(alive)", idle/DayMs)
	}
	// Independently: P(alive) just before is at or above the threshold,
	// at churnAt below it.
	m := testModels()
	pa := func(at int64) float64 {
		return m.BGNBD.PAlive(clv.SummaryAt(c.RepeatDays, c.FirstPurchase, c.LastPurchase, at, clv.Day))
	}
	if pa(churnAt) >= threshold || pa(churnAt-2) < threshold {
		t.Errorf("P(alive) %v at churn, %v 2 ms before; threshold %v", pa(churnAt), pa(churnAt-2), threshold)
	}
	// Without the rule the same customer is not churned then.
	q := modelPolicy(t, 0, nil)
	x := clone(c)
	x.EvaluatedAt = 0
	q.Evaluate(x, churnAt)
	if x.ChurnRisk {
		t.Error("churned without the P(alive) rule")
	}
	// A purchase revives it.
	mustPurchase(t, p, c, purchase(churnAt+DayMs, 3000))
	if c.ChurnRisk || c.LifecycleStage == StageChurned {
		t.Errorf("still churned after a purchase: stage %s", c.LifecycleStage)
	}
}

// TestValueClasses checks each rule of ValueClasses against the CLV
// computed by the model.
func TestValueClasses(t *testing.T) {
	m := testModels()
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	at := t0 + 100*DayMs
	// Three customers: a big frequent spender, a small frequent buyer, a
	// one-time small buyer, and one whose refunds exceed its purchases.
	type cust struct {
		name   string
		buys   []int64 // day offsets
		amount int64
		refund int64
	}
	custs := []cust{
		{"big", []int64{0, 10, 20, 30, 40, 50, 60, 70, 80, 90}, 50000, 0},
		{"frequent_small", []int64{0, 10, 20, 30, 40, 50, 60, 70, 80, 90}, 500, 0},
		{"once", []int64{95}, 500, 0},
		{"refunded", []int64{0, 10}, 1000, 5000},
	}
	clvOf := func(k cust) float64 {
		n := int64(len(k.buys))
		x := n - 1
		tx := float64(k.buys[n-1] - k.buys[0])
		v := m.Evaluate(clv.Summary{X: x, Tx: tx, T: float64(100 - k.buys[0])}, float64(n*k.amount-k.refund)/float64(n)/100)
		return v.CLV * 100
	}
	big, small, once := clvOf(custs[0]), clvOf(custs[1]), clvOf(custs[2])
	if !(big > small && small > once) {
		t.Fatalf("CLV big %v small %v once %v: want decreasing", big, small, once)
	}
	vc := &ValueClasses{
		ReviewDays:             7,
		HighYieldMonetaryMinor: 100000,     // only "big" has this much
		HighYieldCLVMinor:      big * 0.99, // and this CLV
		HighPotentialCLVMinor:  small * 0.99,
		BelowZeroCLVMinor:      once * 1.01, // "once" is below
	}
	p := modelPolicy(t, 0, vc)
	want := map[string]*string{"big": ptr(ClassHighYield), "frequent_small": ptr(ClassHighPotential), "once": ptr(ClassBelowZero), "refunded": ptr(ClassBelowZero)}
	for _, k := range custs {
		c := &schemas.Customer{CustomerID: k.name}
		for _, d := range k.buys {
			mustPurchase(t, p, c, purchase(t0+d*DayMs, k.amount))
		}
		if k.refund > 0 {
			mustPurchase(t, p, c, refund(t0+k.buys[len(k.buys)-1]*DayMs, k.refund))
		}
		o := p.Evaluate(c, at)
		tc := p.TierChange(c, o, schemas.CauseInactivity, at)
		if !reflect.DeepEqual(c.ValueClass, want[k.name]) || !reflect.DeepEqual(tc.ValueClass, want[k.name]) {
			t.Errorf("%s (clv %v, monetary %d): class %v / %v, want %s", k.name, *tc.CLV, c.MonetaryMinor, deref(c.ValueClass), deref(tc.ValueClass), *want[k.name])
		}
	}
	// A middling customer is in no class: raise the high_potential bar
	// above "frequent_small".
	vc2 := *vc
	vc2.HighPotentialCLVMinor = small * 1.5
	p2 := modelPolicy(t, 0, &vc2)
	c := &schemas.Customer{CustomerID: "mid"}
	for _, d := range custs[1].buys {
		mustPurchase(t, p2, c, purchase(t0+d*DayMs, custs[1].amount))
	}
	if p2.Evaluate(c, at); c.ValueClass != nil {
		t.Errorf("middling customer in class %s", *c.ValueClass)
	}
	// Dropping value_classes from the policy (in a new version) clears a
	// stored class, as a stale state NextDeadline reports due at once.
	q := modelPolicy(t, 0, vc)
	c = &schemas.Customer{CustomerID: "big"}
	for _, d := range custs[0].buys {
		mustPurchase(t, q, c, purchase(t0+d*DayMs, custs[0].amount))
	}
	if c.ValueClass == nil {
		t.Fatal("no class")
	}
	r := modelPolicy(t, 0, nil)
	r.Version = "models-2"
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if d := r.NextDeadline(c); d != c.EvaluatedAt {
		t.Errorf("NextDeadline %d, want %d (stale class)", d, c.EvaluatedAt)
	}
	if o := r.Evaluate(c, c.EvaluatedAt); !o.Changed || c.ValueClass != nil {
		t.Errorf("class %v after the classes were removed (changed %t)", deref(c.ValueClass), o.Changed)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// TestPropertyNextDeadlineModels is TestPropertyNextDeadline under a policy
// with models and the P(alive) churn rule (no value classes, whose
// time-driven moves are not scheduled; see the package documentation).
func TestPropertyNextDeadlineModels(t *testing.T) {
	for _, th := range []float64{0.2, 0.5, 0.8} {
		p := modelPolicy(t, th, nil)
		fired, churned := 0, 0
		for seed := uint64(0); seed < 300; seed++ {
			rng := rand.New(rand.NewPCG(seed, 13))
			c := &schemas.Customer{CustomerID: "c"}
			for _, ev := range randomHistory(rng, 1+rng.IntN(20)) {
				p.applyRandom(c, ev)
			}
			if c.EvaluatedAt == 0 {
				continue
			}
			for steps := 0; ; steps++ {
				if steps > 20 {
					t.Fatalf("threshold %v seed %d: more than 20 deadlines", th, seed)
				}
				now := c.EvaluatedAt
				d := p.NextDeadline(c)
				if d != 0 && d <= now {
					t.Fatalf("threshold %v seed %d: deadline %d not after %d", th, seed, d, now)
				}
				end := d
				if d == 0 {
					end = now + 1000*DayMs
				}
				probes := []int64{now + 1, end - 1}
				for range 20 {
					probes = append(probes, now+1+rng.Int64N(end-now-1))
				}
				for _, at := range probes {
					x := clone(c)
					if o := p.Evaluate(x, at); o.Changed {
						t.Fatalf("threshold %v seed %d: change at %d before deadline %d: %+v -> %s/%s churn %t",
							th, seed, at, d, o.Previous, x.Tier, x.LifecycleStage, x.ChurnRisk)
					}
				}
				if d == 0 {
					break
				}
				wasChurned := c.ChurnRisk
				if o := p.Evaluate(c, d); !o.Changed {
					t.Fatalf("threshold %v seed %d: nothing changed at deadline %d", th, seed, d)
				}
				if c.ChurnRisk && !wasChurned && d-c.LastActivity < p.Churn.InactivityDays*DayMs {
					churned++ // by P(alive)
				}
				fired++
			}
		}
		if fired < 300 || churned < 5 {
			t.Errorf("threshold %v: %d deadlines fired, %d P(alive) churns: the histories are too tame", th, fired, churned)
		}
	}
}

// TestParsePolicyModels reads a policy with models, the P(alive) rule and
// value classes from YAML, and checks each validation error names its field.
func TestParsePolicyModels(t *testing.T) {
	base := string(DefaultPolicyYAML())
	good := base + `
models:
  time_unit: week
  bgnbd: {r: 0.243, alpha: 4.414, a: 0.793, b: 2.426}
  gamma_gamma: {p: 6.25, q: 3.74, gamma: 15.44}
  horizon: 52
  discount_rate: 0.1
value_classes:
  high_yield_clv_minor: 20000
  high_yield_monetary_minor: 40000
  high_potential_clv_minor: 15000
  below_zero_clv_minor: 500
`
	good = strings.Replace(good, "inactivity_days: 180", "inactivity_days: 180\n  p_alive_below: 0.25", 1)
	p, err := ParsePolicy([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if p.Models == nil || p.Models.BGNBD.Alpha != 4.414 || p.Models.GammaGamma.Gamma != 15.44 || p.Models.Unit != clv.Week ||
		p.Churn.PAliveBelow != 0.25 || p.ValueClasses == nil || p.ValueClasses.BelowZeroCLVMinor != 500 {
		t.Fatalf("parsed %+v %+v %+v", p.Models, p.Churn, p.ValueClasses)
	}
	// The digest covers the models: a different model, another digest.
	q, _ := ParsePolicy([]byte(strings.Replace(good, "r: 0.243", "r: 0.25", 1)))
	if q == nil || reflect.DeepEqual(p.Digest(), q.Digest()) {
		t.Error("digest ignores the models")
	}
	// A policy without the new sections keeps the digest it had.
	if d := DefaultPolicy(); !reflect.DeepEqual(d.Digest(), mustParse(t, base).Digest()) {
		t.Error("default digest differs")
	}

	for _, c := range []struct {
		name, yaml, path string
	}{
		{"p_alive without models", strings.Replace(base, "inactivity_days: 180", "inactivity_days: 180\n  p_alive_below: 0.5", 1), "churn.p_alive_below"},
		{"p_alive out of range", strings.Replace(good, "p_alive_below: 0.25", "p_alive_below: 1.5", 1), "churn.p_alive_below"},
		{"classes without models", base + "value_classes: {high_yield_clv_minor: 1, high_yield_monetary_minor: 1, high_potential_clv_minor: 1, below_zero_clv_minor: 0}\n", "value_classes"},
		{"negative threshold", strings.Replace(good, "below_zero_clv_minor: 500", "below_zero_clv_minor: -1", 1), "value_classes.below_zero_clv_minor"},
		{"below_zero above high", strings.Replace(good, "below_zero_clv_minor: 500", "below_zero_clv_minor: 30000", 1), "value_classes.below_zero_clv_minor"},
		{"bad bgnbd", strings.Replace(good, "r: 0.243", "r: -1", 1), "models"},
		{"q not above 1", strings.Replace(good, "q: 3.74", "q: 0.9", 1), "models"},
		{"bad unit", strings.Replace(good, "time_unit: week", "time_unit: month", 1), "models"},
	} {
		_, err := ParsePolicy([]byte(c.yaml))
		found := false
		for _, pe := range policyErrors(err) {
			if pe.Path == c.path {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: error %v, want one at %s", c.name, err, c.path)
		}
	}
	if _, err := ParsePolicy([]byte(good + "  extra_field: 1\n")); err == nil {
		t.Error("unknown field in value_classes accepted")
	}
}

func mustParse(t *testing.T, s string) *Policy {
	t.Helper()
	p, err := ParsePolicy([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestValueClassReview checks that the class of a silent customer follows
// its decaying CLV through review timers: the move to below_zero comes
// within review_days of the day the CLV (computed here with the model)
// falls below the threshold, never before, and reviews stop after it.
func TestValueClassReview(t *testing.T) {
	m := testModels()
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	c := &schemas.Customer{CustomerID: "c"}
	var buys []int64
	for d := int64(0); d <= 90; d += 10 {
		buys = append(buys, t0+d*DayMs)
	}
	last := buys[len(buys)-1]
	clvAt := func(at int64) float64 {
		s := clv.SummaryAt(int64(len(buys)-1), buys[0], last, at, clv.Day)
		return m.Evaluate(s, 5.00).CLV * 100
	}
	// The threshold: the CLV 120 days after the last purchase.
	threshold := clvAt(last + 120*DayMs)
	p := modelPolicy(t, 0, &ValueClasses{ReviewDays: 7, HighYieldMonetaryMinor: 1e9, HighYieldCLVMinor: 1e9,
		HighPotentialCLVMinor: threshold, BelowZeroCLVMinor: threshold})
	for _, b := range buys {
		mustPurchase(t, p, c, purchase(b, 500))
	}
	if c.ValueClass == nil || *c.ValueClass != ClassHighPotential {
		t.Fatalf("class %v after buying, want high_potential", deref(c.ValueClass))
	}
	// The first millisecond-exact day the CLV is below the threshold.
	var crossing int64
	for d := int64(0); d < 400 && crossing == 0; d++ {
		if at := last + d*DayMs; clvAt(at) < threshold {
			crossing = at
		}
	}
	var movedAt int64
	for steps := 0; steps < 200; steps++ {
		now := c.EvaluatedAt
		d := p.NextDeadline(c)
		if d == 0 {
			break
		}
		if movedAt == 0 && d > now+7*DayMs {
			t.Fatalf("deadline %d days after an evaluation while high_potential: no review", (d-now)/DayMs)
		}
		p.Evaluate(c, d)
		if movedAt == 0 && c.ValueClass != nil && *c.ValueClass == ClassBelowZero {
			movedAt = d
		}
		if movedAt != 0 && d > movedAt && d-now == 7*DayMs {
			t.Fatalf("review %d days after the move to below_zero", (d-movedAt)/DayMs)
		}
	}
	if movedAt == 0 {
		t.Fatal("never moved to below_zero")
	}
	if movedAt < crossing-DayMs || movedAt > crossing+7*DayMs {
		t.Errorf("moved to below_zero %.1f days after the last purchase; the CLV crossed at %.1f days",
			float64(movedAt-last)/float64(DayMs), float64(crossing-last)/float64(DayMs))
	}
}

// TestTierChangeTo checks that TierChangeTo, with one buffer reused across
// customers and outcomes, builds what it builds in a fresh buffer
// (TierChange): nothing of an earlier record is left in a later one, each
// optional field set or nil alike. And that it allocates only the event id.
// (The fields' values are TestTierChange's and TestScenarios' concern.)
func TestTierChangeTo(t *testing.T) {
	policies := []*Policy{DefaultPolicy(), modelPolicy(t, 0.3, nil), modelPolicy(t, 0, &ValueClasses{ReviewDays: 7,
		HighYieldMonetaryMinor: 50_00, HighYieldCLVMinor: 20_00, HighPotentialCLVMinor: 10_00, BelowZeroCLVMinor: 1_00})}
	var b TierChangeBuf
	// Each optional field is set in some of the records compared.
	set := map[string]int{}
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 11))
		p := policies[rng.IntN(len(policies))]
		c := &schemas.Customer{CustomerID: fmt.Sprintf("c%d", seed)}
		at := t0
		for step := range 30 {
			at += rng.Int64N(40 * DayMs)
			var o Outcome
			var err error
			switch rng.IntN(3) {
			case 0:
				o, err = p.ApplyPurchase(c, purchase(at, 100+rng.Int64N(10_000)))
			case 1:
				o, err = p.ApplyInteraction(c, interaction(at, "visit"))
			default:
				o = p.Evaluate(c, at)
			}
			if err != nil {
				t.Fatal(err)
			}
			want := p.TierChange(c, o, schemas.CauseInactivity, at)
			got := p.TierChangeTo(&b, c, o, schemas.CauseInactivity, at)
			if !reflect.DeepEqual(*got, want) {
				t.Fatalf("seed %d step %d: TierChangeTo\n%+v\nTierChange\n%+v", seed, step, *got, want)
			}
			for name, p := range map[string]bool{"previous_tier": want.PreviousTier != nil, "value_class": want.ValueClass != nil,
				"recency_days": want.RecencyDays != nil, "action": want.Action != nil, "p_alive": want.PAlive != nil} {
				if p {
					set[name]++
				}
			}
		}
		if n := testing.AllocsPerRun(100, func() {
			p.TierChangeTo(&b, c, Outcome{HadPrevious: true, Previous: derivedOf(c)}, schemas.CauseInactivity, at)
		}); n > 1 {
			t.Errorf("seed %d: TierChangeTo allocates %v times, want at most 1 (the event id)", seed, n)
		}
	}
	for _, name := range []string{"previous_tier", "value_class", "recency_days", "action", "p_alive"} {
		if set[name] == 0 {
			t.Errorf("no record compared had %s set", name)
		}
	}
}

// testMBGModels is testModels with the count model MBG/NBD: the estimates
// for the CDNOW sample (weeks: r 0.525, alpha 6.183, a 0.891, b 1.614),
// alpha converted to days.
func testMBGModels() *clv.Model {
	m := testModels()
	m.Count = clv.CountMBGNBD
	m.MBGNBD = &clv.MBGNBD{R: 0.525, Alpha: 6.183 * 7, A: 0.891, B: 1.614}
	m.BGNBD = clv.BGNBD{}
	return m
}

// TestPAliveChurnOneTimeBuyer checks the P(alive) rule for a customer who
// bought once: never churned by it under BG/NBD (P(alive) stays 1), churned
// under MBG/NBD when P(alive) = 1/(1 + a/b ((α+T)/α)^r) falls below the
// threshold, and under Pareto/NBD when its P(alive) does (no closed form:
// the crossing is found by bisection), at the deadline NextDeadline gave,
// before the inactivity window.
func TestPAliveChurnOneTimeBuyer(t *testing.T) {
	const threshold = 0.5
	bg := modelPolicy(t, threshold, nil)
	inactivity := bg.Churn.InactivityDays * DayMs

	// BG/NBD: the deadlines walk to the inactivity churn.
	c := &schemas.Customer{CustomerID: "once"}
	mustPurchase(t, bg, c, purchase(t0, 3000))
	for range 10 {
		d := bg.NextDeadline(c)
		if d == 0 {
			t.Fatal("no deadline before churn")
		}
		bg.Evaluate(c, d)
		if c.ChurnRisk {
			if d-c.LastActivity < inactivity {
				t.Errorf("BG/NBD churned a one-time buyer after %d days idle", (d-c.LastActivity)/DayMs)
			}
			break
		}
	}

	// MBG/NBD and Pareto/NBD: P(alive) crosses the threshold first.
	m := testMBGModels().MBGNBD
	pn := clv.ParetoNBD{R: 0.553, Alpha: 10.578 * 7, S: 0.606, Beta: 11.669 * 7}
	for _, tc := range []struct {
		models *clv.Model
		pa     func(at int64) float64
	}{
		{testMBGModels(), func(at int64) float64 {
			T := float64(at-t0) / float64(DayMs)
			return 1 / (1 + m.A/m.B*math.Pow((m.Alpha+T)/m.Alpha, m.R))
		}},
		{func() *clv.Model {
			ms := testModels()
			ms.Count, ms.ParetoNBD, ms.BGNBD = clv.CountParetoNBD, &pn, clv.BGNBD{}
			return ms
		}(), func(at int64) float64 {
			return pn.PAlive(clv.Summary{T: float64(at-t0) / float64(DayMs)})
		}},
	} {
		pol := DefaultPolicy()
		pol.Version = "models-" + string(tc.models.Count)
		pol.Models = tc.models
		pol.Churn.PAliveBelow = threshold
		if err := pol.Validate(); err != nil {
			t.Fatal(err)
		}
		pa := tc.pa
		c := &schemas.Customer{CustomerID: "once"}
		mustPurchase(t, pol, c, purchase(t0, 3000))
		if c.ChurnRisk {
			t.Fatalf("%s: churned at the first purchase (P(alive) %v)", tc.models.Count, pa(t0))
		}
		var churnAt int64
		for range 10 {
			d := pol.NextDeadline(c)
			if d == 0 {
				t.Fatalf("%s: no deadline before churn", tc.models.Count)
			}
			if before := clone(c); pol.Evaluate(before, d-1).Changed {
				t.Fatalf("%s: change at %d, before the deadline %d", tc.models.Count, d-1, d)
			}
			if o := pol.Evaluate(c, d); !o.Changed {
				t.Fatalf("%s: nothing changed at deadline %d", tc.models.Count, d)
			}
			if c.ChurnRisk {
				churnAt = d
				break
			}
		}
		if churnAt == 0 || churnAt-c.LastActivity >= inactivity {
			t.Fatalf("%s churned at %d (%d days idle), want before the %d-day inactivity window",
				tc.models.Count, churnAt, (churnAt-c.LastActivity)/DayMs, inactivity/DayMs)
		}
		if pa(churnAt) >= threshold || pa(churnAt-2) < threshold {
			t.Errorf("%s: P(alive) %v at churn, %v 2 ms before; threshold %v", tc.models.Count, pa(churnAt), pa(churnAt-2), threshold)
		}
		t.Logf("one-time buyer churned by %s P(alive) < %v after %.1f days", tc.models.Count, threshold, float64(churnAt-t0)/float64(DayMs))
		// The TierChange carries the model's P(alive).
		o := pol.Evaluate(c, churnAt+DayMs)
		if tc := pol.TierChange(c, o, schemas.CauseInactivity, churnAt+DayMs); o.Valued && (tc.PAlive == nil || math.Abs(*tc.PAlive-pa(churnAt+DayMs)) > 1e-12) {
			t.Errorf("tier change p_alive %v, want %v", tc.PAlive, pa(churnAt+DayMs))
		}
	}
}

// TestParsePolicyMBGNBD reads a models section with model: mbgnbd.
func TestParsePolicyMBGNBD(t *testing.T) {
	base := string(DefaultPolicyYAML())
	good := base + `
models:
  model: mbgnbd
  time_unit: week
  mbgnbd: {r: 0.525, alpha: 6.183, a: 0.891, b: 1.614}
  gamma_gamma: {p: 6.25, q: 3.74, gamma: 15.44}
  horizon: 52
  discount_rate: 0.1
`
	p, err := ParsePolicy([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if p.Models == nil || p.Models.Count != clv.CountMBGNBD || p.Models.MBGNBD == nil || p.Models.MBGNBD.Alpha != 6.183 {
		t.Fatalf("parsed %+v", p.Models)
	}
	for _, c := range []struct{ name, yaml string }{
		{"unknown model", strings.Replace(good, "model: mbgnbd", "model: pareto", 1)},
		{"paretonbd without its parameters", strings.Replace(good, "model: mbgnbd", "model: paretonbd", 1)},
		{"missing parameters", strings.Replace(good, "  mbgnbd: {r: 0.525, alpha: 6.183, a: 0.891, b: 1.614}\n", "", 1)},
		{"bad parameter", strings.Replace(good, "a: 0.891", "a: -1", 1)},
	} {
		if _, err := ParsePolicy([]byte(c.yaml)); err == nil || !strings.Contains(err.Error(), "models") {
			t.Errorf("%s: error %v, want one naming models", c.name, err)
		}
	}
}
