package score

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
)

// ErrUnknownCurrency is returned (wrapped) by ToBase, and so by
// ApplyPurchase, for a currency that is neither the policy's base currency
// nor a key of its Rates. An event carrying one is a dead-letter case: valora
// never guesses a rate.
var ErrUnknownCurrency = errors.New("unknown currency")

// ErrOverflow is returned (wrapped) when an amount or a running total does
// not fit in an int64 count of minor units.
var ErrOverflow = errors.New("amount overflows int64 minor units")

// minorUnits maps the active ISO 4217 codes to their exponent: the number of
// decimal digits of the minor unit (2 for USD cents, 0 for JPY, 3 for KWD).
// Codes without a minor unit (precious metals, XDR, XXX, ...) are absent.
var minorUnits = map[string]int{
	// Exponent 0.
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0,
	"KRW": 0, "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0,
	"XAF": 0, "XOF": 0, "XPF": 0,
	// Exponent 3.
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	// Exponent 4.
	"CLF": 4, "UYW": 4,
	// Exponent 2.
	"AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "ANG": 2, "AOA": 2, "ARS": 2,
	"AUD": 2, "AWG": 2, "AZN": 2, "BAM": 2, "BBD": 2, "BDT": 2, "BGN": 2,
	"BMD": 2, "BND": 2, "BOB": 2, "BOV": 2, "BRL": 2, "BSD": 2, "BTN": 2,
	"BWP": 2, "BYN": 2, "BZD": 2, "CAD": 2, "CDF": 2, "CHE": 2, "CHF": 2,
	"CHW": 2, "CNY": 2, "COP": 2, "COU": 2, "CRC": 2, "CUP": 2, "CVE": 2,
	"CZK": 2, "DKK": 2, "DOP": 2, "DZD": 2, "EGP": 2, "ERN": 2, "ETB": 2,
	"EUR": 2, "FJD": 2, "FKP": 2, "GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2,
	"GMD": 2, "GTQ": 2, "GYD": 2, "HKD": 2, "HNL": 2, "HTG": 2, "HUF": 2,
	"IDR": 2, "ILS": 2, "INR": 2, "IRR": 2, "JMD": 2, "KES": 2, "KGS": 2,
	"KHR": 2, "KPW": 2, "KYD": 2, "KZT": 2, "LAK": 2, "LBP": 2, "LKR": 2,
	"LRD": 2, "LSL": 2, "MAD": 2, "MDL": 2, "MGA": 2, "MKD": 2, "MMK": 2,
	"MNT": 2, "MOP": 2, "MRU": 2, "MUR": 2, "MVR": 2, "MWK": 2, "MXN": 2,
	"MXV": 2, "MYR": 2, "MZN": 2, "NAD": 2, "NGN": 2, "NIO": 2, "NOK": 2,
	"NPR": 2, "NZD": 2, "PAB": 2, "PEN": 2, "PGK": 2, "PHP": 2, "PKR": 2,
	"PLN": 2, "QAR": 2, "RON": 2, "RSD": 2, "RUB": 2, "SAR": 2, "SBD": 2,
	"SCR": 2, "SDG": 2, "SEK": 2, "SGD": 2, "SHP": 2, "SLE": 2, "SOS": 2,
	"SRD": 2, "SSP": 2, "STN": 2, "SVC": 2, "SYP": 2, "SZL": 2, "THB": 2,
	"TJS": 2, "TMT": 2, "TOP": 2, "TRY": 2, "TTD": 2, "TWD": 2, "TZS": 2,
	"UAH": 2, "USD": 2, "USN": 2, "UYU": 2, "UZS": 2, "VED": 2, "VES": 2,
	"WST": 2, "XCD": 2, "XCG": 2, "YER": 2, "ZAR": 2, "ZMW": 2, "ZWG": 2,
}

// MinorUnits returns the ISO 4217 exponent of currency (the number of
// decimal digits of its minor unit) and whether the currency is known.
func MinorUnits(currency string) (int, bool) {
	e, ok := minorUnits[currency]
	return e, ok
}

// conversion turns minor units of one currency into minor units of the base
// currency exactly: base = amount * num / den, rounded half away from zero.
// num and den are the rate (read as the shortest decimal that reproduces the
// float64, so 1.08 is exactly 108/100) scaled by the two exponents, reduced.
type conversion struct {
	num, den uint64
}

// identity converts the base currency to itself.
var identity = conversion{num: 1, den: 1}

// newConversion builds the exact conversion for a rate between a currency
// with exponent from and the base currency with exponent to.
func newConversion(rate float64, from, to int) (conversion, error) {
	if math.IsNaN(rate) || math.IsInf(rate, 0) || rate <= 0 {
		return conversion{}, errors.New("must be positive and finite")
	}
	// Shortest decimal representation: digits × 10^exp.
	s := strconv.FormatFloat(rate, 'e', -1, 64) // e.g. "1.08e+00"
	mant, expPart, _ := cutByte(s, 'e')
	exp, err := strconv.Atoi(expPart)
	if err != nil {
		return conversion{}, fmt.Errorf("cannot read rate %v: %w", rate, err)
	}
	intPart, frac, _ := cutByte(mant, '.')
	digits, ok := new(big.Int).SetString(intPart+frac, 10)
	if !ok {
		return conversion{}, fmt.Errorf("cannot read rate %v", rate)
	}
	exp -= len(frac)
	num := new(big.Int).Set(digits)
	den := big.NewInt(1)
	ten := big.NewInt(10)
	scale := func(x *big.Int, n int) {
		if n > 0 {
			x.Mul(x, new(big.Int).Exp(ten, big.NewInt(int64(n)), nil))
		}
	}
	// base minor = amount / 10^from × digits × 10^exp × 10^to
	scale(num, to)
	scale(den, from)
	if exp >= 0 {
		scale(num, exp)
	} else {
		scale(den, -exp)
	}
	g := new(big.Int).GCD(nil, nil, num, den)
	num.Quo(num, g)
	den.Quo(den, g)
	if !num.IsUint64() || !den.IsUint64() {
		return conversion{}, fmt.Errorf("rate %v is too precise or too far from 1 to convert exactly", rate)
	}
	return conversion{num: num.Uint64(), den: den.Uint64()}, nil
}

func cutByte(s string, b byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// apply converts amount, rounding half away from zero. ok is false when the
// result does not fit in an int64.
func (c conversion) apply(amount int64) (int64, bool) {
	if c.num == c.den {
		return amount, true
	}
	neg := amount < 0
	mag := uint64(amount)
	if neg {
		mag = -mag // two's complement: correct for math.MinInt64 too
	}
	hi, lo := bits.Mul64(mag, c.num)
	if hi >= c.den {
		return 0, false // quotient would not fit in 64 bits
	}
	q, r := bits.Div64(hi, lo, c.den)
	if r >= c.den-r { // 2r >= den: half or more rounds away from zero
		q++
		if q == 0 {
			return 0, false
		}
	}
	if q > math.MaxInt64 {
		return 0, false
	}
	if neg {
		return -int64(q), true
	}
	return int64(q), true
}
