package gen

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"valora/schemas"
)

// describe renders every field of ev, pointers dereferenced.
func describe(ev *Event) string {
	switch ev.Kind {
	case KindInteraction:
		in := ev.Interaction
		sat := "nil"
		if in.Satisfaction != nil {
			sat = fmt.Sprint(*in.Satisfaction)
		}
		return fmt.Sprintf("I %s %s %d %s %s %s %v", in.EventID, in.CustomerID, in.OccurredAt,
			in.Channel, in.Type, sat, in.Attributes)
	case KindPurchase:
		pu := ev.Purchase
		cat := "nil"
		if pu.Category != nil {
			cat = *pu.Category
		}
		return fmt.Sprintf("P %s %s %d %s %d %s %s %s %d", pu.EventID, pu.CustomerID, pu.OccurredAt,
			pu.Kind, pu.AmountMinor, pu.Currency, pu.Channel, cat, pu.Items)
	}
	return fmt.Sprintf("kind %v", ev.Kind)
}

// drain returns every event of a Generator for p, rendered by describe.
func drain(t testing.TB, p Params) []string {
	t.Helper()
	g, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var ev Event
	for g.Next(&ev) {
		out = append(out, describe(&ev))
	}
	return out
}

func smallParams(seed uint64) Params {
	p := DefaultParams()
	p.Customers = 300
	p.Seed = seed
	p.Currencies = []string{"EUR", "USD", "JPY"}
	p.RefundShare = 0.2
	p.ComplaintShare = 0.1
	return p
}

func TestDefaultParamsValid(t *testing.T) {
	p := DefaultParams()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := p.Alpha, 4.414*7; got != want {
		t.Errorf("Alpha = %v, want the weekly CDNOW fit times 7 = %v", got, want)
	}
}

func TestValidate(t *testing.T) {
	f := func(field string, edit func(*Params)) {
		t.Helper()
		p := DefaultParams()
		edit(&p)
		err := p.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("%s: Validate() = %v, want a *FieldError", field, err)
		}
		if fe.Field != field {
			t.Errorf("%s: error names field %q (%v)", field, fe.Field, err)
		}
		if !strings.Contains(err.Error(), "Params."+field) {
			t.Errorf("%s: message %q does not name the field", field, err)
		}
		if _, err := New(p); err == nil {
			t.Errorf("%s: New accepted invalid params", field)
		}
	}
	f("Customers", func(p *Params) { p.Customers = 0 })
	f("Customers", func(p *Params) { p.Customers = MaxCustomers + 1 })
	f("Horizon", func(p *Params) { p.Horizon = -time.Second })
	f("Horizon", func(p *Params) { p.Horizon = MaxSpan + time.Hour })
	f("ArrivalDays", func(p *Params) { p.ArrivalDays = -1 })
	f("ArrivalDays", func(p *Params) { p.ArrivalDays = math.NaN() })
	f("R", func(p *Params) { p.R = 0 })
	f("Alpha", func(p *Params) { p.Alpha = math.Inf(1) })
	f("A", func(p *Params) { p.A = -1 })
	f("B", func(p *Params) { p.B = 0 })
	f("P", func(p *Params) { p.P = 0 })
	f("Q", func(p *Params) { p.Q = math.NaN() })
	f("Gamma", func(p *Params) { p.Gamma = 0 })
	f("ProspectShare", func(p *Params) { p.ProspectShare = 1.5 })
	f("LeadDays", func(p *Params) { p.LeadDays = -2 })
	f("InteractionRate", func(p *Params) { p.InteractionRate = -0.1 })
	f("EngagementDays", func(p *Params) { p.EngagementDays = 0 })
	f("ComplaintShare", func(p *Params) { p.ComplaintShare = -0.1 })
	f("RefundShare", func(p *Params) { p.RefundShare = math.NaN() })
	f("Currencies", func(p *Params) { p.Currencies = []string{"USD", "XXX"} })
	f("Currencies", func(p *Params) { p.Currencies = []string{"USD", "USD"} })
	f("Skew", func(p *Params) { p.Skew = -1 })

	// Every invalid field is reported, not only the first.
	p := DefaultParams()
	p.R, p.Gamma = 0, 0
	err := p.Validate()
	for _, field := range []string{"Params.R ", "Params.Gamma "} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate() = %v, want it to name %s", err, field)
		}
	}

	// EngagementDays may be 0 when there are no interactions; Currencies may
	// be nil.
	p = DefaultParams()
	p.InteractionRate, p.EngagementDays, p.Currencies = 0, 0, nil
	if err := p.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
}

