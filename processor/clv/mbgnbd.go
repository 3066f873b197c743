package clv

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mathext"
)

// MBGNBD holds the four parameters of the MBG/NBD model (Batislam,
// Denizel and Filiztekin, 2007). It is BG/NBD with one more drop-out
// opportunity, right after the first purchase: while active, a customer
// buys as a Poisson process of rate lambda, lambda ~ Gamma(R, rate Alpha);
// at the first purchase and after each repeat purchase the customer drops
// out with probability p, p ~ Beta(A, B). A customer who bought once may
// therefore be gone, and P(alive) of a one-time buyer falls with time, where
// BG/NBD keeps it at 1. Alpha is per time unit; R, A and B carry no unit.
type MBGNBD struct {
	R     float64 `json:"r" yaml:"r"`
	Alpha float64 `json:"alpha" yaml:"alpha"`
	A     float64 `json:"a" yaml:"a"`
	B     float64 `json:"b" yaml:"b"`
}

// Validate reports an error wrapping ErrInvalidParams unless every
// parameter is positive and finite.
func (m MBGNBD) Validate() error {
	return checkPositive(ErrInvalidParams, "mbgnbd", []string{"r", "alpha", "a", "b"}, []float64{m.R, m.Alpha, m.A, m.B})
}

// LogLikelihood returns the log-likelihood of one customer's Summary:
//
//	L = B(a, b+x+1)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+T)^(r+x))
//	  + B(a+1, b+x)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+t_x)^(r+x))
//
// computed in log space. Unlike BG/NBD the second term is there for x = 0
// too (t_x = 0): the customer dropped out at the first purchase.
func (m MBGNBD) LogLikelihood(s Summary) float64 {
	x := float64(s.X)
	lgRX, _ := math.Lgamma(m.R + x)
	lgR, _ := math.Lgamma(m.R)
	a1 := lgRX - lgR + m.R*math.Log(m.Alpha)
	a2 := lbeta(m.A, m.B+x+1) - lbeta(m.A, m.B)
	a3 := -(m.R + x) * math.Log(m.Alpha+s.T)
	a4 := math.Log(m.A) - math.Log(m.B+x) - (m.R+x)*math.Log(m.Alpha+s.Tx)
	return a1 + a2 + logAddExp(a3, a4)
}

// PAlive returns the probability that a customer with Summary s is still
// active at the end of s's observation (T):
//
//	P(alive) = 1 / (1 + a/(b+x) · ((α+T)/(α+t_x))^(r+x))
//
// For x = 0 it is below 1 (b/(a+b) at T = 0) and falls as T grows.
func (m MBGNBD) PAlive(s Summary) float64 {
	x := float64(s.X)
	k := math.Log(m.A/(m.B+x)) + (m.R+x)*math.Log1p((s.T-s.Tx)/(m.Alpha+s.Tx))
	return 1 / (1 + math.Exp(k))
}

// PAliveFallsBelow returns the observation time T (from the first
// purchase) from which P(alive) of a customer with x repeat purchase days,
// the last at tx (0 when x is 0), is below threshold (in (0, 1)):
//
//	T* = t_x + (α+t_x) · expm1((ln(1/θ - 1) - ln(a/(b+x))) / (r+x))
//
// It returns t_x when P(alive) is below the threshold from the last
// purchase on, and +Inf for a threshold out of (0, 1).
func (m MBGNBD) PAliveFallsBelow(x int64, tx, threshold float64) float64 {
	if x < 0 || !(threshold > 0 && threshold < 1) {
		return math.Inf(1)
	}
	if x == 0 {
		tx = 0
	}
	xf := float64(x)
	k := math.Log(1/threshold-1) - math.Log(m.A/(m.B+xf))
	if k <= 0 {
		return tx
	}
	return tx + (m.Alpha+tx)*math.Expm1(k/(m.R+xf))
}

