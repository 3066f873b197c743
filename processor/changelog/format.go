package changelog

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Record kinds (the first byte of a key) and the value format.
const (
	KindCustomer   byte = 'c'
	KindCheckpoint byte = 'k'
	// Format is the first byte of every value and cycle header.
	Format byte = 1
	// HeaderLen is the length of the header before a value's payload.
	HeaderLen = 1 + 8
)

// HeaderCycle is the changelog header of a customer tombstone: the cycle
// that erased the customer, encoded as a value header.
const HeaderCycle = "valora.cycle"

// ErrRecord marks a changelog record this build cannot read.
var ErrRecord = errors.New("changelog record")

// Checkpoint is a decoded checkpoint record.
type Checkpoint struct {
	Cycle      uint64
	StreamTime int64
	// Next is the next offset of each input topic the task had read.
	Next map[string]int64
	// Since is the changelog offset at which the checkpoint's incarnation
	// took the task over; -1 when not recorded.
	Since int64
}

// Applies reports whether a customer record of cycle at offset, buffered
// before cp, is part of the state cp completes.
func (cp *Checkpoint) Applies(cycle uint64, offset int64) bool {
	return cp.Since < 0 || offset < cp.Since || cycle>>32 == cp.Cycle>>32
}

// AppendHeader appends the header of a value written in cycle.
func AppendHeader(dst []byte, cycle uint64) []byte {
	dst = append(dst, Format)
	return binary.BigEndian.AppendUint64(dst, cycle)
}

// AppendCheckpoint appends a checkpoint value with the positions of the
// topics that have one (pos[i] >= 0 is the next offset of topics[i]).
func AppendCheckpoint(dst []byte, cycle uint64, streamTime int64, topics []string, pos []int64, since int64) []byte {
	dst = AppendHeader(dst, cycle)
	dst = binary.BigEndian.AppendUint64(dst, uint64(streamTime))
	n := 0
	for _, p := range pos {
		if p >= 0 {
			n++
		}
	}
	dst = binary.AppendUvarint(dst, uint64(n))
	for i, p := range pos {
		if p < 0 {
			continue
		}
		dst = binary.AppendUvarint(dst, uint64(len(topics[i])))
		dst = append(dst, topics[i]...)
		dst = binary.BigEndian.AppendUint64(dst, uint64(p))
	}
	return binary.BigEndian.AppendUint64(dst, uint64(since))
}

// ParseHeader returns a value's cycle and payload.
func ParseHeader(v []byte) (cycle uint64, payload []byte, err error) {
	if len(v) < HeaderLen {
		return 0, nil, fmt.Errorf("%w: value of %d bytes is too short", ErrRecord, len(v))
	}
	if v[0] != Format {
		return 0, nil, fmt.Errorf("%w: format %d is not one this build reads (a newer valora wrote it?)", ErrRecord, v[0])
	}
	return binary.BigEndian.Uint64(v[1:9]), v[HeaderLen:], nil
}

// CustomerRecord returns a customer record's cycle and payload; deleted is
// set for a tombstone, whose cycle is in HeaderCycle.
func CustomerRecord(rec *kgo.Record) (cycle uint64, payload []byte, deleted bool, err error) {
	if rec.Value != nil {
		cycle, payload, err = ParseHeader(rec.Value)
		return cycle, payload, false, err
	}
	for _, h := range rec.Headers {
		if h.Key == HeaderCycle {
			cycle, _, err = ParseHeader(h.Value)
			return cycle, nil, true, err
		}
	}
	return 0, nil, false, fmt.Errorf("%w: customer tombstone without a %s header", ErrRecord, HeaderCycle)
}

// TombstoneHeaders returns the headers of a tombstone written in cycle.
func TombstoneHeaders(cycle uint64) []kgo.RecordHeader {
	return []kgo.RecordHeader{{Key: HeaderCycle, Value: AppendHeader(make([]byte, 0, HeaderLen), cycle)}}
}

// DecodeCheckpoint decodes a checkpoint value.
func DecodeCheckpoint(v []byte) (Checkpoint, error) {
	cycle, b, err := ParseHeader(v)
	if err != nil {
		return Checkpoint{}, err
	}
	bad := fmt.Errorf("%w: truncated checkpoint", ErrRecord)
	if len(b) < 8 {
		return Checkpoint{}, bad
	}
	cp := Checkpoint{Cycle: cycle, StreamTime: int64(binary.BigEndian.Uint64(b)), Next: map[string]int64{}, Since: -1}
	b = b[8:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > 64 {
		return Checkpoint{}, bad
	}
	b = b[k:]
	for range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < l+8 {
			return Checkpoint{}, bad
		}
		topic := string(b[k : k+int(l)])
		b = b[k+int(l):]
		cp.Next[topic] = int64(binary.BigEndian.Uint64(b))
		b = b[8:]
	}
	switch len(b) {
	case 0: // written before since existed
	case 8:
		cp.Since = int64(binary.BigEndian.Uint64(b))
	default:
		return Checkpoint{}, bad
	}
	return cp, nil
}
