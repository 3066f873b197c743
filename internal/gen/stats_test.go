package gen

import (
	"math"
	"testing"
	"time"

	"valora/schemas"
)

// hyp2f1 is the Gauss hypergeometric function 2F1(a, b; c; z) for
// 0 <= z < 1, summed from its series.
func hyp2f1(a, b, c, z float64) float64 {
	sum, term := 1.0, 1.0
	for n := 0.0; n < 1e6; n++ {
		term *= (a + n) * (b + n) / ((c + n) * (n + 1)) * z
		sum += term
		if math.Abs(term) < 1e-15*math.Abs(sum) {
			break
		}
	}
	return sum
}

// expectedRepeats is BG/NBD's E[X(t)], the expected number of repeat
// purchases in (0, t] of a customer whose first purchase is at 0.
func expectedRepeats(r, alpha, a, b, t float64) float64 {
	return (a + b - 1) / (a - 1) *
		(1 - math.Pow(alpha/(alpha+t), r)*hyp2f1(r, b, a+b-1, t/(alpha+t)))
}

func TestExpectedRepeatsTimeUnit(t *testing.T) {
	// The same fit in weeks and in days predicts the same counts.
	weeks := expectedRepeats(0.243, 4.414, 0.793, 2.426, 39)
	days := expectedRepeats(0.243, 4.414*7, 0.793, 2.426, 39*7)
	if math.Abs(weeks-days) > 1e-9 {
		t.Fatalf("E[X(39 weeks)] = %v in weeks, %v in days", weeks, days)
	}
	// Without dropout (b -> infinity with a/b fixed small) BG/NBD tends
	// to NBD, whose mean is r*t/alpha.
	if got, want := expectedRepeats(0.5, 10, 1e-3*1e6, 1e6, 20), 0.5*20/10; math.Abs(got-want) > 0.01 {
		t.Fatalf("E[X] with negligible dropout = %v, want about %v", got, want)
	}
}

// meanSE accumulates a sample mean and its standard error.
type meanSE struct{ n, sum, sumSq float64 }

func (m *meanSE) add(x float64) { m.n++; m.sum += x; m.sumSq += x * x }
func (m *meanSE) mean() float64 { return m.sum / m.n }
func (m *meanSE) se() float64 {
	mu := m.mean()
	return math.Sqrt((m.sumSq/m.n - mu*mu) / m.n)
}

// near fails t unless the sample mean of m is within 5 standard errors of
// want: with fixed seeds the test cannot flake, and a 5-SE band is narrow
// enough to catch a model error (a missing dropout changes E[X] by 30+ SE).
func near(t *testing.T, what string, m *meanSE, want float64) {
	t.Helper()
	z := (m.mean() - want) / m.se()
	if math.Abs(z) > 5 {
		t.Errorf("%s: mean %.5g, model %.5g (%.1f standard errors off, n=%.0f)", what, m.mean(), want, z, m.n)
	} else {
		t.Logf("%s: mean %.5g, model %.5g (%+.1f SE, n=%.0f)", what, m.mean(), want, z, m.n)
	}
}

// buyer is what the statistical tests observe of one customer.
type buyer struct {
	first   int64 // first purchase, Unix ms; 0 if none
	repeats int
	z1      float64 // first purchase's value, base major units
}

// observe runs p to the end and returns each customer's observations.
func observe(t *testing.T, p Params) (*Generator, []buyer) {
	t.Helper()
	g, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	buyers := make([]buyer, p.Customers)
	var ev Event
	for g.Next(&ev) {
		if ev.Kind != KindPurchase || ev.Purchase.Kind != schemas.KindPurchase {
			continue
		}
		i := customerIndex(ev.Purchase.CustomerID)
		b := &buyers[i]
		if b.first == 0 {
			b.first = ev.Purchase.OccurredAt
			b.z1 = float64(ev.Purchase.AmountMinor) / 100 // USD cents
		} else {
			b.repeats++
		}
	}
	return g, buyers
}

