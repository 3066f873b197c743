package score

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"valora/schemas"
)

// Scenario files in testdata/ hold customer histories in the style of
// Pebble's datadriven tests:
//
//	# comment
//	command arg=value ...
//	----
//	expected output (no blank lines)
//	<blank line>
//
// Run with -rewrite to regenerate the expected outputs after a deliberate
// change, then review the diff.
var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of scenario files")

// scenarioEpoch is day 0 of scenario times: 2024-01-01T00:00:00Z.
const scenarioEpoch int64 = 1704067200000

type scenarioCase struct {
	pos     string // file:line of the command
	raw     string // the command line as written
	cmd     string
	args    map[string]string
	flags   map[string]bool
	want    string
	comment []string // lines before the command
}

// parseScenario reads a scenario file.
func parseScenario(t *testing.T, path string) []*scenarioCase {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cases []*scenarioCase
	var pending []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := 0
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		line++
		return sc.Text(), true
	}
	for {
		s, ok := next()
		if !ok {
			break
		}
		if strings.TrimSpace(s) == "" || strings.HasPrefix(s, "#") {
			pending = append(pending, s)
			continue
		}
		c := &scenarioCase{
			pos:     fmt.Sprintf("%s:%d", path, line),
			args:    map[string]string{},
			flags:   map[string]bool{},
			comment: pending,
		}
		pending = nil
		c.raw = s
		fields := strings.Fields(s)
		c.cmd = fields[0]
		for _, f := range fields[1:] {
			if k, v, ok := strings.Cut(f, "="); ok {
				c.args[k] = v
			} else {
				c.flags[f] = true
			}
		}
		sep, ok := next()
		if !ok || sep != "----" {
			t.Fatalf("%s: want ---- after the command", c.pos)
		}
		var out []string
		for {
			s, ok := next()
			if !ok || s == "" {
				break
			}
			out = append(out, s)
		}
		c.want = strings.Join(out, "\n")
		cases = append(cases, c)
	}
	if len(pending) > 0 && len(cases) > 0 {
		// Trailing comments are kept on rewrite.
		cases = append(cases, &scenarioCase{comment: pending})
	}
	return cases
}

func writeScenario(t *testing.T, path string, cases []*scenarioCase, gots []string) {
	t.Helper()
	var buf bytes.Buffer
	for i, c := range cases {
		for _, s := range c.comment {
			buf.WriteString(s + "\n")
		}
		if c.cmd == "" {
			continue
		}
		buf.WriteString(c.raw + "\n----\n")
		if gots[i] != "" {
			buf.WriteString(gots[i] + "\n")
		}
		buf.WriteString("\n")
	}
	out := bytes.TrimRight(buf.Bytes(), "\n")
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenario files")
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			cases := parseScenario(t, path)
			r := &scenarioRunner{p: DefaultPolicy()}
			r.reset("c1")
			gots := make([]string, len(cases))
			for i, c := range cases {
				if c.cmd == "" {
					continue
				}
				got := r.run(t, c)
				gots[i] = got
				if !*rewrite && got != c.want {
					t.Errorf("%s: %s\ngot:\n%s\nwant:\n%s", c.pos, c.raw, got, c.want)
				}
			}
			if *rewrite {
				writeScenario(t, path, cases, gots)
			}
		})
	}
}

type scenarioRunner struct {
	p *Policy
	c *schemas.Customer
	n int // event counter, for event ids
}

func (r *scenarioRunner) reset(id string) {
	r.c = &schemas.Customer{CustomerID: id}
}

