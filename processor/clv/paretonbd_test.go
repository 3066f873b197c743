package clv

import (
	"math"
	"math/rand"
	"testing"
)

// pnbdGrid holds Pareto/NBD parameters with alpha above, below and equal
// to beta, the first the estimates for the CDNOW sample.
var pnbdGrid = []ParetoNBD{
	{R: 0.553, Alpha: 10.578, S: 0.606, Beta: 11.669},
	{R: 2, Alpha: 20, S: 1.5, Beta: 8},
	{R: 0.5, Alpha: 10, S: 0.3, Beta: 50},
	{R: 1, Alpha: 5, S: 1, Beta: 5},
	{R: 5, Alpha: 0.5, S: 3, Beta: 40},
}

// TestFitParetoNBDCDNOW fits Pareto/NBD to the CDNOW sample (weeks,
// calibration period ending 1997-09-30) and compares with the published
// estimates (Fader, Hardie and Lee, "RFM and CLV: Using Iso-Value Curves
// for Customer Base Analysis", JMR 2005): r = 0.553, alpha = 10.578, s =
// 0.606, beta = 11.669, LL = -9595.0.
func TestFitParetoNBDCDNOW(t *testing.T) {
	cs := cdnowSummaries(readCDNOW(t))
	fit, err := FitParetoNBD(cs)
	if err != nil {
		t.Fatal(err)
	}
	got := []float64{fit.Params.R, fit.Params.Alpha, fit.Params.S, fit.Params.Beta}
	for i, want := range []float64{0.553, 10.578, 0.606, 11.669} {
		if math.Abs(got[i]-want) > 0.0005 {
			t.Errorf("parameter %d = %.5f, published %v", i, got[i], want)
		}
	}
	if math.Abs(fit.LogLikelihood+9595.0) > 0.05 {
		t.Errorf("log-likelihood %.3f, published -9595.0", fit.LogLikelihood)
	}
	for i, se := range []float64{fit.StdErr.R, fit.StdErr.Alpha, fit.StdErr.S, fit.StdErr.Beta} {
		if !(se > 0 && se < got[i]) {
			t.Errorf("standard error %d = %v", i, se)
		}
	}
	t.Logf("Pareto/NBD on CDNOW: %+v, s.e. %+v, LL %.4f", fit.Params, fit.StdErr, fit.LogLikelihood)
}

// pnbdTextbook returns the published likelihood (not in logs) and P(alive),
// 2F1 by its series.
func pnbdTextbook(m ParetoNBD, s Summary) (l, pAlive float64) {
	r, al, sh, be, x, tx, T := m.R, m.Alpha, m.S, m.Beta, float64(s.X), s.Tx, s.T
	var a0 float64
	if al >= be {
		f := func(t float64) float64 {
			return series2F1(r+sh+x, sh+1, r+sh+x+1, (al-be)/(al+t)) / math.Pow(al+t, r+sh+x)
		}
		a0 = f(tx) - f(T)
	} else {
		f := func(t float64) float64 {
			return series2F1(r+sh+x, r+x, r+sh+x+1, (be-al)/(be+t)) / math.Pow(be+t, r+sh+x)
		}
		a0 = f(tx) - f(T)
	}
	first := 1 / (math.Pow(al+T, r+x) * math.Pow(be+T, sh))
	lgRX, _ := math.Lgamma(r + x)
	lgR, _ := math.Lgamma(r)
	c := math.Exp(lgRX-lgR) * math.Pow(al, r) * math.Pow(be, sh)
	l = c * (first + sh/(r+sh+x)*a0)
	pAlive = 1 / (1 + sh/(r+sh+x)*a0/first)
	return l, pAlive
}

