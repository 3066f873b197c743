package clv

import (
	"strconv"
	"testing"

	"valora/internal/gen"
)

// simulated is a population drawn by internal/gen.
type simulated struct {
	sums   []Summary // every buyer's summary, in days
	alive  []bool    // whether the buyer was still active at the end
	spends []Spend   // the repeat buyers' spends, in dollars
}

// simulate runs internal/gen with purchases only (no prospects,
// interactions or refunds), observed until Start+Horizon. Each purchase is
// a transaction: BG/NBD is a model in continuous time, so purchases on the
// same day are not merged here.
func simulate(tb testing.TB, p gen.Params) simulated {
	tb.Helper()
	sim, err := simulateErr(p)
	if err != nil {
		tb.Fatal(err)
	}
	return sim
}

func simulateErr(p gen.Params) (simulated, error) {
	p.ProspectShare = 0
	p.InteractionRate = 0
	p.EngagementDays = 0
	p.RefundShare = 0
	p.ComplaintShare = 0
	p.Currencies = []string{"USD"}
	g, err := gen.New(p)
	if err != nil {
		return simulated{}, err
	}
	type acc struct {
		first, last int64
		n           int64
		firstAmt    int64
		sum         int64
	}
	cs := make([]acc, p.Customers)
	var ev gen.Event
	for g.Next(&ev) {
		if ev.Kind != gen.KindPurchase {
			continue
		}
		i, err := strconv.Atoi(ev.Purchase.CustomerID[1:])
		if err != nil {
			return simulated{}, err
		}
		c := &cs[i]
		if c.n == 0 {
			c.first = ev.Purchase.OccurredAt
			c.firstAmt = ev.Purchase.AmountMinor
		}
		c.n++
		c.last = ev.Purchase.OccurredAt
		c.sum += ev.Purchase.AmountMinor
	}
	end := p.Start.Add(p.Horizon).UnixMilli()
	var out simulated
	for i, c := range cs {
		if c.n == 0 {
			continue
		}
		s := SummaryAt(c.n-1, c.first, c.last, end, Day)
		out.sums = append(out.sums, s)
		out.alive = append(out.alive, g.Truth(i).Alive)
		if s.X > 0 {
			out.spends = append(out.spends, Spend{X: s.X, Mean: float64(c.sum-c.firstAmt) / 100 / float64(s.X)})
		}
	}
	return out, nil
}
