package score

import (
	"reflect"
	"strings"
	"testing"

	"valora/schemas"
)

func mustInteract(t testing.TB, p *Policy, c *schemas.Customer, e *schemas.Interaction) Outcome {
	t.Helper()
	o, err := p.ApplyInteraction(c, e)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func onChannel(e *schemas.Interaction, ch schemas.Channel) *schemas.Interaction {
	e.Channel = ch
	return e
}

func scored(e *schemas.Interaction, s int32) *schemas.Interaction {
	e.Satisfaction = &s
	return e
}

// TestRiskReason walks one customer through every reason: a complaint, its
// resolution, a low score, at-risk inactivity and churn by inactivity.
func TestRiskReason(t *testing.T) {
	p := DefaultPolicy() // complaint and low-score periods 30 days, at risk 90, churn 180
	c := &schemas.Customer{CustomerID: "c"}
	mustInteract(t, p, c, interaction(t0, "complaint"))
	if got := p.RiskReason(c, c.EvaluatedAt); got != "" {
		t.Errorf("prospect with a complaint: reason %q, want none", got)
	}
	mustPurchase(t, p, c, purchase(t0+DayMs, 1000))
	check := func(at int64, want string) {
		t.Helper()
		if got := p.RiskReason(c, at); got != want {
			t.Errorf("day %d: reason %q, want %q", (at-t0)/DayMs, got, want)
		}
	}
	check(t0+DayMs, RiskComplaint)
	if c.LifecycleStage != StageAtRisk {
		t.Fatalf("stage %q after a complaint, want at_risk", c.LifecycleStage)
	}
	mustInteract(t, p, c, interaction(t0+2*DayMs, "complaint_resolved"))
	if c.LifecycleStage == StageAtRisk || c.RiskUntil != 0 {
		t.Fatalf("stage %q, risk_until %d after the resolution, want not at risk", c.LifecycleStage, c.RiskUntil)
	}
	check(t0+2*DayMs, "")
	if c.Complaints != 1 || c.ComplaintsResolved != 1 {
		t.Errorf("complaints %d, resolved %d, want 1 and 1", c.Complaints, c.ComplaintsResolved)
	}
	// A complaint that arrives late, dated before the resolution, is
	// resolved already.
	mustInteract(t, p, c, interaction(t0+DayMs+1, "complaint"))
	check(t0+2*DayMs, "")
	if c.Complaints != 2 {
		t.Errorf("complaints %d, want 2", c.Complaints)
	}
	mustInteract(t, p, c, scored(interaction(t0+3*DayMs, "survey_response"), 2))
	check(t0+3*DayMs, RiskLowSatisfaction)
	if c.LastSatisfaction != 2 || c.LastSatisfactionAt != t0+3*DayMs {
		t.Errorf("last satisfaction %d at %d", c.LastSatisfaction, c.LastSatisfactionAt)
	}
	// An older score does not replace the latest.
	mustInteract(t, p, c, scored(interaction(t0+2*DayMs+5, "survey_response"), 9))
	if c.LastSatisfaction != 2 {
		t.Errorf("last satisfaction %d after an older score, want 2", c.LastSatisfaction)
	}
	// A resolution does not end a low score's risk.
	mustInteract(t, p, c, interaction(t0+4*DayMs, "complaint_resolved"))
	check(t0+4*DayMs, RiskLowSatisfaction)
	check(t0+33*DayMs, "")
	check(t0+4*DayMs+90*DayMs, RiskInactivity)
	check(t0+4*DayMs+180*DayMs, RiskInactivity)
	o := p.Evaluate(c, t0+4*DayMs+180*DayMs)
	if !c.ChurnRisk || !o.Changed {
		t.Fatal("not churned after the inactivity window")
	}
	check(c.EvaluatedAt, RiskInactivity)
}

// TestCategories checks the category list: net spend per category, refunds
// subtracting, "uncategorised", the order, the bound and distinct counts.
func TestCategories(t *testing.T) {
	p := DefaultPolicy()
	p.Categories = Categories{TopN: 2, Tracked: 3}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	c := &schemas.Customer{CustomerID: "c"}
	buy := func(at, amount int64, cat string) {
		t.Helper()
		e := purchase(at, amount)
		if cat != "" {
			e.Category = &cat
		}
		mustPurchase(t, p, c, e)
	}
	buy(t0, 1000, "books")
	buy(t0+1, 500, "")
	buy(t0+2, 3000, "games")
	buy(t0+3, 700, "books")
	r := refund(t0+4, 2500)
	games := "games"
	r.Category = &games
	mustPurchase(t, p, c, r)
	want := []schemas.CategoryStat{
		{Category: "books", Purchases: 2, NetMinor: 1700},
		{Category: "games", Purchases: 1, NetMinor: 500},
		{Category: Uncategorised, Purchases: 1, NetMinor: 500},
	}
	if !reflect.DeepEqual(c.Categories, want) {
		t.Fatalf("categories %+v, want %+v", c.Categories, want)
	}
	if got := p.TopCategories(c); !reflect.DeepEqual(got, want[:2]) {
		t.Errorf("top categories %+v, want %+v", got, want[:2])
	}
	// Full: a new category replaces the lowest (uncategorised), a refund
	// in an unknown one changes only the totals.
	buy(t0+5, 100, "toys")
	r = refund(t0+6, 50)
	other := "garden"
	r.Category = &other
	mustPurchase(t, p, c, r)
	want = []schemas.CategoryStat{want[0], want[1], {Category: "toys", Purchases: 1, NetMinor: 100}}
	if !reflect.DeepEqual(c.Categories, want) {
		t.Fatalf("categories %+v, want %+v", c.Categories, want)
	}
	if c.DistinctCategories != 4 {
		t.Errorf("distinct categories %d, want 4", c.DistinctCategories)
	}
	long := strings.Repeat("é", 40) // 80 bytes: cut at 64, on a character
	buy(t0+7, 10000, long)
	if got := c.Categories[0].Category; got != strings.Repeat("é", 32) {
		t.Errorf("long category kept as %q", got)
	}
}

// TestConsentAndPreferredChannel checks grants, withdrawals (the latest
// wins, whatever the order they arrive in), the default, and the preferred
// channel with its tie rule.
func TestConsentAndPreferredChannel(t *testing.T) {
	p := DefaultPolicy()
	c := &schemas.Customer{CustomerID: "c"}
	if got := p.AppendContactable(nil, c); len(got) != 0 {
		t.Errorf("contactable %v with no consent event and default none", got)
	}
	if PreferredChannel(c) != -1 {
		t.Error("preferred channel without interactions")
	}
	mustInteract(t, p, c, onChannel(interaction(t0+10, "consent_granted"), schemas.ChannelEmail))
	mustInteract(t, p, c, onChannel(interaction(t0+20, "consent_granted"), schemas.ChannelPhone))
	mustInteract(t, p, c, onChannel(interaction(t0+30, "consent_withdrawn"), schemas.ChannelPhone))
	mustInteract(t, p, c, onChannel(interaction(t0+5, "consent_withdrawn"), schemas.ChannelEmail)) // older: ignored
	if got, want := p.AppendContactable(nil, c), []schemas.Channel{schemas.ChannelEmail}; !reflect.DeepEqual(got, want) {
		t.Errorf("contactable %v, want %v", got, want)
	}
	// EMAIL 2 interactions (latest t0+10), PHONE 2 (latest t0+30): PHONE.
	if got := PreferredChannel(c); got != schemas.ChannelIndex(schemas.ChannelPhone) {
		t.Errorf("preferred channel %d, want PHONE", got)
	}
	mustInteract(t, p, c, onChannel(interaction(t0+1, "visit"), schemas.ChannelEmail))
	if got := PreferredChannel(c); got != schemas.ChannelIndex(schemas.ChannelEmail) {
		t.Errorf("preferred channel %d, want EMAIL", got)
	}

	granted := DefaultPolicy()
	granted.Consent.Default = ConsentGranted
	if err := granted.Validate(); err != nil {
		t.Fatal(err)
	}
	got := granted.AppendContactable(nil, c)
	if len(got) != schemas.NumChannels-1 || granted.Contactable(c, schemas.ChannelIndex(schemas.ChannelPhone)) {
		t.Errorf("default granted: contactable %v, want every channel but PHONE", got)
	}
}

// TestPolicyProfileErrors checks that bad categories and consent settings
// are named by their field.
func TestPolicyProfileErrors(t *testing.T) {
	base := DefaultPolicy()
	for _, tc := range []struct {
		edit func(p *Policy)
		path string
	}{
		{func(p *Policy) { p.Categories.TopN = 65 }, "categories.top_n"},
		{func(p *Policy) { p.Categories = Categories{TopN: 5, Tracked: 4} }, "categories.tracked"},
		{func(p *Policy) { p.Consent.Default = "maybe" }, "consent.default"},
		{func(p *Policy) { p.Consent.GrantTypes, p.Consent.WithdrawTypes = []string{"x"}, []string{"x"} }, "consent.withdraw_types[0]"},
		{func(p *Policy) { p.Risk.ResolutionTypes = []string{"complaint"} }, "risk.resolution_types[0]"},
	} {
		p := *base
		tc.edit(&p)
		err := p.Validate()
		if err == nil || !strings.Contains(err.Error(), "policy: "+tc.path+":") {
			t.Errorf("%s: error %v, want one naming it", tc.path, err)
		}
	}
}

// TestProfile checks the profile of a scripted customer field by field, and
// that building it again in the same buffer allocates nothing.
func TestProfile(t *testing.T) {
	p := DefaultPolicy()
	c := &schemas.Customer{CustomerID: "c"}
	books := "books"
	e := purchase(t0, 5000)
	e.Category = &books
	mustPurchase(t, p, c, e)
	mustInteract(t, p, c, onChannel(interaction(t0+DayMs, "complaint"), schemas.ChannelPhone))
	mustInteract(t, p, c, onChannel(interaction(t0+DayMs+1, "consent_granted"), schemas.ChannelEmail))
	mustInteract(t, p, c, onChannel(scored(interaction(t0+2*DayMs, "survey_response"), 6), schemas.ChannelSurvey))
	var b ProfileBuf
	pr := ptrTo(p.Profile(c))
	survey := schemas.ChannelSurvey
	want := schemas.CustomerProfile{
		CustomerID: "c", Version: 4, Tier: c.Tier, RScore: c.RScore, FScore: c.FScore, MScore: c.MScore,
		LifecycleStage: StageAtRisk, ValueClass: nil, RiskReason: ptrTo(RiskComplaint), RecencyDays: ptrTo(int32(2)),
		Purchases: 1, MonetaryMinor: 5000, Currency: "USD",
		FirstSeen: t0, LastActivity: t0 + 2*DayMs, FirstPurchase: t0, LastPurchase: t0, RiskUntil: t0 + 31*DayMs,
		EvaluatedAt: t0 + 2*DayMs, PolicyVersion: "default-1", Action: ptrTo(ActionNurture),
		InteractionsByChannel: map[string]int64{"PHONE": 1, "EMAIL": 1, "SURVEY": 1},
		PurchasesByChannel:    map[string]int64{"WEB": 1},
		PreferredChannel:      &survey, // one interaction on each: the latest
		ContactableChannels:   []schemas.Channel{schemas.ChannelEmail},
		Categories:            []schemas.CategoryStat{{Category: "books", Purchases: 1, NetMinor: 5000}},
		FavouriteCategory:     ptrTo("books"), DistinctCategories: 1,
		Complaints: 1, LastComplaintAt: t0 + DayMs, LastSatisfaction: ptrTo(int32(6)),
		// The default policy's tier-based treatments: nurture, automated.
		Treatment: ptrTo(ActionNurture), Relationship: ptrTo(RelationshipAutomated), RelationshipCostMinor: ptrTo(int64(20)),
	}
	if !reflect.DeepEqual(*pr, want) {
		t.Errorf("profile\n%+v\nwant\n%+v", *pr, want)
	}
	built := p.ProfileTo(&b, c, nil)
	if !reflect.DeepEqual(built.InteractionCounts, c.InteractionsByChannel) || built.InteractionsByChannel != nil {
		t.Errorf("ProfileTo: counters %v, map %v; want the customer's counters and no map", built.InteractionCounts, built.InteractionsByChannel)
	}
	if n := testing.AllocsPerRun(100, func() { p.ProfileTo(&b, c, nil) }); n != 0 {
		t.Errorf("ProfileTo allocates %v times, want 0", n)
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestProfileReusesValuation checks that a profile built with the
// valuation of the customer's last evaluation (an Outcome's Value) equals
// one that evaluates the models itself.
func TestProfileReusesValuation(t *testing.T) {
	p := modelPolicy(t, 0.3, &ValueClasses{ReviewDays: 7, HighYieldCLVMinor: 1e5, HighYieldMonetaryMinor: 1e5,
		HighPotentialCLVMinor: 1e4, BelowZeroCLVMinor: 100})
	c := &schemas.Customer{CustomerID: "c"}
	var o Outcome
	for i := range int64(4) {
		o = mustPurchase(t, p, c, purchase(t0+i*9*DayMs, 3000+i*500))
	}
	if !o.Valued {
		t.Fatal("an evaluation under value classes is not Valued")
	}
	var a, b ProfileBuf
	with, without := p.ProfileTo(&a, c, &o.Value), p.ProfileTo(&b, c, nil)
	if with.PAlive == nil || !reflect.DeepEqual(*with, *without) {
		t.Errorf("profile with the outcome's value\n%+v\nwithout\n%+v", *with, *without)
	}
}
