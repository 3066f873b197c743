package score

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// The relationship types of the default policy: the kinds of relationship
// a company offers a customer, from the most personal to the least.
const (
	RelationshipDedicated   = "dedicated"    // a named account manager
	RelationshipPersonal    = "personal"     // a person answers, not always the same one
	RelationshipCoCreation  = "co_creation"  // the customer helps design products
	RelationshipCommunity   = "community"    // customers help one another
	RelationshipSelfService = "self_service" // the means to help oneself
	RelationshipAutomated   = "automated"    // self-service that knows the customer
)

// RiskNone is how a treatment rule names the risk reason of a customer who
// has none (RiskReason ""; null in outputs).
const RiskNone = "none"

var riskReasons = [...]string{RiskNone, RiskComplaint, RiskLowSatisfaction, RiskInactivity, RiskPAlive}

// ClassNone is the value_class a treatment rule writes for a customer the
// value classes leave unclassified (or a policy without value classes).
const ClassNone = "none"

var (
	classes = [...]string{ClassNone, ClassHighYield, ClassHighPotential, ClassBelowZero}
	stages  = [...]string{StageProspect, StageNew, StageActive, StageAtRisk, StageChurned, StageReactivated}
)

// Relationship is a kind of relationship offered to a customer, and what it
// costs per customer per month, in minor units of the base currency.
type Relationship struct {
	// Name is 1 to 64 characters among a-z, A-Z, 0-9, '_' and '-', unique.
	Name string `yaml:"name" json:"name"`
	// MonthlyCostMinor is >= 0.
	MonthlyCostMinor int64 `yaml:"monthly_cost_minor" json:"monthly_cost_minor"`
}

// Match is the values a treatment rule accepts for one field: nil (the field
// left out, or written `any`) accepts every value.
type Match []string

// UnmarshalYAML reads `any`, a single value, or a non-empty list.
func (m *Match) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value == "any" {
			*m = nil
			return nil
		}
		*m = Match{n.Value}
		return nil
	case yaml.SequenceNode:
		var v []string
		if err := n.Decode(&v); err != nil {
			return err
		}
		if len(v) == 0 {
			return fmt.Errorf("line %d: an empty list matches nothing: leave the field out (or write any) to match every value", n.Line)
		}
		*m = v
		return nil
	}
	return fmt.Errorf("line %d: want any, a value or a list of values", n.Line)
}

func (m Match) accepts(v string) bool { return m == nil || slices.Contains(m, v) }

// TreatmentRule is one entry of the treatment table: the customers it
// matches (every listed field must accept the customer's value; a field left
// out accepts all), and what they get.
type TreatmentRule struct {
	// Tier lists tier names (the prospect tier included).
	Tier Match `yaml:"tier,omitempty" json:"tier,omitempty"`
	// ValueClass lists value classes, or none for a customer without one.
	ValueClass Match `yaml:"value_class,omitempty" json:"value_class,omitempty"`
	// Stage lists lifecycle stages.
	Stage Match `yaml:"stage,omitempty" json:"stage,omitempty"`
	// ChurnRisk lists true, false or both.
	ChurnRisk Match `yaml:"churn_risk,omitempty" json:"churn_risk,omitempty"`
	// RiskReason lists risk reasons (none, complaint, low_satisfaction,
	// inactivity, p_alive).
	RiskReason Match `yaml:"risk_reason,omitempty" json:"risk_reason,omitempty"`

	// Treatment names what the customers get: a free name, 1 to 64
	// characters among a-z, A-Z, 0-9, '_' and '-'. Rules may share one.
	Treatment string `yaml:"treatment" json:"treatment"`
	// Action is one of Actions(), or empty for the customer's tier action.
	Action string `yaml:"action,omitempty" json:"action,omitempty"`
	// Relationship names one of the policy's relationships.
	Relationship string `yaml:"relationship" json:"relationship"`
}

