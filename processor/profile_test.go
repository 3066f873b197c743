package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/kafkatest"
	"valora/processor/httpapi"
	"valora/schemas"
)

// latestProfiles reads the profile topic from the start and keeps the last
// record of each key, as compaction would: the value decoded, or nil for a
// tombstone. It also checks that versions only grow per customer (a
// tombstone starts the customer again).
func (h *harness) latestProfiles(t *testing.T) map[string]*schemas.CustomerProfile {
	t.Helper()
	out := map[string]*schemas.CustomerProfile{}
	for _, r := range h.b.ConsumeAll(t, h.topics.Profiles) {
		id := string(r.Key)
		if r.Value == nil {
			out[id] = nil
			continue
		}
		pr := new(schemas.CustomerProfile)
		if err := h.codec.DecodeProfile(r.Value, pr); err != nil {
			t.Fatalf("decode profile: %v", err)
		}
		if pr.CustomerID != id {
			t.Errorf("profile key %q, customer %q", id, pr.CustomerID)
		}
		if prev := out[id]; prev != nil && prev.Version >= pr.Version {
			t.Errorf("%s: profile version %d after %d", id, pr.Version, prev.Version)
		}
		out[id] = pr
	}
	return out
}

// TestProfiles feeds a scripted history and checks each new field of the
// published profiles: categories with a refund, a complaint and then its
// resolution, a consent grant and then a withdrawal, a survey score, and a
// tombstone after an erasure. The last profile of each customer equals what
// the lookup answers, field by field.
//
// With the decoded cache, a changed customer's profile is built from the
// cached customer; without it, from its encoding in the write set.
func TestProfiles(t *testing.T) {
	for name, cache := range map[string]int{"cache": 0, "no-cache": -1} {
		t.Run(name, func(t *testing.T) { testProfiles(t, cache) })
	}
}