// parseAt reads a scenario time: days since scenarioEpoch (a decimal
// number, fractions allowed) optionally followed by +Nms, -Nms, +Nh or -Nh.
func parseAt(s string) (int64, error) {
	i := strings.IndexAny(s[1:], "+-")
	adj := int64(0)
	if i >= 0 {
		i++
		tail := s[i:]
		s = s[:i]
		unit := int64(1)
		switch {
		case strings.HasSuffix(tail, "ms"):
			tail = strings.TrimSuffix(tail, "ms")
		case strings.HasSuffix(tail, "h"):
			tail, unit = strings.TrimSuffix(tail, "h"), 3600_000
		default:
			return 0, fmt.Errorf("bad time adjustment %q", tail)
		}
		n, err := strconv.ParseInt(tail, 10, 64)
		if err != nil {
			return 0, err
		}
		adj = n * unit
	}
	d, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	return scenarioEpoch + int64(d*float64(DayMs)) + adj, nil
}

// fmtAt prints a time as a scenario day, with any remainder in ms.
func fmtAt(t int64) string {
	if t == 0 {
		return "never"
	}
	rel := t - scenarioEpoch
	d, rem := rel/DayMs, rel%DayMs
	if rem < 0 {
		d, rem = d-1, rem+DayMs
	}
	if rem == 0 {
		return fmt.Sprintf("day %d", d)
	}
	return fmt.Sprintf("day %d +%dms", d, rem)
}

func (r *scenarioRunner) run(t *testing.T, c *scenarioCase) string {
	t.Helper()
	at := func() int64 {
		v, ok := c.args["at"]
		if !ok {
			t.Fatalf("%s: missing at=", c.pos)
		}
		ts, err := parseAt(v)
		if err != nil {
			t.Fatalf("%s: at=%s: %v", c.pos, v, err)
		}
		return ts
	}
	arg := func(k, def string) string {
		if v, ok := c.args[k]; ok {
			return v
		}
		return def
	}
	num := func(k string, def int64) int64 {
		v, ok := c.args[k]
		if !ok {
			return def
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("%s: %s=%s: %v", c.pos, k, v, err)
		}
		return n
	}
	switch c.cmd {
	case "new":
		r.reset(arg("id", "c1"))
		return "ok"
	case "purchase", "refund":
		r.n++
		kind := schemas.KindPurchase
		if c.cmd == "refund" {
			kind = schemas.KindRefund
		}
		e := &schemas.Purchase{
			EventID:     fmt.Sprintf("e%d", r.n),
			CustomerID:  r.c.CustomerID,
			OccurredAt:  at(),
			Kind:        kind,
			AmountMinor: num("amount", 0),
			Currency:    arg("currency", "USD"),
			Channel:     schemas.Channel(arg("channel", "WEB")),
			Items:       1,
		}
		before := *r.c
		o, err := r.p.ApplyPurchase(r.c, e)
		if err != nil {
			if r.c.Version != before.Version || r.c.MonetaryMinor != before.MonetaryMinor || r.c.LastActivity != before.LastActivity {
				t.Errorf("%s: customer changed by a rejected event", c.pos)
			}
			return "error: " + err.Error()
		}
		return r.outcome(o)
	case "interaction":
		r.n++
		e := &schemas.Interaction{
			EventID:    fmt.Sprintf("e%d", r.n),
			CustomerID: r.c.CustomerID,
			OccurredAt: at(),
			Channel:    schemas.Channel(arg("channel", "EMAIL")),
			Type:       arg("type", "visit"),
		}
		if v, ok := c.args["sat"]; ok {
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil {
				t.Fatalf("%s: sat=%s: %v", c.pos, v, err)
			}
			s := int32(n)
			e.Satisfaction = &s
		}
		before := *r.c
		o, err := r.p.ApplyInteraction(r.c, e)
		if err != nil {
			if r.c.Version != before.Version || r.c.LastActivity != before.LastActivity {
				t.Errorf("%s: customer changed by a rejected event", c.pos)
			}
			return "error: " + err.Error()
		}
		return r.outcome(o)
	case "eval":
		return r.outcome(r.p.Evaluate(r.c, at()))
	case "deadline":
		d := r.p.NextDeadline(r.c)
		if d == 0 {
			return "none"
		}
		return fmtAt(d)
	case "change":
		o := Outcome{HadPrevious: c.flags["had-previous"], Previous: Derived{Tier: arg("previous", "")}}
		tc := r.p.TierChange(r.c, o, schemas.Cause(arg("cause", "PURCHASE")), at())
		return fmtTierChange(tc)
	case "show":
		return fmtCustomer(r.c)
	}
	t.Fatalf("%s: unknown command %q", c.pos, c.cmd)
	return ""
}

