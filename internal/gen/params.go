package gen

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// MaxCustomers is the largest population a Generator simulates. Customer
// ids have a fixed width of eight digits up to this size.
const MaxCustomers = 100_000_000

// MaxSpan bounds simulated time: no event occurs at or after Start+MaxSpan.
// It is the effective horizon when Params.Horizon is 0, and keeps every
// event time within int64 milliseconds and every run finite (under BG/NBD a
// few customers have dropout probabilities so small that they would buy for
// centuries).
const MaxSpan = 100 * 365 * 24 * time.Hour

// Days per week, for converting weekly model fits to the daily time unit.
const daysPerWeek = 7

// Params describe a synthetic customer base. The time unit of every rate
// is the day. DefaultParams gives a complete, valid set; the zero Params is
// not valid.
type Params struct {
	// Customers is the population size, 1..MaxCustomers. Customer i has the
	// id "c" followed by i in eight zero-padded digits ("c00000042").
	Customers int
	// Seed selects the random streams. The same Params give the same events.
	Seed uint64
	// Start is the beginning of simulated event time.
	Start time.Time
	// Horizon ends the simulation: only events before Start+Horizon are
	// generated. 0 means MaxSpan, which in practice is "until every
	// customer has dropped out and stopped interacting".
	Horizon time.Duration
	// ArrivalDays spreads the customers' first touches uniformly over
	// [Start, Start+ArrivalDays). 0 puts every first touch at Start.
	ArrivalDays float64

	// R and Alpha are the shape and rate (per day) of the Gamma
	// distribution of the purchase rate lambda (purchases per day while
	// alive). A fit made with weeks as the unit keeps R and multiplies
	// Alpha by 7.
	R, Alpha float64
	// A and B are the Beta distribution of the dropout probability p: after
	// each repeat purchase a customer becomes inactive with probability p.
	A, B float64

	// P, Q and Gamma are the Gamma-Gamma spend model: nu ~ Gamma(Q, rate
	// Gamma) per customer and each purchase's value z ~ Gamma(P, rate nu),
	// in major units of the base currency (Currencies[0]). The population
	// mean of z is P*Gamma/(Q-1) when Q > 1.
	P, Q, Gamma float64

	// ProspectShare is the fraction of customers who interact but never buy.
	ProspectShare float64
	// LeadDays is the mean (exponential) time from a buyer's first touch,
	// an interaction, to the first purchase. It applies only when
	// InteractionRate > 0; otherwise the first touch is the first purchase.
	LeadDays float64
	// InteractionRate is the mean number of interactions per day of an
	// engaged customer, spread over every channel. Each customer's own rate
	// is InteractionRate times a Gamma(2, rate 2) factor (mean 1). 0 turns
	// interactions off.
	InteractionRate float64
	// EngagementDays is the mean time (exponential) over which a customer
	// keeps interacting, from the first touch. Interactions also stop when
	// the customer drops out. Must be positive when InteractionRate > 0.
	EngagementDays float64
	// ComplaintShare is the fraction of interactions that are negative: a
	// "complaint" on the drawn channel, or on the SURVEY channel a
	// survey_response with a satisfaction of 0..4.
	ComplaintShare float64
	// RefundShare is the probability that a purchase is refunded later
	// (between 1 and about 30 days after, see the package documentation).
	RefundShare float64
	// Currencies are drawn uniformly for each purchase. Currencies[0] is the
	// base currency of the spend model; an amount drawn in another currency
	// is converted with the fixed reference rates of ReferenceRate, so the
	// base-currency value follows the model up to rounding to minor units.
	// Nil or empty means ["USD"]. Every code must be known to ReferenceRate.
	Currencies []string
	// Skew concentrates activity on few customers, for benchmarks that need
	// hot keys: customer i's purchase and interaction rates are multiplied
	// by (i+1)^-Skew, normalised so that the population mean factor is 1
	// (so customer 0 is the hottest). 0 is the pure model.
	Skew float64
}

