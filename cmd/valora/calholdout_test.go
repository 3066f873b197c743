package main

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"valora/processor/clv"
	"valora/processor/score"
	"valora/schemas"
)

// calIndCustomer is one CDNOW sample customer as this file derives it
// from the raw rows, apart from the code under test: the distinct purchase
// days, in order.
type calIndCustomer struct {
	days []time.Time
}

func calIndCustomers(t *testing.T) []calIndCustomer {
	t.Helper()
	byID := map[string][]time.Time{}
	for _, r := range calCDNOWRows(t) {
		at, err := time.Parse("20060102", r[1])
		if err != nil {
			t.Fatal(err)
		}
		byID[r[0]] = append(byID[r[0]], at)
	}
	out := make([]calIndCustomer, 0, len(byID))
	for _, days := range byID {
		slices.SortFunc(days, func(a, b time.Time) int { return a.Compare(b) })
		out = append(out, calIndCustomer{days: slices.CompactFunc(days, func(a, b time.Time) bool { return a.Equal(b) })})
	}
	return out
}

// calIndStats returns x, t_x and T in weeks at calEnd, and the repeat
// purchase days in (calEnd, holdoutEnd].
func (c calIndCustomer) stats(calEnd, holdoutEnd time.Time) (x int, tx, T float64, holdout int) {
	weeks := func(d time.Duration) float64 { return d.Hours() / 24 / 7 }
	for _, d := range c.days[1:] {
		switch {
		case !d.After(calEnd):
			x++
			tx = weeks(d.Sub(c.days[0]))
		case !d.After(holdoutEnd):
			holdout++
		}
	}
	return x, tx, weeks(calEnd.Sub(c.days[0])), holdout
}

// calInd2F1 sums the Gauss hypergeometric series term by term (|z| < 1).
func calInd2F1(a, b, c, z float64) float64 {
	term, sum := 1.0, 1.0
	for n := 0.0; n < 1e6; n++ {
		term *= (a + n) * (b + n) / ((c + n) * (n + 1)) * z
		sum += term
		if math.Abs(term) < 1e-17*math.Abs(sum) {
			break
		}
	}
	return sum
}

// calIndExpected is the published conditional expectation E[Y(t) | x,
// t_x, T] of BG/NBD (Fader, Hardie and Lee 2005, eq. 10), MBG/NBD
// (Batislam, Denizel and Filiztekin 2007) or Pareto/NBD (Schmittlein,
// Morrison and Colombo 1987; P(alive) as in Fader, Hardie and Lee 2005,
// "RFM and CLV"), 2F1 by its series.
func calIndExpected(p calJSONFit, model string, x int, tx, T, t float64) float64 {
	r, al, a, b, xf := p.R, p.Alpha, p.A, p.B, float64(x)
	if model == "paretonbd" {
		s, be := p.S, p.Beta
		var f func(t float64) float64
		if al >= be {
			f = func(t float64) float64 {
				return calInd2F1(r+s+xf, s+1, r+s+xf+1, (al-be)/(al+t)) / math.Pow(al+t, r+s+xf)
			}
		} else {
			f = func(t float64) float64 {
				return calInd2F1(r+s+xf, r+xf, r+s+xf+1, (be-al)/(be+t)) / math.Pow(be+t, r+s+xf)
			}
		}
		pAlive := 1 / (1 + s/(r+s+xf)*math.Pow(al+T, r+xf)*math.Pow(be+T, s)*(f(tx)-f(T)))
		return (r + xf) * (be + T) / ((al + T) * (s - 1)) * (1 - math.Pow((be+T)/(be+T+t), s-1)) * pAlive
	}
	mbg := model == "mbgnbd"
	z := t / (al + T + t)
	pow := math.Pow((al+T)/(al+T+t), r+xf)
	odds := math.Pow((al+T)/(al+tx), r+xf)
	if mbg {
		num := (a + b + xf) / (a - 1) * (1 - pow*calInd2F1(r+xf, b+xf+1, a+b+xf, z))
		return num / (1 + a/(b+xf)*odds)
	}
	num := (a + b + xf - 1) / (a - 1) * (1 - pow*calInd2F1(r+xf, b+xf, a+b+xf-1, z))
	if x == 0 {
		return num
	}
	return num / (1 + a/(b+xf-1)*odds)
}

