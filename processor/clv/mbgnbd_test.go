package clv

import (
	"errors"
	"math"
	"math/rand"
	"testing"
)

// mbgGrid holds MBG/NBD parameters over the regimes of the formulas, the
// first the estimates for the CDNOW sample.
var mbgGrid = []MBGNBD{
	{R: 0.525, Alpha: 6.183, A: 0.891, B: 1.614},
	{R: 2, Alpha: 20, A: 1.5, B: 8},
	{R: 0.5, Alpha: 10, A: 0.3, B: 5},
	{R: 1, Alpha: 1, A: 1, B: 1},
	{R: 5, Alpha: 0.5, A: 0.2, B: 0.3},
}

// TestFitMBGNBDCDNOW fits MBG/NBD to the CDNOW sample (weeks, calibration
// period ending 1997-09-30). The estimates published for these data by
// the BTYDplus R package, and checked against it by the lifetimes Python
// package's tests, are r = 0.525, alpha = 6.183, a = 0.891, b = 1.614.
func TestFitMBGNBDCDNOW(t *testing.T) {
	fit, err := FitMBGNBD(cdnowSummaries(readCDNOW(t)))
	if err != nil {
		t.Fatal(err)
	}
	got := []float64{fit.Params.R, fit.Params.Alpha, fit.Params.A, fit.Params.B}
	for i, want := range []float64{0.525, 6.183, 0.891, 1.614} {
		if math.Abs(got[i]-want) > 0.0005 {
			t.Errorf("parameter %d = %.5f, published %v", i, got[i], want)
		}
	}
	if fit.Customers != 2357 || fit.RepeatBuyers != 946 {
		t.Errorf("customers %d, repeat buyers %d", fit.Customers, fit.RepeatBuyers)
	}
	// The standard errors are finite, and the likelihood is that of the
	// per-customer formula at the estimates.
	for i, se := range []float64{fit.StdErr.R, fit.StdErr.Alpha, fit.StdErr.A, fit.StdErr.B} {
		if !(se > 0 && se < got[i]) {
			t.Errorf("standard error %d = %v", i, se)
		}
	}
	var ll float64
	for _, s := range cdnowSummaries(readCDNOW(t)) {
		ll += fit.Params.LogLikelihood(s)
	}
	if math.Abs(ll-fit.LogLikelihood) > 1e-6 {
		t.Errorf("log-likelihood %v, per-customer sum %v", fit.LogLikelihood, ll)
	}
	t.Logf("MBG/NBD on CDNOW: %+v, s.e. %+v, LL %.4f", fit.Params, fit.StdErr, fit.LogLikelihood)
}

// series2F1 is the Gauss hypergeometric series summed term by term, for
// |z| < 1: independent of the package's transformed form.
func series2F1(a, b, c, z float64) float64 {
	term, sum := 1.0, 1.0
	for n := 0.0; n < 1e6; n++ {
		term *= (a + n) * (b + n) / ((c + n) * (n + 1)) * z
		sum += term
		if math.Abs(term) < 1e-17*math.Abs(sum) {
			break
		}
	}
	return sum
}

// TestMBGNBDExpectedMatchesTextbook compares the conditional expectation
// with its published form, 2F1 summed directly.
func TestMBGNBDExpectedMatchesTextbook(t *testing.T) {
	for _, m := range mbgGrid {
		if m.A == 1 {
			continue // the published form divides by a-1
		}
		for _, s := range []Summary{{0, 0, 0}, {0, 0, 30}, {1, 5, 30}, {2, 30.43, 38.86}, {7, 25, 30}, {20, 29, 30}} {
			for _, h := range []float64{0.5, 10, 39, 52} {
				x := float64(s.X)
				z := h / (m.Alpha + s.T + h)
				f := series2F1(m.R+x, m.B+x+1, m.A+m.B+x, z)
				num := (m.A + m.B + x) / (m.A - 1) * (1 - math.Pow((m.Alpha+s.T)/(m.Alpha+s.T+h), m.R+x)*f)
				want := num / (1 + m.A/(m.B+x)*math.Pow((m.Alpha+s.T)/(m.Alpha+s.Tx), m.R+x))
				got := m.ExpectedPurchases(s, h)
				if math.Abs(got-want) > 1e-9*math.Max(1, want) {
					t.Errorf("%+v %+v t=%v: got %.15g, textbook %.15g", m, s, h, got, want)
				}
			}
		}
	}
}

