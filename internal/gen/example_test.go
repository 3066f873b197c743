package gen_test

import (
	"fmt"
	"time"

	"valora/internal/gen"
)

func Example() {
	p := gen.DefaultParams()
	p.Customers = 1000
	p.Seed = 42
	g, err := gen.New(p)
	if err != nil {
		panic(err)
	}
	var ev gen.Event
	for range 4 {
		g.Next(&ev)
		at := time.UnixMilli(ev.OccurredAt()).UTC().Format(time.DateTime)
		switch ev.Kind {
		case gen.KindInteraction:
			fmt.Println(at, ev.EventID(), ev.Interaction.Channel, ev.Interaction.Type)
		case gen.KindPurchase:
			fmt.Println(at, ev.EventID(), ev.Purchase.Kind, ev.Purchase.AmountMinor, ev.Purchase.Currency)
		}
	}
	// Output:
	// 2024-01-01 00:23:08 c00000747-i0 STORE consent_granted
	// 2024-01-01 02:29:51 c00000283-i0 APP consent_granted
	// 2024-01-01 05:08:45 c00000429-i0 STORE consent_granted
	// 2024-01-01 08:50:45 c00000283-p0 PURCHASE 5654 USD
}
