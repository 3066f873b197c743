package schemas

import (
	"context"
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

var testTopics = TopicNames{
	Interactions: "interactions",
	Purchases:    "purchases",
	Erasures:     "customer-erasures",
	TierChanges:  "customer-tier-changes",
	Profiles:     "customer-profiles",
}

func ptr[T any](v T) *T { return &v }

// Fixed samples: the golden files hold their single-object encodings.

func sampleInteraction() *Interaction {
	return &Interaction{
		EventID:      "int-000001",
		CustomerID:   "cust-0042",
		OccurredAt:   1767225600123, // 2026-01-01T00:00:00.123Z
		Channel:      ChannelSurvey,
		Type:         "survey_response",
		Satisfaction: ptr(int32(9)),
		Attributes:   map[string]string{"campaign": "spring-2026"},
	}
}

func samplePurchase() *Purchase {
	return &Purchase{
		EventID:     "pur-000001",
		CustomerID:  "cust-0042",
		OccurredAt:  1767225660456,
		Kind:        KindPurchase,
		AmountMinor: 12999,
		Currency:    "EUR",
		Channel:     ChannelWeb,
		Category:    ptr("books"),
		Items:       3,
	}
}

func sampleErasure() *ErasureRequest {
	return &ErasureRequest{
		CustomerID:  "cust-0042",
		RequestedAt: 1767312000000,
		Reason:      ptr("gdpr_art17"),
	}
}

func sampleTierChange() *TierChange {
	return &TierChange{
		EventID:               "cust-0042/17",
		CustomerID:            "cust-0042",
		Version:               17,
		OccurredAt:            1767225660456,
		Cause:                 CausePurchase,
		PreviousTier:          ptr("Promising"),
		Tier:                  "Loyal",
		ChurnRisk:             false,
		LifecycleStage:        "active",
		ValueClass:            ptr("high_potential"),
		RecencyDays:           ptr(int32(0)),
		Frequency:             5,
		Monetary:              54321,
		Currency:              "EUR",
		RScore:                5,
		FScore:                4,
		MScore:                3,
		PAlive:                ptr(0.875),
		ExpectedPurchases:     ptr(1.25),
		CLV:                   ptr(98765.5),
		PolicyVersion:         "rfm-default-1",
		Action:                ptr("grow"),
		RiskReason:            ptr("complaint"),
		ContactableChannels:   []Channel{ChannelEmail, ChannelApp},
		Treatment:             ptr("develop"),
		Relationship:          ptr("personal"),
		RelationshipCostMinor: ptr(int64(2000)),
	}
}

func sampleProfile() *CustomerProfile {
	return &CustomerProfile{
		CustomerID: "cust-0042", Version: 17, Tier: "loyal", RScore: 5, FScore: 4, MScore: 3,
		ChurnRisk: false, LifecycleStage: "at_risk", ValueClass: ptr("high_potential"), RiskReason: ptr("complaint"),
		RecencyDays: ptr(int32(0)), Purchases: 5, Refunds: 1, RepeatDays: 4, MonetaryMinor: 54321, Currency: "EUR",
		PAlive: ptr(0.875), ExpectedPurchases: ptr(1.25), CLV: ptr(98765.5),
		FirstSeen: 1764547200000, LastActivity: 1767225660456, FirstPurchase: 1764633600000,
		LastPurchase: 1767225660456, RiskUntil: 1769817600000, ReactivatedAt: 0, EvaluatedAt: 1767225660456,
		PolicyVersion: "rfm-default-1", Action: ptr("retain"),
		InteractionsByChannel: map[string]int64{"EMAIL": 3, "WEB": 12},
		PurchasesByChannel:    map[string]int64{"WEB": 4, "STORE": 1},
		PreferredChannel:      ptr(ChannelWeb),
		ContactableChannels:   []Channel{ChannelEmail},
		Categories: []CategoryStat{
			{Category: "books", Purchases: 3, NetMinor: 40321},
			{Category: "uncategorised", Purchases: 2, NetMinor: 14000},
		},
		FavouriteCategory: ptr("books"), DistinctCategories: 2,
		Complaints: 1, ComplaintsResolved: 0, LastComplaintAt: 1767225600000, LastSatisfaction: ptr(int32(7)),
	}
}

func minimalProfile() *CustomerProfile {
	return &CustomerProfile{CustomerID: "c", Version: math.MaxInt64, Tier: "prospect", LifecycleStage: "prospect",
		Currency: "USD", PolicyVersion: "p", InteractionsByChannel: map[string]int64{}, PurchasesByChannel: map[string]int64{}}
}

func sampleCustomer() *Customer {
	return &Customer{
		CustomerID:            "cust-0042",
		Version:               17,
		FirstSeen:             1764547200000,
		LastActivity:          1767225660456,
		FirstPurchase:         1764633600000,
		LastPurchase:          1767225660456,
		Purchases:             5,
		Refunds:               1,
		RepeatDays:            4,
		MonetaryMinor:         54321,
		InteractionsByChannel: []int64{3, 0, 12, 7, 1, 0, 2, 1, 0, 0},
		PurchasesByChannel:    []int64{0, 0, 3, 1, 1, 0, 0, 0, 0, 0},
		RiskUntil:             0,
		ReactivatedAt:         0,
		Tier:                  "Loyal",
		RScore:                5,
		FScore:                4,
		MScore:                3,
		ChurnRisk:             false,
		LifecycleStage:        "active",
		ValueClass:            ptr("high_potential"),
		EvaluatedAt:           1767225660456,
		PolicyVersion:         "rfm-default-1",
		TimerAt:               1769817660456,
		RecentEventHashes:     []int64{-8141541283227426211, 42, 7340429066283462761},
		Complaints:            2,
		ComplaintsResolved:    1,
		LastComplaintAt:       1766880000000,
		LastResolvedAt:        1766966400000,
		LowSatisfactionUntil:  0,
		LastSatisfaction:      8,
		LastSatisfactionAt:    1767139200000,
		InteractionLastAt:     []int64{1767139200000, 0, 1767225600000, 1767052800000, 1766361600000, 0, 1767139200000, 1766880000000, 0, 0},
		Consent:               []int64{1764547200000, 0, 0, 0, 0, 0, 0, 0, 0, -1766966400000},
		Categories: []CategoryStat{
			{Category: "books", Purchases: 3, NetMinor: 40321},
			{Category: "uncategorised", Purchases: 2, NetMinor: 14000},
		},
		DistinctCategories: 2,
		Treatment:          "develop",
	}
}

// Minimal samples: every nullable field null, every collection empty, and
// extreme numbers.

func minimalInteraction() *Interaction {
	return &Interaction{EventID: "", CustomerID: "c", OccurredAt: math.MinInt64, Channel: ChannelOther, Type: "visit", Attributes: map[string]string{}}
}

func minimalPurchase() *Purchase {
	return &Purchase{EventID: "e", CustomerID: "c", OccurredAt: math.MaxInt64, Kind: KindRefund, AmountMinor: math.MaxInt64, Currency: "JPY", Channel: ChannelEmail, Items: math.MinInt32}
}

func minimalErasure() *ErasureRequest {
	return &ErasureRequest{CustomerID: "c"}
}

func minimalTierChange() *TierChange {
	return &TierChange{EventID: "c/1", CustomerID: "c", Version: 1, Cause: CauseErasure, Tier: "", ChurnRisk: true, PolicyVersion: "p"}
}

func minimalCustomer() *Customer {
	return &Customer{CustomerID: "c", InteractionsByChannel: []int64{}, PurchasesByChannel: []int64{}, RecentEventHashes: []int64{},
		LastSatisfaction: math.MinInt32, InteractionLastAt: []int64{}, Consent: []int64{}, Categories: []CategoryStat{}, DistinctCategories: math.MaxInt64}
}

// newRegistry starts a fake schema registry for the test.
func newRegistry(t testing.TB) (*srfake.Registry, *sr.Client) {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatalf("sr.NewClient: %v", err)
	}
	return reg, cl
}

func newSOECodec(t testing.TB) *Codec {
	t.Helper()
	c, err := NewCodec(context.Background(), Options{})
	if err != nil {
		t.Fatalf("NewCodec: %v", err)
	}
	return c
}

func newConfluentCodec(t testing.TB, cl *sr.Client) *Codec {
	t.Helper()
	c, err := NewCodec(context.Background(), Options{Framing: FramingConfluent, Registry: cl, Topics: testTopics})
	if err != nil {
		t.Fatalf("NewCodec: %v", err)
	}
	return c
}
