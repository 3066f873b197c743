package httpapi

import (
	"slices"

	"valora/processor/score"
	"valora/schemas"
)

// CustomerView is the JSON body of GET /v1/customers/{id}: the customer's
// committed state under the field names of the Avro schemas (snake_case),
// the task that owns it, and, under the policy in force, what its profile
// (score.Policy.Profile, customer_profile.avsc) carries: every field of the
// profile under the same name, so that a reader of the profile topic and a
// caller of the lookup see the same values, with null fields left out.
// Times are Unix milliseconds of event time (0: never); money is in minor
// units of the policy's base currency. The duplicate-detection window and
// the timer bookkeeping are internal and not shown.
type CustomerView struct {
	CustomerID            string                 `json:"customer_id"`
	Task                  int32                  `json:"task"`
	Version               int64                  `json:"version"`
	Tier                  string                 `json:"tier"`
	RScore                int32                  `json:"r_score"`
	FScore                int32                  `json:"f_score"`
	MScore                int32                  `json:"m_score"`
	ChurnRisk             bool                   `json:"churn_risk"`
	LifecycleStage        string                 `json:"lifecycle_stage"`
	ValueClass            *string                `json:"value_class,omitempty"`
	RiskReason            *string                `json:"risk_reason,omitempty"`
	RecencyDays           *int32                 `json:"recency_days,omitempty"`
	Purchases             int64                  `json:"purchases"`
	Refunds               int64                  `json:"refunds"`
	RepeatDays            int64                  `json:"repeat_days"`
	MonetaryMinor         int64                  `json:"monetary_minor"`
	Currency              string                 `json:"currency"`
	FirstSeen             int64                  `json:"first_seen"`
	LastActivity          int64                  `json:"last_activity"`
	FirstPurchase         int64                  `json:"first_purchase"`
	LastPurchase          int64                  `json:"last_purchase"`
	RiskUntil             int64                  `json:"risk_until"`
	ReactivatedAt         int64                  `json:"reactivated_at"`
	InteractionsByChannel map[string]int64       `json:"interactions_by_channel"`
	PurchasesByChannel    map[string]int64       `json:"purchases_by_channel"`
	EvaluatedAt           int64                  `json:"evaluated_at"`
	PolicyVersion         string                 `json:"policy_version"`
	Action                *string                `json:"action,omitempty"`
	PAlive                *float64               `json:"p_alive,omitempty"`
	ExpectedPurchases     *float64               `json:"expected_purchases,omitempty"`
	CLV                   *float64               `json:"clv,omitempty"`
	PreferredChannel      *schemas.Channel       `json:"preferred_channel,omitempty"`
	ContactableChannels   []schemas.Channel      `json:"contactable_channels"`
	Categories            []schemas.CategoryStat `json:"categories"`
	FavouriteCategory     *string                `json:"favourite_category,omitempty"`
	DistinctCategories    int64                  `json:"distinct_categories"`
	Complaints            int64                  `json:"complaints"`
	ComplaintsResolved    int64                  `json:"complaints_resolved"`
	LastComplaintAt       int64                  `json:"last_complaint_at"`
	LastSatisfaction      *int32                 `json:"last_satisfaction,omitempty"`
	Treatment             *string                `json:"treatment,omitempty"`
	Relationship          *string                `json:"relationship,omitempty"`
	RelationshipCostMinor *int64                 `json:"relationship_cost_minor,omitempty"`
}

// newCustomerView builds the view of c, owned by task part, under pol (nil:
// the stored fields only).
func newCustomerView(c *schemas.Customer, part int32, pol *score.Policy) CustomerView {
	v := CustomerView{
		CustomerID: c.CustomerID, Task: part, Version: c.Version, Tier: c.Tier,
		RScore: c.RScore, FScore: c.FScore, MScore: c.MScore, ChurnRisk: c.ChurnRisk,
		LifecycleStage: c.LifecycleStage, ValueClass: c.ValueClass,
		Purchases: c.Purchases, Refunds: c.Refunds, RepeatDays: c.RepeatDays, MonetaryMinor: c.MonetaryMinor,
		FirstSeen: c.FirstSeen, LastActivity: c.LastActivity, FirstPurchase: c.FirstPurchase,
		LastPurchase: c.LastPurchase, RiskUntil: c.RiskUntil, ReactivatedAt: c.ReactivatedAt,
		InteractionsByChannel: byChannel(c.InteractionsByChannel),
		PurchasesByChannel:    byChannel(c.PurchasesByChannel),
		EvaluatedAt:           c.EvaluatedAt, PolicyVersion: c.PolicyVersion,
		ContactableChannels: []schemas.Channel{}, Categories: []schemas.CategoryStat{},
		DistinctCategories: c.DistinctCategories, Complaints: c.Complaints,
		ComplaintsResolved: c.ComplaintsResolved, LastComplaintAt: c.LastComplaintAt,
	}
	if pol != nil {
		pr := pol.Profile(c)
		v.RecencyDays, v.Currency, v.RiskReason = pr.RecencyDays, pr.Currency, pr.RiskReason
		v.Action, v.PAlive, v.ExpectedPurchases, v.CLV = pr.Action, pr.PAlive, pr.ExpectedPurchases, pr.CLV
		v.PreferredChannel, v.FavouriteCategory, v.LastSatisfaction = pr.PreferredChannel, pr.FavouriteCategory, pr.LastSatisfaction
		v.Treatment, v.Relationship, v.RelationshipCostMinor = pr.Treatment, pr.Relationship, pr.RelationshipCostMinor
		if len(pr.ContactableChannels) > 0 {
			v.ContactableChannels = pr.ContactableChannels
		}
		if len(pr.Categories) > 0 {
			v.Categories = slices.Clone(pr.Categories)
		}
	}
	return v
}

// byChannel names per-channel counters by channel (schemas.Channels order),
// leaving out the zeros.
func byChannel(counts []int64) map[string]int64 {
	m := map[string]int64{}
	for i, n := range counts {
		if n != 0 && i < len(schemas.Channels) {
			m[string(schemas.Channels[i])] = n
		}
	}
	return m
}
