package score

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"valora/processor/clv"
)

// Policy is a scoring policy: score boundaries, the tier map, the lifecycle,
// churn and risk rules, and the money conversion table. Load one with
// ParsePolicy or LoadPolicy, or start from DefaultPolicy.
//
// Validate checks a policy and compiles it into the tables the scoring
// methods use. ParsePolicy, LoadPolicy and DefaultPolicy return validated
// policies; a Policy built or changed in code must pass Validate before use,
// and changes made after Validate take effect only when Validate is called
// again. The scoring methods panic on a policy that never passed Validate.
// A validated Policy is read-only and safe for concurrent use.
type Policy struct {
	// Version names the policy; it is copied to every customer evaluated
	// under it and to every TierChange. Required.
	Version string `yaml:"policy_version"`
	// BaseCurrency is the ISO 4217 code all money is converted to.
	// Required; must have a minor unit (see MinorUnits).
	BaseCurrency string `yaml:"base_currency"`
	// Rates gives, for each other accepted currency, the units of the base
	// currency that one unit of it is worth. The base currency is implied
	// with rate 1 (it may be listed, with rate 1). A currency absent here
	// is rejected (ErrUnknownCurrency).
	Rates map[string]float64 `yaml:"rates"`
	// Scores holds the R, F and M score boundaries.
	Scores Scores `yaml:"scores"`
	// Tiers is the segment map, in order: the first rule whose ranges hold
	// a customer's scores names the tier. Every combination of scores must
	// match a rule, and every rule must be the first match of at least one.
	Tiers []TierRule `yaml:"tiers"`
	// ProspectTier is the tier of a customer without a purchase.
	// ParsePolicy defaults it to "prospect".
	ProspectTier string `yaml:"prospect_tier"`
	// ProspectAction is the action recommended for prospects; empty for
	// none. It must be one of Actions().
	ProspectAction string `yaml:"prospect_action,omitempty"`
	// Churn holds the inactivity rule.
	Churn Churn `yaml:"churn"`
	// Lifecycle holds the lifecycle stage windows.
	Lifecycle Lifecycle `yaml:"lifecycle"`
	// Risk holds the rules by which interactions raise risk.
	Risk Risk `yaml:"risk"`
	// Categories sizes the per-customer category statistics. It decides
	// what a profile lists, not how a customer is scored, so Digest leaves
	// it out.
	Categories Categories `yaml:"categories" json:"-"`
	// Consent holds the consent rule: which interaction types grant or
	// withdraw consent to contact on their channel, and what no consent
	// event means. Digest leaves it out, as Categories.
	Consent Consent `yaml:"consent" json:"-"`
	// Dedup holds the duplicate rule. It decides which events apply, not
	// how a customer is scored, so Digest leaves it out: changing it does
	// not rebuild the timer index.
	Dedup Dedup `yaml:"dedup" json:"-"`
	// Models holds the fitted customer-base models (BG/NBD, MBG/NBD or
	// Pareto/NBD, and Gamma-Gamma)
	// and how to discount them into a lifetime value; `valora calibrate`
	// writes it. Money in the models is in major units of BaseCurrency.
	// Optional: without it TierChanges carry no p_alive,
	// expected_purchases or clv, and neither Churn.PAliveBelow nor
	// ValueClasses may be set.
	Models *clv.Model `yaml:"models,omitempty" json:"models,omitempty"`
	// ValueClasses holds the thresholds of the value classes. Optional;
	// requires Models.
	ValueClasses *ValueClasses `yaml:"value_classes,omitempty" json:"value_classes,omitempty"`
	// Relationships lists the kinds of relationship the treatments offer
	// and what each costs. Optional: nil means DefaultRelationships().
	Relationships []Relationship `yaml:"relationships,omitempty" json:"relationships,omitempty"`
	// Treatments is the treatment table, in order: the first rule that
	// matches a customer's tier, value class, stage, churn flag and risk
	// reason names its treatment, action and relationship. Every
	// combination a customer can have must match a rule, and every rule
	// must be the first match of at least one. Optional: nil means
	// DefaultTreatments(p).
	Treatments []TreatmentRule `yaml:"treatments,omitempty" json:"treatments,omitempty"`

	c *compiled // set by Validate
}

