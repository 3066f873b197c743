package calibrate

import (
	"fmt"
	"html"
	"math"
	"strings"

	"valora/processor/clv"
)

// The HTML report: one self-contained file,
// charts as inline SVG, no script, no external resource. It is written as
// well-formed XML (every element closed, attributes quoted) so that it can
// be checked with an XML parser.

// htmlColors are the series colours: actual, then the models in report
// order.
var htmlColors = map[string]string{
	"actual":    "#222222",
	"bgnbd":     "#1f77b4",
	"mbgnbd":    "#d62728",
	"paretonbd": "#2ca02c",
}

// pAliveGrid is the size of the P(alive) matrix: repeat purchases 0 to
// pAliveRows-1, and pAliveCols recency columns from 0 to T.
const (
	pAliveRows = 16
	pAliveCols = 20
)

// writeHTML renders the report. model is the policy's model, whose
// P(alive) the matrix shows at T = maxT (the longest observation at the
// calibration end).
func writeHTML(r *Report, models []*clv.Model, model *clv.Model, maxT float64) string {
	var b strings.Builder
	e := html.EscapeString
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n")
	w("<title>valora calibrate: %s</title>\n", e(r.Source))
	w(`<style>
body { font-family: sans-serif; margin: 2em; max-width: 60em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; }
td.l, th.l { text-align: left; }
svg text { font-family: sans-serif; font-size: 11px; fill: #222; }
.note { color: #555; font-size: 0.9em; }
</style>
</head>
<body>
`)
	w("<h1>Customer-base models</h1>\n")
	w("<p>Source %s; calibration period ends %s; time unit %s; money in %s (major units).<br/>\n",
		e(r.Source), e(r.CalibrationEnd), e(string(r.TimeUnit)), e(r.Currency))
	w("%d customers fitted, %d repeat buyers; the policy carries %s.</p>\n",
		r.Customers.Fitted, r.Customers.RepeatBuyers, modelName(r.CountModel))

	// Fits.
	w("<h2>Fits</h2>\n<p class=\"note\">Estimates ± standard errors; alpha (and beta) per %s.</p>\n", e(string(r.TimeUnit)))
	w("<table>\n<tr><th class=\"l\">model</th><th colspan=\"4\">parameters</th><th>log-likelihood</th><th>mean P(alive), one-time / repeat buyers</th>")
	if r.Holdout != nil {
		w("<th>holdout expected (actual %d)</th>", r.Holdout.ActualPurchases)
	}
	w("</tr>\n")
	for _, m := range models {
		fit := fitOf(r, m.Count)
		w("<tr><td class=\"l\">%s</td>", modelName(m.Count))
		for _, p := range fit.params {
			sd := "n/a"
			if v := fit.StdErr[p.name]; v != nil {
				sd = fmt.Sprintf("%.4f", *v)
			}
			w("<td>%s %.4f<br/><span class=\"note\">± %s</span></td>", e(p.name), p.value, sd)
		}
		w("<td>%.3f</td><td>%.3f / %.3f</td>", fit.LogLikelihood, fit.PAlive.OneTimeBuyers, fit.PAlive.RepeatBuyers)
		if h := fit.Holdout; h != nil {
			w("<td>%.1f (%+.1f %%)</td>", h.ExpectedPurchases, 100*h.RelativeError)
		}
		w("</tr>\n")
	}
	w("</table>\n")
	gg := r.GammaGamma
	ggse := func(name string, v float64) string {
		if p := gg.StdErr[name]; p != nil {
			return fmt.Sprintf("%.4f ± %.4f", v, *p)
		}
		return fmt.Sprintf("%.4f ± n/a", v)
	}
	w("<table>\n<tr><th class=\"l\">Gamma-Gamma</th><th>p</th><th>q</th><th>gamma</th><th>log-likelihood</th><th>mean spend, model / observed</th></tr>\n")
	w("<tr><td class=\"l\">%d repeat buyers</td><td>%s</td><td>%s</td><td>%s</td><td>%.3f</td><td>%.2f / %.2f</td></tr>\n</table>\n",
		r.Customers.SpendFitted, ggse("p", gg.P), ggse("q", gg.Q), ggse("gamma", gg.Gamma), gg.LogLikelihood, gg.MeanSpend, gg.ObservedMeanSpend)

	// Weekly tracking.
	if t := r.Tracking; t != nil && len(t.Weeks) > 0 {
		w("<h2>Cumulative repeat purchases by week</h2>\n")
		w("<p class=\"note\">Week 1 starts %s; weeks 1-%d are the calibration period (the dotted line marks its end). The models' lines are E[X(t)] summed over the customers by their first purchase day.</p>\n",
			e(t.Start[:10]), t.CalibrationWeeks)
		xs := make([]float64, len(t.Weeks))
		series := []chartSeries{{name: "actual", label: "actual"}}
		for _, m := range models {
			series = append(series, chartSeries{name: string(m.Count), label: modelName(m.Count), dashed: true})
		}
		for i, wk := range t.Weeks {
			xs[i] = float64(wk.Week)
			series[0].ys = append(series[0].ys, float64(wk.Actual))
			for k, m := range models {
				series[k+1].ys = append(series[k+1].ys, wk.ExpectedByModel[m.Count])
			}
		}
		lineChart(&b, xs, series, float64(t.CalibrationWeeks), "week", "cumulative repeat purchases")
	}

	// Conditional expectation.
	if h := r.Holdout; h != nil {
		w("<h2>Holdout purchases by calibration frequency</h2>\n")
		w("<p class=\"note\">Holdout to %s (%.2f %ss): repeat purchases per customer, actual and expected given each customer's calibration history, E[Y(t) | x, t_x, T].</p>\n",
			e(h.End[:10]), h.Length, e(string(r.TimeUnit)))
		xs := make([]float64, len(h.ByX))
		series := []chartSeries{{name: "actual", label: "actual"}}
		for _, m := range models {
			series = append(series, chartSeries{name: string(m.Count), label: modelName(m.Count), dashed: true})
		}
		labels := make([]string, len(h.ByX))
		for i, row := range h.ByX {
			xs[i], labels[i] = float64(i), row.X
			series[0].ys = append(series[0].ys, row.ActualMean)
			for k, m := range models {
				series[k+1].ys = append(series[k+1].ys, row.ExpectedMeanByModel[m.Count])
			}
		}
		lineChartLabels(&b, xs, labels, series, math.NaN(), "repeat purchases in the calibration period", "holdout purchases per customer")
		w("<table>\n<tr><th>calibration x</th><th>customers</th><th>actual</th>")
		for _, m := range models {
			w("<th>%s</th>", modelName(m.Count))
		}
		w("</tr>\n")
		for _, row := range h.ByX {
			w("<tr><td>%s</td><td>%d</td><td>%.3f</td>", e(row.X), row.Customers, row.ActualMean)
			for _, m := range models {
				w("<td>%.3f</td>", row.ExpectedMeanByModel[m.Count])
			}
			w("</tr>\n")
		}
		w("</table>\n")
	}

	// P(alive) matrix.
	w("<h2>P(alive) by frequency and recency (%s)</h2>\n", modelName(model.Count))
	w("<p class=\"note\">For a customer observed for T = %.2f %ss (the longest at the calibration end): rows are repeat purchases x, columns the time t_x of the last purchase from the first (a customer with x = 0 has t_x = 0). Darker is more likely alive.</p>\n",
		maxT, e(string(r.TimeUnit)))
	pAliveMatrix(&b, model, maxT)
	w("</body>\n</html>\n")
	return b.String()
}