// ExpectedPurchases returns the expected number of purchases in the next t
// time units of a customer with Summary s (E[Y(t) | x, t_x, T]):
//
//	(a+b+x)/(a-1) · [1 - ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x+1; a+b+x; t/(α+T+t))] · P(alive)
//
// which is BG/NBD's with b+1 for b in the bracket, evaluated in the same
// overflow-free form. For a new customer (the zero Summary) it is the
// unconditional expectation E[X(t)] = b/(a-1) · [1 - (α/(α+t))^r 2F1(r,
// b+1; a+b; t/(α+t))].
func (m MBGNBD) ExpectedPurchases(s Summary, t float64) float64 {
	if !(t > 0) {
		return 0
	}
	x := float64(s.X)
	at := m.Alpha + s.T
	z := t / (at + t)
	br := hypBracket(m.A+m.B-m.R, m.A-1, m.A+m.B+x, z, -math.Log1p(t/at))
	e := (m.A + m.B + x) * br * m.PAlive(s)
	if !(e > 0) {
		return 0
	}
	return e
}

// PMF returns P(X(t) = x) for a customer observed for t from the first
// purchase:
//
//	B(a, b+x+1)/B(a, b) · NB(x; r, α/(α+t)) + B(a+1, b+x)/B(a, b) · P(NB(r, α/(α+t)) >= x)
//
// the second term being the chance of dropping out right after the x-th
// repeat purchase (or at the first purchase, for x = 0).
func (m MBGNBD) PMF(x int64, t float64) float64 {
	if x < 0 {
		return 0
	}
	xf := float64(x)
	lp := m.R * math.Log(m.Alpha/(m.Alpha+t))
	lgRX, _ := math.Lgamma(m.R + xf)
	lgR, _ := math.Lgamma(m.R)
	lgX1, _ := math.Lgamma(xf + 1)
	lnb := lgRX - lgR - lgX1 + lp
	if x > 0 {
		lnb += xf * math.Log(t/(m.Alpha+t))
	}
	p := math.Exp(lbeta(m.A, m.B+xf+1) - lbeta(m.A, m.B) + lnb)
	below, nb := 0.0, math.Exp(lp)
	q := t / (m.Alpha + t)
	for j := int64(0); j < x; j++ {
		below += nb
		nb *= (m.R + float64(j)) / float64(j+1) * q
	}
	return p + math.Exp(lbeta(m.A+1, m.B+xf)-lbeta(m.A, m.B))*max(0, 1-below)
}

// RepeatHistogram is BGNBD.RepeatHistogram for MBG/NBD.
func (m MBGNBD) RepeatHistogram(ts []float64, n int) []float64 {
	return histogram(ts, n, m.PMF)
}

// histogram returns Σ_i pmf(x, ts[i]) for x < n and the rest of len(ts) in
// out[n], summing customers of equal T once, in increasing T.
func histogram(ts []float64, n int, pmf func(int64, float64) float64) []float64 {
	if n < 0 {
		return nil
	}
	out := make([]float64, n+1)
	sorted := slices.Clone(ts)
	slices.Sort(sorted)
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[j] == sorted[i] {
			j++
		}
		for x := range n {
			out[x] += float64(j-i) * pmf(int64(x), sorted[i])
		}
		i = j
	}
	total := float64(len(ts))
	for x := range n {
		total -= out[x]
	}
	out[n] = max(0, total)
	return out
}

// MBGNBDFit is the result of FitMBGNBD.
type MBGNBDFit struct {
	// Params are the maximum-likelihood estimates.
	Params MBGNBD
	// StdErr holds the asymptotic standard error of each parameter; NaN
	// where the information matrix is not positive definite.
	StdErr MBGNBD
	// LogLikelihood is the maximised log-likelihood, summed over customers.
	LogLikelihood float64
	// Customers is the number of summaries fitted; RepeatBuyers of them
	// have x > 0.
	Customers    int
	RepeatBuyers int
	// Iterations and Evaluations count the optimiser's major iterations
	// and likelihood evaluations.
	Iterations  int
	Evaluations int
}

// mbgData is FitMBGNBD's compact form of the summaries: the terms that
// depend only on x are computed once per distinct x (0 included).
type mbgData struct{ countData }

