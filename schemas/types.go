package schemas

// Channel is a customer touchpoint. Its values are the symbols of the Avro
// enum valora.Channel, in enum order. The zero value "" is not a channel and
// does not encode.
type Channel string

// The channels, in the order of the Avro enum.
const (
	ChannelEmail  Channel = "EMAIL"
	ChannelPhone  Channel = "PHONE"
	ChannelWeb    Channel = "WEB"
	ChannelApp    Channel = "APP"
	ChannelStore  Channel = "STORE"
	ChannelSocial Channel = "SOCIAL"
	ChannelSurvey Channel = "SURVEY"
	ChannelChat   Channel = "CHAT"
	ChannelFax    Channel = "FAX"
	ChannelOther  Channel = "OTHER"
)

// Channels lists every channel in enum order. Index i of
// Customer.InteractionsByChannel counts interactions on Channels[i].
var Channels = [...]Channel{
	ChannelEmail, ChannelPhone, ChannelWeb, ChannelApp, ChannelStore,
	ChannelSocial, ChannelSurvey, ChannelChat, ChannelFax, ChannelOther,
}

// NumChannels is len(Channels).
const NumChannels = len(Channels)

// ChannelIndex returns the position of c in Channels, or -1 if c is not a
// known channel.
func ChannelIndex(c Channel) int {
	for i, ch := range Channels {
		if ch == c {
			return i
		}
	}
	return -1
}

// PurchaseKind says whether a Purchase adds or subtracts value.
type PurchaseKind string

// The purchase kinds.
const (
	KindPurchase PurchaseKind = "PURCHASE"
	KindRefund   PurchaseKind = "REFUND"
)

// Cause says what produced a TierChange.
type Cause string

// The causes, in the order of the Avro enum valora.Cause.
const (
	CausePurchase     Cause = "PURCHASE"
	CauseRefund       Cause = "REFUND"
	CauseInteraction  Cause = "INTERACTION"
	CauseInactivity   Cause = "INACTIVITY"
	CausePolicyChange Cause = "POLICY_CHANGE"
	CauseErasure      Cause = "ERASURE"
)

// Interaction is one customer touchpoint (topic `interactions`).
// OccurredAt is event time in Unix milliseconds (Avro timestamp-millis).
type Interaction struct {
	EventID      string            `avro:"event_id"`
	CustomerID   string            `avro:"customer_id"`
	OccurredAt   int64             `avro:"occurred_at"`
	Channel      Channel           `avro:"channel"`
	Type         string            `avro:"type"`
	Satisfaction *int32            `avro:"satisfaction"`
	Attributes   map[string]string `avro:"attributes"`
}

// Purchase is an order or a refund (topic `purchases`). AmountMinor is a
// count of the currency's minor units, 0 or more for a PURCHASE (0 is a free
// order) and positive for a REFUND, which subtracts it.
type Purchase struct {
	EventID     string       `avro:"event_id"`
	CustomerID  string       `avro:"customer_id"`
	OccurredAt  int64        `avro:"occurred_at"`
	Kind        PurchaseKind `avro:"kind"`
	AmountMinor int64        `avro:"amount_minor"`
	Currency    string       `avro:"currency"`
	Channel     Channel      `avro:"channel"`
	Category    *string      `avro:"category"`
	Items       int32        `avro:"items"`
}

// ErasureRequest asks valora to forget a customer (topic `customer-erasures`).
type ErasureRequest struct {
	CustomerID  string  `avro:"customer_id"`
	RequestedAt int64   `avro:"requested_at"`
	Reason      *string `avro:"reason"`
}

// TierChange is published on `customer-tier-changes` whenever a customer's
// tier, churn flag, lifecycle stage or value class changes. Fields a model
// has not produced yet are nil, never made up.
type TierChange struct {
	EventID           string   `avro:"event_id"`
	CustomerID        string   `avro:"customer_id"`
	Version           int64    `avro:"version"`
	OccurredAt        int64    `avro:"occurred_at"`
	Cause             Cause    `avro:"cause"`
	PreviousTier      *string  `avro:"previous_tier"`
	Tier              string   `avro:"tier"`
	ChurnRisk         bool     `avro:"churn_risk"`
	LifecycleStage    string   `avro:"lifecycle_stage"`
	ValueClass        *string  `avro:"value_class"`
	RecencyDays       *int32   `avro:"recency_days"`
	Frequency         int64    `avro:"frequency"`
	Monetary          int64    `avro:"monetary"`
	Currency          string   `avro:"currency"`
	RScore            int32    `avro:"r_score"`
	FScore            int32    `avro:"f_score"`
	MScore            int32    `avro:"m_score"`
	PAlive            *float64 `avro:"p_alive"`
	ExpectedPurchases *float64 `avro:"expected_purchases"`
	CLV               *float64 `avro:"clv"`
	PolicyVersion     string   `avro:"policy_version"`
	Action            *string  `avro:"action"`
	// RiskReason is why the customer is at risk or churned (complaint,
	// low_satisfaction, inactivity, p_alive), nil when neither.
	RiskReason *string `avro:"risk_reason"`
	// ContactableChannels lists the channels the customer may be
	// contacted on, in Channels order.
	ContactableChannels []Channel `avro:"contactable_channels"`
	// Treatment, Relationship and RelationshipCostMinor are what the
	// policy's treatment table gives the customer (see
	// tier_change.avsc); nil on an erasure.
	Treatment             *string `avro:"treatment"`
	Relationship          *string `avro:"relationship"`
	RelationshipCostMinor *int64  `avro:"relationship_cost_minor"`
}

