package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
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
	"valora/processor/txcsv"
	"valora/schemas"
	"valora/state"
)

// The CDNOW sample, copied into the repository with its source and licence
// (testdata/cdnow/README.md).
var calCDNOWSample = filepath.Join("..", "..", "testdata", "cdnow", "CDNOW_sample.txt")

// calJSONReport is the part of the --json report the tests read.
type calJSONReport struct {
	Customers struct {
		Fitted       int `json:"fitted"`
		RepeatBuyers int `json:"repeat_buyers"`
		SpendFitted  int `json:"spend_fitted"`
	} `json:"customers"`
	BGNBD      calJSONFit `json:"bgnbd"`
	GammaGamma struct {
		P, Q, Gamma   float64
		LogLikelihood float64 `json:"log_likelihood"`
	} `json:"gamma_gamma"`
	Frequency []struct {
		X         string  `json:"x"`
		Actual    int     `json:"actual"`
		Predicted float64 `json:"predicted"`
	} `json:"repeat_purchases"`
	CountModel string       `json:"count_model"`
	MBGNBD     *calJSONFit  `json:"mbgnbd"`
	ParetoNBD  *calJSONFit  `json:"paretonbd"`
	Holdout    *calJSONHold `json:"holdout"`
	Tracking   *struct {
		Start            string `json:"start"`
		CalibrationWeeks int    `json:"calibration_weeks"`
		Weeks            []struct {
			Week            int                `json:"week"`
			End             string             `json:"end"`
			Actual          int64              `json:"actual"`
			Expected        float64            `json:"expected"`
			ExpectedByModel map[string]float64 `json:"expected_by_model"`
		} `json:"weeks"`
	} `json:"weekly_tracking"`
	RFM struct {
		RecencyDays   []int64 `json:"recency_days"`
		Frequency     []int64 `json:"frequency"`
		MonetaryMinor []int64 `json:"monetary_minor"`
	} `json:"rfm_boundaries"`
	Policy struct {
		Version    string `json:"policy_version"`
		Path       string `json:"path"`
		ModelsPath string `json:"models_path"`
	} `json:"policy"`
	ValueClasses score.ValueClasses `json:"value_classes"`
	PAliveBelow  float64            `json:"p_alive_below"`
	AtEnd        struct {
		ByValueClass     map[string]int `json:"by_value_class"`
		ByLifecycleStage map[string]int `json:"by_lifecycle_stage"`
		Churned          int            `json:"churned"`
		ChurnedByPAlive  int            `json:"churned_by_p_alive"`
	} `json:"at_calibration_end"`
	Segments score.SegmentReport `json:"segments"`
}

// calJSONFit is a count model's fit in the --json report.
type calJSONFit struct {
	R, Alpha, A, B float64
	S, Beta        float64
	LogLikelihood  float64             `json:"log_likelihood"`
	StdErr         map[string]*float64 `json:"std_err"`
	PAlive         struct {
		Mean          float64 `json:"mean"`
		OneTimeBuyers float64 `json:"mean_one_time_buyers"`
	} `json:"p_alive"`
	Holdout *struct {
		ExpectedPurchases float64 `json:"expected_purchases"`
		Error             float64 `json:"error"`
	} `json:"holdout"`
}

// calJSONHold is the holdout part of the --json report.
type calJSONHold struct {
	End               string  `json:"end"`
	Length            float64 `json:"length"`
	ActualPurchases   int64   `json:"actual_purchases"`
	ExpectedPurchases float64 `json:"expected_purchases"`
	ByX               []struct {
		X                   string             `json:"x"`
		Customers           int                `json:"customers"`
		ActualMean          float64            `json:"actual_mean"`
		ExpectedMean        float64            `json:"expected_mean"`
		ExpectedMeanByModel map[string]float64 `json:"expected_mean_by_model"`
	} `json:"by_calibration_x"`
}