// TestParetoNBDMatchesTextbook compares the likelihood and P(alive) with
// their published forms, 2F1 summed directly.
func TestParetoNBDMatchesTextbook(t *testing.T) {
	for _, m := range pnbdGrid {
		for _, s := range []Summary{{0, 0, 0}, {0, 0, 30}, {1, 5, 30}, {2, 30.43, 38.86}, {7, 25, 30}, {20, 29, 30}, {3, 30, 30}} {
			l, pa := pnbdTextbook(m, s)
			if got := m.LogLikelihood(s); math.Abs(got-math.Log(l)) > 1e-9*math.Max(1, math.Abs(got)) {
				t.Errorf("%+v %+v: LL %.15g, textbook %.15g", m, s, got, math.Log(l))
			}
			if got := m.PAlive(s); math.Abs(got-pa) > 1e-9 {
				t.Errorf("%+v %+v: P(alive) %.15g, textbook %.15g", m, s, got, pa)
			}
		}
	}
}

// TestParetoNBDPMFMatchesExpectation checks the PMF (a quadrature over the
// lifetime) against the closed-form E[X(t)]: Σ P(X(t)=x) = 1 and Σ x
// P(X(t)=x) = E[X(t)].
func TestParetoNBDPMFMatchesExpectation(t *testing.T) {
	for _, m := range pnbdGrid[:4] {
		for _, tt := range []float64{1, 30, 100} {
			var sum, mean float64
			for x := int64(0); x < 20000; x++ {
				p := m.PMF(x, tt)
				if p < 0 || math.IsNaN(p) {
					t.Fatalf("%+v: PMF(%d, %v) = %v", m, x, tt, p)
				}
				sum += p
				mean += float64(x) * p
				if x > 100 && p < 1e-18 {
					break
				}
			}
			want := m.ExpectedPurchases(Summary{}, tt)
			if math.Abs(sum-1) > 1e-9 || math.Abs(mean-want) > 1e-7*math.Max(1, want) {
				t.Errorf("%+v t=%v: Σ PMF = %.12f, Σ x PMF = %.10f, E[X(t)] = %.10f", m, tt, sum, mean, want)
			}
		}
	}
}

// TestParetoNBDPAlive checks that P(alive) is 1 at the last purchase,
// falls in T, and that PAliveFallsBelow inverts it.
func TestParetoNBDPAlive(t *testing.T) {
	for _, m := range pnbdGrid {
		for _, c := range []struct {
			x  int64
			tx float64
		}{{0, 0}, {1, 3}, {5, 20}, {30, 40}} {
			if pa := m.PAlive(Summary{X: c.x, Tx: c.tx, T: c.tx}); pa != 1 {
				t.Errorf("%+v %+v: P(alive) at the last purchase %v", m, c, pa)
			}
			prev := 1.0
			for T := c.tx + 1; T < c.tx+300; T += 7 {
				pa := m.PAlive(Summary{X: c.x, Tx: c.tx, T: T})
				if !(pa < prev) {
					t.Errorf("%+v %+v: P(alive) %v at T=%v does not fall (%v before)", m, c, pa, T, prev)
				}
				prev = pa
			}
			for _, th := range []float64{0.05, 0.3, 0.5, 0.9} {
				ts := m.PAliveFallsBelow(c.x, c.tx, th)
				if math.IsInf(ts, 1) || ts < c.tx {
					t.Fatalf("%+v %+v θ=%v: falls below at %v", m, c, th, ts)
				}
				if after := m.PAlive(Summary{X: c.x, Tx: c.tx, T: ts*(1+1e-9) + 1e-9}); !(after < th) {
					t.Errorf("%+v %+v θ=%v: P(alive) %v just after %v", m, c, th, after, ts)
				}
				if before := m.PAlive(Summary{X: c.x, Tx: c.tx, T: ts * (1 - 1e-9)}); !(before >= th) {
					t.Errorf("%+v %+v θ=%v: P(alive) %v just before %v", m, c, th, before, ts)
				}
			}
		}
	}
}

