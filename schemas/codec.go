package schemas

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// Framing selects the wire format valora writes. Decoding accepts both
// framings always.
type Framing int

const (
	// FramingSingleObject is Avro single-object encoding: C3 01, the
	// 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's
	// Parsing Canonical Form, then the Avro body. It needs no registry.
	FramingSingleObject Framing = iota
	// FramingConfluent is the Confluent wire format: 0x00, the 4-byte
	// big-endian schema registry id of the writer schema, then the Avro
	// body. It needs a schema registry.
	FramingConfluent
)

// String returns "single_object" or "confluent".
func (f Framing) String() string {
	switch f {
	case FramingSingleObject:
		return "single_object"
	case FramingConfluent:
		return "confluent"
	default:
		return fmt.Sprintf("Framing(%d)", int(f))
	}
}

// Wire format constants.
const (
	soeMagic0          = 0xC3
	soeMagic1          = 0x01
	soeHeaderLen       = 10
	confluentMagic     = 0x00
	confluentHeaderLen = 5
)

// Limits on what a decoder allocates for untrusted input. Kafka's default
// maximum message size is 1 MiB; nothing in these records comes close to
// these limits, so a length beyond them can only come from a bad record.
const (
	// maxBytesLen bounds the length of one string or bytes value.
	maxBytesLen = 64 << 10
	// maxArrayLen bounds the number of items of one array.
	maxArrayLen = 1 << 10
	// maxPooledWriterCap bounds the buffer of a writer kept for reuse.
	maxPooledWriterCap = 64 << 10
)

// api is the frozen hamba/avro configuration every codec uses. Its
// internal caches of compiled encoders and decoders are safe for concurrent
// use.
var api = avro.Config{
	// Arrays and maps carry only the item count in each block header, as
	// the Java implementation writes them.
	DisableBlockSizeHeader: true,
	MaxByteSliceSize:       maxBytesLen,
	MaxSliceAllocSize:      maxArrayLen,
}.Freeze()

// Pools of readers and writers, so that the hot path allocates nothing of
// its own.
var (
	readerPool = sync.Pool{New: func() any { return avro.NewReader(nil, 0, avro.WithReaderConfig(api)) }}
	writerPool = sync.Pool{New: func() any { return avro.NewWriter(nil, 512, avro.WithWriterConfig(api)) }}
)

// defaultFetchTimeout is Options.FetchTimeout's default.
const defaultFetchTimeout = 10 * time.Second

// TopicNames names the topics whose values the Codec encodes and decodes.
// With a schema registry, each topic's value schema lives under the subject
// "<topic>-value" (TopicNameStrategy).
type TopicNames struct {
	Interactions string
	Purchases    string
	Erasures     string
	TierChanges  string
	// Profiles is the profile topic, optional: with FramingConfluent and
	// no name, profiles are written in single-object encoding.
	Profiles string
}

// Options configures a Codec.
type Options struct {
	// Framing is the wire format the Codec writes. The default is
	// FramingSingleObject. FramingConfluent requires Registry and every
	// topic name.
	Framing Framing
	// Registry is the schema registry client, or nil. With
	// FramingConfluent, NewCodec registers the four schemas under the
	// topics' subjects. With either framing, a decoder that meets a
	// Confluent-framed record whose schema id it does not know fetches
	// the schema from Registry; without Registry such a record fails with
	// ReasonUnknownSchema.
	Registry *sr.Client
	// Topics names the topics; used only with Registry and
	// FramingConfluent, to name the subjects.
	Topics TopicNames
	// FetchTimeout bounds one schema fetch made while decoding. Zero
	// means 10s.
	FetchTimeout time.Duration
}

// Validate reports whether the options are usable.
func (o *Options) Validate() error {
	switch o.Framing {
	case FramingSingleObject:
	case FramingConfluent:
		if o.Registry == nil {
			return errors.New("schemas: confluent framing needs a schema registry")
		}
		t := o.Topics
		if t.Interactions == "" || t.Purchases == "" || t.Erasures == "" || t.TierChanges == "" {
			return errors.New("schemas: confluent framing needs every topic name (to name the subjects)")
		}
	default:
		return fmt.Errorf("schemas: unknown framing %d", int(o.Framing))
	}
	if o.FetchTimeout < 0 {
		return fmt.Errorf("schemas: negative fetch timeout %v", o.FetchTimeout)
	}
	return nil
}

