package clv

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mathext"
)

// BGNBD holds the four parameters of the BG/NBD model. While active, a
// customer buys as a Poisson process of rate lambda, lambda ~ Gamma(R,
// rate Alpha) across customers; after each repeat purchase the customer
// drops out with probability p, p ~ Beta(A, B) across customers. Alpha is
// per time unit of the data it was fitted on; R, A and B carry no unit.
type BGNBD struct {
	R     float64 `json:"r" yaml:"r"`
	Alpha float64 `json:"alpha" yaml:"alpha"`
	A     float64 `json:"a" yaml:"a"`
	B     float64 `json:"b" yaml:"b"`
}

// Validate reports an error wrapping ErrInvalidParams unless every
// parameter is positive and finite.
func (m BGNBD) Validate() error {
	return checkPositive(ErrInvalidParams, "bgnbd", []string{"r", "alpha", "a", "b"}, []float64{m.R, m.Alpha, m.A, m.B})
}

func checkPositive(sentinel error, model string, names []string, vals []float64) error {
	for i, v := range vals {
		if !(v > 0) || math.IsInf(v, 1) {
			return fmt.Errorf("%s %s = %v, want positive and finite: %w", model, names[i], v, sentinel)
		}
	}
	return nil
}

// LogLikelihood returns the log-likelihood of one customer's Summary:
//
//	L = B(a, b+x)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+T)^(r+x))
//	  + [x > 0] B(a+1, b+x-1)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+t_x)^(r+x))
//
// computed in log space.
func (m BGNBD) LogLikelihood(s Summary) float64 {
	x := float64(s.X)
	lgRX, _ := math.Lgamma(m.R + x)
	lgR, _ := math.Lgamma(m.R)
	a1 := lgRX - lgR + m.R*math.Log(m.Alpha)
	a2 := lbeta(m.A, m.B+x) - lbeta(m.A, m.B)
	a3 := -(m.R + x) * math.Log(m.Alpha+s.T)
	if s.X == 0 {
		return a1 + a2 + a3
	}
	a4 := math.Log(m.A) - math.Log(m.B+x-1) - (m.R+x)*math.Log(m.Alpha+s.Tx)
	return a1 + a2 + logAddExp(a3, a4)
}

// PAlive returns the probability that a customer with Summary s is still
// active at the end of s's observation (T):
//
//	P(alive) = 1 / (1 + [x > 0] a/(b+x-1) · ((α+T)/(α+t_x))^(r+x))
//
// It is 1 for x = 0 (under BG/NBD a customer can only drop out right after
// a repeat purchase), lies in [0, 1], and falls as T grows with x and t_x
// fixed.
func (m BGNBD) PAlive(s Summary) float64 {
	if s.X == 0 {
		return 1
	}
	x := float64(s.X)
	k := math.Log(m.A/(m.B+x-1)) + (m.R+x)*math.Log1p((s.T-s.Tx)/(m.Alpha+s.Tx))
	return 1 / (1 + math.Exp(k))
}

// PAliveFallsBelow returns the observation time T (in the model's unit,
// from the first purchase) from which P(alive) of a customer with x > 0
// repeat purchase days, the last at tx, is below threshold (in (0, 1)):
// the inverse of PAlive in T,
//
//	T* = t_x + (α+t_x) · expm1((ln(1/θ - 1) - ln(a/(b+x-1))) / (r+x))
//
// It returns t_x when P(alive) is below the threshold right after the last
// purchase, and +Inf when it never falls below it (x = 0, or a threshold
// out of (0, 1)). PAlive falls strictly as T grows, so for any T > T*,
// PAlive < threshold, up to rounding in the last bits.
func (m BGNBD) PAliveFallsBelow(x int64, tx, threshold float64) float64 {
	if x <= 0 || !(threshold > 0 && threshold < 1) {
		return math.Inf(1)
	}
	xf := float64(x)
	k := math.Log(1/threshold-1) - math.Log(m.A/(m.B+xf-1))
	if k <= 0 {
		return tx
	}
	return tx + (m.Alpha+tx)*math.Expm1(k/(m.R+xf))
}

