package clv

import (
	"fmt"
	"math"
)

// Model limits.
const (
	// DefaultSteps is the number of discounting periods when Model.Steps
	// is 0.
	DefaultSteps = 12
	// MaxSteps bounds Model.Steps.
	MaxSteps = 120
	// MaxDiscountRate bounds Model.DiscountRate (an annual rate).
	MaxDiscountRate = 10.0
)

// Model is a fitted customer-base model ready for per-customer
// evaluation: BG/NBD, Gamma-Gamma, and how to discount their product into
// a customer lifetime value. Its fields are what a policy stores; Validate
// checks them and precomputes the discount table, and must succeed before
// Evaluate or CLV is called (they panic otherwise). A validated Model is
// read-only and safe for concurrent use.
type Model struct {
	// Unit is the time unit of Horizon, of the summaries passed to
	// Evaluate, and of BGNBD.Alpha.
	Unit TimeUnit `json:"time_unit" yaml:"time_unit"`
	// BGNBD and GammaGamma are the fitted parameters.
	BGNBD      BGNBD      `json:"bgnbd" yaml:"bgnbd"`
	GammaGamma GammaGamma `json:"gamma_gamma" yaml:"gamma_gamma"`
	// Horizon is the period, in Unit, over which Evaluate counts expected
	// purchases and value. > 0.
	Horizon float64 `json:"horizon" yaml:"horizon"`
	// DiscountRate is the annual discount rate of future value (0.1 is
	// 10% a year), in [0, MaxDiscountRate].
	DiscountRate float64 `json:"discount_rate" yaml:"discount_rate"`
	// Steps cuts the horizon into this many equal periods; the purchases
	// expected in a period are discounted from the period's end. 0 means
	// DefaultSteps; at most MaxSteps.
	Steps int `json:"steps,omitempty" yaml:"steps,omitempty"`

	c *modelTables // set by Validate
}

// modelTables is the precomputed part of a validated Model.
type modelTables struct {
	times    []float64 // end of each period, in Unit
	discount []float64 // discount factor of each period
}

// Validate checks every field and precomputes the discount table. The
// error wraps ErrInvalidParams (or ErrQNotAboveOne for Gamma-Gamma).
func (m *Model) Validate() error {
	if !m.Unit.Valid() {
		return fmt.Errorf("model time_unit %q: want day or week: %w", m.Unit, ErrInvalidParams)
	}
	if err := m.BGNBD.Validate(); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if err := m.GammaGamma.Validate(); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if !(m.Horizon > 0) || math.IsInf(m.Horizon, 1) {
		return fmt.Errorf("model horizon %v: want positive and finite: %w", m.Horizon, ErrInvalidParams)
	}
	if !(m.DiscountRate >= 0 && m.DiscountRate <= MaxDiscountRate) {
		return fmt.Errorf("model discount_rate %v: want 0..%v: %w", m.DiscountRate, MaxDiscountRate, ErrInvalidParams)
	}
	steps := m.Steps
	if steps == 0 {
		steps = DefaultSteps
	}
	if steps < 1 || steps > MaxSteps {
		return fmt.Errorf("model steps %d: want 0..%d: %w", m.Steps, MaxSteps, ErrInvalidParams)
	}
	c := &modelTables{times: make([]float64, steps), discount: make([]float64, steps)}
	perUnit := math.Log1p(m.DiscountRate) / m.Unit.PerYear() // continuous rate per unit
	for k := range steps {
		t := m.Horizon * float64(k+1) / float64(steps)
		c.times[k] = t
		c.discount[k] = math.Exp(-perUnit * t)
	}
	c.times[steps-1] = m.Horizon
	m.c = c
	return nil
}

func (m *Model) tables() *modelTables {
	if m.c == nil {
		panic("clv: model used before Validate succeeded")
	}
	return m.c
}

// Value is a customer's evaluation under a Model.
type Value struct {
	// PAlive is the probability that the customer is still active.
	PAlive float64
	// ExpectedPurchases is the expected number of purchases over the
	// model's horizon.
	ExpectedPurchases float64
	// ExpectedSpend is the expected value of one future purchase.
	ExpectedSpend float64
	// CLV is the expected value of the purchases over the horizon,
	// discounted at the model's rate.
	CLV float64
}

// Evaluate returns a customer's Value from its Summary (in the model's
// Unit, T measured to the evaluation time) and the mean value of its X
// repeat purchases (ignored when X is 0 or the mean is not positive: the
// population mean is used). It does not allocate.
func (m *Model) Evaluate(s Summary, meanSpend float64) Value {
	c := m.tables()
	v := Value{
		PAlive:        m.BGNBD.PAlive(s),
		ExpectedSpend: m.GammaGamma.ExpectedSpend(s.X, meanSpend),
	}
	v.ExpectedPurchases, v.CLV = m.discounted(c, s, v.PAlive)
	v.CLV *= v.ExpectedSpend
	return v
}

// CLV returns the discounted expected value of a customer's purchases over
// the model's horizon: Evaluate(s, meanSpend).CLV.
func (m *Model) CLV(s Summary, meanSpend float64) float64 {
	return m.Evaluate(s, meanSpend).CLV
}

// discounted returns the expected purchases over the horizon and their
// discounted count: Σ_k (E[Y(t_k)] - E[Y(t_(k-1))]) · discount_k.
func (m *Model) discounted(c *modelTables, s Summary, pAlive float64) (total, disc float64) {
	b := &m.BGNBD
	x := float64(s.X)
	at := b.Alpha + s.T
	scale := (b.A + b.B + x - 1) * pAlive
	prev := 0.0
	var br [bracketBlock]float64
	for lo := 0; lo < len(c.times); lo += bracketBlock {
		hi := min(lo+bracketBlock, len(c.times))
		b.brackets(x, at, c.times[lo:hi], br[:hi-lo])
		for k, v := range br[:hi-lo] {
			e := max(scale*v, prev) // E[Y(t)] never decreases
			disc += (e - prev) * c.discount[lo+k]
			prev = e
		}
	}
	return prev, disc
}