// DefaultRelationships are the relationships of a policy that lists none.
// The costs are examples in minor units of the base currency per customer
// per month, to be replaced by what each kind costs the business.
func DefaultRelationships() []Relationship {
	return []Relationship{
		{Name: RelationshipDedicated, MonthlyCostMinor: 15000},
		{Name: RelationshipPersonal, MonthlyCostMinor: 2000},
		{Name: RelationshipCoCreation, MonthlyCostMinor: 1000},
		{Name: RelationshipCommunity, MonthlyCostMinor: 50},
		{Name: RelationshipSelfService, MonthlyCostMinor: 100},
		{Name: RelationshipAutomated, MonthlyCostMinor: 20},
	}
}

// DefaultTreatments returns the treatment table of a policy that has none,
// for p's tiers: with value classes, one by future value (keep and serve
// the high-yield, invest in the high-potential, raise the below-zero with an
// incentive while they are at risk and let them go once churned); without,
// one by the tiers' actions. Prospects get an automated acquisition either
// way, and a customer no other rule takes gets self-service with the tier's
// action. It needs only p's tiers, prospect tier and value classes, and
// uses the default relationships' names.
func DefaultTreatments(p *Policy) []TreatmentRule {
	prospect := TreatmentRule{Tier: Match{p.ProspectTier}, Treatment: "acquire", Relationship: RelationshipAutomated}
	rest := TreatmentRule{Treatment: "standard", Relationship: RelationshipSelfService}
	if p.ValueClasses != nil {
		return []TreatmentRule{
			prospect,
			{ValueClass: Match{ClassHighYield}, Stage: Match{StageChurned}, Treatment: "vip_win_back", Action: ActionWinBack, Relationship: RelationshipPersonal},
			{ValueClass: Match{ClassHighYield}, Treatment: "vip_care", Action: ActionRetain, Relationship: RelationshipDedicated},
			{ValueClass: Match{ClassHighPotential}, Stage: Match{StageChurned}, Treatment: "win_back", Action: ActionWinBack, Relationship: RelationshipAutomated},
			{ValueClass: Match{ClassHighPotential}, Treatment: "develop", Action: ActionGrow, Relationship: RelationshipPersonal},
			{ValueClass: Match{ClassBelowZero}, Stage: Match{StageAtRisk}, Treatment: "incentive", Action: ActionReactivate, Relationship: RelationshipAutomated},
			{ValueClass: Match{ClassBelowZero}, Stage: Match{StageChurned}, Treatment: "let_go", Action: ActionLetGo, Relationship: RelationshipAutomated},
			{ValueClass: Match{ClassBelowZero}, Treatment: "low_cost", Relationship: RelationshipAutomated},
			rest,
		}
	}
	// Without value classes the tiers' actions say what a segment is
	// worth: one rule per action, in the order of Actions().
	rel := map[string]string{
		ActionRetain:     RelationshipPersonal,
		ActionWinBack:    RelationshipPersonal,
		ActionGrow:       RelationshipSelfService,
		ActionNurture:    RelationshipAutomated,
		ActionReactivate: RelationshipAutomated,
		ActionLetGo:      RelationshipAutomated,
	}
	out := []TreatmentRule{prospect}
	for _, a := range actions {
		var tiers Match
		for _, t := range p.Tiers {
			if t.Action == a {
				tiers = append(tiers, t.Name)
			}
		}
		if len(tiers) > 0 && rel[a] != "" {
			out = append(out, TreatmentRule{Tier: tiers, Treatment: a, Relationship: rel[a]})
		}
	}
	for _, t := range p.Tiers {
		if rel[t.Action] == "" { // a tier without an action
			return append(out, rest)
		}
	}
	return out
}

// treatment is a compiled treatment rule's outcome.
type treatment struct {
	name, action, relationship string // action "" for the tier's
	costMinor                  int64  // per month
}

// treatmentKey indexes the compiled table: the dimensions of a customer a
// rule can match, each as an index into its list of values.
type treatmentKey struct{ tier, class, stage, churn, risk int }

