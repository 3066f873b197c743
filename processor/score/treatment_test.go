package score

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
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
