package clv

import (
	"math"
	"slices"
)

// RepeatHistogram returns the number of customers the model expects to
// have made 0, 1, ..., n-1 and n or more repeat purchases, for customers
// observed for the times ts (each customer's T): out[x] = Σ_i P(X(T_i) = x)
// for x < n, and out[n] holds the rest. Compared with the observed counts
// it is the standard check of a BG/NBD fit. Customers with the same T
// share the work.
func (m BGNBD) RepeatHistogram(ts []float64, n int) []float64 {
	if n < 0 {
		return nil
	}
	out := make([]float64, n+1)
	// Per x: B(a, b+x)/B(a, b) and B(a+1, b+x-1)/B(a, b).
	lb := lbeta(m.A, m.B)
	stay := make([]float64, n)
	drop := make([]float64, n)
	for x := range n {
		xf := float64(x)
		stay[x] = math.Exp(lbeta(m.A, m.B+xf) - lb)
		if x > 0 {
			drop[x] = math.Exp(lbeta(m.A+1, m.B+xf-1) - lb)
		}
	}
	// Distinct times in increasing order, so the sums do not depend on map
	// order.
	sorted := slices.Clone(ts)
	slices.Sort(sorted)
	pmf := make([]float64, n)
	for i := 0; i < len(sorted); {
		t := sorted[i]
		j := i + 1
		for j < len(sorted) && sorted[j] == t {
			j++
		}
		c := float64(j - i)
		i = j
		// NB(j) = Γ(r+j)/(Γ(r) j!) p^r q^j, p = α/(α+t), q = t/(α+t);
		// below = P(NB < x).
		q := t / (m.Alpha + t)
		nb := math.Pow(m.Alpha/(m.Alpha+t), m.R)
		below := 0.0
		for x := range n {
			pmf[x] = stay[x] * nb
			if x > 0 {
				pmf[x] += drop[x] * max(0, 1-below)
			}
			below += nb
			nb *= (m.R + float64(x)) / float64(x+1) * q
			out[x] += c * pmf[x]
		}
	}
	total := float64(len(ts))
	for x := range n {
		total -= out[x]
	}
	out[n] = max(0, total)
	return out
}
