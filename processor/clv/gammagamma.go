package clv

import (
	"fmt"
	"math"
)

// GammaGamma holds the three parameters of the Gamma-Gamma spend model. The
// value of each of a customer's purchases is z ~ Gamma(P, rate nu), and
// nu ~ Gamma(Q, rate Gamma) across customers. Gamma is in the money unit of
// the spends it was fitted on; P and Q carry no unit.
type GammaGamma struct {
	P     float64 `json:"p" yaml:"p"`
	Q     float64 `json:"q" yaml:"q"`
	Gamma float64 `json:"gamma" yaml:"gamma"`
}

// Spend is one customer's Gamma-Gamma data: the number X of repeat
// purchases and their mean value.
type Spend struct {
	X    int64
	Mean float64
}

// Validate reports an error wrapping ErrInvalidParams unless every
// parameter is positive and finite and Q > 1 (without which the mean spend
// is undefined).
func (m GammaGamma) Validate() error {
	if err := checkPositive(ErrInvalidParams, "gamma_gamma", []string{"p", "q", "gamma"}, []float64{m.P, m.Q, m.Gamma}); err != nil {
		return err
	}
	if m.Q <= 1 {
		return fmt.Errorf("gamma_gamma q = %v: %w", m.Q, ErrQNotAboveOne)
	}
	return nil
}

// MeanSpend returns the population mean value of a purchase, P·Gamma/(Q-1):
// the expected spend of a customer with no repeat purchase. It is +Inf for
// Q <= 1.
func (m GammaGamma) MeanSpend() float64 {
	if m.Q <= 1 {
		return math.Inf(1)
	}
	return m.P * m.Gamma / (m.Q - 1)
}

// ExpectedSpend returns the expected value of a future purchase of a
// customer whose x repeat purchases averaged mean:
//
//	E[Z | x, mean] = p (γ + x·mean) / (p·x + q - 1)
//
// a weighted average of MeanSpend (weight (q-1)/(px+q-1)) and mean. With
// x = 0, or a mean that is not positive (no usable observation), it is
// MeanSpend.
func (m GammaGamma) ExpectedSpend(x int64, mean float64) float64 {
	if x <= 0 || !(mean > 0) {
		return m.MeanSpend()
	}
	xf := float64(x)
	return m.P * (m.Gamma + xf*mean) / (m.P*xf + m.Q - 1)
}

// LogLikelihood returns the log density of a mean spend under the model,
// for a customer with x > 0 repeat purchases:
//
//	f(mean | x) = Γ(px+q) / (Γ(px) Γ(q)) · γ^q mean^(px-1) x^(px) / (γ + x·mean)^(px+q)
//
// It is NaN for x <= 0 or mean <= 0.
func (m GammaGamma) LogLikelihood(x int64, mean float64) float64 {
	if x <= 0 || !(mean > 0) {
		return math.NaN()
	}
	xf := float64(x)
	px := m.P * xf
	lg1, _ := math.Lgamma(px + m.Q)
	lg2, _ := math.Lgamma(px)
	lg3, _ := math.Lgamma(m.Q)
	return lg1 - lg2 - lg3 + m.Q*math.Log(m.Gamma) + (px-1)*math.Log(mean) + px*math.Log(xf) - (px+m.Q)*math.Log(m.Gamma+xf*mean)
}
