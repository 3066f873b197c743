package processor

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/kafkatest"
)

// ownedTasks returns r's tasks by partition number, as the task values it
// runs (a task that was stopped and started again is a new value).
func ownedTasks(r *running) map[int32]*task {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	return maps.Clone(r.p.tasks)
}

// TestCooperativeRebalance checks that a rebalance stops only the tasks
// that move: a second instance joins a group whose one instance owns all
// six tasks, and the first instance's three remaining tasks run on, never
// stopped (the same task values, their goroutines alive), through the
// rebalance and after it; when the second instance leaves, the first takes
// its tasks back, again without stopping its own. Every record is handled
// once, by whichever instance owns its task.
func TestCooperativeRebalance(t *testing.T) {
	h := newHarness(t, 6)
	group := kafkatest.Name(t, "g")
	dirA := t.TempDir()
	a := h.start(dirA, group)
	var batch []*kgo.Record
	for i := range 60 {
		batch = append(batch, h.buy(fmt.Sprintf("cust-%02d", i), day(1), 100))
	}
	a.send(batch...)
	before := ownedTasks(a)
	if len(before) != 6 {
		t.Fatalf("the only instance owns %d tasks, want 6", len(before))
	}

	b := h.start(t.TempDir(), group)
	kafkatest.Eventually(t, 90*time.Second, func() error {
		if na, nb := len(ownedTasks(a)), len(ownedTasks(b)); na != 3 || nb != 3 {
			return fmt.Errorf("tasks owned: %d and %d, want 3 and 3", na, nb)
		}
		return nil
	})
	kept := ownedTasks(a)
	for part, tk := range kept {
		if before[part] != tk {
			t.Errorf("task %d was stopped and started again on the instance that kept it", part)
		}
		select {
		case <-tk.done:
			t.Errorf("task %d kept by the first instance has exited", part)
		default:
		}
	}
	for part := range ownedTasks(b) {
		if _, ok := kept[part]; ok {
			t.Fatalf("task %d is owned by both instances", part)
		}
		select {
		case <-before[part].done: // moved: its old goroutine finished
		default:
			t.Errorf("task %d moved but still runs on its old owner", part)
		}
	}

	// buyAll gives each customer one more purchase on day d and waits
	// until both instances together have handled want records.
	buyAll := func(d int, want float64) {
		t.Helper()
		var batch []*kgo.Record
		for i := range 60 {
			batch = append(batch, h.buy(fmt.Sprintf("cust-%02d", i), day(d), 100))
		}
		h.b.Produce(t, batch...)
		kafkatest.Eventually(t, 90*time.Second, func() error {
			if got := a.handled() + b.handled(); got < want {
				return fmt.Errorf("%v of %v records handled", got, want)
			}
			return nil
		})
	}
	// Both instances process: each customer gets a second purchase.
	buyAll(2, 120)

	if err := b.shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	kafkatest.Eventually(t, 90*time.Second, func() error {
		if n := len(ownedTasks(a)); n != 6 {
			return fmt.Errorf("the remaining instance owns %d tasks, want 6", n)
		}
		return nil
	})
	for part, tk := range kept {
		if now := ownedTasks(a)[part]; now != tk {
			t.Errorf("task %d was restarted when the other instance left", part)
		}
	}
	// A third purchase for everyone, all on the first instance: the tasks
	// it took back were restored with both earlier purchases.
	buyAll(3, 180)
	if err := a.shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	got := snapshot(t, dirA)
	if len(got) != 60 {
		t.Fatalf("%d customers in the remaining instance's store, want 60", len(got))
	}
	for id, c := range got {
		if c.Purchases != 3 {
			t.Errorf("%s: %d purchases, want 3 (one a day, each counted once)", id, c.Purchases)
		}
	}
}
