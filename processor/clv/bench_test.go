package clv

import (
	"sync"
	"testing"
	"time"

	"valora/internal/gen"
)

// million is a population of 1,000,000 customers drawn once from
// internal/gen with the CDNOW estimates (in days), observed for a year.
var million = sync.OnceValues(func() (simulated, error) {
	p := gen.DefaultParams()
	p.Customers = 1_000_000
	p.Horizon = 365 * 24 * time.Hour
	return simulateErr(p)
})

func millionCustomers(b *testing.B) simulated {
	b.Helper()
	sim, err := million()
	if err != nil {
		b.Fatal(err)
	}
	return sim
}

// BenchmarkFitBGNBD1M fits BG/NBD to 1,000,000 customers' summaries
// (about 45% repeat buyers), standard errors included.
func BenchmarkFitBGNBD1M(b *testing.B) {
	sums := millionCustomers(b).sums
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := FitBGNBD(sums); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFitGammaGamma1M fits Gamma-Gamma to the repeat buyers among
// 1,000,000 customers.
func BenchmarkFitGammaGamma1M(b *testing.B) {
	spends := millionCustomers(b).spends
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := FitGammaGamma(spends); err != nil {
			b.Fatal(err)
		}
	}
}

// evalPopulation is the CDNOW sample at the end of its calibration
// period, in weeks: the mix of one-time and repeat buyers a scorer meets.
func evalPopulation(b *testing.B) ([]Summary, []float64) {
	b.Helper()
	cs := readCDNOW(b)
	sums := make([]Summary, len(cs))
	spends := make([]float64, len(cs))
	for i, c := range cs {
		sums[i], spends[i] = c.s, c.mean
	}
	return sums, spends
}

func BenchmarkPAlive(b *testing.B) {
	sums, _ := evalPopulation(b)
	m := cdnowParams
	b.ReportAllocs()
	var sink float64
	i := 0
	for b.Loop() {
		sink += m.PAlive(sums[i])
		i = (i + 1) % len(sums)
	}
	_ = sink
}

// BenchmarkExpectedPurchases: the conditional expectation over the next
// 52 weeks.
func BenchmarkExpectedPurchases(b *testing.B) {
	sums, _ := evalPopulation(b)
	m := cdnowParams
	b.ReportAllocs()
	var sink float64
	i := 0
	for b.Loop() {
		sink += m.ExpectedPurchases(sums[i], 52)
		i = (i + 1) % len(sums)
	}
	_ = sink
}

// BenchmarkExpectedPurchasesLargeX: x = 10,000, where the series
// converges fastest.
func BenchmarkExpectedPurchasesLargeX(b *testing.B) {
	m := cdnowParams
	s := Summary{X: 10_000, Tx: 38, T: 39}
	b.ReportAllocs()
	var sink float64
	for b.Loop() {
		sink += m.ExpectedPurchases(s, 52)
	}
	_ = sink
}

// BenchmarkEvaluate: P(alive), expected purchases over 52 weeks and
// expected spend, without the discounted CLV (a Model with one step).
func BenchmarkEvaluate(b *testing.B) {
	benchEvaluate(b, 1)
}

// BenchmarkEvaluateCLV: the same with the discounted CLV over 12 monthly
// periods (DefaultSteps).
func BenchmarkEvaluateCLV(b *testing.B) {
	benchEvaluate(b, DefaultSteps)
}

func benchEvaluate(b *testing.B, steps int) {
	sums, spends := evalPopulation(b)
	m := cdnowModel()
	m.Steps = steps
	if err := m.Validate(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var sink float64
	i := 0
	for b.Loop() {
		v := m.Evaluate(sums[i], spends[i])
		sink += v.CLV
		i = (i + 1) % len(sums)
	}
	_ = sink
}
