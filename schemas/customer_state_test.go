package schemas

import (
	"os"
	"path/filepath"
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
	want.RecentEventHashes, want.Treatment = nil, ""
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
	got.RecentEventHashes = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("v1 state decodes to\n%+v\nwant\n%+v", got, want)
	}
}

// TestTierChangeV1Decodes reads a tier change written before treatments
// existed (testdata/golden/tier_change.v1.bin, under tier_change.v1.avsc):
// every field survives and the treatment fields come back null.
func TestTierChangeV1Decodes(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "golden", "tier_change.v1.bin"))
	if err != nil {
		t.Fatal(err)
	}
	c := newSOECodec(t)
	var got TierChange
	if err := c.DecodeTierChange(b, &got); err != nil {
		t.Fatalf("decode v1 tier change: %v", err)
	}
	want := *sampleTierChange()
	want.Treatment, want.Relationship, want.RelationshipCostMinor = nil, nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("v1 tier change decodes to\n%+v\nwant\n%+v", got, want)
	}
}

// TestCustomerStateV2Decodes reads state written before treatments existed
// (testdata/golden/customer_state.v2.bin): every other field survives and
// the treatment comes back empty, which the scorer does not count as a
// change.
func TestCustomerStateV2Decodes(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "golden", "customer_state.v2.bin"))
	if err != nil {
		t.Fatal(err)
	}
	got := Customer{Treatment: "stale"}
	if err := DecodeCustomer(b, &got); err != nil {
		t.Fatalf("decode v2 state: %v", err)
	}
	want := *sampleCustomer()
	want.Treatment = ""
	if !reflect.DeepEqual(got, want) {
		t.Errorf("v2 state decodes to\n%+v\nwant\n%+v", got, want)
	}
}
