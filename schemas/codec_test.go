package schemas

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/soe"
	"github.com/twmb/franz-go/pkg/sr"
)

// recordCase drives the table tests over every record type.
type recordCase struct {
	name     string
	samples  func() []any // two or more values, each unlike the others
	newValue func() any
	append   func(c *Codec, dst []byte, v any) ([]byte, error)
	decode   func(c *Codec, b []byte, v any) error
	// stateOnly: always single-object, whatever the codec's framing.
	stateOnly bool
}

var recordCases = []recordCase{
	{
		name:     NameInteraction,
		samples:  func() []any { return []any{sampleInteraction(), minimalInteraction()} },
		newValue: func() any { return new(Interaction) },
		append:   func(c *Codec, dst []byte, v any) ([]byte, error) { return c.AppendInteraction(dst, v.(*Interaction)) },
		decode:   func(c *Codec, b []byte, v any) error { return c.DecodeInteraction(b, v.(*Interaction)) },
	},
	{
		name:     NamePurchase,
		samples:  func() []any { return []any{samplePurchase(), minimalPurchase()} },
		newValue: func() any { return new(Purchase) },
		append:   func(c *Codec, dst []byte, v any) ([]byte, error) { return c.AppendPurchase(dst, v.(*Purchase)) },
		decode:   func(c *Codec, b []byte, v any) error { return c.DecodePurchase(b, v.(*Purchase)) },
	},
	{
		name:     NameErasureRequest,
		samples:  func() []any { return []any{sampleErasure(), minimalErasure()} },
		newValue: func() any { return new(ErasureRequest) },
		append:   func(c *Codec, dst []byte, v any) ([]byte, error) { return c.AppendErasure(dst, v.(*ErasureRequest)) },
		decode:   func(c *Codec, b []byte, v any) error { return c.DecodeErasure(b, v.(*ErasureRequest)) },
	},
	{
		name:     NameTierChange,
		samples:  func() []any { return []any{sampleTierChange(), minimalTierChange()} },
		newValue: func() any { return new(TierChange) },
		append:   func(c *Codec, dst []byte, v any) ([]byte, error) { return c.AppendTierChange(dst, v.(*TierChange)) },
		decode:   func(c *Codec, b []byte, v any) error { return c.DecodeTierChange(b, v.(*TierChange)) },
	},
	{
		name:     NameProfile,
		samples:  func() []any { return []any{sampleProfile(), minimalProfile()} },
		newValue: func() any { return new(CustomerProfile) },
		append:   func(c *Codec, dst []byte, v any) ([]byte, error) { return c.AppendProfile(dst, v.(*CustomerProfile)) },
		decode:   func(c *Codec, b []byte, v any) error { return c.DecodeProfile(b, v.(*CustomerProfile)) },
	},
	{
		name:      NameCustomerState,
		samples:   func() []any { return []any{sampleCustomer(), minimalCustomer()} },
		newValue:  func() any { return new(Customer) },
		append:    func(_ *Codec, dst []byte, v any) ([]byte, error) { return AppendCustomer(dst, v.(*Customer)) },
		decode:    func(_ *Codec, b []byte, v any) error { return DecodeCustomer(b, v.(*Customer)) },
		stateOnly: true,
	},
}

func TestRoundTrip(t *testing.T) {
	_, cl := newRegistry(t)
	codecs := map[Framing]*Codec{
		FramingSingleObject: newSOECodec(t),
		FramingConfluent:    newConfluentCodec(t, cl),
	}
	for framing, c := range codecs {
		for _, rc := range recordCases {
			t.Run(framing.String()+"/"+rc.name, func(t *testing.T) {
				samples := rc.samples()
				for i, want := range samples {
					prefix := []byte("prefix")
					out, err := rc.append(c, prefix, want)
					if err != nil {
						t.Fatalf("sample %d: append: %v", i, err)
					}
					if !bytes.HasPrefix(out, []byte("prefix")) {
						t.Fatalf("sample %d: append lost dst", i)
					}
					enc := out[len(prefix):]
					checkHeader(t, cl, rc, framing, enc)

					got := rc.newValue()
					if err := rc.decode(c, enc, got); err != nil {
						t.Fatalf("sample %d: decode: %v", i, err)
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("sample %d: decoded\n%+v\nwant\n%+v", i, got, want)
					}

					// Decoding into a value that holds another record
					// overwrites all of it.
					reused := samples[(i+1)%len(samples)]
					if err := rc.decode(c, enc, reused); err != nil {
						t.Fatalf("sample %d: decode into used value: %v", i, err)
					}
					if !reflect.DeepEqual(reused, want) {
						t.Errorf("sample %d: decoded into used value\n%+v\nwant\n%+v", i, reused, want)
					}
				}
			})
		}
	}
}

