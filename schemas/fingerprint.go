package schemas

import (
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
)

// canonicalFingerprint returns the CRC-64-AVRO fingerprint of the schema's
// Parsing Canonical Form, as the Avro specification defines both.
//
// hamba/avro's own canonical form keeps logicalType attributes, which the
// specification strips, so its fingerprints differ from those of the Java,
// Python and C implementations for any schema with a logical type. valora
// writes the standard fingerprint so that any single-object decoder can
// read its records.
func canonicalFingerprint(s avro.Schema) uint64 {
	var b strings.Builder
	writeCanonical(&b, s, make(map[string]bool))
	return crc64Avro([]byte(b.String()))
}

// writeCanonical writes the Parsing Canonical Form of s: only the
// attributes that matter to parsing (type, name, fields, symbols, items,
// values, size), in that order, full names, and every named type spelled
// out at its first occurrence only.
func writeCanonical(b *strings.Builder, s avro.Schema, seen map[string]bool) {
	switch s := s.(type) {
	case *avro.RefSchema:
		writeCanonical(b, s.Schema(), seen)
	case *avro.PrimitiveSchema:
		b.WriteString(strconv.Quote(string(s.Type())))
	case *avro.NullSchema:
		b.WriteString(`"null"`)
	case *avro.RecordSchema:
		if writeName(b, s.FullName(), seen) {
			return
		}
		typ := "record"
		if s.IsError() {
			typ = "error"
		}
		b.WriteString(`,"type":"` + typ + `","fields":[`)
		for i, f := range s.Fields() {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"name":` + strconv.Quote(f.Name()) + `,"type":`)
			writeCanonical(b, f.Type(), seen)
			b.WriteByte('}')
		}
		b.WriteString("]}")
	case *avro.EnumSchema:
		if writeName(b, s.FullName(), seen) {
			return
		}
		b.WriteString(`,"type":"enum","symbols":[`)
		for i, sym := range s.Symbols() {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(sym))
		}
		b.WriteString("]}")
	case *avro.FixedSchema:
		if writeName(b, s.FullName(), seen) {
			return
		}
		b.WriteString(`,"type":"fixed","size":` + strconv.Itoa(s.Size()) + "}")
	case *avro.ArraySchema:
		b.WriteString(`{"type":"array","items":`)
		writeCanonical(b, s.Items(), seen)
		b.WriteByte('}')
	case *avro.MapSchema:
		b.WriteString(`{"type":"map","values":`)
		writeCanonical(b, s.Values(), seen)
		b.WriteByte('}')
	case *avro.UnionSchema:
		b.WriteByte('[')
		for i, t := range s.Types() {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonical(b, t, seen)
		}
		b.WriteByte(']')
	default:
		// Not reached for the schema kinds hamba/avro parses; fall back
		// to its canonical form rather than fail.
		b.WriteString(s.String())
	}
}

// writeName writes the name of a named type: the whole reference if the type
// was already written (and reports true), else the opening of its object.
func writeName(b *strings.Builder, full string, seen map[string]bool) (done bool) {
	if seen[full] {
		b.WriteString(strconv.Quote(full))
		return true
	}
	seen[full] = true
	b.WriteString(`{"name":` + strconv.Quote(full))
	return false
}

// crc64Empty is the CRC-64-AVRO of the empty input, from the specification.
const crc64Empty uint64 = 0xc15d213aa4d7a795

var crc64Table = func() (t [256]uint64) {
	for i := range t {
		fp := uint64(i)
		for range 8 {
			fp = (fp >> 1) ^ (crc64Empty & -(fp & 1))
		}
		t[i] = fp
	}
	return t
}()

// crc64Avro is the Rabin fingerprint the Avro specification calls
// CRC-64-AVRO.
func crc64Avro(buf []byte) uint64 {
	fp := crc64Empty
	for _, c := range buf {
		fp = (fp >> 8) ^ crc64Table[byte(fp)^c]
	}
	return fp
}