// FitMBGNBD fits MBG/NBD to the customers' summaries by maximum likelihood,
// with the checks and errors of FitBGNBD.
func FitMBGNBD(data []Summary) (*MBGNBDFit, error) {
	cd, err := newCountData("mbgnbd", data, false)
	if err != nil {
		return nil, err
	}
	d := &mbgData{cd}
	p0 := []float64{1, d.sumT / d.sumX, 1, 1}
	res, err := maximise(d.logLikelihood, p0, d.n, []string{"r", "alpha", "a", "b"})
	if err != nil {
		return nil, fmt.Errorf("fit mbgnbd: %w", err)
	}
	return &MBGNBDFit{
		Params:        MBGNBD{R: res.params[0], Alpha: res.params[1], A: res.params[2], B: res.params[3]},
		StdErr:        MBGNBD{R: res.stdErr[0], Alpha: res.stdErr[1], A: res.stdErr[2], B: res.stdErr[3]},
		LogLikelihood: res.ll,
		Customers:     d.n,
		RepeatBuyers:  d.repeat,
		Iterations:    res.iterations,
		Evaluations:   res.evaluations,
	}, nil
}

// logLikelihood returns the MBG/NBD log-likelihood of d at p = (r, alpha,
// a, b) and stores its gradient in grad. With A1 = lnΓ(r+x) - lnΓ(r) +
// r ln α, A2 = ln B(a, b+x+1) - ln B(a, b), A3 = -(r+x) ln(α+T) and A4 =
// ln a - ln(b+x) - (r+x) ln(α+t_x), every customer contributes A1 + A2 +
// ln(e^A3 + e^A4).
func (d *mbgData) logLikelihood(p, grad []float64) float64 {
	r, alpha, a, b := p[0], p[1], p[2], p[3]
	lnAlpha, lnA := math.Log(alpha), math.Log(a)
	lgR, _ := math.Lgamma(r)
	lgB, _ := math.Lgamma(b)
	lgAB, _ := math.Lgamma(a + b)
	psiR, psiB, psiAB := mathext.Digamma(r), mathext.Digamma(b), mathext.Digamma(a+b)

	var ll, gr, galpha, ga, gb float64
	c := make([]float64, len(d.xs))
	inv := make([]float64, len(d.xs))
	for k, x := range d.xs {
		n := d.counts[k]
		lgRX, _ := math.Lgamma(r + x)
		lgBX, _ := math.Lgamma(b + x + 1)
		lgABX, _ := math.Lgamma(a + b + x + 1)
		psiABX := mathext.Digamma(a + b + x + 1)
		ll += n * (lgRX - lgR + r*lnAlpha + lgBX - lgB - lgABX + lgAB)
		gr += n * (mathext.Digamma(r+x) - psiR + lnAlpha)
		galpha += n * r / alpha
		ga += n * (psiAB - psiABX)
		gb += n * (mathext.Digamma(b+x+1) - psiB - psiABX + psiAB)
		inv[k] = 1 / (b + x)
		c[k] = lnA + math.Log(inv[k])
	}
	sums := parallelSum(chunks(len(d.xi)), 5, func(ch int, acc []float64) {
		lo, hi := chunkRange(ch, len(d.xi))
		var l, dr, dal, w4s, w4b float64
		for j := lo; j < hi; j++ {
			k := d.xi[j]
			s := r + d.xs[k]
			aT, aTx := alpha+d.t[j], alpha+d.tx[j]
			lT, lTx := math.Log(aT), math.Log(aTx)
			a3 := -s * lT
			a4 := c[k] - s*lTx
			var w3, w4 float64
			if a3 >= a4 {
				e := math.Exp(a4 - a3)
				l += a3 + math.Log1p(e)
				w4 = e / (1 + e)
				w3 = 1 - w4
			} else {
				e := math.Exp(a3 - a4)
				l += a4 + math.Log1p(e)
				w3 = e / (1 + e)
				w4 = 1 - w3
			}
			dr -= w3*lT + w4*lTx
			dal -= s * (w3/aT + w4/aTx)
			w4s += w4
			w4b += w4 * inv[k]
		}
		acc[0], acc[1], acc[2], acc[3], acc[4] = l, dr, dal, w4s, w4b
	})
	ll += sums[0]
	grad[0] = gr + sums[1]
	grad[1] = galpha + sums[2]
	grad[2] = ga + sums[3]/a
	grad[3] = gb - sums[4]
	return ll
}