func checkHeader(t *testing.T, cl *sr.Client, rc recordCase, framing Framing, enc []byte) {
	t.Helper()
	if framing == FramingSingleObject || rc.stateOnly {
		fp, _ := Fingerprint(rc.name)
		if len(enc) < soeHeaderLen || enc[0] != 0xC3 || enc[1] != 0x01 || binary.LittleEndian.Uint64(enc[2:10]) != fp {
			t.Fatalf("single-object header % x, want c3 01 + %016x", enc[:min(len(enc), soeHeaderLen)], fp)
		}
		return
	}
	ss, err := cl.LookupSchema(context.Background(), subjectOf(rc.name), sr.Schema{Schema: string(AVSC(rc.name))})
	if err != nil {
		t.Fatalf("look up registered schema: %v", err)
	}
	if len(enc) < confluentHeaderLen || enc[0] != 0 || int(binary.BigEndian.Uint32(enc[1:5])) != ss.ID {
		t.Fatalf("confluent header % x, want 00 + id %d", enc[:min(len(enc), confluentHeaderLen)], ss.ID)
	}
}

func subjectOf(name string) string {
	switch name {
	case NameInteraction:
		return testTopics.Interactions + "-value"
	case NamePurchase:
		return testTopics.Purchases + "-value"
	case NameErasureRequest:
		return testTopics.Erasures + "-value"
	case NameTierChange:
		return testTopics.TierChanges + "-value"
	case NameProfile:
		return testTopics.Profiles + "-value"
	}
	return ""
}

// TestDecodeDoesNotAlias checks that a decoded value shares no pointer with
// what was in the destination before.
func TestDecodeDoesNotAlias(t *testing.T) {
	c := newSOECodec(t)
	b, err := c.AppendTierChange(nil, sampleTierChange())
	if err != nil {
		t.Fatal(err)
	}
	var v TierChange
	if err := c.DecodeTierChange(b, &v); err != nil {
		t.Fatal(err)
	}
	kept := v.ValueClass
	other := sampleTierChange()
	other.ValueClass = ptr("below_zero")
	b, err = c.AppendTierChange(nil, other)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DecodeTierChange(b, &v); err != nil {
		t.Fatal(err)
	}
	if *kept != "high_potential" || *v.ValueClass != "below_zero" {
		t.Errorf("kept pointer now %q, new value %q", *kept, *v.ValueClass)
	}
}

func TestSOECodecReadsConfluentWithRegistry(t *testing.T) {
	_, cl := newRegistry(t)
	writer := newConfluentCodec(t, cl)
	reader, err := NewCodec(context.Background(), Options{Registry: cl})
	if err != nil {
		t.Fatal(err)
	}
	b, err := writer.AppendPurchase(nil, samplePurchase())
	if err != nil {
		t.Fatal(err)
	}
	var got Purchase
	if err := reader.DecodePurchase(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, samplePurchase()) {
		t.Errorf("got %+v", got)
	}
	// And without a registry the id is unknown.
	if err := newSOECodec(t).DecodePurchase(b, &got); !isReason(err, ReasonUnknownSchema) {
		t.Errorf("without registry: %v, want %s", err, ReasonUnknownSchema)
	}
}

