package score

import (
	"bytes"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"valora/schemas"
)

// FuzzParsePolicy parses arbitrary bytes as a policy. It must never panic;
// a policy it accepts must validate again, have a digest, score an event,
// and survive writing back as YAML: the text written parses to a policy
// that writes the same text, with the same digest and duplicate window.
// Seeds: the f.Add calls below and testdata/fuzz/FuzzParsePolicy.
func FuzzParsePolicy(f *testing.F) {
	def := string(DefaultPolicyYAML())
	f.Add([]byte(def))
	f.Add([]byte(strings.Replace(def, "window_events: 32", "window_events: 0", 1)))
	f.Add([]byte(strings.Replace(def, "  JPY: 0.0067\n", "  JPY: .nan\n", 1)))
	f.Add([]byte(strings.Replace(def, "r: [4, 5], fm: [4, 5]", "r: 4, fm: [4, 5, 6]", 1)))
	f.Add([]byte("policy_version: x\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy(b)
		if err != nil {
			if p != nil {
				t.Fatalf("ParsePolicy returned a policy and an error: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "policy: ") {
				t.Fatalf("error %q lacks the policy: prefix", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted policy does not validate again: %v", err)
		}
		digest := p.Digest()
		if len(digest) != 32 {
			t.Fatalf("digest of %d bytes", len(digest))
		}
		// A validated policy scores without panicking.
		c := &schemas.Customer{CustomerID: "c"}
		e := &schemas.Purchase{EventID: "e", CustomerID: "c", OccurredAt: 1_700_000_000_000, Kind: schemas.KindPurchase,
			AmountMinor: 100, Currency: p.BaseCurrency, Channel: schemas.ChannelWeb, Items: 1}
		if _, err := p.ApplyPurchase(c, e); err != nil {
			t.Fatalf("policy rejects a plain purchase in its base currency: %v", err)
		}
		p.NextDeadline(c)
		_ = p.TierChange(c, Outcome{Changed: true}, schemas.CausePurchase, e.OccurredAt)

		out, err := yaml.Marshal(p)
		if err != nil {
			t.Fatalf("marshal accepted policy: %v", err)
		}
		q, err := ParsePolicy(out)
		if err != nil {
			t.Fatalf("policy written back does not parse: %v\n%s", err, out)
		}
		again, err := yaml.Marshal(q)
		if err != nil {
			t.Fatalf("marshal re-parsed policy: %v", err)
		}
		if !bytes.Equal(out, again) {
			t.Fatalf("round trip changed the policy:\n%s\nthen\n%s", out, again)
		}
		if !bytes.Equal(q.Digest(), digest) || q.Dedup != p.Dedup {
			t.Fatalf("round trip changed the digest or the duplicate window:\n%s", out)
		}
	})
}
