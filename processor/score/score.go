package score

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"valora/processor/clv"
	"valora/schemas"
)

// DayMs is one day in milliseconds, the unit of every window in a Policy.
const DayMs int64 = 24 * 60 * 60 * 1000

// MaxEventTime is the latest event time accepted: 9999-12-31T23:59:59.999Z
// in Unix milliseconds. The earliest is 1 (0 means "never" in a Customer).
const MaxEventTime int64 = 253402300799999

// The lifecycle stages.
const (
	StageProspect    = "prospect"
	StageNew         = "new"
	StageActive      = "active"
	StageAtRisk      = "at_risk"
	StageChurned     = "churned"
	StageReactivated = "reactivated"
)

// ErrInvalidEvent is returned (wrapped) by ApplyPurchase and
// ApplyInteraction for an event that cannot be applied: a time out of range,
// an unknown kind or channel, a negative amount or a refund of 0, a
// satisfaction score out of 0..10. Such an event is a dead-letter case; the customer is left
// unchanged.
var ErrInvalidEvent = errors.New("invalid event")

// Derived is the part of a Customer that a change is detected on: a change
// of any field produces a TierChange.
type Derived struct {
	Tier           string
	ChurnRisk      bool
	LifecycleStage string
	ValueClass     *string
	// Treatment is the treatment table's name for the customer; "" in
	// state written before treatments existed, which is not a change.
	Treatment string
}

// Equal reports whether d and o hold the same values (ValueClass compared by
// value).
func (d Derived) Equal(o Derived) bool {
	if d.Tier != o.Tier || d.ChurnRisk != o.ChurnRisk || d.LifecycleStage != o.LifecycleStage {
		return false
	}
	if d.Treatment != o.Treatment && d.Treatment != "" && o.Treatment != "" {
		return false
	}
	if d.ValueClass == nil || o.ValueClass == nil {
		return d.ValueClass == nil && o.ValueClass == nil
	}
	return *d.ValueClass == *o.ValueClass
}

// Outcome reports what an evaluation did.
type Outcome struct {
	// Changed is true when a Derived field changed, or on a customer's
	// first evaluation.
	Changed bool
	// Previous holds the Derived fields before the evaluation.
	Previous Derived
	// HadPrevious is false on a customer's first evaluation (Previous is
	// then empty).
	HadPrevious bool
	// Valued is true when Value holds the models' evaluation at the
	// evaluation time (money in major units of the base currency): always
	// when Changed under a policy with models for a customer with a
	// purchase, and at every evaluation of one when the policy has value
	// classes (which need the CLV). Otherwise the models do not run.
	Valued bool
	Value  clv.Value
}

func derivedOf(c *schemas.Customer) Derived {
	return Derived{Tier: c.Tier, ChurnRisk: c.ChurnRisk, LifecycleStage: c.LifecycleStage, ValueClass: c.ValueClass, Treatment: c.Treatment}
}

// ToBase converts amountMinor minor units of currency into minor units of
// the base currency, using the currency's rate and the ISO 4217 exponents of
// both currencies, rounding half away from zero. The base currency converts
// to itself exactly. It returns an error wrapping ErrUnknownCurrency for a
// currency that is neither the base currency nor in Rates, and one wrapping
// ErrOverflow when the result does not fit in an int64.
func (p *Policy) ToBase(amountMinor int64, currency string) (int64, error) {
	c := p.compiled()
	conv, ok := c.conv[currency]
	if !ok {
		return 0, fmt.Errorf("%w %q (base currency %s)", ErrUnknownCurrency, currency, c.base)
	}
	v, ok := conv.apply(amountMinor)
	if !ok {
		return 0, fmt.Errorf("convert %d %s minor units to %s: %w", amountMinor, currency, c.base, ErrOverflow)
	}
	return v, nil
}

func checkTime(kind string, t int64) error {
	if t < 1 || t > MaxEventTime {
		return fmt.Errorf("%w: %s occurred_at %d out of range 1..%d", ErrInvalidEvent, kind, t, MaxEventTime)
	}
	return nil
}