func (r *scenarioRunner) outcome(o Outcome) string {
	c := r.c
	state := func(d Derived) string {
		s := d.Tier + "/" + d.LifecycleStage
		if d.ChurnRisk {
			s += " churn"
		}
		return s
	}
	cur := state(derivedOf(c))
	var head string
	switch {
	case !o.HadPrevious:
		head = "first: " + cur
	case o.Changed:
		head = "changed: " + state(o.Previous) + " -> " + cur
	default:
		head = "same: " + cur
	}
	return fmt.Sprintf("v=%d %s | R=%d F=%d M=%d", c.Version, head, c.RScore, c.FScore, c.MScore)
}

func fmtCustomer(c *schemas.Customer) string {
	vc := "nil"
	if c.ValueClass != nil {
		vc = *c.ValueClass
	}
	return strings.Join([]string{
		fmt.Sprintf("id=%s version=%d policy=%s evaluated=%s", c.CustomerID, c.Version, c.PolicyVersion, fmtAt(c.EvaluatedAt)),
		fmt.Sprintf("first_seen=%s last_activity=%s", fmtAt(c.FirstSeen), fmtAt(c.LastActivity)),
		fmt.Sprintf("first_purchase=%s last_purchase=%s", fmtAt(c.FirstPurchase), fmtAt(c.LastPurchase)),
		fmt.Sprintf("purchases=%d refunds=%d repeat_days=%d monetary=%d", c.Purchases, c.Refunds, c.RepeatDays, c.MonetaryMinor),
		fmt.Sprintf("interactions_by_channel=%v", c.InteractionsByChannel),
		fmt.Sprintf("purchases_by_channel=%v", c.PurchasesByChannel),
		fmt.Sprintf("risk_until=%s reactivated_at=%s", fmtAt(c.RiskUntil), fmtAt(c.ReactivatedAt)),
		fmt.Sprintf("tier=%s stage=%s churn=%t value_class=%s R=%d F=%d M=%d", c.Tier, c.LifecycleStage, c.ChurnRisk, vc, c.RScore, c.FScore, c.MScore),
	}, "\n")
}

func fmtTierChange(tc schemas.TierChange) string {
	s := func(p *string) string {
		if p == nil {
			return "nil"
		}
		return *p
	}
	f := func(p *float64) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprint(*p)
	}
	rd := "nil"
	if tc.RecencyDays != nil {
		rd = fmt.Sprint(*tc.RecencyDays)
	}
	return strings.Join([]string{
		fmt.Sprintf("event_id=%s customer_id=%s version=%d occurred_at=%s cause=%s", tc.EventID, tc.CustomerID, tc.Version, fmtAt(tc.OccurredAt), tc.Cause),
		fmt.Sprintf("previous_tier=%s tier=%s churn_risk=%t lifecycle_stage=%s value_class=%s action=%s", s(tc.PreviousTier), tc.Tier, tc.ChurnRisk, tc.LifecycleStage, s(tc.ValueClass), s(tc.Action)),
		fmt.Sprintf("recency_days=%s frequency=%d monetary=%d currency=%s r=%d f=%d m=%d", rd, tc.Frequency, tc.Monetary, tc.Currency, tc.RScore, tc.FScore, tc.MScore),
		fmt.Sprintf("p_alive=%s expected_purchases=%s clv=%s policy_version=%s", f(tc.PAlive), f(tc.ExpectedPurchases), f(tc.CLV), tc.PolicyVersion),
	}, "\n")
}