// calIndUnconditional is E[X(t)] for a customer observed t after the
// first purchase: BG/NBD (FHL 2005, eq. 9), MBG/NBD or Pareto/NBD.
func calIndUnconditional(p calJSONFit, model string, t float64) float64 {
	r, al, a, b := p.R, p.Alpha, p.A, p.B
	if model == "paretonbd" {
		return r * p.Beta / (al * (p.S - 1)) * (1 - math.Pow(p.Beta/(p.Beta+t), p.S-1))
	}
	mbg := model == "mbgnbd"
	z := t / (al + t)
	pow := math.Pow(al/(al+t), r)
	if mbg {
		return b / (a - 1) * (1 - pow*calInd2F1(r, b+1, a+b, z))
	}
	return (a + b - 1) / (a - 1) * (1 - pow*calInd2F1(r, b, a+b-1, z))
}

// TestCalibrateHoldoutCDNOW validates the holdout report on the CDNOW
// sample (calibration to 1997-09-30, holdout to 1998-06-30, 39 weeks each)
// against this file's own derivation of the data and its own evaluation of
// the published formulas from the fitted parameters: the totals, the
// conditional expectation by calibration frequency, and the weekly
// cumulative tracking, for BG/NBD and MBG/NBD.
//
// The actual figures are those of the data's documentation: 1,882 repeat
// purchase days in the holdout, 2,457 in the calibration period.
func TestCalibrateHoldoutCDNOW(t *testing.T) {
	calEnd := time.Date(1997, 9, 30, 0, 0, 0, 0, time.UTC)
	holdEnd := time.Date(1998, 6, 30, 0, 0, 0, 0, time.UTC)
	rep := calRunJSON(t, "--csv", calCDNOWSample, "--calibration-end", "1997-09-30", "--holdout-end", "1998-06-30",
		"--time-unit", "week", "--model", "all", "--out", filepath.Join(t.TempDir(), "p.yaml"))
	calCheckCDNOWFit(t, rep, true)
	if rep.MBGNBD == nil || rep.ParetoNBD == nil || rep.Holdout == nil || rep.Tracking == nil {
		t.Fatalf("report lacks the MBG/NBD or Pareto/NBD fit, the holdout or the tracking")
	}
	fits := map[string]calJSONFit{"bgnbd": rep.BGNBD, "mbgnbd": *rep.MBGNBD, "paretonbd": *rep.ParetoNBD}
	// The policy carries the model of highest log-likelihood.
	want := "bgnbd"
	for name, f := range fits {
		if f.LogLikelihood > fits[want].LogLikelihood {
			want = name
		}
	}
	if rep.CountModel != want {
		t.Errorf("count_model %q, want %q", rep.CountModel, want)
	}
	// Pareto/NBD: the published estimates (Fader, Hardie and Lee 2005,
	// "RFM and CLV"): r 0.553, alpha 10.578, s 0.606, beta 11.669.
	if p := rep.ParetoNBD; math.Abs(p.R-0.553) > 0.0005 || math.Abs(p.Alpha-10.578) > 0.0005 ||
		math.Abs(p.S-0.606) > 0.0005 || math.Abs(p.Beta-11.669) > 0.0005 {
		t.Errorf("Pareto/NBD %+v, published 0.553, 10.578, 0.606, 11.669", p)
	}

	h := rep.Holdout
	const length = 39.0
	if h.ActualPurchases != 1882 || h.Length != length || h.End != "1998-06-30T00:00:00Z" {
		t.Errorf("holdout %d repeat purchases over %v to %s, want 1882 over 39 weeks to 1998-06-30", h.ActualPurchases, h.Length, h.End)
	}
	type bin struct {
		n        int
		actual   float64
		expected map[string]float64
	}
	bins := make([]bin, 8)
	for i := range bins {
		bins[i].expected = map[string]float64{}
	}
	totals := map[string]float64{}
	cs := calIndCustomers(t)
	var actualTotal int
	for _, c := range cs {
		x, tx, T, y := c.stats(calEnd, holdEnd)
		actualTotal += y
		b := &bins[min(x, 7)]
		b.n++
		b.actual += float64(y)
		for name, p := range fits {
			e := calIndExpected(p, name, x, tx, T, length)
			b.expected[name] += e
			totals[name] += e
		}
	}
	if actualTotal != 1882 || len(cs) != 2357 {
		t.Fatalf("independent derivation: %d customers, %d holdout repeat purchases", len(cs), actualTotal)
	}
	close := func(got, want float64) bool { return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want)) }
	for name, p := range fits {
		if p.Holdout == nil || !close(p.Holdout.ExpectedPurchases, totals[name]) {
			t.Errorf("%s: holdout expected %+v, independent %.9f", name, p.Holdout, totals[name])
		} else if !close(p.Holdout.Error, totals[name]-1882) {
			t.Errorf("%s: holdout error %v, want %v", name, p.Holdout.Error, totals[name]-1882)
		}
	}
	if !close(h.ExpectedPurchases, totals[rep.CountModel]) {
		t.Errorf("holdout expected_purchases %v, independent %v (%s)", h.ExpectedPurchases, totals[rep.CountModel], rep.CountModel)
	}
	if len(h.ByX) != 8 {
		t.Fatalf("%d frequency rows", len(h.ByX))
	}
	for i, row := range h.ByX {
		b := bins[i]
		label := strconv.Itoa(i)
		if i == 7 {
			label = "7+"
		}
		if row.X != label || row.Customers != b.n || !close(row.ActualMean, b.actual/float64(b.n)) {
			t.Errorf("row %s: %+v, independent %d customers, actual mean %v", label, row, b.n, b.actual/float64(b.n))
		}
		for name := range fits {
			if want := b.expected[name] / float64(b.n); !close(row.ExpectedMeanByModel[name], want) {
				t.Errorf("row %s %s: expected mean %v, independent %v", label, name, row.ExpectedMeanByModel[name], want)
			}
		}
		if row.ExpectedMean != row.ExpectedMeanByModel[rep.CountModel] {
			t.Errorf("row %s: expected_mean %v is not the policy model's %v", label, row.ExpectedMean, row.ExpectedMeanByModel[rep.CountModel])
		}
		t.Logf("x=%s: %d customers, actual %.4f, BG/NBD %.4f, MBG/NBD %.4f, Pareto/NBD %.4f", label, b.n, b.actual/float64(b.n),
			row.ExpectedMeanByModel["bgnbd"], row.ExpectedMeanByModel["mbgnbd"], row.ExpectedMeanByModel["paretonbd"])
	}

	// Weekly tracking: week k ends 1996-12-31 + 7k days, week 39 at the
	// calibration end, week 78 at the holdout end.
	tr := rep.Tracking
	start := time.Date(1996, 12, 31, 0, 0, 0, 0, time.UTC)
	if tr.CalibrationWeeks != 39 || len(tr.Weeks) != 78 || tr.Start != "1996-12-31T00:00:00Z" {
		t.Fatalf("tracking: start %s, %d calibration weeks, %d weeks; want 1996-12-31, 39, 78", tr.Start, tr.CalibrationWeeks, len(tr.Weeks))
	}
	for i, wk := range tr.Weeks {
		end := start.AddDate(0, 0, 7*(i+1))
		var actual int64
		exp := map[string]float64{}
		for _, c := range cs {
			for _, d := range c.days[1:] {
				if !d.After(end) {
					actual++
				}
			}
			if tt := end.Sub(c.days[0]).Hours() / 24 / 7; tt > 0 {
				for name, p := range fits {
					exp[name] += calIndUnconditional(p, name, tt)
				}
			}
		}
		if wk.Week != i+1 || wk.End != end.Format(time.RFC3339) || wk.Actual != actual {
			t.Errorf("week %d: %+v, independent end %s, actual %d", i+1, wk, end.Format(time.DateOnly), actual)
		}
		for name := range fits {
			if !close(wk.ExpectedByModel[name], exp[name]) {
				t.Errorf("week %d %s: expected %v, independent %v", i+1, name, wk.ExpectedByModel[name], exp[name])
			}
		}
	}
	if w := tr.Weeks; w[38].Actual != 2457 || w[77].Actual != 2457+1882 {
		t.Errorf("cumulative repeat purchases %d at week 39 and %d at week 78, want 2457 and 4339", w[38].Actual, w[77].Actual)
	}
	for _, k := range []int{38, 77} {
		t.Logf("week %d: actual %d, BG/NBD %.1f, MBG/NBD %.1f, Pareto/NBD %.1f", k+1, tr.Weeks[k].Actual,
			tr.Weeks[k].ExpectedByModel["bgnbd"], tr.Weeks[k].ExpectedByModel["mbgnbd"], tr.Weeks[k].ExpectedByModel["paretonbd"])
	}
	t.Logf("holdout: actual %d, BG/NBD %.2f, MBG/NBD %.2f, Pareto/NBD %.2f", h.ActualPurchases, totals["bgnbd"], totals["mbgnbd"], totals["paretonbd"])
}

