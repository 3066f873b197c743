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

// CountModel names the model of purchases and drop-out of a Model.
type CountModel string

// The count models.
const (
	// CountBGNBD is BG/NBD (Model.BGNBD), the default: a customer can drop
	// out only after a repeat purchase, so a one-time buyer's P(alive) is 1.
	CountBGNBD CountModel = "bgnbd"
	// CountMBGNBD is MBG/NBD (Model.MBGNBD): a customer can also drop out
	// at the first purchase.
	CountMBGNBD CountModel = "mbgnbd"
	// CountParetoNBD is Pareto/NBD (Model.ParetoNBD): a customer drops out
	// at any time, bought or not.
	CountParetoNBD CountModel = "paretonbd"
)

// ParseCountModel returns the CountModel named s.
func ParseCountModel(s string) (CountModel, error) {
	switch c := CountModel(s); c {
	case CountBGNBD, CountMBGNBD, CountParetoNBD:
		return c, nil
	}
	return "", fmt.Errorf("model %q: want bgnbd, mbgnbd or paretonbd", s)
}

// Model is a fitted customer-base model ready for per-customer
// evaluation: a count model (BG/NBD, MBG/NBD or Pareto/NBD), Gamma-Gamma, and how to
// discount their product into a customer lifetime value. Its fields are what a policy stores; Validate
// checks them and precomputes the discount table, and must succeed before
// Evaluate or CLV is called (they panic otherwise). A validated Model is
// read-only and safe for concurrent use.
type Model struct {
	// Unit is the time unit of Horizon, of the summaries passed to
	// Evaluate, and of BGNBD.Alpha.
	Unit TimeUnit `json:"time_unit" yaml:"time_unit"`
	// Count is the count model: CountBGNBD (also when empty, as in
	// policies written before there was a choice), CountMBGNBD or
	// CountParetoNBD.
	Count CountModel `json:"model,omitempty" yaml:"model,omitempty"`
	// BGNBD, MBGNBD and ParetoNBD hold the parameters of the count models;
	// the one Count names is required. GammaGamma holds the spend model's.
	BGNBD      BGNBD      `json:"bgnbd" yaml:"bgnbd,omitempty"`
	MBGNBD     *MBGNBD    `json:"mbgnbd,omitempty" yaml:"mbgnbd,omitempty"`
	ParetoNBD  *ParetoNBD `json:"paretonbd,omitempty" yaml:"paretonbd,omitempty"`
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
	kind     countKind // the count model
	times    []float64 // end of each period, in Unit
	discount []float64 // discount factor of each period
}

