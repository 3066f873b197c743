package clv

import (
	"fmt"
	"math"
)

// TimeUnit is the unit of every time in a model: Summary.Tx, Summary.T,
// horizons and BGNBD.Alpha.
type TimeUnit string

// The time units.
const (
	Day  TimeUnit = "day"
	Week TimeUnit = "week"
)

// Milliseconds per unit.
const (
	dayMs  = 86_400_000
	weekMs = 7 * dayMs
)

// DaysPerYear is the length of the year used to turn an annual discount
// rate into a rate per time unit.
const DaysPerYear = 365.25

// ParseTimeUnit returns the TimeUnit named s ("day" or "week").
func ParseTimeUnit(s string) (TimeUnit, error) {
	switch u := TimeUnit(s); u {
	case Day, Week:
		return u, nil
	}
	return "", fmt.Errorf("time unit %q: want day or week", s)
}

// Valid reports whether u is Day or Week.
func (u TimeUnit) Valid() bool { return u == Day || u == Week }

// Millis returns the length of u in milliseconds, or 0 for an invalid unit.
func (u TimeUnit) Millis() int64 {
	switch u {
	case Day:
		return dayMs
	case Week:
		return weekMs
	}
	return 0
}

// PerYear returns the number of units in a year of DaysPerYear days, or 0
// for an invalid unit.
func (u TimeUnit) PerYear() float64 {
	if ms := u.Millis(); ms > 0 {
		return DaysPerYear * dayMs / float64(ms)
	}
	return 0
}

// Span returns the time from fromMs to toMs (Unix milliseconds) in u.
func (u TimeUnit) Span(fromMs, toMs int64) float64 {
	return float64(toMs-fromMs) / float64(u.Millis())
}

// Summary is one customer's BG/NBD calibration data; see the package
// documentation for the conventions. Tx and T are in the model's TimeUnit.
type Summary struct {
	// X is the number of repeat purchase days.
	X int64
	// Tx is the time from the first purchase to the last one (0 when X is 0).
	Tx float64
	// T is the time from the first purchase to the end of the calibration
	// period (or, when a model is applied, to the evaluation time).
	T float64
}

// SummaryAt builds a customer's Summary at time atMs from what valora keeps
// per customer: the repeat purchase days x and the times of the first and
// the last purchase (Unix milliseconds, as in schemas.Customer). Tx is 0
// when x is 0, whatever lastMs says (purchases on the first day are merged
// into it). Times after atMs are clamped to atMs.
func SummaryAt(x, firstMs, lastMs, atMs int64, u TimeUnit) Summary {
	lastMs = min(lastMs, atMs)
	firstMs = min(firstMs, lastMs)
	s := Summary{X: x, T: u.Span(firstMs, atMs)}
	if x > 0 {
		s.Tx = u.Span(firstMs, lastMs)
	}
	return s
}

// check reports whether s is a valid Summary: X >= 0 and 0 <= Tx <= T,
// all finite.
func (s Summary) check() error {
	switch {
	case s.X < 0:
		return fmt.Errorf("x = %d is negative: %w", s.X, ErrInvalidData)
	case !(s.T >= 0) || math.IsInf(s.T, 1):
		return fmt.Errorf("observation time T = %v is not finite and non-negative: %w", s.T, ErrInvalidData)
	case !(s.Tx >= 0) || s.Tx > s.T:
		return fmt.Errorf("t_x = %v is not in [0, T = %v]: %w", s.Tx, s.T, ErrInvalidData)
	}
	return nil
}
