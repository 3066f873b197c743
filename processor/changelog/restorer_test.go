package changelog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"valora/state"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

var testTopics = []string{"i", "p", ""}

func cust(off int64, id string, cycle uint64, v ...byte) *kgo.Record {
	return &kgo.Record{Offset: off, Key: []byte("c" + id), Value: append(AppendHeader(nil, cycle), v...)}
}

func tomb(off int64, id string, cycle uint64) *kgo.Record {
	return &kgo.Record{Offset: off, Key: []byte("c" + id), Headers: TombstoneHeaders(cycle)}
}

func ckpt(off int64, cycle uint64, since int64) *kgo.Record {
	return &kgo.Record{Offset: off, Key: []byte("k"), Value: AppendCheckpoint(nil, cycle, 1000+off, testTopics, []int64{off, off, -1}, since)}
}

func openStore(t testing.TB) *state.Store {
	t.Helper()
	s, err := state.Open(state.Options{Dir: filepath.Join(t.TempDir(), "state"), CacheSize: 8 << 20, MemTableSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func readState(t testing.TB, recs []*kgo.Record) map[string][]byte {
	t.Helper()
	st, err := ReadState(context.Background(), t.TempDir(), recs)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestChangelogLateWrites: a previous owner's write that reaches the log
// after the new owner's restore read it (a killed at-least-once process's
// last produce) is not applied; records of complete earlier cycles are.
// (Once compacted, a late write that supersedes the new owner's record of
// the same customer leaves neither: at-least-once has no fencing, see
// the Guarantees of docs/design.md.)
func TestChangelogLateWrites(t *testing.T) {
	const a, b = uint64(7) << 32, uint64(9) << 32 // two incarnations
	log := []*kgo.Record{
		cust(0, "x", a|1, 1), cust(1, "y", a|1, 1), ckpt(2, a|1, 0), // owner A
		cust(3, "x", b|1, 2), ckpt(4, b|1, 3), // owner B restored up to offset 3
		cust(5, "x", a|2, 9), // A's late write
		cust(6, "y", b|2, 2), ckpt(7, b|2, 3),
	}
	for name, recs := range map[string][]*kgo.Record{"full": log, "compacted": compactForTest(log[:5])} {
		st := readState(t, recs)
		wantY := "\x02"
		if name == "compacted" { // A's complete cycle, its checkpoint compacted away
			wantY = "\x01"
		}
		if string(st["x"]) != "\x02" || string(st["y"]) != wantY {
			t.Errorf("%s: x=%x y=%x, want x=02 (B's; A's late x dropped) and y=%x", name, st["x"], st["y"], wantY)
		}
	}
}

// TestRestorerStore checks what a restore leaves in the store besides the
// customers: the last checkpoint's input positions, stream time and the
// changelog position after it; the tail no checkpoint follows is not
// applied but reported; tombstones erase; Wipe replaces what the
// partition held before.
func TestRestorerStore(t *testing.T) {
	ctx := context.Background()
	for _, o := range []Options{{}, {Ingest: true}, {Pipeline: true}, {Ingest: true, Pipeline: true}} {
		t.Run(fmt.Sprintf("%+v", o), func(t *testing.T) {
			s := openStore(t)
			const part = 3
			b := s.NewBatch()
			b.PutCustomer(part, "old", []byte{7})
			b.PutCustomer(part+1, "other", []byte{8})
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
			b.Close()
			o.Wipe = true
			recs := []*kgo.Record{
				cust(0, "x", 1, 1), cust(1, "y", 1, 1), ckpt(2, 1, -1),
				tomb(3, "x", 2), cust(4, "z", 2, 3), ckpt(5, 2, -1),
				cust(6, "y", 3, 9), // a tail
			}
			tail, err := Restore(ctx, s, part, recs, o)
			if err != nil {
				t.Fatal(err)
			}
			if len(tail) != 1 || string(tail[0]) != "y" {
				t.Errorf("tail %q, want [y]", tail)
			}
			got := map[string]string{}
			if err := s.ScanCustomers(part, func(id, v []byte) error { got[string(id)] = string(v); return nil }); err != nil {
				t.Fatal(err)
			}
			if want := map[string]string{"y": "\x01", "z": "\x03"}; !reflect.DeepEqual(got, want) {
				t.Errorf("customers %q, want %q", got, want)
			}
			if v, found, err := s.GetCustomer(part+1, []byte("other"), nil); err != nil || !found || !bytes.Equal(v, []byte{8}) {
				t.Errorf("another partition's customer: %x %v %v", v, found, err)
			}
			offs, err := s.Offsets(part)
			if err != nil || !reflect.DeepEqual(offs, map[string]int64{"i": 5, "p": 5}) {
				t.Errorf("offsets %v %v, want i=5 p=5", offs, err)
			}
			clock, _, err := s.Clock(part)
			if err != nil || clock.StreamTime != 1005 {
				t.Errorf("stream time %d %v, want 1005", clock.StreamTime, err)
			}
			next, found, err := s.ChangelogNext(part)
			if err != nil || !found || next != 6 {
				t.Errorf("changelog next %d %v %v, want 6", next, found, err)
			}
		})
	}
}

// TestRestorerModes: the restore's modes (through ingested tables, with
// the committer goroutine, flushed along the way as a standby does) leave
// the same customers as the plain one, over many random logs large enough
// to cross the batch and table bounds.
func TestRestorerModes(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a few hundred thousand records")
	}
	ctx := context.Background()
	s := openStore(t)
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 1))
		var recs []*kgo.Record
		off := int64(0)
		for c := uint64(1); off < 120_000; c++ {
			for range rng.IntN(2000) {
				id := fmt.Sprint("c", rng.IntN(5000))
				if rng.IntN(10) == 0 {
					recs = append(recs, tomb(off, id, c))
				} else {
					recs = append(recs, cust(off, id, c, bytes.Repeat([]byte{byte(c)}, 1+rng.IntN(400))...))
				}
				off++
			}
			recs = append(recs, ckpt(off, c, -1))
			off++
		}
		var want map[string]string
		for i, o := range []Options{{}, {Ingest: true}, {Pipeline: true}, {Ingest: true, Pipeline: true}, {Wipe: true}} {
			part := int32(seed*10) + int32(i)
			if o.Wipe {
				// Flushed after every 1000 records, as a standby does.
				r := NewRestorer(ctx, s, part, o)
				for j, rec := range recs {
					if err := r.Add(ctx, rec); err != nil {
						t.Fatal(err)
					}
					if j%1000 == 999 {
						if err := r.Flush(ctx); err != nil {
							t.Fatal(err)
						}
					}
				}
				if err := r.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				r.Close()
			} else if _, err := Restore(ctx, s, part, recs, o); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			if err := s.ScanCustomers(part, func(id, v []byte) error { got[string(id)] = string(v); return nil }); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				want = got
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d, %+v: %d customers differ from the plain restore's %d", seed, o, len(got), len(want))
			}
		}
	}
}

// compactForTest keeps the last record of each key, in offset order.
func compactForTest(recs []*kgo.Record) []*kgo.Record {
	last := map[string]int{}
	for i, r := range recs {
		last[string(r.Key)] = i
	}
	var out []*kgo.Record
	for i, r := range recs {
		if last[string(r.Key)] == i {
			out = append(out, r)
		}
	}
	return out
}