// CustomerProfile is a customer's current state as published on the
// compacted profile topic (customer_profile.avsc documents each field).
// Times are Unix milliseconds of event time, 0 for never; money is in minor
// units of Currency. Per-channel counts are keyed by channel name, with
// zeros left out.
type CustomerProfile struct {
	CustomerID            string           `avro:"customer_id"`
	Version               int64            `avro:"version"`
	Tier                  string           `avro:"tier"`
	RScore                int32            `avro:"r_score"`
	FScore                int32            `avro:"f_score"`
	MScore                int32            `avro:"m_score"`
	ChurnRisk             bool             `avro:"churn_risk"`
	LifecycleStage        string           `avro:"lifecycle_stage"`
	ValueClass            *string          `avro:"value_class"`
	RiskReason            *string          `avro:"risk_reason"`
	RecencyDays           *int32           `avro:"recency_days"`
	Purchases             int64            `avro:"purchases"`
	Refunds               int64            `avro:"refunds"`
	RepeatDays            int64            `avro:"repeat_days"`
	MonetaryMinor         int64            `avro:"monetary_minor"`
	Currency              string           `avro:"currency"`
	PAlive                *float64         `avro:"p_alive"`
	ExpectedPurchases     *float64         `avro:"expected_purchases"`
	CLV                   *float64         `avro:"clv"`
	FirstSeen             int64            `avro:"first_seen"`
	LastActivity          int64            `avro:"last_activity"`
	FirstPurchase         int64            `avro:"first_purchase"`
	LastPurchase          int64            `avro:"last_purchase"`
	RiskUntil             int64            `avro:"risk_until"`
	ReactivatedAt         int64            `avro:"reactivated_at"`
	EvaluatedAt           int64            `avro:"evaluated_at"`
	PolicyVersion         string           `avro:"policy_version"`
	Action                *string          `avro:"action"`
	InteractionsByChannel map[string]int64 `avro:"interactions_by_channel"`
	PurchasesByChannel    map[string]int64 `avro:"purchases_by_channel"`
	PreferredChannel      *Channel         `avro:"preferred_channel"`
	ContactableChannels   []Channel        `avro:"contactable_channels"`
	Categories            []CategoryStat   `avro:"categories"`
	FavouriteCategory     *string          `avro:"favourite_category"`
	DistinctCategories    int64            `avro:"distinct_categories"`
	Complaints            int64            `avro:"complaints"`
	ComplaintsResolved    int64            `avro:"complaints_resolved"`
	LastComplaintAt       int64            `avro:"last_complaint_at"`
	LastSatisfaction      *int32           `avro:"last_satisfaction"`
	Treatment             *string          `avro:"treatment"`
	Relationship          *string          `avro:"relationship"`
	RelationshipCostMinor *int64           `avro:"relationship_cost_minor"`

	// InteractionCounts and PurchaseCounts are per-channel counters
	// indexed like Channels, which AppendProfile writes in place of
	// InteractionsByChannel and PurchasesByChannel when those are nil
	// (zeros left out): a profile built for encoding needs no map.
	// Decoders leave them nil.
	InteractionCounts []int64 `avro:"-"`
	PurchaseCounts    []int64 `avro:"-"`
}

