package score

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"testing"
)

// policyWith returns the default policy with another base currency and
// rates.
func policyWith(t testing.TB, base string, rates map[string]float64) *Policy {
	t.Helper()
	p := DefaultPolicy()
	p.BaseCurrency = base
	p.Rates = rates
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestToBase(t *testing.T) {
	usd := policyWith(t, "USD", map[string]float64{
		"EUR": 1.08, "GBP": 1.27, "JPY": 0.0067, "KWD": 3.25,
		"CHF": 1.5, "CAD": 1.25, "AUD": 0.5, "NZD": 0.3, "SGD": 1.005,
		"USD": 1,
	})
	jpy := policyWith(t, "JPY", map[string]float64{"USD": 150, "KWD": 487.5})
	kwd := policyWith(t, "KWD", map[string]float64{"EUR": 0.33, "JPY": 0.00205})

	f := func(p *Policy, amount int64, cur string, want int64) {
		t.Helper()
		got, err := p.ToBase(amount, cur)
		if err != nil || got != want {
			t.Errorf("%s ToBase(%d, %s) = %d, %v; want %d", p.BaseCurrency, amount, cur, got, err, want)
		}
	}
	// The base converts to itself, whatever the amount.
	f(usd, 12345, "USD", 12345)
	f(usd, math.MaxInt64, "USD", math.MaxInt64)
	f(usd, math.MinInt64, "USD", math.MinInt64)
	f(usd, 0, "EUR", 0)
	// 2 -> 2 decimals.
	f(usd, 10000, "EUR", 10800)
	f(usd, 1, "EUR", 1)   // 1.08
	f(usd, 50, "EUR", 54) // 54.00
	f(usd, 1000, "GBP", 1270)
	// Half away from zero, both signs.
	f(usd, 1, "CHF", 2)   // 1.5
	f(usd, -1, "CHF", -2) // -1.5
	f(usd, 3, "CHF", 5)   // 4.5
	f(usd, 2, "CAD", 3)   // 2.5
	f(usd, -2, "CAD", -3) // -2.5
	f(usd, 1, "AUD", 1)   // 0.5
	f(usd, 1, "CAD", 1)   // 1.25
	f(usd, -1, "CAD", -1) // -1.25
	// Exact decimal rates: float arithmetic would give 2.999... and
	// 100.4999...
	f(usd, 10, "NZD", 3)
	f(usd, 100, "SGD", 101)
	f(usd, 1000, "SGD", 1005)
	// 0 -> 2 decimals: 100000 JPY = 670.00 USD; 1 JPY = 0.67 cents.
	f(usd, 100000, "JPY", 67000)
	f(usd, 1, "JPY", 1)
	f(usd, 3, "JPY", 2) // 2.01
	// 3 -> 2 decimals: 1.000 KWD = 3.25 USD; 1 fils = 0.325 cents.
	f(usd, 1000, "KWD", 325)
	f(usd, 1, "KWD", 0)
	f(usd, 2, "KWD", 1) // 0.65
	// 2 -> 0 decimals: 1 cent = 1.5 yen.
	f(jpy, 1, "USD", 2)
	f(jpy, 100, "USD", 150)
	f(jpy, -1, "USD", -2)
	// 3 -> 0 decimals: 1 fils = 0.4875 yen.
	f(jpy, 1, "KWD", 0)
	f(jpy, 2, "KWD", 1) // 0.975
	f(jpy, 1000, "KWD", 488)
	// 2 -> 3 and 0 -> 3 decimals.
	f(kwd, 100, "EUR", 330)
	f(kwd, 1, "EUR", 3) // 3.3 fils
	f(kwd, 1000, "JPY", 2050)
	f(kwd, 1, "JPY", 2) // 2.05 fils
	// Large values that still fit.
	f(usd, math.MaxInt64, "JPY", 6179659264692699791) // × 0.67
	f(usd, math.MinInt64, "JPY", -6179659264692699791)
}

func TestToBaseErrors(t *testing.T) {
	p := DefaultPolicy()
	f := func(amount int64, cur string, want error) {
		t.Helper()
		got, err := p.ToBase(amount, cur)
		if !errors.Is(err, want) {
			t.Errorf("ToBase(%d, %q) = %d, %v; want %v", amount, cur, got, err, want)
		}
	}
	f(100, "XYZ", ErrUnknownCurrency)
	f(100, "", ErrUnknownCurrency)
	f(100, "usd", ErrUnknownCurrency)
	f(100, "CHF", ErrUnknownCurrency) // valid ISO, but no rate
	f(math.MaxInt64, "GBP", ErrOverflow)
	f(math.MinInt64, "EUR", ErrOverflow)
	f(math.MaxInt64/108*100+1000, "EUR", ErrOverflow)
	// A rate that makes 1 minor unit worth more than int64 allows.
	big := policyWith(t, "KWD", map[string]float64{"VND": 1e15})
	if _, err := big.ToBase(math.MaxInt64/1000, "VND"); !errors.Is(err, ErrOverflow) {
		t.Errorf("huge rate: err = %v, want ErrOverflow", err)
	}
}

// TestToBaseMatchesExactArithmetic compares ToBase with big.Rat arithmetic
// on the decimal reading of the rate.
func TestToBaseMatchesExactArithmetic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	codes := []string{"USD", "EUR", "JPY", "KWD", "CLF", "ISK", "BHD", "GBP"}
	for i := 0; i < 200; i++ {
		base := codes[rng.IntN(len(codes))]
		cur := codes[rng.IntN(len(codes))]
		if cur == base {
			continue
		}
		// Rates with up to 6 significant digits, 1e-4 .. 1e4.
		rate, _ := strconv.ParseFloat(strconv.FormatFloat(math.Pow(10, rng.Float64()*8-4), 'g', 1+rng.IntN(6), 64), 64)
		p := policyWith(t, base, map[string]float64{cur: rate})
		for j := 0; j < 50; j++ {
			amount := rng.Int64N(1<<uint(1+rng.IntN(50))) * (1 - 2*int64(rng.IntN(2)))
			got, err := p.ToBase(amount, cur)
			want, fits := exactToBase(amount, cur, base, rate)
			if !fits {
				if !errors.Is(err, ErrOverflow) {
					t.Fatalf("%d %s -> %s at %v: got %d, %v; want ErrOverflow", amount, cur, base, rate, got, err)
				}
				continue
			}
			if err != nil || got != want {
				t.Fatalf("%d %s -> %s at %v: got %d, %v; want %d", amount, cur, base, rate, got, err, want)
			}
		}
	}
}

