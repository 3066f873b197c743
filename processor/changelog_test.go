package processor

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestChangelogLateWrites: a previous owner's write that reaches the log
// after the new owner's restore read it (a killed at-least-once process's
// last produce) is not applied; records of complete earlier cycles are.
// (Once compacted, a late write that supersedes the new owner's record of
// the same customer leaves neither: at-least-once has no fencing, see
// the Guarantees of docs/design.md.)
func TestChangelogLateWrites(t *testing.T) {
	topics := [numSources]string{"i", "p", ""}
	pos := [numSources]int64{1, 1, -1}
	const a, b = uint64(7) << 32, uint64(9) << 32 // two incarnations
	cust := func(off int64, id string, cycle uint64, v byte) *kgo.Record {
		return &kgo.Record{Offset: off, Key: []byte("c" + id), Value: append(appendChangelogHeader(nil, cycle), v)}
	}
	ckpt := func(off int64, cycle uint64, since int64) *kgo.Record {
		return &kgo.Record{Offset: off, Key: []byte("k"), Value: appendCheckpoint(nil, cycle, 0, &topics, &pos, since)}
	}
	log := []*kgo.Record{
		cust(0, "x", a|1, 1), cust(1, "y", a|1, 1), ckpt(2, a|1, 0), // owner A
		cust(3, "x", b|1, 2), ckpt(4, b|1, 3), // owner B restored up to offset 3
		cust(5, "x", a|2, 9), // A's late write
		cust(6, "y", b|2, 2), ckpt(7, b|2, 3),
	}
	for name, recs := range map[string][]*kgo.Record{"full": log, "compacted": compactForTest(log[:5])} {
		st, err := ChangelogState(recs)
		if err != nil {
			t.Fatal(err)
		}
		wantY := "\x02"
		if name == "compacted" { // A's complete cycle, its checkpoint compacted away
			wantY = "\x01"
		}
		if string(st["x"]) != "\x02" || string(st["y"]) != wantY {
			t.Errorf("%s: x=%x y=%x, want x=02 (B's; A's late x dropped) and y=%x", name, st["x"], st["y"], wantY)
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
