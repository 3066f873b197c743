package calibrate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"valora/processor/clv"
	"valora/processor/score"
	"valora/schemas"
)

// Options are the settings of a calibration. Validate checks them; Run
// calls Validate before it fits anything.
type Options struct {
	// Base is the policy the calibrated one starts from: its settings are
	// kept, its RFM boundaries, models and value classes replaced.
	Base *score.Policy
	// Unit is the time unit of the models.
	Unit clv.TimeUnit
	// Counts are the count models to fit, in report order; the policy
	// carries the one with the highest log-likelihood (the first on a tie).
	Counts []clv.CountModel
	// Horizon is the number of Units over which expected purchases and CLV
	// are counted; DiscountRate the CLV's annual discount rate.
	Horizon, DiscountRate float64
	// PolicyVersion names the new policy; empty: the base version followed
	// by -cal and the calibration end as YYYYMMDD.
	PolicyVersion string
	// PAliveBelow is the new policy's churn.p_alive_below; -1 keeps the
	// base policy's.
	PAliveBelow float64
	// CostToServe is the cost of serving a customer over the horizon, in
	// major units of the base currency: a CLV below it is below_zero. -1
	// takes the bottom quintile of CLV.
	CostToServe float64
	// PolicyPath is where the caller writes the policy (WritePolicy); the
	// report names it and the models file beside it.
	PolicyPath string
}

// Validate reports the first option that cannot work, naming it.
func (o *Options) Validate() error {
	switch {
	case o.Base == nil:
		return errors.New("options: Base: no base policy")
	case o.Unit != clv.Day && o.Unit != clv.Week:
		return fmt.Errorf("options: Unit %q: want %s or %s", o.Unit, clv.Day, clv.Week)
	case len(o.Counts) == 0:
		return errors.New("options: Counts: no count model")
	case !(o.Horizon > 0) || math.IsInf(o.Horizon, 1):
		return fmt.Errorf("options: Horizon %v: want a positive number of %ss", o.Horizon, o.Unit)
	case !(o.DiscountRate >= 0 && o.DiscountRate <= clv.MaxDiscountRate):
		return fmt.Errorf("options: DiscountRate %v: want an annual rate in 0..%v", o.DiscountRate, clv.MaxDiscountRate)
	case o.PolicyVersion != "" && strings.TrimSpace(o.PolicyVersion) == "":
		return fmt.Errorf("options: PolicyVersion %q: blank", o.PolicyVersion)
	case o.PAliveBelow != -1 && !(o.PAliveBelow >= 0 && o.PAliveBelow < 1):
		return fmt.Errorf("options: PAliveBelow %v: want a probability in [0, 1), or -1", o.PAliveBelow)
	case o.CostToServe != -1 && !(o.CostToServe >= 0) || math.IsInf(o.CostToServe, 1):
		return fmt.Errorf("options: CostToServe %v: want a finite amount >= 0, or -1", o.CostToServe)
	case o.PolicyPath == "":
		return errors.New("options: PolicyPath: empty")
	}
	for _, k := range o.Counts {
		if !slices.Contains(AllCounts, k) {
			return fmt.Errorf("options: Counts: unknown count model %q", k)
		}
	}
	return nil
}

// Result is what Run returns: the report, the calibrated policy (validated)
// and the model it carries.
type Result struct {
	Report *Report
	Policy *score.Policy
	Model  *clv.Model
}

// Run fits the models to in's customers and derives the calibrated policy.
// It writes nothing: WritePolicy, WriteScores and HTML do, as the caller
// chooses.
func Run(in *Input, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	rep, model, err := fitModels(in, &o)
	if err != nil {
		return nil, err
	}
	pol, err := newPolicy(rep, &o, in, model)
	if err != nil {
		return nil, err
	}
	return &Result{Report: rep, Policy: pol, Model: model}, nil
}

