package clv

import (
	"bufio"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The CDNOW sample (testdata/cdnow at the repository root; see its README
// for the source and licence): 2,357 customers of the Q1 1997 cohort, the
// calibration period ends 1997-09-30 (39 weeks), weeks as the time unit.
var (
	cdnowSample  = filepath.Join("..", "..", "testdata", "cdnow", "CDNOW_sample.txt")
	cdnowSummary = filepath.Join("..", "..", "testdata", "cdnow", "cdnow_customers_summary_with_transactions.csv")
	cdnowCalEnd  = time.Date(1997, 9, 30, 0, 0, 0, 0, time.UTC)
)

// cdnowCustomer is one customer of the sample, derived from the raw log
// with the conventions of the package: rows of the same day merged, the
// first purchase day excluded from x and from the mean spend.
type cdnowCustomer struct {
	id      string
	s       Summary // in weeks
	mean    float64 // mean value of the repeat purchase days, dollars
	holdout int     // repeat purchase days after the calibration period
}

// readCDNOW parses CDNOW_sample.txt: master_id sample_id YYYYMMDD cds
// dollars, whitespace separated, CRLF.
func readCDNOW(t testing.TB) []cdnowCustomer {
	t.Helper()
	f, err := os.Open(cdnowSample)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type day struct {
		at      time.Time
		dollars float64
	}
	days := map[string][]day{}
	var order []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			continue
		}
		if len(fs) != 5 {
			t.Fatalf("line %q: %d fields", sc.Text(), len(fs))
		}
		at, err := time.Parse("20060102", fs[2])
		if err != nil {
			t.Fatal(err)
		}
		v, err := strconv.ParseFloat(fs[4], 64)
		if err != nil {
			t.Fatal(err)
		}
		id := fs[1]
		ds, seen := days[id]
		if !seen {
			order = append(order, id)
		}
		if n := len(ds); n > 0 && ds[n-1].at.Equal(at) {
			ds[n-1].dollars += v
		} else {
			ds = append(ds, day{at, v})
		}
		days[id] = ds
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	out := make([]cdnowCustomer, 0, len(order))
	for _, id := range order {
		ds := days[id]
		slices.SortFunc(ds, func(a, b day) int { return a.at.Compare(b.at) })
		c := cdnowCustomer{id: id}
		first := ds[0].at
		var last time.Time
		var sum float64
		for _, d := range ds[1:] {
			if d.at.After(cdnowCalEnd) {
				c.holdout++
				continue
			}
			c.s.X++
			sum += d.dollars
			last = d.at
		}
		c.s.T = Week.Span(first.UnixMilli(), cdnowCalEnd.UnixMilli())
		if c.s.X > 0 {
			c.s.Tx = Week.Span(first.UnixMilli(), last.UnixMilli())
			c.mean = sum / float64(c.s.X)
		}
		out = append(out, c)
	}
	return out
}

func cdnowSummaries(cs []cdnowCustomer) []Summary {
	out := make([]Summary, len(cs))
	for i, c := range cs {
		out[i] = c.s
	}
	return out
}

func cdnowSpends(cs []cdnowCustomer) []Spend {
	var out []Spend
	for _, c := range cs {
		if c.s.X > 0 && c.mean > 0 {
			out = append(out, Spend{X: c.s.X, Mean: c.mean})
		}
	}
	return out
}

// TestCDNOWDerivation checks the derivation from the raw log against the
// precomputed summary file of the same data (x, t_x and T in weeks rounded
// to two decimals, zbar the mean repeat-day spend).
func TestCDNOWDerivation(t *testing.T) {
	cs := readCDNOW(t)
	if len(cs) != 2357 {
		t.Fatalf("customers = %d, want 2357", len(cs))
	}
	b, err := os.ReadFile(cdnowSummary)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2358 {
		t.Fatalf("summary file has %d lines, want 2358", len(lines))
	}
	byID := map[int]cdnowCustomer{}
	for _, c := range cs {
		id, _ := strconv.Atoi(c.id)
		byID[id] = c
	}
	var sumX int64
	repeat := 0
	for _, line := range lines[1:] {
		fs := strings.Split(strings.TrimSpace(line), ",")
		id, _ := strconv.Atoi(fs[0])
		x, _ := strconv.ParseInt(fs[1], 10, 64)
		tx, _ := strconv.ParseFloat(fs[2], 64)
		tt, _ := strconv.ParseFloat(fs[3], 64)
		zbar, _ := strconv.ParseFloat(fs[4], 64)
		c, ok := byID[id]
		if !ok {
			t.Fatalf("customer %d missing from the raw log", id)
		}
		if c.s.X != x || math.Abs(c.s.Tx-tx) > 0.005+1e-9 || math.Abs(c.s.T-tt) > 0.005+1e-9 || math.Abs(c.mean-zbar) > 0.0051 {
			t.Errorf("customer %d: derived x=%d t_x=%.4f T=%.4f zbar=%.4f, file has %d %.2f %.2f %.2f",
				id, c.s.X, c.s.Tx, c.s.T, c.mean, x, tx, tt, zbar)
		}
		sumX += c.s.X
		if c.s.X > 0 {
			repeat++
		}
	}
	if sumX != 2457 || repeat != 946 {
		t.Errorf("sum x = %d, repeat buyers = %d, want 2457 and 946", sumX, repeat)
	}
}
