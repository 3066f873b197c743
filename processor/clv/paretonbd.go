package clv

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/integrate/quad"
	"gonum.org/v1/gonum/mathext"
)

// ParetoNBD holds the four parameters of the Pareto/NBD model (Schmittlein,
// Morrison and Colombo, 1987). While active, a customer buys as a Poisson
// process of rate lambda, lambda ~ Gamma(R, rate Alpha); the customer's
// lifetime, from the first purchase, is exponential with rate mu, mu ~
// Gamma(S, rate Beta). Drop-out happens in continuous time, whether or not
// the customer buys, so a one-time buyer's P(alive) falls with time, as
// under MBG/NBD. Alpha and Beta are per time unit; R and S carry no unit.
type ParetoNBD struct {
	R     float64 `json:"r" yaml:"r"`
	Alpha float64 `json:"alpha" yaml:"alpha"`
	S     float64 `json:"s" yaml:"s"`
	Beta  float64 `json:"beta" yaml:"beta"`
}

// Validate reports an error wrapping ErrInvalidParams unless every
// parameter is positive and finite.
func (m ParetoNBD) Validate() error {
	return checkPositive(ErrInvalidParams, "paretonbd", []string{"r", "alpha", "s", "beta"}, []float64{m.R, m.Alpha, m.S, m.Beta})
}

// logOdds returns ln of the odds of death for a customer with x repeat
// purchases, the last at tx, observed for T, and A1 = -(r+x) ln(α+T) - s
// ln(β+T). With the published likelihood
//
//	L = Γ(r+x) α^r β^s / Γ(r) · [ (α+T)^-(r+x) (β+T)^-s + s/(r+s+x) · (F(t_x) - F(T)) ]
//	F(t) = 2F1(r+s+x, s+1; r+s+x+1; (α-β)/(α+t)) / (α+t)^(r+s+x)   (α >= β)
//	F(t) = 2F1(r+s+x, r+x; r+s+x+1; (β-α)/(β+t)) / (β+t)^(r+s+x)   (α < β)
//
// the odds are s/(r+s+x) · (F(t_x) - F(T)) / e^A1, and P(alive) =
// 1/(1+odds). Euler's transformation turns each 2F1 into a power of (1-z)
// times 2F1(1, b; r+s+x+1; z), with b = r+x (α >= β) or s+1 (α < β), whose
// terms fall at least as fast as z^n at every x, so that ln F never
// overflows:
//
//	ln F(t) = -(r+x) ln(α+t) - s ln(β+t) + ln 2F1(1, r+x; r+s+x+1; z)          (α >= β)
//	ln F(t) = -(r+x-1) ln(α+t) - (s+1) ln(β+t) + ln 2F1(1, s+1; r+s+x+1; z)    (α < β)
func (m ParetoNBD) logOdds(x, tx, T float64) (lnOdds, a1 float64) {
	return m.logOddsAt(x, m.lnF(x, tx), T)
}

// lnF returns ln F(t) of logOdds.
func (m ParetoNBD) lnF(x, t float64) float64 {
	c := m.R + m.S + x + 1
	if m.Alpha >= m.Beta {
		z := (m.Alpha - m.Beta) / (m.Alpha + t)
		return -(m.R+x)*math.Log(m.Alpha+t) - m.S*math.Log(m.Beta+t) + math.Log(hyp1(m.R+x, c, z))
	}
	z := (m.Beta - m.Alpha) / (m.Beta + t)
	return -(m.R+x-1)*math.Log(m.Alpha+t) - (m.S+1)*math.Log(m.Beta+t) + math.Log(hyp1(m.S+1, c, z))
}