// ExpectedPurchases returns the expected number of purchases in the next t
// time units of a customer with Summary s (the conditional expectation
// E[Y(t) | x, t_x, T]):
//
//	(a+b+x-1)/(a-1) · [1 - ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x-1; t/(α+T+t))] · P(alive)
//
// evaluated in the overflow-free form of the package documentation. It is
// finite and non-negative, 0 for t <= 0. For a new customer (the zero
// Summary) it is the unconditional expectation E[X(t)].
func (m BGNBD) ExpectedPurchases(s Summary, t float64) float64 {
	if !(t > 0) {
		return 0
	}
	x := float64(s.X)
	at := m.Alpha + s.T
	e := (m.A + m.B + x - 1) * m.bracket(x, t, at) * m.PAlive(s)
	if !(e > 0) {
		return 0 // rounding below zero for a negligible expectation
	}
	return e
}

// bracket returns [1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)] / (a-1)
// for z = t/(at+t), at = α+T.
func (m BGNBD) bracket(x, t, at float64) float64 {
	z := t / (at + t)
	l := -math.Log1p(t / at) // ln(1-z)
	return hypBracket(m.A+m.B-1-m.R, m.A-1, m.A+m.B+x-1, z, l)
}

// bracketBlock is the most times brackets takes at once.
const bracketBlock = 16

// brackets stores bracket(x, ts[k], at) in out[k] for up to bracketBlock
// increasing times ts, summing the series of every point in one pass: the
// coefficients are shared, only the powers of z differ.
func (m BGNBD) brackets(x, at float64, ts, out []float64) {
	hypBrackets(m.A+m.B-1-m.R, m.A-1, m.A+m.B+x-1, at, ts, out)
}

// hypBrackets stores hypBracket(a, b, c, z_k, ln(1-z_k)) in out[k] for up
// to bracketBlock increasing times ts, z_k = ts[k]/(at+ts[k]), summing the
// series of every point in one pass: the coefficients are shared, only the
// powers of z differ.
func hypBrackets(a, b, c, at float64, ts, out []float64) {
	n := len(ts)
	if n == 0 {
		return
	}
	if n == 1 || ts[n-1]/(at+ts[n-1]) > seriesMaxZ {
		for k, t := range ts {
			out[k] = hypBracket(a, b, c, t/(at+t), -math.Log1p(t/at))
		}
		return
	}
	var z, pw, s [bracketBlock]float64
	coef := a / c
	for k, t := range ts {
		z[k] = t / (at + t)
		pw[k] = z[k]
		s[k] = coef * z[k]
	}
	// lo is the first point whose series has not converged yet; the points
	// with smaller z converge first.
	lo := 0
	for i := 1.0; i < seriesMaxTerms; i++ {
		coef *= (a + i) * (b + i) / ((c + i) * (i + 1))
		for k := lo; k < n; k++ {
			pw[k] *= z[k]
			s[k] += coef * pw[k]
		}
		for lo < n && math.Abs(coef*pw[lo]) <= 0x1p-53*math.Abs(s[lo]) {
			lo++
		}
		if lo == n {
			break
		}
	}
	for k, t := range ts {
		l := -math.Log1p(t / at)
		e := math.Exp(b * l)
		var first float64
		switch bl := b * l; {
		case b == 0:
			first = -l
		case math.Abs(bl) > 0.5: // 1-e loses no digits: save the expm1
			first = (1 - e) / b
		default:
			first = -math.Expm1(bl) / b
		}
		out[k] = first - e*s[k]
	}
}