func customerIndex(id string) int {
	n := 0
	for _, c := range id[1:] {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestBGNBD checks the purchase process against the model over a cohort
// whose first purchases all happen at Start, observed for a year.
func TestBGNBD(t *testing.T) {
	p := DefaultParams()
	p.Customers = 60_000
	p.ArrivalDays = 0
	p.InteractionRate = 0 // the first touch is the first purchase
	p.RefundShare = 0
	p.Horizon = 364 * 24 * time.Hour
	days := p.Horizon.Hours() / 24

	var repeats, repeatsGivenTruth, alive, spend, spendGivenTruth meanSE
	var lambda, dropout, prospects meanSE
	for _, seed := range []uint64{101, 202, 303} {
		p.Seed = seed
		g, buyers := observe(t, p)
		for i, b := range buyers {
			tr := g.Truth(i)
			lambda.add(tr.Lambda)
			dropout.add(tr.P)
			if tr.Prospect {
				prospects.add(1)
				continue
			}
			prospects.add(0)
			if b.first != p.Start.UnixMilli() {
				t.Fatalf("customer %d: first purchase at %d, want Start", i, b.first)
			}
			x := float64(b.repeats)
			repeats.add(x)
			// Given lambda and p: E[X(t)] = (1 - exp(-lambda p t)) / p
			// and P(alive at t) = exp(-lambda p t).
			lpt := tr.Lambda * tr.P * days
			repeatsGivenTruth.add(x - -math.Expm1(-lpt)/tr.P)
			a := 0.0
			if tr.Alive {
				a = 1
			}
			alive.add(a - math.Exp(-lpt))
			spend.add(b.z1)
			spendGivenTruth.add(b.z1 - p.P/tr.Nu)
		}
	}

	near(t, "lambda", &lambda, p.R/p.Alpha)
	near(t, "dropout probability", &dropout, p.A/(p.A+p.B))
	near(t, "prospect share", &prospects, p.ProspectShare)
	near(t, "repeat purchases in a year, given lambda and p (residual)", &repeatsGivenTruth, 0)
	near(t, "alive after a year, given lambda and p (residual)", &alive, 0)
	want := expectedRepeats(p.R, p.Alpha, p.A, p.B, days)
	near(t, "repeat purchases in a year, BG/NBD E[X(t)]", &repeats, want)
	if noDropout := p.R / p.Alpha * days; math.Abs(noDropout-want) < 20*repeats.se() {
		t.Errorf("the test cannot tell BG/NBD (%.3f) from no dropout (%.3f)", want, noDropout)
	}
	near(t, "purchase value, given nu (residual)", &spendGivenTruth, 0)
	near(t, "purchase value, Gamma-Gamma P*Gamma/(Q-1)", &spend, p.P*p.Gamma/(p.Q-1))
}

// TestBGNBDStaggered checks the purchase process given each customer's
// latent parameters when arrivals, lead times and interactions vary the
// observation window per customer.
func TestBGNBDStaggered(t *testing.T) {
	p := DefaultParams()
	p.Customers = 40_000
	p.InteractionRate = 0.05
	p.Horizon = 300 * 24 * time.Hour
	end := p.Start.Add(p.Horizon).UnixMilli()

	var repeats, alive meanSE
	for _, seed := range []uint64{7, 8} {
		p.Seed = seed
		g, buyers := observe(t, p)
		for i, b := range buyers {
			tr := g.Truth(i)
			if tr.Prospect || b.first == 0 {
				continue
			}
			days := float64(end-b.first) / msPerDay
			lpt := tr.Lambda * tr.P * days
			repeats.add(float64(b.repeats) - -math.Expm1(-lpt)/tr.P)
			a := 0.0
			if tr.Alive {
				a = 1
			}
			alive.add(a - math.Exp(-lpt))
		}
	}
	near(t, "repeat purchases to the horizon, given lambda and p (residual)", &repeats, 0)
	near(t, "alive at the horizon, given lambda and p (residual)", &alive, 0)
}
