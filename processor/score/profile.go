package score

import (
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"valora/processor/clv"
	"valora/schemas"
)

// The risk reasons: why a customer is at risk or churned (RiskReason).
const (
	RiskComplaint       = "complaint"
	RiskLowSatisfaction = "low_satisfaction"
	RiskInactivity      = "inactivity"
	RiskPAlive          = "p_alive"
)

// RiskReason returns why c is at risk or churned at now under p: "" when
// it is neither (and for a customer without a purchase, who has no
// lifecycle risk), else the rule that decides its stage, in the order
// the stage is derived: churned by inactivity (RiskInactivity), churned
// by the P(alive) rule (RiskPAlive), an unresolved complaint's risk
// period (RiskComplaint), a low satisfaction score's (RiskLowSatisfaction),
// or at risk by inactivity (RiskInactivity). A risk period that is
// neither (stored by a version of valora that did not tell complaints from
// low scores apart, or set under a longer risk.complaint_days) reads as
// RiskComplaint.
//
// At c's evaluation time under the policy that evaluated it, the stored
// churn flag is used; at any other time the churn rules run again (the
// P(alive) rule evaluates the model).
func (p *Policy) RiskReason(c *schemas.Customer, now int64) string {
	pc := p.compiled()
	if c.Purchases == 0 || now-c.LastActivity >= pc.inactivityMs {
		return pc.riskReason(c, now, false)
	}
	churned := c.ChurnRisk
	if now != c.EvaluatedAt || c.PolicyVersion != pc.version {
		churned = pc.derive(c, now, false, 0).d.ChurnRisk
	}
	return pc.riskReason(c, now, churned)
}

// riskReason is RiskReason given the churn flag at now (derive computes it
// before it names the treatment).
func (pc *compiled) riskReason(c *schemas.Customer, now int64, churned bool) string {
	if c.Purchases == 0 {
		return ""
	}
	idle := now - c.LastActivity
	if idle >= pc.inactivityMs {
		return RiskInactivity
	}
	switch {
	case churned:
		return RiskPAlive
	case pc.complaintUntil(c) > now:
		return RiskComplaint
	case c.LowSatisfactionUntil > now:
		return RiskLowSatisfaction
	case c.RiskUntil > now:
		// Stored before complaints and low scores were kept apart, or
		// a complaint's period under a policy with longer complaint_days.
		return RiskComplaint
	case idle >= pc.atRiskMs:
		return RiskInactivity
	}
	return ""
}

// complaintUntil returns the end of c's complaint risk period: its latest
// complaint's time + risk.complaint_days when no resolution at or after it
// is known, 0 otherwise.
func (pc *compiled) complaintUntil(c *schemas.Customer) int64 {
	if c.LastComplaintAt == 0 || c.LastComplaintAt <= c.LastResolvedAt {
		return 0
	}
	return c.LastComplaintAt + pc.complaintMs
}

