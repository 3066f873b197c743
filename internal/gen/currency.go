package gen

import "slices"

// currencyInfo is a currency's fixed reference rate and minor-unit digits.
type currencyInfo struct {
	perUSD float64
	digits int
}

// referenceRates are fixed, approximate exchange rates (units per US
// dollar) and ISO 4217 minor-unit digits. They are not market data: they
// only make amounts in different currencies comparable in simulations.
var referenceRates = map[string]currencyInfo{
	"USD": {1, 2},
	"EUR": {0.92, 2},
	"GBP": {0.79, 2},
	"CHF": {0.88, 2},
	"JPY": {150, 0},
	"CAD": {1.36, 2},
	"AUD": {1.52, 2},
	"NZD": {1.65, 2},
	"CNY": {7.2, 2},
	"INR": {83, 2},
	"BRL": {5, 2},
	"MXN": {17, 2},
	"SEK": {10.5, 2},
	"NOK": {10.6, 2},
	"DKK": {6.9, 2},
	"PLN": {4, 2},
	"KRW": {1330, 0},
	"KWD": {0.31, 3},
}

// ReferenceRate returns the fixed rate (units of code per US dollar) and
// the number of minor-unit digits the generator uses for code, and whether
// code is known. A simulation whose base currency is B converts an amount
// of currency C to B by multiplying by rate(B)/rate(C); a policy that
// scores generated traffic should use the same rates.
func ReferenceRate(code string) (perUSD float64, digits int, ok bool) {
	c, ok := referenceRates[code]
	return c.perUSD, c.digits, ok
}

// KnownCurrencies returns the codes ReferenceRate knows, sorted.
func KnownCurrencies() []string {
	out := make([]string, 0, len(referenceRates))
	for c := range referenceRates {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}