// ApplyPurchase applies a purchase or a refund to c and re-evaluates c at
// max(e.OccurredAt, c.EvaluatedAt). The event is checked first (time, kind,
// amount, channel, currency, that it is not a duplicate (see Dedup),
// and that the new total fits in an int64); on error c is left unchanged.
// Version grows by exactly one, and the event's id enters c's duplicate
// window.
//
// A PURCHASE of amount 0 (a free order: a promotion, a full discount, a
// sample) is valid: it counts for frequency and recency like any order and
// adds nothing to the monetary value. A REFUND of 0 is not: it would take
// nothing back yet count as a refund, which only a faulty producer sends.
func (p *Policy) ApplyPurchase(c *schemas.Customer, e *schemas.Purchase) (Outcome, error) {
	pc := p.compiled()
	t := e.OccurredAt
	if err := checkTime("purchase", t); err != nil {
		return Outcome{}, err
	}
	refund := false
	switch e.Kind {
	case schemas.KindPurchase:
	case schemas.KindRefund:
		refund = true
	default:
		return Outcome{}, fmt.Errorf("%w: unknown purchase kind %q", ErrInvalidEvent, e.Kind)
	}
	if e.AmountMinor < 0 || (refund && e.AmountMinor == 0) {
		return Outcome{}, fmt.Errorf("%w: %s amount_minor must be %s, got %d", ErrInvalidEvent, e.Kind, minAmount(refund), e.AmountMinor)
	}
	ch := schemas.ChannelIndex(e.Channel)
	if ch < 0 {
		return Outcome{}, fmt.Errorf("%w: unknown channel %q", ErrInvalidEvent, e.Channel)
	}
	base, err := p.ToBase(e.AmountMinor, e.Currency)
	if err != nil {
		return Outcome{}, fmt.Errorf("purchase: %w", err)
	}
	h, fresh, err := checkDuplicate(pc, c, kindPurchase, e.EventID)
	if err != nil {
		return Outcome{}, fmt.Errorf("purchase: %w", err)
	}
	monetary := c.MonetaryMinor
	if refund {
		if monetary < math.MinInt64+base {
			return Outcome{}, fmt.Errorf("purchase: monetary total: %w", ErrOverflow)
		}
		monetary -= base
	} else {
		if monetary > math.MaxInt64-base {
			return Outcome{}, fmt.Errorf("purchase: monetary total: %w", ErrOverflow)
		}
		monetary += base
	}

	// Valid: mutate.
	ensureChannels(c)
	seen(c, t)
	addCategory(pc, c, e.Category, base, refund)
	if refund {
		c.Refunds++
	} else {
		if reactivates(pc, c, t) {
			c.ReactivatedAt = t
		}
		addPurchaseDay(c, t)
		c.Purchases++
		c.PurchasesByChannel[ch]++
	}
	c.MonetaryMinor = monetary
	remember(pc, c, h, fresh)
	c.Version++
	return p.evaluate(c, t), nil
}

// minAmount names the smallest valid amount_minor of a purchase or a
// refund, for the error message.
func minAmount(refund bool) string {
	if refund {
		return "positive"
	}
	return "0 or more"
}

// reactivates reports whether a purchase at t ends a churn: the customer
// has bought before, the purchase is its latest activity, the customer was
// churned before it (by the stored stage, or by the inactivity gap up to t),
// and is not churned after it at the evaluation time.
func reactivates(pc *compiled, c *schemas.Customer, t int64) bool {
	if c.Purchases == 0 || t < c.LastActivity {
		return false
	}
	if c.LifecycleStage != StageChurned && t-c.LastActivity < pc.inactivityMs {
		return false
	}
	return max(t, c.EvaluatedAt)-t < pc.inactivityMs
}

