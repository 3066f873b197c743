package changelog

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFormatGolden pins the bytes on the wire: a changelog written by one
// build is restored by the next, so the encoding must not move.
func TestFormatGolden(t *testing.T) {
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if got, want := AppendHeader([]byte{'x'}, 0x0102030405060708), unhex("78"+"01"+"0102030405060708"); !bytes.Equal(got, want) {
		t.Errorf("header: got %x, want %x", got, want)
	}
	cycle := uint64(7)<<32 | 3
	cp := AppendCheckpoint(nil, cycle, 1700000000000,
		[]string{"interactions", "purchases", "customer-erasures"}, []int64{12, 7, -1}, 42)
	wantCP := unhex("01" + "0000000700000003" + // format, cycle
		"0000018bcfe56800" + "02" + // stream time, count
		"0c" + hex.EncodeToString([]byte("interactions")) + "000000000000000c" +
		"09" + hex.EncodeToString([]byte("purchases")) + "0000000000000007" +
		"000000000000002a") // since
	if !bytes.Equal(cp, wantCP) {
		t.Errorf("checkpoint:\n got %x\nwant %x", cp, wantCP)
	}
	got, err := DecodeCheckpoint(cp)
	if err != nil {
		t.Fatal(err)
	}
	want := Checkpoint{Cycle: cycle, StreamTime: 1700000000000, Next: map[string]int64{"interactions": 12, "purchases": 7}, Since: 42}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded checkpoint %+v, want %+v", got, want)
	}
	// A checkpoint written before since existed: no trailing 8 bytes.
	old, err := DecodeCheckpoint(wantCP[:len(wantCP)-8])
	if err != nil || old.Since != -1 || len(old.Next) != 2 {
		t.Errorf("checkpoint without since: %+v, %v; want since -1 and two topics", old, err)
	}
	th := TombstoneHeaders(cycle)
	if len(th) != 1 || th[0].Key != "valora.cycle" || !bytes.Equal(th[0].Value, unhex("010000000700000003")) {
		t.Errorf("tombstone headers %+v", th)
	}
	c, payload, deleted, err := CustomerRecord(&kgo.Record{Key: []byte("cid"), Headers: th})
	if err != nil || c != cycle || payload != nil || !deleted {
		t.Errorf("tombstone: cycle %x payload %x deleted %v err %v", c, payload, deleted, err)
	}
	c, payload, deleted, err = CustomerRecord(&kgo.Record{Key: []byte("cid"), Value: unhex("010000000700000003abcd")})
	if err != nil || c != cycle || !bytes.Equal(payload, []byte{0xab, 0xcd}) || deleted {
		t.Errorf("customer: cycle %x payload %x deleted %v err %v", c, payload, deleted, err)
	}
}

// TestFormatRefuses: values this build cannot read are errors wrapping
// ErrRecord, not misread state.
func TestFormatRefuses(t *testing.T) {
	good := AppendCheckpoint(nil, 1, 2, []string{"a"}, []int64{3}, 4)
	for name, v := range map[string][]byte{
		"short":        {1, 0, 0},
		"newer format": append([]byte{2}, good[1:]...),
		"truncated":    good[:len(good)-9],
		"trailing":     append(append([]byte(nil), good...), 0),
		"huge count":   append(AppendHeader(nil, 1), 0, 0, 0, 0, 0, 0, 0, 0, 65),
	} {
		if _, err := DecodeCheckpoint(v); err == nil || !errorsIs(err, ErrRecord) {
			t.Errorf("%s: err %v, want ErrRecord", name, err)
		}
	}
	if _, _, _, err := CustomerRecord(&kgo.Record{Key: []byte("cx")}); !errorsIs(err, ErrRecord) {
		t.Errorf("tombstone without header: err %v, want ErrRecord", err)
	}
}
