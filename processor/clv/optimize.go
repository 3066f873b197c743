package clv

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize"
)

// MinRepeatBuyers is the fewest customers with a repeat purchase (x > 0)
// that FitBGNBD and FitGammaGamma accept.
const MinRepeatBuyers = 10

// Optimiser settings. The objective is the negative mean log-likelihood per
// customer over the log-parameters, so the thresholds do not depend on the
// number of customers.
const (
	// gradTol stops the optimiser when every component of the gradient of
	// the mean log-likelihood is below it: at that point the parameters are
	// within about 1e-7 (relative) of the maximum for well-conditioned fits.
	gradTol = 1e-9
	// acceptGradTol is the largest gradient accepted when the line search
	// cannot improve any further (rounding noise near the maximum).
	acceptGradTol = 1e-5
	// maxIterations bounds the BFGS iterations.
	maxIterations = 1000
	// maxLogParam bounds |ln(parameter)|: a parameter beyond e^±25 has run
	// off towards 0 or infinity, and the data support no finite estimate.
	maxLogParam = 25
	// hessStep is the step in log-parameters of the central differences
	// that give the information matrix.
	hessStep = 1e-4
)

// chunkSize is the number of customers summed by one task of a
// likelihood evaluation. It is fixed, not derived from the number of CPUs,
// so the summation order and hence the result do not depend on it.
const chunkSize = 8192

// objective evaluates a log-likelihood and its gradient with respect to the
// model's natural parameters, at natural parameters p.
type objective func(p, grad []float64) float64

// fitResult is what maximise returns.
type fitResult struct {
	params      []float64
	stdErr      []float64
	ll          float64
	iterations  int
	evaluations int
}

// maximise maximises ll (a log-likelihood over n observations) over
// positive parameters, starting from p0, with BFGS on the log-parameters.
func maximise(ll objective, p0 []float64, n int, names []string) (*fitResult, error) {
	dim := len(p0)
	scale := 1 / float64(n)
	p := make([]float64, dim)
	g := make([]float64, dim)
	var (
		lastX []float64
		lastF float64
		lastG = make([]float64, dim)
		evals int
	)
	// eval computes -ll/n and its gradient in log-parameters at theta,
	// caching the last point: gonum asks for the value and the gradient
	// separately, while the pass over the data gives both.
	eval := func(theta []float64) {
		if lastX != nil && slices.Equal(theta, lastX) {
			return
		}
		evals++
		for i, t := range theta {
			p[i] = math.Exp(t)
		}
		f := ll(p, g)
		lastX = append(lastX[:0], theta...)
		lastF = -f * scale
		for i := range g {
			lastG[i] = -g[i] * p[i] * scale
		}
		if math.IsNaN(lastF) {
			lastF = math.Inf(1)
		}
	}
	prob := optimize.Problem{
		Func: func(theta []float64) float64 {
			eval(theta)
			return lastF
		},
		Grad: func(grad, theta []float64) {
			eval(theta)
			copy(grad, lastG)
		},
	}
	theta0 := make([]float64, dim)
	for i, v := range p0 {
		theta0[i] = math.Log(v)
	}
	settings := &optimize.Settings{
		GradientThreshold: gradTol,
		MajorIterations:   maxIterations,
		Converger:         &optimize.FunctionConverge{Absolute: 1e-15, Relative: 1e-15, Iterations: 50},
	}
	res, err := optimize.Minimize(prob, theta0, settings, &optimize.BFGS{})
	if res == nil {
		return nil, fmt.Errorf("optimise: %v: %w", err, ErrNotConverged)
	}
	out := &fitResult{
		params:      make([]float64, dim),
		ll:          -res.F / scale,
		iterations:  res.Stats.MajorIterations,
		evaluations: evals,
	}
	for i, t := range res.X {
		out.params[i] = math.Exp(t)
		if math.Abs(t) > maxLogParam {
			return nil, fmt.Errorf("%s ran off to %v after %d iterations (the data support no finite estimate): %w",
				names[i], out.params[i], out.iterations, ErrNotConverged)
		}
	}
	gnorm := 0.0
	for _, v := range res.Gradient {
		gnorm = max(gnorm, math.Abs(v))
	}
	if math.IsNaN(res.F) || math.IsInf(res.F, 0) {
		return nil, fmt.Errorf("log-likelihood %v at the optimiser's last point: %w", -res.F/scale, ErrNotConverged)
	}
	// The optimiser stops at a small gradient, at no further improvement
	// (then the gradient is rounding noise), or at a failure or the
	// iteration limit: only a small gradient makes a maximum.
	if gnorm > acceptGradTol {
		why := res.Status.String()
		if err != nil {
			why = err.Error()
		}
		return nil, fmt.Errorf("optimiser stopped (%s) with gradient %.3g after %d iterations: %w",
			why, gnorm, out.iterations, ErrNotConverged)
	}
	out.stdErr = stdErrors(ll, out.params)
	return out, nil
}

