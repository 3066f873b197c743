package clv

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"valora/internal/gen"
)

// sigFigs reports whether got rounds to want at want's three significant
// figures (want is given to three significant figures).
func sameTo3(got, want float64) bool {
	mag := math.Pow(10, math.Floor(math.Log10(math.Abs(want)))-2)
	return math.Abs(got-want) <= mag/2
}

// TestFitBGNBDCDNOW fits BG/NBD to the CDNOW sample, weeks as the unit,
// calibration period ending 1997-09-30, and compares with the published
// maximum-likelihood estimates:
//
//	Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "'Counting Your
//	Customers' the Easy Way: An Alternative to the Pareto/NBD Model",
//	Marketing Science 24(2), 275-284: r = 0.243, alpha = 4.414,
//	a = 0.793, b = 2.426, LL = -9582.4.
func TestFitBGNBDCDNOW(t *testing.T) {
	cs := readCDNOW(t)
	fit, err := FitBGNBD(cdnowSummaries(cs))
	if err != nil {
		t.Fatal(err)
	}
	got := fit.Params
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"r", got.R, 0.243},
		{"alpha", got.Alpha, 4.414},
		{"a", got.A, 0.793},
		{"b", got.B, 2.426},
	} {
		if !sameTo3(c.got, c.want) {
			t.Errorf("%s = %.5f, published %.3f", c.name, c.got, c.want)
		}
	}
	if math.Abs(fit.LogLikelihood-(-9582.4)) > 0.1 {
		t.Errorf("log-likelihood = %.3f, published -9582.4", fit.LogLikelihood)
	}
	if fit.Customers != 2357 || fit.RepeatBuyers != 946 {
		t.Errorf("customers = %d, repeat buyers = %d, want 2357 and 946", fit.Customers, fit.RepeatBuyers)
	}
	t.Logf("r=%.4f alpha=%.4f a=%.4f b=%.4f LL=%.3f (%d iterations, %d evaluations); s.e. %.4f %.4f %.4f %.4f",
		got.R, got.Alpha, got.A, got.B, fit.LogLikelihood, fit.Iterations, fit.Evaluations,
		fit.StdErr.R, fit.StdErr.Alpha, fit.StdErr.A, fit.StdErr.B)

	// The same data in days: r, a and b do not change, alpha is 7 times
	// larger, and the log-likelihood moves by -ln 7 per repeat purchase
	// (the density of t_x is per unit of time).
	days := cdnowSummaries(cs)
	var sumX float64
	for i := range days {
		days[i].Tx *= 7
		days[i].T *= 7
		sumX += float64(days[i].X)
	}
	dfit, err := FitBGNBD(days)
	if err != nil {
		t.Fatal(err)
	}
	d := dfit.Params
	if rel(d.R, got.R) > 1e-5 || rel(d.Alpha, 7*got.Alpha) > 1e-5 || rel(d.A, got.A) > 1e-5 || rel(d.B, got.B) > 1e-5 {
		t.Errorf("fit in days %+v, want %+v with alpha x 7", d, got)
	}
	if wantLL := fit.LogLikelihood - sumX*math.Log(7); math.Abs(dfit.LogLikelihood-wantLL) > 1e-6*math.Abs(wantLL) {
		t.Errorf("log-likelihood in days %.4f, want %.4f", dfit.LogLikelihood, wantLL)
	}
}

func rel(got, want float64) float64 { return math.Abs(got-want) / math.Abs(want) }

