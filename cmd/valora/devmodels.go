package main

import (
	"cmp"
	"fmt"

	"valora/internal/gen"
	"valora/processor/clv"
	"valora/processor/score"
)

// devValueClasses are the value-class thresholds dev scores its traffic
// with, in US cents, for the generator's money scale (a purchase is worth
// p*gamma/(q-1), about 35 USD, on average under its default spend model).
// They are what valora calibrate derives from dev's own state, rounded:
// the top fifth of CLV is high (high_yield when the customer's spending is
// in the top fifth too), the bottom fifth is below_zero.
var devValueClasses = score.ValueClasses{
	ReviewDays:             score.DefaultReviewDays,
	HighYieldCLVMinor:      3500,
	HighYieldMonetaryMinor: 8000,
	HighPotentialCLVMinor:  3500,
	BelowZeroCLVMinor:      700,
}

// devModels returns the lifetime-value models of the generator's own
// customer base: gen draws purchase counts from BG/NBD and purchase values
// from Gamma-Gamma, in days and in major units of its first currency,
// which are exactly the parameters the scorer's models take. The CLV's
// horizon and discount rate below give the usual one-year view, which
// dev's value-class thresholds were chosen for.
func devModels(p gen.Params) *clv.Model {
	return &clv.Model{
		Unit:         clv.Day,
		Count:        clv.CountBGNBD,
		BGNBD:        clv.BGNBD{R: p.R, Alpha: p.Alpha, A: p.A, B: p.B},
		GammaGamma:   clv.GammaGamma{P: p.P, Q: p.Q, Gamma: p.Gamma},
		Horizon:      365,
		DiscountRate: 0.1,
	}
}

// devPolicy gives pol the generator's models and dev's value classes,
// unless pol has models of its own, and says on one line which models run
// and where they came from. pol is validated again.
func devPolicy(pol *score.Policy, policyFile string, p gen.Params) (string, error) {
	if pol.Models != nil {
		m := pol.Models
		return fmt.Sprintf("models: %s and Gamma-Gamma from --policy %s (value classes: %v)",
			cmp.Or(string(m.Count), string(clv.CountBGNBD)), policyFile, pol.ValueClasses != nil), nil
	}
	if cur := cmp.Or(firstOr(p.Currencies), "USD"); cur != pol.BaseCurrency || cur != "USD" {
		return "", usagef("--models: the generator's spend is in %s and its value classes in US cents, the policy's base_currency is %s; give --models=false or a policy with models",
			cur, pol.BaseCurrency)
	}
	pol.Models = devModels(p)
	if pol.ValueClasses == nil {
		vc := devValueClasses
		pol.ValueClasses = &vc
	}
	pol.Version += "+gen-models"
	if err := pol.Validate(); err != nil {
		return "", usagef("--models with the generator's parameters (--bgnbd, --gamma-gamma): %v", err)
	}
	vc := pol.ValueClasses
	return fmt.Sprintf("models: BG/NBD r=%g alpha=%g a=%g b=%g (per day), Gamma-Gamma p=%g q=%g gamma=%g (USD): the generator's own parameters (--bgnbd, --gamma-gamma); "+
		"CLV over 365 days at 10%%/year; value classes high at CLV >= %.2f USD (high_yield if spent >= %.2f USD), below_zero under %.2f USD; --models=false turns them off",
		p.R, p.Alpha, p.A, p.B, p.P, p.Q, p.Gamma,
		vc.HighYieldCLVMinor/100, float64(vc.HighYieldMonetaryMinor)/100, vc.BelowZeroCLVMinor/100), nil
}

func firstOr(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