// checkRelationships checks rels and returns their costs by name.
func checkRelationships(rels []Relationship, bad func(path, format string, args ...any)) map[string]int64 {
	costs := make(map[string]int64, len(rels))
	for i, r := range rels {
		path := fmt.Sprintf("relationships[%d]", i)
		switch _, dup := costs[r.Name]; {
		case r.Name == "":
			bad(path+".name", "required")
		case !isName(r.Name):
			bad(path+".name", "%q: want 1 to %d characters among a-z, A-Z, 0-9, '_' and '-'", r.Name, maxNameLen)
		case dup:
			bad(path+".name", "%q is listed twice", r.Name)
		}
		if r.MonthlyCostMinor < 0 {
			bad(path+".monthly_cost_minor", "%d: want >= 0", r.MonthlyCostMinor)
		}
		costs[r.Name] = r.MonthlyCostMinor
	}
	if len(rels) == 0 {
		bad("relationships", "required")
	}
	return costs
}

// compileTreatments checks p.Treatments against p's tiers, value classes
// and relationships (their costs by name) and fills c's treatment table. Every combination a
// customer can have (see reachable) must be matched by a rule, and every
// rule must be the first to match at least one of them.
func compileTreatments(p *Policy, c *compiled, rels map[string]int64, bad func(path, format string, args ...any)) {
	tiers := append([]string{p.ProspectTier}, c.tiers...)
	ok := true
	for i, r := range p.Treatments {
		path := fmt.Sprintf("treatments[%d]", i)
		check := func(field string, m Match, valid []string) {
			for _, v := range m {
				if !slices.Contains(valid, v) {
					bad(path+"."+field, "unknown value %q (want one of %s)", v, strings.Join(valid, ", "))
					ok = false
				}
			}
		}
		check("tier", r.Tier, tiers)
		check("value_class", r.ValueClass, classes[:])
		check("stage", r.Stage, stages[:])
		check("churn_risk", r.ChurnRisk, []string{"true", "false"})
		check("risk_reason", r.RiskReason, riskReasons[:])
		switch {
		case r.Treatment == "":
			bad(path+".treatment", "required")
		case !isName(r.Treatment):
			bad(path+".treatment", "%q: want 1 to %d characters among a-z, A-Z, 0-9, '_' and '-'", r.Treatment, maxNameLen)
		}
		if r.Action != "" && !isAction(r.Action) {
			bad(path+".action", "unknown action %q (want one of %s)", r.Action, strings.Join(actions[:], ", "))
		}
		cost, known := rels[r.Relationship]
		switch {
		case r.Relationship == "":
			bad(path+".relationship", "required")
		case !known && len(rels) > 0:
			bad(path+".relationship", "%q is not among the policy's relationships", r.Relationship)
		}
		c.treatments = append(c.treatments, treatment{name: r.Treatment, action: r.Action, relationship: r.Relationship, costMinor: cost})
	}
	if !ok {
		return
	}
	c.treatmentTiers = tiers
	c.treatmentTable = make([]int16, len(tiers)*len(classes)*len(stages)*2*len(riskReasons))
	for tier := range tiers {
		for class := range classes {
			for stage := range stages {
				for churn := range 2 {
					for risk := range riskReasons {
						k := treatmentKey{tier, class, stage, churn, risk}
						c.treatmentTable[c.treatmentIndex(k)] = int16(firstTreatment(p.Treatments, tiers, k))
					}
				}
			}
		}
	}
	firsts := make([]int, len(p.Treatments))
	var uncovered []string
	reachable(p, len(tiers), func(k treatmentKey) {
		idx := c.treatmentTable[c.treatmentIndex(k)]
		if idx < 0 {
			uncovered = append(uncovered, fmt.Sprintf("tier=%s value_class=%s stage=%s churn_risk=%t risk_reason=%s",
				tiers[k.tier], classes[k.class], stages[k.stage], k.churn == 1, riskReasons[k.risk]))
			return
		}
		firsts[idx]++
	})
	if len(uncovered) > 0 {
		more := ""
		if len(uncovered) > 3 {
			more = fmt.Sprintf(" and %d more", len(uncovered)-3)
			uncovered = uncovered[:3]
		}
		bad("treatments", "no rule matches %s%s", strings.Join(uncovered, "; "), more)
	}
	for i, n := range firsts {
		if n == 0 {
			bad(fmt.Sprintf("treatments[%d]", i), "rule %q is unreachable: every customer it matches is taken by an earlier rule, or it matches none a customer can be", p.Treatments[i].Treatment)
		}
	}
}