func TestDeterminism(t *testing.T) {
	p := smallParams(7)
	a, b := drain(t, p), drain(t, p)
	if len(a) < 1000 {
		t.Fatalf("only %d events; the test needs more", len(a))
	}
	if !slices.Equal(a, b) {
		t.Fatal("same Params gave different event sequences")
	}
	p.Seed = 8
	if c := drain(t, p); slices.Equal(a, c) {
		t.Fatal("different seeds gave the same event sequence")
	}
}

func TestHorizonGivesPrefix(t *testing.T) {
	p := smallParams(3)
	p.Horizon = 0
	full := drain(t, p)
	p.Horizon = 60 * 24 * time.Hour
	short := drain(t, p)
	if len(short) == 0 || len(short) >= len(full) {
		t.Fatalf("%d events with a short horizon, %d without", len(short), len(full))
	}
	if !slices.Equal(short, full[:len(short)]) {
		t.Fatal("a shorter horizon is not a prefix of the longer run")
	}
	end := p.Start.Add(p.Horizon).UnixMilli()
	g, _ := New(p)
	var ev Event
	for g.Next(&ev) {
		if ev.OccurredAt() >= end {
			t.Fatalf("event %s at %d, at or after the horizon %d", ev.EventID(), ev.OccurredAt(), end)
		}
	}
}