func exactToBase(amount int64, cur, base string, rate float64) (int64, bool) {
	r, _ := new(big.Rat).SetString(strconv.FormatFloat(rate, 'g', -1, 64))
	from, _ := MinorUnits(cur)
	to, _ := MinorUnits(base)
	x := new(big.Rat).SetInt64(amount)
	x.Mul(x, r)
	x.Mul(x, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(to)), nil)))
	x.Quo(x, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(from)), nil)))
	// Round half away from zero: trunc(x + sign(x)/2).
	half := big.NewRat(1, 2)
	if x.Sign() < 0 {
		half.Neg(half)
	}
	x.Add(x, half)
	q := new(big.Int).Quo(x.Num(), x.Denom())
	if !q.IsInt64() {
		return 0, false
	}
	return q.Int64(), true
}

func TestMinorUnits(t *testing.T) {
	for cur, want := range map[string]int{"USD": 2, "EUR": 2, "JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0, "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3, "IQD": 3, "LYD": 3, "CLF": 4} {
		if got, ok := MinorUnits(cur); !ok || got != want {
			t.Errorf("MinorUnits(%s) = %d, %t; want %d", cur, got, ok, want)
		}
	}
	for _, cur := range []string{"XAU", "XXX", "usd", ""} {
		if _, ok := MinorUnits(cur); ok {
			t.Errorf("MinorUnits(%q) known", cur)
		}
	}
}