// TestOutsideReader reads what the codec writes with nothing but the .avsc
// file and a generic decoder, as a consumer in another code base would.
func TestOutsideReader(t *testing.T) {
	c := newSOECodec(t)
	for _, rc := range recordCases {
		t.Run(rc.name, func(t *testing.T) {
			schema, err := avro.Parse(string(AVSC(rc.name)))
			if err != nil {
				t.Fatalf("parse %s.avsc: %v", rc.name, err)
			}
			sample := rc.samples()[0]
			b, err := rc.append(c, nil, sample)
			if err != nil {
				t.Fatal(err)
			}

			// The header is C3 01 and the standard fingerprint, which
			// a reader computes from the file alone.
			stripped, err := avro.ParseWithCache(stripLogicalTypes(t, AVSC(rc.name)), "", &avro.SchemaCache{})
			if err != nil {
				t.Fatal(err)
			}
			wantHeader, err := soe.BuildHeader(stripped)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, wantHeader) {
				t.Fatalf("header % x, want % x", b[:10], wantHeader)
			}

			var m map[string]any
			if err := avro.Unmarshal(schema, b[10:], &m); err != nil {
				t.Fatalf("generic decode: %v", err)
			}
			rs := schema.(*avro.RecordSchema)
			if len(m) != len(rs.Fields()) {
				t.Errorf("generic decode has %d fields, schema %d: %v", len(m), len(rs.Fields()), m)
			}
			// Compare with the sample field by field through the avro
			// tags, turning timestamps back into Unix milliseconds.
			want := reflect.ValueOf(sample).Elem()
			for i := range want.NumField() {
				tag := want.Type().Field(i).Tag.Get("avro")
				if tag == "-" {
					continue // not in the schema
				}
				got, ok := m[tag]
				if !ok {
					t.Errorf("field %s missing", tag)
					continue
				}
				if tm, ok := got.(time.Time); ok {
					got = tm.UnixMilli()
				}
				if !genericEqual(got, want.Field(i).Interface()) {
					t.Errorf("field %s = %#v (%T), want %#v", tag, got, got, want.Field(i).Interface())
				}
			}
		})
	}
}