// TestFitGammaGammaCDNOW fits Gamma-Gamma to the 946 repeat buyers of the
// CDNOW sample, each with the mean value of the repeat purchases (the
// days after the first, same-day rows summed) of the calibration period,
// and compares with the published estimates:
//
//	Fader, P. S. and Hardie, B. G. S. (2013), "The Gamma-Gamma Model of
//	Monetary Value", http://brucehardie.com/notes/025/, which reproduces
//	the spend model of Fader, P. S., Hardie, B. G. S. and Lee, K. L.
//	(2005), "RFM and CLV: Using Iso-Value Curves for Customer Base
//	Analysis", Journal of Marketing Research 42(4), 415-430:
//	p = 6.25, q = 3.74, gamma = 15.44.
//
// The log-likelihood, -4055.92 for this data, is this package's value
// (the density of the mean spend, with all its constants); it is checked
// as a regression value.
func TestFitGammaGammaCDNOW(t *testing.T) {
	spends := cdnowSpends(readCDNOW(t))
	if len(spends) != 946 {
		t.Fatalf("%d repeat buyers with a positive mean spend, want 946", len(spends))
	}
	fit, err := FitGammaGamma(spends)
	if err != nil {
		t.Fatal(err)
	}
	got := fit.Params
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"p", got.P, 6.25},
		{"q", got.Q, 3.74},
		{"gamma", got.Gamma, 15.44},
	} {
		if math.Abs(c.got-c.want) > 0.005+1e-12 {
			t.Errorf("%s = %.5f, published %.2f", c.name, c.got, c.want)
		}
	}
	if math.Abs(fit.LogLikelihood-(-4055.92)) > 0.01 {
		t.Errorf("log-likelihood = %.4f, want -4055.92", fit.LogLikelihood)
	}
	var ll float64
	for _, s := range spends {
		ll += got.LogLikelihood(s.X, s.Mean)
	}
	if math.Abs(ll-fit.LogLikelihood) > 1e-9*math.Abs(ll) {
		t.Errorf("per-customer LL sum %v, fit LL %v", ll, fit.LogLikelihood)
	}
	t.Logf("p=%.4f q=%.4f gamma=%.4f LL=%.4f; s.e. %.4f %.4f %.4f; mean spend %.2f",
		got.P, got.Q, got.Gamma, fit.LogLikelihood, fit.StdErr.P, fit.StdErr.Q, fit.StdErr.Gamma, got.MeanSpend())
}

// TestFitRecovery draws populations of 50,000 customers from internal/gen
// with known parameters and fits them back. The tolerance is four
// asymptotic standard errors of each estimate, taken from the fit's own
// information matrix: a correct estimator lands within it with
// probability above 0.9999 per parameter, while an error in the likelihood
// or its gradient moves the estimates by many standard errors at this size
// (the standard errors are 1% to 10% of the values). The draws are
// deterministic (fixed seeds), so the test is too. The check of P(alive)
// compares the expected number of customers still active, Σ P(alive), with
// the simulated count, within four standard deviations of a sum of
// independent Bernoulli variables.
func TestFitRecovery(t *testing.T) {
	sets := []struct {
		name string
		bg   BGNBD // per day
		gg   GammaGamma
	}{
		{"cdnow-like", BGNBD{R: 0.243, Alpha: 4.414 * 7, A: 0.793, B: 2.426}, GammaGamma{P: 6.25, Q: 3.74, Gamma: 15.44}},
		{"frequent", BGNBD{R: 2, Alpha: 20, A: 1.5, B: 8}, GammaGamma{P: 3, Q: 5, Gamma: 40}},
		{"loyal", BGNBD{R: 0.5, Alpha: 10, A: 0.3, B: 5}, GammaGamma{P: 10, Q: 2.5, Gamma: 5}},
	}
	for i, ps := range sets {
		t.Run(ps.name, func(t *testing.T) {
			p := gen.DefaultParams()
			p.Customers = 50_000
			p.Seed = uint64(100 + i)
			p.ArrivalDays = 90
			p.Horizon = 365 * 24 * time.Hour
			p.R, p.Alpha, p.A, p.B = ps.bg.R, ps.bg.Alpha, ps.bg.A, ps.bg.B
			p.P, p.Q, p.Gamma = ps.gg.P, ps.gg.Q, ps.gg.Gamma
			sim := simulate(t, p)

			fit, err := FitBGNBD(sim.sums)
			if err != nil {
				t.Fatal(err)
			}
			checkRecovered(t, "bgnbd", []string{"r", "alpha", "a", "b"},
				[]float64{fit.Params.R, fit.Params.Alpha, fit.Params.A, fit.Params.B},
				[]float64{fit.StdErr.R, fit.StdErr.Alpha, fit.StdErr.A, fit.StdErr.B},
				[]float64{ps.bg.R, ps.bg.Alpha, ps.bg.A, ps.bg.B})

			gg, err := FitGammaGamma(sim.spends)
			if err != nil {
				t.Fatal(err)
			}
			checkRecovered(t, "gamma-gamma", []string{"p", "q", "gamma"},
				[]float64{gg.Params.P, gg.Params.Q, gg.Params.Gamma},
				[]float64{gg.StdErr.P, gg.StdErr.Q, gg.StdErr.Gamma},
				[]float64{ps.gg.P, ps.gg.Q, ps.gg.Gamma})

			var expAlive, variance float64
			alive := 0
			for j, s := range sim.sums {
				pa := ps.bg.PAlive(s)
				expAlive += pa
				variance += pa * (1 - pa)
				if sim.alive[j] {
					alive++
				}
			}
			if d := math.Abs(float64(alive) - expAlive); d > 4*math.Sqrt(variance) {
				t.Errorf("alive at the end: %d simulated, Σ P(alive) = %.1f (sd %.1f)", alive, expAlive, math.Sqrt(variance))
			}
		})
	}
}