// logOddsAt is logOdds with lnFtx = lnF(x, t_x) given.
func (m ParetoNBD) logOddsAt(x, lnFtx, T float64) (lnOdds, a1 float64) {
	a1 = -(m.R+x)*math.Log(m.Alpha+T) - m.S*math.Log(m.Beta+T)
	d1 := lnFtx - a1
	d2 := m.lnF(x, T) - a1
	if !(d1 > d2) {
		// t_x = T (or rounding at it): no time to have died unseen.
		return math.Inf(-1), a1
	}
	return math.Log(m.S/(m.R+m.S+x)) + d1 + math.Log(-math.Expm1(d2-d1)), a1
}

// hyp1 returns 2F1(1, b; c; z) = Σ (b)_n/(c)_n z^n for 0 <= z < 1 and c >
// b > 0: the terms fall at least as fast as z^n.
func hyp1(b, c, z float64) float64 {
	if z > seriesMaxZ {
		return mathext.Hypergeo(1, b, c, z)
	}
	term, sum := 1.0, 1.0
	for n := 0.0; n < seriesMaxTerms; n++ {
		term *= (b + n) / (c + n) * z
		sum += term
		if term <= 0x1p-53*sum {
			break
		}
	}
	return sum
}

// LogLikelihood returns the log-likelihood of one customer's Summary (see
// logOdds for the formula).
func (m ParetoNBD) LogLikelihood(s Summary) float64 {
	x := float64(s.X)
	tx := s.Tx
	if s.X == 0 {
		tx = 0
	}
	lnOdds, a1 := m.logOdds(x, tx, s.T)
	lgRX, _ := math.Lgamma(m.R + x)
	lgR, _ := math.Lgamma(m.R)
	return lgRX - lgR + m.R*math.Log(m.Alpha) + m.S*math.Log(m.Beta) + a1 + softplus(lnOdds)
}

// softplus returns ln(1 + e^v).
func softplus(v float64) float64 {
	if v > 0 {
		return v + math.Log1p(math.Exp(-v))
	}
	return math.Log1p(math.Exp(v))
}

// PAlive returns the probability that a customer with Summary s is still
// active at T. It is 1 at T = t_x and falls as T grows; below 1 for a
// one-time buyer observed for some time.
func (m ParetoNBD) PAlive(s Summary) float64 {
	tx := s.Tx
	if s.X == 0 {
		tx = 0
	}
	lnOdds, _ := m.logOdds(float64(s.X), tx, s.T)
	return 1 / (1 + math.Exp(lnOdds))
}

// PAliveFallsBelow returns the observation time T from which P(alive) of a
// customer with x repeat purchases, the last at tx (0 when x is 0), is
// below threshold (in (0, 1)); +Inf for a threshold out of (0, 1) or a
// crossing beyond any finite time. There is no closed form: P(alive) falls
// strictly in T, and the crossing is bracketed by doubling T - t_x, then
// found by the Illinois variant of regula falsi on ln(T - t_x), where ln
// odds of death is close to linear, to a relative precision of 1e-13 in T
// (about ten evaluations of P(alive)).
func (m ParetoNBD) PAliveFallsBelow(x int64, tx, threshold float64) float64 {
	if x < 0 || !(threshold > 0 && threshold < 1) {
		return math.Inf(1)
	}
	if x == 0 {
		tx = 0
	}
	xf := float64(x)
	target := math.Log(1/threshold - 1) // P(alive) < θ ⟺ ln odds > target
	lnFtx := m.lnF(xf, tx)
	g := func(u float64) float64 { l, _ := m.logOddsAt(xf, lnFtx, tx+math.Exp(u)); return l - target }
	// Bracket: g(a) <= 0 < g(b), u = ln(T - t_x).
	scale := max(m.Alpha, m.Beta) + tx
	a, b := math.Log(scale), math.Log(scale)
	fa, fb := g(a), g(b)
	for i := 0; fb <= 0; i++ {
		if i == 64 {
			return math.Inf(1)
		}
		a, fa = b, fb
		b += math.Ln2
		fb = g(b)
	}
	for i := 0; fa > 0; i++ {
		if i == 64 {
			return tx // below the threshold right after the last purchase
		}
		b, fb = a, fa
		a -= math.Ln2
		fa = g(a)
	}
	if math.IsInf(fa, -1) { // ln odds is -Inf only at T = t_x
		for fa == math.Inf(-1) {
			a = (a + b) / 2
			fa = g(a)
		}
		if fa > 0 {
			return tx + math.Exp(a)
		}
	}
	side := 0
	for range 100 {
		// Stop when the bracket in T is within 1e-13 of T.
		if math.Exp(b)-math.Exp(a) <= 1e-13*(tx+math.Exp(b)) {
			break
		}
		c := (a*fb - b*fa) / (fb - fa)
		if !(c > a && c < b) {
			c = a + (b-a)/2
		}
		fc := g(c)
		if fc > 0 {
			b, fb = c, fc
			if side == 1 {
				fa /= 2
			}
			side = 1
		} else {
			a, fa = c, fc
			if side == -1 {
				fb /= 2
			}
			side = -1
		}
	}
	return tx + math.Exp(b)
}