// Scores holds the four boundaries of each score, strictly increasing and
// non-negative. Boundaries are inclusive upper limits:
//
//   - recency (whole days since the last purchase): R is 5 when days <=
//     RecencyDays[0], 4 when <= [1], 3 when <= [2], 2 when <= [3], else 1;
//   - frequency (number of purchases): F is 1 when count <= Frequency[0],
//     2 when <= [1], 3 when <= [2], 4 when <= [3], else 5;
//   - monetary (net value in base minor units): M likewise over
//     MonetaryMinor; a zero or negative value is always 1.
type Scores struct {
	RecencyDays   []int64 `yaml:"recency_days,flow" json:"recency_days"`
	Frequency     []int64 `yaml:"frequency,flow" json:"frequency"`
	MonetaryMinor []int64 `yaml:"monetary_minor,flow" json:"monetary_minor"`
}

// TierRule is one entry of the tier map. Each range is optional (nil means
// 1..5). FM is the combined frequency-monetary score (F + M + 1) / 2.
type TierRule struct {
	// Name is the tier: 1 to 64 characters among a-z, A-Z, 0-9, '_' and
	// '-', unique in the policy and different from ProspectTier.
	Name string `yaml:"name"`
	R    *Range `yaml:"r,omitempty"`
	F    *Range `yaml:"f,omitempty"`
	M    *Range `yaml:"m,omitempty"`
	FM   *Range `yaml:"fm,omitempty"`
	// Action is the recommended action for the tier (one of Actions()), or
	// empty for none.
	Action string `yaml:"action,omitempty"`
}

// Range is an inclusive range of scores within 1..5. In YAML it is written
// [min, max], or as a single score n for [n, n].
type Range struct {
	Min, Max int
}

// UnmarshalYAML reads [min, max] or a single score.
func (r *Range) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		var v int
		if err := n.Decode(&v); err != nil {
			return err
		}
		*r = Range{v, v}
		return nil
	case yaml.SequenceNode:
		var v []int
		if err := n.Decode(&v); err != nil {
			return err
		}
		if len(v) != 2 {
			return fmt.Errorf("line %d: a score range is [min, max], got %d values", n.Line, len(v))
		}
		*r = Range{v[0], v[1]}
		return nil
	}
	return fmt.Errorf("line %d: a score range is [min, max] or a single score", n.Line)
}

// MarshalYAML writes [min, max].
func (r Range) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, v := range []int{r.Min, r.Max} {
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: fmt.Sprint(v)})
	}
	return n, nil
}

func (r *Range) contains(v int) bool { return r == nil || (r.Min <= v && v <= r.Max) }

// Churn is the inactivity rule.
type Churn struct {
	// InactivityDays: a customer with a purchase and no activity (purchase,
	// refund or interaction) for this many days is churned. > 0.
	InactivityDays int64 `yaml:"inactivity_days"`
	// PAliveBelow: a buyer whose probability of being alive under the
	// count model of Models is below this is churned too, even before
	// InactivityDays. Under BG/NBD only repeat buyers (at least one repeat
	// purchase day) can fall below it: a one-time buyer's P(alive) is 1;
	// under MBG/NBD and Pareto/NBD one-time buyers can too. In [0, 1); 0 (the default)
	// disables the rule, which requires Models.
	PAliveBelow float64 `yaml:"p_alive_below,omitempty" json:",omitempty"`
}

// DefaultReviewDays is ValueClasses.ReviewDays when a policy file leaves it
// out.
const DefaultReviewDays = 7

// The value classes.
const (
	ClassHighYield     = "high_yield"     // valuable now and expected to stay so
	ClassHighPotential = "high_potential" // modest so far, valuable in prospect
	ClassBelowZero     = "below_zero"     // expected to be worth less than serving them costs
)

// ValueClasses holds the thresholds that sort customers with a purchase into
// value classes, from their discounted lifetime value (CLV, over the
// horizon of Policy.Models) and their current net monetary value, both in
// minor units of the base currency. The first matching rule wins:
//
//  1. below_zero: monetary value <= 0, or CLV < BelowZeroCLVMinor;
//  2. high_yield: monetary value >= HighYieldMonetaryMinor and CLV >=
//     HighYieldCLVMinor;
//  3. high_potential: monetary value < HighYieldMonetaryMinor and CLV >=
//     HighPotentialCLVMinor;
//  4. otherwise no class (value_class null).
//
// Every threshold is finite and >= 0, and BelowZeroCLVMinor is at most both
// CLV thresholds.
type ValueClasses struct {
	// ReviewDays: the CLV of a silent customer decays continuously, so a
	// customer's class is re-derived at least this often (a timer) while
	// it is above below_zero (and, when BelowZeroCLVMinor is 0, which a
	// CLV never falls below, while the customer has been idle less than
	// three inactivity windows). In 1..3650; ParsePolicy defaults it to 7.
	ReviewDays             int64   `yaml:"review_days" json:"review_days"`
	HighYieldCLVMinor      float64 `yaml:"high_yield_clv_minor" json:"high_yield_clv_minor"`
	HighYieldMonetaryMinor int64   `yaml:"high_yield_monetary_minor" json:"high_yield_monetary_minor"`
	HighPotentialCLVMinor  float64 `yaml:"high_potential_clv_minor" json:"high_potential_clv_minor"`
	BelowZeroCLVMinor      float64 `yaml:"below_zero_clv_minor" json:"below_zero_clv_minor"`
}

