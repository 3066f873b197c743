package calibrate

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"valora/processor/clv"
	"valora/processor/score"
	"valora/processor/txcsv"
)

func TestReadCDNOWFormats(t *testing.T) {
	pol := score.DefaultPolicy()
	tests := []struct {
		name string
		in   string
		want map[string][]txn
		err  string
	}{
		{
			name: "master with header",
			in:   " customer_id  date number_of_cds  dollar_value\r\n 00001 19970101  1   11.77\r\n 00002 19970112  1   12.00\r\n 00002 19970112  5   77.00\r\n",
			want: map[string][]txn{
				"00001": {{day(1997, 1, 1), 1177}},
				"00002": {{day(1997, 1, 12), 1200}, {day(1997, 1, 12), 7700}},
			},
		},
		{
			name: "sample without header",
			in:   " 00004 0001 19970101  2   29.33\r\n\r\n 00004 0001 19970118  2   29.73\r\n 00021 0002 19970101  3   0.00\r\n",
			want: map[string][]txn{
				"0001": {{day(1997, 1, 1), 2933}, {day(1997, 1, 18), 2973}},
				"0002": {{day(1997, 1, 1), 0}},
			},
		},
		{name: "three columns", in: "1 19970101 2\r\n", err: "want 4"},
		{name: "ragged", in: "1 19970101 2 3.00\r\n1 19970101 3.00\r\n", err: "line 2"},
		{name: "negative", in: "1 19970101 2 -3.00\r\n", err: "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readTxns(context.Background(), strings.NewReader(tc.in), &txcsv.Config{Format: txcsv.FormatCDNOW, DefaultCurrency: "USD"}, pol)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func day(y int, m time.Month, d int) int64 {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).UnixMilli()
}

func TestQuintileBounds(t *testing.T) {
	tests := []struct {
		name string
		in   []int64
		want []int64
	}{
		{"empty", nil, []int64{0, 1, 2, 3}},
		{"distinct", []int64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, []int64{2, 4, 6, 8}},
		{"uneven", []int64{1, 2, 3, 4, 5, 6, 7}, []int64{2, 3, 5, 6}},
		{"ties raise the next boundary", []int64{1, 1, 1, 1, 1, 1, 2, 3, 9, 20}, []int64{1, 2, 3, 4}},
		{"ties then a gap", []int64{1, 1, 1, 1, 1, 7, 8, 9, 10, 20}, []int64{1, 2, 7, 9}},
		{"all equal", []int64{5, 5, 5, 5, 5}, []int64{5, 6, 7, 8}},
		{"negatives floor at 0", []int64{-50, -20, -10, 100, 200}, []int64{0, 1, 2, 100}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := quintileBounds(slices.Clone(tc.in))
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// cdnowSample is CDNOW's 1/10 sample, copied into the repository with its
// source and licence.
var cdnowSample = filepath.Join("..", "..", "testdata", "cdnow", "CDNOW_sample.txt")

func validOptions() Options {
	return Options{Base: score.DefaultPolicy(), Unit: clv.Week, Counts: []clv.CountModel{clv.CountBGNBD},
		Horizon: 52, DiscountRate: 0.1, PAliveBelow: -1, CostToServe: -1, PolicyPath: "p.yaml"}
}

// TestOptionsValidate checks that Run refuses options that cannot work,
// naming the option, before it looks at its input.
func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		field string
		edit  func(*Options)
	}{
		{"Base", func(o *Options) { o.Base = nil }},
		{"Unit", func(o *Options) { o.Unit = "month" }},
		{"Counts", func(o *Options) { o.Counts = nil }},
		{"Counts", func(o *Options) { o.Counts = []clv.CountModel{"gompertz"} }},
		{"Horizon", func(o *Options) { o.Horizon = 0 }},
		{"Horizon", func(o *Options) { o.Horizon = math.Inf(1) }},
		{"DiscountRate", func(o *Options) { o.DiscountRate = -0.1 }},
		{"PolicyVersion", func(o *Options) { o.PolicyVersion = "  " }},
		{"PAliveBelow", func(o *Options) { o.PAliveBelow = 1 }},
		{"CostToServe", func(o *Options) { o.CostToServe = -2 }},
		{"PolicyPath", func(o *Options) { o.PolicyPath = "" }},
	} {
		o := validOptions()
		tc.edit(&o)
		_, err := Run(nil, o) // a nil input: Run must stop at the options
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: Run = %v; want an error naming %s", tc.field, err, tc.field)
		}
	}
}

// TestRunCDNOWSample calibrates on CDNOW's sample cut at 1997-09-30: the
// models fit, the holdout is the rest of the file, the policy carries the
// fitted model and validates, and the HTML report is well-formed XML.
func TestRunCDNOWSample(t *testing.T) {
	f, err := os.Open(cdnowSample)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	o := validOptions()
	calEnd := time.Date(1997, 9, 30, 0, 0, 0, 0, time.UTC).UnixMilli()
	in, err := ReadCSV(context.Background(), f, &txcsv.Config{Format: txcsv.FormatCDNOW, DefaultCurrency: "USD"}, "sample", calEnd, 0, o.Base)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(in, o)
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report
	if rep.Customers.Fitted != 2357 || rep.BGNBD == nil || rep.Holdout == nil || rep.Tracking == nil {
		t.Fatalf("report: %d customers fitted, BG/NBD %v, holdout %v, tracking %v", rep.Customers.Fitted, rep.BGNBD, rep.Holdout, rep.Tracking)
	}
	if res.Policy.Models == nil || *res.Policy.Models != *res.Model {
		t.Errorf("the policy does not carry the fitted model")
	}
	if err := res.Policy.Validate(); err != nil {
		t.Errorf("calibrated policy: %v", err)
	}
	if res.Policy.Version != o.Base.Version+"-cal19970930" {
		t.Errorf("policy version %q", res.Policy.Version)
	}
	if rep.Policy.Path != "p.yaml" || rep.Policy.ModelsPath != "p.yaml.models.json" {
		t.Errorf("report names %q and %q", rep.Policy.Path, rep.Policy.ModelsPath)
	}
	dec := xml.NewDecoder(bytes.NewReader(HTML(rep, res.Model)))
	dec.Strict, dec.Entity = true, xml.HTMLEntity
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("HTML report: %v", err)
		}
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil || !strings.Contains(text.String(), "BG/NBD") {
		t.Errorf("text report (%v):\n%s", err, text.String())
	}
}

// TestReadCSVHoldoutEnd checks that a holdout end not after the calibration
// end is a HoldoutEndError carrying both times.
func TestReadCSVHoldoutEnd(t *testing.T) {
	in := " 1 0001 19970101 1 10.00\n 1 0001 19970301 1 10.00\n"
	end := time.Date(1997, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	_, err := ReadCSV(context.Background(), strings.NewReader(in), &txcsv.Config{Format: txcsv.FormatCDNOW, DefaultCurrency: "USD"}, "x", 0, end, score.DefaultPolicy())
	var he *HoldoutEndError
	if !errors.As(err, &he) || he.HoldoutEnd != end || he.CalEnd != end {
		t.Fatalf("err = %v; want a HoldoutEndError at %d", err, end)
	}
}
