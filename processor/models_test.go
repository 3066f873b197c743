package processor

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/kafkatest"
	"valora/processor/clv"
	"valora/processor/httpapi"
	"valora/processor/score"
	"valora/schemas"
)

// modelsPolicy is the default policy with lifetime-value models in days
// (the published CDNOW BG/NBD and Gamma-Gamma estimates), the P(alive)
// churn rule at 0.3 and value classes, named version.
func modelsPolicy(t *testing.T, version string, classes *score.ValueClasses) *score.Policy {
	t.Helper()
	p := score.DefaultPolicy()
	p.Version = version
	p.Models = &clv.Model{
		Unit:         clv.Day,
		BGNBD:        clv.BGNBD{R: 0.243, Alpha: 4.414 * 7, A: 0.793, B: 2.426},
		GammaGamma:   clv.GammaGamma{P: 6.25, Q: 3.74, Gamma: 15.44},
		Horizon:      365,
		DiscountRate: 0.1,
	}
	p.Churn.PAliveBelow = 0.3
	p.ValueClasses = classes
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

func closeTo(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// TestModelsEndToEnd runs the processor under a policy with models: every
// tier change of a buyer carries p_alive, expected_purchases and clv equal
// to the models evaluated on the buyer's purchases up to the change; the
// buyer, silent after buying every five days, is churned by the P(alive)
// timer at the moment the policy predicts, long before the inactivity
// window. Then the instance restarts under a new policy version without
// value classes: each customer whose class it clears gets exactly one
// POLICY_CHANGE, and a further restart adds none.
func TestModelsEndToEnd(t *testing.T) {
	h := newHarness(t, 1)
	dir, group := t.TempDir(), kafkatest.Name(t, "g")
	classes := &score.ValueClasses{ReviewDays: 7, HighYieldMonetaryMinor: 1_000_000, HighYieldCLVMinor: 1e6, HighPotentialCLVMinor: 1000, BelowZeroCLVMinor: 10}
	pol := modelsPolicy(t, "models-1", classes)
	run := func(p *score.Policy) *running {
		return h.start(dir, group, func(c *Config) { c.Time = TimeEvent; c.Policy = p })
	}
	r := run(pol)

	// The buyer: a purchase every 5 days for 50 days.
	var buys []int64
	local := &schemas.Customer{CustomerID: "buyer"}
	for d := 0; d <= 50; d += 5 {
		buys = append(buys, day(d))
		r.send(h.buy("buyer", day(d), 3000))
		if _, err := pol.ApplyPurchase(local, &schemas.Purchase{EventID: fmt.Sprint(d), CustomerID: "buyer", OccurredAt: day(d),
			Kind: schemas.KindPurchase, AmountMinor: 3000, Currency: "USD", Channel: schemas.ChannelWeb, Items: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// When the policy says P(alive) churns it: walk its deadlines.
	var churnAt int64
	for range 20 {
		d := pol.NextDeadline(local)
		if d == 0 {
			t.Fatal("the policy never churns the buyer")
		}
		pol.Evaluate(local, d)
		if local.ChurnRisk {
			churnAt = d
			break
		}
	}
	last := buys[len(buys)-1]
	if churnAt-last >= pol.Churn.InactivityDays*dayMs {
		t.Fatalf("churn at %d days idle: not earlier than the inactivity rule", (churnAt-last)/dayMs)
	}

	// Another customer moves stream time one millisecond short of it, then
	// past it.
	r.send(h.buy("other", churnAt-1, 3000))
	if got := transitions(h.customerChanges(t, "buyer"), isChurned); len(got) != 0 {
		t.Fatalf("churned before stream time reached %d: %+v", churnAt, got)
	}
	r.send(h.buy("other", churnAt+dayMs, 3000))
	changes := h.customerChanges(t, "buyer")
	got := transitions(changes, isChurned)
	if len(got) != 1 || got[0].OccurredAt != churnAt || got[0].Cause != schemas.CauseInactivity {
		t.Fatalf("churn transitions %+v, want one at %d with cause INACTIVITY", got, churnAt)
	}
	checkChain(t, changes)

	// Every change carries the models' values at its time.
	m := *pol.Models
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	for i, c := range changes {
		if c.PAlive == nil || c.ExpectedPurchases == nil || c.CLV == nil {
			t.Fatalf("change %d has no model values: %+v", i, c)
		}
		// The purchases before the change, and its own if it is one (a
		// timer due at a purchase's time fires before the purchase).
		n := 0
		for n < len(buys) && (buys[n] < c.OccurredAt || buys[n] == c.OccurredAt && c.Cause == schemas.CausePurchase) {
			n++
		}
		x, lastBuy := int64(n-1), buys[n-1]
		s := clv.SummaryAt(x, buys[0], lastBuy, c.OccurredAt, clv.Day)
		want := m.Evaluate(s, 30.00)
		if !closeTo(*c.PAlive, want.PAlive) || !closeTo(*c.ExpectedPurchases, want.ExpectedPurchases) || !closeTo(*c.CLV, want.CLV*100) {
			t.Errorf("change %d at day %.1f: p_alive %v expected %v clv %v, want %v %v %v", i, float64(c.OccurredAt-buys[0])/dayMs,
				*c.PAlive, *c.ExpectedPurchases, *c.CLV, want.PAlive, want.ExpectedPurchases, want.CLV*100)
		}
	}
	if got[0].ValueClass == nil {
		t.Fatalf("churned buyer has no value class (clv %v)", *got[0].CLV)
	}
	// The class gauge counts each customer under its latest class.
	wantClasses := map[string]float64{}
	for _, id := range []string{"buyer", "other"} {
		cs := h.customerChanges(t, id)
		if vc := cs[len(cs)-1].ValueClass; vc != nil {
			wantClasses[*vc]++
		}
	}
	kafkatest.Eventually(t, 10*time.Second, func() error {
		if got := classGauge(t, r); !maps.Equal(got, wantClasses) {
			return fmt.Errorf("valora_customers_value_class %v, want %v", got, wantClasses)
		}
		return nil
	})

	// A new policy version without value classes: every classed customer
	// loses its class in one POLICY_CHANGE.
	if err := r.shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	before := len(h.customerChanges(t, "buyer"))
	pol2 := modelsPolicy(t, "models-2", nil)
	r = run(pol2)
	r.send(h.buy("other", churnAt+2*dayMs, 3000))
	kafkatest.Eventually(t, time.Minute, func() error {
		if n := len(h.customerChanges(t, "buyer")); n <= before {
			return fmt.Errorf("%d changes of the buyer, none since the restart", n)
		}
		return nil
	})
	changes = h.customerChanges(t, "buyer")
	pc := changes[before:]
	if len(pc) != 1 || pc[0].Cause != schemas.CausePolicyChange || pc[0].ValueClass != nil || pc[0].PolicyVersion != "models-2" {
		t.Fatalf("after the policy change: %+v, want one POLICY_CHANGE with no value class under models-2", pc)
	}
	checkChain(t, changes)
	// Restored under their old classes, then cleared: the gauge is empty.
	kafkatest.Eventually(t, 10*time.Second, func() error {
		if got := classGauge(t, r); len(got) != 0 {
			return fmt.Errorf("valora_customers_value_class %v without value classes in the policy", got)
		}
		return nil
	})

	// A restart under the same policy re-announces nothing.
	if err := r.shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	r = run(pol2)
	r.send(h.buy("other", churnAt+3*dayMs, 3000))
	if n := len(h.customerChanges(t, "buyer")); n != len(changes) {
		t.Errorf("%d changes after a restart under the same policy, want %d", n, len(changes))
	}

	// The HTTP lookup shows the model values at the last evaluation.
	w := httptest.NewRecorder()
	httpapi.Handler(r.p, r.reg, nil).ServeHTTP(w, httptest.NewRequest("GET", "/v1/customers/buyer", nil))
	var view struct {
		EvaluatedAt       int64    `json:"evaluated_at"`
		PAlive            *float64 `json:"p_alive"`
		ExpectedPurchases *float64 `json:"expected_purchases"`
		CLV               *float64 `json:"clv"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &view); err != nil || w.Code != 200 {
		t.Fatalf("lookup: %d %s", w.Code, w.Body)
	}
	want := m.Evaluate(clv.SummaryAt(int64(len(buys)-1), buys[0], last, view.EvaluatedAt, clv.Day), 30.00)
	if view.PAlive == nil || view.CLV == nil || view.ExpectedPurchases == nil ||
		!closeTo(*view.PAlive, want.PAlive) || !closeTo(*view.CLV, want.CLV*100) || !closeTo(*view.ExpectedPurchases, want.ExpectedPurchases) {
		t.Errorf("lookup model values %s, want p_alive %v expected_purchases %v clv %v", w.Body, want.PAlive, want.ExpectedPurchases, want.CLV*100)
	}
}

// classGauge returns the non-zero series of valora_customers_value_class.
func classGauge(t *testing.T, r *running) map[string]float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "valora_customers_value_class" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if v := m.GetGauge().GetValue(); v != 0 {
				out[m.GetLabel()[0].GetValue()] = v
			}
		}
	}
	return out
}

// policyLabel returns the policy_version label of valora_policy_info, or ""
// if it has no series, failing if it has more than one.
// partitionOf is the partition the producer's default partitioner picks
// for key among n.
func partitionOf(key string, n int) int32 {
	return int32(kgo.StickyKeyPartitioner(nil).ForTopic("").Partition(&kgo.Record{Key: []byte(key)}, n))
}

func policyLabel(t *testing.T, r *running) string {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "valora_policy_info" {
			continue
		}
		if len(mf.GetMetric()) != 1 {
			t.Fatalf("valora_policy_info has %d series", len(mf.GetMetric()))
		}
		for _, l := range mf.GetMetric()[0].GetLabel() {
			if l.GetName() == "policy_version" {
				return l.GetValue()
			}
		}
	}
	return ""
}

// TestPolicyReload changes the policy of a running processor (SetPolicy,
// what SIGHUP does): every customer the new policy moves gets exactly one
// TierChange with cause POLICY_CHANGE under the new version, input keeps
// flowing, the policy metric follows, and a restart under the new policy
// announces nothing again.
func TestPolicyReload(t *testing.T) {
	h := newHarness(t, 2)
	dir, group := t.TempDir(), kafkatest.Name(t, "g")
	strict := score.DefaultPolicy()
	strict.Version = "strict-1"
	strict.Scores.RecencyDays = []int64{0, 90, 180, 365} // a day old is R4
	if err := strict.Validate(); err != nil {
		t.Fatal(err)
	}
	eventTime := func(c *Config) { c.Time = TimeEvent }
	r := h.start(dir, group, eventTime)
	const n = 40
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, h.buy(fmt.Sprintf("c%02d", i), day(0), 2500))
	}
	r.send(recs...)
	// Stream time moves to day 5 in both partitions (one customer each
	// side, found by trying ids until both partitions have one).
	movers := map[int32]string{}
	for i := 0; len(movers) < 2 && i < 1000; i++ {
		id := fmt.Sprintf("mover%d", i)
		if _, ok := movers[partitionOf(id, 2)]; !ok {
			movers[partitionOf(id, 2)] = id
		}
	}
	r.send(h.buy(movers[0], day(5), 2500), h.buy(movers[1], day(5), 2500))
	if v := policyLabel(t, r); v != "default-1" {
		t.Fatalf("policy metric %q before the reload", v)
	}

	countPolicyChanges := func() map[string][]schemas.TierChange {
		out := map[string][]schemas.TierChange{}
		for _, rec := range h.b.ConsumeAll(t, h.topics.TierChanges) {
			var tc schemas.TierChange
			if err := h.codec.DecodeTierChange(rec.Value, &tc); err != nil {
				t.Fatal(err)
			}
			if tc.Cause == schemas.CausePolicyChange {
				out[tc.CustomerID] = append(out[tc.CustomerID], tc)
			}
		}
		return out
	}
	if err := r.p.SetPolicy(strict); err != nil {
		t.Fatal(err)
	}
	kafkatest.Eventually(t, time.Minute, func() error {
		if got := len(countPolicyChanges()); got < n {
			return fmt.Errorf("%d of %d customers re-announced", got, n)
		}
		return nil
	})
	// Input keeps flowing under the new policy.
	r.send(h.buy("late-comer", day(5), 2500))
	pc := countPolicyChanges()
	if len(pc) != n {
		t.Errorf("%d customers re-announced, want %d (the movers bought at stream time: R5 either way)", len(pc), n)
	}
	for id, cs := range pc {
		if len(cs) != 1 {
			t.Errorf("%s: %d POLICY_CHANGE records, want 1", id, len(cs))
			continue
		}
		c := cs[0]
		if c.PolicyVersion != "strict-1" || c.PreviousTier == nil || *c.PreviousTier != "new_customers" || c.Tier != "promising" || c.OccurredAt != day(5) {
			t.Errorf("%s: %+v", id, c)
		}
	}
	for i := range n {
		checkChain(t, h.customerChanges(t, fmt.Sprintf("c%02d", i)))
	}
	if v := policyLabel(t, r); v != "strict-1" {
		t.Errorf("policy metric %q after the reload", v)
	}
	if err := r.p.SetPolicy(&score.Policy{}); err == nil {
		t.Error("an invalid policy was accepted")
	}

	// A restart under the new policy: nothing more.
	if err := r.shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	r = h.start(dir, group, eventTime, func(c *Config) { c.Policy = strict })
	r.send(h.buy(movers[0], day(6), 2500), h.buy(movers[1], day(6), 2500))
	if got := countPolicyChanges(); len(got) != n {
		t.Errorf("after a restart under the same policy: %d customers with POLICY_CHANGE, want %d", len(got), n)
	}
	for id, cs := range countPolicyChanges() {
		if len(cs) != 1 {
			t.Errorf("%s: %d POLICY_CHANGE records after the restart", id, len(cs))
		}
		if _, ok := pc[id]; !ok {
			t.Errorf("%s: POLICY_CHANGE after the restart: %+v", id, cs)
		}
	}
}
