package schemas

import (
	"os"
	"reflect"
	"testing"

	"github.com/hamba/avro/v2"
)

// TestCustomerStateV1Decodes reads state written before recent_event_hashes
// existed (customer_state.v1.avsc): every other field survives and the
// duplicate window comes back empty, so an upgrade needs no migration.
func TestCustomerStateV1Decodes(t *testing.T) {
	w, err := parseSchema(customerStateV1AVSC)
	if err != nil {
		t.Fatal(err)
	}
	want := *sampleCustomer()
	want.RecentEventHashes = nil
	want.Complaints, want.ComplaintsResolved, want.LastComplaintAt, want.LastResolvedAt = 0, 0, 0, 0
	want.LowSatisfactionUntil, want.LastSatisfaction, want.LastSatisfactionAt = 0, 0, 0
	want.InteractionLastAt, want.Consent, want.Categories, want.DistinctCategories = nil, nil, nil, 0
	want.Treatment = ""
	body, err := avro.Marshal(w, &want)
	if err != nil {
		t.Fatal(err)
	}
	fp := canonicalFingerprint(w)
	if fp == customerStateRecord.fingerprint {
		t.Fatal("v1 and current customer_state schemas have the same fingerprint")
	}
	header := []byte{soeMagic0, soeMagic1, 0, 0, 0, 0, 0, 0, 0, 0}
	for i := range 8 {
		header[2+i] = byte(fp >> (8 * i))
	}
	// Decode into a value holding a window, as the processor reuses them.
	got := Customer{RecentEventHashes: []int64{1, 2, 3}}
	if err := DecodeCustomer(append(header, body...), &got); err != nil {
		t.Fatalf("decode v1 state: %v", err)
	}
	if len(got.RecentEventHashes) != 0 {
		t.Errorf("RecentEventHashes = %v, want empty", got.RecentEventHashes)
	}
	if !reflect.DeepEqual(normCustomer(&got), normCustomer(&want)) {
		t.Errorf("v1 state decodes to\n%+v\nwant\n%+v", got, want)
	}
}

// TestCustomerStateV2Decodes reads state written before the service
// history, channel, consent and category fields and the treatment (customer_state.v2.avsc,
// the bytes of the sample as that version wrote them): every other field
// survives, the counters and times come back 0, the arrays empty (last_satisfaction_at 0: no score).
func TestCustomerStateV2Decodes(t *testing.T) {
	old, err := os.ReadFile(goldenPath("customer_state.v2"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := parseSchema(customerStateV2AVSC)
	if err != nil {
		t.Fatal(err)
	}
	if fp := canonicalFingerprint(w); fp == customerStateRecord.fingerprint {
		t.Fatal("v2 and current customer_state schemas have the same fingerprint")
	}
	want := *sampleCustomer()
	want.Complaints, want.ComplaintsResolved, want.LastComplaintAt, want.LastResolvedAt = 0, 0, 0, 0
	want.LowSatisfactionUntil, want.LastSatisfaction, want.LastSatisfactionAt = 0, 0, 0
	want.InteractionLastAt, want.Consent, want.Categories, want.DistinctCategories = nil, nil, nil, 0
	want.Treatment = ""
	// Decode into a value holding the new arrays, as the processor reuses them.
	got := *sampleCustomer()
	if err := DecodeCustomer(old, &got); err != nil {
		t.Fatalf("decode v2 state: %v", err)
	}
	if !reflect.DeepEqual(normCustomer(&got), normCustomer(&want)) {
		t.Errorf("v2 state decodes to\n%+v\nwant\n%+v", got, want)
	}
}

// TestTierChangeV1Compatible checks both directions of the TierChange
// change: a record written before risk_reason, contactable_channels and
// the treatment fields (tier_change.v1.avsc, the sample's bytes as that
// version wrote them) decodes with those fields empty, and a reader that knows only the v1
// schema reads a record written now, every v1 field intact.
func TestTierChangeV1Compatible(t *testing.T) {
	c := newSOECodec(t)
	old, err := os.ReadFile(goldenPath("tier_change.v1"))
	if err != nil {
		t.Fatal(err)
	}
	var got TierChange
	if err := c.DecodeTierChange(old, &got); err != nil {
		t.Fatalf("decode v1 tier change: %v", err)
	}
	want := *sampleTierChange()
	want.RiskReason, want.ContactableChannels = nil, nil
	want.Treatment, want.Relationship, want.RelationshipCostMinor = nil, nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("v1 tier change decodes to\n%+v\nwant\n%+v", got, want)
	}

	v1, err := parseSchema(tierChangeV1AVSC)
	if err != nil {
		t.Fatal(err)
	}
	resolved, err := resolve(v1, tierChangeRecord.schema)
	if err != nil {
		t.Fatalf("a v1 reader cannot read the current schema: %v", err)
	}
	cur, err := c.AppendTierChange(nil, sampleTierChange())
	if err != nil {
		t.Fatal(err)
	}
	var asV1 map[string]any
	if err := avro.Unmarshal(resolved, cur[soeHeaderLen:], &asV1); err != nil {
		t.Fatalf("v1 reader: %v", err)
	}
	if asV1["tier"] != "Loyal" || asV1["policy_version"] != "rfm-default-1" || len(asV1) != len(v1.(*avro.RecordSchema).Fields()) {
		t.Errorf("v1 reader got %v", asV1)
	}
}