// TestCalibrateHoldoutEnd checks that --holdout-end bounds the holdout:
// purchases after it are not counted, and the length is the span.
func TestCalibrateHoldoutEnd(t *testing.T) {
	calEnd := time.Date(1997, 9, 30, 0, 0, 0, 0, time.UTC)
	holdEnd := time.Date(1997, 12, 31, 0, 0, 0, 0, time.UTC)
	rep := calRunJSON(t, "--csv", calCDNOWSample, "--calibration-end", "1997-09-30", "--holdout-end", "1997-12-31",
		"--time-unit", "day", "--out", filepath.Join(t.TempDir(), "p.yaml"))
	var actual int
	var expected float64
	for _, c := range calIndCustomers(t) {
		x, tx, T, y := c.stats(calEnd, holdEnd)
		actual += y
		expected += calIndExpected(rep.BGNBD, "bgnbd", x, tx*7, T*7, 92)
	}
	h := rep.Holdout
	if h == nil || h.ActualPurchases != int64(actual) || h.Length != 92 || math.Abs(h.ExpectedPurchases-expected) > 1e-9*expected {
		t.Fatalf("holdout %+v, want %d actual, %.6f expected over 92 days", h, actual, expected)
	}
	if rep.CountModel != "bgnbd" || rep.MBGNBD != nil {
		t.Errorf("default model: count_model %q, mbgnbd fit %v", rep.CountModel, rep.MBGNBD)
	}
	if tr := rep.Tracking; tr == nil || tr.Weeks[len(tr.Weeks)-1].End != "1997-12-31T00:00:00Z" {
		t.Errorf("tracking does not end at the holdout end: %+v", tr)
	}
}

