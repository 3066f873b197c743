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
// history, channel, consent and category fields (customer_state.v2.avsc,
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
	// Decode into a value holding the new arrays, as the processor reuses them.
	got := *sampleCustomer()
	if err := DecodeCustomer(old, &got); err != nil {
		t.Fatalf("decode v2 state: %v", err)
	}
	if !reflect.DeepEqual(normCustomer(&got), normCustomer(&want)) {
		t.Errorf("v2 state decodes to\n%+v\nwant\n%+v", got, want)
	}
}