// genericEqual compares a value from a generic decode with a typed one.
func genericEqual(generic, typed any) bool {
	tv := reflect.ValueOf(typed)
	switch tv.Kind() {
	case reflect.Pointer:
		if tv.IsNil() {
			return generic == nil
		}
		// hamba/avro decodes the non-null branch of a nullable union
		// as the bare value; other decoders wrap it as {type: value}.
		if u, ok := generic.(map[string]any); ok && len(u) == 1 {
			for _, v := range u {
				generic = v
			}
		}
		return genericEqual(generic, tv.Elem().Interface())
	case reflect.String:
		return generic == tv.String()
	case reflect.Int32:
		return generic == int(tv.Int())
	case reflect.Int64:
		g, ok := generic.(int64)
		return ok && g == tv.Int()
	case reflect.Slice:
		g, ok := generic.([]any)
		if !ok || len(g) != tv.Len() {
			return false
		}
		for i := range g {
			if !genericEqual(g[i], tv.Index(i).Interface()) {
				return false
			}
		}
		return true
	case reflect.Map:
		g, ok := generic.(map[string]any)
		if !ok || len(g) != tv.Len() {
			return false
		}
		for k, v := range g {
			if !genericEqual(v, tv.MapIndex(reflect.ValueOf(k)).Interface()) {
				return false
			}
		}
		return true
	case reflect.Struct:
		// A nested record, field by field through the avro tags.
		g, ok := generic.(map[string]any)
		if !ok || len(g) != tv.NumField() {
			return false
		}
		for i := range tv.NumField() {
			if !genericEqual(g[tv.Type().Field(i).Tag.Get("avro")], tv.Field(i).Interface()) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(generic, typed)
}

// stripLogicalTypes returns the schema text without logicalType attributes.
func stripLogicalTypes(t testing.TB, text []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(text, &v); err != nil {
		t.Fatal(err)
	}
	var strip func(any) any
	strip = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			delete(v, "logicalType")
			for k, e := range v {
				v[k] = strip(e)
			}
		case []any:
			for i, e := range v {
				v[i] = strip(e)
			}
		}
		return v
	}
	out, err := json.Marshal(strip(v))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestOutsideSOEWriter decodes values written by hamba/avro's soe package,
// whose fingerprint keeps logical types.
func TestOutsideSOEWriter(t *testing.T) {
	schema, err := avro.ParseWithCache(string(AVSC(NamePurchase)), "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := soe.NewCodec(schema)
	if err != nil {
		t.Fatal(err)
	}
	b, err := w.Encode(samplePurchase())
	if err != nil {
		t.Fatal(err)
	}
	var got Purchase
	if err := newSOECodec(t).DecodePurchase(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, samplePurchase()) {
		t.Errorf("got %+v", got)
	}
}

// TestOutsideConfluentReader reads the codec's Confluent output with
// franz-go's Serde and the schema fetched from the registry by id.
func TestOutsideConfluentReader(t *testing.T) {
	_, cl := newRegistry(t)
	c := newConfluentCodec(t, cl)
	b, err := c.AppendTierChange(nil, sampleTierChange())
	if err != nil {
		t.Fatal(err)
	}
	var h sr.ConfluentHeader
	id, _, err := h.DecodeID(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cl.SchemaByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	schema, err := avro.ParseWithCache(s.Schema, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	var serde sr.Serde
	serde.Register(id, TierChange{}, sr.DecodeFn(func(b []byte, v any) error { return avro.Unmarshal(schema, b, v) }))
	var got TierChange
	if err := serde.Decode(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, sampleTierChange()) {
		t.Errorf("got %+v", got)
	}
}

func isReason(err error, r Reason) bool {
	got, ok := ReasonOf(err)
	return ok && got == r
}

func TestDecodeErrors(t *testing.T) {
	c := newSOECodec(t)
	good, err := c.AppendPurchase(nil, samplePurchase())
	if err != nil {
		t.Fatal(err)
	}
	interaction, err := c.AppendInteraction(nil, sampleInteraction())
	if err != nil {
		t.Fatal(err)
	}
	soeHeader := good[:soeHeaderLen:soeHeaderLen]
	withBody := func(body ...byte) []byte { return append(slices.Clone(soeHeader), body...) }

	f := func(name string, in []byte, want Reason) {
		t.Helper()
		var v Purchase
		err := c.DecodePurchase(in, &v)
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: error %v is not a *DecodeError", name, err)
			return
		}
		if de.Reason != want {
			t.Errorf("%s: reason %s (%v), want %s", name, de.Reason, err, want)
		}
	}
	f("nil", nil, ReasonTruncated)
	f("empty", []byte{}, ReasonTruncated)
	f("soe marker only", []byte{0xC3}, ReasonTruncated)
	f("soe short fingerprint", good[:7], ReasonTruncated)
	f("confluent short id", []byte{0, 0, 1}, ReasonTruncated)
	f("unknown magic", []byte{0x01, 2, 3, 4, 5, 6}, ReasonBadMagic)
	f("json", []byte(`{"event_id":"x"}`), ReasonBadMagic)
	f("soe second byte", append([]byte{0xC3, 0x02}, good[2:]...), ReasonBadMagic)
	f("soe second byte, short", []byte{0xC3, 0x00}, ReasonBadMagic)
	f("another record's fingerprint", interaction, ReasonUnknownSchema)
	f("made-up fingerprint", append([]byte{0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8}, good[10:]...), ReasonUnknownSchema)
	f("confluent id without registry", append([]byte{0, 0, 0, 0, 7}, good[10:]...), ReasonUnknownSchema)
	f("trailing byte", append(slices.Clone(good), 0), ReasonMalformed)
	f("truncated body", good[:len(good)-1], ReasonMalformed)
	f("header only", soeHeader, ReasonMalformed)
	f("enum index out of range", withBody(2, 'e', 2, 'c', 0, 4), ReasonMalformed)
	f("negative string length", withBody(1), ReasonMalformed)
	f("huge string length", withBody(binary.AppendVarint(nil, 1<<40)...), ReasonMalformed)
	f("string longer than input", withBody(binary.AppendVarint(nil, 1000)...), ReasonMalformed)
	f("union index out of range", withBody(2, 'e', 2, 'c', 0, 0, 2, 2, 2, 'E', 0, 4), ReasonMalformed)

	// Customer state accepts single-object encoding only, and bounds
	// array sizes.
	var cs Customer
	state, err := AppendCustomer(nil, sampleCustomer())
	if err != nil {
		t.Fatal(err)
	}
	if err := DecodeCustomer(append([]byte{0, 0, 0, 0, 1}, state[10:]...), &cs); !isReason(err, ReasonBadMagic) {
		t.Errorf("customer with confluent framing: %v, want %s", err, ReasonBadMagic)
	}
	if err := DecodeCustomer(nil, &cs); !isReason(err, ReasonTruncated) {
		t.Errorf("empty customer: %v, want %s", err, ReasonTruncated)
	}
	if err := DecodeCustomer(good, &cs); !isReason(err, ReasonUnknownSchema) {
		t.Errorf("purchase as customer: %v, want %s", err, ReasonUnknownSchema)
	}
	// customer_id "c", six longs, then an array claiming 1<<30 items.
	huge := append(slices.Clone(state[:soeHeaderLen]), 2, 'c', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	huge = binary.AppendVarint(huge, 1<<30)
	if err := DecodeCustomer(huge, &cs); !isReason(err, ReasonMalformed) {
		t.Errorf("huge array: %v, want %s", err, ReasonMalformed)
	}
	// A customer with a bad boolean (churn_risk = 2).
	bad := *sampleCustomer()
	bad.ValueClass = nil
	b, err := AppendCustomer(nil, &bad)
	if err != nil {
		t.Fatal(err)
	}
	// churn_risk is followed by lifecycle_stage "active" (0x0c + 6
	// bytes), value_class null (0), evaluated_at and policy_version.
	i := bytes.Index(b, []byte("\x00\x0cactive"))
	if i < 0 {
		t.Fatal("churn_risk not found")
	}
	b[i] = 2
	if err := DecodeCustomer(b, &cs); !isReason(err, ReasonMalformed) {
		t.Errorf("bad boolean: %v, want %s", err, ReasonMalformed)
	}
}

func TestDecodeErrorText(t *testing.T) {
	err := newSOECodec(t).DecodePurchase(nil, new(Purchase))
	if got := err.Error(); got != "decode: truncated: purchase: empty input" {
		t.Errorf("Error() = %q", got)
	}
	if errors.Unwrap(err) == nil {
		t.Error("Unwrap() = nil")
	}
	if _, ok := ReasonOf(errors.New("other")); ok {
		t.Error("ReasonOf(plain error) reported a reason")
	}
}

func TestAppendErrors(t *testing.T) {
	c := newSOECodec(t)
	dst := []byte("keep")
	p := samplePurchase()
	p.Channel = "PIGEON"
	out, err := c.AppendPurchase(dst, p)
	if err == nil {
		t.Fatal("unknown channel encoded")
	}
	if string(out) != "keep" {
		t.Errorf("dst changed on error: %q", out)
	}
	var i Interaction // zero value: channel "" is not a symbol
	if _, err := c.AppendInteraction(nil, &i); err == nil {
		t.Error("zero Interaction encoded")
	}
}

func TestOptionsValidate(t *testing.T) {
	_, cl := newRegistry(t)
	f := func(name string, o Options, ok bool) {
		t.Helper()
		err := o.Validate()
		if (err == nil) != ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", name, err, ok)
		}
		if _, err := NewCodec(context.Background(), o); (err == nil) != ok {
			t.Errorf("%s: NewCodec() = %v, want ok=%v", name, err, ok)
		}
	}
	f("zero", Options{}, true)
	f("soe with registry", Options{Registry: cl}, true)
	f("confluent", Options{Framing: FramingConfluent, Registry: cl, Topics: testTopics}, true)
	f("confluent without registry", Options{Framing: FramingConfluent, Topics: testTopics}, false)
	noTier := testTopics
	noTier.TierChanges = ""
	f("confluent without a topic", Options{Framing: FramingConfluent, Registry: cl, Topics: noTier}, false)
	f("unknown framing", Options{Framing: 7}, false)
	f("negative timeout", Options{FetchTimeout: -time.Second}, false)
}

func TestAccessors(t *testing.T) {
	want := []string{"interaction", "purchase", "erasure_request", "tier_change", "customer_state", "customer_profile"}
	if got := Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %v", got)
	}
	for _, name := range want {
		var v struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		}
		if err := json.Unmarshal(AVSC(name), &v); err != nil || v.Namespace != "valora" {
			t.Errorf("AVSC(%q): namespace %q, %v", name, v.Namespace, err)
		}
		if s := Schema(name); s == nil || s.(*avro.RecordSchema).FullName() != "valora."+v.Name {
			t.Errorf("Schema(%q) = %v", name, s)
		}
		if _, ok := Fingerprint(name); !ok {
			t.Errorf("Fingerprint(%q) not found", name)
		}
	}
	if AVSC("nope") != nil || Schema("nope") != nil {
		t.Error("unknown name found")
	}
	if _, ok := Fingerprint("nope"); ok {
		t.Error("unknown name has a fingerprint")
	}
}

// TestEveryFieldDocumented keeps the contract documented field by field.
func TestEveryFieldDocumented(t *testing.T) {
	for _, name := range Names() {
		rs := Schema(name).(*avro.RecordSchema)
		if rs.Doc() == "" {
			t.Errorf("%s: record has no doc", name)
		}
		for _, f := range rs.Fields() {
			if f.Doc() == "" {
				t.Errorf("%s.%s has no doc", name, f.Name())
			}
			if u, ok := f.Type().(*avro.UnionSchema); ok && u.Nullable() {
				if !f.HasDefault() || f.Default() != nil {
					t.Errorf("%s.%s is nullable without a null default", name, f.Name())
				}
			}
		}
	}
}

// TestChannelsMatchEnum keeps the Go channel list and the Avro enum in step:
// Customer's per-channel counters are indexed by both.
func TestChannelsMatchEnum(t *testing.T) {
	for _, name := range []string{NameInteraction, NamePurchase} {
		rs := Schema(name).(*avro.RecordSchema)
		for _, f := range rs.Fields() {
			if f.Name() != "channel" {
				continue
			}
			e := f.Type().(*avro.EnumSchema)
			var want []string
			for _, ch := range Channels {
				want = append(want, string(ch))
			}
			if !slices.Equal(e.Symbols(), want) || e.Default() != string(ChannelOther) {
				t.Errorf("%s: channel symbols %v default %q, want %v default OTHER", name, e.Symbols(), e.Default(), want)
			}
		}
	}
}

func TestConcurrentDecode(t *testing.T) {
	reg, cl := newRegistry(t)
	c := newConfluentCodec(t, cl)
	soeBytes, err := newSOECodec(t).AppendPurchase(nil, samplePurchase())
	if err != nil {
		t.Fatal(err)
	}
	confluent, err := c.AppendPurchase(nil, samplePurchase())
	if err != nil {
		t.Fatal(err)
	}
	// An id only the registry knows: every goroutine meets it at once.
	older := outsidePurchaseV0(t, reg, "purchases-value")

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 8 {
		wg.Go(func() {
			var v Purchase
			for range 200 {
				for _, b := range [][]byte{soeBytes, confluent, older} {
					if err := c.DecodePurchase(b, &v); err != nil {
						errs <- err
						return
					}
				}
				if _, err := c.AppendPurchase(nil, &v); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestHotPathAllocations pins down what decoding allocates once the writer
// schema is known: nothing of the codec's own.
func TestHotPathAllocations(t *testing.T) {
	_, cl := newRegistry(t)
	for _, c := range []*Codec{newSOECodec(t), newConfluentCodec(t, cl)} {
		p := samplePurchase()
		p.Category = nil
		b, err := c.AppendPurchase(nil, p)
		if err != nil {
			t.Fatal(err)
		}
		var v Purchase
		if n := testing.AllocsPerRun(1000, func() { _ = c.DecodePurchase(b, &v) }); n > 0 {
			t.Errorf("%s: DecodePurchase allocates %v times per call", c.Framing(), n)
		}
		dst := make([]byte, 0, 256)
		if n := testing.AllocsPerRun(1000, func() { _, _ = c.AppendPurchase(dst[:0], p) }); n > 0 {
			t.Errorf("%s: AppendPurchase allocates %v times per call", c.Framing(), n)
		}
	}
	cs := sampleCustomer()
	cs.ValueClass = nil
	b, err := AppendCustomer(nil, cs)
	if err != nil {
		t.Fatal(err)
	}
	var v Customer
	if n := testing.AllocsPerRun(1000, func() { _ = DecodeCustomer(b, &v) }); n > 0 {
		t.Errorf("DecodeCustomer allocates %v times per call", n)
	}
}

// TestEnumsMatchGo keeps the Go constants of the other enums in step with
// the schemas.
func TestEnumsMatchGo(t *testing.T) {
	f := func(record, field string, want []string) {
		t.Helper()
		for _, fl := range Schema(record).(*avro.RecordSchema).Fields() {
			if fl.Name() == field {
				if got := fl.Type().(*avro.EnumSchema).Symbols(); !slices.Equal(got, want) {
					t.Errorf("%s.%s symbols %v, want %v", record, field, got, want)
				}
				return
			}
		}
		t.Errorf("%s.%s not found", record, field)
	}
	f(NamePurchase, "kind", []string{string(KindPurchase), string(KindRefund)})
	f(NameTierChange, "cause", []string{
		string(CausePurchase), string(CauseRefund), string(CauseInteraction),
		string(CauseInactivity), string(CausePolicyChange), string(CauseErasure),
	})
}