// stdErrors returns the asymptotic standard errors of the parameters at
// the maximum p: the inverse of the observed information matrix, computed
// in log-parameters by central differences of the analytic gradient and
// mapped back with the delta method. An entry is NaN when the matrix is
// not positive definite.
func stdErrors(ll objective, p []float64) []float64 {
	dim := len(p)
	se := make([]float64, dim)
	for i := range se {
		se[i] = math.NaN()
	}
	// Gradient in log-parameters: d ll / d ln p_i = p_i d ll / d p_i.
	gradAt := func(theta []float64, out []float64) {
		q := make([]float64, dim)
		for i, t := range theta {
			q[i] = math.Exp(t)
		}
		ll(q, out)
		for i := range out {
			out[i] *= q[i]
		}
	}
	theta := make([]float64, dim)
	for i, v := range p {
		theta[i] = math.Log(v)
	}
	h := mat.NewSymDense(dim, nil)
	gp, gm := make([]float64, dim), make([]float64, dim)
	cols := make([][]float64, dim)
	for j := range dim {
		tp, tm := slices.Clone(theta), slices.Clone(theta)
		tp[j] += hessStep
		tm[j] -= hessStep
		gradAt(tp, gp)
		gradAt(tm, gm)
		cols[j] = make([]float64, dim)
		for i := range dim {
			cols[j][i] = -(gp[i] - gm[i]) / (2 * hessStep) // information = -Hessian
		}
	}
	for i := range dim {
		for j := i; j < dim; j++ {
			h.SetSym(i, j, (cols[i][j]+cols[j][i])/2)
		}
	}
	var chol mat.Cholesky
	if !chol.Factorize(h) {
		return se
	}
	var cov mat.SymDense
	if err := chol.InverseTo(&cov); err != nil {
		return se
	}
	for i := range dim {
		if v := cov.At(i, i); v > 0 {
			se[i] = p[i] * math.Sqrt(v)
		}
	}
	return se
}

// parallelSum runs part(i, acc) for every chunk i in 0..n-1 on up to
// GOMAXPROCS goroutines, each chunk adding into its own accumulator of
// width w, and returns the accumulators summed in chunk order, so that the
// result does not depend on scheduling.
func parallelSum(n, w int, part func(i int, acc []float64)) []float64 {
	accs := make([]float64, n*w)
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			part(i, accs[i*w:(i+1)*w])
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					part(i, accs[i*w:(i+1)*w])
				}
			})
		}
		wg.Wait()
	}
	total := make([]float64, w)
	for i := range n {
		for k := range w {
			total[k] += accs[i*w+k]
		}
	}
	return total
}

// chunks returns the number of chunkSize chunks covering n items.
func chunks(n int) int { return (n + chunkSize - 1) / chunkSize }

// chunkRange returns the bounds of chunk i of n items.
func chunkRange(i, n int) (lo, hi int) { return i * chunkSize, min((i+1)*chunkSize, n) }