// Series limits of hypBracket.
const (
	// seriesMaxZ is the largest z summed by the series; beyond it the
	// terms shrink too slowly and mathext.Hypergeo's transformations take
	// over.
	seriesMaxZ = 0.98
	// seriesMaxTerms bounds the series (reached only for z close to
	// seriesMaxZ with slowly decaying coefficients).
	seriesMaxTerms = 100_000
	// hypergeoMinB is the smallest |b| for which (1 - (1-z)^b F)/b is taken
	// from mathext.Hypergeo's F without losing more than a few digits.
	hypergeoMinB = 1e-6
)

// hypBracket returns (1 - (1-z)^b 2F1(a, b; c; z)) / b for 0 <= z < 1
// and c not a non-positive integer, with l = ln(1-z) given accurately by
// the caller. Writing 2F1 = 1 + b·S with
//
//	S = Σ_{n>=1} (a)_n (b+1)_(n-1) z^n / ((c)_n n!)
//
// gives -expm1(b·l)/b - exp(b·l)·S, which has no 0/0 at b = 0.
func hypBracket(a, b, c, z, l float64) float64 {
	if z > seriesMaxZ && math.Abs(b) >= hypergeoMinB {
		f := mathext.Hypergeo(a, b, c, z)
		if f > 0 {
			return -math.Expm1(b*l+math.Log(f)) / b
		}
		return (1 - math.Exp(b*l)*f) / b // c < 0 (a+b+x < 1) can make f negative
	}
	var first float64
	if b == 0 {
		first = -l
	} else {
		first = -math.Expm1(b*l) / b
	}
	term := a * z / c
	s := term
	for n := 1.0; n < seriesMaxTerms && math.Abs(term) > 0x1p-53*math.Abs(s); n++ {
		term *= (a + n) * (b + n) * z / ((c + n) * (n + 1))
		s += term
	}
	return first - math.Exp(b*l)*s
}

// PMF returns the probability that a customer observed for t time units
// from the first purchase makes exactly x repeat purchases, P(X(t) = x):
//
//	B(a, b+x)/B(a, b) · NB(x; r, α/(α+t))
//	  + [x > 0] B(a+1, b+x-1)/B(a, b) · P(NB(r, α/(α+t)) >= x)
//
// where NB is the negative binomial of the Poisson-Gamma mixture.
func (m BGNBD) PMF(x int64, t float64) float64 {
	if x < 0 {
		return 0
	}
	xf := float64(x)
	lp := m.R * math.Log(m.Alpha/(m.Alpha+t)) // ln P(NB = 0)
	lq := math.Log(t / (m.Alpha + t))
	// ln NB(x) = lnΓ(r+x) - lnΓ(r) - lnΓ(x+1) + r ln p + x ln q.
	lgRX, _ := math.Lgamma(m.R + xf)
	lgR, _ := math.Lgamma(m.R)
	lgX1, _ := math.Lgamma(xf + 1)
	lnb := lgRX - lgR - lgX1 + lp
	if x > 0 {
		lnb += xf * lq
	}
	p := math.Exp(lbeta(m.A, m.B+xf) - lbeta(m.A, m.B) + lnb)
	if x == 0 {
		return p
	}
	// P(NB >= x) = 1 - Σ_{j<x} NB(j), summed by the ratio NB(j+1)/NB(j).
	below, nb := 0.0, math.Exp(lp)
	q := t / (m.Alpha + t)
	for j := int64(0); j < x; j++ {
		below += nb
		nb *= (m.R + float64(j)) / float64(j+1) * q
	}
	tail := max(0, 1-below)
	return p + math.Exp(lbeta(m.A+1, m.B+xf-1)-lbeta(m.A, m.B))*tail
}

// lbeta returns ln B(a, b) for positive a and b.
func lbeta(a, b float64) float64 {
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	return la + lb - lab
}

// logAddExp returns ln(e^a + e^b).
func logAddExp(a, b float64) float64 {
	if a < b {
		a, b = b, a
	}
	return a + math.Log1p(math.Exp(b-a))
}