// addPurchaseDay updates FirstPurchase, LastPurchase and RepeatDays for a
// purchase at t (before Purchases is incremented).
func addPurchaseDay(c *schemas.Customer, t int64) {
	if c.Purchases == 0 || c.FirstPurchase == 0 {
		c.FirstPurchase, c.LastPurchase = t, t
		return
	}
	d, first, last := t/DayMs, c.FirstPurchase/DayMs, c.LastPurchase/DayMs
	switch {
	case d > last:
		c.RepeatDays++ // a new day after every known one
	case d < first:
		c.RepeatDays++ // the old first day becomes a repeat day
	}
	// first <= d <= last: on the first or last day it merges; strictly
	// between them it is not counted, as the days in between are not kept.
	c.FirstPurchase = min(c.FirstPurchase, t)
	c.LastPurchase = max(c.LastPurchase, t)
}

// ApplyInteraction applies an interaction to c and re-evaluates c at
// max(e.OccurredAt, c.EvaluatedAt). The event is checked first (time,
// channel, satisfaction in 0..10 when set, not a duplicate (see Dedup)); on
// error c is left unchanged, and on success the event's id enters c's
// duplicate window.
// A complaint type (counted in Complaints) sets RiskUntil to at least t +
// risk.complaint_days unless a resolution at or after t is known; a
// resolution type (counted in ComplaintsResolved) ends the risk period of
// the complaints at or before it, lowering RiskUntil to what low scores
// and later complaints keep; a satisfaction score becomes LastSatisfaction
// if it is the latest, and one at or below risk.low_satisfaction sets
// RiskUntil to at least t + risk.risk_days; a consent type grants or
// withdraws the interaction's channel (see ContactableChannels). Version
// grows by exactly one.
func (p *Policy) ApplyInteraction(c *schemas.Customer, e *schemas.Interaction) (Outcome, error) {
	pc := p.compiled()
	t := e.OccurredAt
	if err := checkTime("interaction", t); err != nil {
		return Outcome{}, err
	}
	ch := schemas.ChannelIndex(e.Channel)
	if ch < 0 {
		return Outcome{}, fmt.Errorf("%w: unknown channel %q", ErrInvalidEvent, e.Channel)
	}
	if s := e.Satisfaction; s != nil && (*s < 0 || *s > maxSatisfaction) {
		return Outcome{}, fmt.Errorf("%w: interaction satisfaction %d out of range 0..%d", ErrInvalidEvent, *s, maxSatisfaction)
	}
	h, fresh, err := checkDuplicate(pc, c, kindInteraction, e.EventID)
	if err != nil {
		return Outcome{}, fmt.Errorf("interaction: %w", err)
	}

	ensureChannels(c)
	seen(c, t)
	c.InteractionsByChannel[ch]++
	if len(c.InteractionLastAt) < schemas.NumChannels {
		c.InteractionLastAt = append(c.InteractionLastAt, make([]int64, schemas.NumChannels-len(c.InteractionLastAt))...)
	}
	c.InteractionLastAt[ch] = max(c.InteractionLastAt[ch], t)
	var until int64
	switch {
	case slices.Contains(pc.complaints, e.Type):
		c.Complaints++
		c.LastComplaintAt = max(c.LastComplaintAt, t)
		if t > c.LastResolvedAt {
			// A complaint at or before the latest resolution was
			// resolved by it, whatever order they arrived in.
			until = t + pc.complaintMs
		}
	case slices.Contains(pc.resolutions, e.Type):
		c.ComplaintsResolved++
		if t > c.LastResolvedAt {
			c.LastResolvedAt = t
			// The complaints' risk ends; a low score's, or that of a
			// complaint after the resolution, runs on.
			c.RiskUntil = max(c.LowSatisfactionUntil, pc.complaintUntil(c))
		}
	case slices.Contains(pc.grantTypes, e.Type):
		setConsent(c, ch, t)
	case slices.Contains(pc.withdrawTypes, e.Type):
		setConsent(c, ch, -t)
	}
	if s := e.Satisfaction; s != nil {
		if t >= c.LastSatisfactionAt {
			c.LastSatisfaction, c.LastSatisfactionAt = *s, t
		}
		if *s <= pc.lowSat {
			c.LowSatisfactionUntil = max(c.LowSatisfactionUntil, t+pc.lowSatMs)
			until = max(until, t+pc.lowSatMs)
		}
	}
	c.RiskUntil = max(c.RiskUntil, until)
	remember(pc, c, h, fresh)
	c.Version++
	return p.evaluate(c, t), nil
}