// customer is one customer's calibration data, from either input.
type customer struct {
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

// Input is the customers of a calibration and its periods, as ReadCSV or
// ReadState derive them; Run only reads it.
type Input struct {
	customers []customer
	// later counts the customers whose first purchase is after the
	// calibration end (left out).
	later int
	// calEnd is the calibration end used; holdoutEnd the end of the
	// holdout period: the holdout end asked for, else the last purchase after calEnd
	// (0: no holdout data).
	calEnd, holdoutEnd int64
	source             string
	// histories is true when each customer's repeats are known (CSV
	// input).
	histories bool
}

// histBuckets is the number of single-x rows of the repeat-purchase
// table; the last row counts histBuckets or more.
const histBuckets = 7

// fitModels fits the models and computes the RFM boundaries and the
// diagnostics.
func fitModels(in *Input, o *Options) (*Report, *clv.Model, error) {
	unit, base, counts := o.Unit, o.Base, o.Counts
	rep := &Report{
		Source:         in.source,
		CalibrationEnd: time.UnixMilli(in.calEnd).UTC().Format(time.RFC3339),
		TimeUnit:       unit,
		Currency:       base.BaseCurrency,
		Model:          ModelSummary{Horizon: o.Horizon, DiscountRate: o.DiscountRate},
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

	fits, err := fitCounts(sums, counts)
	if err != nil {
		return nil, nil, err
	}
	rep.CountModel = fits.chosen
	rep.BGNBD, rep.MBGNBD, rep.ParetoNBD = fits.fits[clv.CountBGNBD], fits.fits[clv.CountMBGNBD], fits.fits[clv.CountParetoNBD]
	gg, err := clv.FitGammaGamma(spends)
	if err != nil {
		return nil, nil, err
	}
	rep.GammaGamma = GammaGammaFit{
		P: gg.Params.P, Q: gg.Params.Q, Gamma: gg.Params.Gamma,
		LogLikelihood: gg.LogLikelihood,
		StdErr: StdErrs{"p": finite(gg.StdErr.P), "q": finite(gg.StdErr.Q),
			"gamma": finite(gg.StdErr.Gamma)},
		Iterations: gg.Iterations,
		MeanSpend:  gg.Params.MeanSpend(),
	}
	xs, ms := make([]float64, len(spends)), make([]float64, len(spends))
	for i, s := range spends {
		xs[i], ms[i] = float64(s.X), s.Mean
		rep.GammaGamma.ObservedMeanSpend += s.Mean / float64(len(spends))
	}
	rep.GammaGamma.CorrXSpend = finite(correlation(xs, ms))

	// Repeat purchases in the period: observed against expected.
	ts := make([]float64, len(sums))
	actual := make([]int, histBuckets+1)
	for i, s := range sums {
		ts[i] = s.T
		actual[min(s.X, histBuckets)]++
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
		RecencyDays:   quintileBounds(rec),
		Frequency:     quintileBounds(freq),
		MonetaryMinor: quintileBounds(mon),
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
			Horizon:      o.Horizon,
			DiscountRate: o.DiscountRate,
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
	pred := model.RepeatHistogram(ts, histBuckets)
	for x := range histBuckets + 1 {
		label := strconv.Itoa(x)
		if x == histBuckets {
			label += "+"
		}
		rep.Frequency = append(rep.Frequency, FreqRow{X: label, Actual: actual[x], Predicted: pred[x]})
	}
	pAlives(rep, in, sums, models)
	rep.models = models
	for _, s := range sums {
		rep.maxT = max(rep.maxT, s.T)
	}
	rep.Holdout = holdoutOf(rep, in, sums, unit, models, model)
	rep.Tracking = trackingOf(in, unit, models, model)
	return rep, model, nil
}

// quintileBounds returns the four RFM boundaries of values: boundary k
// is the smallest value v with at least (k+1)/5 of the values <= v (the
// value at rank ceil((k+1)n/5) in ascending order); a boundary not above
// its predecessor is raised to the predecessor plus 1, and the first is at
// least 0, so the boundaries are strictly increasing and non-negative
// whatever the ties. values is sorted in place.
func quintileBounds(values []int64) []int64 {
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

// Distribution counts the fitted customers by what the new policy
// derives for them at the calibration end.
type Distribution struct {
	ByValueClass     map[string]int `json:"by_value_class"` // "none" for no class
	ByLifecycleStage map[string]int `json:"by_lifecycle_stage"`
	Churned          int            `json:"churned"`
	// ChurnedByPAlive are churned although idle for less than
	// churn.inactivity_days: the P(alive) rule's doing.
	ChurnedByPAlive int `json:"churned_by_p_alive"`
}

// customerState is the state the processor would hold for c (purchases
// only: a CSV has no interactions, a state directory's interactions are
// left out).
func customerState(c *customer) *schemas.Customer {
	return &schemas.Customer{
		CustomerID: c.id, FirstSeen: c.first, LastActivity: c.last, FirstPurchase: c.first, LastPurchase: c.last,
		Purchases: c.purchases, RepeatDays: c.x, MonetaryMinor: c.monetary,
	}
}

// valueClasses sets the value class thresholds from the customers' CLV
// at the calibration end, evaluated as the processor does.
func valueClasses(in *Input, model *clv.Model, minorPerMajor float64, o *Options) score.ValueClasses {
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
	if o.CostToServe >= 0 {
		vc.BelowZeroCLVMinor = math.Round(o.CostToServe * minorPerMajor)
	}
	vc.BelowZeroCLVMinor = min(vc.BelowZeroCLVMinor, vc.HighYieldCLVMinor)
	return vc
}

// newPolicy returns the base policy with the new boundaries, models, value
// classes and version, validated, and fills the report's policy part.
func newPolicy(rep *Report, o *Options, in *Input, model *clv.Model) (*score.Policy, error) {
	base := o.Base
	pol := *base
	pol.Scores = rep.RFM
	pol.Version = o.PolicyVersion
	if pol.Version == "" {
		pol.Version = base.Version + "-cal" + time.UnixMilli(in.calEnd).UTC().Format("20060102")
	}
	m := *model
	pol.Models = &m
	exp, _ := score.MinorUnits(base.BaseCurrency)
	vc := valueClasses(in, model, math.Pow10(exp), o)
	pol.ValueClasses = &vc
	if o.PAliveBelow >= 0 {
		pol.Churn.PAliveBelow = o.PAliveBelow
	}
	if err := pol.Validate(); err != nil {
		return nil, fmt.Errorf("calibrated policy is invalid: %w", err)
	}
	rep.ValueClasses, rep.PAliveBelow = vc, pol.Churn.PAliveBelow
	rep.AtEnd = Distribution{ByValueClass: map[string]int{}, ByLifecycleStage: map[string]int{}}
	inactivity := pol.Churn.InactivityDays * score.DayMs
	seg := pol.NewSegments()
	for i := range in.customers {
		c := customerState(&in.customers[i])
		seg.Add(c, outcomeValue(pol.Evaluate(c, in.calEnd)))
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
	rep.Policy = PolicyOut{
		Version:     pol.Version,
		BaseVersion: base.Version,
		Path:        o.PolicyPath,
		ModelsPath:  o.PolicyPath + ".models.json",
	}
	return &pol, nil
}

// modelsFile is the content of <out>.models.json: the fitted models in
// the shape a policy's models section would take.
type modelsFile struct {
	PolicyVersion  string         `json:"policy_version"`
	CalibrationEnd string         `json:"calibration_end"`
	Currency       string         `json:"currency"`
	MoneyUnit      string         `json:"money_unit"`
	Models         *clv.Model     `json:"models"`
	BGNBD          *CountFit      `json:"bgnbd_fit,omitempty"`
	MBGNBD         *CountFit      `json:"mbgnbd_fit,omitempty"`
	ParetoNBD      *CountFit      `json:"paretonbd_fit,omitempty"`
	GammaGamma     ggFit          `json:"gamma_gamma_fit"`
	Customers      CustomerCounts `json:"customers"`
}

type ggFit struct {
	LogLikelihood float64 `json:"log_likelihood"`
	StdErr        StdErrs `json:"std_err"`
}

// WritePolicy writes the policy YAML and the models sidecar, each
// through a temporary file renamed into place.
func WritePolicy(path string, pol *score.Policy, rep *Report, model *clv.Model) error {
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
	if err := WriteFile(path, append([]byte(header), body...)); err != nil {
		return err
	}
	side := modelsFile{
		PolicyVersion:  pol.Version,
		CalibrationEnd: rep.CalibrationEnd,
		Currency:       rep.Currency,
		MoneyUnit:      "major",
		Models:         model,
		BGNBD:          rep.BGNBD,
		MBGNBD:         rep.MBGNBD,
		ParetoNBD:      rep.ParetoNBD,
		GammaGamma:     ggFit{LogLikelihood: rep.GammaGamma.LogLikelihood, StdErr: rep.GammaGamma.StdErr},
		Customers:      rep.Customers,
	}
	js, err := json.MarshalIndent(side, "", "  ")
	if err != nil {
		return fmt.Errorf("encode models: %w", err)
	}
	return WriteFile(rep.Policy.ModelsPath, append(js, '\n'))
}

// WriteFile writes b to path atomically: a temporary file in the same
// directory, synced, then renamed over path.
func WriteFile(path string, b []byte) error {
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

// scoreLine is one line of WriteScores.
type scoreLine struct {
	CustomerID        string  `json:"customer_id"`
	X                 int64   `json:"x"`
	Tx                float64 `json:"t_x"`
	T                 float64 `json:"T"`
	PAlive            float64 `json:"p_alive"`
	ExpectedPurchases float64 `json:"expected_purchases"`
	ExpectedSpend     float64 `json:"expected_spend"`
	CLV               float64 `json:"clv"`
}

// WriteScores writes every fitted customer's evaluation at the
// calibration end, in customer id order.
func WriteScores(path string, in *Input, unit clv.TimeUnit, model *clv.Model) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write scores: %w", err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, c := range in.customers {
		s := clv.SummaryAt(c.x, c.first, c.last, in.calEnd, unit)
		v := model.Evaluate(s, c.meanSpend)
		if err = enc.Encode(scoreLine{
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

// finite returns &v, or nil when v is NaN or infinite (JSON null).
func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// correlation returns Pearson's correlation of xs and ys (NaN when
// either is constant).
func correlation(xs, ys []float64) float64 {
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

// outcomeValue returns the models' evaluation an Outcome holds, or nil.
func outcomeValue(o score.Outcome) *clv.Value {
	if !o.Valued {
		return nil
	}
	return &o.Value
}
