package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"

	"valora/processor/clv"
	"valora/processor/score"
	"valora/processor/txcsv"
	"valora/schemas"
	"valora/state"
)

const calibrateSummary = `Fit BG/NBD (or MBG/NBD), Gamma-Gamma and the RFM score boundaries over a
customer base, print a report, and write a new policy with those boundaries and
a new policy_version.

The input is a whole state directory (--state-dir, opened read-only; not the
directory of a running instance) or a CSV of transactions (--csv). With
--format cdnow, the CSV is CDNOW's whitespace-separated log: the master file
(customer_id date cds dollars, with a header line) or the 1/10 sample
(master_id sample_id date cds dollars, no header; the customer is sample_id),
dates YYYYMMDD, dollars in USD. With --format generic, it is a delimited file
with a header line whose columns --csv-customer, --csv-time, --csv-amount and
optionally --csv-currency name; a negative amount is a refund.

Conventions (those of the published models): x counts the days with a
purchase after the day of the first purchase (same-day purchases merge);
t_x and T run from the first purchase to the last purchase and to the end of
the calibration period, in --time-unit. Gamma-Gamma is fitted on the repeat
buyers' mean repeat-purchase value, in major units of the policy's base
currency. A state directory keeps totals, not histories, so there the spend
is approximated by the mean value of all purchases net of refunds
(monetary_minor / purchases), first purchase included.

--model chooses the count model: bgnbd (BG/NBD, the default), mbgnbd
(MBG/NBD: a customer may also drop out at the first purchase, so a one-time
buyer's P(alive) falls with time where BG/NBD keeps it at 1), paretonbd
(Pareto/NBD: drop-out at any time; its fit is several times slower), or all
(fit the three and report them; the policy carries the one with the highest
log-likelihood: all have four parameters). Each fit reports its
log-likelihood, standard errors and P(alive) at the calibration end.

Validation (CSV input): the repeat purchase days after the calibration end,
up to --holdout-end (default: the last purchase), are compared with each
model's conditional expectation E[Y(t) | x, t_x, T] over the holdout: the
totals, per customer by calibration x (0..6, 7+), and the weekly cumulative
repeat purchases from the first week with a purchase to the holdout end,
against the model's E[X(t)] summed over the customers by the day of their
first purchase. A state directory keeps per-customer summaries, not the time
of each purchase, so it has no holdout: --holdout-end with --state-dir stops
at start, and a state's --calibration-end must be at or after its last
purchase.

The policy's RFM boundaries become the quintiles of recency (whole days since
the last purchase at the calibration end), frequency (purchases) and monetary
value (net, base minor units): boundary k is the smallest value with at
least (k+1)/5 of the customers at or below it; a boundary not above the one
before it becomes that one plus 1, so the four stay strictly increasing.

The new policy carries the fitted models (its models section: the count
model, Gamma-Gamma, --horizon, --discount-rate), so the processor puts p_alive,
expected_purchases and clv on every tier change. Its value classes are set
from the customers' CLV at the calibration end, computed as the processor
does (mean spend = net monetary value / purchases): high_yield and
high_potential take the top quintile of CLV (the first with at least the top
quintile of monetary value, the second below it), and below_zero the
customers whose CLV is under --cost-to-serve (without it, the bottom quintile
of CLV). --p-alive-below sets the P(alive) churn rule. The fit details
(standard errors, counts) go to <out>.models.json. The report ends with the
value classes, lifecycle stages and churn flags that the new policy gives the
fitted customers at the calibration end.`

// calibrateFlags are the flags of `valora calibrate`.
type calibrateFlags struct {
	stateDir      string
	csvPath       string
	format        string
	colCustomer   string
	colTime       string
	timeLayout    string
	colAmount     string
	colCurrency   string
	delimiter     string
	calEnd        string
	holdoutEnd    string
	model         string
	timeUnit      string
	horizon       float64
	discountRate  float64
	policy        string
	policyVersion string
	out           string
	json          bool
	scoreOut      string
	report        string
	pAliveBelow   float64
	costToServe   float64
}

func (f *calibrateFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.stateDir, "state-dir", "", "state directory to calibrate on (read-only); or use --csv")
	fs.StringVar(&f.csvPath, "csv", "", "CSV file of transactions to calibrate on; or use --state-dir")
	fs.StringVar(&f.format, "format", "cdnow", "format of --csv: cdnow or generic")
	fs.StringVar(&f.colCustomer, "csv-customer", "customer_id", "generic CSV: the column of the customer id")
	fs.StringVar(&f.colTime, "csv-time", "occurred_at", "generic CSV: the column of the purchase time")
	fs.StringVar(&f.timeLayout, "csv-time-layout", time.RFC3339, "generic CSV: Go time layout of --csv-time (UTC unless it has a zone), or unix (seconds) or unix_ms")
	fs.StringVar(&f.colAmount, "csv-amount", "amount", "generic CSV: the column of the amount, a decimal number in major units (negative: a refund)")
	fs.StringVar(&f.colCurrency, "csv-currency", "", "generic CSV: the column of the ISO 4217 currency (default: every amount is in the policy's base currency)")
	fs.StringVar(&f.delimiter, "csv-delimiter", ",", "generic CSV: the field delimiter, one character (\\t for a tab)")
	fs.StringVar(&f.calEnd, "calibration-end", "", "end of the calibration period, YYYY-MM-DD (00:00 UTC) or RFC 3339, inclusive (default: the last purchase of the CSV, or the latest event time of the state; with --state-dir it must be at or after the last purchase)")
	fs.StringVar(&f.holdoutEnd, "holdout-end", "", "CSV input only (a state keeps no purchase times): end of the holdout period, YYYY-MM-DD (00:00 UTC) or RFC 3339, inclusive: the models fitted on the calibration period are checked against the repeat purchases after it up to this time (default: the last purchase of the CSV)")
	fs.StringVar(&f.model, "model", "bgnbd", "count model: bgnbd, mbgnbd (BG/NBD with a drop-out chance at the first purchase, so one-time buyers can be churned by P(alive)), paretonbd (drop-out at any time), or all (fit the three, report them, and write the one with the highest log-likelihood into the policy)")
	fs.StringVar(&f.timeUnit, "time-unit", "day", "time unit of the models: day or week")
	fs.Float64Var(&f.horizon, "horizon", 0, "periods of --time-unit over which expected purchases and CLV are counted (default: a year, 365 days or 52 weeks)")
	fs.Float64Var(&f.discountRate, "discount-rate", 0.1, "annual discount rate of the CLV")
	fs.StringVar(&f.policy, "policy", "", "base policy file (YAML); empty uses the built-in default policy")
	fs.StringVar(&f.policyVersion, "policy-version", "", "policy_version of the new policy (default: the base version followed by -cal and the calibration end as YYYYMMDD)")
	fs.StringVar(&f.out, "out", "policy.calibrated.yaml", "file to write the new policy (with the fitted models) to; the fit details go to <out>.models.json")
	fs.BoolVar(&f.json, "json", false, "print the report as JSON")
	fs.Float64Var(&f.pAliveBelow, "p-alive-below", -1, "churn.p_alive_below of the new policy: repeat buyers whose P(alive) falls below it are churned; 0 disables; -1 keeps the base policy's")
	fs.Float64Var(&f.costToServe, "cost-to-serve", -1, "what serving a customer over the horizon costs, in major units of the base currency: a CLV below it is below_zero (default: the bottom quintile of CLV)")
	fs.StringVar(&f.report, "report", "", "also write the report as one self-contained HTML file (inline SVG charts, no script) to this file: the fits, the weekly cumulative repeat purchases against the models, the holdout by calibration frequency, and the P(alive) matrix")
	fs.StringVar(&f.scoreOut, "score-out", "", "also write one JSON line per customer (customer_id, x, t_x, T, p_alive, expected_purchases, expected_spend, clv) to this file")
}