// TestMBGNBDPMFMatchesExpectation checks the PMF, built from the
// negative binomial alone, against the expectation, built from 2F1:
// Σ P(X(t)=x) = 1 and Σ x P(X(t)=x) = E[X(t)].
func TestMBGNBDPMFMatchesExpectation(t *testing.T) {
	for _, m := range mbgGrid[:4] {
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
			if math.Abs(sum-1) > 1e-9 || math.Abs(mean-want) > 1e-6*math.Max(1, want) {
				t.Errorf("%+v t=%v: Σ PMF = %.12f, Σ x PMF = %.10f, E[X(t)] = %.10f", m, tt, sum, mean, want)
			}
		}
	}
}

// TestMBGNBDPAlive checks that a one-time buyer's P(alive) starts at
// b/(a+b) and falls with time, and that PAliveFallsBelow inverts PAlive
// for one-time and repeat buyers.
func TestMBGNBDPAlive(t *testing.T) {
	for _, m := range mbgGrid {
		if got, want := m.PAlive(Summary{}), m.B/(m.A+m.B); math.Abs(got-want) > 1e-12 {
			t.Errorf("%+v: P(alive) at the first purchase %v, want b/(a+b) = %v", m, got, want)
		}
		prev := 1.0
		for T := 0.0; T < 200; T += 5 {
			pa := m.PAlive(Summary{T: T})
			if !(pa < prev) && pa > 0 {
				t.Errorf("%+v: one-time buyer's P(alive) %v at T=%v does not fall (%v before)", m, pa, T, prev)
			}
			prev = pa
		}
		for _, c := range []struct {
			x  int64
			tx float64
		}{{0, 0}, {1, 3}, {5, 20}, {30, 40}} {
			for _, th := range []float64{0.05, 0.3, 0.5, 0.9} {
				ts := m.PAliveFallsBelow(c.x, c.tx, th)
				if math.IsInf(ts, 1) || ts < c.tx {
					t.Fatalf("%+v x=%d tx=%v θ=%v: falls below at %v", m, c.x, c.tx, th, ts)
				}
				after := m.PAlive(Summary{X: c.x, Tx: c.tx, T: ts*(1+1e-9) + 1e-9})
				if !(after < th) {
					t.Errorf("%+v x=%d tx=%v θ=%v: P(alive) %v just after %v", m, c.x, c.tx, th, after, ts)
				}
				if ts > c.tx {
					if before := m.PAlive(Summary{X: c.x, Tx: c.tx, T: ts * (1 - 1e-9)}); !(before >= th) {
						t.Errorf("%+v x=%d tx=%v θ=%v: P(alive) %v just before %v", m, c.x, c.tx, th, before, ts)
					}
				}
			}
		}
	}
}

// TestMBGNBDLogLikelihoodMatchesFitObjective checks the fit's compact
// likelihood against the per-customer one and its gradient against
// central differences.
func TestMBGNBDLogLikelihoodMatchesFitObjective(t *testing.T) {
	data := []Summary{{0, 0, 30}, {0, 0, 12.5}, {1, 3, 30}, {1, 29, 30}, {4, 20, 35}, {4, 2, 35}, {12, 33, 34}, {0, 0, 0}}
	for i := 0; i < 2*chunkSize; i++ {
		data = append(data, Summary{X: int64(i % 5), Tx: float64(i%5) * 3, T: 20 + float64(i%17)})
	}
	d := &mbgData{countData{n: len(data)}}
	index := map[int64]int32{}
	for _, s := range data {
		k, ok := index[s.X]
		if !ok {
			k = int32(len(d.xs))
			index[s.X] = k
			d.xs = append(d.xs, float64(s.X))
			d.counts = append(d.counts, 0)
		}
		d.counts[k]++
		d.xi = append(d.xi, k)
		d.tx = append(d.tx, s.Tx)
		d.t = append(d.t, s.T)
	}
	for _, m := range mbgGrid {
		p := []float64{m.R, m.Alpha, m.A, m.B}
		g := make([]float64, 4)
		got := d.logLikelihood(p, g)
		var want float64
		for _, s := range data {
			want += m.LogLikelihood(s)
		}
		if math.Abs(got-want) > 1e-9*math.Abs(want) {
			t.Errorf("%+v: compact LL %v, per-customer sum %v", m, got, want)
		}
		for i := range p {
			h := 1e-6 * p[i]
			pp, pm := append([]float64(nil), p...), append([]float64(nil), p...)
			pp[i] += h
			pm[i] -= h
			num := (d.logLikelihood(pp, make([]float64, 4)) - d.logLikelihood(pm, make([]float64, 4))) / (2 * h)
			if math.Abs(num-g[i]) > 1e-5*math.Max(1, math.Abs(num)) {
				t.Errorf("%+v: d LL/d p[%d] = %v analytic, %v numeric", m, i, g[i], num)
			}
		}
	}
}