func testProfiles(t *testing.T, cache int) {
	h := newHarness(t, 2)
	h.topics.Profiles = kafkatest.Name(t, "profiles") // valora creates it
	r := h.start(t.TempDir(), kafkatest.Name(t, "g"), func(c *Config) { c.CacheCustomers = cache })
	srv := httptest.NewServer(httpapi.Handler(r.p, r.reg, nil))
	t.Cleanup(srv.Close)
	cat := func(s string) *string { return &s }
	sat := func(v int32) *int32 { return &v }
	phase := func(total float64, recs ...*kgo.Record) {
		t.Helper()
		h.b.Produce(t, recs...)
		r.waitHandled(t, total)
	}
	phase(8,
		h.purchase(schemas.Purchase{EventID: "a1", CustomerID: "ann", OccurredAt: day(0), AmountMinor: 5000, Category: cat("books")}),
		h.purchase(schemas.Purchase{EventID: "a2", CustomerID: "ann", OccurredAt: day(1), AmountMinor: 3000, Category: cat("games"), Channel: schemas.ChannelStore}),
		h.purchase(schemas.Purchase{EventID: "a3", CustomerID: "ann", OccurredAt: day(2), AmountMinor: 2500, Category: cat("books"), Kind: schemas.KindRefund}),
		h.purchase(schemas.Purchase{EventID: "a4", CustomerID: "ann", OccurredAt: day(3), AmountMinor: 1000}),
		h.interaction(schemas.Interaction{EventID: "a5", CustomerID: "ann", OccurredAt: day(3), Channel: schemas.ChannelApp, Type: "consent_granted"}),
		h.interaction(schemas.Interaction{EventID: "a6", CustomerID: "ann", OccurredAt: day(3), Channel: schemas.ChannelEmail, Type: "consent_granted"}),
		h.interaction(schemas.Interaction{EventID: "a7", CustomerID: "ann", OccurredAt: day(4), Channel: schemas.ChannelPhone, Type: "complaint"}),
		h.purchase(schemas.Purchase{EventID: "z1", CustomerID: "zed", OccurredAt: day(4), AmountMinor: 700}),
	)
	kafkatest.Eventually(t, time.Minute, func() error {
		if p := h.latestProfiles(t)["ann"]; p == nil || p.Version != 7 {
			return fmt.Errorf("ann's profile not at version 7 yet")
		}
		return nil
	})
	ps := h.latestProfiles(t)
	ann := ps["ann"]
	wantCats := []schemas.CategoryStat{
		{Category: "games", Purchases: 1, NetMinor: 3000},
		{Category: "books", Purchases: 1, NetMinor: 2500},
		{Category: "uncategorised", Purchases: 1, NetMinor: 1000},
	}
	if !reflect.DeepEqual(ann.Categories, wantCats) || ann.FavouriteCategory == nil || *ann.FavouriteCategory != "games" || ann.DistinctCategories != 3 {
		t.Errorf("categories %+v, favourite %v, distinct %d; want %+v, games, 3", ann.Categories, ann.FavouriteCategory, ann.DistinctCategories, wantCats)
	}
	if ann.MonetaryMinor != 6500 || ann.Purchases != 3 || ann.Refunds != 1 {
		t.Errorf("monetary %d, purchases %d, refunds %d", ann.MonetaryMinor, ann.Purchases, ann.Refunds)
	}
	if ann.Complaints != 1 || ann.LastComplaintAt != day(4) || ann.RiskReason == nil || *ann.RiskReason != "complaint" || ann.LifecycleStage != "at_risk" {
		t.Errorf("after a complaint: complaints %d at %d, reason %v, stage %s", ann.Complaints, ann.LastComplaintAt, ann.RiskReason, ann.LifecycleStage)
	}
	wantContact := []schemas.Channel{schemas.ChannelEmail, schemas.ChannelApp}
	if !reflect.DeepEqual(ann.ContactableChannels, wantContact) {
		t.Errorf("contactable %v, want %v", ann.ContactableChannels, wantContact)
	}
	// One interaction on each of APP, EMAIL, PHONE: the latest wins.
	if ann.PreferredChannel == nil || *ann.PreferredChannel != schemas.ChannelPhone {
		t.Errorf("preferred channel %v, want PHONE", ann.PreferredChannel)
	}
	if !reflect.DeepEqual(ann.PurchasesByChannel, map[string]int64{"WEB": 2, "STORE": 1}) {
		t.Errorf("purchases by channel %v", ann.PurchasesByChannel)
	}

	phase(12,
		h.interaction(schemas.Interaction{EventID: "a8", CustomerID: "ann", OccurredAt: day(5), Channel: schemas.ChannelPhone, Type: "complaint_resolved"}),
		h.interaction(schemas.Interaction{EventID: "a9", CustomerID: "ann", OccurredAt: day(6), Channel: schemas.ChannelApp, Type: "consent_withdrawn"}),
		h.interaction(schemas.Interaction{EventID: "a10", CustomerID: "ann", OccurredAt: day(6), Channel: schemas.ChannelSurvey, Type: "survey_response", Satisfaction: sat(8)}),
		h.erasure("zed", day(7)),
	)
	kafkatest.Eventually(t, time.Minute, func() error {
		ps = h.latestProfiles(t)
		if p := ps["ann"]; p == nil || p.Version != 10 {
			return fmt.Errorf("ann's profile not at version 10 yet")
		}
		if p, ok := ps["zed"]; !ok || p != nil {
			return fmt.Errorf("no tombstone for zed yet")
		}
		return nil
	})
	ann = ps["ann"]
	if ann.ComplaintsResolved != 1 || ann.RiskReason != nil || ann.LifecycleStage == "at_risk" || ann.RiskUntil != 0 {
		t.Errorf("after the resolution: resolved %d, reason %v, stage %s, risk_until %d", ann.ComplaintsResolved, ann.RiskReason, ann.LifecycleStage, ann.RiskUntil)
	}
	if !reflect.DeepEqual(ann.ContactableChannels, []schemas.Channel{schemas.ChannelEmail}) {
		t.Errorf("after the withdrawal: contactable %v, want [EMAIL]", ann.ContactableChannels)
	}
	if ann.LastSatisfaction == nil || *ann.LastSatisfaction != 8 {
		t.Errorf("last satisfaction %v, want 8", ann.LastSatisfaction)
	}
	if got := gaugeOrCounter(t, r, "valora_profiles_published_total"); got < 4 {
		t.Errorf("valora_profiles_published_total %v, want at least 4", got)
	}

	// The lookup answers the profile's fields under the same names.
	kafkatest.Eventually(t, time.Minute, func() error {
		view := lookupJSON(t, srv.URL, "ann")
		if v, _ := view["version"].(float64); v != 10 {
			return fmt.Errorf("lookup at version %v", view["version"])
		}
		return nil
	})
	if diff := compareWithLookup(t, ann, lookupJSON(t, srv.URL, "ann")); diff != "" {
		t.Error(diff)
	}
	// Created compacted, with the inputs' partition count.
	adm := kadm.NewClient(h.b.Client(t))
	rcs, err := adm.DescribeTopicConfigs(context.Background(), h.topics.Profiles)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(h.topics.Profiles, nil)
	if err != nil {
		t.Fatal(err)
	}
	policy := ""
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil {
			policy = *c.Value
		}
	}
	td, err := adm.ListTopics(context.Background(), h.topics.Profiles)
	if err != nil {
		t.Fatal(err)
	}
	if policy != "compact" || len(td[h.topics.Profiles].Partitions) != int(h.parts) {
		t.Errorf("profile topic: cleanup.policy %q, %d partitions; want compact, %d", policy, len(td[h.topics.Profiles].Partitions), h.parts)
	}

	resp, err := http.Get(srv.URL + "/v1/customers/zed")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("erased zed: lookup status %d, want 404", resp.StatusCode)
	}
}

