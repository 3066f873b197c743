package processor

import (
	"strings"
	"testing"
	"time"

	"valora/state"
)

// handProcessor returns a processor built by hand (no broker) that owns
// task 0 of a one-partition topic over an empty store.
func handProcessor(t *testing.T) *Processor {
	t.Helper()
	st, err := state.Open(state.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tk := &task{}
	tk.beat.Store(time.Now().UnixNano())
	return &Processor{
		cfg:        Config{Store: st, StallTimeout: time.Hour},
		partitions: 1,
		tasks:      map[int32]*task{0: tk},
		ready:      make(chan struct{}),
	}
}

// TestReadiness checks each condition of readiness (/readyz) on a
// processor built by hand: tasks assigned, every task loaded, the brokers
// answering an offset listing recently.
func TestReadiness(t *testing.T) {
	p := handProcessor(t)
	select {
	case <-p.Ready():
		t.Fatal("ready before the first assignment")
	default:
	}
	close(p.ready)
	p.tasks = map[int32]*task{0: {}, 1: {}}
	p.tasks[0].loaded.Store(true)
	f := func(what string, wantLoading int, wantBrokers string) {
		t.Helper()
		tasks, loading, brokers := p.Readiness()
		if tasks != 2 || loading != wantLoading {
			t.Errorf("%s: %d tasks, %d loading; want 2, %d", what, tasks, loading, wantLoading)
		}
		switch {
		case wantBrokers == "" && brokers != nil:
			t.Errorf("%s: brokers %v, want none", what, brokers)
		case wantBrokers != "" && (brokers == nil || !strings.Contains(brokers.Error(), wantBrokers)):
			t.Errorf("%s: brokers %v, want %q", what, brokers, wantBrokers)
		}
	}
	f("one task loading, no listing yet", 1, "have not answered an offset listing recently")
	p.tasks[1].loaded.Store(true)
	f("no listing yet", 0, "have not answered an offset listing recently")
	p.listedAt.Store(time.Now().Add(-time.Hour).UnixNano())
	f("stale listing", 0, "have not answered an offset listing recently")
	p.listedAt.Store(time.Now().UnixNano())
	f("ready", 0, "")
	p.listFailing.Store(true)
	f("listing failed", 0, "did not answer the latest offset listing")
}

// TestTaskOf checks the lookup's first step: no answer before the
// processor knows its partitions, then the task and whether it is owned.
func TestTaskOf(t *testing.T) {
	p := handProcessor(t)
	p.partitions = 0
	if _, _, err := p.TaskOf("c1"); err == nil || !strings.Contains(err.Error(), "not started") {
		t.Errorf("before start: error %v, want not started", err)
	}
	p.partitions = 4
	for _, id := range []string{"c1", "c2", "c3", "c4", "c5"} {
		task, owned, err := p.TaskOf(id)
		if want := PartitionOf(id, 4); err != nil || task != want || owned != (task == 0) {
			t.Errorf("%s: task %d owned %v (%v); want task %d owned %v", id, task, owned, err, want, want == 0)
		}
	}
	if c, found, err := p.Customer(0, "c1"); err != nil || found || c != nil {
		t.Errorf("customer of an empty store: %v %v %v", c, found, err)
	}
}