// ExpectedPurchases returns the expected number of purchases in the next t
// time units of a customer with Summary s:
//
//	E[Y(t) | x, t_x, T] = (r+x)(β+T) / ((α+T)(s-1)) · [1 - ((β+T)/(β+T+t))^(s-1)] · P(alive)
//
// with the bracket over s-1 taken as ln((β+T+t)/(β+T)) at s = 1. For the
// zero Summary it is E[X(t)] = rβ/(α(s-1)) · [1 - (β/(β+t))^(s-1)].
func (m ParetoNBD) ExpectedPurchases(s Summary, t float64) float64 {
	if !(t > 0) {
		return 0
	}
	e := m.scale(s) * m.PAlive(s) * m.bracket(s.T, t)
	if !(e > 0) {
		return 0
	}
	return e
}

// scale is (r+x)(β+T)/(α+T).
func (m ParetoNBD) scale(s Summary) float64 {
	return (m.R + float64(s.X)) * (m.Beta + s.T) / (m.Alpha + s.T)
}

// bracket is [1 - ((β+T)/(β+T+t))^(s-1)] / (s-1).
func (m ParetoNBD) bracket(T, t float64) float64 {
	l := math.Log1p(t / (m.Beta + T))
	if m.S == 1 {
		return l
	}
	return -math.Expm1(-(m.S-1)*l) / (m.S - 1)
}

// pmfNodes is the number of Gauss-Legendre nodes of PMF's integral over
// the lifetime.
const pmfNodes = 64

// PMF returns P(X(t) = x) for a customer observed for t from the first
// purchase. Given a lifetime τ, X is negative binomial NB(r, α/(α+min(τ,
// t))); τ has the Pareto (Lomax) survival (β/(β+τ))^s, so
//
//	P(X(t)=x) = (β/(β+t))^s NB(x; t) + ∫_0^t s β^s/(β+τ)^(s+1) NB(x; τ) dτ
//
// with the integral by Gauss-Legendre quadrature. Unlike the other
// per-customer functions it allocates (the quadrature's nodes): it serves
// population summaries (RepeatHistogram), not the scoring path.
func (m ParetoNBD) PMF(x int64, t float64) float64 {
	if x < 0 || !(t > 0) {
		if x == 0 {
			return 1
		}
		return 0
	}
	xf := float64(x)
	lgRX, _ := math.Lgamma(m.R + xf)
	lgR, _ := math.Lgamma(m.R)
	lgX1, _ := math.Lgamma(xf + 1)
	lc := lgRX - lgR - lgX1
	nb := func(tau float64) float64 {
		l := lc + m.R*math.Log(m.Alpha/(m.Alpha+tau))
		if x > 0 {
			l += xf * math.Log(tau/(m.Alpha+tau))
		}
		return math.Exp(l)
	}
	alive := math.Pow(m.Beta/(m.Beta+t), m.S) * nb(t)
	dead := quad.Fixed(func(tau float64) float64 {
		return m.S * math.Pow(m.Beta, m.S) / math.Pow(m.Beta+tau, m.S+1) * nb(tau)
	}, 0, t, pmfNodes, quad.Legendre{}, 0)
	return alive + dead
}