func lookupJSON(t *testing.T, base, id string) map[string]any {
	t.Helper()
	resp, err := http.Get(base + "/v1/customers/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("lookup body %s: %v", b, err)
	}
	return m
}

// compareWithLookup compares every field of a profile, through its JSON
// form, with the lookup's field of the same name; a null field of the
// profile must be absent from the lookup. It returns the differences.
func compareWithLookup(t *testing.T, pr *schemas.CustomerProfile, view map[string]any) string {
	t.Helper()
	b, err := json.Marshal(profileJSON(pr))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	var diff string
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		w := want[k]
		got, ok := view[k]
		switch {
		case w == nil && ok:
			diff += k + ": null in the profile, " + string(mustJSON(got)) + " in the lookup\n"
		case w != nil && !reflect.DeepEqual(got, w):
			diff += k + ": profile " + string(mustJSON(w)) + ", lookup " + string(mustJSON(got)) + "\n"
		}
	}
	return diff
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// profileJSON maps a profile to its fields by Avro name.
func profileJSON(pr *schemas.CustomerProfile) map[string]any {
	m := map[string]any{}
	v := reflect.ValueOf(pr).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.Pointer && f.IsNil() {
			m[v.Type().Field(i).Tag.Get("avro")] = nil
			continue
		}
		m[v.Type().Field(i).Tag.Get("avro")] = f.Interface()
	}
	return m
}

func gaugeOrCounter(t *testing.T, r *running, name string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var s float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			s += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return s
}

// TestRefusesProfileTopicWithoutCompaction starts on a profile topic that
// deletes by retention: a reader from the start would miss every customer
// whose profile is older than the retention, so valora refuses it, naming
// the setting.
func TestRefusesProfileTopicWithoutCompaction(t *testing.T) {
	h := newHarness(t, 2)
	h.topics.Profiles = kafkatest.Name(t, "profiles")
	adm := kadm.NewClient(h.b.Client(t))
	resp, err := adm.CreateTopics(t.Context(), h.parts, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("delete")}, h.topics.Profiles)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	r := h.start(t.TempDir(), kafkatest.Name(t, "g"))
	select {
	case err = <-r.done:
		r.done <- err
	case <-time.After(time.Minute):
		t.Fatal("processor did not refuse to start")
	}
	if err == nil || !strings.Contains(err.Error(), "cleanup.policy=delete") {
		t.Fatalf("err = %v, want one naming cleanup.policy=delete", err)
	}
	t.Logf("refused with: %v", err)
}