func TestCustomerIndependentOfPopulation(t *testing.T) {
	small, large := smallParams(5), smallParams(5)
	small.Customers, large.Customers = 100, 250
	want := drain(t, small)
	var got []string
	for _, s := range drain(t, large) {
		if customerIndex(strings.Fields(s)[2]) < small.Customers {
			got = append(got, s)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatal("customers' events depend on the population size")
	}
}

func TestPurchasesIndependentOfInteractions(t *testing.T) {
	p := smallParams(11)
	p.InteractionRate = 0
	noInteractions := drain(t, p)
	q := smallParams(11)
	q.InteractionRate, q.LeadDays = 0.5, 0 // first purchase at the first touch either way
	var purchases []string
	for _, s := range drain(t, q) {
		if s[0] == 'P' {
			purchases = append(purchases, s)
		}
	}
	if !slices.Equal(purchases, noInteractions) {
		t.Fatal("purchases depend on the interaction parameters")
	}
}

func TestOrderIDsAndPeek(t *testing.T) {
	p := smallParams(1)
	p.Horizon = 0
	g, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	ids := make(map[string]bool)
	// Per customer: next purchase and interaction numbers, last event time.
	nextP := make(map[string]int)
	nextI := make(map[string]int)
	last := make(map[string]int64)
	var prev int64 = math.MinInt64
	var ev Event
	for {
		at, ok := g.Peek()
		if !g.Next(&ev) {
			if ok {
				t.Fatal("Peek reported an event that Next did not return")
			}
			break
		}
		if !ok || at != ev.OccurredAt() {
			t.Fatalf("Peek() = %d, %v; Next returned an event at %d", at, ok, ev.OccurredAt())
		}
		if ev.OccurredAt() < prev {
			t.Fatalf("event %s at %d after an event at %d", ev.EventID(), ev.OccurredAt(), prev)
		}
		prev = ev.OccurredAt()
		id, cust := ev.EventID(), ev.CustomerID()
		if ids[id] {
			t.Fatalf("duplicate event id %s", id)
		}
		ids[id] = true
		if ev.OccurredAt() < last[cust] {
			t.Fatalf("customer %s: event %s goes back in time", cust, id)
		}
		last[cust] = ev.OccurredAt()
		var want string
		switch {
		case ev.Kind == KindInteraction:
			want = fmt.Sprintf("%s-i%d", cust, nextI[cust])
			nextI[cust]++
			if ev.Purchase != (schemas.Purchase{}) {
				t.Fatal("interaction event with a purchase set")
			}
		case ev.Purchase.Kind == schemas.KindPurchase:
			want = fmt.Sprintf("%s-p%d", cust, nextP[cust])
			nextP[cust]++
			if ev.Interaction.EventID != "" {
				t.Fatal("purchase event with an interaction set")
			}
		default:
			want = id // checked in TestEventContents
		}
		if id != want {
			t.Fatalf("event id %s, want %s", id, want)
		}
	}
	if _, ok := g.Peek(); ok || g.Next(&ev) {
		t.Fatal("the generator restarted after it ended")
	}
	if g.Emitted() != uint64(len(ids)) {
		t.Errorf("Emitted() = %d, want %d", g.Emitted(), len(ids))
	}
}

func TestEventContents(t *testing.T) {
	p := DefaultParams()
	p.Customers = 5000
	p.Seed = 2
	p.Horizon = 0
	p.Currencies = []string{"EUR", "USD", "JPY"}
	p.RefundShare = 0.2
	p.ComplaintShare = 0.1
	p.InteractionRate = 0.2
	g, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	var (
		ev                      Event
		channels                = make(map[schemas.Channel]int)
		serviceTypes            = make(map[string]int)
		interactions, negatives int
		purchases               = make(map[string]schemas.Purchase)
		refunds                 int
		purchaseCount           = make(map[string]int)
		interactionCount        = make(map[string]int)
		firstTouch              = make(map[string]int64)
		lastOwn                 = make(map[string]int64)
	)
	arrivalEnd := p.Start.UnixMilli() + int64(p.ArrivalDays*msPerDay)
	for g.Next(&ev) {
		cust := ev.CustomerID()
		if _, seen := firstTouch[cust]; !seen {
			firstTouch[cust] = ev.OccurredAt()
			if ev.Kind != KindInteraction {
				t.Fatalf("customer %s: first event %s is not an interaction", cust, ev.EventID())
			}
			if ev.OccurredAt() < p.Start.UnixMilli() || ev.OccurredAt() >= arrivalEnd {
				t.Fatalf("customer %s: first touch outside the arrival window", cust)
			}
		}
		switch {
		case ev.Kind == KindInteraction:
			in := ev.Interaction
			interactions++
			interactionCount[cust]++
			lastOwn[cust] = in.OccurredAt
			channels[in.Channel]++
			if schemas.ChannelIndex(in.Channel) < 0 || in.Type == "" {
				t.Fatalf("bad interaction %s", describe(&ev))
			}
			if (in.Channel == schemas.ChannelSurvey) != (in.Satisfaction != nil) {
				t.Fatalf("satisfaction set off survey or missing on survey: %s", describe(&ev))
			}
			if s := in.Satisfaction; s != nil && (*s < 0 || *s > 10) {
				t.Fatalf("satisfaction %d out of range", *s)
			}
			if in.Type == typeComplaint || (in.Satisfaction != nil && *in.Satisfaction <= lowScoreMax) {
				negatives++
			}
			serviceTypes[in.Type]++
		case ev.Purchase.Kind == schemas.KindPurchase:
			pu := ev.Purchase
			purchaseCount[cust]++
			lastOwn[cust] = pu.OccurredAt
			purchases[pu.EventID] = pu
			if pu.AmountMinor <= 0 || pu.Items < 1 || !slices.Contains(p.Currencies, pu.Currency) ||
				schemas.ChannelIndex(pu.Channel) < 0 {
				t.Fatalf("bad purchase %s", describe(&ev))
			}
		case ev.Purchase.Kind == schemas.KindRefund:
			r := ev.Purchase
			refunds++
			orig, ok := purchases[strings.Replace(r.EventID, "-r", "-p", 1)]
			if !ok {
				t.Fatalf("refund %s of an unknown or later purchase", r.EventID)
			}
			if r.OccurredAt <= orig.OccurredAt || r.AmountMinor != orig.AmountMinor ||
				r.Currency != orig.Currency || r.Channel != orig.Channel ||
				r.Category != orig.Category || r.Items != orig.Items || r.CustomerID != orig.CustomerID {
				t.Fatalf("refund %s does not match purchase %s", describe(&ev), orig.EventID)
			}
		default:
			t.Fatalf("unknown event %s", describe(&ev))
		}
	}

	for _, ch := range schemas.Channels {
		if channels[ch] == 0 {
			t.Errorf("no interaction on channel %s", ch)
		}
	}
	for _, ch := range []schemas.Channel{schemas.ChannelWeb, schemas.ChannelApp, schemas.ChannelEmail} {
		if channels[ch] < channels[schemas.ChannelFax]*5 {
			t.Errorf("channel %s (%d) not favoured over FAX (%d)", ch, channels[ch], channels[schemas.ChannelFax])
		}
	}
	within(t, "complaint share", float64(negatives)/float64(interactions), p.ComplaintShare, 0.1)
	// Service and consent events: every kind appears, resolutions never
	// outnumber complaints, and each customer opts in once at most.
	for _, typ := range []string{typeComplaintResolved, typeConsentGranted, typeConsentWithdrawn} {
		if serviceTypes[typ] == 0 {
			t.Errorf("no %s interaction", typ)
		}
	}
	if serviceTypes[typeComplaintResolved] > serviceTypes[typeComplaint] || serviceTypes[typeConsentGranted] > p.Customers {
		t.Errorf("interaction types %v: more resolutions than complaints, or more opt-ins than customers", serviceTypes)
	}
	// Refunds due after MaxSpan are dropped; with Horizon 0 they are a
	// negligible few.
	within(t, "refund share", float64(refunds)/float64(len(purchases)), p.RefundShare, 0.1)

	prospects, dead := 0, 0
	for i := range p.Customers {
		tr := g.Truth(i)
		if tr.Purchases != purchaseCount[tr.ID] || tr.Interactions != interactionCount[tr.ID] {
			t.Fatalf("customer %s: Truth counts %d purchases and %d interactions, events %d and %d",
				tr.ID, tr.Purchases, tr.Interactions, purchaseCount[tr.ID], interactionCount[tr.ID])
		}
		if tr.Prospect {
			prospects++
			if tr.Purchases != 0 {
				t.Fatalf("prospect %s purchased", tr.ID)
			}
		}
		if !tr.Alive {
			dead++
			// A customer drops out right after a repeat purchase: that
			// purchase is its last own event.
			if tr.Purchases < 2 {
				t.Fatalf("customer %s dropped out after %d purchases", tr.ID, tr.Purchases)
			}
			id := fmt.Sprintf("%s-p%d", tr.ID, tr.Purchases-1)
			if purchases[id].OccurredAt != lastOwn[tr.ID] {
				t.Fatalf("customer %s has events after dropping out", tr.ID)
			}
		}
	}
	within(t, "prospect share", float64(prospects)/float64(p.Customers), p.ProspectShare, 0.25)
	if dead == 0 {
		t.Error("no customer dropped out in 100 years")
	}
}

// within fails t unless got is within relTol of want, relatively.
func within(t *testing.T, what string, got, want, relTol float64) {
	t.Helper()
	if math.Abs(got-want) > relTol*math.Abs(want) {
		t.Errorf("%s = %.4g, want %.4g within %.0f%%", what, got, want, relTol*100)
	} else {
		t.Logf("%s = %.4g (model %.4g)", what, got, want)
	}
}

func TestCurrencyConversion(t *testing.T) {
	p := smallParams(4)
	p.Customers = 2000
	p.Horizon = 0
	p.InteractionRate = 0
	p.Currencies = []string{"EUR", "JPY", "KWD"}
	g, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	// The base-currency value of a purchase is P/nu on average; sum both
	// sides per currency.
	sum := make(map[string]float64)
	want := make(map[string]float64)
	var ev Event
	for g.Next(&ev) {
		pu := ev.Purchase
		if pu.Kind != schemas.KindPurchase {
			continue
		}
		n := customerIndex(pu.CustomerID)
		perUSD, digits, _ := ReferenceRate(pu.Currency)
		basePerUSD, _, _ := ReferenceRate("EUR")
		sum[pu.Currency] += float64(pu.AmountMinor) / math.Pow10(digits) * basePerUSD / perUSD
		want[pu.Currency] += p.P / g.Truth(n).Nu
	}
	for _, c := range p.Currencies {
		within(t, "base value of "+c+" purchases", sum[c], want[c], 0.05)
	}
}

func TestTermination(t *testing.T) {
	p := DefaultParams()
	p.Customers = 3000
	p.Horizon = 0
	p.InteractionRate = 1
	g, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	end := p.Start.Add(MaxSpan).UnixMilli()
	var ev Event
	n := 0
	for g.Next(&ev) {
		if ev.OccurredAt() >= end {
			t.Fatalf("event after MaxSpan: %s", describe(&ev))
		}
		n++
	}
	t.Logf("%d events for %d customers with no horizon", n, p.Customers)
}

func TestSkew(t *testing.T) {
	p := DefaultParams()
	p.Customers = 10000
	p.Skew = 1
	g, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	var head, tail, total float64
	for i := range p.Customers {
		r := g.Truth(i).InteractionRate
		total += r
		if i < 10 {
			head += r
		}
		if i >= p.Customers-10 {
			tail += r
		}
	}
	if head < 1000*tail {
		t.Errorf("skew 1: the first 10 customers interact %.3g/day, the last 10 %.3g/day", head, tail)
	}
	// Normalised: the mean rate stays near InteractionRate (the Gamma
	// factors are noisy; the hottest customers dominate the sum).
	within(t, "mean interaction rate", total/float64(p.Customers), p.InteractionRate, 0.5)
}

func TestMemoryPerCustomer(t *testing.T) {
	const n = 200_000
	p := DefaultParams()
	p.Customers = n
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	g, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perCustomer := float64(after.HeapAlloc-before.HeapAlloc) / n
	runtime.KeepAlive(g)
	t.Logf("%.1f bytes per customer", perCustomer)
	if perCustomer > 100 {
		t.Errorf("%.1f bytes per customer, want at most 100", perCustomer)
	}
}

func TestNextAllocatesOnlyTheEventID(t *testing.T) {
	p := DefaultParams()
	p.Customers = 20_000
	g, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	var ev Event
	for range 50_000 { // warm up the refund table
		g.Next(&ev)
	}
	if allocs := testing.AllocsPerRun(20_000, func() { g.Next(&ev) }); allocs > 1 {
		t.Errorf("Next allocates %v times per event, want at most 1", allocs)
	}
}