// seen records activity at t.
func seen(c *schemas.Customer, t int64) {
	if c.FirstSeen == 0 || t < c.FirstSeen {
		c.FirstSeen = t
	}
	c.LastActivity = max(c.LastActivity, t)
}

// ensureChannels sizes the per-channel counters (allocating only for a
// customer that has none yet).
func ensureChannels(c *schemas.Customer) {
	if n := len(c.InteractionsByChannel); n < schemas.NumChannels {
		c.InteractionsByChannel = append(c.InteractionsByChannel, make([]int64, schemas.NumChannels-n)...)
	}
	if n := len(c.PurchasesByChannel); n < schemas.NumChannels {
		c.PurchasesByChannel = append(c.PurchasesByChannel, make([]int64, schemas.NumChannels-n)...)
	}
}

// Evaluate re-derives c at now (or at c.EvaluatedAt if that is later: the
// evaluation time never goes backwards) with no new event, as a timer does.
// It stores the scores, tier, churn flag and lifecycle stage, EvaluatedAt and
// PolicyVersion, and increments Version when the Outcome is Changed.
func (p *Policy) Evaluate(c *schemas.Customer, now int64) Outcome {
	o := p.evaluate(c, now)
	if o.Changed {
		c.Version++
	}
	return o
}

// evaluate is Evaluate without the Version increment.
func (p *Policy) evaluate(c *schemas.Customer, now int64) Outcome {
	pc := p.compiled()
	now = max(now, c.EvaluatedAt)
	o := Outcome{Previous: derivedOf(c), HadPrevious: c.EvaluatedAt != 0}
	s := pc.derive(c, now, true, 0)
	c.ValueClass = s.d.ValueClass
	c.RScore, c.FScore, c.MScore = s.r, s.f, s.m
	c.Tier, c.ChurnRisk, c.LifecycleStage = s.d.Tier, s.d.ChurnRisk, s.d.LifecycleStage
	c.Treatment = s.d.Treatment
	c.EvaluatedAt = now
	c.PolicyVersion = pc.version
	o.Changed = !o.HadPrevious || !o.Previous.Equal(s.d)
	if o.Changed && !s.valued && pc.model != nil && c.Purchases > 0 {
		// For the TierChange: without value classes the models run only
		// when something changed.
		s.valued, s.v = true, pc.model.Evaluate(pc.summary(c, now), pc.meanSpend(c))
	}
	o.Valued, o.Value = s.valued, s.v
	return o
}

type derivation struct {
	r, f, m int32
	d       Derived
	valued  bool      // v is set (by derive only with value classes)
	v       clv.Value // the models' evaluation, money in major units
}

// The value classes as shared, never modified strings: a Customer's
// ValueClass points at one of them (or at a decoded copy), which keeps the
// evaluation free of allocations.
var (
	classHighYield     = ClassHighYield
	classHighPotential = ClassHighPotential
	classBelowZero     = ClassBelowZero
)

// summary returns c's BG/NBD summary at now in the model's unit.
func (pc *compiled) summary(c *schemas.Customer, now int64) clv.Summary {
	return clv.SummaryAt(c.RepeatDays, c.FirstPurchase, c.LastPurchase, now, pc.model.Unit)
}

// meanSpend is the customer's mean purchase value in major units: net
// monetary value over purchases, the first one included (valora keeps
// totals, not each purchase; `valora calibrate` over a state directory fits
// Gamma-Gamma on the same quantity).
func (pc *compiled) meanSpend(c *schemas.Customer) float64 {
	if c.Purchases <= 0 || c.MonetaryMinor <= 0 {
		return 0
	}
	return float64(c.MonetaryMinor) / float64(c.Purchases) / pc.minorPerMajor
}