// calRun runs `valora calibrate args...` and returns the exit code and
// the outputs.
func calRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"calibrate"}, args...), noEnv, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func calRunJSON(t *testing.T, args ...string) calJSONReport {
	t.Helper()
	code, out, errOut := calRun(t, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep calJSONReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out)
	}
	return rep
}

// calCheckCDNOWFit compares a fit with the published estimates: BG/NBD
// from Fader, Hardie and Lee (2005), "'Counting Your Customers' the Easy
// Way", Marketing Science 24(2), r=0.243, alpha=4.414, a=0.793, b=2.426,
// LL=-9582.4 (weeks); Gamma-Gamma from Fader and Hardie (2013), "The
// Gamma-Gamma Model of Monetary Value" (the spend model of Fader, Hardie
// and Lee (2005), "RFM and CLV", JMR 42(4)), p=6.25, q=3.74, gamma=15.44.
func calCheckCDNOWFit(t *testing.T, rep calJSONReport, spend bool) {
	t.Helper()
	near := func(name string, got, want, tol float64) {
		t.Helper()
		if math.Abs(got-want) > tol {
			t.Errorf("%s = %.5f, published %v", name, got, want)
		}
	}
	near("r", rep.BGNBD.R, 0.243, 0.0005)
	near("alpha", rep.BGNBD.Alpha, 4.414, 0.0005*10)
	near("a", rep.BGNBD.A, 0.793, 0.0005)
	near("b", rep.BGNBD.B, 2.426, 0.0005*10)
	near("bgnbd log-likelihood", rep.BGNBD.LogLikelihood, -9582.4, 0.1)
	if spend {
		near("p", rep.GammaGamma.P, 6.25, 0.005)
		near("q", rep.GammaGamma.Q, 3.74, 0.005)
		near("gamma", rep.GammaGamma.Gamma, 15.44, 0.005)
	}
}

