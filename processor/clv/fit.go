package clv

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mathext"
)

// BGNBDFit is the result of FitBGNBD.
type BGNBDFit struct {
	// Params are the maximum-likelihood estimates.
	Params BGNBD
	// StdErr holds the asymptotic standard error of each parameter, from the
	// observed information matrix; NaN where it is not positive definite.
	StdErr BGNBD
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

// bgData is FitBGNBD's compact form of the summaries: the terms that depend
// only on x are computed once per distinct x.
type bgData struct{ countData }

// countData is the compact form of the summaries that the BG/NBD and
// MBG/NBD likelihoods take: the terms that depend only on x are computed
// once per distinct x.
type countData struct {
	n      int
	zeroT  []float64 // T of the customers with x = 0, when kept apart
	xs     []float64 // distinct x (0 too, unless kept apart)
	counts []float64 // customers per distinct x
	xi     []int32   // per customer in xs: index into xs
	tx, t  []float64 // per customer in xs
	// sumX and sumT start the fit; repeat counts the customers with x > 0.
	sumX, sumT float64
	repeat     int
}

// newCountData checks data and builds its compact form for the model
// named name. With zeroApart the customers with x = 0 go to zeroT (BG/NBD
// treats them apart); otherwise they join xs with t_x = 0. It returns the
// errors FitBGNBD documents, but ErrNotConverged.
func newCountData(name string, data []Summary, zeroApart bool) (countData, error) {
	d := countData{n: len(data)}
	index := map[int64]int32{}
	for i, s := range data {
		if err := s.check(); err != nil {
			return d, fmt.Errorf("fit %s: customer %d: %w", name, i, err)
		}
		d.sumT += s.T
		d.sumX += float64(s.X)
		tx := s.Tx
		if s.X == 0 {
			if zeroApart {
				d.zeroT = append(d.zeroT, s.T)
				continue
			}
			tx = 0
		} else {
			d.repeat++
		}
		k, ok := index[s.X]
		if !ok {
			k = int32(len(d.xs))
			index[s.X] = k
			d.xs = append(d.xs, float64(s.X))
			d.counts = append(d.counts, 0)
		}
		d.counts[k]++
		d.xi = append(d.xi, k)
		d.tx = append(d.tx, tx)
		d.t = append(d.t, s.T)
	}
	if d.repeat < MinRepeatBuyers {
		return d, fmt.Errorf("fit %s: %d of %d customers made a repeat purchase, want at least %d: %w",
			name, d.repeat, len(data), MinRepeatBuyers, ErrTooFewRepeatBuyers)
	}
	if d.sumT == 0 {
		return d, fmt.Errorf("fit %s: every customer has T = 0: %w", name, ErrInvalidData)
	}
	return d, nil
}

// FitBGNBD fits BG/NBD to the customers' summaries by maximum likelihood.
// Every summary must be valid (X >= 0, 0 <= Tx <= T, finite), else the error
// wraps ErrInvalidData; Tx is ignored when X is 0. It returns an error
// wrapping ErrTooFewRepeatBuyers when fewer than MinRepeatBuyers customers
// have X > 0, and one wrapping ErrNotConverged when no finite maximum is
// found.
func FitBGNBD(data []Summary) (*BGNBDFit, error) {
	cd, err := newCountData("bgnbd", data, true)
	if err != nil {
		return nil, err
	}
	d := &bgData{cd}
	// Start from r = 1, a = b = 1 (a mean dropout probability of 1/2) and
	// the alpha that matches the mean observed purchase rate, r/alpha.
	p0 := []float64{1, d.sumT / d.sumX, 1, 1}
	res, err := maximise(d.logLikelihood, p0, d.n, []string{"r", "alpha", "a", "b"})
	if err != nil {
		return nil, fmt.Errorf("fit bgnbd: %w", err)
	}
	return &BGNBDFit{
		Params:        BGNBD{R: res.params[0], Alpha: res.params[1], A: res.params[2], B: res.params[3]},
		StdErr:        BGNBD{R: res.stdErr[0], Alpha: res.stdErr[1], A: res.stdErr[2], B: res.stdErr[3]},
		LogLikelihood: res.ll,
		Customers:     d.n,
		RepeatBuyers:  d.repeat,
		Iterations:    res.iterations,
		Evaluations:   res.evaluations,
	}, nil
}

// logLikelihood returns the BG/NBD log-likelihood of d at p = (r, alpha,
// a, b) and stores its gradient in grad. With A1 = lnΓ(r+x) - lnΓ(r) +
// r ln α, A2 = ln B(a, b+x) - ln B(a, b), A3 = -(r+x) ln(α+T) and A4 =
// ln a - ln(b+x-1) - (r+x) ln(α+t_x), a customer contributes A1 + A2 + A3
// when x = 0 and A1 + A2 + ln(e^A3 + e^A4) otherwise.
func (d *bgData) logLikelihood(p, grad []float64) float64 {
	r, alpha, a, b := p[0], p[1], p[2], p[3]
	lnAlpha, lnA := math.Log(alpha), math.Log(a)
	lgR, _ := math.Lgamma(r)
	lgB, _ := math.Lgamma(b)
	lgAB, _ := math.Lgamma(a + b)
	psiR, psiB, psiAB := mathext.Digamma(r), mathext.Digamma(b), mathext.Digamma(a+b)

	// Terms of x alone: A1 and A2 for every customer. The x = 0 customers
	// have A1 = r ln α and A2 = 0.
	nz := float64(len(d.zeroT))
	ll := nz * r * lnAlpha
	var gr, galpha, ga, gb float64
	gr += nz * lnAlpha
	galpha += nz * r / alpha
	// Per distinct x > 0: c = ln a - ln(b+x-1) and 1/(b+x-1) for A4.
	c := make([]float64, len(d.xs))
	inv := make([]float64, len(d.xs))
	for k, x := range d.xs {
		n := d.counts[k]
		lgRX, _ := math.Lgamma(r + x)
		lgBX, _ := math.Lgamma(b + x)
		lgABX, _ := math.Lgamma(a + b + x)
		psiABX := mathext.Digamma(a + b + x)
		ll += n * (lgRX - lgR + r*lnAlpha + lgBX - lgB - lgABX + lgAB)
		gr += n * (mathext.Digamma(r+x) - psiR + lnAlpha)
		galpha += n * r / alpha
		ga += n * (psiAB - psiABX)
		gb += n * (mathext.Digamma(b+x) - psiB - psiABX + psiAB)
		inv[k] = 1 / (b + x - 1)
		c[k] = lnA + math.Log(inv[k])
	}

	// Per customer: A3, or ln(e^A3 + e^A4). Accumulators: ll, d/dr,
	// d/dalpha, sum of w4 (for d/da), sum of w4/(b+x-1) (for d/db).
	nZeroChunks := chunks(len(d.zeroT))
	nRepChunks := chunks(len(d.xi))
	sums := parallelSum(nZeroChunks+nRepChunks, 5, func(ch int, acc []float64) {
		if ch < nZeroChunks {
			lo, hi := chunkRange(ch, len(d.zeroT))
			var sl, sinv float64
			for _, t := range d.zeroT[lo:hi] {
				sl += math.Log(alpha + t)
				sinv += 1 / (alpha + t)
			}
			acc[0] = -r * sl
			acc[1] = -sl
			acc[2] = -r * sinv
			return
		}
		lo, hi := chunkRange(ch-nZeroChunks, len(d.xi))
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

// GammaGammaFit is the result of FitGammaGamma.
type GammaGammaFit struct {
	// Params are the maximum-likelihood estimates.
	Params GammaGamma
	// StdErr holds the asymptotic standard error of each parameter; NaN
	// where the information matrix is not positive definite.
	StdErr GammaGamma
	// LogLikelihood is the maximised log-likelihood of the mean spends.
	LogLikelihood float64
	// Customers is the number of spends fitted (all with X > 0).
	Customers int
	// Iterations and Evaluations count the optimiser's major iterations
	// and likelihood evaluations.
	Iterations  int
	Evaluations int
}

// ggData is FitGammaGamma's compact form of the spends.
type ggData struct {
	n      int
	xs     []float64 // distinct x
	counts []float64 // customers per distinct x
	x, m   []float64 // per customer
	// Constant sums: Σ x (ln m + ln x) and Σ ln m.
	k1, k0 float64
}

// FitGammaGamma fits the Gamma-Gamma model to the spends of customers with
// a repeat purchase by maximum likelihood. Every spend must have X > 0 and
// a positive, finite Mean, else the error wraps ErrInvalidData (leave out
// the customers without a repeat purchase and those whose mean is not
// positive). It returns an error wrapping ErrTooFewRepeatBuyers for fewer
// than MinRepeatBuyers spends, and one wrapping ErrNotConverged when no
// finite maximum is found. When the fitted q is at most 1 it returns the
// fit together with an error wrapping ErrQNotAboveOne.
func FitGammaGamma(data []Spend) (*GammaGammaFit, error) {
	d := &ggData{n: len(data)}
	index := map[int64]int{}
	var sumM float64
	for i, s := range data {
		if s.X <= 0 || !(s.Mean > 0) || math.IsInf(s.Mean, 1) {
			return nil, fmt.Errorf("fit gamma-gamma: customer %d: x = %d, mean spend = %v, want x > 0 and a positive finite mean: %w",
				i, s.X, s.Mean, ErrInvalidData)
		}
		x := float64(s.X)
		k, ok := index[s.X]
		if !ok {
			k = len(d.xs)
			index[s.X] = k
			d.xs = append(d.xs, x)
			d.counts = append(d.counts, 0)
		}
		d.counts[k]++
		d.x = append(d.x, x)
		d.m = append(d.m, s.Mean)
		lm := math.Log(s.Mean)
		d.k1 += x * (lm + math.Log(x))
		d.k0 += lm
		sumM += s.Mean
	}
	if d.n < MinRepeatBuyers {
		return nil, fmt.Errorf("fit gamma-gamma: %d customers with a repeat purchase, want at least %d: %w",
			d.n, MinRepeatBuyers, ErrTooFewRepeatBuyers)
	}
	// Start from p = 1, q = 2 and the gamma that matches the mean spend,
	// p·gamma/(q-1).
	p0 := []float64{1, 2, sumM / float64(d.n)}
	res, err := maximise(d.logLikelihood, p0, d.n, []string{"p", "q", "gamma"})
	if err != nil {
		return nil, fmt.Errorf("fit gamma-gamma: %w", err)
	}
	fit := &GammaGammaFit{
		Params:        GammaGamma{P: res.params[0], Q: res.params[1], Gamma: res.params[2]},
		StdErr:        GammaGamma{P: res.stdErr[0], Q: res.stdErr[1], Gamma: res.stdErr[2]},
		LogLikelihood: res.ll,
		Customers:     d.n,
		Iterations:    res.iterations,
		Evaluations:   res.evaluations,
	}
	if fit.Params.Q <= 1 {
		return fit, fmt.Errorf("fit gamma-gamma: q = %.4g: %w", fit.Params.Q, ErrQNotAboveOne)
	}
	return fit, nil
}

// logLikelihood returns the Gamma-Gamma log-likelihood of d at p = (p, q,
// gamma) and stores its gradient in grad. A customer contributes
// lnΓ(px+q) - lnΓ(px) - lnΓ(q) + q ln γ + (px-1) ln m + px ln x -
// (px+q) ln(γ+xm).
func (d *ggData) logLikelihood(par, grad []float64) float64 {
	p, q, gamma := par[0], par[1], par[2]
	n := float64(d.n)
	lgQ, _ := math.Lgamma(q)
	lnG := math.Log(gamma)
	ll := n*(q*lnG-lgQ) + p*d.k1 - d.k0
	gp := d.k1
	gq := n * (lnG - mathext.Digamma(q))
	gg := n * q / gamma
	for k, x := range d.xs {
		c := d.counts[k]
		lg1, _ := math.Lgamma(p*x + q)
		lg2, _ := math.Lgamma(p * x)
		psi1 := mathext.Digamma(p*x + q)
		ll += c * (lg1 - lg2)
		gp += c * x * (psi1 - mathext.Digamma(p*x))
		gq += c * psi1
	}
	sums := parallelSum(chunks(d.n), 3, func(ch int, acc []float64) {
		lo, hi := chunkRange(ch, d.n)
		var s0, s1, s2 float64
		for j := lo; j < hi; j++ {
			x := d.x[j]
			v := gamma + x*d.m[j]
			l := math.Log(v)
			s0 += l
			s1 += x * l
			s2 += (p*x + q) / v
		}
		acc[0], acc[1], acc[2] = s0, s1, s2
	})
	// Σ (px+q) ln(γ+xm) = p Σ x ln(γ+xm) + q Σ ln(γ+xm).
	ll -= p*sums[1] + q*sums[0]
	grad[0] = gp - sums[1]
	grad[1] = gq - sums[0]
	grad[2] = gg - sums[2]
	return ll
}
