package processor

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FuzzChangelogState feeds ChangelogState (the restore's reading of a
// changelog partition) arbitrary records: it must return an error or a
// state, never panic, and a record it accepts as a customer must come back
// byte for byte once a checkpoint follows.
func FuzzChangelogState(f *testing.F) {
	topics := [numSources]string{"interactions", "purchases", "customer-erasures"}
	pos := [numSources]int64{12, 7, -1}
	cp := appendCheckpoint(nil, 5, 1700000000000, &topics, &pos, 0)
	f.Add([]byte("calice"), append(appendChangelogHeader(nil, 5), 2, 4, 'x'), []byte(nil), []byte("k"), cp)
	f.Add([]byte("cbob"), []byte(nil), appendChangelogHeader(nil, 5), []byte("k"), cp)
	f.Add([]byte("c"), []byte{1}, []byte{}, []byte("k"), []byte{1, 0, 0, 0, 0, 0, 0, 0, 5, 0})
	f.Add([]byte("z"), []byte("?"), []byte(nil), []byte(""), []byte(nil))
	f.Fuzz(func(t *testing.T, key, value, cycleHeader, cpKey, cpValue []byte) {
		rec := &kgo.Record{Key: key, Value: value}
		if cycleHeader != nil {
			rec.Headers = []kgo.RecordHeader{{Key: HeaderCycle, Value: cycleHeader}}
		}
		st, err := ChangelogState([]*kgo.Record{rec, {Key: cpKey, Value: cpValue, Offset: 1}})
		if err != nil {
			return
		}
		cp, cpErr := decodeCheckpoint(cpValue)
		cycle, _, _, recErr := changelogCustomerRecord(rec)
		if len(key) > 0 && key[0] == changelogCustomer && value != nil && len(cpKey) > 0 && cpKey[0] == changelogCheckpoint &&
			cpErr == nil && recErr == nil && cp.applies(cycle, rec.Offset) {
			if got, ok := st[string(key[1:])]; !ok || !bytes.Equal(got, value[changelogHeaderLen:]) {
				t.Fatalf("customer %q: got %x (found %v), want %x", key[1:], got, ok, value[changelogHeaderLen:])
			}
		}
	})
}
