package state

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCollector(t *testing.T) {
	s := openTest(t)
	b := s.NewBatch()
	defer b.Close()
	for i := range 500 {
		b.PutCustomer(0, fmt.Sprintf("c%04d", i), make([]byte, 100))
	}
	b.SetOffset(0, "purchases", 500)
	mustCommit(t, b)
	if err := s.DB().Flush(); err != nil {
		t.Fatal(err)
	}

	c := NewCollector(s)
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatalf("CollectAndLint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}

	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatalf("Register: %v", err)
	}
	// One flush happened; the WAL holds at least the batch's bytes.
	want := `
# HELP valora_pebble_flushes_total Memtable flushes since the store was opened.
# TYPE valora_pebble_flushes_total counter
valora_pebble_flushes_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "valora_pebble_flushes_total"); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		switch {
		case m.Gauge != nil:
			got[mf.GetName()] = m.Gauge.GetValue()
		case m.Counter != nil:
			got[mf.GetName()] = m.Counter.GetValue()
		case m.Histogram != nil:
			got[mf.GetName()] = float64(m.Histogram.GetSampleCount())
		}
	}
	if v := got["valora_pebble_wal_bytes_written_total"]; v < 500*100 {
		t.Errorf("wal_bytes_written_total = %v, want >= %d", v, 500*100)
	}
	if v := got["valora_pebble_disk_usage_bytes"]; v <= 0 {
		t.Errorf("disk_usage_bytes = %v, want > 0", v)
	}
	if v := got["valora_pebble_wal_fsync_duration_seconds"]; v < 1 {
		t.Errorf("wal_fsync_duration_seconds has %v samples, want >= 1 (the batch was synced)", v)
	}
	if n := testutil.CollectAndCount(c); n != 17 {
		t.Errorf("collector exports %d metrics, want 17", n)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Errorf("collector over a closed store exports %d metrics, want 0", n)
	}
}