// TestCalibrateModelMBGNBD checks --model mbgnbd: the report's fit is the
// published MBG/NBD one for the CDNOW sample (r 0.525, alpha 6.183, a
// 0.891, b 1.614), and the written policy carries it, so that a one-time
// buyer idle for less than the inactivity window is churned by P(alive)
// under it and not under the BG/NBD policy.
func TestCalibrateModelMBGNBD(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "mbg.yaml")
	rep := calRunJSON(t, "--csv", calCDNOWSample, "--calibration-end", "1997-09-30", "--time-unit", "week",
		"--model", "mbgnbd", "--p-alive-below", "0.5", "--out", out)
	m := rep.MBGNBD
	if m == nil || rep.CountModel != "mbgnbd" || rep.BGNBD.R != 0 {
		t.Fatalf("count_model %q, mbgnbd %+v, bgnbd %+v", rep.CountModel, m, rep.BGNBD)
	}
	for i, v := range []float64{m.R, m.Alpha, m.A, m.B} {
		if want := []float64{0.525, 6.183, 0.891, 1.614}[i]; math.Abs(v-want) > 0.0005 {
			t.Errorf("parameter %d = %.5f, published %v", i, v, want)
		}
	}
	if !(m.PAlive.OneTimeBuyers < 1) || m.Holdout == nil {
		t.Errorf("one-time buyers' mean P(alive) %v, holdout %+v", m.PAlive.OneTimeBuyers, m.Holdout)
	}
	pol, err := score.LoadPolicy(out)
	if err != nil {
		t.Fatal(err)
	}
	if pol.Models.Count != clv.CountMBGNBD || pol.Models.MBGNBD == nil ||
		*pol.Models.MBGNBD != (clv.MBGNBD{R: m.R, Alpha: m.Alpha, A: m.A, B: m.B}) {
		t.Fatalf("policy models %+v", pol.Models)
	}
	bgOut := filepath.Join(dir, "bg.yaml")
	calRunJSON(t, "--csv", calCDNOWSample, "--calibration-end", "1997-09-30", "--time-unit", "week",
		"--p-alive-below", "0.5", "--out", bgOut)
	bgPol, err := score.LoadPolicy(bgOut)
	if err != nil {
		t.Fatal(err)
	}
	// Bought once on 1997-06-01, evaluated on 1997-09-30: 121 days idle.
	first := time.Date(1997, 6, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	at := time.Date(1997, 9, 30, 0, 0, 0, 0, time.UTC).UnixMilli()
	T := float64(at-first) / float64(7*score.DayMs)
	want := 1 / (1 + m.A/m.B*math.Pow((m.Alpha+T)/m.Alpha, m.R))
	for _, c := range []struct {
		pol   *score.Policy
		churn bool
	}{{pol, want < 0.5}, {bgPol, false}} {
		cust := &schemas.Customer{CustomerID: "once", FirstSeen: first, LastActivity: first, FirstPurchase: first,
			LastPurchase: first, Purchases: 1, MonetaryMinor: 2000}
		o := c.pol.Evaluate(cust, at)
		if cust.ChurnRisk != c.churn {
			t.Errorf("policy %s: churned %v, want %v (MBG/NBD P(alive) %.4f)", c.pol.Models.Count, cust.ChurnRisk, c.churn, want)
		}
		if c.pol == pol && (!o.Valued || math.Abs(o.Value.PAlive-want) > 1e-12) {
			t.Errorf("MBG/NBD P(alive) %v (valued %v), want %v", o.Value.PAlive, o.Valued, want)
		}
	}
	if !(want < 0.5) {
		t.Errorf("P(alive) %v: the case does not test the rule", want)
	}
}