// chartSeries is one line of a chart.
type chartSeries struct {
	name, label string
	ys          []float64
	dashed      bool
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH         = 720.0, 360.0
	padL, padR, padT, padB = 70.0, 130.0, 20.0, 45.0
)

func lineChart(b *strings.Builder, xs []float64, series []chartSeries, boundary float64, xLabel, yLabel string) {
	lineChartLabels(b, xs, nil, series, boundary, xLabel, yLabel)
}

// lineChartLabels draws series against xs (tick labels from labels
// when given), with a dotted vertical line at boundary unless it is NaN.
func lineChartLabels(b *strings.Builder, xs []float64, labels []string, series []chartSeries, boundary float64, xLabel, yLabel string) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	x0, x1 := xs[0], xs[len(xs)-1]
	if x1 == x0 {
		x1 = x0 + 1
	}
	yMax := 0.0
	for _, s := range series {
		for _, y := range s.ys {
			yMax = max(yMax, y)
		}
	}
	yMax = niceCeil(yMax)
	pw, ph := chartW-padL-padR, chartH-padT-padB
	px := func(x float64) float64 { return padL + (x-x0)/(x1-x0)*pw }
	py := func(y float64) float64 { return padT + ph - y/yMax*ph }
	w("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\">\n", chartW, chartH, chartW, chartH)
	w("<title>%s against %s</title>\n", html.EscapeString(yLabel), html.EscapeString(xLabel))
	w("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#999\"/>\n", padL, padT, pw, ph)
	for i := 0; i <= 4; i++ {
		y := yMax * float64(i) / 4
		w("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", padL, py(y), padL+pw, py(y))
		w("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", padL-6, py(y)+4, tick(y))
	}
	// X ticks: every label, or about ten evenly spaced values.
	if labels != nil {
		for i, x := range xs {
			w("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", px(x), padT+ph+16, html.EscapeString(labels[i]))
		}
	} else {
		step := math.Max(1, niceCeil((x1-x0)/10))
		for x := math.Ceil(x0/step) * step; x <= x1; x += step {
			w("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", px(x), padT+ph+16, tick(x))
		}
	}
	w("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", padL+pw/2, chartH-8, html.EscapeString(xLabel))
	w("<text x=\"14\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 14 %.1f)\">%s</text>\n", padT+ph/2, padT+ph/2, html.EscapeString(yLabel))
	if !math.IsNaN(boundary) {
		w("<line class=\"boundary\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" stroke-dasharray=\"2,3\"/>\n", px(boundary), padT, px(boundary), padT+ph)
		w("<text x=\"%.1f\" y=\"%.1f\">calibration end</text>\n", px(boundary)+4, padT+12)
	}
	for k, s := range series {
		var pts strings.Builder
		for i, y := range s.ys {
			fmt.Fprintf(&pts, "%.1f,%.1f ", px(xs[i]), py(y))
		}
		dash := ""
		if s.dashed {
			dash = " stroke-dasharray=\"6,3\""
		}
		w("<polyline class=\"series-%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"%s\"/>\n",
			s.name, htmlColors[s.name], dash, strings.TrimSpace(pts.String()))
		ly := padT + 14 + 18*float64(k)
		w("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>\n", padL+pw+10, ly-4, padL+pw+34, ly-4, htmlColors[s.name], dash)
		w("<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", padL+pw+40, ly, html.EscapeString(s.label))
	}
	w("</svg>\n")
}

