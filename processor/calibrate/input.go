package calibrate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"valora/processor/score"
	"valora/processor/txcsv"
	"valora/schemas"
	"valora/state"
)

// ReadState reads every customer of st, the state directory dir (which
// names it in the report and errors). A state keeps totals, so the
// calibration end (0: the latest event time in the state) must not be
// before any customer's last purchase: if it is, the error is a
// *StateEndError.
func ReadState(ctx context.Context, st *state.Store, dir string, calEnd int64, pol *score.Policy) (*Input, error) {
	parts, err := st.Partitions()
	if err != nil {
		return nil, err
	}
	exp, _ := score.MinorUnits(pol.BaseCurrency)
	unit := math.Pow10(exp)
	var all []customer
	var latest int64
	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var c schemas.Customer
		err := st.ScanCustomers(p, func(_, value []byte) error {
			if err := schemas.DecodeCustomer(value, &c); err != nil {
				return err
			}
			latest = max(latest, c.LastActivity, c.EvaluatedAt)
			if c.Purchases == 0 || c.FirstPurchase == 0 {
				return nil // a prospect
			}
			cc := customer{
				id: c.CustomerID, first: c.FirstPurchase, last: c.LastPurchase, x: c.RepeatDays,
				purchases: c.Purchases, monetary: c.MonetaryMinor,
			}
			if c.MonetaryMinor > 0 {
				cc.meanSpend = float64(c.MonetaryMinor) / float64(c.Purchases) / unit
			}
			all = append(all, cc)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("scan partition %d of %s: %w", p, dir, err)
		}
	}
	if calEnd == 0 {
		calEnd = latest
	}
	in := &Input{calEnd: calEnd, source: "state " + dir}
	var afterEnd int
	var lastPurchase int64
	for _, c := range all {
		lastPurchase = max(lastPurchase, c.last)
		switch {
		case c.first > calEnd:
			in.later++
		case c.last > calEnd:
			afterEnd++
		default:
			in.customers = append(in.customers, c)
		}
	}
	if afterEnd > 0 {
		return nil, &StateEndError{CalEnd: calEnd, After: afterEnd, LastPurchase: lastPurchase}
	}
	slices.SortFunc(in.customers, func(a, b customer) int { return cmp.Compare(a.id, b.id) })
	return in, nil
}

// txn is one transaction of a CSV: a purchase, or a refund (amount < 0),
// in base minor units.
type txn struct {
	at     int64
	amount int64
}

// ReadCSV reads a file of transactions and derives each customer's
// calibration data; source names the input in the report. The calibration
// end defaults (calEnd 0) to the last purchase; the holdout period ends at
// holdoutEnd, or without one at the last purchase after the calibration
// end. A holdout end not after the calibration end is a *HoldoutEndError,
// and the first bad row ends the reading with its *txcsv.RowError.
func ReadCSV(ctx context.Context, r io.Reader, c *txcsv.Config, source string, calEnd, holdoutEnd int64, pol *score.Policy) (*Input, error) {
	txns, err := readTxns(ctx, r, c, pol)
	if err != nil {
		return nil, err
	}
	var lastPurchase int64
	for _, ts := range txns {
		for _, t := range ts {
			if t.amount >= 0 {
				lastPurchase = max(lastPurchase, t.at)
			}
		}
	}
	if calEnd == 0 {
		calEnd = lastPurchase
	}
	in := &Input{calEnd: calEnd, source: source, histories: true}
	switch {
	case holdoutEnd != 0 && holdoutEnd <= calEnd:
		return nil, &HoldoutEndError{HoldoutEnd: holdoutEnd, CalEnd: calEnd}
	case holdoutEnd != 0:
		in.holdoutEnd = holdoutEnd
	case lastPurchase > calEnd:
		in.holdoutEnd = lastPurchase
	}
	exp, _ := score.MinorUnits(pol.BaseCurrency)
	unit := math.Pow10(exp)
	for id, ts := range txns {
		slices.SortStableFunc(ts, func(a, b txn) int { return cmp.Compare(a.at, b.at) })
		c := customer{id: id}
		// ts is in time order, so purchase days come in order: a day
		// differing from the previous purchase day is a new one.
		firstDay, lastDay := int64(-1), int64(-1)
		var repeatSpend int64
		for _, t := range ts {
			day := floorDiv(t.at, score.DayMs)
			if t.at > calEnd {
				if t.amount >= 0 && firstDay >= 0 && day != lastDay && t.at <= in.holdoutEnd {
					c.holdout++
					c.repeats = append(c.repeats, t.at)
					lastDay = day
				}
				continue
			}
			c.monetary += t.amount
			if t.amount < 0 {
				continue // a refund: monetary value only
			}
			c.purchases++
			if firstDay < 0 {
				firstDay, lastDay, c.first = day, day, t.at
			}
			if day != lastDay {
				c.x++
				c.repeats = append(c.repeats, t.at)
				lastDay = day
			}
			if day != firstDay {
				repeatSpend += t.amount
			}
			c.last = t.at
		}
		if firstDay < 0 {
			if len(ts) > 0 && ts[0].at > calEnd {
				in.later++
			}
			continue
		}
		if c.x > 0 && repeatSpend > 0 {
			c.meanSpend = float64(repeatSpend) / unit / float64(c.x)
		}
		in.customers = append(in.customers, c)
	}
	slices.SortFunc(in.customers, func(a, b customer) int { return cmp.Compare(a.id, b.id) })
	return in, nil
}

// floorDiv returns floor(a / b) for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// readTxns reads every row with a txcsv.Reader; the
// first bad row is an error. Amounts become base minor units, negative
// for a refund.
func readTxns(ctx context.Context, r io.Reader, m *txcsv.Config, pol *score.Policy) (map[string][]txn, error) {
	tr, err := txcsv.NewReader(r, m)
	if err != nil {
		return nil, err
	}
	out := map[string][]txn{}
	var t txcsv.Txn
	for n := 1; ; n++ {
		if n%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if err := tr.Next(&t); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		amount, err := pol.ToBase(t.Amount, t.Currency)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", t.Line, err)
		}
		if t.Kind == txcsv.Refund {
			amount = -amount
		}
		out[t.Customer] = append(out[t.Customer], txn{at: t.At, amount: amount})
	}
}

// StateEndError is a calibration end before some customer's last purchase
// in a state directory: a state keeps per-customer totals, not the time of
// each purchase, so it cannot be cut at an earlier time.
type StateEndError struct {
	// CalEnd and LastPurchase are Unix milliseconds; After counts the
	// customers who bought after CalEnd.
	CalEnd, LastPurchase int64
	After                int
}

func (e *StateEndError) Error() string {
	return fmt.Sprintf("calibration end %s: %d customers of the state bought after it (the last purchase is at %s)",
		time.UnixMilli(e.CalEnd).UTC().Format(time.RFC3339), e.After, time.UnixMilli(e.LastPurchase).UTC().Format(time.RFC3339))
}

// HoldoutEndError is a holdout end not after the calibration end (which,
// when not given, is the last purchase of the file).
type HoldoutEndError struct {
	// HoldoutEnd and CalEnd are Unix milliseconds.
	HoldoutEnd, CalEnd int64
}

func (e *HoldoutEndError) Error() string {
	return fmt.Sprintf("holdout end %s: want a time after the calibration end %s",
		time.UnixMilli(e.HoldoutEnd).UTC().Format(time.RFC3339), time.UnixMilli(e.CalEnd).UTC().Format(time.RFC3339))
}
