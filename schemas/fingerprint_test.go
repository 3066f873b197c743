package schemas

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
)

func TestCanonicalFingerprint(t *testing.T) {
	// Vectors from the Avro project's share/test/data/schema-tests.txt,
	// plus logical types, which the Parsing Canonical Form strips.
	f := func(schema, canonical string, fp int64) {
		t.Helper()
		s, err := parseSchema(schema)
		if err != nil {
			t.Fatalf("parse %s: %v", schema, err)
		}
		var b strings.Builder
		writeCanonical(&b, s, map[string]bool{})
		if got := b.String(); got != canonical {
			t.Errorf("canonical form of %s:\n got %s\nwant %s", schema, got, canonical)
		}
		if got := canonicalFingerprint(s); got != uint64(fp) {
			t.Errorf("fingerprint of %s = %d, want %d", schema, int64(got), fp)
		}
	}
	f(`"null"`, `"null"`, 7195948357588979594)
	f(`{"type":"boolean"}`, `"boolean"`, -6970731678124411036)
	f(`"int"`, `"int"`, 8247732601305521295)
	f(`"long"`, `"long"`, -3434872931120570953)
	f(`{"type":"long","logicalType":"timestamp-millis"}`, `"long"`, -3434872931120570953)
	f(`{"type":"fixed","name":"foo","size":15}`, `{"name":"foo","type":"fixed","size":15}`, 1756455273707447556)
	f(`{"type":"record","name":"foo","fields":[{"name":"f1","type":"boolean"}]}`,
		`{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}`, 7843277075252814651)
	f(`{"type":"record","name":"PigValue","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}`,
		`{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}`, -1759257747318642341)
}

// TestFingerprintMatchesHamba checks the fingerprint of every embedded
// schema against hamba/avro's, computed on the schema with its logical types
// removed (hamba keeps them in its canonical form, the specification does
// not).
func TestFingerprintMatchesHamba(t *testing.T) {
	for _, name := range Names() {
		stripped, err := parseSchema(stripLogicalTypes(t, AVSC(name)))
		if err != nil {
			t.Fatalf("%s: parse stripped schema: %v", name, err)
		}
		want, err := stripped.FingerprintUsing(avro.CRC64AvroLE)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := Fingerprint(name)
		if got != binary.LittleEndian.Uint64(want) {
			t.Errorf("%s: fingerprint %016x, hamba on the stripped schema %x", name, got, want)
		}
	}
}