// setConsent records a consent event on channel ch: v is t for a grant at
// event time t, -t for a withdrawal. The latest event wins, a withdrawal
// over a grant at the same time.
func setConsent(c *schemas.Customer, ch int, v int64) {
	if len(c.Consent) < schemas.NumChannels {
		c.Consent = append(c.Consent, make([]int64, schemas.NumChannels-len(c.Consent))...)
	}
	cur := c.Consent[ch]
	t, at := abs(v), abs(cur)
	if cur == 0 || t > at || (t == at && v < 0) {
		c.Consent[ch] = v
	}
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// Contactable reports whether c may be contacted on channel index ch
// under p's consent rule: its latest consent event is a grant, or it has
// none and consent.default is granted.
func (p *Policy) Contactable(c *schemas.Customer, ch int) bool {
	if ch < len(c.Consent) && c.Consent[ch] != 0 {
		return c.Consent[ch] > 0
	}
	return p.compiled().consentGrant
}

// AppendContactable appends the channels c may be contacted on to dst, in
// schemas.Channels order.
func (p *Policy) AppendContactable(dst []schemas.Channel, c *schemas.Customer) []schemas.Channel {
	for i, ch := range schemas.Channels {
		if p.Contactable(c, i) {
			dst = append(dst, ch)
		}
	}
	return dst
}

// PreferredChannel returns the index in schemas.Channels of c's most
// frequent interaction channel, ties broken by the latest interaction (then
// by enum order), or -1 for a customer without interactions.
func PreferredChannel(c *schemas.Customer) int {
	best := -1
	for i, n := range c.InteractionsByChannel {
		if n <= 0 || i >= schemas.NumChannels {
			continue
		}
		if best < 0 || n > c.InteractionsByChannel[best] ||
			(n == c.InteractionsByChannel[best] && lastAt(c, i) > lastAt(c, best)) {
			best = i
		}
	}
	return best
}

func lastAt(c *schemas.Customer, ch int) int64 {
	if ch < len(c.InteractionLastAt) {
		return c.InteractionLastAt[ch]
	}
	return 0
}

// Uncategorised is the category of a purchase without one.
const Uncategorised = "uncategorised"

// maxCategoryLen bounds the bytes of a category name kept in state: a
// longer one is cut, on a character boundary, so a producer cannot grow a
// customer's state with long names.
const maxCategoryLen = 64

// categoryOf returns the category a purchase counts in.
func categoryOf(cat *string) string {
	if cat == nil || *cat == "" {
		return Uncategorised
	}
	s := *cat
	if len(s) > maxCategoryLen {
		n := maxCategoryLen
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	return s
}

// addCategory adds a purchase (or subtracts a refund) of base minor units
// to its category in c.Categories, which it keeps sorted (catLess) and at
// most categories.tracked long: a new category takes the place of the last
// one when the list is full. A refund in a category not in the list
// changes only the totals when the list is full; otherwise it enters with
// no purchase and a negative net.
func addCategory(pc *compiled, c *schemas.Customer, cat *string, base int64, refund bool) {
	name := categoryOf(cat)
	i := -1
	for j := range c.Categories {
		if c.Categories[j].Category == name {
			i = j
			break
		}
	}
	if i < 0 {
		if len(c.Categories) >= pc.tracked {
			if refund {
				return
			}
			c.Categories = c.Categories[:pc.tracked-1]
		}
		// Cloned: the name may view a decoded record's buffer.
		c.Categories = append(c.Categories, schemas.CategoryStat{Category: strings.Clone(name)})
		i = len(c.Categories) - 1
	}
	e := &c.Categories[i]
	if refund {
		e.NetMinor = satAdd(e.NetMinor, -base)
	} else {
		if e.Purchases == 0 {
			c.DistinctCategories++
		}
		e.Purchases++
		e.NetMinor = satAdd(e.NetMinor, base)
	}
	// One entry moved: bubble it to its place.
	for i > 0 && catLess(&c.Categories[i], &c.Categories[i-1]) {
		c.Categories[i], c.Categories[i-1] = c.Categories[i-1], c.Categories[i]
		i--
	}
	for i+1 < len(c.Categories) && catLess(&c.Categories[i+1], &c.Categories[i]) {
		c.Categories[i], c.Categories[i+1] = c.Categories[i+1], c.Categories[i]
		i++
	}
}

// catLess orders categories by net spend, then purchases, highest first,
// then by name.
func catLess(a, b *schemas.CategoryStat) bool {
	if a.NetMinor != b.NetMinor {
		return a.NetMinor > b.NetMinor
	}
	if a.Purchases != b.Purchases {
		return a.Purchases > b.Purchases
	}
	return a.Category < b.Category
}

// satAdd is a + b, saturated at the int64 bounds: a category's net may
// exceed the customer's total, whose bounds are checked.
func satAdd(a, b int64) int64 {
	s := a + b
	switch {
	case b > 0 && s < a:
		return math.MaxInt64
	case b < 0 && s > a:
		return math.MinInt64
	}
	return s
}

// TopCategories returns the categories a profile of c lists under p: the
// first categories.top_n of c.Categories (a view, not a copy).
func (p *Policy) TopCategories(c *schemas.Customer) []schemas.CategoryStat {
	return c.Categories[:min(len(c.Categories), p.compiled().topN)]
}

// Profile builds the CustomerProfile of c, as last evaluated, under p (see
// ProfileTo), as a value of its own: its per-channel counts in maps (no
// counters), its slices copied.
func (p *Policy) Profile(c *schemas.Customer) schemas.CustomerProfile {
	pr := *p.ProfileTo(new(ProfileBuf), c, nil)
	pr.InteractionsByChannel, pr.PurchasesByChannel = map[string]int64{}, map[string]int64{}
	fillChannelMap(pr.InteractionsByChannel, pr.InteractionCounts)
	fillChannelMap(pr.PurchasesByChannel, pr.PurchaseCounts)
	pr.InteractionCounts, pr.PurchaseCounts = nil, nil
	pr.Categories = slices.Clone(pr.Categories)
	pr.ContactableChannels = slices.Clone(pr.ContactableChannels)
	return pr
}

// ProfileBuf holds a CustomerProfile built by ProfileTo and what its
// optional fields point to, so that a task builds one per changed customer
// per commit without allocating.
type ProfileBuf struct {
	pr                 schemas.CustomerProfile
	class, reason, fav string
	adv                advice
	recency, sat       int32
	value              clv.Value
	clvMinor           float64
	pref               schemas.Channel
	contact            [schemas.NumChannels]schemas.Channel
}

// ProfileTo builds the profile of c in b, for encoding: the result points
// into b and into c (its categories and per-channel counters, which it
// holds in InteractionCounts and PurchaseCounts rather than in maps), and
// is valid until the next call with b or a change of c. Scores, tier,
// stage, flags, recency, the risk reason and the model values are those of
// c's last evaluation (c.EvaluatedAt), as in a TierChange; the treatment,
// its relationship and its action (else the tier's) are those of c's last
// evaluation under p; the categories are TopCategories; consent follows
// p's consent rule. value, if not nil, is the models' evaluation of c at
// c.EvaluatedAt under p (an Outcome's Value, when Valued), which spares
// evaluating the models again; nil evaluates them.
func (p *Policy) ProfileTo(b *ProfileBuf, c *schemas.Customer, value *clv.Value) *schemas.CustomerProfile {
	pc := p.compiled()
	b.pr = schemas.CustomerProfile{
		CustomerID:         c.CustomerID,
		Version:            c.Version,
		Tier:               c.Tier,
		RScore:             c.RScore,
		FScore:             c.FScore,
		MScore:             c.MScore,
		ChurnRisk:          c.ChurnRisk,
		LifecycleStage:     c.LifecycleStage,
		Purchases:          c.Purchases,
		Refunds:            c.Refunds,
		RepeatDays:         c.RepeatDays,
		MonetaryMinor:      c.MonetaryMinor,
		Currency:           pc.base,
		FirstSeen:          c.FirstSeen,
		LastActivity:       c.LastActivity,
		FirstPurchase:      c.FirstPurchase,
		LastPurchase:       c.LastPurchase,
		RiskUntil:          c.RiskUntil,
		ReactivatedAt:      c.ReactivatedAt,
		EvaluatedAt:        c.EvaluatedAt,
		PolicyVersion:      c.PolicyVersion,
		InteractionCounts:  c.InteractionsByChannel,
		PurchaseCounts:     c.PurchasesByChannel,
		Categories:         p.TopCategories(c),
		DistinctCategories: c.DistinctCategories,
		Complaints:         c.Complaints,
		ComplaintsResolved: c.ComplaintsResolved,
		LastComplaintAt:    c.LastComplaintAt,
	}
	pr := &b.pr
	if c.ValueClass != nil {
		b.class = *c.ValueClass
		pr.ValueClass = &b.class
	}
	if r := p.RiskReason(c, c.EvaluatedAt); r != "" {
		b.reason = r
		pr.RiskReason = &b.reason
	}
	if c.Purchases > 0 {
		b.recency = int32(min(recencyDays(c.EvaluatedAt, c.LastPurchase), math.MaxInt32))
		pr.RecencyDays = &b.recency
	}
	pr.Action, pr.Treatment, pr.Relationship, pr.RelationshipCostMinor = b.adv.set(pc, c)
	if pc.model != nil && c.Purchases > 0 {
		if value != nil {
			b.value = *value
		} else {
			b.value = pc.model.Evaluate(pc.summary(c, c.EvaluatedAt), pc.meanSpend(c))
		}
		b.clvMinor = b.value.CLV * pc.minorPerMajor
		pr.PAlive, pr.ExpectedPurchases, pr.CLV = &b.value.PAlive, &b.value.ExpectedPurchases, &b.clvMinor
	}
	if cs := p.AppendContactable(b.contact[:0], c); len(cs) > 0 {
		pr.ContactableChannels = cs
	}
	if ch := PreferredChannel(c); ch >= 0 {
		b.pref = schemas.Channels[ch]
		pr.PreferredChannel = &b.pref
	}
	if len(pr.Categories) > 0 {
		b.fav = pr.Categories[0].Category
		pr.FavouriteCategory = &b.fav
	}
	if c.LastSatisfactionAt != 0 {
		b.sat = c.LastSatisfaction
		pr.LastSatisfaction = &b.sat
	}
	return pr
}

// fillChannelMap puts the non-zero counters of counts (indexed like
// schemas.Channels) into m by channel name.
func fillChannelMap(m map[string]int64, counts []int64) {
	for i, n := range counts {
		if n != 0 && i < schemas.NumChannels {
			m[string(schemas.Channels[i])] = n
		}
	}
}