// Lifecycle holds the lifecycle stage windows, in days (each > 0).
type Lifecycle struct {
	// NewDays: a customer is new for this long after the first purchase.
	NewDays int64 `yaml:"new_days"`
	// AtRiskDays: a customer inactive this long is at risk. Must be less
	// than Churn.InactivityDays.
	AtRiskDays int64 `yaml:"at_risk_days"`
	// ReactivatedDays: a customer is reactivated for this long after the
	// purchase that ended a churn.
	ReactivatedDays int64 `yaml:"reactivated_days"`
}

// Risk holds the rules by which an interaction puts a customer at risk.
type Risk struct {
	// ComplaintDays: an interaction whose type is one of ComplaintTypes
	// keeps the customer at risk for this many days. > 0.
	ComplaintDays int64 `yaml:"complaint_days"`
	// LowSatisfaction: a satisfaction score (0..10) at or below this
	// raises risk. In -1..10; -1 disables the rule.
	LowSatisfaction int32 `yaml:"low_satisfaction"`
	// RiskDays: a low satisfaction score keeps the customer at risk for
	// this many days. > 0.
	RiskDays int64 `yaml:"risk_days"`
	// ComplaintTypes lists the interaction types that count as a
	// complaint. ParsePolicy defaults it to ["complaint"] when absent; an
	// explicit empty list disables the rule.
	ComplaintTypes []string `yaml:"complaint_types,flow"`
	// ResolutionTypes lists the interaction types that resolve a
	// complaint: a resolution at event time t ends the risk period of
	// every complaint at or before t (a complaint after it starts a new
	// one), and is counted. ParsePolicy defaults it to
	// ["complaint_resolved"] when absent; an explicit empty list disables
	// the rule.
	ResolutionTypes []string `yaml:"resolution_types,flow" json:",omitempty"`
}

// Defaults and bounds of Categories.
const (
	DefaultTopCategories = 5
	MaxTrackedCategories = 64
	trackedPerTop        = 4
)

// Categories sizes what valora keeps of a customer's purchase categories.
type Categories struct {
	// TopN is how many categories a profile lists, by net spend. In
	// 1..64; 0 means DefaultTopCategories.
	TopN int `yaml:"top_n"`
	// Tracked bounds the categories kept per customer: when a purchase in
	// a new category finds the list full, the category with the lowest
	// net spend makes way for it. In TopN..64; 0 means 4 × TopN (at most
	// 64). Above TopN, a category that climbs slowly is not dropped before
	// it can reach the top.
	Tracked int `yaml:"tracked"`
}

// The values of Consent.Default.
const (
	ConsentNone    = "none"
	ConsentGranted = "granted"
)

// Consent is the consent rule. An interaction whose type is in
// GrantTypes grants consent to contact the customer on its channel; one
// in WithdrawTypes withdraws it. The latest event by event time wins (a
// withdrawal at the same time as a grant wins).
type Consent struct {
	// Default says what a channel without a consent event means: "none"
	// (not contactable: the prudent reading of data-protection law, where
	// consent must be given) or "granted" (contactable until withdrawn).
	// Empty means "none".
	Default string `yaml:"default"`
	// GrantTypes and WithdrawTypes: ParsePolicy defaults them to
	// ["consent_granted"] and ["consent_withdrawn"] when absent; an
	// explicit empty list disables the rule.
	GrantTypes    []string `yaml:"grant_types,flow"`
	WithdrawTypes []string `yaml:"withdraw_types,flow"`
}

// The recommended actions a tier may carry.
const (
	ActionAcquire    = "acquire"    // turn a prospect into a customer
	ActionNurture    = "nurture"    // onboard a recent first-time buyer
	ActionGrow       = "grow"       // raise frequency or basket size
	ActionRetain     = "retain"     // keep a valuable, active customer
	ActionWinBack    = "win_back"   // recover a valuable customer drifting away
	ActionReactivate = "reactivate" // wake a low-value, fading customer
	ActionLetGo      = "let_go"     // stop spending on a lost customer
)