// classify returns the value class of a customer with net monetary value
// monetary and lifetime value clvMinor (see ValueClasses), nil for none.
func (pc *compiled) classify(monetary int64, clvMinor float64) *string {
	vc := pc.classes
	switch {
	case monetary <= 0 || clvMinor < vc.BelowZeroCLVMinor:
		return &classBelowZero
	case monetary >= vc.HighYieldMonetaryMinor && clvMinor >= vc.HighYieldCLVMinor:
		return &classHighYield
	case monetary < vc.HighYieldMonetaryMinor && clvMinor >= vc.HighPotentialCLVMinor:
		return &classHighPotential
	}
	return nil
}

// derive computes the scores and Derived fields of c at now without
// changing c. With value, it also evaluates the models (when the policy has
// value classes) and derives the value class from them; without, it carries
// c's stored value class, which only an evaluation with value changes.
// pAliveAt, when not 0, is the time P(alive) falls below the churn
// threshold (pAliveCrossing; -1 for never), which spares computing P(alive)
// at now.
func (pc *compiled) derive(c *schemas.Customer, now int64, value bool, pAliveAt int64) derivation {
	s := derivation{r: 1, f: scoreUp(c.Purchases, &pc.frequency), m: 1}
	s.d.ValueClass = c.ValueClass
	if value {
		s.d.ValueClass = nil
	}
	if c.MonetaryMinor > 0 {
		s.m = scoreUp(c.MonetaryMinor, &pc.monetary)
	}
	if c.Purchases == 0 {
		// Not scored: a customer who has not bought has no R, F or M.
		s.r, s.f, s.m = 0, 0, 0
		s.d.Tier = pc.prospect
		s.d.LifecycleStage = StageProspect
		s.d.Treatment = pc.treatmentName(c, now, s.d)
		return s
	}
	s.r = maxScore + 1 - scoreUp(recencyDays(now, c.LastPurchase), &pc.recency)
	s.d.Tier = pc.tiers[pc.grid[s.r-1][s.f-1][s.m-1]]
	idle := now - c.LastActivity
	s.d.ChurnRisk = idle >= pc.inactivityMs
	if pc.model != nil {
		if value && pc.classes != nil {
			s.valued = true
			s.v = pc.model.Evaluate(pc.summary(c, now), pc.meanSpend(c))
			s.d.ValueClass = pc.classify(c.MonetaryMinor, s.v.CLV*pc.minorPerMajor)
		}
		if pc.pAliveBelow > 0 && (c.RepeatDays > 0 || pc.oneTimeDrop) && !s.d.ChurnRisk {
			switch {
			case pAliveAt != 0:
				s.d.ChurnRisk = pAliveAt > 0 && now >= pAliveAt
			case s.valued:
				s.d.ChurnRisk = s.v.PAlive < pc.pAliveBelow
			default:
				s.d.ChurnRisk = pc.model.PAlive(pc.summary(c, now)) < pc.pAliveBelow
			}
		}
	}
	switch {
	case s.d.ChurnRisk:
		s.d.LifecycleStage = StageChurned
	case c.RiskUntil > now || idle >= pc.atRiskMs:
		s.d.LifecycleStage = StageAtRisk
	case c.ReactivatedAt != 0 && now-c.ReactivatedAt < pc.reactMs:
		s.d.LifecycleStage = StageReactivated
	case now-c.FirstPurchase < pc.newMs:
		s.d.LifecycleStage = StageNew
	default:
		s.d.LifecycleStage = StageActive
	}
	s.d.Treatment = pc.treatmentName(c, now, s.d)
	return s
}

// treatmentName returns the name of the treatment of a customer whose
// derived fields at now are d.
func (pc *compiled) treatmentName(c *schemas.Customer, now int64, d Derived) string {
	if i := pc.treatmentOf(d.Tier, d.ValueClass, d.LifecycleStage, d.ChurnRisk, pc.riskReason(c, now, d.ChurnRisk)); i >= 0 {
		return pc.treatments[i].name
	}
	return ""
}

// scoreUp returns 1 + the number of boundaries below v: 1 when v <= b[0],
// 5 when v > b[3].
func scoreUp(v int64, b *[numBoundaries]int64) int32 {
	s := int32(1)
	for _, x := range b {
		if v > x {
			s++
		}
	}
	return s
}

