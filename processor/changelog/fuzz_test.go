package changelog

import (
	"bytes"
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FuzzRestore feeds the restorer arbitrary records, restoring them into a
// Pebble store as a task's restore does: it must return an error or a
// state, never panic, and a record it accepts as a customer must come back
// from the store byte for byte once a checkpoint follows. Each input gets
// a partition of its own in one store.
func FuzzRestore(f *testing.F) {
	cp := AppendCheckpoint(nil, 5, 1700000000000, []string{"interactions", "purchases", "customer-erasures"}, []int64{12, 7, -1}, 0)
	f.Add([]byte("calice"), append(AppendHeader(nil, 5), 2, 4, 'x'), []byte(nil), []byte("k"), cp, false)
	f.Add([]byte("cbob"), []byte(nil), AppendHeader(nil, 5), []byte("k"), cp, true)
	f.Add([]byte("c"), []byte{1}, []byte{}, []byte("k"), []byte{1, 0, 0, 0, 0, 0, 0, 0, 5, 0}, false)
	f.Add([]byte("z"), []byte("?"), []byte(nil), []byte(""), []byte(nil), false)
	s := openStore(f)
	part := int32(0)
	f.Fuzz(func(t *testing.T, key, value, cycleHeader, cpKey, cpValue []byte, ingest bool) {
		part++
		rec := &kgo.Record{Key: key, Value: value}
		if cycleHeader != nil {
			rec.Headers = []kgo.RecordHeader{{Key: HeaderCycle, Value: cycleHeader}}
		}
		if _, err := Restore(context.Background(), s, part, []*kgo.Record{rec, {Key: cpKey, Value: cpValue, Offset: 1}}, Options{Ingest: ingest}); err != nil {
			return
		}
		cp, cpErr := DecodeCheckpoint(cpValue)
		cycle, _, _, recErr := CustomerRecord(rec)
		if len(key) > 0 && key[0] == KindCustomer && value != nil && len(cpKey) > 0 && cpKey[0] == KindCheckpoint &&
			cpErr == nil && recErr == nil && cp.Applies(cycle, rec.Offset) {
			got, found, err := s.GetCustomer(part, key[1:], nil)
			if err != nil || !found || !bytes.Equal(got, value[HeaderLen:]) {
				t.Fatalf("customer %q: got %x (found %v, err %v), want %x", key[1:], got, found, err, value[HeaderLen:])
			}
		}
	})
}