var actions = [...]string{
	ActionAcquire, ActionNurture, ActionGrow, ActionRetain, ActionWinBack,
	ActionReactivate, ActionLetGo,
}

// Actions returns the valid actions, in the order above.
func Actions() []string { return slices.Clone(actions[:]) }

// Bounds checked by Validate.
const (
	maxDays         = 100 * 365 // any window, and any recency boundary
	maxNameLen      = 64
	numBoundaries   = 4
	minScore        = 1
	maxScore        = 5
	maxSatisfaction = 10
)

// PolicyError is one problem found by Validate. Path names the field in the
// YAML form of the policy, such as "tiers[3].r" or "rates.EUR".
type PolicyError struct {
	Path string
	Msg  string
}

func (e *PolicyError) Error() string { return "policy: " + e.Path + ": " + e.Msg }

//go:embed default_policy.yaml
var defaultPolicyYAML []byte

// DefaultPolicyYAML returns the YAML text of the default policy, with
// comments: a starting point for a custom policy.
func DefaultPolicyYAML() []byte { return bytes.Clone(defaultPolicyYAML) }

// DefaultPolicy returns the default policy: the standard 11-segment RFM map
// on 1–5 scores, USD as base currency. It equals ParsePolicy of
// DefaultPolicyYAML.
func DefaultPolicy() *Policy {
	rng := func(lo, hi int) *Range { return &Range{lo, hi} }
	p := &Policy{
		Version:      "default-1",
		BaseCurrency: "USD",
		Rates:        map[string]float64{"EUR": 1.08, "GBP": 1.27, "JPY": 0.0067},
		Scores: Scores{
			RecencyDays:   []int64{30, 90, 180, 365},
			Frequency:     []int64{1, 2, 4, 8},
			MonetaryMinor: []int64{5000, 15000, 40000, 100000},
		},
		Tiers: []TierRule{
			{Name: "champions", R: rng(4, 5), FM: rng(4, 5), Action: ActionRetain},
			{Name: "cannot_lose_them", R: rng(1, 1), FM: rng(4, 5), Action: ActionWinBack},
			{Name: "at_risk", R: rng(1, 2), FM: rng(3, 5), Action: ActionWinBack},
			{Name: "need_attention", R: rng(3, 3), FM: rng(3, 3), Action: ActionGrow},
			{Name: "loyal", R: rng(3, 5), FM: rng(3, 5), Action: ActionRetain},
			{Name: "new_customers", R: rng(5, 5), FM: rng(1, 1), Action: ActionNurture},
			{Name: "promising", R: rng(4, 4), FM: rng(1, 1), Action: ActionNurture},
			{Name: "potential_loyalist", R: rng(4, 5), FM: rng(2, 2), Action: ActionGrow},
			{Name: "about_to_sleep", R: rng(3, 3), FM: rng(1, 2), Action: ActionReactivate},
			{Name: "hibernating", R: rng(2, 2), FM: rng(1, 2), Action: ActionReactivate},
			{Name: "lost", R: rng(1, 1), FM: rng(1, 2), Action: ActionLetGo},
		},
		ProspectTier:   "prospect",
		ProspectAction: ActionAcquire,
		Churn:          Churn{InactivityDays: 180},
		Lifecycle:      Lifecycle{NewDays: 30, AtRiskDays: 90, ReactivatedDays: 30},
		Risk: Risk{
			ComplaintDays:   30,
			LowSatisfaction: 3,
			RiskDays:        30,
			ComplaintTypes:  []string{"complaint"},
			ResolutionTypes: []string{"complaint_resolved"},
		},
		Categories: Categories{TopN: DefaultTopCategories, Tracked: trackedPerTop * DefaultTopCategories},
		Consent: Consent{
			Default:       ConsentNone,
			GrantTypes:    []string{"consent_granted"},
			WithdrawTypes: []string{"consent_withdrawn"},
		},
		Dedup: Dedup{WindowEvents: DefaultDedupWindow},
	}
	if err := p.Validate(); err != nil {
		panic("score: default policy is invalid: " + err.Error())
	}
	return p
}