// recencyDays is the number of whole days from last to now (0 if now is
// earlier).
func recencyDays(now, last int64) int64 {
	if now <= last {
		return 0
	}
	return (now - last) / DayMs
}

// combine is the FM score: the mean of F and M, a half rounded up.
func combine(f, m int) int { return (f + m + 1) / 2 }

// NextDeadline returns the earliest event time after c.EvaluatedAt at which
// Evaluate would change a Derived field of c with no new event: a recency
// score boundary that changes the tier, the at-risk or churn inactivity
// threshold, the end of the new or reactivated window, a risk expiry, or
// the time P(alive) falls below churn.p_alive_below; or, if earlier, the
// next value class review (ValueClasses.ReviewDays), which may find no
// change. It
// returns 0 when nothing can change without an event (prospects, customers
// past every threshold, customers never evaluated), and c.EvaluatedAt itself
// when the stored fields are already stale (c was last evaluated under
// another policy).
func (p *Policy) NextDeadline(c *schemas.Customer) int64 {
	pc := p.compiled()
	now := c.EvaluatedAt
	if now == 0 || c.Purchases == 0 {
		return 0
	}
	// Stale stored fields (another policy evaluated c) are due now. Under
	// the same policy version the value class is taken as current: it was
	// derived from the same models at the same time, and recomputing it
	// would cost a full CLV evaluation per call.
	cur := pc.derive(c, now, c.PolicyVersion != pc.version, 0).d
	if !cur.Equal(derivedOf(c)) {
		return now
	}
	var cand [numBoundaries + 8]int64
	n := 0
	for _, b := range pc.recency {
		cand[n] = c.LastPurchase + (b+1)*DayMs
		n++
	}
	cand[n], cand[n+1], cand[n+2] = c.LastActivity+pc.inactivityMs, c.LastActivity+pc.atRiskMs, c.FirstPurchase+pc.newMs
	n += 3
	if c.ReactivatedAt != 0 {
		cand[n] = c.ReactivatedAt + pc.reactMs
		n++
	}
	if c.RiskUntil != 0 {
		cand[n] = c.RiskUntil
		n++
	}
	// The risk reason, and with it the treatment, moves from a complaint
	// to a low score (or back) when the first of the two periods ends,
	// before RiskUntil, the later one.
	if u := pc.complaintUntil(c); u != 0 && u < c.RiskUntil {
		cand[n] = u
		n++
	}
	if u := c.LowSatisfactionUntil; u != 0 && u < c.RiskUntil {
		cand[n] = u
		n++
	}
	pAliveAt := int64(0)
	if pc.pAliveBelow > 0 && (c.RepeatDays > 0 || pc.oneTimeDrop) {
		pAliveAt = -1
		if at := pc.pAliveCrossing(c, now); at != 0 {
			cand[n] = at
			n++
			pAliveAt = at
		}
	}
	// Insertion sort: at most twelve values.
	for i := 1; i < n; i++ {
		for j := i; j > 0 && cand[j] < cand[j-1]; j-- {
			cand[j], cand[j-1] = cand[j-1], cand[j]
		}
	}
	// The value class review: the class is re-derived at most
	// value_classes.review_days after an evaluation while the CLV can
	// still move it down (see reviewAt). It may find no change.
	review := pc.reviewAt(c, now)
	for _, t := range cand[:n] {
		if review != 0 && t >= review {
			return review
		}
		if t > now && !pc.derive(c, t, false, pAliveAt).d.Equal(cur) {
			return t
		}
	}
	return review
}