// firstTreatment returns the index of the first rule matching k, or -1.
func firstTreatment(rules []TreatmentRule, tiers []string, k treatmentKey) int {
	for i := range rules {
		if rules[i].matches(tiers[k.tier], classes[k.class], stages[k.stage], k.churn == 1, riskReasons[k.risk]) {
			return i
		}
	}
	return -1
}

// reachable calls f with every combination of tier, value class, stage,
// churn flag and risk reason a customer can have under p (tier 0 is the
// prospect tier, nTiers counts it), as Evaluate derives them:
//
//   - a prospect is in stage prospect, without value class, churn flag or
//     risk reason;
//   - a buyer has one of the other tiers; its value class is none, or any
//     class when p has value classes; in stages new, active and
//     reactivated it has no risk reason, in stage at_risk a complaint, a
//     low score or inactivity, and in stage churned, the only one with the
//     churn flag, inactivity or (when p has churn.p_alive_below) p_alive.
func reachable(p *Policy, nTiers int, f func(treatmentKey)) {
	nClasses := 1
	if p.ValueClasses != nil {
		nClasses = len(classes)
	}
	f(treatmentKey{}) // a prospect
	reasons := map[string][]string{
		StageNew:         {RiskNone},
		StageActive:      {RiskNone},
		StageReactivated: {RiskNone},
		StageAtRisk:      {RiskComplaint, RiskLowSatisfaction, RiskInactivity},
		StageChurned:     {RiskInactivity},
	}
	if p.Churn.PAliveBelow > 0 {
		reasons[StageChurned] = append(reasons[StageChurned], RiskPAlive)
	}
	for tier := 1; tier < nTiers; tier++ {
		for class := range nClasses {
			for stage := 1; stage < len(stages); stage++ {
				churn := 0
				if stages[stage] == StageChurned {
					churn = 1
				}
				for _, r := range reasons[stages[stage]] {
					f(treatmentKey{tier: tier, class: class, stage: stage, churn: churn, risk: slices.Index(riskReasons[:], r)})
				}
			}
		}
	}
}

func (r *TreatmentRule) matches(tier, class, stage string, churn bool, risk string) bool {
	return r.Tier.accepts(tier) && r.ValueClass.accepts(class) && r.Stage.accepts(stage) &&
		r.ChurnRisk.accepts(fmt.Sprint(churn)) && r.RiskReason.accepts(risk)
}

func (c *compiled) treatmentIndex(k treatmentKey) int {
	return (((k.tier*len(classes)+k.class)*len(stages)+k.stage)*2+k.churn)*len(riskReasons) + k.risk
}

// treatmentOf returns the index of the rule that treats a customer with
// these derived fields (risk "" for none); -1 when a field holds a value
// the policy does not know (a tier of another policy).
func (c *compiled) treatmentOf(tier string, class *string, stage string, churn bool, risk string) int {
	if risk == "" {
		risk = RiskNone
	}
	k := treatmentKey{tier: slices.Index(c.treatmentTiers, tier), stage: slices.Index(stages[:], stage), risk: slices.Index(riskReasons[:], risk)}
	if class != nil {
		k.class = slices.Index(classes[:], *class)
	}
	if churn {
		k.churn = 1
	}
	if k.tier < 0 || k.class < 0 || k.stage < 0 || k.risk < 0 {
		return -1
	}
	return int(c.treatmentTable[c.treatmentIndex(k)])
}
