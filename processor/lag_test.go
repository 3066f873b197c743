package processor

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"valora/processor/score"
	"valora/schemas"
	"valora/state"
)

// TestConsumerLagGauges drives a task's tick with a listing of end offsets
// and an injected clock: the lag in records is end minus position, and the
// lag in seconds is 0 when caught up and otherwise the age of the last
// record the task handled. No broker: the gauges depend only on the task.
func TestConsumerLagGauges(t *testing.T) {
	st, err := state.Open(state.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	codec, err := schemas.NewCodec(context.Background(), schemas.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	reg := prometheus.NewRegistry()
	p, err := New(Config{
		Brokers: []string{"127.0.0.1:1"}, Group: "g", Topics: DefaultTopics(), Policy: score.DefaultPolicy(),
		Codec: codec, Store: st, Registerer: reg, Time: TimeEvent, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	tk := newTask(p, 3, nil)
	r := &running{p: p, reg: reg}
	// Interactions: behind by 40 records, the last handled record 90 s
	// old. Purchases: caught up.
	tk.pos = [numSources]int64{60, 500}
	tk.lastTs = [numSources]time.Time{now.Add(-90 * time.Second), now.Add(-time.Hour)}
	p.ends.Store(int32(3), &endOffsets{end: [numSources]int64{100, 500}, at: time.Now()})
	if err := tk.tick(); err != nil {
		t.Fatal(err)
	}
	if got := gaugeValue(t, r, "valora_consumer_lag_records"); got != 40 {
		t.Errorf("lag records %v, want 40", got)
	}
	if got := gaugeValue(t, r, "valora_consumer_lag_seconds"); got != 90 {
		t.Errorf("lag seconds %v, want 90 (interactions 90, purchases caught up 0)", got)
	}
	// Caught up on both: 0 seconds.
	tk.pos[0] = 100
	if err := tk.tick(); err != nil {
		t.Fatal(err)
	}
	if got := gaugeValue(t, r, "valora_consumer_lag_seconds"); got != 0 {
		t.Errorf("lag seconds %v when caught up, want 0", got)
	}
	// The gauges go with the task.
	tk.pos[0] = 60
	if err := tk.tick(); err != nil {
		t.Fatal(err)
	}
	if got := gaugeValue(t, r, "valora_consumer_lag_seconds"); got != 90 {
		t.Fatalf("lag seconds %v, want 90", got)
	}
	tk.dropGauges()
	if got := gaugeValue(t, r, "valora_consumer_lag_seconds"); got != 0 {
		t.Errorf("lag seconds %v after the task stopped", got)
	}
}