// reviewAt returns when c's value class is next reviewed after an
// evaluation at now: now + review_days while the class is not below_zero
// (the CLV only falls while the customer is silent, and below_zero is the
// lowest class, which a silent customer's CLV reaches in time when
// below_zero_clv_minor > 0); with below_zero_clv_minor 0 the CLV never
// gets there, so reviews stop once the customer has been idle
// reviewIdleFactor × churn.inactivity_days. 0 for no review.
func (pc *compiled) reviewAt(c *schemas.Customer, now int64) int64 {
	if pc.classes == nil || pc.reviewMs == 0 || c.Purchases == 0 {
		return 0
	}
	if c.ValueClass != nil && *c.ValueClass == ClassBelowZero {
		return 0
	}
	if pc.classes.BelowZeroCLVMinor == 0 && now-c.LastActivity >= reviewIdleFactor*pc.inactivityMs {
		return 0
	}
	return now + pc.reviewMs
}

// reviewIdleFactor bounds value class reviews without a below_zero CLV
// threshold: after this many inactivity windows of silence a customer's
// class is left as it is.
const reviewIdleFactor = 3

// pAliveCrossing returns the first millisecond after now at which c's
// P(alive) is below the policy's threshold, or 0 if none is before
// MaxEventTime. clv.Model.PAliveFallsBelow (a closed form, or under
// Pareto/NBD a root found to 1e-13) is exact up to rounding; a few steps of
// a millisecond settle the last bits against PAlive itself, the function
// derive uses.
func (pc *compiled) pAliveCrossing(c *schemas.Customer, now int64) int64 {
	b := pc.model
	s := pc.summary(c, now)
	ts := b.PAliveFallsBelow(s.X, s.Tx, pc.pAliveBelow)
	f := float64(c.FirstPurchase) + math.Ceil(ts*float64(pc.unitMs))
	if !(f < float64(MaxEventTime)) {
		return 0
	}
	below := func(t int64) bool { return b.PAlive(pc.summary(c, t)) < pc.pAliveBelow }
	at := max(int64(f), now+1)
	for i := 0; i < 64 && at > now+1 && below(at-1); i++ {
		at--
	}
	for range 64 {
		if below(at) {
			return at
		}
		at++
	}
	return 0 // P(alive) flat at the threshold: never reached in practice
}

// TierChange builds the record announcing c's state after an evaluation
// whose Outcome is o. cause and occurredAt name the event (or timer) that
// produced it. EventID is CustomerID + ":" + Version. PAlive,
// ExpectedPurchases and CLV (in base minor units) are the models' evaluation
// at c.EvaluatedAt (o.Value when o is Valued), nil without models or for a
// customer with no purchase; RecencyDays is nil
// for a customer without a purchase; Action is the recommended action of
// c's tier under p, nil if none; RiskReason is RiskReason at
// c.EvaluatedAt, nil for none; ContactableChannels follows p's consent rule.
func (p *Policy) TierChange(c *schemas.Customer, o Outcome, cause schemas.Cause, occurredAt int64) schemas.TierChange {
	return *p.TierChangeTo(new(TierChangeBuf), c, o, cause, occurredAt)
}

// TierChangeBuf holds a TierChange built by TierChangeTo and the values its
// optional fields point to. A task builds one per tier change and encodes it
// at once: with a buffer of its own, the only allocation is the event id
// (TierChange's pointers would take four more).
type TierChangeBuf struct {
	tc                  schemas.TierChange
	prev, class, reason string
	adv                 advice
	contact             [schemas.NumChannels]schemas.Channel
	recency             int32
	value               clv.Value
	clvMinor            float64
}

