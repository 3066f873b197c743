package gen

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkNext measures event generation over large populations with the
// default mix of interactions, purchases and refunds.
func BenchmarkNext(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		b.Run(fmt.Sprintf("customers=%d", n), func(b *testing.B) {
			p := DefaultParams()
			p.Customers = n
			g, err := New(p)
			if err != nil {
				b.Fatal(err)
			}
			var ev Event
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if !g.Next(&ev) {
					b.StopTimer()
					g, _ = New(p)
					b.StartTimer()
					g.Next(&ev)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkNew measures building a population of a million customers and
// the memory it keeps.
func BenchmarkNew(b *testing.B) {
	const n = 1_000_000
	p := DefaultParams()
	p.Customers = n
	var perCustomer float64
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		g, err := New(p)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		perCustomer = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(g)
		b.StartTimer()
	}
	b.ReportMetric(perCustomer, "B/customer")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/customer")
}
