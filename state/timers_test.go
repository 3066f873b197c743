package state

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

type timerEntry struct {
	due int64
	id  string
}

func scanTimers(t *testing.T, s *Store, p int32, from, to int64) []timerEntry {
	t.Helper()
	var got []timerEntry
	if err := s.ScanTimers(p, from, to, func(due int64, id []byte) error {
		got = append(got, timerEntry{due, string(id)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestTimerIndexOrder checks that the index yields entries in (due, id)
// order within [from, to], whatever the insertion order, never another
// partition's, and that deletes and range deletes take effect.
func TestTimerIndexOrder(t *testing.T) {
	s := openTest(t)
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 0))
		p := int32(seed)
		var want []timerEntry
		b := s.NewBatch()
		for i := range 200 {
			e := timerEntry{rng.Int64N(1 << 40), fmt.Sprintf("c%03d", rng.IntN(50))}
			if i%7 == 0 {
				e.due = 1 << 20 // ties on due: ordered by id
			}
			if slices.Contains(want, e) {
				continue
			}
			want = append(want, e)
			b.PutTimer(p, e.due, e.id)
			b.PutTimer(p+1000, e.due, "other") // another partition
		}
		// Delete a third of them again.
		keep := want[:0]
		for i, e := range want {
			if i%3 == 0 {
				b.DeleteTimer(p, e.due, e.id)
				continue
			}
			keep = append(keep, e)
		}
		want = keep
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(want, func(a, b timerEntry) int {
			if a.due != b.due {
				return int(min(max(a.due-b.due, -1), 1))
			}
			return compareStrings(a.id, b.id)
		})
		if got := scanTimers(t, s, p, 0, 1<<63-1); !slices.Equal(got, want) {
			t.Fatalf("seed %d: scan order\n got %v\nwant %v", seed, got, want)
		}
		from, to := want[len(want)/4].due, want[len(want)*3/4].due
		var sub []timerEntry
		for _, e := range want {
			if e.due >= from && e.due <= to {
				sub = append(sub, e)
			}
		}
		if got := scanTimers(t, s, p, from, to); !slices.Equal(got, sub) {
			t.Fatalf("seed %d: range [%d,%d]\n got %v\nwant %v", seed, from, to, got, sub)
		}
		n, err := s.CountTimers(p)
		if err != nil || n != len(want) {
			t.Fatalf("seed %d: CountTimers = %d, %v; want %d", seed, n, err, len(want))
		}
		b.DeleteTimers(p)
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		if got := scanTimers(t, s, p, 0, 1<<63-1); len(got) != 0 {
			t.Fatalf("seed %d: %d entries after DeleteTimers", seed, len(got))
		}
		if got := scanTimers(t, s, p+1000, 0, 1<<63-1); len(got) == 0 {
			t.Fatalf("seed %d: DeleteTimers removed another partition's entries", seed)
		}
	}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestTimerScanStop(t *testing.T) {
	s := openTest(t)
	b := s.NewBatch()
	for i := range 10 {
		b.PutTimer(3, int64(i), "x")
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	n := 0
	err := s.ScanTimers(3, 0, 100, func(int64, []byte) error {
		n++
		if n == 4 {
			return ErrStopScan
		}
		return nil
	})
	if err != nil || n != 4 {
		t.Fatalf("scan with stop: n=%d err=%v, want 4 <nil>", n, err)
	}
}

func TestClockRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.Clock(7); err != nil || found {
		t.Fatalf("Clock of a new partition: found=%v err=%v", found, err)
	}
	b := s.NewBatch()
	b.SetClock(7, Clock{StreamTime: 1_700_000_000_123, TimerDigest: []byte("digest-1")})
	b.SetOffset(7, "purchases", 42)
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestDir(t, dir)
	c, found, err := s.Clock(7)
	if err != nil || !found || c.StreamTime != 1_700_000_000_123 || string(c.TimerDigest) != "digest-1" {
		t.Fatalf("Clock after reopen = %+v, %v, %v", c, found, err)
	}
}
