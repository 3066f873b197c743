package calibrate

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"valora/processor/clv"
	"valora/processor/score"
)

// AllCounts are the count models in report order.
var AllCounts = []clv.CountModel{clv.CountBGNBD, clv.CountMBGNBD, clv.CountParetoNBD}

// countFits holds the count model fits of fitCounts.
type countFits struct {
	fits map[clv.CountModel]*CountFit
	// set puts a fit's parameters into a Model.
	set map[clv.CountModel]func(*clv.Model)
	// chosen is the model with the highest log-likelihood (all have four
	// parameters, so it also has the lowest AIC and BIC); the first of
	// counts on a tie.
	chosen clv.CountModel
}

// fitCounts fits each of counts to the summaries.
func fitCounts(sums []clv.Summary, counts []clv.CountModel) (*countFits, error) {
	out := &countFits{fits: map[clv.CountModel]*CountFit{}, set: map[clv.CountModel]func(*clv.Model){}}
	best := math.Inf(-1)
	for _, k := range counts {
		fit := &CountFit{}
		switch k {
		case clv.CountMBGNBD:
			m, err := clv.FitMBGNBD(sums)
			if err != nil {
				return nil, err
			}
			fit.params = []param{{"r", m.Params.R, m.StdErr.R}, {"alpha", m.Params.Alpha, m.StdErr.Alpha},
				{"a", m.Params.A, m.StdErr.A}, {"b", m.Params.B, m.StdErr.B}}
			fit.LogLikelihood, fit.Iterations = m.LogLikelihood, m.Iterations
			out.set[k] = func(c *clv.Model) { p := m.Params; c.MBGNBD = &p }
		case clv.CountParetoNBD:
			m, err := clv.FitParetoNBD(sums)
			if err != nil {
				return nil, err
			}
			fit.params = []param{{"r", m.Params.R, m.StdErr.R}, {"alpha", m.Params.Alpha, m.StdErr.Alpha},
				{"s", m.Params.S, m.StdErr.S}, {"beta", m.Params.Beta, m.StdErr.Beta}}
			fit.LogLikelihood, fit.Iterations = m.LogLikelihood, m.Iterations
			out.set[k] = func(c *clv.Model) { p := m.Params; c.ParetoNBD = &p }
		default:
			m, err := clv.FitBGNBD(sums)
			if err != nil {
				return nil, err
			}
			fit.params = []param{{"r", m.Params.R, m.StdErr.R}, {"alpha", m.Params.Alpha, m.StdErr.Alpha},
				{"a", m.Params.A, m.StdErr.A}, {"b", m.Params.B, m.StdErr.B}}
			fit.LogLikelihood, fit.Iterations = m.LogLikelihood, m.Iterations
			out.set[k] = func(c *clv.Model) { c.BGNBD = m.Params }
		}
		fit.StdErr = StdErrs{}
		for _, p := range fit.params {
			fit.StdErr[p.name] = finite(p.se)
			switch p.name {
			case "r":
				fit.R = p.value
			case "alpha":
				fit.Alpha = p.value
			case "a":
				fit.A = p.value
			case "b":
				fit.B = p.value
			case "s":
				fit.S = p.value
			case "beta":
				fit.Beta = p.value
			}
		}
		out.fits[k] = fit
		if fit.LogLikelihood > best {
			best, out.chosen = fit.LogLikelihood, k
		}
	}
	return out, nil
}

// param is a fitted parameter with its standard error (NaN: none).
type param struct {
	name      string
	value, se float64
}

// fitOf returns the report's fit of count model k, nil if not fitted.
func fitOf(rep *Report, k clv.CountModel) *CountFit {
	switch k {
	case clv.CountMBGNBD:
		return rep.MBGNBD
	case clv.CountParetoNBD:
		return rep.ParetoNBD
	}
	return rep.BGNBD
}

// PAliveSummary summarises a model's P(alive) over the fitted customers at the
// calibration end.
type PAliveSummary struct {
	// Mean is over every customer; OneTimeBuyers over those without a
	// repeat purchase (1 under BG/NBD), RepeatBuyers over the others.
	Mean          float64 `json:"mean"`
	OneTimeBuyers float64 `json:"mean_one_time_buyers"`
	RepeatBuyers  float64 `json:"mean_repeat_buyers"`
	// Below30 counts the customers with P(alive) < 0.3.
	Below30 int `json:"below_0_3"`
}

// pAlives fills each fit's P(alive) summary.
func pAlives(rep *Report, in *Input, sums []clv.Summary, models []*clv.Model) {
	for _, m := range models {
		var p PAliveSummary
		var one, rpt int
		for _, s := range sums {
			pa := m.PAlive(s)
			p.Mean += pa
			if s.X == 0 {
				p.OneTimeBuyers += pa
				one++
			} else {
				p.RepeatBuyers += pa
				rpt++
			}
			if pa < 0.3 {
				p.Below30++
			}
		}
		p.Mean /= float64(max(1, len(sums)))
		p.OneTimeBuyers /= float64(max(1, one))
		p.RepeatBuyers /= float64(max(1, rpt))
		fitOf(rep, m.Count).PAlive = p
	}
}