func TestCalibrateCDNOW(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "policy.yaml")
	scores := filepath.Join(dir, "scores.jsonl")
	rep := calRunJSON(t, "--csv", calCDNOWSample, "--format", "cdnow", "--calibration-end", "1997-09-30",
		"--time-unit", "week", "--out", out, "--score-out", scores, "--p-alive-below", "0.3")

	calCheckCDNOWFit(t, rep, true)
	if rep.Customers.Fitted != 2357 || rep.Customers.RepeatBuyers != 946 || rep.Customers.SpendFitted != 946 {
		t.Errorf("customers %+v, want 2357 fitted, 946 repeat buyers", rep.Customers)
	}
	// The diagnostics: the table covers every customer, and the holdout
	// (1997-10-01 to 1998-06-30, 39 weeks) has the 1,882 repeat purchase
	// days of the data's documentation.
	total, predicted := 0, 0.0
	for _, row := range rep.Frequency {
		total += row.Actual
		predicted += row.Predicted
	}
	if total != 2357 || math.Abs(predicted-2357) > 1e-6 || rep.Frequency[0].Actual != 1411 {
		t.Errorf("repeat purchase table: %d actual, %.3f predicted, x=0 row %+v", total, predicted, rep.Frequency[0])
	}
	if h := rep.Holdout; h == nil || h.ActualPurchases != 1882 || math.Abs(h.Length-39) > 1e-9 || !(h.ExpectedPurchases > 0) {
		t.Errorf("holdout %+v, want 1882 repeat purchases over 39 weeks", h)
	}

	// The policy: loads back, has the new version and boundaries, and keeps
	// everything else of the base policy.
	pol, err := score.LoadPolicy(out)
	if err != nil {
		t.Fatal(err)
	}
	if pol.Version != "default-1-cal19970930" || rep.Policy.Version != pol.Version {
		t.Errorf("policy version %q (report %q), want default-1-cal19970930", pol.Version, rep.Policy.Version)
	}
	if !slices.Equal(pol.Scores.RecencyDays, rep.RFM.RecencyDays) || !slices.Equal(pol.Scores.Frequency, rep.RFM.Frequency) ||
		!slices.Equal(pol.Scores.MonetaryMinor, rep.RFM.MonetaryMinor) {
		t.Errorf("policy scores %+v, report %+v", pol.Scores, rep.RFM)
	}
	def := score.DefaultPolicy()
	if len(pol.Tiers) != len(def.Tiers) || pol.Churn.InactivityDays != def.Churn.InactivityDays || pol.BaseCurrency != def.BaseCurrency {
		t.Errorf("policy lost base settings: %+v", pol)
	}

	// The models sidecar holds a valid clv.Model.
	b, err := os.ReadFile(out + ".models.json")
	if err != nil {
		t.Fatal(err)
	}
	var side struct {
		Models clv.Model `json:"models"`
	}
	if err := json.Unmarshal(b, &side); err != nil {
		t.Fatal(err)
	}
	if err := side.Models.Validate(); err != nil || side.Models.Unit != clv.Week || side.Models.Horizon != 52 ||
		side.Models.BGNBD.R != rep.BGNBD.R || side.Models.GammaGamma.Q != rep.GammaGamma.Q {
		t.Errorf("models %+v: %v", side.Models, err)
	}

	// The policy carries the models, the P(alive) rule and the value
	// classes of the report.
	if pol.Models == nil || pol.Models.BGNBD != side.Models.BGNBD || pol.Models.GammaGamma != side.Models.GammaGamma ||
		pol.Models.Unit != clv.Week || pol.Models.Horizon != 52 || pol.Models.DiscountRate != 0.1 {
		t.Errorf("policy models %+v, want those of the sidecar %+v", pol.Models, side.Models)
	}
	if pol.Churn.PAliveBelow != 0.3 || rep.PAliveBelow != 0.3 {
		t.Errorf("p_alive_below %v (report %v), want 0.3", pol.Churn.PAliveBelow, rep.PAliveBelow)
	}
	if pol.ValueClasses == nil || *pol.ValueClasses != rep.ValueClasses {
		t.Errorf("policy value classes %+v, report %+v", pol.ValueClasses, rep.ValueClasses)
	}
	// What the policy makes of the customers at the calibration end: the
	// top quintile of CLV is high_yield or high_potential, the bottom one
	// (below its boundary, with those whose net value is not positive)
	// below_zero, and P(alive) churns some repeat
	// buyers within the 180-day inactivity window.
	nc, by := 0, rep.AtEnd.ByValueClass
	for _, v := range by {
		nc += v
	}
	high := by[score.ClassHighYield] + by[score.ClassHighPotential]
	if nc != 2357 || high < 2357/5 || high > 2357/4 || by[score.ClassHighYield] == 0 || by[score.ClassHighPotential] == 0 ||
		by[score.ClassBelowZero] == 0 || by[score.ClassBelowZero] > 2357/4 {
		t.Errorf("value classes at the calibration end %v", by)
	}
	if rep.AtEnd.ChurnedByPAlive == 0 || rep.AtEnd.Churned < rep.AtEnd.ChurnedByPAlive || rep.AtEnd.ByLifecycleStage["churned"] != rep.AtEnd.Churned {
		t.Errorf("churn at the calibration end: %+v", rep.AtEnd)
	}
	t.Logf("CDNOW sample at 1997-09-30: value classes %v; stages %v; churned %d (%d by P(alive) < 0.3)",
		by, rep.AtEnd.ByLifecycleStage, rep.AtEnd.Churned, rep.AtEnd.ChurnedByPAlive)

	// Segment economics: every customer once per table, per tier and
	// class as the classes count them, over the models' 52 weeks; the
	// value-aware default treatments give the high-yield the dedicated
	// relationship.
	seg := rep.Segments
	if want := 52 * 7 / (365.25 / 12); math.Abs(seg.HorizonMonths-want) > 1e-9 {
		t.Errorf("segments over %v months, want %v", seg.HorizonMonths, want)
	}
	perClass := map[string]int{}
	var clvTotal, clvByTreatment float64
	for _, r := range seg.ByTierClass {
		perClass[r.ValueClass] += r.Customers
		if r.CLVMinor == nil || r.NetMinor == nil || math.Abs(*r.NetMinor-(*r.CLVMinor-r.CostMinor)) > 1e-6*math.Max(1, math.Abs(*r.NetMinor)) {
			t.Fatalf("segment %+v: want CLV, and CLV minus cost", r)
		}
		clvTotal += *r.CLVMinor
	}
	if !maps.Equal(perClass, by) {
		t.Errorf("segments by class %v, want %v", perClass, by)
	}
	for _, r := range seg.ByTreatment {
		clvByTreatment += *r.CLVMinor
		if r.Treatment == "vip_care" && (r.Relationship != score.RelationshipDedicated || r.Customers == 0) {
			t.Errorf("vip_care: %+v", r)
		}
	}
	if math.Abs(clvTotal-clvByTreatment) > 1e-6*clvTotal {
		t.Errorf("CLV by tier and class %v, by treatment %v", clvTotal, clvByTreatment)
	}

	// One score line per customer.
	f, err := os.Open(scores)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("score line %d: %v", n+1, err)
		}
		for _, k := range []string{"customer_id", "x", "t_x", "T", "p_alive", "expected_purchases", "expected_spend"} {
			if _, ok := line[k]; !ok {
				t.Fatalf("score line %d lacks %q: %s", n+1, k, sc.Text())
			}
		}
		if pa := line["p_alive"].(float64); pa < 0 || pa > 1 {
			t.Fatalf("score line %d: p_alive %v", n+1, pa)
		}
		if n == 0 && (line["customer_id"] != "0001" || line["x"].(float64) != 2) {
			t.Errorf("first score line %s, want customer 0001 with x = 2", sc.Text())
		}
		n++
	}
	if n != 2357 {
		t.Errorf("%d score lines, want 2357", n)
	}
}