// Validate checks every field and precomputes the discount table. The
// error wraps ErrInvalidParams (or ErrQNotAboveOne for Gamma-Gamma).
func (m *Model) Validate() error {
	if !m.Unit.Valid() {
		return fmt.Errorf("model time_unit %q: want day or week: %w", m.Unit, ErrInvalidParams)
	}
	kind := kindBGNBD
	switch m.Count {
	case "", CountBGNBD:
		if err := m.BGNBD.Validate(); err != nil {
			return fmt.Errorf("model: %w", err)
		}
	case CountMBGNBD:
		if m.MBGNBD == nil {
			return fmt.Errorf("model mbgnbd: parameters missing: %w", ErrInvalidParams)
		}
		if err := m.MBGNBD.Validate(); err != nil {
			return fmt.Errorf("model: %w", err)
		}
		kind = kindMBGNBD
	case CountParetoNBD:
		if m.ParetoNBD == nil {
			return fmt.Errorf("model paretonbd: parameters missing: %w", ErrInvalidParams)
		}
		if err := m.ParetoNBD.Validate(); err != nil {
			return fmt.Errorf("model: %w", err)
		}
		kind = kindParetoNBD
	default:
		return fmt.Errorf("model %q: want bgnbd, mbgnbd or paretonbd: %w", m.Count, ErrInvalidParams)
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
	c := &modelTables{kind: kind, times: make([]float64, steps), discount: make([]float64, steps)}
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
		PAlive:        m.pAlive(c, s),
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
	if c.kind == kindParetoNBD {
		return m.discountedPareto(c, s, pAlive)
	}
	x := float64(s.X)
	// The bracket of ExpectedPurchases: BG/NBD's, or MBG/NBD's (b+1 for b).
	var at, scale, ha, hb, hc float64
	if c.kind == kindMBGNBD {
		b := m.MBGNBD
		at, scale = b.Alpha+s.T, (b.A+b.B+x)*pAlive
		ha, hb, hc = b.A+b.B-b.R, b.A-1, b.A+b.B+x
	} else {
		b := &m.BGNBD
		at, scale = b.Alpha+s.T, (b.A+b.B+x-1)*pAlive
		ha, hb, hc = b.A+b.B-1-b.R, b.A-1, b.A+b.B+x-1
	}
	prev := 0.0
	var br [bracketBlock]float64
	for lo := 0; lo < len(c.times); lo += bracketBlock {
		hi := min(lo+bracketBlock, len(c.times))
		hypBrackets(ha, hb, hc, at, c.times[lo:hi], br[:hi-lo])
		for k, v := range br[:hi-lo] {
			e := max(scale*v, prev) // E[Y(t)] never decreases
			disc += (e - prev) * c.discount[lo+k]
			prev = e
		}
	}
	return prev, disc
}

// discountedPareto is discounted for Pareto/NBD, whose expectation has a
// closed form.
func (m *Model) discountedPareto(c *modelTables, s Summary, pAlive float64) (total, disc float64) {
	p := m.ParetoNBD
	scale := p.scale(s) * pAlive
	prev := 0.0
	for k, t := range c.times {
		e := max(scale*p.bracket(s.T, t), prev)
		disc += (e - prev) * c.discount[k]
		prev = e
	}
	return prev, disc
}

// countKind is a validated Model's count model, for dispatch.
type countKind uint8

const (
	kindBGNBD countKind = iota
	kindMBGNBD
	kindParetoNBD
)

// pAlive is PAlive with the tables at hand.
func (m *Model) pAlive(c *modelTables, s Summary) float64 {
	switch c.kind {
	case kindMBGNBD:
		return m.MBGNBD.PAlive(s)
	case kindParetoNBD:
		return m.ParetoNBD.PAlive(s)
	}
	return m.BGNBD.PAlive(s)
}

// PAlive returns the count model's P(alive) for Summary s (BGNBD.PAlive or
// MBGNBD.PAlive). It does not allocate.
func (m *Model) PAlive(s Summary) float64 { return m.pAlive(m.tables(), s) }

// PAliveFallsBelow returns the count model's PAliveFallsBelow: the
// observation time from which P(alive) of a customer with x repeat
// purchase days, the last at tx, is below threshold; +Inf for never.
func (m *Model) PAliveFallsBelow(x int64, tx, threshold float64) float64 {
	switch m.tables().kind {
	case kindMBGNBD:
		return m.MBGNBD.PAliveFallsBelow(x, tx, threshold)
	case kindParetoNBD:
		return m.ParetoNBD.PAliveFallsBelow(x, tx, threshold)
	}
	return m.BGNBD.PAliveFallsBelow(x, tx, threshold)
}

// ExpectedPurchases returns the count model's conditional expectation of
// the purchases in the next t time units (BGNBD.ExpectedPurchases or
// MBGNBD.ExpectedPurchases); for the zero Summary, E[X(t)].
func (m *Model) ExpectedPurchases(s Summary, t float64) float64 {
	switch m.tables().kind {
	case kindMBGNBD:
		return m.MBGNBD.ExpectedPurchases(s, t)
	case kindParetoNBD:
		return m.ParetoNBD.ExpectedPurchases(s, t)
	}
	return m.BGNBD.ExpectedPurchases(s, t)
}

// OneTimeBuyersDrop reports whether a customer without a repeat purchase
// can have P(alive) below 1: true under MBG/NBD and Pareto/NBD, false
// under BG/NBD.
func (m *Model) OneTimeBuyersDrop() bool { return m.tables().kind != kindBGNBD }

// RepeatHistogram returns the count model's expected number of customers
// with 0..n-1 and n or more repeat purchases, for observation times ts
// (see BGNBD.RepeatHistogram).
func (m *Model) RepeatHistogram(ts []float64, n int) []float64 {
	switch m.tables().kind {
	case kindMBGNBD:
		return m.MBGNBD.RepeatHistogram(ts, n)
	case kindParetoNBD:
		return m.ParetoNBD.RepeatHistogram(ts, n)
	}
	return m.BGNBD.RepeatHistogram(ts, n)
}