// simulateMBGNBD draws n customers from MBG/NBD, each observed for T
// drawn uniformly in [tMin, tMax] after the first purchase: drop-out with
// probability p at the first purchase and after each repeat purchase,
// purchases at rate lambda while active. It returns the summaries and
// whether each customer is active at the end.
func simulateMBGNBD(rng *rand.Rand, m MBGNBD, n int, tMin, tMax float64) ([]Summary, []bool) {
	sums := make([]Summary, n)
	alive := make([]bool, n)
	for i := range sums {
		lambda := gammaDraw(rng, m.R) / m.Alpha
		ga, gb := gammaDraw(rng, m.A), gammaDraw(rng, m.B)
		p := ga / (ga + gb)
		T := tMin + (tMax-tMin)*rng.Float64()
		s := Summary{T: T}
		active := rng.Float64() >= p // the drop-out opportunity at the first purchase
		for t := 0.0; active; {
			t += rng.ExpFloat64() / lambda
			if t > T {
				break
			}
			s.X++
			s.Tx = t
			active = rng.Float64() >= p
		}
		sums[i], alive[i] = s, active
	}
	return sums, alive
}

// gammaDraw draws from Gamma(shape, 1) (Marsaglia and Tsang, with the
// boost for shape < 1).
func gammaDraw(rng *rand.Rand, shape float64) float64 {
	if shape < 1 {
		return gammaDraw(rng, shape+1) * math.Pow(rng.Float64(), 1/shape)
	}
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := rng.Float64()
		if math.Log(u) < 0.5*x*x+d-d*v+d*math.Log(v) {
			return d * v
		}
	}
}

// TestFitMBGNBDRecovery simulates MBG/NBD populations from known
// parameters with many seeds and checks that the fit recovers them: each
// estimate within four standard errors, the standardised errors averaging
// near 0 across seeds (no bias beyond 4/sqrt(seeds)) with a spread near 1
// (standard errors of the right size), and Σ P(alive) matching the number
// of customers simulated active.
func TestFitMBGNBDRecovery(t *testing.T) {
	const seeds = 24
	truth := []MBGNBD{
		{R: 0.525, Alpha: 6.183, A: 0.891, B: 1.614},
		{R: 2, Alpha: 20, A: 1.5, B: 8},
	}
	if testing.Short() {
		truth = truth[:1]
	}
	for _, m := range truth {
		want := []float64{m.R, m.Alpha, m.A, m.B}
		var zsum, zsq [4]float64
		for seed := range seeds {
			rng := rand.New(rand.NewSource(int64(1000 + seed)))
			sums, alive := simulateMBGNBD(rng, m, 5000, 26, 52)
			fit, err := FitMBGNBD(sums)
			if err != nil {
				t.Fatalf("%+v seed %d: %v", m, seed, err)
			}
			got := []float64{fit.Params.R, fit.Params.Alpha, fit.Params.A, fit.Params.B}
			se := []float64{fit.StdErr.R, fit.StdErr.Alpha, fit.StdErr.A, fit.StdErr.B}
			for i := range got {
				z := (got[i] - want[i]) / se[i]
				if !(math.Abs(z) <= 4) {
					t.Errorf("%+v seed %d: parameter %d = %.4f, s.e. %.4f: %.1f standard errors off", m, seed, i, got[i], se[i], z)
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
				t.Errorf("%+v seed %d: %d active, Σ P(alive) = %.1f (sd %.1f)", m, seed, nAlive, expAlive, math.Sqrt(variance))
			}
		}
		for i := range zsum {
			mean := zsum[i] / seeds
			sd := math.Sqrt(zsq[i]/seeds - mean*mean)
			// The mean of seeds standard normals has sd 1/sqrt(seeds); the
			// maximum-likelihood bias at 5,000 customers is far below it.
			if math.Abs(mean) > 4/math.Sqrt(seeds) || sd < 0.5 || sd > 1.6 {
				t.Errorf("%+v parameter %d: standardised errors mean %.2f, sd %.2f over %d seeds", m, i, mean, sd, seeds)
			}
			t.Logf("%+v parameter %d: standardised errors mean %.2f, sd %.2f over %d seeds", m, i, mean, sd, seeds)
		}
	}
}

func TestFitMBGNBDErrors(t *testing.T) {
	if _, err := FitMBGNBD([]Summary{{X: 1, Tx: 5, T: 3}}); !errors.Is(err, ErrInvalidData) {
		t.Errorf("t_x > T: %v", err)
	}
	if _, err := FitMBGNBD([]Summary{{X: 1, Tx: 1, T: 3}, {T: 4}}); !errors.Is(err, ErrTooFewRepeatBuyers) {
		t.Errorf("one repeat buyer: %v", err)
	}
}