// TestCalibrateTextReport checks the human-readable report.
func TestCalibrateTextReport(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := calRun(t, "--csv", calCDNOWSample, "--calibration-end", "1997-09-30", "--time-unit", "week",
		"--out", filepath.Join(dir, "p.yaml"), "--policy-version", "cdnow-weekly")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"BG/NBD", "0.2426", "4.4136", "-9582.429", "Gamma-Gamma", "6.2496", "7+", "Holdout", "1882", "policy cdnow-weekly"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// calCDNOWRows reads the CDNOW sample's rows: sample id, date, cents.
func calCDNOWRows(t *testing.T) [][3]string {
	t.Helper()
	b, err := os.ReadFile(calCDNOWSample)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][3]string
	for _, line := range strings.Split(string(b), "\n") {
		fs := strings.Fields(line)
		if len(fs) == 5 {
			rows = append(rows, [3]string{fs[1], fs[2], fs[4]})
		}
	}
	return rows
}

// TestCalibrateGenericCSV writes the CDNOW sample as a generic CSV (other
// column names and order, a semicolon delimiter, ISO dates, a currency
// column, and refunds, which change the monetary value only) and checks
// that the models come out as from the cdnow format.
func TestCalibrateGenericCSV(t *testing.T) {
	dir := t.TempDir()
	var buf strings.Builder
	buf.WriteString("value;when;currency;client\n")
	for i, r := range calCDNOWRows(t) {
		at, err := time.Parse("20060102", r[1])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&buf, "%s;%s;usd;c%s\n", r[2], at.Format(time.DateOnly), r[0])
		if i%50 == 0 {
			fmt.Fprintf(&buf, "-1.00;%s;USD;c%s\n", at.Format(time.DateOnly), r[0])
		}
	}
	path := filepath.Join(dir, "tx.csv")
	if err := os.WriteFile(path, []byte(buf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := calRunJSON(t, "--csv", path, "--format", "generic", "--csv-customer", "client", "--csv-time", "when",
		"--csv-time-layout", time.DateOnly, "--csv-amount", "value", "--csv-currency", "currency", "--csv-delimiter", ";",
		"--calibration-end", "1997-09-30", "--time-unit", "week", "--out", filepath.Join(dir, "p.yaml"))
	calCheckCDNOWFit(t, rep, true)
}

// TestCalibrateStateDir builds a state directory from the CDNOW sample's
// calibration period with the scoring code, then calibrates on it. The
// BG/NBD data of a state (repeat days, first and last purchase) is exact,
// so the fit matches the published one; the spend is approximated by the
// mean of all purchases, so Gamma-Gamma differs and is only checked to be
// fitted. The eight rows of $0 are free orders: their purchase days count.
func TestCalibrateStateDir(t *testing.T) {
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	st, err := state.Open(state.Options{Dir: stateDir})
	if err != nil {
		t.Fatal(err)
	}
	pol := score.DefaultPolicy()
	end := time.Date(1997, 9, 30, 0, 0, 0, 0, time.UTC)
	customers := map[string]*schemas.Customer{}
	var ids []string
	var last time.Time
	for i, r := range calCDNOWRows(t) {
		at, err := time.Parse("20060102", r[1])
		if err != nil {
			t.Fatal(err)
		}
		if at.After(end) {
			continue
		}
		if at.After(last) {
			last = at
		}
		cents, err := txcsv.ParseMinor(r[2], 2)
		if err != nil {
			t.Fatal(err)
		}
		c, ok := customers[r[0]]
		if !ok {
			c = &schemas.Customer{CustomerID: r[0]}
			customers[r[0]] = c
			ids = append(ids, r[0])
		}
		_, err = pol.ApplyPurchase(c, &schemas.Purchase{
			EventID: strconv.Itoa(i), CustomerID: r[0], OccurredAt: at.UnixMilli(), Kind: schemas.KindPurchase,
			AmountMinor: cents, Currency: "USD", Channel: schemas.ChannelWeb, Items: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	batch := st.NewBatch()
	for i, id := range ids {
		v, err := schemas.AppendCustomer(nil, customers[id])
		if err != nil {
			t.Fatal(err)
		}
		batch.PutCustomer(int32(i%3), id, v)
	}
	if err := batch.Commit(); err != nil {
		t.Fatal(err)
	}
	batch.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	rep := calRunJSON(t, "--state-dir", stateDir, "--calibration-end", "1997-09-30", "--time-unit", "week",
		"--out", filepath.Join(dir, "p.yaml"))
	calCheckCDNOWFit(t, rep, false)
	if rep.Customers.Fitted != 2357 || rep.Customers.RepeatBuyers != 946 || !(rep.GammaGamma.Q > 1) {
		t.Errorf("customers %+v, gamma-gamma %+v", rep.Customers, rep.GammaGamma)
	}

	// The default calibration end is the latest event time in the state.
	rep = calRunJSON(t, "--state-dir", stateDir, "--out", filepath.Join(dir, "p2.yaml"))
	if want := "default-1-cal" + last.Format("20060102"); rep.Policy.Version != want {
		t.Errorf("default calibration end: policy version %q, want %q (the last purchase)", rep.Policy.Version, want)
	}

	// A state keeps totals: a calibration end before a purchase is refused.
	code, _, errOut := calRun(t, "--state-dir", stateDir, "--calibration-end", "1997-06-30", "--out", filepath.Join(dir, "p3.yaml"))
	if code != 2 || !strings.Contains(errOut, "keeps per-customer summaries") {
		t.Errorf("calibration end before purchases: exit %d, %s", code, errOut)
	}
}

// TestCalibrateErrors checks the exit codes and messages of bad
// invocations: 2 for usage and configuration, 1 for data that cannot be
// fitted or read, 3 for a state directory that cannot be used.
func TestCalibrateErrors(t *testing.T) {
	dir := t.TempDir()
	few := filepath.Join(dir, "few.txt")
	if err := os.WriteFile(few, []byte(" 00001 0001 19970101 1 10.00\r\n 00001 0001 19970201 1 12.00\r\n 00002 0002 19970105 1 9.99\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.txt")
	if err := os.WriteFile(bad, []byte(" 00001 0001 1997-01-01 1 10.00\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "p.yaml")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no input", []string{"--out", out}, 2, "exactly one of --state-dir and --csv"},
		{"two inputs", []string{"--csv", few, "--state-dir", dir, "--out", out}, 2, "exactly one"},
		{"time unit", []string{"--csv", few, "--time-unit", "month"}, 2, "--time-unit"},
		{"date", []string{"--csv", few, "--calibration-end", "30/09/1997"}, 2, "--calibration-end"},
		{"discount", []string{"--csv", few, "--discount-rate", "-1"}, 2, "discount"},
		{"horizon", []string{"--csv", few, "--horizon", "-5"}, 2, "horizon"},
		{"format", []string{"--csv", few, "--format", "xml"}, 2, "--format"},
		{"policy", []string{"--csv", few, "--policy", filepath.Join(dir, "missing.yaml")}, 2, "missing.yaml"},
		{"generic column", []string{"--csv", few, "--format", "generic"}, 2, "--csv-customer"},
		{"delimiter", []string{"--csv", few, "--format", "generic", "--csv-delimiter", ";;"}, 2, "--csv-delimiter"},
		{"blank version", []string{"--csv", few, "--policy-version", " "}, 2, "--policy-version"},
		{"missing file", []string{"--csv", filepath.Join(dir, "none.txt"), "--out", out}, 1, "none.txt"},
		{"bad date in file", []string{"--csv", bad, "--out", out}, 1, "YYYYMMDD"},
		{"too few repeat buyers", []string{"--csv", few, "--out", out}, 1, "too few repeat buyers"},
		{"missing state", []string{"--state-dir", filepath.Join(dir, "nostate"), "--out", out}, exitState, `state "` + filepath.Join(dir, "nostate") + `": open: `},
		{"model", []string{"--csv", few, "--model", "pareto"}, 2, "--model"},
		{"holdout date", []string{"--csv", few, "--holdout-end", "1998"}, 2, "--holdout-end"},
		{"holdout before calibration end", []string{"--csv", few, "--calibration-end", "1997-09-30", "--holdout-end", "1997-09-30"}, 2, "--holdout-end"},
		{"holdout before the default end", []string{"--csv", few, "--holdout-end", "1997-01-15", "--out", out}, 2, "--holdout-end"},
		{"holdout of a state", []string{"--state-dir", dir, "--holdout-end", "1998-06-30", "--out", out}, 2, "--holdout-end"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := calRun(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, errOut, tc.code, tc.want)
			}
		})
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed calibration wrote %s (%v)", out, err)
	}
}

// TestCalibrateBasePolicy checks that --policy is the base of the new
// policy: its settings are kept and its version names the new one.
func TestCalibrateBasePolicy(t *testing.T) {
	dir := t.TempDir()
	base := strings.Replace(string(score.DefaultPolicyYAML()), "policy_version: default-1", "policy_version: shop-7", 1)
	base = strings.Replace(base, "inactivity_days: 180", "inactivity_days: 200", 1)
	basePath := filepath.Join(dir, "base.yaml")
	if err := os.WriteFile(basePath, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "new.yaml")
	rep := calRunJSON(t, "--csv", calCDNOWSample, "--calibration-end", "1997-09-30", "--policy", basePath, "--out", out)
	pol, err := score.LoadPolicy(out)
	if err != nil {
		t.Fatal(err)
	}
	if pol.Version != "shop-7-cal19970930" || rep.Policy.Version != pol.Version || pol.Churn.InactivityDays != 200 {
		t.Errorf("policy version %q, inactivity %d; want shop-7-cal19970930 and 200", pol.Version, pol.Churn.InactivityDays)
	}
}