// TestParetoNBDExpectedAtSEqualsOne checks the s = 1 limit of the
// conditional expectation against its neighbours.
func TestParetoNBDExpectedAtSEqualsOne(t *testing.T) {
	s := Summary{X: 3, Tx: 20, T: 30}
	at := func(sh float64) float64 {
		return ParetoNBD{R: 1, Alpha: 5, S: sh, Beta: 5}.ExpectedPurchases(s, 52)
	}
	mid, lo, hi := at(1), at(1-1e-7), at(1+1e-7)
	if math.Abs(mid-(lo+hi)/2) > 1e-6*mid {
		t.Errorf("E at s=1: %v, neighbours %v %v", mid, lo, hi)
	}
}

// simulateParetoNBD draws n customers from Pareto/NBD, each observed for T
// uniform in [tMin, tMax] after the first purchase.
func simulateParetoNBD(rng *rand.Rand, m ParetoNBD, n int, tMin, tMax float64) ([]Summary, []bool) {
	sums := make([]Summary, n)
	alive := make([]bool, n)
	for i := range sums {
		lambda := gammaDraw(rng, m.R) / m.Alpha
		mu := gammaDraw(rng, m.S) / m.Beta
		life := rng.ExpFloat64() / mu
		T := tMin + (tMax-tMin)*rng.Float64()
		s := Summary{T: T}
		end := math.Min(life, T)
		for t := rng.ExpFloat64() / lambda; t <= end; t += rng.ExpFloat64() / lambda {
			s.X++
			s.Tx = t
		}
		sums[i], alive[i] = s, life > T
	}
	return sums, alive
}

// TestFitParetoNBDRecovery simulates Pareto/NBD populations from known
// parameters with several seeds and checks the fit recovers them, as
// TestFitMBGNBDRecovery does for MBG/NBD (fewer seeds and customers: the
// fit takes its gradient by differences, several times the cost).
func TestFitParetoNBDRecovery(t *testing.T) {
	seeds := 6
	if testing.Short() {
		seeds = 2
	}
	m := ParetoNBD{R: 0.553, Alpha: 10.578, S: 0.606, Beta: 11.669}
	want := []float64{m.R, m.Alpha, m.S, m.Beta}
	var zsum, zsq [4]float64
	for seed := range seeds {
		rng := rand.New(rand.NewSource(int64(2000 + seed)))
		sums, alive := simulateParetoNBD(rng, m, 2500, 26, 52)
		fit, err := FitParetoNBD(sums)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		got := []float64{fit.Params.R, fit.Params.Alpha, fit.Params.S, fit.Params.Beta}
		se := []float64{fit.StdErr.R, fit.StdErr.Alpha, fit.StdErr.S, fit.StdErr.Beta}
		for i := range got {
			z := (got[i] - want[i]) / se[i]
			if !(math.Abs(z) <= 4) {
				t.Errorf("seed %d: parameter %d = %.4f, s.e. %.4f: %.1f standard errors off", seed, i, got[i], se[i], z)
			}
			zsum[i] += z
			zsq[i] += z * z
		}
		var expAlive, variance float64
		nAlive := 0
		for j, s := range sums {
			pa := m.PAlive(s)
			expAlive += pa
			variance += pa * (1 - pa)
			if alive[j] {
				nAlive++
			}
		}
		if d := math.Abs(float64(nAlive) - expAlive); d > 4*math.Sqrt(variance) {
			t.Errorf("seed %d: %d active, Σ P(alive) = %.1f (sd %.1f)", seed, nAlive, expAlive, math.Sqrt(variance))
		}
	}
	for i := range zsum {
		mean := zsum[i] / float64(seeds)
		sd := math.Sqrt(zsq[i]/float64(seeds) - mean*mean)
		if math.Abs(mean) > 4/math.Sqrt(float64(seeds)) || sd > 1.8 {
			t.Errorf("parameter %d: standardised errors mean %.2f, sd %.2f over %d seeds", i, mean, sd, seeds)
		}
		t.Logf("parameter %d: standardised errors mean %.2f, sd %.2f over %d seeds", i, mean, sd, seeds)
	}
}