// ParsePolicy reads a policy from YAML, fills the documented defaults
// (prospect_tier, risk.complaint_types, risk.resolution_types,
// categories, consent, dedup.window_events) and validates
// it. Unknown fields are errors.
func ParsePolicy(b []byte) (*Policy, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	// Defaults that an explicit zero must be able to override are set
	// before decoding: the decoder leaves absent fields alone.
	p := &Policy{Dedup: Dedup{WindowEvents: DefaultDedupWindow}}
	if err := dec.Decode(p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("policy: empty document")
		}
		return nil, fmt.Errorf("policy: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("policy: more than one YAML document")
	}
	if p.ProspectTier == "" {
		p.ProspectTier = "prospect"
	}
	if p.Risk.ComplaintTypes == nil {
		p.Risk.ComplaintTypes = []string{"complaint"}
	}
	if p.Risk.ResolutionTypes == nil {
		p.Risk.ResolutionTypes = []string{"complaint_resolved"}
	}
	if p.Categories.TopN == 0 {
		p.Categories.TopN = DefaultTopCategories
	}
	if p.Categories.Tracked == 0 {
		p.Categories.Tracked = min(MaxTrackedCategories, trackedPerTop*p.Categories.TopN)
	}
	if p.Consent.Default == "" {
		p.Consent.Default = ConsentNone
	}
	if p.Consent.GrantTypes == nil {
		p.Consent.GrantTypes = []string{"consent_granted"}
	}
	if p.Consent.WithdrawTypes == nil {
		p.Consent.WithdrawTypes = []string{"consent_withdrawn"}
	}
	if p.ValueClasses != nil && p.ValueClasses.ReviewDays == 0 {
		p.ValueClasses.ReviewDays = DefaultReviewDays
	}
	if p.Rates == nil {
		// Absent and empty are the same table; keeping one form makes the
		// digest survive a write-back (yaml.Marshal writes "rates: {}").
		p.Rates = map[string]float64{}
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// LoadPolicy reads and parses the policy file at path.
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	p, err := ParsePolicy(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// compiled is the validated, precomputed form of a Policy.
type compiled struct {
	version      string
	base         string
	conv         map[string]conversion
	recency      [numBoundaries]int64 // in whole days
	frequency    [numBoundaries]int64
	monetary     [numBoundaries]int64
	tiers        []string
	actions      []string                           // "" for none
	grid         [maxScore][maxScore][maxScore]int8 // [R-1][F-1][M-1] -> rule index
	prospect     string
	prospectAct  string
	inactivityMs int64
	newMs        int64
	atRiskMs     int64
	reactMs      int64
	complaintMs  int64
	lowSat       int32
	lowSatMs     int64
	complaints   []string
	resolutions  []string
	dedupWindow  int

	topN          int
	tracked       int
	consentGrant  bool // a channel without a consent event is contactable
	grantTypes    []string
	withdrawTypes []string

	model         *clv.Model    // nil without Models
	pAliveBelow   float64       // 0: rule off
	oneTimeDrop   bool          // the model lets one-time buyers drop out (MBG/NBD, Pareto/NBD)
	classes       *ValueClasses // nil: no classes
	minorPerMajor float64       // 10^exponent of the base currency
	unitMs        int64         // the model's time unit in milliseconds
	reviewMs      int64         // value class review interval (0: none)

	treatments     []treatment // by rule
	treatmentTiers []string    // the prospect tier, then the tiers
	treatmentTable []int16     // treatmentKey -> rule index, -1 for none
}

func (p *Policy) compiled() *compiled {
	if p.c == nil {
		panic("score: policy used before Validate succeeded")
	}
	return p.c
}

// Validate checks every field of p and, when all are valid, compiles p for
// the scoring methods. The error joins one *PolicyError per problem found.
func (p *Policy) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &PolicyError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	c := &compiled{version: p.Version, base: p.BaseCurrency}

	if strings.TrimSpace(p.Version) == "" {
		bad("policy_version", "required")
	}

	// Money.
	baseExp, baseOK := 0, false
	if p.BaseCurrency == "" {
		bad("base_currency", "required")
	} else if !isCurrencyCode(p.BaseCurrency) {
		bad("base_currency", "%q is not an ISO 4217 code (3 upper-case letters)", p.BaseCurrency)
	} else if baseExp, baseOK = MinorUnits(p.BaseCurrency); !baseOK {
		bad("base_currency", "%q has no known ISO 4217 minor unit", p.BaseCurrency)
	}
	c.conv = make(map[string]conversion, len(p.Rates)+1)
	for _, cur := range sortedKeys(p.Rates) {
		rate := p.Rates[cur]
		path := "rates." + cur
		exp, ok := MinorUnits(cur)
		switch {
		case !isCurrencyCode(cur):
			bad(path, "%q is not an ISO 4217 code (3 upper-case letters)", cur)
		case !ok:
			bad(path, "%q has no known ISO 4217 minor unit", cur)
		case math.IsNaN(rate) || math.IsInf(rate, 0) || rate <= 0:
			bad(path, "must be positive")
		case cur == p.BaseCurrency && rate != 1:
			bad(path, "the base currency's rate must be 1, got %v", rate)
		case baseOK:
			conv, err := newConversion(rate, exp, baseExp)
			if err != nil {
				bad(path, "%v", err)
			} else {
				c.conv[cur] = conv
			}
		}
	}
	if baseOK {
		c.conv[p.BaseCurrency] = identity
	}

	// Scores.
	checkBounds := func(path string, b []int64, limit int64, dst *[numBoundaries]int64) {
		if len(b) != numBoundaries {
			bad(path, "want exactly %d boundaries, got %d", numBoundaries, len(b))
			return
		}
		for i, v := range b {
			if v < 0 || v > limit {
				bad(fmt.Sprintf("%s[%d]", path, i), "%d out of range 0..%d", v, limit)
				return
			}
			if i > 0 && v <= b[i-1] {
				bad(path, "boundaries must be strictly increasing")
				return
			}
		}
		copy(dst[:], b)
	}
	checkBounds("scores.recency_days", p.Scores.RecencyDays, maxDays, &c.recency)
	checkBounds("scores.frequency", p.Scores.Frequency, math.MaxInt64, &c.frequency)
	checkBounds("scores.monetary_minor", p.Scores.MonetaryMinor, math.MaxInt64, &c.monetary)

	// Tiers.
	c.prospect = p.ProspectTier
	if p.ProspectTier == "" {
		bad("prospect_tier", "required")
	} else if !isName(p.ProspectTier) {
		bad("prospect_tier", "%q: want 1 to %d characters among a-z, A-Z, 0-9, '_' and '-'", p.ProspectTier, maxNameLen)
	}
	if p.ProspectAction != "" && !isAction(p.ProspectAction) {
		bad("prospect_action", "unknown action %q (want one of %s)", p.ProspectAction, strings.Join(actions[:], ", "))
	}
	c.prospectAct = p.ProspectAction
	tiersOK := true
	if len(p.Tiers) == 0 {
		bad("tiers", "required")
		tiersOK = false
	}
	if len(p.Tiers) > math.MaxInt8 {
		bad("tiers", "at most %d rules, got %d", math.MaxInt8, len(p.Tiers))
		tiersOK = false
	}
	seen := make(map[string]int, len(p.Tiers))
	for i, t := range p.Tiers {
		path := fmt.Sprintf("tiers[%d]", i)
		switch {
		case t.Name == "":
			bad(path+".name", "required")
		case !isName(t.Name):
			bad(path+".name", "%q: want 1 to %d characters among a-z, A-Z, 0-9, '_' and '-'", t.Name, maxNameLen)
		case t.Name == p.ProspectTier:
			bad(path+".name", "%q is the prospect_tier", t.Name)
		default:
			if j, dup := seen[t.Name]; dup {
				bad(path+".name", "%q already names tiers[%d]", t.Name, j)
			}
			seen[t.Name] = i
		}
		for _, f := range []struct {
			name string
			r    *Range
		}{{"r", t.R}, {"f", t.F}, {"m", t.M}, {"fm", t.FM}} {
			if f.r == nil {
				continue
			}
			switch {
			case f.r.Min < minScore || f.r.Min > maxScore:
				bad(path+"."+f.name, "min %d out of range %d..%d", f.r.Min, minScore, maxScore)
				tiersOK = false
			case f.r.Max < minScore || f.r.Max > maxScore:
				bad(path+"."+f.name, "max %d out of range %d..%d", f.r.Max, minScore, maxScore)
				tiersOK = false
			case f.r.Min > f.r.Max:
				bad(path+"."+f.name, "min %d greater than max %d", f.r.Min, f.r.Max)
				tiersOK = false
			}
		}
		if t.Action != "" && !isAction(t.Action) {
			bad(path+".action", "unknown action %q (want one of %s)", t.Action, strings.Join(actions[:], ", "))
		}
		c.tiers = append(c.tiers, t.Name)
		c.actions = append(c.actions, t.Action)
	}
	if tiersOK {
		firsts := make([]int, len(p.Tiers))
		var uncovered []string
		var cellSeen [maxScore][maxScore]bool
		for r := minScore; r <= maxScore; r++ {
			for f := minScore; f <= maxScore; f++ {
				for m := minScore; m <= maxScore; m++ {
					fm := combine(f, m)
					idx := -1
					for i := range p.Tiers {
						if p.Tiers[i].matches(r, f, m, fm) {
							idx = i
							break
						}
					}
					if idx < 0 {
						if !cellSeen[r-1][fm-1] {
							cellSeen[r-1][fm-1] = true
							uncovered = append(uncovered, fmt.Sprintf("R=%d FM=%d (F=%d M=%d)", r, fm, f, m))
						}
						continue
					}
					firsts[idx]++
					c.grid[r-1][f-1][m-1] = int8(idx)
				}
			}
		}
		if len(uncovered) > 0 {
			more := ""
			if len(uncovered) > 5 {
				more = fmt.Sprintf(" and %d more", len(uncovered)-5)
				uncovered = uncovered[:5]
			}
			bad("tiers", "no rule matches %s%s", strings.Join(uncovered, ", "), more)
		}
		for i, n := range firsts {
			if n == 0 {
				bad(fmt.Sprintf("tiers[%d]", i), "rule %q is unreachable: every score combination it matches is taken by an earlier rule, or it matches none", p.Tiers[i].Name)
			}
		}
	}

	// Windows.
	day := func(path string, v int64) int64 {
		if v <= 0 || v > maxDays {
			bad(path, "%d out of range 1..%d days", v, maxDays)
		}
		return v * DayMs
	}
	c.inactivityMs = day("churn.inactivity_days", p.Churn.InactivityDays)
	c.newMs = day("lifecycle.new_days", p.Lifecycle.NewDays)
	c.atRiskMs = day("lifecycle.at_risk_days", p.Lifecycle.AtRiskDays)
	c.reactMs = day("lifecycle.reactivated_days", p.Lifecycle.ReactivatedDays)
	if p.Lifecycle.AtRiskDays > 0 && p.Churn.InactivityDays > 0 && p.Lifecycle.AtRiskDays >= p.Churn.InactivityDays {
		bad("lifecycle.at_risk_days", "%d must be less than churn.inactivity_days %d", p.Lifecycle.AtRiskDays, p.Churn.InactivityDays)
	}
	c.complaintMs = day("risk.complaint_days", p.Risk.ComplaintDays)
	c.lowSatMs = day("risk.risk_days", p.Risk.RiskDays)
	if p.Risk.LowSatisfaction < -1 || p.Risk.LowSatisfaction > maxSatisfaction {
		bad("risk.low_satisfaction", "%d out of range -1..%d", p.Risk.LowSatisfaction, maxSatisfaction)
	}
	c.lowSat = p.Risk.LowSatisfaction
	for i, t := range p.Risk.ComplaintTypes {
		if t == "" {
			bad(fmt.Sprintf("risk.complaint_types[%d]", i), "empty")
		}
	}
	c.complaints = append([]string(nil), p.Risk.ComplaintTypes...)
	for i, t := range p.Risk.ResolutionTypes {
		switch {
		case t == "":
			bad(fmt.Sprintf("risk.resolution_types[%d]", i), "empty")
		case slices.Contains(c.complaints, t):
			bad(fmt.Sprintf("risk.resolution_types[%d]", i), "%q is also a complaint type", t)
		}
	}
	c.resolutions = append([]string(nil), p.Risk.ResolutionTypes...)

	// Categories and consent.
	c.topN, c.tracked = p.Categories.TopN, p.Categories.Tracked
	if c.topN == 0 {
		c.topN = DefaultTopCategories
	}
	if c.tracked == 0 {
		c.tracked = min(MaxTrackedCategories, trackedPerTop*c.topN)
	}
	if c.topN < 1 || c.topN > MaxTrackedCategories {
		bad("categories.top_n", "%d out of range 1..%d", p.Categories.TopN, MaxTrackedCategories)
	} else if c.tracked < c.topN || c.tracked > MaxTrackedCategories {
		bad("categories.tracked", "%d out of range top_n..%d (%d..%d)", p.Categories.Tracked, MaxTrackedCategories, c.topN, MaxTrackedCategories)
	}
	switch p.Consent.Default {
	case "", ConsentNone:
	case ConsentGranted:
		c.consentGrant = true
	default:
		bad("consent.default", "%q: want %s or %s", p.Consent.Default, ConsentGranted, ConsentNone)
	}
	for i, t := range p.Consent.GrantTypes {
		if t == "" {
			bad(fmt.Sprintf("consent.grant_types[%d]", i), "empty")
		}
	}
	for i, t := range p.Consent.WithdrawTypes {
		switch {
		case t == "":
			bad(fmt.Sprintf("consent.withdraw_types[%d]", i), "empty")
		case slices.Contains(p.Consent.GrantTypes, t):
			bad(fmt.Sprintf("consent.withdraw_types[%d]", i), "%q is also a grant type", t)
		}
	}
	c.grantTypes = append([]string(nil), p.Consent.GrantTypes...)
	c.withdrawTypes = append([]string(nil), p.Consent.WithdrawTypes...)

	// Duplicates.
	if w := p.Dedup.WindowEvents; w < 0 || w > MaxDedupWindow {
		bad("dedup.window_events", "%d out of range 0..%d", w, MaxDedupWindow)
	}
	c.dedupWindow = p.Dedup.WindowEvents

	// Lifetime value.
	c.minorPerMajor = math.Pow10(baseExp)
	if p.Models != nil {
		m := *p.Models // a copy: Validate fills its tables
		if err := m.Validate(); err != nil {
			bad("models", "%v", strings.TrimPrefix(err.Error(), "model: "))
		} else {
			c.model = &m
			c.unitMs = m.Unit.Millis()
			c.oneTimeDrop = m.OneTimeBuyersDrop()
		}
	}
	if v := p.Churn.PAliveBelow; v != 0 {
		switch {
		case !(v > 0 && v < 1):
			bad("churn.p_alive_below", "%v out of range [0, 1)", v)
		case p.Models == nil:
			bad("churn.p_alive_below", "requires models (run valora calibrate)")
		}
		c.pAliveBelow = v
	}
	if vc := p.ValueClasses; vc != nil {
		if p.Models == nil {
			bad("value_classes", "requires models (run valora calibrate)")
		}
		for _, f := range []struct {
			name string
			v    float64
		}{{"high_yield_clv_minor", vc.HighYieldCLVMinor}, {"high_potential_clv_minor", vc.HighPotentialCLVMinor}, {"below_zero_clv_minor", vc.BelowZeroCLVMinor}} {
			if !(f.v >= 0) || math.IsInf(f.v, 1) {
				bad("value_classes."+f.name, "%v: want finite and >= 0", f.v)
			}
		}
		if vc.HighYieldMonetaryMinor < 0 {
			bad("value_classes.high_yield_monetary_minor", "%d: want >= 0", vc.HighYieldMonetaryMinor)
		}
		if vc.BelowZeroCLVMinor > vc.HighYieldCLVMinor || vc.BelowZeroCLVMinor > vc.HighPotentialCLVMinor {
			bad("value_classes.below_zero_clv_minor", "%v must be at most high_yield_clv_minor (%v) and high_potential_clv_minor (%v)",
				vc.BelowZeroCLVMinor, vc.HighYieldCLVMinor, vc.HighPotentialCLVMinor)
		}
		if vc.ReviewDays < 1 || vc.ReviewDays > 3650 {
			bad("value_classes.review_days", "%d out of range 1..3650", vc.ReviewDays)
		}
		c.reviewMs = vc.ReviewDays * DayMs
		cp := *vc
		c.classes = &cp
	}

	// Treatments.
	if tiersOK {
		tp := *p
		if tp.Relationships == nil {
			tp.Relationships = DefaultRelationships()
		}
		rels := checkRelationships(tp.Relationships, bad)
		if tp.Treatments == nil {
			tp.Treatments = DefaultTreatments(p)
			var missing []string
			for _, r := range tp.Treatments {
				if _, ok := rels[r.Relationship]; !ok && !slices.Contains(missing, r.Relationship) {
					missing = append(missing, r.Relationship)
				}
			}
			if len(missing) > 0 {
				bad("relationships", "lacks %s, which the default treatments use: list them, or write treatments of your own", strings.Join(missing, ", "))
				tp.Treatments = nil
			}
		}
		if tp.Treatments != nil {
			compileTreatments(&tp, c, rels, bad)
		}
	}

	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	p.c = c
	return nil
}

func (t *TierRule) matches(r, f, m, fm int) bool {
	return t.R.contains(r) && t.F.contains(f) && t.M.contains(m) && t.FM.contains(fm)
}

func isCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

func isName(s string) bool {
	if len(s) == 0 || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '_' || ch == '-') {
			return false
		}
	}
	return true
}

func isAction(s string) bool {
	for _, a := range actions {
		if a == s {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