// Customer is the per-customer state valora keeps (Pebble value and, later,
// changelog value). All times are Unix milliseconds of event time; 0 means
// "never". Money is in minor units of the policy's base currency.
type Customer struct {
	CustomerID string `avro:"customer_id"`
	// Version counts the updates applied to this customer (events and
	// timer firings); it only grows and numbers the TierChanges.
	Version       int64 `avro:"version"`
	FirstSeen     int64 `avro:"first_seen"`
	LastActivity  int64 `avro:"last_activity"`
	FirstPurchase int64 `avro:"first_purchase"`
	LastPurchase  int64 `avro:"last_purchase"`
	// Purchases counts PURCHASE events (frequency); Refunds counts REFUNDs.
	Purchases int64 `avro:"purchases"`
	Refunds   int64 `avro:"refunds"`
	// RepeatDays is BG/NBD's x: distinct purchase days after the first.
	RepeatDays int64 `avro:"repeat_days"`
	// MonetaryMinor is purchases minus refunds, in base-currency minor units.
	MonetaryMinor int64 `avro:"monetary_minor"`
	// InteractionsByChannel has NumChannels counters, indexed like Channels.
	InteractionsByChannel []int64 `avro:"interactions_by_channel"`
	PurchasesByChannel    []int64 `avro:"purchases_by_channel"`
	// RiskUntil is the event time until which a complaint or a low
	// satisfaction score keeps the customer at risk (0: none).
	RiskUntil int64 `avro:"risk_until"`
	// ReactivatedAt is the event time of the purchase that brought a
	// churned customer back (0: never churned and returned).
	ReactivatedAt int64 `avro:"reactivated_at"`

	// Derived at the last evaluation, kept to detect changes.
	Tier           string  `avro:"tier"`
	RScore         int32   `avro:"r_score"`
	FScore         int32   `avro:"f_score"`
	MScore         int32   `avro:"m_score"`
	ChurnRisk      bool    `avro:"churn_risk"`
	LifecycleStage string  `avro:"lifecycle_stage"`
	ValueClass     *string `avro:"value_class"`
	EvaluatedAt    int64   `avro:"evaluated_at"`
	PolicyVersion  string  `avro:"policy_version"`
	// Treatment is the treatment table's name for the customer at the last
	// evaluation ("" before treatments existed).
	Treatment string `avro:"treatment"`

	// TimerAt is the due time of the customer's timer index entry (0:
	// none). The processor keeps it equal to the index entry it wrote in
	// the same batch, so it knows which entry to replace.
	TimerAt int64 `avro:"timer_at"`

	// RecentEventHashes is the duplicate window: the 64-bit hashes of the
	// kind and event id of the customer's most recently applied events,
	// oldest first (see score.EventHash). Its length never exceeds the
	// policy's window, itself at most 1024 (the decoders' array bound).
	RecentEventHashes []int64 `avro:"recent_event_hashes"`

	// Service history. Complaints and ComplaintsResolved count the
	// interactions of the policy's complaint and resolution types; a
	// resolution resolves every complaint at or before it, so a complaint
	// keeps the customer at risk only while LastComplaintAt is later than
	// LastResolvedAt. LowSatisfactionUntil is the low satisfaction part of
	// RiskUntil. LastSatisfaction is the score of the latest interaction
	// (by event time, LastSatisfactionAt) that carried one; none when
	// LastSatisfactionAt is 0.
	Complaints           int64 `avro:"complaints"`
	ComplaintsResolved   int64 `avro:"complaints_resolved"`
	LastComplaintAt      int64 `avro:"last_complaint_at"`
	LastResolvedAt       int64 `avro:"last_resolved_at"`
	LowSatisfactionUntil int64 `avro:"low_satisfaction_until"`
	LastSatisfaction     int32 `avro:"last_satisfaction"`
	LastSatisfactionAt   int64 `avro:"last_satisfaction_at"`
	// InteractionLastAt holds the event time of the latest interaction per
	// channel, indexed like Channels (empty before the first interaction).
	InteractionLastAt []int64 `avro:"interaction_last_at_by_channel"`
	// Consent holds the latest consent event per channel, indexed like
	// Channels: t for a grant at event time t, -t for a withdrawal at t, 0
	// for none (empty before the first consent event).
	Consent []int64 `avro:"consent_by_channel"`
	// Categories holds the customer's categories by net spend, highest
	// first (ties: more purchases, then name), at most the policy's
	// categories.tracked. DistinctCategories counts the categories bought
	// in (one dropped from the list and bought again counts again).
	Categories         []CategoryStat `avro:"categories"`
	DistinctCategories int64          `avro:"distinct_categories"`
}

// CategoryStat is a customer's purchases and net spend (purchases minus
// refunds, in base-currency minor units) in one category.
type CategoryStat struct {
	Category  string `avro:"category" json:"category"`
	Purchases int64  `avro:"purchases" json:"purchases"`
	NetMinor  int64  `avro:"net_minor" json:"net_minor"`
}