// TierChangeTo is TierChange built in b: the result points into b, and is
// valid until the next call with b.
func (p *Policy) TierChangeTo(b *TierChangeBuf, c *schemas.Customer, o Outcome, cause schemas.Cause, occurredAt int64) *schemas.TierChange {
	pc := p.compiled()
	var num [20]byte
	b.tc = schemas.TierChange{
		EventID:        c.CustomerID + ":" + string(strconv.AppendInt(num[:0], c.Version, 10)),
		CustomerID:     c.CustomerID,
		Version:        c.Version,
		OccurredAt:     occurredAt,
		Cause:          cause,
		Tier:           c.Tier,
		ChurnRisk:      c.ChurnRisk,
		LifecycleStage: c.LifecycleStage,
		Frequency:      c.Purchases,
		Monetary:       c.MonetaryMinor,
		Currency:       pc.base,
		RScore:         c.RScore,
		FScore:         c.FScore,
		MScore:         c.MScore,
		PolicyVersion:  pc.version,
	}
	tc := &b.tc
	if o.HadPrevious {
		b.prev = o.Previous.Tier
		tc.PreviousTier = &b.prev
	}
	if c.ValueClass != nil {
		b.class = *c.ValueClass
		tc.ValueClass = &b.class
	}
	if c.Purchases > 0 {
		b.recency = int32(min(recencyDays(c.EvaluatedAt, c.LastPurchase), math.MaxInt32))
		tc.RecencyDays = &b.recency
	}
	tc.Action, tc.Treatment, tc.Relationship, tc.RelationshipCostMinor = b.adv.set(pc, c)
	if r := p.RiskReason(c, c.EvaluatedAt); r != "" {
		b.reason = r
		tc.RiskReason = &b.reason
	}
	if cs := p.AppendContactable(b.contact[:0], c); len(cs) > 0 {
		tc.ContactableChannels = cs
	}
	if !o.Valued && pc.model != nil && c.Purchases > 0 {
		o.Valued, o.Value = true, pc.model.Evaluate(pc.summary(c, c.EvaluatedAt), pc.meanSpend(c))
	}
	if o.Valued {
		b.value = o.Value
		b.clvMinor = o.Value.CLV * pc.minorPerMajor
		tc.PAlive, tc.ExpectedPurchases, tc.CLV = &b.value.PAlive, &b.value.ExpectedPurchases, &b.clvMinor
	}
	return tc
}

// ErasureChange returns the last TierChange of an erased customer: cause
// ERASURE at requestedAt, the next version, and no personal fields: no
// previous or current tier (empty), stage (empty), scores, counts, money,
// flags or model values. The customer id stays, as in the record key, so
// that the systems downstream know whom to forget. A later change of the
// same id belongs to a new customer and starts again at version 1, with
// the same event ids as the erased customer's first changes: a consumer
// that keeps event ids to drop repeats must forget the customer's too.
func (p *Policy) ErasureChange(c *schemas.Customer, requestedAt int64) schemas.TierChange {
	pc := p.compiled()
	v := c.Version + 1
	return schemas.TierChange{
		EventID:       c.CustomerID + ":" + strconv.FormatInt(v, 10),
		CustomerID:    c.CustomerID,
		Version:       v,
		OccurredAt:    requestedAt,
		Cause:         schemas.CauseErasure,
		Currency:      pc.base,
		PolicyVersion: pc.version,
	}
}

// action returns the action of the named tier ("" for none or an unknown
// tier).
func (pc *compiled) action(tier string) string {
	if tier == pc.prospect {
		return pc.prospectAct
	}
	for i, name := range pc.tiers {
		if name == tier {
			return pc.actions[i]
		}
	}
	return ""
}

// treatmentFor returns the treatment c was given at its last evaluation,
// nil when its name is not in the table (state of another policy).
func (pc *compiled) treatmentFor(c *schemas.Customer) *treatment {
	for i := range pc.treatments {
		if pc.treatments[i].name == c.Treatment {
			return &pc.treatments[i]
		}
	}
	return nil
}

// advice holds what a customer's treatment tells an output, and the values
// the output's optional fields point to.
type advice struct {
	action, treatment, relationship string
	cost                            int64
}

// set fills a from c's treatment under pc and returns what an output
// carries: the action (the treatment's, else the tier's) and the
// treatment, relationship and monthly cost, each nil when there is none.
func (a *advice) set(pc *compiled, c *schemas.Customer) (action, treatment, relationship *string, cost *int64) {
	a.action = pc.action(c.Tier)
	if tr := pc.treatmentFor(c); tr != nil {
		a.treatment, a.relationship, a.cost = tr.name, tr.relationship, tr.costMinor
		treatment, relationship, cost = &a.treatment, &a.relationship, &a.cost
		if tr.action != "" {
			a.action = tr.action
		}
	}
	if a.action != "" {
		action = &a.action
	}
	return action, treatment, relationship, cost
}
