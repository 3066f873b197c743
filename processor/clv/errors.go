package clv

import "errors"

// Errors returned by the package, each wrapped with context; test with
// errors.Is.
var (
	// ErrInvalidData is returned by the fits for an observation that breaks
	// the conventions: a negative count, a time that is negative, NaN or
	// infinite, t_x > T, a non-positive or non-finite mean spend.
	ErrInvalidData = errors.New("clv: invalid data")
	// ErrInvalidParams is returned by Validate for model parameters that
	// are not positive and finite, or for a Model setting out of range.
	ErrInvalidParams = errors.New("clv: invalid parameters")
	// ErrTooFewRepeatBuyers is returned by a fit when fewer than
	// MinRepeatBuyers customers made a repeat purchase: the likelihood then
	// has no useful maximum.
	ErrTooFewRepeatBuyers = errors.New("clv: too few repeat buyers to fit")
	// ErrNotConverged is returned by a fit when the optimiser stops without
	// reaching a maximum, or when a parameter runs off to 0 or infinity
	// (the data support no finite estimate).
	ErrNotConverged = errors.New("clv: fit did not converge")
	// ErrQNotAboveOne is returned by FitGammaGamma when the fitted q is at
	// most 1: the population mean spend p*gamma/(q-1) does not exist, so
	// the model cannot predict spend. The fit is returned with the error.
	ErrQNotAboveOne = errors.New("clv: Gamma-Gamma q <= 1, mean spend undefined")
)
