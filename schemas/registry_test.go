package schemas

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// purchaseV0 is an earlier Purchase schema, as an outside producer might
// still use it: no category, no items, fewer channels.
const purchaseV0 = `{
  "type": "record", "name": "Purchase", "namespace": "valora",
  "fields": [
    {"name": "event_id", "type": "string"},
    {"name": "customer_id", "type": "string"},
    {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "kind", "type": {"type": "enum", "name": "PurchaseKind", "symbols": ["PURCHASE", "REFUND"]}},
    {"name": "amount_minor", "type": "long"},
    {"name": "currency", "type": "string"},
    {"name": "channel", "type": {"type": "enum", "name": "Channel", "symbols": ["EMAIL", "PHONE", "WEB", "APP", "STORE"]}}
  ]
}`

type purchaseV0Value struct {
	EventID     string `avro:"event_id"`
	CustomerID  string `avro:"customer_id"`
	OccurredAt  int64  `avro:"occurred_at"`
	Kind        string `avro:"kind"`
	AmountMinor int64  `avro:"amount_minor"`
	Currency    string `avro:"currency"`
	Channel     string `avro:"channel"`
}

var v0Value = purchaseV0Value{
	EventID: "pur-v0", CustomerID: "cust-7", OccurredAt: 1700000000000,
	Kind: "REFUND", AmountMinor: 250, Currency: "USD", Channel: "STORE",
}

var v0Want = Purchase{
	EventID: "pur-v0", CustomerID: "cust-7", OccurredAt: 1700000000000,
	Kind: KindRefund, AmountMinor: 250, Currency: "USD", Channel: ChannelStore,
	Category: nil, Items: 1,
}

