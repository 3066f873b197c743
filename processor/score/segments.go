package score

import (
	"cmp"
	"slices"

	"valora/processor/clv"
	"valora/schemas"
)

// Segments totals what customers are worth and what their relationships
// cost, per tier and value class and per treatment, over the horizon of the
// policy's models (12 months without models), so that an analyst sees where
// a relationship costs more than its customers are worth. Add customers as
// evaluated under the policy that made it; it is not safe for concurrent
// use.
type Segments struct {
	p             *Policy
	horizonMonths float64
	byTierClass   map[[2]string]*SegmentRow
	byTreatment   map[string]*SegmentRow
}

// SegmentRow is one segment's totals; money in minor units of the base
// currency. CLVMinor and NetMinor are nil without models.
type SegmentRow struct {
	Tier         string `json:"tier,omitempty"`
	ValueClass   string `json:"value_class,omitempty"` // "none" for no class
	Treatment    string `json:"treatment,omitempty"`
	Relationship string `json:"relationship,omitempty"`
	Customers    int    `json:"customers"`
	// MonetaryMinor is the customers' net monetary value to date.
	MonetaryMinor int64 `json:"monetary_minor"`
	// CLVMinor is their summed discounted lifetime value over the horizon.
	CLVMinor *float64 `json:"clv_minor"`
	// CostMinor is their relationships' cost over the horizon.
	CostMinor float64 `json:"cost_minor"`
	// NetMinor is CLVMinor minus CostMinor.
	NetMinor *float64 `json:"clv_minus_cost_minor"`
}

// SegmentReport is the totals of a Segments, each list sorted by its keys.
type SegmentReport struct {
	// HorizonMonths is the period the CLV and the costs cover.
	HorizonMonths float64      `json:"horizon_months"`
	ByTierClass   []SegmentRow `json:"by_tier_and_value_class"`
	ByTreatment   []SegmentRow `json:"by_treatment"`
}

// daysPerMonth is the mean month of a 365.25-day year.
const daysPerMonth = 365.25 / 12

// NewSegments returns empty totals under p.
func (p *Policy) NewSegments() *Segments {
	pc := p.compiled()
	months := 12.0
	if pc.model != nil {
		months = pc.model.Horizon * float64(pc.unitMs) / (daysPerMonth * float64(DayMs))
	}
	return &Segments{p: p, horizonMonths: months, byTierClass: map[[2]string]*SegmentRow{}, byTreatment: map[string]*SegmentRow{}}
}

// Add counts c, whose derived fields (tier, value class, treatment) are
// p's at c.EvaluatedAt. value, if not nil, is the models' evaluation of c
// then (an Outcome's Value, when Valued), which spares evaluating them
// again; nil evaluates them.
func (s *Segments) Add(c *schemas.Customer, value *clv.Value) {
	pc := s.p.compiled()
	class := ClassNone
	if c.ValueClass != nil {
		class = *c.ValueClass
	}
	var cost float64
	tr := pc.treatmentFor(c)
	if tr != nil {
		cost = float64(tr.costMinor) * s.horizonMonths
	}
	var clvMinor float64
	if pc.model != nil && c.Purchases > 0 {
		if value == nil {
			v := pc.model.Evaluate(pc.summary(c, c.EvaluatedAt), pc.meanSpend(c))
			value = &v
		}
		clvMinor = value.CLV * pc.minorPerMajor
	}
	add := func(r *SegmentRow) {
		r.Customers++
		r.MonetaryMinor += c.MonetaryMinor
		r.CostMinor += cost
		if pc.model != nil {
			if r.CLVMinor == nil {
				r.CLVMinor, r.NetMinor = new(float64), new(float64)
			}
			*r.CLVMinor += clvMinor
			*r.NetMinor = *r.CLVMinor - r.CostMinor
		}
	}
	k := [2]string{c.Tier, class}
	r := s.byTierClass[k]
	if r == nil {
		r = &SegmentRow{Tier: c.Tier, ValueClass: class}
		s.byTierClass[k] = r
	}
	add(r)
	name, rel := c.Treatment, ""
	if tr != nil {
		rel = tr.relationship
	}
	r = s.byTreatment[name]
	if r == nil {
		r = &SegmentRow{Treatment: name, Relationship: rel}
		s.byTreatment[name] = r
	}
	add(r)
}

// Report returns the totals so far.
func (s *Segments) Report() SegmentReport {
	out := SegmentReport{HorizonMonths: s.horizonMonths, ByTierClass: []SegmentRow{}, ByTreatment: []SegmentRow{}}
	for _, r := range s.byTierClass {
		out.ByTierClass = append(out.ByTierClass, *r)
	}
	for _, r := range s.byTreatment {
		out.ByTreatment = append(out.ByTreatment, *r)
	}
	slices.SortFunc(out.ByTierClass, func(a, b SegmentRow) int {
		return cmp.Or(cmp.Compare(a.Tier, b.Tier), cmp.Compare(a.ValueClass, b.ValueClass))
	})
	slices.SortFunc(out.ByTreatment, func(a, b SegmentRow) int { return cmp.Compare(a.Treatment, b.Treatment) })
	return out
}