func checkRecovered(t *testing.T, model string, names []string, got, se, want []float64) {
	t.Helper()
	for i := range got {
		if !(se[i] > 0) || se[i] > 0.25*want[i] {
			t.Errorf("%s %s: standard error %v is missing or too large for a meaningful check", model, names[i], se[i])
			continue
		}
		if math.Abs(got[i]-want[i]) > 4*se[i] {
			t.Errorf("%s %s = %.4f, true %.4f: off by %.1f standard errors (%.4f)",
				model, names[i], got[i], want[i], math.Abs(got[i]-want[i])/se[i], se[i])
		}
	}
	t.Logf("%s: fitted %.4g, true %.4g, s.e. %.2g", model, got, want, se)
}

func TestFitErrors(t *testing.T) {
	few := make([]Summary, 100)
	for i := range few {
		few[i] = Summary{T: 30}
	}
	for i := range MinRepeatBuyers - 1 {
		few[i] = Summary{X: 1, Tx: 5, T: 30}
	}
	tests := []struct {
		name string
		fit  func() error
		want error
	}{
		{"bgnbd no data", func() error { _, err := FitBGNBD(nil); return err }, ErrTooFewRepeatBuyers},
		{"bgnbd too few repeat buyers", func() error { _, err := FitBGNBD(few); return err }, ErrTooFewRepeatBuyers},
		{"bgnbd negative x", func() error { _, err := FitBGNBD([]Summary{{X: -1, T: 1}}); return err }, ErrInvalidData},
		{"bgnbd t_x > T", func() error { _, err := FitBGNBD([]Summary{{X: 1, Tx: 2, T: 1}}); return err }, ErrInvalidData},
		{"bgnbd NaN T", func() error { _, err := FitBGNBD([]Summary{{T: math.NaN()}}); return err }, ErrInvalidData},
		{"bgnbd infinite T", func() error { _, err := FitBGNBD([]Summary{{T: math.Inf(1)}}); return err }, ErrInvalidData},
		{"gg no data", func() error { _, err := FitGammaGamma(nil); return err }, ErrTooFewRepeatBuyers},
		{"gg x = 0", func() error { _, err := FitGammaGamma([]Spend{{X: 0, Mean: 1}}); return err }, ErrInvalidData},
		{"gg zero mean", func() error { _, err := FitGammaGamma([]Spend{{X: 1, Mean: 0}}); return err }, ErrInvalidData},
		{"gg identical spends", func() error {
			s := make([]Spend, 50)
			for i := range s {
				s[i] = Spend{X: 1 + int64(i%3), Mean: 10}
			}
			_, err := FitGammaGamma(s)
			return err
		}, ErrNotConverged},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.fit(); !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
}

// TestFitGammaGammaQNotAboveOne fits spends with a tail so heavy that the
// mean does not exist (density ∝ m^-1.5): q comes out below 1, and the fit
// is returned with ErrQNotAboveOne.
func TestFitGammaGammaQNotAboveOne(t *testing.T) {
	n := 2000
	s := make([]Spend, n)
	for i := range s {
		u := (float64(i) + 0.5) / float64(n)
		s[i] = Spend{X: 1, Mean: math.Pow(u, -2)}
	}
	fit, err := FitGammaGamma(s)
	if !errors.Is(err, ErrQNotAboveOne) {
		t.Fatalf("error %v, want ErrQNotAboveOne", err)
	}
	if fit == nil || fit.Params.Q > 1 {
		t.Fatalf("fit %+v, want one with q <= 1", fit)
	}
	if err := fit.Params.Validate(); !errors.Is(err, ErrQNotAboveOne) {
		t.Errorf("Validate: %v, want ErrQNotAboveOne", err)
	}
	if m := fit.Params.MeanSpend(); !math.IsInf(m, 1) {
		t.Errorf("MeanSpend = %v, want +Inf", m)
	}
}

func TestFitIsDeterministic(t *testing.T) {
	data := make([]Summary, 3*chunkSize+17)
	for i := range data {
		x := int64(i % 7 / 3)
		tx := 0.0
		if x > 0 {
			tx = float64(i%29) + 0.25
		}
		data[i] = Summary{X: x, Tx: tx, T: 30 + float64(i%11)}
	}
	a, err := FitBGNBD(data)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		b, err := FitBGNBD(data)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("fits differ: %+v and %+v", a, b)
		}
	}
}
