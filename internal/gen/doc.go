// Package gen simulates a customer base with known parameters and emits
// its interactions, purchases and refunds in event-time order. It feeds
// `valora gen`, `valora dev` and `valora bench`, and gives tests and
// calibration checks a population whose truth is known (Generator.Truth).
// It is pure computation: no Kafka, no I/O, no wall clock.
//
// # Time unit
//
// Every rate is per day and every duration parameter is in days.
// Published BG/NBD fits often use weeks: r, a and b carry no time unit and
// stay as they are, while the Gamma rate alpha scales with the unit, so a
// weekly alpha becomes 7*alpha per day. DefaultParams does this for the
// CDNOW estimates (alpha = 4.414 per week = 30.898 per day). Event times
// are Unix milliseconds, as in the schemas.
//
// # Model
//
// Customer i first touches the business at a time drawn uniformly over
// [Start, Start+ArrivalDays). A share ProspectShare of customers are
// prospects: they interact and never buy. Every other customer is a buyer
// under BG/NBD and Gamma-Gamma:
//
//   - lambda ~ Gamma(R, rate Alpha) is the purchase rate while alive and
//     p ~ Beta(A, B) the dropout probability.
//   - The first purchase comes LeadDays (mean, exponential) after the first
//     touch, which is an interaction; with InteractionRate 0 the first touch
//     is the first purchase. The first purchase is BG/NBD's time origin.
//   - Repeat purchases follow a Poisson process with rate lambda. After each
//     repeat purchase the customer drops out with probability p (the
//     standard BG/NBD assumption: dropout happens only right after a
//     purchase), and then produces no further purchases or interactions.
//     So the number of repeat purchases in (0, t] after the first has
//     the BG/NBD expectation E[X(t)] for the customers of a cohort.
//   - nu ~ Gamma(Q, rate Gamma) per customer; each purchase's value is
//     z ~ Gamma(P, rate nu) in major units of the base currency
//     Currencies[0], independent of the purchase process. The mean purchase
//     value over the population is P*Gamma/(Q-1) (for Q > 1).
//   - A purchase is paid in a currency drawn uniformly from Currencies; z
//     is converted with the fixed rates of ReferenceRate and rounded to
//     that currency's minor units (at least 1), so converting back to the
//     base currency gives z up to rounding.
//   - With probability RefundShare a purchase is refunded, 1 day plus an
//     exponential delay of mean 9 days later, with the same amount,
//     currency, channel, category and items. Refunds of purchases made
//     before a dropout still arrive.
//
// Interactions: each customer has an interaction rate InteractionRate
// times a Gamma(2, rate 2) factor (mean 1). Interactions form a Poisson
// process from the first touch; after each one, engagement ends with
// probability 1/(1+rate*EngagementDays), which makes the engagement
// lifetime exponential with mean EngagementDays. Interactions also end when
// the customer drops out. Channels favour WEB, APP and EMAIL and include
// every channel (FAX and OTHER rarely). A share ComplaintShare of
// interactions is negative: a "complaint" on the drawn channel, or on the
// SURVEY channel a survey_response scored 0..4. Every SURVEY interaction
// carries a satisfaction score 0..10 and no other does. Service and consent
// events take the place of a drawn type (no draw of their own): a
// customer's first interaction, unless negative or on SURVEY, is
// consent_granted on its channel; after a complaint, the customer's next
// positive interaction on PHONE, EMAIL or CHAT is complaint_resolved; and
// an email_reply that is the customer's interaction number 3k (k > 0) is
// consent_withdrawn on EMAIL. EMAIL, SOCIAL and
// complaint interactions carry one attribute (campaign, network, reason);
// the others have a nil attribute map.
//
// Skew > 0 multiplies customer i's lambda and interaction rate by
// (i+1)^-Skew, normalised to a population mean of 1: hot keys for
// benchmarks. The BG/NBD expectations then no longer hold for the
// population as drawn, only per customer given Truth.
//
// # Termination
//
// Only events before Start+Horizon are generated; Horizon 0 means MaxSpan
// (100 years), which every run reaches or ends before: buyers stop when
// they drop out, and everyone stops interacting when their engagement
// ends. Next returns false when no event is left.
//
// # Identifiers
//
// Customer i's id is "c" followed by i in eight zero-padded digits. Event
// ids are the customer id followed by "-p<n>" for the customer's purchase
// n, "-r<n>" for the refund of purchase n and "-i<n>" for interaction n,
// counting from 0: unique, deterministic, and a refund names its purchase.
//
// # Determinism
//
// The event sequence is a function of Params alone. Each customer draws
// from its own counter-based random streams keyed by (Seed, customer
// index), one for its latent parameters, one for purchases and one for
// interactions, so:
//
//   - the same Params give the same events, field for field, in every
//     run (across CPU architectures a fused multiply-add may, rarely, move
//     a value by a rounding step);
//   - a customer's purchases do not depend on the interaction parameters
//     and vice versa, and with Skew 0 customer i's events do not depend on
//     the population size;
//   - a shorter Horizon gives a prefix (by time) of the longer run.
//
// Events come in nondecreasing OccurredAt order, ties broken by customer
// index, and a customer's events come in the order the customer made them.
// The exact sequence may change between versions of this package.
//
// # Cost
//
// A Generator keeps about 92 bytes per customer (64 of state, 16 for its
// next event in a radix heap of event times, 9 for its id, and block
// slack) plus the refunds not yet due, and Next allocates only the event id
// string. The radix heap reads memory sequentially, so a large population
// costs mostly the one cache miss on the customer's state per event. The values that
// Satisfaction, Category and Attributes point to are shared between events
// and must not be modified.
package gen
