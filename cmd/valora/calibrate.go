package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"valora/processor/calibrate"
	"valora/processor/clv"
	"valora/processor/score"
	"valora/processor/txcsv"
	"valora/state"
)

const calibrateSummary = `Fit BG/NBD (or MBG/NBD or Pareto/NBD), Gamma-Gamma and the RFM score
boundaries over a customer base, print a report, and write a new policy with those boundaries and
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

	in, err := calRead(ctx, &f, calEnd, holdoutEnd, base)
	if err != nil {
		return err
	}
	res, err := calibrate.Run(in, calibrate.Options{
		Base: base, Unit: unit, Counts: counts, Horizon: f.horizon, DiscountRate: f.discountRate,
		PolicyVersion: f.policyVersion, PAliveBelow: f.pAliveBelow, CostToServe: f.costToServe, PolicyPath: f.out,
	})
	if err != nil {
		return err
	}
	rep := res.Report
	if err := calibrate.WritePolicy(f.out, res.Policy, rep, res.Model); err != nil {
		return err
	}
	if f.scoreOut != "" {
		if err := calibrate.WriteScores(f.scoreOut, in, unit, res.Model); err != nil {
			return err
		}
		rep.ScoreOut = f.scoreOut
	}
	if f.report != "" {
		if err := calibrate.WriteFile(f.report, calibrate.HTML(rep, res.Model)); err != nil {
			return err
		}
		rep.Report = f.report
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(stdout)
}

// calRead reads the customers of --state-dir or --csv, turning what the
// input says of the periods into usage errors that name the flags.
func calRead(ctx context.Context, f *calibrateFlags, calEnd, holdoutEnd int64, base *score.Policy) (*calibrate.Input, error) {
	if f.stateDir != "" {
		st, err := state.Open(state.Options{Dir: f.stateDir, ReadOnly: true})
		if err != nil {
			return nil, err // names the directory
		}
		defer st.Close()
		in, err := calibrate.ReadState(ctx, st, f.stateDir, calEnd, base)
		if se := (*calibrate.StateEndError)(nil); errors.As(err, &se) {
			return nil, usagef("--calibration-end %s with --state-dir: %d customers bought after it (the last purchase is at %s); a state directory keeps per-customer summaries, not the time of each purchase, so its calibration end must be at or after its last purchase; for an earlier end, calibrate with --csv",
				time.UnixMilli(se.CalEnd).UTC().Format(time.RFC3339), se.After, time.UnixMilli(se.LastPurchase).UTC().Format(time.RFC3339))
		}
		return in, err
	}
	file, err := os.Open(f.csvPath)
	if err != nil {
		return nil, fmt.Errorf("open --csv: %w", err)
	}
	defer file.Close()
	// A CDNOW log is in USD; a generic file's amounts without a currency
	// column are in the policy's base currency.
	c := &txcsv.Config{Format: txcsv.FormatCDNOW, DefaultCurrency: "USD"}
	if f.format == txcsv.FormatGeneric {
		delim, _ := txcsv.ParseDelimiter(f.delimiter)
		c = &txcsv.Config{
			Format: txcsv.FormatGeneric, Delimiter: delim, TimeLayout: f.timeLayout, DefaultCurrency: base.BaseCurrency,
			Columns: txcsv.Columns{Customer: f.colCustomer, Time: f.colTime, Amount: f.colAmount, Currency: f.colCurrency},
		}
	}
	in, err := calibrate.ReadCSV(ctx, file, c, fmt.Sprintf("%s (%s)", f.csvPath, f.format), calEnd, holdoutEnd, base)
	if he := (*calibrate.HoldoutEndError)(nil); errors.As(err, &he) {
		return nil, usagef("--holdout-end %s: want a time after the calibration end %s",
			time.UnixMilli(he.HoldoutEnd).UTC().Format(time.RFC3339), time.UnixMilli(he.CalEnd).UTC().Format(time.RFC3339))
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.csvPath, csvUsage(err))
	}
	return in, nil
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

// calCountModels returns the count models --model asks for, in report
// order.
func calCountModels(s string) ([]clv.CountModel, error) {
	if s == "all" {
		return slices.Clone(calibrate.AllCounts), nil
	}
	k, err := clv.ParseCountModel(s)
	if err != nil {
		return nil, usagef("--model %q: want bgnbd, mbgnbd, paretonbd or all", s)
	}
	return []clv.CountModel{k}, nil
}