// Holdout compares the models' conditional expectations with the
// repeat purchase days of the fitted customers in the holdout period.
type Holdout struct {
	End    string  `json:"end"`
	Length float64 `json:"length"` // in the time unit
	// ActualPurchases is the number of repeat purchase days in the
	// holdout; ExpectedPurchases the sum of E[Y(length) | x, t_x, T] of the
	// policy's model.
	ActualPurchases   int64   `json:"actual_purchases"`
	ExpectedPurchases float64 `json:"expected_purchases"`
	// ByX groups the customers by their calibration x (0..6, 7+): the
	// conditional-expectation check.
	ByX []HoldoutRow `json:"by_calibration_x"`
}

type HoldoutRow struct {
	X         string `json:"x"`
	Customers int    `json:"customers"`
	// ActualMean and ExpectedMean are per customer; ExpectedMean is the
	// policy's model's, ExpectedMeanByModel every fitted model's.
	ActualMean          float64                    `json:"actual_mean"`
	ExpectedMean        float64                    `json:"expected_mean"`
	ExpectedMeanByModel map[clv.CountModel]float64 `json:"expected_mean_by_model"`
}

// HoldoutFit is one model's error over the holdout.
type HoldoutFit struct {
	ExpectedPurchases float64 `json:"expected_purchases"`
	// Error is expected minus actual repeat purchases, RelativeError that
	// over the actual; MeanAbsError the mean over customers of |expected
	// - actual|, and RMSE the root mean square.
	Error         float64 `json:"error"`
	RelativeError float64 `json:"relative_error"`
	MeanAbsError  float64 `json:"mean_abs_error"`
	RMSE          float64 `json:"rmse"`
}

// holdoutOf returns the holdout comparison, nil without holdout data,
// and fills each of rep's fits' holdout error.
func holdoutOf(rep *Report, in *Input, sums []clv.Summary, unit clv.TimeUnit, models []*clv.Model, chosen *clv.Model) *Holdout {
	if in.holdoutEnd <= in.calEnd {
		return nil
	}
	h := &Holdout{
		End:    time.UnixMilli(in.holdoutEnd).UTC().Format(time.RFC3339),
		Length: unit.Span(in.calEnd, in.holdoutEnd),
	}
	rows := make([]HoldoutRow, histBuckets+1)
	for x := range rows {
		r := &rows[x]
		r.X = strconv.Itoa(x)
		if x == histBuckets {
			r.X += "+"
		}
		r.ExpectedMeanByModel = map[clv.CountModel]float64{}
	}
	for i, s := range sums {
		y := in.customers[i].holdout
		h.ActualPurchases += y
		r := &rows[min(s.X, histBuckets)]
		r.Customers++
		r.ActualMean += float64(y)
	}
	for _, m := range models {
		fit := &HoldoutFit{}
		for i, s := range sums {
			e := m.ExpectedPurchases(s, h.Length)
			d := e - float64(in.customers[i].holdout)
			fit.ExpectedPurchases += e
			fit.MeanAbsError += math.Abs(d)
			fit.RMSE += d * d
			rows[min(s.X, histBuckets)].ExpectedMeanByModel[m.Count] += e
		}
		n := float64(max(1, len(sums)))
		fit.Error = fit.ExpectedPurchases - float64(h.ActualPurchases)
		fit.RelativeError = fit.Error / float64(max(1, h.ActualPurchases))
		fit.MeanAbsError /= n
		fit.RMSE = math.Sqrt(fit.RMSE / n)
		if m == chosen {
			h.ExpectedPurchases = fit.ExpectedPurchases
		}
		fitOf(rep, m.Count).Holdout = fit
	}
	for x := range rows {
		r := &rows[x]
		if r.Customers == 0 {
			continue
		}
		r.ActualMean /= float64(r.Customers)
		for k := range r.ExpectedMeanByModel {
			r.ExpectedMeanByModel[k] /= float64(r.Customers)
		}
		r.ExpectedMean = r.ExpectedMeanByModel[chosen.Count]
	}
	h.ByX = rows
	return h
}

// Tracking is the weekly tracking of cumulative repeat purchases over
// the calibration and holdout periods: the actual count against the
// models' unconditional expectation E[X(t)], summed over the fitted
// customers grouped by the day of their first purchase.
type Tracking struct {
	// Start is the start of week 1, a whole number of weeks before the
	// calibration end and at or before the first purchase. The first
	// CalibrationWeeks weeks make the calibration period: the last of
	// them ends at the calibration end.
	Start            string `json:"start"`
	CalibrationWeeks int    `json:"calibration_weeks"`
	Weeks            []Week `json:"weeks"`
}

type Week struct {
	Week int `json:"week"`
	// End is the end of the week (the holdout end for a last, shorter
	// week); repeat purchase days up to and including it are counted.
	End string `json:"end"`
	// Actual is the cumulative number of repeat purchase days; Expected
	// the policy's model's expectation, ExpectedByModel every fitted
	// model's.
	Actual          int64                      `json:"actual"`
	Expected        float64                    `json:"expected"`
	ExpectedByModel map[clv.CountModel]float64 `json:"expected_by_model"`
}

