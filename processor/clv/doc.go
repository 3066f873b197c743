// Package clv holds valora's customer-base models: BG/NBD, MBG/NBD and
// Pareto/NBD for the number of future purchases and the probability that a
// customer is still active (P(alive)), Gamma-Gamma for the value of a
// purchase, and their combination into a discounted customer lifetime
// value. It fits the models by maximum likelihood (FitBGNBD, FitMBGNBD,
// FitParetoNBD, FitGammaGamma) and evaluates them per customer (PAlive,
// ExpectedPurchases, GammaGamma.ExpectedSpend, Model.Evaluate).
//
// MBG/NBD (Batislam, Denizel and Filiztekin, "Empirical validation and
// comparison of models for customer base analysis", IJRM, 2007) differs
// from BG/NBD in one assumption: a customer may drop out right after the
// first purchase too. Under BG/NBD a customer who bought once has P(alive)
// = 1 forever; under MBG/NBD it falls with the time since that purchase.
// Pareto/NBD (Schmittlein, Morrison and Colombo, 1987) lets a customer drop
// out at any time, after an exponential lifetime; its likelihood and
// P(alive) contain 2F1(1, b; c; z) (after Euler's transformation), its
// conditional expectation is closed-form, and P(alive)'s crossing time has
// no closed form (PAliveFallsBelow solves for it). Its fit takes the
// gradient by central differences. A Model's Count names the model it uses.
//
// The package is pure computation: no I/O, no clock, no state of its own.
// The per-customer functions do not allocate and are safe for concurrent
// use; a fit may use several goroutines, which it starts and waits for
// before returning.
//
// # Conventions
//
// The models follow Fader, Hardie and Lee, "Counting Your Customers the
// Easy Way: An Alternative to the Pareto/NBD Model" (Marketing Science,
// 2005) for BG/NBD, and Fader, Hardie and Lee, "RFM and CLV: Using
// Iso-Value Curves for Customer Base Analysis" (Journal of Marketing
// Research, 2005) and Fader and Hardie, "The Gamma-Gamma Model of Monetary
// Value" (2013), for Gamma-Gamma. A customer's calibration data is a Summary:
//
//   - X is the number of repeat purchases: the distinct purchase days after
//     the day of the first purchase. The first purchase is not counted and
//     purchases on the same day are merged into one.
//   - Tx (t_x, recency) is the time from the first purchase to the last
//     purchase; it is 0 when X is 0.
//   - T is the time from the first purchase to the end of the calibration
//     period.
//
// Both times are measured from the first purchase, which is the origin of
// the model's clock. A customer without a purchase has no Summary.
//
// For Gamma-Gamma, a customer's spend is the mean value of the X repeat
// purchases (the first purchase excluded, as for X); the fit uses only
// customers with X > 0 and a positive mean.
//
// # Time unit
//
// The package works in one time unit chosen by the caller, a TimeUnit: a
// day or a week. Tx, T, every horizon t and the BG/NBD rate parameter Alpha
// are in that unit; R, A and B carry no unit. A fit in weeks and a fit in
// days of the same data give the same R, A and B and an Alpha seven times
// larger in days (the log-likelihoods differ by a constant). Money carries
// no unit either: Gamma's unit is that of the spends given to the fit
// (valora uses major units of the policy's base currency, e.g. dollars, as
// the published estimates do).
//
// # Lifetime value
//
// A Model combines the two fits with a horizon H (in the time unit) and an
// annual discount rate d. Model.Evaluate gives, for one customer, P(alive),
// the expected number of purchases over H, the expected value of a purchase
// (Gamma-Gamma, shrinking the customer's mean spend towards the population
// mean), and the customer lifetime value over H:
//
//	CLV = E[spend] · Σ_k (E[Y(t_k)] - E[Y(t_(k-1))]) · (1+d)^(-t_k / year)
//
// with t_k = k·H/Steps: the purchases expected in each of Steps equal
// periods are discounted from the period's end. It does not allocate.
//
// # Fitting
//
// FitBGNBD and FitGammaGamma return the maximum-likelihood estimates with
// their asymptotic standard errors and the maximised log-likelihood. They
// refuse data that break the conventions (ErrInvalidData), data with fewer
// than MinRepeatBuyers repeat buyers (ErrTooFewRepeatBuyers), and fits
// whose optimum is not finite (ErrNotConverged); a Gamma-Gamma fit with
// q <= 1 is returned with ErrQNotAboveOne, since its mean spend does not
// exist.
//
// # Numerics
//
// The conditional expectation of BG/NBD contains a Gauss hypergeometric
// function 2F1(r+x, b+x; a+b+x-1; z) multiplied by ((α+T)/(α+T+t))^(r+x):
// the first factor overflows and the second underflows for large x. This
// package uses Euler's transformation, which turns the product into
// (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), whose series converges faster
// as x grows, and evaluates (1 - (1-z)^(a-1) 2F1(...)) / (a-1) directly, so
// the result is accurate for every x (tested up to 10,000) and at a = 1. The
// series needs about as many terms as z^n takes to reach machine precision,
// z = t/(α+T+t); for a horizon t many times α+T (z above 0.98) it switches
// to gonum's mathext.Hypergeo.
//
// Likelihoods are maximised over the logarithms of the parameters with
// gonum's BFGS and analytic gradients. Terms that depend only on x are
// computed once per distinct x, so a likelihood evaluation costs a few
// logarithms per customer; customers are split into fixed-size chunks
// summed in a fixed order, so a fit gives the same result whatever the
// number of CPUs.
package clv