// calCustomer is one customer's calibration data, from either input.
type calCustomer struct {
	id string
	// first and last are the times of the first and the last purchase in
	// the calibration period (Unix ms).
	first, last int64
	// x is the number of repeat purchase days in the period.
	x int64
	// purchases and monetary are the RFM frequency and monetary value (net
	// of refunds, base minor units) in the period.
	purchases, monetary int64
	// meanSpend is the mean value of the repeat purchases, in major units
	// of the base currency; 0 when unknown or not positive.
	meanSpend float64
	// holdout is the number of repeat purchase days after the calibration
	// period, to the holdout end (CSV input only).
	holdout int64
	// repeats holds the time of each repeat purchase day (its first
	// purchase), in the calibration and the holdout periods, in order (CSV
	// input only).
	repeats []int64
}

// calInput is what a reader returns.
type calInput struct {
	customers []calCustomer
	// later counts the customers whose first purchase is after the
	// calibration end (left out).
	later int
	// calEnd is the calibration end used; holdoutEnd the end of the
	// holdout period: --holdout-end, else the last purchase after calEnd
	// (0: no holdout data).
	calEnd, holdoutEnd int64
	source             string
	// histories is true when each customer's repeats are known (CSV
	// input).
	histories bool
}

func runCalibrate(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := newFlagSet("calibrate", calibrateSummary, stderr)
	var f calibrateFlags
	f.register(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if (f.stateDir == "") == (f.csvPath == "") {
		return usagef("give exactly one of --state-dir and --csv")
	}
	unit, err := clv.ParseTimeUnit(f.timeUnit)
	if err != nil {
		return usagef("--time-unit: %v", err)
	}
	if f.horizon == 0 { // a year
		f.horizon = 365
		if unit == clv.Week {
			f.horizon = 52
		}
	}
	var calEnd, holdoutEnd int64
	if f.calEnd != "" {
		t, err := calParseDate(f.calEnd)
		if err != nil {
			return usagef("--calibration-end: %v", err)
		}
		calEnd = t.UnixMilli()
	}
	if f.holdoutEnd != "" {
		if f.stateDir != "" {
			return usagef("--holdout-end with --state-dir: a state directory keeps per-customer summaries (purchases, repeat purchase days, first and last purchase time), " +
				"not the time of each purchase, so it cannot be split into a calibration period and a holdout; " +
				"to validate on a holdout, calibrate with --csv on the transactions (the files valora import loaded, or an export of the purchases topic)")
		}
		t, err := calParseDate(f.holdoutEnd)
		if err != nil {
			return usagef("--holdout-end: %v", err)
		}
		holdoutEnd = t.UnixMilli()
		if calEnd != 0 && holdoutEnd <= calEnd {
			return usagef("--holdout-end %s: want a time after --calibration-end %s", f.holdoutEnd, f.calEnd)
		}
	}
	counts, err := calCountModels(f.model)
	if err != nil {
		return err
	}
	base, err := loadPolicy(f.policy)
	if err != nil {
		return err
	}
	if !(f.horizon > 0) || math.IsInf(f.horizon, 1) {
		return usagef("--horizon %v: want a positive number of %ss", f.horizon, unit)
	}
	if !(f.discountRate >= 0 && f.discountRate <= clv.MaxDiscountRate) {
		return usagef("--discount-rate %v: want an annual rate in 0..%v", f.discountRate, clv.MaxDiscountRate)
	}
	if f.policyVersion != "" && strings.TrimSpace(f.policyVersion) == "" {
		return usagef("--policy-version %q: blank", f.policyVersion)
	}
	if f.out == "" {
		return usagef("--out: required")
	}
	if f.pAliveBelow != -1 && !(f.pAliveBelow >= 0 && f.pAliveBelow < 1) {
		return usagef("--p-alive-below %v: want a probability in [0, 1), or -1 to keep the base policy's", f.pAliveBelow)
	}
	if f.costToServe != -1 && !(f.costToServe >= 0) || math.IsInf(f.costToServe, 1) {
		return usagef("--cost-to-serve %v: want a finite amount >= 0, or -1 for the bottom quintile of CLV", f.costToServe)
	}
	if f.csvPath != "" {
		if f.format != "cdnow" && f.format != "generic" {
			return usagef("--format %q: want cdnow or generic", f.format)
		}
		if _, ok := txcsv.ParseDelimiter(f.delimiter); f.format == "generic" && !ok {
			return usagef("--csv-delimiter %q: want one character", f.delimiter)
		}
	}

	var in *calInput
	if f.stateDir != "" {
		in, err = calReadState(ctx, f.stateDir, calEnd, base)
	} else {
		in, err = calReadCSV(ctx, &f, calEnd, holdoutEnd, base)
	}
	if err != nil {
		return err
	}
	rep, model, err := calFit(in, unit, base, &f, counts)
	if err != nil {
		return err
	}
	pol, err := calPolicy(base, rep, &f, in, model)
	if err != nil {
		return err
	}
	if err := calWritePolicy(f.out, pol, rep, model); err != nil {
		return err
	}
	if f.scoreOut != "" {
		if err := calWriteScores(f.scoreOut, in, unit, model); err != nil {
			return err
		}
		rep.ScoreOut = f.scoreOut
	}
	if f.report != "" {
		if err := calWriteFile(f.report, []byte(calWriteHTML(rep, rep.models, model, rep.maxT))); err != nil {
			return err
		}
		rep.Report = f.report
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.writeText(stdout)
}

// calReport is the report of `valora calibrate`, printed as text or JSON.
type calReport struct {
	Source         string       `json:"source"`
	CalibrationEnd string       `json:"calibration_end"`
	TimeUnit       clv.TimeUnit `json:"time_unit"`
	Currency       string       `json:"currency"`
	Customers      calCounts    `json:"customers"`
	// CountModel is the count model the policy carries (--model, or with
	// all the one with the higher log-likelihood); BGNBD and MBGNBD are
	// the fits made.
	CountModel clv.CountModel  `json:"count_model"`
	BGNBD      *calCountFit    `json:"bgnbd,omitempty"`
	MBGNBD     *calCountFit    `json:"mbgnbd,omitempty"`
	ParetoNBD  *calCountFit    `json:"paretonbd,omitempty"`
	GammaGamma calGammaGamma   `json:"gamma_gamma"`
	Frequency  []calFreqRow    `json:"repeat_purchases"`
	Holdout    *calHoldout     `json:"holdout,omitempty"`
	Tracking   *calTracking    `json:"weekly_tracking,omitempty"`
	RFM        score.Scores    `json:"rfm_boundaries"`
	Model      calModelSummary `json:"model"`
	Policy     calPolicyOut    `json:"policy"`
	// ValueClasses and PAliveBelow are the new policy's; AtEnd is what it
	// makes of the fitted customers at the calibration end.
	ValueClasses score.ValueClasses `json:"value_classes"`
	PAliveBelow  float64            `json:"p_alive_below"`
	AtEnd        calDistribution    `json:"at_calibration_end"`
	// Segments totals value and relationship cost at the calibration end
	// under the new policy.
	Segments score.SegmentReport `json:"segments"`
	ScoreOut string              `json:"score_out,omitempty"`
	Report   string              `json:"report,omitempty"`

	// models are the fitted count models, each a validated Model, and
	// maxT the longest observation (T) at the calibration end: for
	// --report.
	models []*clv.Model
	maxT   float64
}

type calCounts struct {
	// Fitted customers made their first purchase by the calibration end.
	Fitted       int `json:"fitted"`
	RepeatBuyers int `json:"repeat_buyers"`
	// FirstAfterEnd first bought after the calibration end (left out).
	FirstAfterEnd int `json:"first_purchase_after_end"`
	// SpendFitted repeat buyers entered the Gamma-Gamma fit; the others had
	// no positive mean spend.
	SpendFitted int `json:"spend_fitted"`
}

// calCountFit is the fit of a count model: r, alpha, a and b for BG/NBD
// and MBG/NBD, r, alpha, s and beta for Pareto/NBD.
type calCountFit struct {
	R             float64  `json:"r"`
	Alpha         float64  `json:"alpha"`
	A             float64  `json:"a,omitempty"`
	B             float64  `json:"b,omitempty"`
	S             float64  `json:"s,omitempty"`
	Beta          float64  `json:"beta,omitempty"`
	LogLikelihood float64  `json:"log_likelihood"`
	StdErr        calStdEr `json:"std_err"`
	Iterations    int      `json:"iterations"`
	// PAlive summarises P(alive) at the calibration end.
	PAlive calPAlive `json:"p_alive"`
	// Holdout is the model's error over the holdout period (CSV input
	// with purchases after the calibration end).
	Holdout *calHoldoutFit `json:"holdout,omitempty"`

	params []calParam // in the model's order
}

type calGammaGamma struct {
	P             float64  `json:"p"`
	Q             float64  `json:"q"`
	Gamma         float64  `json:"gamma"`
	LogLikelihood float64  `json:"log_likelihood"`
	StdErr        calStdEr `json:"std_err"`
	Iterations    int      `json:"iterations"`
	// MeanSpend is the model's population mean spend; ObservedMeanSpend
	// the mean of the fitted customers' mean spends.
	MeanSpend         float64 `json:"mean_spend"`
	ObservedMeanSpend float64 `json:"observed_mean_spend"`
	// CorrXSpend is the correlation between x and the mean spend across
	// the fitted customers: the model assumes they are independent.
	CorrXSpend *float64 `json:"corr_x_spend"`
}

// calStdEr maps parameter names to standard errors; null where the
// information matrix is not positive definite.
type calStdEr map[string]*float64

type calFreqRow struct {
	// X is the number of repeat purchases; the last row, "7+", counts 7 or
	// more.
	X         string  `json:"x"`
	Actual    int     `json:"actual"`
	Predicted float64 `json:"predicted"`
}

type calModelSummary struct {
	Horizon      float64 `json:"horizon"`
	DiscountRate float64 `json:"discount_rate"`
}

type calPolicyOut struct {
	Version     string `json:"policy_version"`
	BaseVersion string `json:"base_policy_version"`
	Path        string `json:"path"`
	ModelsPath  string `json:"models_path"`
}

// calHistBuckets is the number of single-x rows of the repeat-purchase
// table; the last row counts calHistBuckets or more.
const calHistBuckets = 7

// calFit fits the models and computes the RFM boundaries and the
// diagnostics.
func calFit(in *calInput, unit clv.TimeUnit, base *score.Policy, f *calibrateFlags, counts []clv.CountModel) (*calReport, *clv.Model, error) {
	rep := &calReport{
		Source:         in.source,
		CalibrationEnd: time.UnixMilli(in.calEnd).UTC().Format(time.RFC3339),
		TimeUnit:       unit,
		Currency:       base.BaseCurrency,
		Model:          calModelSummary{Horizon: f.horizon, DiscountRate: f.discountRate},
	}
	rep.Customers.Fitted = len(in.customers)
	rep.Customers.FirstAfterEnd = in.later
	sums := make([]clv.Summary, len(in.customers))
	var spends []clv.Spend
	for i, c := range in.customers {
		sums[i] = clv.SummaryAt(c.x, c.first, c.last, in.calEnd, unit)
		if c.x > 0 {
			rep.Customers.RepeatBuyers++
			if c.meanSpend > 0 {
				spends = append(spends, clv.Spend{X: c.x, Mean: c.meanSpend})
			}
		}
	}
	rep.Customers.SpendFitted = len(spends)
	if len(sums) == 0 {
		return nil, nil, fmt.Errorf("no customer made a purchase by the calibration end %s", rep.CalibrationEnd)
	}

	fits, err := calFitCounts(sums, counts)
	if err != nil {
		return nil, nil, err
	}
	rep.CountModel = fits.chosen
	rep.BGNBD, rep.MBGNBD, rep.ParetoNBD = fits.fits[clv.CountBGNBD], fits.fits[clv.CountMBGNBD], fits.fits[clv.CountParetoNBD]
	gg, err := clv.FitGammaGamma(spends)
	if err != nil {
		return nil, nil, err
	}
	rep.GammaGamma = calGammaGamma{
		P: gg.Params.P, Q: gg.Params.Q, Gamma: gg.Params.Gamma,
		LogLikelihood: gg.LogLikelihood,
		StdErr: calStdEr{"p": calFinite(gg.StdErr.P), "q": calFinite(gg.StdErr.Q),
			"gamma": calFinite(gg.StdErr.Gamma)},
		Iterations: gg.Iterations,
		MeanSpend:  gg.Params.MeanSpend(),
	}
	xs, ms := make([]float64, len(spends)), make([]float64, len(spends))
	for i, s := range spends {
		xs[i], ms[i] = float64(s.X), s.Mean
		rep.GammaGamma.ObservedMeanSpend += s.Mean / float64(len(spends))
	}
	rep.GammaGamma.CorrXSpend = calFinite(calCorrelation(xs, ms))

	// Repeat purchases in the period: observed against expected.
	ts := make([]float64, len(sums))
	actual := make([]int, calHistBuckets+1)
	for i, s := range sums {
		ts[i] = s.T
		actual[min(s.X, calHistBuckets)]++
	}

	// RFM boundaries.
	rec := make([]int64, len(in.customers))
	freq := make([]int64, len(in.customers))
	mon := make([]int64, len(in.customers))
	for i, c := range in.customers {
		rec[i] = (in.calEnd - c.last) / score.DayMs
		freq[i] = c.purchases
		mon[i] = c.monetary
	}
	rep.RFM = score.Scores{
		RecencyDays:   calQuintileBounds(rec),
		Frequency:     calQuintileBounds(freq),
		MonetaryMinor: calQuintileBounds(mon),
	}

	// One validated Model per fitted count model, to evaluate them alike;
	// the policy carries the chosen one.
	models := make([]*clv.Model, len(counts))
	var model *clv.Model
	for i, k := range counts {
		m := &clv.Model{
			Unit:         unit,
			Count:        k,
			GammaGamma:   gg.Params,
			Horizon:      f.horizon,
			DiscountRate: f.discountRate,
		}
		fits.set[k](m)
		if err := m.Validate(); err != nil {
			return nil, nil, fmt.Errorf("fitted model: %w", err)
		}
		models[i] = m
		if k == fits.chosen {
			model = m
		}
	}
	pred := model.RepeatHistogram(ts, calHistBuckets)
	for x := range calHistBuckets + 1 {
		label := strconv.Itoa(x)
		if x == calHistBuckets {
			label += "+"
		}
		rep.Frequency = append(rep.Frequency, calFreqRow{X: label, Actual: actual[x], Predicted: pred[x]})
	}
	calPAlives(rep, in, sums, models)
	rep.models = models
	for _, s := range sums {
		rep.maxT = max(rep.maxT, s.T)
	}
	rep.Holdout = calHoldoutOf(rep, in, sums, unit, models, model)
	rep.Tracking = calTrackingOf(in, unit, models, model)
	return rep, model, nil
}

// calQuintileBounds returns the four RFM boundaries of values: boundary k
// is the smallest value v with at least (k+1)/5 of the values <= v (the
// value at rank ceil((k+1)n/5) in ascending order); a boundary not above
// its predecessor is raised to the predecessor plus 1, and the first is at
// least 0, so the boundaries are strictly increasing and non-negative
// whatever the ties. values is sorted in place.
func calQuintileBounds(values []int64) []int64 {
	slices.Sort(values)
	n := len(values)
	out := make([]int64, 4)
	for k := range out {
		var v int64
		if n > 0 {
			rank := ((k+1)*n + 4) / 5 // ceil((k+1)n/5), 1-based
			v = values[rank-1]
		}
		if k == 0 {
			v = max(v, 0)
		} else if v <= out[k-1] {
			v = out[k-1] + 1
		}
		out[k] = v
	}
	return out
}

// calDistribution counts the fitted customers by what the new policy
// derives for them at the calibration end.
type calDistribution struct {
	ByValueClass     map[string]int `json:"by_value_class"` // "none" for no class
	ByLifecycleStage map[string]int `json:"by_lifecycle_stage"`
	Churned          int            `json:"churned"`
	// ChurnedByPAlive are churned although idle for less than
	// churn.inactivity_days: the P(alive) rule's doing.
	ChurnedByPAlive int `json:"churned_by_p_alive"`
}

// calCustomerState is the state the processor would hold for c (purchases
// only: a CSV has no interactions, a state directory's interactions are
// left out).
func calCustomerState(c *calCustomer) *schemas.Customer {
	return &schemas.Customer{
		CustomerID: c.id, FirstSeen: c.first, LastActivity: c.last, FirstPurchase: c.first, LastPurchase: c.last,
		Purchases: c.purchases, RepeatDays: c.x, MonetaryMinor: c.monetary,
	}
}

// calValueClasses sets the value class thresholds from the customers' CLV
// at the calibration end, evaluated as the processor does.
func calValueClasses(in *calInput, model *clv.Model, minorPerMajor float64, f *calibrateFlags) score.ValueClasses {
	clvs := make([]float64, 0, len(in.customers))
	mons := make([]int64, 0, len(in.customers))
	for i := range in.customers {
		c := &in.customers[i]
		if c.purchases <= 0 {
			continue
		}
		mean := 0.0
		if c.monetary > 0 {
			mean = float64(c.monetary) / float64(c.purchases) / minorPerMajor
		}
		v := model.Evaluate(clv.SummaryAt(c.x, c.first, c.last, in.calEnd, model.Unit), mean)
		clvs = append(clvs, v.CLV*minorPerMajor)
		mons = append(mons, c.monetary)
	}
	slices.Sort(clvs)
	slices.Sort(mons)
	q := func(n int, k float64) int { return max(0, min(n-1, int(math.Ceil(k*float64(n)))-1)) }
	vc := score.ValueClasses{ReviewDays: score.DefaultReviewDays}
	if len(clvs) > 0 {
		top := math.Round(clvs[q(len(clvs), 0.8)]*100) / 100
		vc.HighYieldCLVMinor, vc.HighPotentialCLVMinor = top, top
		vc.HighYieldMonetaryMinor = max(0, mons[q(len(mons), 0.8)])
		vc.BelowZeroCLVMinor = math.Round(clvs[q(len(clvs), 0.2)]*100) / 100
	}
	if f.costToServe >= 0 {
		vc.BelowZeroCLVMinor = math.Round(f.costToServe * minorPerMajor)
	}
	vc.BelowZeroCLVMinor = min(vc.BelowZeroCLVMinor, vc.HighYieldCLVMinor)
	return vc
}

// calPolicy returns the base policy with the new boundaries, models, value
// classes and version, validated, and fills the report's policy part.
func calPolicy(base *score.Policy, rep *calReport, f *calibrateFlags, in *calInput, model *clv.Model) (*score.Policy, error) {
	pol := *base
	pol.Scores = rep.RFM
	pol.Version = f.policyVersion
	if pol.Version == "" {
		pol.Version = base.Version + "-cal" + time.UnixMilli(in.calEnd).UTC().Format("20060102")
	}
	m := *model
	pol.Models = &m
	exp, _ := score.MinorUnits(base.BaseCurrency)
	vc := calValueClasses(in, model, math.Pow10(exp), f)
	pol.ValueClasses = &vc
	if f.pAliveBelow >= 0 {
		pol.Churn.PAliveBelow = f.pAliveBelow
	}
	if err := pol.Validate(); err != nil {
		return nil, fmt.Errorf("calibrated policy is invalid: %w", err)
	}
	rep.ValueClasses, rep.PAliveBelow = vc, pol.Churn.PAliveBelow
	rep.AtEnd = calDistribution{ByValueClass: map[string]int{}, ByLifecycleStage: map[string]int{}}
	inactivity := pol.Churn.InactivityDays * score.DayMs
	seg := pol.NewSegments()
	for i := range in.customers {
		c := calCustomerState(&in.customers[i])
		pol.Evaluate(c, in.calEnd)
		seg.Add(c)
		class := "none"
		if c.ValueClass != nil {
			class = *c.ValueClass
		}
		rep.AtEnd.ByValueClass[class]++
		rep.AtEnd.ByLifecycleStage[c.LifecycleStage]++
		if c.ChurnRisk {
			rep.AtEnd.Churned++
			if in.calEnd-c.LastActivity < inactivity {
				rep.AtEnd.ChurnedByPAlive++
			}
		}
	}
	rep.Segments = seg.Report()
	rep.Policy = calPolicyOut{
		Version:     pol.Version,
		BaseVersion: base.Version,
		Path:        f.out,
		ModelsPath:  f.out + ".models.json",
	}
	return &pol, nil
}

// calModelsFile is the content of <out>.models.json: the fitted models in
// the shape a policy's models section would take.
type calModelsFile struct {
	PolicyVersion  string       `json:"policy_version"`
	CalibrationEnd string       `json:"calibration_end"`
	Currency       string       `json:"currency"`
	MoneyUnit      string       `json:"money_unit"`
	Models         *clv.Model   `json:"models"`
	BGNBD          *calCountFit `json:"bgnbd_fit,omitempty"`
	MBGNBD         *calCountFit `json:"mbgnbd_fit,omitempty"`
	ParetoNBD      *calCountFit `json:"paretonbd_fit,omitempty"`
	GammaGamma     calGGFit     `json:"gamma_gamma_fit"`
	Customers      calCounts    `json:"customers"`
}

type calGGFit struct {
	LogLikelihood float64  `json:"log_likelihood"`
	StdErr        calStdEr `json:"std_err"`
}

// calWritePolicy writes the policy YAML and the models sidecar, each
// through a temporary file renamed into place.
func calWritePolicy(path string, pol *score.Policy, rep *calReport, model *clv.Model) error {
	body, err := yaml.Marshal(pol)
	if err != nil {
		return fmt.Errorf("encode policy: %w", err)
	}
	header := fmt.Sprintf("# valora scoring policy written by `valora calibrate`.\n"+
		"# Source: %s\n"+
		"# Calibration period ends %s; base policy %q.\n"+
		"# The RFM boundaries are the quintiles of the calibration data; models holds\n"+
		"# the fitted BG/NBD and Gamma-Gamma parameters (money in major units of\n"+
		"# base_currency), whose fit details are in %s.\n\n",
		rep.Source, rep.CalibrationEnd, rep.Policy.BaseVersion, filepath.Base(rep.Policy.ModelsPath))
	// The written file must load back as the same policy.
	back, err := score.ParsePolicy(append([]byte(header), body...))
	if err != nil {
		return fmt.Errorf("encoded policy does not parse back: %w", err)
	}
	if !bytes.Equal(back.Digest(), pol.Digest()) {
		return errors.New("encoded policy does not parse back to the same policy")
	}
	if err := calWriteFile(path, append([]byte(header), body...)); err != nil {
		return err
	}
	side := calModelsFile{
		PolicyVersion:  pol.Version,
		CalibrationEnd: rep.CalibrationEnd,
		Currency:       rep.Currency,
		MoneyUnit:      "major",
		Models:         model,
		BGNBD:          rep.BGNBD,
		MBGNBD:         rep.MBGNBD,
		ParetoNBD:      rep.ParetoNBD,
		GammaGamma:     calGGFit{LogLikelihood: rep.GammaGamma.LogLikelihood, StdErr: rep.GammaGamma.StdErr},
		Customers:      rep.Customers,
	}
	js, err := json.MarshalIndent(side, "", "  ")
	if err != nil {
		return fmt.Errorf("encode models: %w", err)
	}
	return calWriteFile(rep.Policy.ModelsPath, append(js, '\n'))
}

// calWriteFile writes b to path atomically: a temporary file in the same
// directory, synced, then renamed over path.
func calWriteFile(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// calScoreLine is one line of --score-out.
type calScoreLine struct {
	CustomerID        string  `json:"customer_id"`
	X                 int64   `json:"x"`
	Tx                float64 `json:"t_x"`
	T                 float64 `json:"T"`
	PAlive            float64 `json:"p_alive"`
	ExpectedPurchases float64 `json:"expected_purchases"`
	ExpectedSpend     float64 `json:"expected_spend"`
	CLV               float64 `json:"clv"`
}

// calWriteScores writes every fitted customer's evaluation at the
// calibration end, in customer id order.
func calWriteScores(path string, in *calInput, unit clv.TimeUnit, model *clv.Model) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write scores: %w", err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, c := range in.customers {
		s := clv.SummaryAt(c.x, c.first, c.last, in.calEnd, unit)
		v := model.Evaluate(s, c.meanSpend)
		if err = enc.Encode(calScoreLine{
			CustomerID: c.id, X: s.X, Tx: s.Tx, T: s.T,
			PAlive: v.PAlive, ExpectedPurchases: v.ExpectedPurchases, ExpectedSpend: v.ExpectedSpend, CLV: v.CLV,
		}); err != nil {
			break
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write scores %s: %w", path, err)
	}
	return nil
}

// writeText prints the report for a terminal.
func (r *calReport) writeText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	se := func(v *float64) string {
		if v == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.4f", *v)
	}
	fmt.Fprintf(w, "valora calibrate: %s\n", r.Source)
	fmt.Fprintf(w, "calibration period ends %s; time unit %s; money in %s (major units)\n", r.CalibrationEnd, r.TimeUnit, r.Currency)
	fmt.Fprintf(w, "customers: %d fitted, %d repeat buyers, %d with a first purchase after the end (left out)\n\n",
		r.Customers.Fitted, r.Customers.RepeatBuyers, r.Customers.FirstAfterEnd)

	for _, k := range calAllCounts {
		fit := calFitOf(r, k)
		if fit == nil {
			continue
		}
		mark := ""
		if k == r.CountModel {
			mark = ", in the policy"
		}
		rates := "alpha"
		if k == clv.CountParetoNBD {
			rates = "alpha and beta"
		}
		fmt.Fprintf(w, "%s (%s per %s%s), log-likelihood %.3f, %d iterations\n", calModelName(k), rates, r.TimeUnit, mark, fit.LogLikelihood, fit.Iterations)
		p("\tparameter\testimate\tstd. error\t\n")
		for _, v := range fit.params {
			p("\t%s\t%.4f\t%s\t\n", v.name, v.value, se(fit.StdErr[v.name]))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(w, "  P(alive) at the calibration end: mean %.3f (one-time buyers %.3f, repeat buyers %.3f); %d customers below 0.3\n",
			fit.PAlive.Mean, fit.PAlive.OneTimeBuyers, fit.PAlive.RepeatBuyers, fit.PAlive.Below30)
		if h := fit.Holdout; h != nil {
			fmt.Fprintf(w, "  holdout: %.1f repeat purchases expected, error %+.1f (%+.1f%%); per customer mean absolute error %.3f, RMSE %.3f\n",
				h.ExpectedPurchases, h.Error, 100*h.RelativeError, h.MeanAbsError, h.RMSE)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Gamma-Gamma over %d repeat buyers, log-likelihood %.3f, %d iterations\n",
		r.Customers.SpendFitted, r.GammaGamma.LogLikelihood, r.GammaGamma.Iterations)
	p("\tparameter\testimate\tstd. error\t\n")
	for _, v := range []struct {
		n string
		v float64
	}{{"p", r.GammaGamma.P}, {"q", r.GammaGamma.Q}, {"gamma", r.GammaGamma.Gamma}} {
		p("\t%s\t%.4f\t%s\t\n", v.n, v.v, se(r.GammaGamma.StdErr[v.n]))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	corr := "n/a"
	if r.GammaGamma.CorrXSpend != nil {
		corr = fmt.Sprintf("%.3f", *r.GammaGamma.CorrXSpend)
	}
	fmt.Fprintf(w, "  mean spend: model %.2f, observed %.2f; correlation of x and spend %s (the model assumes 0)\n\n",
		r.GammaGamma.MeanSpend, r.GammaGamma.ObservedMeanSpend, corr)

	fmt.Fprintf(w, "Customers by repeat purchases in the calibration period (%s)\n", calModelName(r.CountModel))
	p("\tx\tactual\tpredicted\t\n")
	for _, row := range r.Frequency {
		p("\t%s\t%d\t%.1f\t\n", row.X, row.Actual, row.Predicted)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := r.writeValidation(w, tw); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nRFM boundaries (quintiles): recency_days %v, frequency %v, monetary_minor %v\n",
		r.RFM.RecencyDays, r.RFM.Frequency, r.RFM.MonetaryMinor)
	vc := r.ValueClasses
	fmt.Fprintf(w, "Value classes (CLV over %g %ss at %g a year, minor units): high_yield CLV >= %.2f with monetary >= %d; high_potential CLV >= %.2f below it; below_zero CLV < %.2f\n",
		r.Model.Horizon, r.TimeUnit, r.Model.DiscountRate, vc.HighYieldCLVMinor, vc.HighYieldMonetaryMinor, vc.HighPotentialCLVMinor, vc.BelowZeroCLVMinor)
	pa := "off"
	if r.PAliveBelow > 0 {
		pa = fmt.Sprintf("below %g", r.PAliveBelow)
	}
	fmt.Fprintf(w, "At the calibration end under the new policy (P(alive) churn %s):\n", pa)
	for _, k := range []struct {
		name string
		m    map[string]int
	}{{"value class", r.AtEnd.ByValueClass}, {"lifecycle stage", r.AtEnd.ByLifecycleStage}} {
		keys := slices.Sorted(maps.Keys(k.m))
		parts := make([]string, len(keys))
		for i, key := range keys {
			parts[i] = fmt.Sprintf("%s %d", key, k.m[key])
		}
		fmt.Fprintf(w, "  by %s: %s\n", k.name, strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "  churned: %d (%d by P(alive) before the inactivity window)\n", r.AtEnd.Churned, r.AtEnd.ChurnedByPAlive)
	if err := writeSegments(w, r.Segments, r.Currency); err != nil {
		return err
	}
	fmt.Fprintf(w, "policy %s (from %s, with the models) written to %s; fit details to %s\n",
		r.Policy.Version, r.Policy.BaseVersion, r.Policy.Path, r.Policy.ModelsPath)
	if r.ScoreOut != "" {
		fmt.Fprintf(w, "per-customer scores written to %s\n", r.ScoreOut)
	}
	if r.Report != "" {
		fmt.Fprintf(w, "HTML report written to %s\n", r.Report)
	}
	return nil
}

// calFinite returns &v, or nil when v is NaN or infinite (JSON null).
func calFinite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// calCorrelation returns Pearson's correlation of xs and ys (NaN when
// either is constant).
func calCorrelation(xs, ys []float64) float64 {
	n := float64(len(xs))
	var mx, my float64
	for i := range xs {
		mx += xs[i] / n
		my += ys[i] / n
	}
	var sxy, sxx, syy float64
	for i := range xs {
		dx, dy := xs[i]-mx, ys[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	return sxy / math.Sqrt(sxx*syy)
}

// calParseDate parses YYYY-MM-DD (00:00 UTC) or RFC 3339.
func calParseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither YYYY-MM-DD nor RFC 3339", s)
	}
	return t, nil
}

// calReadState reads every customer of a state directory. A state keeps
// totals, so the calibration end must not be before any purchase; it
// defaults to the latest event time in the state.
func calReadState(ctx context.Context, dir string, calEnd int64, pol *score.Policy) (*calInput, error) {
	st, err := state.Open(state.Options{Dir: dir, ReadOnly: true})
	if err != nil {
		return nil, err // names the directory
	}
	defer st.Close()
	parts, err := st.Partitions()
	if err != nil {
		return nil, err
	}
	exp, _ := score.MinorUnits(pol.BaseCurrency)
	unit := math.Pow10(exp)
	var all []calCustomer
	var latest int64
	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var c schemas.Customer
		err := st.ScanCustomers(p, func(_, value []byte) error {
			if err := schemas.DecodeCustomer(value, &c); err != nil {
				return err
			}
			latest = max(latest, c.LastActivity, c.EvaluatedAt)
			if c.Purchases == 0 || c.FirstPurchase == 0 {
				return nil // a prospect
			}
			cc := calCustomer{
				id: c.CustomerID, first: c.FirstPurchase, last: c.LastPurchase, x: c.RepeatDays,
				purchases: c.Purchases, monetary: c.MonetaryMinor,
			}
			if c.MonetaryMinor > 0 {
				cc.meanSpend = float64(c.MonetaryMinor) / float64(c.Purchases) / unit
			}
			all = append(all, cc)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("scan partition %d of %s: %w", p, dir, err)
		}
	}
	if calEnd == 0 {
		calEnd = latest
	}
	in := &calInput{calEnd: calEnd, source: "state " + dir}
	var afterEnd int
	var lastPurchase int64
	for _, c := range all {
		lastPurchase = max(lastPurchase, c.last)
		switch {
		case c.first > calEnd:
			in.later++
		case c.last > calEnd:
			afterEnd++
		default:
			in.customers = append(in.customers, c)
		}
	}
	if afterEnd > 0 {
		return nil, usagef("--calibration-end %s with --state-dir: %d customers bought after it (the last purchase is at %s); a state directory keeps per-customer summaries, not the time of each purchase, so its calibration end must be at or after its last purchase; for an earlier end, calibrate with --csv",
			time.UnixMilli(calEnd).UTC().Format(time.RFC3339), afterEnd, time.UnixMilli(lastPurchase).UTC().Format(time.RFC3339))
	}
	slices.SortFunc(in.customers, func(a, b calCustomer) int { return cmp.Compare(a.id, b.id) })
	return in, nil
}

// calTxn is one transaction of a CSV: a purchase, or a refund (amount < 0),
// in base minor units.
type calTxn struct {
	at     int64
	amount int64
}

// calReadCSV reads a CSV of transactions and derives each customer's
// calibration data.
func calReadCSV(ctx context.Context, f *calibrateFlags, calEnd, holdoutEnd int64, pol *score.Policy) (*calInput, error) {
	file, err := os.Open(f.csvPath)
	if err != nil {
		return nil, fmt.Errorf("open --csv: %w", err)
	}
	defer file.Close()
	var txns map[string][]calTxn
	switch f.format {
	case "cdnow":
		txns, err = calReadCDNOW(ctx, file, pol)
	case "generic":
		txns, err = calReadGeneric(ctx, file, f, pol)
	default:
		return nil, usagef("--format %q: want cdnow or generic", f.format)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.csvPath, err)
	}
	var lastPurchase int64
	for _, ts := range txns {
		for _, t := range ts {
			if t.amount >= 0 {
				lastPurchase = max(lastPurchase, t.at)
			}
		}
	}
	if calEnd == 0 {
		calEnd = lastPurchase
	}
	in := &calInput{calEnd: calEnd, source: fmt.Sprintf("%s (%s)", f.csvPath, f.format), histories: true}
	switch {
	case holdoutEnd != 0 && holdoutEnd <= calEnd:
		return nil, usagef("--holdout-end %s: want a time after the calibration end %s",
			time.UnixMilli(holdoutEnd).UTC().Format(time.RFC3339), time.UnixMilli(calEnd).UTC().Format(time.RFC3339))
	case holdoutEnd != 0:
		in.holdoutEnd = holdoutEnd
	case lastPurchase > calEnd:
		in.holdoutEnd = lastPurchase
	}
	exp, _ := score.MinorUnits(pol.BaseCurrency)
	unit := math.Pow10(exp)
	for id, ts := range txns {
		slices.SortStableFunc(ts, func(a, b calTxn) int { return cmp.Compare(a.at, b.at) })
		c := calCustomer{id: id}
		// ts is in time order, so purchase days come in order: a day
		// differing from the previous purchase day is a new one.
		firstDay, lastDay := int64(-1), int64(-1)
		var repeatSpend int64
		for _, t := range ts {
			day := calFloorDiv(t.at, score.DayMs)
			if t.at > calEnd {
				if t.amount >= 0 && firstDay >= 0 && day != lastDay && t.at <= in.holdoutEnd {
					c.holdout++
					c.repeats = append(c.repeats, t.at)
					lastDay = day
				}
				continue
			}
			c.monetary += t.amount
			if t.amount < 0 {
				continue // a refund: monetary value only
			}
			c.purchases++
			if firstDay < 0 {
				firstDay, lastDay, c.first = day, day, t.at
			}
			if day != lastDay {
				c.x++
				c.repeats = append(c.repeats, t.at)
				lastDay = day
			}
			if day != firstDay {
				repeatSpend += t.amount
			}
			c.last = t.at
		}
		if firstDay < 0 {
			if len(ts) > 0 && ts[0].at > calEnd {
				in.later++
			}
			continue
		}
		if c.x > 0 && repeatSpend > 0 {
			c.meanSpend = float64(repeatSpend) / unit / float64(c.x)
		}
		in.customers = append(in.customers, c)
	}
	slices.SortFunc(in.customers, func(a, b calCustomer) int { return cmp.Compare(a.id, b.id) })
	return in, nil
}

// calFloorDiv returns floor(a / b) for b > 0.
func calFloorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// calReadCDNOW reads CDNOW's log (txcsv.FormatCDNOW), amounts in USD.
func calReadCDNOW(ctx context.Context, r io.Reader, pol *score.Policy) (map[string][]calTxn, error) {
	return calReadTxns(ctx, r, &txcsv.Config{Format: txcsv.FormatCDNOW, DefaultCurrency: "USD"}, pol)
}

// calReadGeneric reads a delimited file with a header line, mapping its
// columns with the --csv-* flags (the mapping of `valora import`).
func calReadGeneric(ctx context.Context, r io.Reader, f *calibrateFlags, pol *score.Policy) (map[string][]calTxn, error) {
	delim, _ := txcsv.ParseDelimiter(f.delimiter)
	return calReadTxns(ctx, r, &txcsv.Config{
		Format: txcsv.FormatGeneric, Delimiter: delim, TimeLayout: f.timeLayout, DefaultCurrency: pol.BaseCurrency,
		Columns: txcsv.Columns{Customer: f.colCustomer, Time: f.colTime, Amount: f.colAmount, Currency: f.colCurrency},
	}, pol)
}

// calReadTxns reads every row with the reader of `valora import`; the
// first bad row is an error. Amounts become base minor units, negative
// for a refund.
func calReadTxns(ctx context.Context, r io.Reader, m *txcsv.Config, pol *score.Policy) (map[string][]calTxn, error) {
	tr, err := txcsv.NewReader(r, m)
	if err != nil {
		return nil, csvUsage(err)
	}
	out := map[string][]calTxn{}
	var t txcsv.Txn
	for n := 1; ; n++ {
		if n%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if err := tr.Next(&t); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		amount, err := pol.ToBase(t.Amount, t.Currency)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", t.Line, err)
		}
		if t.Kind == txcsv.Refund {
			amount = -amount
		}
		out[t.Customer] = append(out[t.Customer], calTxn{at: t.At, amount: amount})
	}
}

// writeSegments prints the segment economics as two tables, money in major
// units of currency: per tier and value class, then per treatment.
func writeSegments(w io.Writer, s score.SegmentReport, currency string) error {
	exp, _ := score.MinorUnits(currency)
	major := math.Pow10(exp)
	fmt.Fprintf(w, "\nSegment economics over %.1f months (%s; cost = the treatment's relationship):\n", s.HorizonMonths, currency)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	opt := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprintf("%.0f", *v/major)
	}
	row := func(a, b string, r score.SegmentRow) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%s\t%.0f\t%s\t\n", a, b, r.Customers, float64(r.MonetaryMinor)/major, opt(r.CLVMinor), r.CostMinor/major, opt(r.NetMinor))
	}
	fmt.Fprintf(tw, "tier\tvalue class\tcustomers\tmonetary\tCLV\tcost\tCLV - cost\t\n")
	for _, r := range s.ByTierClass {
		row(r.Tier, r.ValueClass, r)
	}
	fmt.Fprintf(tw, "treatment\trelationship\t\t\t\t\t\t\n")
	for _, r := range s.ByTreatment {
		row(r.Treatment, r.Relationship, r)
	}
	return tw.Flush()
}