// RepeatHistogram is BGNBD.RepeatHistogram for Pareto/NBD.
func (m ParetoNBD) RepeatHistogram(ts []float64, n int) []float64 {
	return histogram(ts, n, m.PMF)
}

// ParetoNBDFit is the result of FitParetoNBD.
type ParetoNBDFit struct {
	// Params are the maximum-likelihood estimates.
	Params ParetoNBD
	// StdErr holds the asymptotic standard error of each parameter; NaN
	// where the information matrix is not positive definite.
	StdErr ParetoNBD
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

// FitParetoNBD fits Pareto/NBD to the customers' summaries by maximum
// likelihood, with the checks and errors of FitBGNBD. The gradient is
// taken by central differences (the likelihood's 2F1 has no cheap
// derivative in its parameters), so a fit costs about nine likelihood
// evaluations per optimiser step.
func FitParetoNBD(data []Summary) (*ParetoNBDFit, error) {
	sums := make([]Summary, len(data))
	var sumX, sumT float64
	repeat := 0
	for i, s := range data {
		if err := s.check(); err != nil {
			return nil, fmt.Errorf("fit paretonbd: customer %d: %w", i, err)
		}
		if s.X == 0 {
			s.Tx = 0
		} else {
			repeat++
		}
		sums[i] = s
		sumX += float64(s.X)
		sumT += s.T
	}
	if repeat < MinRepeatBuyers {
		return nil, fmt.Errorf("fit paretonbd: %d of %d customers made a repeat purchase, want at least %d: %w",
			repeat, len(data), MinRepeatBuyers, ErrTooFewRepeatBuyers)
	}
	if sumT == 0 {
		return nil, fmt.Errorf("fit paretonbd: every customer has T = 0: %w", ErrInvalidData)
	}
	ll := func(p []float64) float64 {
		m := ParetoNBD{R: p[0], Alpha: p[1], S: p[2], Beta: p[3]}
		out := parallelSum(chunks(len(sums)), 1, func(ch int, acc []float64) {
			lo, hi := chunkRange(ch, len(sums))
			for _, s := range sums[lo:hi] {
				acc[0] += m.LogLikelihood(s)
			}
		})
		return out[0]
	}
	obj := func(p, grad []float64) float64 {
		q := make([]float64, len(p))
		for i := range p {
			h := 1e-6 * p[i]
			copy(q, p)
			q[i] = p[i] + h
			up := ll(q)
			q[i] = p[i] - h
			grad[i] = (up - ll(q)) / (2 * h)
		}
		return ll(p)
	}
	// Start from r = 1, s = 1, beta = the mean T, and the alpha that
	// matches the mean purchase rate.
	p0 := []float64{1, sumT / max(1, sumX), 1, sumT / float64(len(sums))}
	res, err := maximise(obj, p0, len(sums), []string{"r", "alpha", "s", "beta"})
	if err != nil {
		return nil, fmt.Errorf("fit paretonbd: %w", err)
	}
	return &ParetoNBDFit{
		Params:        ParetoNBD{R: res.params[0], Alpha: res.params[1], S: res.params[2], Beta: res.params[3]},
		StdErr:        ParetoNBD{R: res.stdErr[0], Alpha: res.stdErr[1], S: res.stdErr[2], Beta: res.stdErr[3]},
		LogLikelihood: res.ll,
		Customers:     len(sums),
		RepeatBuyers:  repeat,
		Iterations:    res.iterations,
		Evaluations:   res.evaluations,
	}, nil
}