// TestCalibrateHTMLReport checks --report: one well-formed, self-contained
// file (no script, no external resource) with the fits and their standard
// errors, the weekly tracking and conditional-expectation charts with a
// line per series and the calibration boundary, and the P(alive) matrix of
// the policy's model, whose one-time buyer cell is checked against the
// MBG/NBD formula.
func TestCalibrateHTMLReport(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.html")
	rep := calRunJSON(t, "--csv", calCDNOWSample, "--calibration-end", "1997-09-30", "--holdout-end", "1998-06-30",
		"--time-unit", "week", "--model", "mbgnbd", "--out", filepath.Join(dir, "p.yaml"), "--report", path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	// Well-formed: an XML decoder reads it to the end.
	dec := xml.NewDecoder(strings.NewReader(strings.TrimPrefix(doc, "<!DOCTYPE html>\n")))
	svgs, polylines := 0, map[string]int{}
	boundaries := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("report is not well-formed: %v", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch se.Name.Local {
		case "svg":
			svgs++
		case "script", "img", "link", "iframe", "object":
			t.Errorf("report has a <%s> element", se.Name.Local)
		case "polyline", "line":
			for _, a := range se.Attr {
				if a.Name.Local == "class" && strings.HasPrefix(a.Value, "series-") {
					polylines[a.Value]++
				}
				if a.Name.Local == "class" && a.Value == "boundary" {
					boundaries++
				}
			}
		}
		for _, a := range se.Attr {
			if (a.Name.Local == "src" || a.Name.Local == "href") && a.Value != "" {
				t.Errorf("report refers to %s", a.Value)
			}
		}
	}
	if svgs != 3 || boundaries != 1 {
		t.Errorf("%d charts, %d calibration boundaries; want 3 and 1", svgs, boundaries)
	}
	for _, s := range []string{"series-actual", "series-mbgnbd"} {
		if polylines[s] != 2 {
			t.Errorf("%d %s lines, want 2 (tracking and conditional expectation)", polylines[s], s)
		}
	}
	for _, want := range []string{"r 0.5248", "± 0.0833", "-9582.136", "6.2496", "actual 1882", "7+"} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// The policy's model here is MBG/NBD; a one-time buyer observed for
	// the longest T (1997-01-01 to 1997-09-30, 272 days).
	m := rep.MBGNBD
	T := 272.0 / 7
	pa := 1 / (1 + m.A/m.B*math.Pow((m.Alpha+T)/m.Alpha, m.R))
	if want := fmt.Sprintf("x 0, t_x 0.0: P(alive) %.3f", pa); rep.CountModel != "mbgnbd" || !strings.Contains(doc, want) {
		t.Errorf("report lacks the cell %q (count model %s)", want, rep.CountModel)
	}
}

// TestCalibrateHoldoutOfStateStopsAtStart checks that --holdout-end with
// --state-dir stops before anything is opened or written, with a usage
// error that names the flags, says why (a state keeps per-customer
// summaries, not purchase times) and what to use instead (--csv).
func TestCalibrateHoldoutOfStateStopsAtStart(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-state") // opening it would fail with exit 1
	out := filepath.Join(dir, "p.yaml")
	for _, args := range [][]string{
		{"--state-dir", missing, "--holdout-end", "1998-06-30", "--out", out},
		{"--state-dir", missing, "--calibration-end", "1997-09-30", "--holdout-end", "1998-06-30", "--out", out},
	} {
		code, _, errOut := calRun(t, args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (a usage error before the state is opened): %s", args, code, errOut)
		}
		for _, want := range []string{"--holdout-end", "--state-dir", "per-customer summaries", "not the time of each purchase", "--csv"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("%v: message lacks %q: %s", args, want, errOut)
			}
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v: %s was written", args, out)
		}
		if _, err := os.Stat(missing); err == nil {
			t.Errorf("%v: the state directory was created", args)
		}
	}
}
