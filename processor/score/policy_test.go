package score

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestDefaultPolicyYAMLEqualsDefaultPolicy(t *testing.T) {
	got, err := ParsePolicy(DefaultPolicyYAML())
	if err != nil {
		t.Fatalf("ParsePolicy(default_policy.yaml): %v", err)
	}
	if want := DefaultPolicy(); !reflect.DeepEqual(got, want) {
		t.Errorf("ParsePolicy(default_policy.yaml) = %+v\nwant DefaultPolicy() = %+v", got, want)
	}
}

func TestPolicyMarshalRoundTrip(t *testing.T) {
	want := DefaultPolicy()
	b, err := yaml.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParsePolicy(b)
	if err != nil {
		t.Fatalf("ParsePolicy(Marshal(DefaultPolicy())): %v\n%s", err, b)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip changed the policy:\n%s", b)
	}
}

func TestLoadPolicy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, DefaultPolicyYAML(), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPolicy(path)
	if err != nil {
		t.Fatal(err)
	}
	if p.Version != "default-1" {
		t.Errorf("Version = %q", p.Version)
	}
	if _, err := LoadPolicy(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want os.ErrNotExist", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("policy_version: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPolicy(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad file: err = %v, want one naming %s", err, bad)
	}
}

func TestParsePolicyDefaults(t *testing.T) {
	src := strings.NewReplacer(
		"prospect_tier: prospect\n", "",
		"  complaint_types: [complaint]\n", "",
	).Replace(string(DefaultPolicyYAML()))
	p, err := ParsePolicy([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if p.ProspectTier != "prospect" {
		t.Errorf("ProspectTier = %q, want prospect", p.ProspectTier)
	}
	if !reflect.DeepEqual(p.Risk.ComplaintTypes, []string{"complaint"}) {
		t.Errorf("ComplaintTypes = %q, want [complaint]", p.Risk.ComplaintTypes)
	}
	// An explicit empty list disables complaints.
	src = strings.Replace(string(DefaultPolicyYAML()), "complaint_types: [complaint]", "complaint_types: []", 1)
	if p, err = ParsePolicy([]byte(src)); err != nil {
		t.Fatal(err)
	}
	if len(p.Risk.ComplaintTypes) != 0 {
		t.Errorf("ComplaintTypes = %q, want empty", p.Risk.ComplaintTypes)
	}
}

func TestParsePolicyDedupWindow(t *testing.T) {
	def := string(DefaultPolicyYAML())
	f := func(name, src string, want int) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(src))
			if err != nil {
				t.Fatal(err)
			}
			if p.Dedup.WindowEvents != want {
				t.Errorf("dedup.window_events = %d, want %d", p.Dedup.WindowEvents, want)
			}
		})
	}
	i := strings.Index(def, "\ndedup:")
	if i < 0 {
		t.Fatal("default_policy.yaml has no dedup section")
	}
	f("absent section", def[:i+1], DefaultDedupWindow)
	f("empty section", def[:i+1]+"dedup: {}\n", DefaultDedupWindow)
	f("explicit zero disables", strings.Replace(def, "window_events: 32", "window_events: 0", 1), 0)
	f("maximum", strings.Replace(def, "window_events: 32", "window_events: 1024", 1), MaxDedupWindow)
}

// TestDigestIgnoresDedup: the duplicate window decides which events apply,
// not how customers are scored, so changing it must not rebuild the timer
// index; any scoring field must.
func TestDigestIgnoresDedup(t *testing.T) {
	a, b := DefaultPolicy(), DefaultPolicy()
	b.Dedup.WindowEvents = 7
	if !bytes.Equal(a.Digest(), b.Digest()) {
		t.Error("changing dedup.window_events changed the digest")
	}
	b.Churn.InactivityDays++
	if bytes.Equal(a.Digest(), b.Digest()) {
		t.Error("changing churn.inactivity_days left the digest alone")
	}
}

func TestRangeYAML(t *testing.T) {
	var r struct {
		A *Range `yaml:"a"`
		B *Range `yaml:"b"`
	}
	if err := yaml.Unmarshal([]byte("a: 3\nb: [2, 4]\n"), &r); err != nil {
		t.Fatal(err)
	}
	if *r.A != (Range{3, 3}) || *r.B != (Range{2, 4}) {
		t.Errorf("got %v %v", *r.A, *r.B)
	}
	for _, src := range []string{"a: [1, 2, 3]\n", "a: {min: 1}\n", "a: [x, 2]\n"} {
		if err := yaml.Unmarshal([]byte(src), &r); err == nil {
			t.Errorf("%q: no error", src)
		}
	}
}