// Codec encodes and decodes the values of valora's topics. It is safe for
// concurrent use by multiple goroutines.
type Codec struct {
	framing      Framing
	registry     *sr.Client
	fetchTimeout time.Duration

	interactions *stream
	purchases    *stream
	erasures     *stream
	tierChanges  *stream
	profiles     *stream
}

// stream is the codec of one topic's values.
type stream struct {
	rec     *record
	subject string
	// header is written before each encoded value: the record's
	// single-object header, or confluent.
	header    []byte
	confluent [confluentHeaderLen]byte

	// ids maps the Confluent schema ids met so far to the schema to
	// decode with, or to the error to return. The map is never modified
	// once published: an update stores a new map under mu.
	ids atomic.Pointer[map[uint32]idEntry]
	mu  sync.Mutex // serialises registry fetches and updates of ids
}

// NewCodec returns a Codec for the current schemas. With FramingConfluent it
// registers the schemas under the topics' subjects (registering a schema
// that is already there returns its id) and writes their ids.
func NewCodec(ctx context.Context, opts Options) (*Codec, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	c := &Codec{
		framing:      opts.Framing,
		registry:     opts.Registry,
		fetchTimeout: opts.FetchTimeout,
		interactions: newStream(interactionRecord, opts.Topics.Interactions),
		purchases:    newStream(purchaseRecord, opts.Topics.Purchases),
		erasures:     newStream(erasureRequestRecord, opts.Topics.Erasures),
		tierChanges:  newStream(tierChangeRecord, opts.Topics.TierChanges),
		profiles:     newStream(profileRecord, opts.Topics.Profiles),
	}
	if c.fetchTimeout == 0 {
		c.fetchTimeout = defaultFetchTimeout
	}
	if c.framing == FramingConfluent {
		for _, st := range c.streams() {
			if st.subject == "" {
				continue // an optional topic not in use
			}
			if err := c.register(ctx, st); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

func newStream(rec *record, topic string) *stream {
	st := &stream{rec: rec, header: rec.soeHeader[:]}
	if topic != "" {
		st.subject = topic + "-value"
	}
	empty := make(map[uint32]idEntry)
	st.ids.Store(&empty)
	return st
}

func (c *Codec) streams() []*stream {
	return []*stream{c.interactions, c.purchases, c.erasures, c.tierChanges, c.profiles}
}

// Framing returns the wire format c writes.
func (c *Codec) Framing() Framing { return c.framing }

// DecodeInteraction decodes an Interaction value into v. See the package
// documentation for what every decoder promises.
func (c *Codec) DecodeInteraction(b []byte, v *Interaction) error {
	s, body, err := c.readSchema(c.interactions, b)
	if err != nil {
		return err
	}
	if s == c.interactions.rec.schema {
		return decodeInteractionBody(body, v)
	}
	attrs := v.Attributes
	clear(attrs)
	*v = Interaction{Attributes: attrs}
	return unmarshal(c.interactions.rec, s, body, v)
}

// DecodePurchase decodes a Purchase value into v.
func (c *Codec) DecodePurchase(b []byte, v *Purchase) error {
	s, body, err := c.readSchema(c.purchases, b)
	if err != nil {
		return err
	}
	if s == c.purchases.rec.schema {
		return decodePurchaseBody(body, v)
	}
	*v = Purchase{}
	return unmarshal(c.purchases.rec, s, body, v)
}

// DecodeErasure decodes an ErasureRequest value into v.
func (c *Codec) DecodeErasure(b []byte, v *ErasureRequest) error {
	s, body, err := c.readSchema(c.erasures, b)
	if err != nil {
		return err
	}
	*v = ErasureRequest{}
	return unmarshal(c.erasures.rec, s, body, v)
}

// DecodeTierChange decodes a TierChange value into v.
func (c *Codec) DecodeTierChange(b []byte, v *TierChange) error {
	s, body, err := c.readSchema(c.tierChanges, b)
	if err != nil {
		return err
	}
	*v = TierChange{}
	if err := unmarshal(c.tierChanges.rec, s, body, v); err != nil {
		return err
	}
	if len(v.ContactableChannels) == 0 {
		v.ContactableChannels = nil // as in a value built without any
	}
	return nil
}

// DecodeProfile decodes a CustomerProfile value into v.
func (c *Codec) DecodeProfile(b []byte, v *CustomerProfile) error {
	s, body, err := c.readSchema(c.profiles, b)
	if err != nil {
		return err
	}
	*v = CustomerProfile{}
	if err := unmarshal(c.profiles.rec, s, body, v); err != nil {
		return err
	}
	// Empty arrays decode as nil, as in a value built without any.
	if len(v.ContactableChannels) == 0 {
		v.ContactableChannels = nil
	}
	if len(v.Categories) == 0 {
		v.Categories = nil
	}
	return nil
}

// DecodeCustomer decodes a customer state value into v. State is always
// in single-object encoding; any other first byte is ReasonBadMagic.
func DecodeCustomer(b []byte, v *Customer) error {
	rec := customerStateRecord
	if len(b) == 0 {
		return decodeErr(ReasonTruncated, fmt.Errorf("%s: empty input", rec.name))
	}
	if b[0] != soeMagic0 {
		return decodeErr(ReasonBadMagic, fmt.Errorf("%s: first byte %#02x, want single-object %#02x", rec.name, b[0], soeMagic0))
	}
	s, body, err := rec.soeSchema(b)
	if err != nil {
		return err
	}
	if s == rec.schema {
		return decodeCustomerBody(body, v)
	}
	*v = Customer{
		InteractionsByChannel: v.InteractionsByChannel[:0],
		PurchasesByChannel:    v.PurchasesByChannel[:0],
		RecentEventHashes:     v.RecentEventHashes[:0],
		InteractionLastAt:     v.InteractionLastAt[:0],
		Consent:               v.Consent[:0],
		Categories:            v.Categories[:0],
	}
	return unmarshal(rec, s, body, v)
}

// AppendInteraction appends the encoding of v, in c's framing, to dst. See
// the package documentation for what every encoder promises.
func (c *Codec) AppendInteraction(dst []byte, v *Interaction) ([]byte, error) {
	return appendRecord(dst, c.interactions.header, c.interactions.rec, v)
}

// AppendPurchase appends the encoding of a Purchase in c's framing.
func (c *Codec) AppendPurchase(dst []byte, v *Purchase) ([]byte, error) {
	return appendRecord(dst, c.purchases.header, c.purchases.rec, v)
}

// AppendErasure appends the encoding of an ErasureRequest in c's framing.
func (c *Codec) AppendErasure(dst []byte, v *ErasureRequest) ([]byte, error) {
	return appendRecord(dst, c.erasures.header, c.erasures.rec, v)
}

// AppendTierChange appends the encoding of a TierChange in c's framing.
func (c *Codec) AppendTierChange(dst []byte, v *TierChange) ([]byte, error) {
	n := len(dst)
	dst, err := appendTierChangeBody(append(dst, c.tierChanges.header...), v)
	if err != nil {
		return dst[:n], fmt.Errorf("encode %s: %w", c.tierChanges.rec.name, err)
	}
	return dst, nil
}

// AppendProfile appends the encoding of a CustomerProfile in c's framing.
// Its per-channel maps are written in Channels order, so a profile has one
// encoding; a key that is not a channel name is an error.
func (c *Codec) AppendProfile(dst []byte, v *CustomerProfile) ([]byte, error) {
	n := len(dst)
	dst, err := appendProfileBody(append(dst, c.profiles.header...), v)
	if err != nil {
		return dst[:n], fmt.Errorf("encode %s: %w", c.profiles.rec.name, err)
	}
	return dst, nil
}

// AppendCustomer appends the encoding of a customer state value. State is
// always written in single-object encoding: the schema fingerprint in the
// header versions the stored value, with no registry involved.
func AppendCustomer(dst []byte, v *Customer) ([]byte, error) {
	return appendCustomerBody(append(dst, customerStateRecord.soeHeader[:]...), v), nil
}

// readSchema parses the framing of b and returns the schema to decode its
// body with, and the body.
func (c *Codec) readSchema(st *stream, b []byte) (avro.Schema, []byte, error) {
	if len(b) == 0 {
		return nil, nil, decodeErr(ReasonTruncated, fmt.Errorf("%s: empty input", st.rec.name))
	}
	switch b[0] {
	case soeMagic0:
		return st.rec.soeSchema(b)
	case confluentMagic:
		if len(b) < confluentHeaderLen {
			return nil, nil, decodeErr(ReasonTruncated, fmt.Errorf("%s: %d bytes, shorter than the %d-byte confluent header", st.rec.name, len(b), confluentHeaderLen))
		}
		s, err := c.schemaByID(st, binary.BigEndian.Uint32(b[1:confluentHeaderLen]))
		if err != nil {
			return nil, nil, err
		}
		return s, b[confluentHeaderLen:], nil
	default:
		return nil, nil, decodeErr(ReasonBadMagic, fmt.Errorf("%s: first byte %#02x is neither confluent %#02x nor single-object %#02x", st.rec.name, b[0], confluentMagic, soeMagic0))
	}
}

// soeSchema parses the single-object header of b (whose first byte is
// soeMagic0) and returns the schema to decode its body with, and the body.
func (r *record) soeSchema(b []byte) (avro.Schema, []byte, error) {
	if len(b) >= 2 && b[1] != soeMagic1 {
		return nil, nil, decodeErr(ReasonBadMagic, fmt.Errorf("%s: single-object marker %#02x %#02x, want %#02x %#02x", r.name, b[0], b[1], soeMagic0, soeMagic1))
	}
	if len(b) < soeHeaderLen {
		return nil, nil, decodeErr(ReasonTruncated, fmt.Errorf("%s: %d bytes, shorter than the %d-byte single-object header", r.name, len(b), soeHeaderLen))
	}
	fp := binary.LittleEndian.Uint64(b[2:soeHeaderLen])
	if fp == r.fingerprint {
		return r.schema, b[soeHeaderLen:], nil
	}
	if s, ok := r.writers[fp]; ok {
		return s, b[soeHeaderLen:], nil
	}
	return nil, nil, decodeErr(ReasonUnknownSchema, fmt.Errorf("%s: unknown schema fingerprint %016x", r.name, fp))
}

// unmarshal decodes body with schema into v, and fails if body holds more
// than one value.
func unmarshal(rec *record, schema avro.Schema, body []byte, v any) error {
	r := readerPool.Get().(*avro.Reader)
	r.Reset(body)
	r.ReadVal(schema, v)
	err := r.Error
	if err == nil {
		// At the end of the input Peek sets Error to io.EOF; if it
		// stays nil, bytes are left.
		r.Peek()
		if r.Error == nil {
			err = errors.New("trailing bytes after the record")
		}
	}
	r.Error = nil
	r.Reset(nil)
	readerPool.Put(r)
	if err != nil {
		return decodeErr(ReasonMalformed, fmt.Errorf("%s: %w", rec.name, err))
	}
	return nil
}

// appendRecord appends header and the encoding of v with rec's current
// schema to dst.
func appendRecord(dst, header []byte, rec *record, v any) ([]byte, error) {
	w := writerPool.Get().(*avro.Writer)
	w.Reset(nil)
	w.WriteVal(rec.schema, v)
	err := w.Error
	if err == nil {
		dst = append(dst, header...)
		dst = append(dst, w.Buffer()...)
	}
	w.Error = nil
	if cap(w.Buffer()) <= maxPooledWriterCap {
		writerPool.Put(w)
	}
	if err != nil {
		return dst, fmt.Errorf("encode %s: %w", rec.name, err)
	}
	return dst, nil
}