// pAliveMatrix draws model's P(alive) for x in 0..pAliveRows-1 and
// t_x in pAliveCols columns over [0, maxT], at T = maxT.
func pAliveMatrix(b *strings.Builder, model *clv.Model, maxT float64) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	const cell, padL, padT = 28.0, 60.0, 20.0
	width := padL + cell*pAliveCols + 90
	height := padT + cell*pAliveRows + 45
	w("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\">\n", width, height, width, height)
	w("<title>P(alive) by repeat purchases and recency</title>\n")
	for x := range pAliveRows {
		y := padT + cell*float64(pAliveRows-1-x)
		w("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%d</text>\n", padL-6, y+cell/2+4, x)
		for j := range pAliveCols {
			tx := maxT * float64(j) / float64(pAliveCols-1)
			if x == 0 && j > 0 {
				continue // a customer without a repeat purchase has t_x = 0
			}
			if x > 0 && j == 0 {
				tx = maxT * 0.5 / float64(pAliveCols-1) // a repeat purchase is after the first
			}
			pa := model.PAlive(clv.Summary{X: int64(x), Tx: tx, T: maxT})
			shade := int(math.Round(255 * (1 - pa)))
			w("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"rgb(%d,%d,255)\"><title>x %d, t_x %.1f: P(alive) %.3f</title></rect>\n",
				padL+cell*float64(j), y, cell, cell, shade, shade, x, tx, pa)
		}
	}
	// Legend: P(alive) 0 to 1.
	lx := padL + cell*pAliveCols + 20
	for i := 0; i <= 10; i++ {
		shade := int(math.Round(255 * (1 - float64(i)/10)))
		w("<rect x=\"%.1f\" y=\"%.1f\" width=\"16\" height=\"%.1f\" fill=\"rgb(%d,%d,255)\" stroke=\"#ccc\" stroke-width=\"0.5\"/>\n",
			lx, padT+cell*pAliveRows*(1-float64(i+1)/11), cell*pAliveRows/11, shade, shade)
	}
	w("<text x=\"%.1f\" y=\"%.1f\">1</text>\n", lx+20, padT+10)
	w("<text x=\"%.1f\" y=\"%.1f\">0</text>\n", lx+20, padT+cell*pAliveRows)
	for j := 0; j < pAliveCols; j += 4 {
		tx := maxT * float64(j) / float64(pAliveCols-1)
		w("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", padL+cell*float64(j)+cell/2, padT+cell*pAliveRows+14, tick(math.Round(tx)))
	}
	w("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">t_x (time of the last purchase from the first)</text>\n", padL+cell*pAliveCols/2, height-6)
	w("<text x=\"14\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 14 %.1f)\">repeat purchases x</text>\n", padT+cell*pAliveRows/2, padT+cell*pAliveRows/2)
	w("</svg>\n")
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if !(v > 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// tick formats an axis value.
func tick(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

// HTML renders r as one self-contained HTML page. model is the policy's
// model (Result.Model), whose P(alive) matrix the page shows.
func HTML(r *Report, model *clv.Model) []byte {
	return []byte(writeHTML(r, r.models, model, r.maxT))
}