// outsideProduce registers schema under subject as an outside producer
// would and returns v in Confluent framing.
func outsideProduce(t testing.TB, reg *srfake.Registry, subject, schema string, v any) []byte {
	t.Helper()
	id, _, err := reg.RegisterSchema(subject, sr.Schema{Schema: schema, Type: sr.TypeAvro})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	s, err := avro.ParseWithCache(schema, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	var h sr.ConfluentHeader
	b, err := h.AppendEncode(nil, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := avro.Marshal(s, v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return append(b, body...)
}

func outsidePurchaseV0(t testing.TB, reg *srfake.Registry, subject string) []byte {
	t.Helper()
	return outsideProduce(t, reg, subject, purchaseV0, v0Value)
}

// countFetches counts schema-by-id requests to reg.
func countFetches(reg *srfake.Registry) *atomic.Int64 {
	var n atomic.Int64
	reg.Intercept(func(_ http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/schemas/ids/") {
			n.Add(1)
		}
		return false
	})
	return &n
}

func TestFetchOutsideSchema(t *testing.T) {
	for _, framing := range []Framing{FramingSingleObject, FramingConfluent} {
		t.Run(framing.String(), func(t *testing.T) {
			reg, cl := newRegistry(t)
			c, err := NewCodec(context.Background(), Options{Framing: framing, Registry: cl, Topics: testTopics})
			if err != nil {
				t.Fatal(err)
			}
			fetches := countFetches(reg)
			b := outsidePurchaseV0(t, reg, "purchases-value")
			for range 3 {
				var got Purchase
				if err := c.DecodePurchase(b, &got); err != nil {
					t.Fatalf("decode: %v", err)
				}
				if got != v0Want {
					t.Errorf("got %+v\nwant %+v", got, v0Want)
				}
			}
			if n := fetches.Load(); n != 1 {
				t.Errorf("%d fetches, want 1", n)
			}
		})
	}
}

// TestFetchNewerSchema reads a record from a producer a step ahead: a new
// field, and a channel this build does not know, which reads as OTHER.
func TestFetchNewerSchema(t *testing.T) {
	reg, cl := newRegistry(t)
	c := newConfluentCodec(t, cl)
	newer := strings.Replace(string(AVSC(NameInteraction)), `"FAX", "OTHER"]`, `"FAX", "OTHER", "KIOSK"]`, 1)
	newer = strings.Replace(newer, `"fields": [`, `"fields": [{"name": "source", "type": "string", "default": "", "doc": "x"},`, 1)
	if newer == string(AVSC(NameInteraction)) {
		t.Fatal("schema edit did not apply")
	}
	type newerInteraction struct {
		Source string `avro:"source"`
		Interaction
	}
	v := newerInteraction{Source: "pos", Interaction: *sampleInteraction()}
	v.Channel = "KIOSK"
	b := outsideProduce(t, reg, "interactions-value", newer, v)

	var got Interaction
	if err := c.DecodeInteraction(b, &got); err != nil {
		t.Fatal(err)
	}
	want := *sampleInteraction()
	want.Channel = ChannelOther
	if got.Channel != ChannelOther || got.EventID != want.EventID || *got.Satisfaction != 9 || got.Attributes["campaign"] != "spring-2026" {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestFetchFailures(t *testing.T) {
	reg, cl := newRegistry(t)
	c := newConfluentCodec(t, cl)
	fetches := countFetches(reg)

	// A schema that cannot be read as a Purchase: unknown_schema, and
	// remembered.
	incompatible := strings.Replace(purchaseV0, `{"name": "amount_minor", "type": "long"}`, `{"name": "amount_minor", "type": "string"}`, 1)
	bad := outsideProduce(t, reg, "purchases-value", incompatible, map[string]any{
		"event_id": "e", "customer_id": "c", "occurred_at": int64(0), "kind": "PURCHASE",
		"amount_minor": "12.50", "currency": "EUR", "channel": "WEB",
	})
	var v Purchase
	for range 2 {
		if err := c.DecodePurchase(bad, &v); !isReason(err, ReasonUnknownSchema) {
			t.Errorf("incompatible writer: %v, want %s", err, ReasonUnknownSchema)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("incompatible writer fetched %d times, want 1", n)
	}

	// Another record's schema on this topic.
	other := outsideProduce(t, reg, "erasures-value", string(AVSC(NameErasureRequest)), sampleErasure())
	if err := c.DecodePurchase(other, &v); !isReason(err, ReasonUnknownSchema) {
		t.Errorf("erasure on the purchases topic: %v, want %s", err, ReasonUnknownSchema)
	}

	// An id the registry does not have.
	missing := append([]byte{0, 0, 0, 0x30, 0x39}, 0)
	if err := c.DecodePurchase(missing, &v); !isReason(err, ReasonUnknownSchema) {
		t.Errorf("missing id: %v, want %s", err, ReasonUnknownSchema)
	}

	// The registry failing is not the record's fault: not a DecodeError,
	// not remembered.
	v0 := outsidePurchaseV0(t, reg, "purchases-value")
	reg.Intercept(func(w http.ResponseWriter, _ *http.Request) bool {
		http.Error(w, `{"error_code":50001,"message":"boom"}`, http.StatusInternalServerError)
		return true
	})
	err := c.DecodePurchase(v0, &v)
	if !errors.Is(err, ErrRegistryUnavailable) {
		t.Errorf("registry down: %v, want ErrRegistryUnavailable", err)
	}
	if _, ok := ReasonOf(err); ok {
		t.Errorf("registry down gave a DecodeError: %v", err)
	}
	reg.ClearInterceptors()
	if err := c.DecodePurchase(v0, &v); err != nil || v != v0Want {
		t.Errorf("registry back: %v, %+v", err, v)
	}
}

// TestOlderSingleObjectVersion decodes single-object values written with an
// earlier schema version kept in the record's table.
func TestOlderSingleObjectVersion(t *testing.T) {
	rec, err := newRecord(NamePurchase, string(AVSC(NamePurchase)), purchaseV0)
	if err != nil {
		t.Fatal(err)
	}
	w, err := parseSchema(purchaseV0)
	if err != nil {
		t.Fatal(err)
	}
	body, err := avro.Marshal(w, v0Value)
	if err != nil {
		t.Fatal(err)
	}
	header := []byte{0xC3, 0x01, 0, 0, 0, 0, 0, 0, 0, 0}
	fp := canonicalFingerprint(w)
	for i := range 8 {
		header[2+i] = byte(fp >> (8 * i))
	}
	s, rest, err := rec.soeSchema(append(header, body...))
	if err != nil {
		t.Fatal(err)
	}
	var got Purchase
	if err := unmarshal(rec, s, rest, &got); err != nil {
		t.Fatal(err)
	}
	if got != v0Want {
		t.Errorf("got %+v, want %+v", got, v0Want)
	}

	// The package's own table does not know v0.
	if _, _, err := purchaseRecord.soeSchema(append(header, body...)); !isReason(err, ReasonUnknownSchema) {
		t.Errorf("current table: %v, want %s", err, ReasonUnknownSchema)
	}
	// And an incompatible older version is refused when the table is built.
	if _, err := newRecord(NamePurchase, string(AVSC(NamePurchase)), strings.Replace(purchaseV0, `"long"}`, `"string"}`, 1)); err == nil {
		t.Error("incompatible older version accepted")
	}
}
