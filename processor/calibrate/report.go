package calibrate

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"valora/processor/clv"
	"valora/processor/score"
)

// Report is the report of a calibration, printed as text (WriteText) or
// JSON (its field names are part of the output format).
type Report struct {
	Source         string         `json:"source"`
	CalibrationEnd string         `json:"calibration_end"`
	TimeUnit       clv.TimeUnit   `json:"time_unit"`
	Currency       string         `json:"currency"`
	Customers      CustomerCounts `json:"customers"`
	// CountModel is the count model the policy carries (of several fitted,
	// the one with the higher log-likelihood); BGNBD and MBGNBD are
	// the fits made.
	CountModel clv.CountModel `json:"count_model"`
	BGNBD      *CountFit      `json:"bgnbd,omitempty"`
	MBGNBD     *CountFit      `json:"mbgnbd,omitempty"`
	ParetoNBD  *CountFit      `json:"paretonbd,omitempty"`
	GammaGamma GammaGammaFit  `json:"gamma_gamma"`
	Frequency  []FreqRow      `json:"repeat_purchases"`
	Holdout    *Holdout       `json:"holdout,omitempty"`
	Tracking   *Tracking      `json:"weekly_tracking,omitempty"`
	RFM        score.Scores   `json:"rfm_boundaries"`
	Model      ModelSummary   `json:"model"`
	Policy     PolicyOut      `json:"policy"`
	// ValueClasses and PAliveBelow are the new policy's; AtEnd is what it
	// makes of the fitted customers at the calibration end.
	ValueClasses score.ValueClasses `json:"value_classes"`
	PAliveBelow  float64            `json:"p_alive_below"`
	AtEnd        Distribution       `json:"at_calibration_end"`
	// Segments totals value and relationship cost at the calibration end
	// under the new policy.
	Segments score.SegmentReport `json:"segments"`
	// ScoreOut and Report name the files the caller wrote the scores and
	// the HTML report to, if any.
	ScoreOut string `json:"score_out,omitempty"`
	Report   string `json:"report,omitempty"`

	// models are the fitted count models, each a validated Model, and
	// maxT the longest observation (T) at the calibration end: for
	// the HTML report.
	models []*clv.Model
	maxT   float64
}

type CustomerCounts struct {
	// Fitted customers made their first purchase by the calibration end.
	Fitted       int `json:"fitted"`
	RepeatBuyers int `json:"repeat_buyers"`
	// FirstAfterEnd first bought after the calibration end (left out).
	FirstAfterEnd int `json:"first_purchase_after_end"`
	// SpendFitted repeat buyers entered the Gamma-Gamma fit; the others had
	// no positive mean spend.
	SpendFitted int `json:"spend_fitted"`
}

// CountFit is the fit of a count model: r, alpha, a and b for BG/NBD
// and MBG/NBD, r, alpha, s and beta for Pareto/NBD.
type CountFit struct {
	R             float64 `json:"r"`
	Alpha         float64 `json:"alpha"`
	A             float64 `json:"a,omitempty"`
	B             float64 `json:"b,omitempty"`
	S             float64 `json:"s,omitempty"`
	Beta          float64 `json:"beta,omitempty"`
	LogLikelihood float64 `json:"log_likelihood"`
	StdErr        StdErrs `json:"std_err"`
	Iterations    int     `json:"iterations"`
	// PAlive summarises P(alive) at the calibration end.
	PAlive PAliveSummary `json:"p_alive"`
	// Holdout is the model's error over the holdout period (CSV input
	// with purchases after the calibration end).
	Holdout *HoldoutFit `json:"holdout,omitempty"`

	params []param // in the model's order
}

type GammaGammaFit struct {
	P             float64 `json:"p"`
	Q             float64 `json:"q"`
	Gamma         float64 `json:"gamma"`
	LogLikelihood float64 `json:"log_likelihood"`
	StdErr        StdErrs `json:"std_err"`
	Iterations    int     `json:"iterations"`
	// MeanSpend is the model's population mean spend; ObservedMeanSpend
	// the mean of the fitted customers' mean spends.
	MeanSpend         float64 `json:"mean_spend"`
	ObservedMeanSpend float64 `json:"observed_mean_spend"`
	// CorrXSpend is the correlation between x and the mean spend across
	// the fitted customers: the model assumes they are independent.
	CorrXSpend *float64 `json:"corr_x_spend"`
}

// StdErrs maps parameter names to standard errors; null where the
// information matrix is not positive definite.
type StdErrs map[string]*float64

type FreqRow struct {
	// X is the number of repeat purchases; the last row, "7+", counts 7 or
	// more.
	X         string  `json:"x"`
	Actual    int     `json:"actual"`
	Predicted float64 `json:"predicted"`
}

type ModelSummary struct {
	Horizon      float64 `json:"horizon"`
	DiscountRate float64 `json:"discount_rate"`
}

type PolicyOut struct {
	Version     string `json:"policy_version"`
	BaseVersion string `json:"base_policy_version"`
	Path        string `json:"path"`
	ModelsPath  string `json:"models_path"`
}

// WriteText prints the report for a terminal.
func (r *Report) WriteText(w io.Writer) error {
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

	for _, k := range AllCounts {
		fit := fitOf(r, k)
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
		fmt.Fprintf(w, "%s (%s per %s%s), log-likelihood %.3f, %d iterations\n", modelName(k), rates, r.TimeUnit, mark, fit.LogLikelihood, fit.Iterations)
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

	fmt.Fprintf(w, "Customers by repeat purchases in the calibration period (%s)\n", modelName(r.CountModel))
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