// policyErrors returns the *PolicyError values joined in err.
func policyErrors(err error) []*PolicyError {
	var out []*PolicyError
	var walk func(error)
	walk = func(e error) {
		if pe, ok := e.(*PolicyError); ok {
			out = append(out, pe)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return out
}

func TestValidateNamesTheField(t *testing.T) {
	// f mutates a copy of the default policy, writes it as YAML, parses it
	// back and wants an error at path whose message contains msg.
	f := func(name string, mutate func(p *Policy), path, msg string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			t.Helper()
			p, err := ParsePolicy(DefaultPolicyYAML())
			if err != nil {
				t.Fatal(err)
			}
			mutate(p)
			b, err := yaml.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ParsePolicy(b)
			if err == nil {
				t.Fatalf("no error; want %s: %s", path, msg)
			}
			for _, pe := range policyErrors(err) {
				if pe.Path == path && strings.Contains(pe.Msg, msg) {
					if !strings.HasPrefix(pe.Error(), "policy: "+path+": ") {
						t.Errorf("Error() = %q", pe.Error())
					}
					return
				}
			}
			t.Errorf("err = %v\nwant one at %s containing %q", err, path, msg)
			// Validate on the mutated value agrees.
			if err := p.Validate(); err == nil {
				t.Errorf("Validate accepted the mutated policy")
			}
		})
	}
	rng := func(lo, hi int) *Range { return &Range{lo, hi} }

	f("missing version", func(p *Policy) { p.Version = "" }, "policy_version", "required")
	f("blank version", func(p *Policy) { p.Version = "  " }, "policy_version", "required")
	f("missing base currency", func(p *Policy) { p.BaseCurrency = "" }, "base_currency", "required")
	f("lower-case base currency", func(p *Policy) { p.BaseCurrency = "usd" }, "base_currency", "not an ISO 4217 code")
	f("unknown base currency", func(p *Policy) { p.BaseCurrency = "ABC" }, "base_currency", "no known ISO 4217 minor unit")
	f("base without minor unit", func(p *Policy) { p.BaseCurrency = "XAU" }, "base_currency", "no known ISO 4217 minor unit")
	f("negative rate", func(p *Policy) { p.Rates["EUR"] = -1.08 }, "rates.EUR", "must be positive")
	f("zero rate", func(p *Policy) { p.Rates["EUR"] = 0 }, "rates.EUR", "must be positive")
	f("unknown rate currency", func(p *Policy) { p.Rates["QQQ"] = 1 }, "rates.QQQ", "no known ISO 4217 minor unit")
	f("bad rate code", func(p *Policy) { p.Rates["Euro"] = 1 }, "rates.Euro", "not an ISO 4217 code")
	f("base rate not 1", func(p *Policy) { p.Rates["USD"] = 2 }, "rates.USD", "must be 1")
	f("rate too small to convert exactly", func(p *Policy) { p.Rates["EUR"] = 1e-30 }, "rates.EUR", "exactly")
	f("three recency boundaries", func(p *Policy) { p.Scores.RecencyDays = []int64{30, 90, 180} }, "scores.recency_days", "exactly 4")
	f("non-increasing recency", func(p *Policy) { p.Scores.RecencyDays = []int64{30, 90, 90, 365} }, "scores.recency_days", "strictly increasing")
	f("decreasing frequency", func(p *Policy) { p.Scores.Frequency = []int64{1, 4, 2, 8} }, "scores.frequency", "strictly increasing")
	f("negative monetary", func(p *Policy) { p.Scores.MonetaryMinor = []int64{-1, 15000, 40000, 100000} }, "scores.monetary_minor[0]", "out of range")
	f("huge recency", func(p *Policy) { p.Scores.RecencyDays = []int64{30, 90, 180, 1 << 40} }, "scores.recency_days[3]", "out of range")
	f("min greater than max", func(p *Policy) { p.Tiers[3].R = rng(4, 2) }, "tiers[3].r", "min 4 greater than max 2")
	f("range above 5", func(p *Policy) { p.Tiers[0].FM = rng(4, 6) }, "tiers[0].fm", "max 6 out of range 1..5")
	f("range below 1", func(p *Policy) { p.Tiers[0].F = rng(0, 5) }, "tiers[0].f", "min 0 out of range 1..5")
	f("unreachable rule", func(p *Policy) {
		// need_attention (R3 FM3) after loyal (R3-5 FM3-5) never matches.
		p.Tiers[3], p.Tiers[4] = p.Tiers[4], p.Tiers[3]
	}, "tiers[4]", `"need_attention" is unreachable`)
	f("rule matching nothing", func(p *Policy) {
		// F5 and M1 give FM3, never FM1.
		p.Tiers = append(p.Tiers[:1:1], append([]TierRule{{Name: "empty", F: rng(5, 5), M: rng(1, 1), FM: rng(1, 1)}}, p.Tiers[1:]...)...)
	}, "tiers[1]", `"empty" is unreachable`)
	f("uncovered cell", func(p *Policy) { p.Tiers = p.Tiers[:len(p.Tiers)-1] }, "tiers", "no rule matches R=1 FM=1 (F=1 M=1), R=1 FM=2 (F=1 M=2)")
	f("no tiers", func(p *Policy) { p.Tiers = nil }, "tiers", "required")
	f("bad action", func(p *Policy) { p.Tiers[0].Action = "pamper" }, "tiers[0].action", `unknown action "pamper"`)
	f("bad prospect action", func(p *Policy) { p.ProspectAction = "spam" }, "prospect_action", `unknown action "spam"`)
	f("duplicate tier", func(p *Policy) { p.Tiers[1].Name = "champions" }, "tiers[1].name", "already names tiers[0]")
	f("tier named like the prospects", func(p *Policy) { p.Tiers[2].Name = "prospect" }, "tiers[2].name", "is the prospect_tier")
	f("tier name with a space", func(p *Policy) { p.Tiers[2].Name = "at risk" }, "tiers[2].name", "want 1 to 64 characters")
	f("missing tier name", func(p *Policy) { p.Tiers[2].Name = "" }, "tiers[2].name", "required")
	f("bad prospect tier", func(p *Policy) { p.ProspectTier = "a/b" }, "prospect_tier", "want 1 to 64 characters")
	f("at_risk_days equal to inactivity_days", func(p *Policy) { p.Lifecycle.AtRiskDays = 180 }, "lifecycle.at_risk_days", "less than churn.inactivity_days")
	f("at_risk_days above inactivity_days", func(p *Policy) { p.Lifecycle.AtRiskDays = 200 }, "lifecycle.at_risk_days", "less than churn.inactivity_days")
	f("zero inactivity", func(p *Policy) { p.Churn.InactivityDays = 0 }, "churn.inactivity_days", "out of range")
	f("negative new days", func(p *Policy) { p.Lifecycle.NewDays = -1 }, "lifecycle.new_days", "out of range")
	f("zero reactivated days", func(p *Policy) { p.Lifecycle.ReactivatedDays = 0 }, "lifecycle.reactivated_days", "out of range")
	f("zero complaint days", func(p *Policy) { p.Risk.ComplaintDays = 0 }, "risk.complaint_days", "out of range")
	f("zero risk days", func(p *Policy) { p.Risk.RiskDays = 0 }, "risk.risk_days", "out of range")
	f("satisfaction threshold above 10", func(p *Policy) { p.Risk.LowSatisfaction = 11 }, "risk.low_satisfaction", "out of range -1..10")
	f("empty complaint type", func(p *Policy) { p.Risk.ComplaintTypes = []string{"complaint", ""} }, "risk.complaint_types[1]", "empty")
	f("negative dedup window", func(p *Policy) { p.Dedup.WindowEvents = -1 }, "dedup.window_events", "out of range 0..1024")
	f("dedup window above the state's array bound", func(p *Policy) { p.Dedup.WindowEvents = 1025 }, "dedup.window_events", "out of range 0..1024")
}

