package processor

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/kafkatest"
	"valora/schemas"
)

// TestLiveMergesBacklogAcrossFetches starts a live processor (kfake) on a
// backlog whose interactions take several fetches while the purchases of
// the same weeks come in the first: the records must be applied in
// event-time order across fetches, so none is late and each customer
// equals a replay's of the same records.
func TestLiveMergesBacklogAcrossFetches(t *testing.T) {
	h := newHarness(t, 1)
	const (
		interactions = 30000 // about 3 MiB: several fetches of 1 MiB
		purchases    = 600
		customers    = 500
	)
	var recs []*kgo.Record
	pad := make([]byte, 64)
	for i := range interactions {
		id := fmt.Sprintf("c%04d", i%customers)
		at := t0.Add(time.Duration(i) * time.Minute).UnixMilli()
		recs = append(recs, h.interaction(schemas.Interaction{EventID: fmt.Sprintf("i%d", i), CustomerID: id, OccurredAt: at, Attributes: map[string]string{"pad": string(pad)}}))
	}
	for i := range purchases {
		id := fmt.Sprintf("c%04d", (i*7)%customers)
		at := t0.Add(time.Duration(i*interactions/purchases)*time.Minute + 30*time.Second).UnixMilli()
		recs = append(recs, h.buy(id, at, 1000+int64(i)))
	}
	h.b.Produce(t, recs...)

	dirL := t.TempDir()
	live := h.start(dirL, kafkatest.Name(t, "live"), func(c *Config) { c.Time = TimeEvent })
	live.waitHandled(t, float64(len(recs)))
	if late := sumCounter(live.p.m.late); late != 0 {
		t.Errorf("%v records counted late: the inputs were not merged in event-time order across fetches", late)
	}
	if err := live.shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	r := h.withOutputs()
	dirR := t.TempDir()
	r.replay(t, dirR, kafkatest.Name(t, "replay"), h.bounds(t), 0)
	got, want := snapshot(t, dirR), snapshot(t, dirL)
	if len(got) != customers || len(want) != customers {
		t.Fatalf("customers: replay %d, live %d, want %d", len(got), len(want), customers)
	}
	for id, l := range want {
		g := got[id]
		g.Version, l.Version = 0, 0 // counts intermediate changes
		if !reflect.DeepEqual(g, l) {
			t.Errorf("customer %s:\nreplay %+v\n  live %+v", id, g, l)
		}
	}
}
