// Package schemas owns valora's wire contract: the Avro schemas of the
// records on its topics and of the customer state it stores, the Go types
// they map to, and the codecs that read and write them.
//
// # Schemas
//
// Each record has one .avsc file in this directory, embedded in the binary
// and documented field by field: interaction.avsc, purchase.avsc,
// erasure_request.avsc, tier_change.avsc, customer_profile.avsc and
// customer_state.avsc (namespace valora). Each file stands alone, defining inline the enums it uses, so a
// producer can write records from that file only. Names lists the records;
// AVSC returns a file's text and Schema its parsed form. Timestamps are
// Avro longs with logical type timestamp-millis and map to int64 Unix
// milliseconds.
//
// # Framings
//
// A value on a topic is framed in one of two standard ways:
//
//   - single-object encoding: C3 01, then the 8-byte little-endian
//     CRC-64-AVRO fingerprint of the writer schema's Parsing Canonical Form,
//     then the Avro body. It needs no registry.
//   - Confluent: 0x00, then the 4-byte big-endian schema id of the writer
//     schema in a schema registry, then the Avro body. The value schema of
//     topic T lives under subject "T-value".
//
// A Codec writes the framing its Options choose and reads both. Customer
// state (AppendCustomer, DecodeCustomer) is always single-object encoded:
// the fingerprint versions the stored value. The fingerprint follows the
// Avro specification, which strips logical types from the canonical form;
// decoders also accept the fingerprint hamba/avro's soe package computes,
// which keeps them.
//
// # Evolution
//
// The schemas evolve under BACKWARD compatibility: the current schema must
// read everything written with earlier ones. A field may be added only with
// a default, a field may be removed, and an enum symbol may be added only to
// an enum with a default (Channel falls back to OTHER). When a schema
// changes, its previous version stays in this package as an earlier version
// of the record, so single-object values and state written before the
// change still decode; the golden files under testdata pin the current
// encodings.
// A Confluent-framed record written with a schema this build does not know
// is read by fetching the writer schema from the registry and resolving it
// against the current one.
//
// # Decoding
//
// Every decoder (the Codec's Decode methods and DecodeCustomer):
//   - accepts a single-object value whose fingerprint is that of the
//     current schema or of an earlier version still read, and, except
//     DecodeCustomer, a Confluent value whose schema id is known or can be
//     fetched from the registry and read as the expected record;
//   - overwrites every field of the destination: its slices and map are
//     reset and reused for storage (an Interaction without attributes
//     leaves a nil map nil), pointer fields are newly allocated and
//     strings copied, so the input may be reused once the call returns;
//   - returns a *DecodeError, whose Reason is a dead-letter reason, when the
//     value is unreadable, and an error wrapping ErrRegistryUnavailable when
//     a writer schema could not be fetched (retry or stop, do not
//     dead-letter); after an error the destination's contents are
//     unspecified;
//   - rejects bytes left after the record (ReasonMalformed) and bounds what
//     untrusted input can make it allocate (64 KiB per string, 1024 items per
//     array).
//
// Once a writer schema is known, decoding allocates only what the value
// itself needs: pointer fields, map entries, and now and then a slab for
// strings. Values written under the current schema (every input record and
// customer state, in steady operation) are read by hand-written decoders,
// checked against the generic ones; the others by hamba/avro.
//
// # Encoding
//
// Every encoder (the Codec's Append methods and AppendCustomer) appends the
// framed value to a slice and returns it, unchanged on error. Values are not
// validated beyond what the schema requires (an enum field must hold one of
// its symbols). Map entries are written in Go's map order, so an Interaction
// with two or more attributes has more than one valid encoding.
//
// # Concurrency
//
// A Codec, and the package-level functions, are safe for concurrent use by
// any number of goroutines. Decoding a value whose writer schema is known
// takes no lock; the first value with an unknown schema id fetches it from
// the registry while holding a per-topic lock.
package schemas