// trackingOf returns the weekly tracking, nil without purchase
// histories (a state directory) or customers.
func trackingOf(in *Input, unit clv.TimeUnit, models []*clv.Model, chosen *clv.Model) *Tracking {
	if !in.histories || len(in.customers) == 0 {
		return nil
	}
	const weekMs = 7 * score.DayMs
	minFirst := in.customers[0].first
	// Cohorts by first purchase day: count and sum of first purchase times.
	type cohort struct {
		n     int
		first float64
	}
	byDay := map[int64]*cohort{}
	var repeats []int64
	for i := range in.customers {
		c := &in.customers[i]
		minFirst = min(minFirst, c.first)
		day := floorDiv(c.first, score.DayMs)
		co := byDay[day]
		if co == nil {
			co = &cohort{}
			byDay[day] = co
		}
		co.n++
		co.first += float64(c.first)
		repeats = append(repeats, c.repeats...)
	}
	slices.Sort(repeats)
	cohorts := make([]cohort, 0, len(byDay))
	for _, day := range slices.Sorted(maps.Keys(byDay)) {
		co := byDay[day]
		cohorts = append(cohorts, cohort{n: co.n, first: co.first / float64(co.n)})
	}
	end := max(in.calEnd, in.holdoutEnd)
	nCal := max(1, int((in.calEnd-minFirst+weekMs-1)/weekMs))
	start := in.calEnd - int64(nCal)*weekMs
	nAll := nCal + int((end-in.calEnd+weekMs-1)/weekMs)
	tr := &Tracking{Start: time.UnixMilli(start).UTC().Format(time.RFC3339), CalibrationWeeks: nCal}
	unitMs := float64(unit.Millis())
	next := 0 // repeats[:next] are at or before the current boundary
	for k := 1; k <= nAll; k++ {
		b := min(start+int64(k)*weekMs, end)
		for next < len(repeats) && repeats[next] <= b {
			next++
		}
		w := Week{Week: k, End: time.UnixMilli(b).UTC().Format(time.RFC3339), Actual: int64(next),
			ExpectedByModel: map[clv.CountModel]float64{}}
		for _, m := range models {
			var e float64
			for _, co := range cohorts {
				if t := (float64(b) - co.first) / unitMs; t > 0 {
					e += float64(co.n) * m.ExpectedPurchases(clv.Summary{}, t)
				}
			}
			w.ExpectedByModel[m.Count] = e
			if m == chosen {
				w.Expected = e
			}
		}
		tr.Weeks = append(tr.Weeks, w)
	}
	return tr
}

// modelName is a count model's name in the text report.
func modelName(k clv.CountModel) string {
	switch k {
	case clv.CountMBGNBD:
		return "MBG/NBD"
	case clv.CountParetoNBD:
		return "Pareto/NBD"
	}
	return "BG/NBD"
}

// trackingStride is the step between the weeks the text report prints;
// it always prints the last calibration week and the last week.
const trackingStride = 4

// writeValidation prints the holdout and tracking parts of the text
// report through tw (flushed before returning).
func (r *Report) writeValidation(w io.Writer, tw *tabwriter.Writer) error {
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	var ks []clv.CountModel
	for _, k := range AllCounts {
		if fitOf(r, k) != nil {
			ks = append(ks, k)
		}
	}
	header := func(first string) {
		p("\t%s", first)
		for _, k := range ks {
			p("\t%s", modelName(k))
		}
		p("\t\n")
	}
	if h := r.Holdout; h != nil {
		fmt.Fprintf(w, "\nHoldout to %s (%.2f %ss): %d repeat purchases, expected %.1f (%s)\n",
			h.End, h.Length, r.TimeUnit, h.ActualPurchases, h.ExpectedPurchases, modelName(r.CountModel))
		fmt.Fprintln(w, "Repeat purchases per customer in the holdout by calibration x: actual and expected")
		p("\tcalibration x\tcustomers")
		header("actual")
		for _, row := range h.ByX {
			p("\t%s\t%d\t%.3f", row.X, row.Customers, row.ActualMean)
			for _, k := range ks {
				p("\t%.3f", row.ExpectedMeanByModel[k])
			}
			p("\t\n")
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if t := r.Tracking; t != nil && len(t.Weeks) > 0 {
		fmt.Fprintf(w, "\nCumulative repeat purchases by week from %s (calibration: weeks 1-%d)\n", t.Start[:10], t.CalibrationWeeks)
		p("\tweek\tend")
		header("actual")
		for i, wk := range t.Weeks {
			if wk.Week%trackingStride != 0 && wk.Week != t.CalibrationWeeks && i != len(t.Weeks)-1 {
				continue
			}
			p("\t%d\t%s\t%d", wk.Week, wk.End[:10], wk.Actual)
			for _, k := range ks {
				p("\t%.1f", wk.ExpectedByModel[k])
			}
			p("\t\n")
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}
