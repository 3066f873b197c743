package schemas

import (
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