// DefaultParams returns a CDNOW-like customer base: the BG/NBD and
// Gamma-Gamma estimates published for the CDNOW sample (r=0.243,
// alpha=4.414 per week, a=0.793, b=2.426; p=6.25, q=3.74, gamma=15.44 in
// US dollars), with alpha converted to the daily unit (4.414*7 = 30.898),
// a 12-week arrival cohort observed for 78 weeks from 2024-01-01 UTC,
// 10,000 customers, 5% prospects, an interaction about every ten days over
// about half a year of engagement, 3% negative interactions and 5% refunds.
func DefaultParams() Params {
	return Params{
		Customers:       10_000,
		Seed:            1,
		Start:           time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		Horizon:         78 * daysPerWeek * 24 * time.Hour,
		ArrivalDays:     12 * daysPerWeek,
		R:               0.243,
		Alpha:           4.414 * daysPerWeek,
		A:               0.793,
		B:               2.426,
		P:               6.25,
		Q:               3.74,
		Gamma:           15.44,
		ProspectShare:   0.05,
		LeadDays:        3,
		InteractionRate: 0.1,
		EngagementDays:  180,
		ComplaintShare:  0.03,
		RefundShare:     0.05,
		Currencies:      []string{"USD"},
		Skew:            0,
	}
}

// FieldError reports an invalid Params field.
type FieldError struct {
	// Field is the name of the Params field, such as "Alpha".
	Field string
	// Reason says what is wrong.
	Reason string
}

// Error returns "gen: Params.<Field> <Reason>".
func (e *FieldError) Error() string {
	return "gen: Params." + e.Field + " " + e.Reason
}

// Validate reports every invalid field, each as a *FieldError, joined with
// errors.Join; nil means New accepts p.
func (p Params) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	positive := func(field string, v float64) {
		if !finite(v) || v <= 0 {
			bad(field, "must be positive and finite, got %v", v)
		}
	}
	nonNegative := func(field string, v float64) {
		if !finite(v) || v < 0 {
			bad(field, "must be non-negative and finite, got %v", v)
		}
	}
	share := func(field string, v float64) {
		if !(v >= 0 && v <= 1) {
			bad(field, "must be in [0, 1], got %v", v)
		}
	}

	if p.Customers < 1 || p.Customers > MaxCustomers {
		bad("Customers", "must be in [1, %d], got %d", MaxCustomers, p.Customers)
	}
	if p.Horizon < 0 || p.Horizon > MaxSpan {
		bad("Horizon", "must be in [0, %v], got %v", MaxSpan, p.Horizon)
	}
	if y := p.Start.Year(); y < 1 || y > 100_000 {
		bad("Start", "must be a year in [1, 100000], got %v", p.Start)
	}
	nonNegative("ArrivalDays", p.ArrivalDays)
	if p.ArrivalDays > MaxSpan.Hours()/24 {
		bad("ArrivalDays", "must not exceed MaxSpan (%v days), got %v", MaxSpan.Hours()/24, p.ArrivalDays)
	}
	positive("R", p.R)
	positive("Alpha", p.Alpha)
	positive("A", p.A)
	positive("B", p.B)
	positive("P", p.P)
	positive("Q", p.Q)
	positive("Gamma", p.Gamma)
	share("ProspectShare", p.ProspectShare)
	nonNegative("LeadDays", p.LeadDays)
	nonNegative("InteractionRate", p.InteractionRate)
	if p.InteractionRate > 0 {
		positive("EngagementDays", p.EngagementDays)
	} else {
		nonNegative("EngagementDays", p.EngagementDays)
	}
	share("ComplaintShare", p.ComplaintShare)
	share("RefundShare", p.RefundShare)
	if len(p.Currencies) > 255 {
		bad("Currencies", "must list at most 255 codes, got %d", len(p.Currencies))
	}
	seen := make(map[string]bool, len(p.Currencies))
	for _, c := range p.Currencies {
		if _, _, ok := ReferenceRate(c); !ok {
			bad("Currencies", "has unknown currency %q", c)
		}
		if seen[c] {
			bad("Currencies", "lists %q twice", c)
		}
		seen[c] = true
	}
	if !(p.Skew >= 0 && p.Skew <= 4) {
		bad("Skew", "must be in [0, 4], got %v", p.Skew)
	}
	return errors.Join(errs...)
}

// currencies returns p.Currencies with the default applied.
func (p Params) currencies() []string {
	if len(p.Currencies) == 0 {
		return []string{"USD"}
	}
	return p.Currencies
}