func TestValidateReportsEveryProblem(t *testing.T) {
	p := DefaultPolicy()
	p.Version = ""
	p.Rates = map[string]float64{"EUR": -1}
	p.Churn.InactivityDays = 0
	errs := policyErrors(p.Validate())
	var paths []string
	for _, e := range errs {
		paths = append(paths, e.Path)
	}
	want := []string{"policy_version", "rates.EUR", "churn.inactivity_days"}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("paths = %q, want %q", paths, want)
	}
}

func TestParsePolicyYAMLErrors(t *testing.T) {
	def := string(DefaultPolicyYAML())
	f := func(name, src, want string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(src))
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want one containing %q", err, want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "policy: ") {
				t.Errorf("err = %q, want prefix \"policy: \"", err)
			}
		})
	}
	f("unknown top-level field", def+"polcy: x\n", "field polcy not found")
	f("unknown nested field", strings.Replace(def, "inactivity_days:", "inactivity_dayz:", 1), "field inactivity_dayz not found")
	f("unknown tier field", strings.Replace(def, "{name: champions,", "{name: champions, recency: 5,", 1), "field recency not found")
	f("range of three", strings.Replace(def, "r: [4, 5], fm: [4, 5], action: retain", "r: [4, 5, 6], fm: [4, 5], action: retain", 1), "got 3 values")
	f("wrong type", strings.Replace(def, "inactivity_days: 180", "inactivity_days: soon", 1), "cannot unmarshal")
	f("empty document", "", "empty document")
	f("two documents", def+"---\npolicy_version: x\n", "more than one YAML document")
}

func TestPolicyMethodsPanicBeforeValidate(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	p := &Policy{}
	_, _ = p.ToBase(1, "USD")
}
