// Package score is valora's pure scoring logic: it applies purchases and
// interactions to a schemas.Customer, derives the customer's RFM scores,
// tier, churn flag and lifecycle stage under a Policy, computes when a
// timer must re-evaluate a customer, and builds the TierChange records. It
// does no I/O (besides LoadPolicy reading a policy file), starts no
// goroutines and keeps no state of its own: the caller owns each Customer,
// and one Policy may be shared by any number of goroutines.
//
// # Time and money
//
// Every time is event time in Unix milliseconds; 0 means "never", so an
// event time must lie in 1..MaxEventTime. Windows in a Policy are whole days
// (DayMs). Calendar days, used for repeat purchases, are UTC days
// (floor(t / DayMs)).
//
// Money is an int64 count of minor units. Amounts are converted to the base
// currency's minor units with the policy's rate and the ISO 4217 exponents of
// both currencies (MinorUnits), exactly (the rate is read as the shortest
// decimal that denotes the YAML float, 1.08 = 108/100) and rounded half away
// from zero. A currency that is neither the base nor in Rates is an error
// (ErrUnknownCurrency), as is a result outside int64 (ErrOverflow).
//
// # Scores
//
// At evaluation time now, with d = floor((now - LastPurchase) / DayMs):
//
//	R = 5 if d <= recency_days[0], 4 if <= [1], 3 if <= [2], 2 if <= [3], else 1
//	F = 1 if Purchases <= frequency[0], 2 if <= [1], 3 if <= [2], 4 if <= [3], else 5
//	M = 1 if MonetaryMinor <= monetary_minor[0] (or <= 0), ... 5 above [3]
//	FM = (F + M + 1) / 2 (integer division: a half rounds up)
//
// Boundaries are inclusive upper limits. Frequency counts PURCHASE events,
// free ones (amount 0) included; MonetaryMinor is purchases minus refunds
// and may be negative. A REFUND must have a positive amount. A customer
// with no purchase is not scored: R, F and M are 0.
//
// # Tiers
//
// A customer with no purchase is in the policy's ProspectTier. Otherwise
// the tier is the first rule of Policy.Tiers, in order, whose R, F, M and FM
// ranges all hold the customer's scores. Validate guarantees that every
// combination of scores matches a rule and that every rule is the first
// match of at least one combination.
//
// # Lifecycle and churn
//
// Idle time is now - LastActivity, where activity is any purchase, refund or
// interaction. The stage at now is the first that applies:
//
//	prospect     no purchase
//	churned      idle >= churn.inactivity_days
//	at_risk      RiskUntil > now, or idle >= lifecycle.at_risk_days
//	reactivated  ReactivatedAt != 0 and now - ReactivatedAt < lifecycle.reactivated_days
//	new          now - FirstPurchase < lifecycle.new_days
//	active       otherwise
//
// The churn flag (ChurnRisk) is set exactly when the stage is churned (by
// inactivity, or by the P(alive) rule below); a prospect is never churned. A purchase (not a refund) by a customer who has
// bought before sets ReactivatedAt to its time t when it ends a churn: t is
// no older than the last activity, the customer was churned before it (the
// stored stage is churned, or the idle time at t reaches
// churn.inactivity_days), and is not churned after it (max(t, EvaluatedAt) -
// t < churn.inactivity_days). An interaction ends a churn too but does not
// count as a reactivation. An interaction whose type is in
// risk.complaint_types raises RiskUntil to at least its time +
// risk.complaint_days, unless a resolution at or after it is known; one
// whose satisfaction is at or below risk.low_satisfaction raises it to at
// least its time + risk.risk_days. An interaction whose type is in
// risk.resolution_types resolves every complaint at or before its time:
// RiskUntil falls to what low scores and later complaints keep. RiskReason
// names the rule behind an at_risk or churned stage.
//
// # Profile
//
// Besides what scoring needs, a Customer keeps what its profile shows
// (ProfileTo): complaint and resolution counts and times, the latest
// satisfaction score, the latest interaction time and consent event per
// channel (consent.grant_types and consent.withdraw_types; the latest by
// event time wins, a withdrawal over a grant at the same time), and its
// categories by net spend, at most categories.tracked of them (a purchase
// without a category counts as Uncategorised; a refund subtracts from its
// category).
//
// # Lifetime value, P(alive) churn and value classes
//
// A policy with Models (written by `valora calibrate`) evaluates, at every
// evaluation of a customer with a purchase, the models on the customer's
// BG/NBD summary at the evaluation time now (x = RepeatDays, t_x =
// LastPurchase - FirstPurchase, T = now - FirstPurchase, in the models'
// time unit) and the mean purchase value MonetaryMinor / Purchases in major
// units (the first purchase included: valora keeps totals, not each
// purchase). The Outcome carries the result, and TierChange copies P(alive),
// the expected purchases over the horizon and the discounted CLV (in base
// minor units) into the record. A prospect has no model values.
//
// With churn.p_alive_below set, a buyer whose P(alive) at now under the
// models' count model is below it is churned as if idle past
// churn.inactivity_days (the stage is churned and the flag set). Under
// BG/NBD (models.model bgnbd, the default) only repeat buyers (RepeatDays >
// 0) can be: a one-time buyer's P(alive) is 1; under MBG/NBD (mbgnbd) and
// Pareto/NBD (paretonbd) a one-time buyer's falls too. P(alive) falls as T grows, so NextDeadline
// includes the time it crosses the threshold (clv.Model.PAliveFallsBelow):
// the timer fires then.
//
// With value_classes set, the value class is derived from the CLV and the
// monetary value at each evaluation (see ValueClasses); without, it is
// null. The class is re-derived at every evaluation, by event or by timer.
// The CLV of a silent customer decays continuously, and finding the exact
// time it crosses a threshold would cost a search over CLV evaluations for
// every change of every customer; instead NextDeadline schedules a review
// at most value_classes.review_days after each evaluation while the class
// is above below_zero (with below_zero_clv_minor 0, only while the customer
// has been idle less than three inactivity windows), so a class moves
// within review_days of its CLV crossing. A review may find no change: that is the one deadline that can
// fire for nothing.
//
// # Events
//
// ApplyPurchase and ApplyInteraction check the event completely before
// changing anything, so an invalid event (ErrInvalidEvent,
// ErrUnknownCurrency, ErrOverflow, ErrDuplicateEvent) leaves the customer as
// it was. Counts and
// sums (Purchases, Refunds, MonetaryMinor, the per-channel counters) do not
// depend on the order of events; times that must not go back are maxima
// (LastActivity, LastPurchase, RiskUntil) or minima (FirstSeen,
// FirstPurchase), so a late event never moves them the wrong way. RepeatDays
// (BG/NBD's x) counts the distinct UTC days with a purchase after the day of
// the first purchase: a purchase on a day after the last purchase day, or
// before the first purchase day, adds one; one on the first or last day
// merges. A late purchase strictly between the first and the last purchase
// day is not counted, since the days in between are not kept.
//
// # Duplicates
//
// A customer's state remembers the hashes of its last
// dedup.window_events applied events (Customer.RecentEventHashes, oldest
// first; see Dedup). An event whose kind and event_id hash to one of them
// is rejected with ErrDuplicateEvent and changes nothing, Version included.
// The check comes after the event's own checks (time, kind, amount,
// channel, currency, satisfaction) and before the customer-dependent
// overflow check, so a malformed repeat is reported for what is wrong with
// it. Hence, for any sequence of events, inserting repeats of applied
// events, each with fewer than window_events other applied events of the
// customer between it and its original, leaves the final customer exactly
// as without them.
//
// After applying an event the customer is evaluated at max(event time,
// EvaluatedAt): evaluation time never goes backwards, so a late event is
// scored at the latest time already seen for that customer.
//
// # Versions and changes
//
// Customer.Version grows by exactly one for each applied event, and by one
// for each direct Evaluate (a timer, a policy change) whose Outcome is
// Changed; nothing else changes it. An Outcome is Changed when the tier,
// churn flag, lifecycle stage, value class or treatment differs from before
// (a treatment missing from state written before treatments is filled in
// without a change), and on a
// customer's first evaluation (HadPrevious false, detected as EvaluatedAt
// == 0). Scores alone changing is not a change. The caller publishes a
// TierChange, whose EventID is CustomerID:Version, for each Changed
// Outcome; Versions in the stream are therefore strictly increasing but may
// skip numbers.
//
// NextDeadline gives the earliest time after EvaluatedAt at which Evaluate
// would report a change with no new event, so a timer set to it never misses
// a change and, but for value class reviews, never fires for nothing (the
// next event reschedules it).
//
// # Treatments
//
// The treatment table (Policy.Treatments, compiled into an array indexed by
// tier, value class, stage, churn flag and risk reason) gives each customer
// at each evaluation the first matching rule's treatment, action and
// relationship; Validate proves that every combination Evaluate can derive
// has a rule and every rule is first for one. Segments totals lifetime
// value against the relationships' cost per segment.
//
// # Performance
//
// ApplyPurchase, ApplyInteraction, Evaluate and NextDeadline do not allocate
// once the customer's per-channel counters exist and its duplicate window is
// full (or disabled); TierChange allocates the record's strings and
// pointers.
package score
