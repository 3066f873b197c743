package score

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"valora/schemas"
)

// modelsYAML gives a policy models, P(alive) churn and value classes.
const modelsYAML = `
models:
  time_unit: week
  bgnbd: {r: 0.243, alpha: 4.414, a: 0.793, b: 2.426}
  gamma_gamma: {p: 6.25, q: 3.74, gamma: 15.44}
  horizon: 52
  discount_rate: 0.1
value_classes:
  high_yield_clv_minor: 20000
  high_yield_monetary_minor: 40000
  high_potential_clv_minor: 15000
  below_zero_clv_minor: 500
`

// TestTreatmentScenarios runs testdata/treatments/rules.txt, blocks of
//
//	command arg=value ...
//	input lines (policy only)
//	----
//	expected output
//
// where `policy [models]` parses the default policy (with modelsYAML, and
// p_alive_below 0.25, for models) followed by the input, printing "ok" or
// one validation error a line, and `treat tier= class= stage= risk=` prints
// the treatment the last valid policy gives such a customer (churned in
// stage churned). Run with -rewrite to regenerate the expected outputs.
func TestTreatmentScenarios(t *testing.T) {
	path := filepath.Join("testdata", "treatments", "rules.txt")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var p *Policy
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := 0
	for sc.Scan() {
		line++
		cmd := sc.Text()
		if strings.TrimSpace(cmd) == "" || strings.HasPrefix(cmd, "#") {
			out.WriteString(cmd + "\n")
			continue
		}
		out.WriteString(cmd + "\n")
		start := line
		var input, want []string
		for sc.Scan() {
			line++
			s := sc.Text()
			out.WriteString(s + "\n")
			if s == "----" {
				break
			}
			input = append(input, s)
		}
		for sc.Scan() {
			line++
			s := sc.Text()
			if s == "" {
				break
			}
			want = append(want, s)
		}
		got := runTreatmentCommand(t, cmd, strings.Join(input, "\n"), &p)
		out.WriteString(got + "\n\n")
		if !*rewrite && got != strings.Join(want, "\n") {
			t.Errorf("%s:%d: %s\n got:\n%s\nwant:\n%s", path, start, cmd, got, strings.Join(want, "\n"))
		}
	}
	if *rewrite {
		if err := os.WriteFile(path, append(bytes.TrimRight(out.Bytes(), "\n"), '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func runTreatmentCommand(t *testing.T, cmd, input string, p **Policy) string {
	fields := strings.Fields(cmd)
	args := map[string]string{}
	flags := map[string]bool{}
	for _, f := range fields[1:] {
		if k, v, ok := strings.Cut(f, "="); ok {
			args[k] = v
		} else {
			flags[f] = true
		}
	}
	switch fields[0] {
	case "policy":
		y := string(DefaultPolicyYAML())
		if flags["models"] {
			y = strings.Replace(y, "inactivity_days: 180", "inactivity_days: 180\n  p_alive_below: 0.25", 1) + modelsYAML
		}
		np, err := ParsePolicy([]byte(y + "\n" + input + "\n"))
		if err != nil {
			return err.Error()
		}
		*p = np
		return "ok"
	case "treat":
		if *p == nil {
			t.Fatalf("%s: no policy yet", cmd)
		}
		pc := (*p).compiled()
		var class *string
		if c := args["class"]; c != "" && c != ClassNone {
			class = &c
		}
		stage := args["stage"]
		i := pc.treatmentOf(args["tier"], class, stage, stage == StageChurned, args["risk"])
		if i < 0 {
			return "no treatment"
		}
		tr := pc.treatments[i]
		action := tr.action
		if action == "" {
			action = pc.action(args["tier"]) + " (the tier's)"
		}
		return fmt.Sprintf("%s action=%s relationship=%s cost=%d", tr.name, action, tr.relationship, tr.costMinor)
	}
	t.Fatalf("unknown command %q", cmd)
	return ""
}

// TestTreatmentChangePublishes checks that a change of treatment alone (a
// complaint: the same tier, stage and class) is a change of the customer,
// and that state written before treatments existed (no treatment) is not.
func TestTreatmentChangePublishes(t *testing.T) {
	p, err := ParsePolicy([]byte(string(DefaultPolicyYAML()) + `
treatments:
  - {tier: prospect, treatment: acquire, relationship: automated}
  - {risk_reason: complaint, treatment: service_recovery, relationship: personal}
  - {treatment: standard, relationship: self_service}
`))
	if err != nil {
		t.Fatal(err)
	}
	c := &schemas.Customer{CustomerID: "c1"}
	mustPurchase(t, p, c, purchase(t0, 25000))
	if c.Treatment != "standard" {
		t.Fatalf("treatment %q after a purchase, want standard", c.Treatment)
	}
	// A complaint on a customer who is at risk already by inactivity
	// changes nothing but the treatment.
	o := p.Evaluate(c, t0+100*DayMs)
	if c.LifecycleStage != StageAtRisk || !o.Changed {
		t.Fatalf("stage %s changed %v at day 100", c.LifecycleStage, o.Changed)
	}
	tier := c.Tier
	o, err = p.ApplyInteraction(c, interaction(t0+100*DayMs, "complaint"))
	if err != nil {
		t.Fatal(err)
	}
	if !o.Changed || c.Treatment != "service_recovery" || c.Tier != tier || c.LifecycleStage != StageAtRisk {
		t.Fatalf("after the complaint: changed %v, treatment %q, tier %s, stage %s", o.Changed, c.Treatment, c.Tier, c.LifecycleStage)
	}
	tc := p.TierChange(c, o, schemas.CauseInteraction, t0+100*DayMs)
	if tc.Treatment == nil || *tc.Treatment != "service_recovery" || *tc.Relationship != RelationshipPersonal || *tc.RelationshipCostMinor != 2000 {
		t.Fatalf("tier change treatment %v relationship %v cost %v", tc.Treatment, tc.Relationship, tc.RelationshipCostMinor)
	}
	// State from before treatments: the first evaluation fills the
	// treatment in without counting it as a change.
	c.Treatment = ""
	if o := p.Evaluate(c, t0+100*DayMs); o.Changed || c.Treatment != "service_recovery" {
		t.Fatalf("migrated state: changed %v, treatment %q", o.Changed, c.Treatment)
	}
}

// TestSegments totals two customers under a policy with models: the CLV is
// the models' at each customer's evaluation, the cost the relationship's
// monthly cost over the horizon (52 weeks), per tier and class and per
// treatment.
func TestSegments(t *testing.T) {
	y := strings.Replace(string(DefaultPolicyYAML()), "inactivity_days: 180", "inactivity_days: 180\n  p_alive_below: 0.25", 1) + modelsYAML
	p, err := ParsePolicy([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	seg := p.NewSegments()
	var want float64
	for i, amount := range []int64{90000, 1000} {
		c := &schemas.Customer{CustomerID: fmt.Sprint("c", i)}
		mustPurchase(t, p, c, purchase(t0, amount))
		mustPurchase(t, p, c, purchase(t0+10*DayMs, amount))
		o := p.Evaluate(c, t0+20*DayMs)
		tc := p.TierChange(c, o, schemas.CauseInactivity, c.EvaluatedAt)
		want += *tc.CLV
		seg.Add(c, nil)
	}
	rep := seg.Report()
	if months := 52 * 7 / (365.25 / 12); math.Abs(rep.HorizonMonths-months) > 1e-9 {
		t.Fatalf("horizon %v months, want %v", rep.HorizonMonths, months)
	}
	var clvSum, costSum float64
	customers := 0
	for _, r := range rep.ByTierClass {
		customers += r.Customers
		clvSum += *r.CLVMinor
		if math.Abs(*r.NetMinor-(*r.CLVMinor-r.CostMinor)) > 1e-6 {
			t.Errorf("%+v: net is not clv minus cost", r)
		}
	}
	for _, r := range rep.ByTreatment {
		costSum += r.CostMinor
		rel := p.compiled().treatments[slices.IndexFunc(p.compiled().treatments, func(x treatment) bool { return x.name == r.Treatment })]
		if want := float64(rel.costMinor*int64(r.Customers)) * rep.HorizonMonths; math.Abs(r.CostMinor-want) > 1e-6 {
			t.Errorf("treatment %s: cost %v, want %v", r.Treatment, r.CostMinor, want)
		}
	}
	if customers != 2 || math.Abs(clvSum-want) > 1e-6 || costSum <= 0 {
		t.Fatalf("customers %d, clv %v (want %v), cost %v: %+v", customers, clvSum, want, costSum, rep)
	}
}
