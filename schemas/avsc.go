package schemas

import (
	_ "embed"
	"encoding/binary"
	"fmt"

	"github.com/hamba/avro/v2"
)

// Names of the records whose schemas this package owns. Each is also the
// base name of the record's .avsc file.
const (
	NameInteraction    = "interaction"
	NamePurchase       = "purchase"
	NameErasureRequest = "erasure_request"
	NameTierChange     = "tier_change"
	NameCustomerState  = "customer_state"
	NameProfile        = "customer_profile"
)

var (
	//go:embed interaction.avsc
	interactionAVSC string
	//go:embed purchase.avsc
	purchaseAVSC string
	//go:embed erasure_request.avsc
	erasureRequestAVSC string
	//go:embed tier_change.avsc
	tierChangeAVSC string
	// tier_change.v1.avsc is TierChange before risk_reason,
	// contactable_channels and the treatment fields: records written by
	// earlier builds, still on the topic.
	//go:embed tier_change.v1.avsc
	tierChangeV1AVSC string
	//go:embed customer_profile.avsc
	profileAVSC string
	//go:embed customer_state.avsc
	customerStateAVSC string
	// customer_state.v1.avsc is CustomerState before recent_event_hashes:
	// state written by earlier builds.
	//go:embed customer_state.v1.avsc
	customerStateV1AVSC string
	// customer_state.v2.avsc is CustomerState before the service history,
	// channel, consent and category fields and the treatment.
	//go:embed customer_state.v2.avsc
	customerStateV2AVSC string
)

// The parsed embedded schemas: the only package-level state, built once at
// start-up and never changed. Earlier versions of a record's schema that
// valora must still read go in the last arguments of newRecord, oldest
// first, embedded from files named like "purchase.v1.avsc".
var (
	interactionRecord    = mustRecord(NameInteraction, interactionAVSC)
	purchaseRecord       = mustRecord(NamePurchase, purchaseAVSC)
	erasureRequestRecord = mustRecord(NameErasureRequest, erasureRequestAVSC)
	tierChangeRecord     = mustRecord(NameTierChange, tierChangeAVSC, tierChangeV1AVSC)
	profileRecord        = mustRecord(NameProfile, profileAVSC)
	customerStateRecord  = mustRecord(NameCustomerState, customerStateAVSC, customerStateV1AVSC, customerStateV2AVSC)

	records = []*record{
		interactionRecord, purchaseRecord, erasureRequestRecord,
		tierChangeRecord, customerStateRecord, profileRecord,
	}
)

// Names returns the names of every record schema, in a fixed order.
func Names() []string {
	names := make([]string, len(records))
	for i, r := range records {
		names[i] = r.name
	}
	return names
}

// AVSC returns the text of the named record's .avsc file (see Names), or nil
// if there is no such record. The caller owns the returned slice.
func AVSC(name string) []byte {
	if r := lookupRecord(name); r != nil {
		return []byte(r.text)
	}
	return nil
}

// Schema returns the parsed current schema of the named record (see Names),
// or nil if there is no such record. The schema is shared and must not be
// modified.
func Schema(name string) avro.Schema {
	if r := lookupRecord(name); r != nil {
		return r.schema
	}
	return nil
}

// Fingerprint returns the CRC-64-AVRO fingerprint of the Parsing Canonical
// Form of the named record's current schema, as carried (little-endian) in
// the single-object encoding header, and whether the record exists.
func Fingerprint(name string) (uint64, bool) {
	if r := lookupRecord(name); r != nil {
		return r.fingerprint, true
	}
	return 0, false
}

func lookupRecord(name string) *record {
	for _, r := range records {
		if r.name == name {
			return r
		}
	}
	return nil
}

// record is one record type's schemas: the current one, which valora reads
// into and writes with, and every writer schema it can read, by
// single-object fingerprint. A record is immutable once built.
type record struct {
	name        string
	text        string
	schema      avro.Schema
	fingerprint uint64
	soeHeader   [soeHeaderLen]byte
	// writers maps the fingerprint of each known writer schema to the
	// schema to decode its bytes with: schema itself for the current
	// version, a resolved schema for earlier ones.
	writers map[uint64]avro.Schema
}

func mustRecord(name, text string, older ...string) *record {
	r, err := newRecord(name, text, older...)
	if err != nil {
		panic(err)
	}
	return r
}

// newRecord parses the current schema text and the texts of earlier
// versions that must remain readable.
func newRecord(name, text string, older ...string) (*record, error) {
	schema, err := parseSchema(text)
	if err != nil {
		return nil, fmt.Errorf("parse %s.avsc: %w", name, err)
	}
	r := &record{
		name:        name,
		text:        text,
		schema:      schema,
		fingerprint: canonicalFingerprint(schema),
		writers:     make(map[uint64]avro.Schema),
	}
	r.soeHeader[0], r.soeHeader[1] = soeMagic0, soeMagic1
	binary.LittleEndian.PutUint64(r.soeHeader[2:], r.fingerprint)
	r.addWriter(schema, schema)

	for i, t := range older {
		w, err := parseSchema(t)
		if err != nil {
			return nil, fmt.Errorf("parse %s version %d: %w", name, i+1, err)
		}
		resolved, err := resolve(schema, w)
		if err != nil {
			return nil, fmt.Errorf("%s version %d: %w", name, i+1, err)
		}
		r.addWriter(w, resolved)
	}
	return r, nil
}

// addWriter makes bytes written with schema w decode with read. Both the
// standard fingerprint and the one hamba/avro's soe package computes (which
// keeps logical types in the canonical form) are accepted.
func (r *record) addWriter(w, read avro.Schema) {
	r.writers[canonicalFingerprint(w)] = read
	if fp, err := w.FingerprintUsing(avro.CRC64AvroLE); err == nil && len(fp) == 8 {
		r.writers[binary.LittleEndian.Uint64(fp)] = read
	}
}

// parseSchema parses a schema text on its own, so that named types of one
// schema never leak into another (each file defines its enums inline).
func parseSchema(text string) (avro.Schema, error) {
	return avro.ParseWithCache(text, "", &avro.SchemaCache{})
}

// resolve returns the schema that reads bytes written with writer into
// values of reader's shape, or an error if reader cannot read them.
func resolve(reader, writer avro.Schema) (avro.Schema, error) {
	sc := avro.NewSchemaCompatibility()
	if err := sc.Compatible(reader, writer); err != nil {
		return nil, fmt.Errorf("writer schema is not readable with the current schema: %w", err)
	}
	resolved, err := sc.Resolve(reader, writer)
	if err != nil {
		return nil, fmt.Errorf("resolve writer schema: %w", err)
	}
	return resolved, nil
}
