package state

import (
	"encoding/binary"
	"fmt"
)

// Key kinds: the first byte of every key in the store. Each kind owns a
// disjoint part of the key space, so a prefix scan of one kind never sees
// another.
//
// Partitioned kinds are followed by the partition number as 4 bytes big-endian
// (the int32 reinterpreted as uint32), so all keys of one (kind, partition)
// pair share a fixed 5-byte prefix and no partition's range overlaps
// another's, whatever the bytes that follow:
//
//	'c' | partition(4) | customerID               customer record (enveloped value)
//	'o' | partition(4) | topic                    next input offset to consume (8 bytes BE)
//	'm' | name                                    store metadata (not partitioned)
//	't' | partition(4) | dueMillis(8 BE) | customerID   timer index, in due-time order (empty value)
//	's' | partition(4)                            task clock: stream time and timer digest
//	'l' | partition(4)                            changelog checkpoint: next changelog offset (8 bytes BE)
//
// Any other first byte is invalid.
const (
	KindCustomer  byte = 'c'
	KindOffset    byte = 'o'
	KindMeta      byte = 'm'
	KindTimer     byte = 't'
	KindClock     byte = 's'
	KindChangelog byte = 'l'
)

// partitionedPrefixLen is the length of kind byte plus partition.
const partitionedPrefixLen = 1 + 4

// metaFormatName is the name of the meta key that holds the store format.
const metaFormatName = "format"

// AppendPartitionPrefix appends the key prefix shared by every key of the
// given partitioned kind and partition, and returns the extended slice.
func AppendPartitionPrefix(dst []byte, kind byte, partition int32) []byte {
	dst = append(dst, kind)
	return binary.BigEndian.AppendUint32(dst, uint32(partition))
}

// AppendCustomerKey appends the key of a customer record and returns the
// extended slice. It does not allocate when dst has enough capacity.
func AppendCustomerKey[ID ~string | ~[]byte](dst []byte, partition int32, customerID ID) []byte {
	dst = AppendPartitionPrefix(dst, KindCustomer, partition)
	return append(dst, customerID...)
}

// AppendOffsetKey appends the key of the stored input offset of a topic and
// returns the extended slice.
func AppendOffsetKey[T ~string | ~[]byte](dst []byte, partition int32, topic T) []byte {
	dst = AppendPartitionPrefix(dst, KindOffset, partition)
	return append(dst, topic...)
}

// AppendTimerKey appends the key of a timer index entry: due time (event
// time in milliseconds, at least 0) big-endian so that keys sort in due-time
// order, then the customer id.
func AppendTimerKey[ID ~string | ~[]byte](dst []byte, partition int32, due int64, customerID ID) []byte {
	dst = AppendPartitionPrefix(dst, KindTimer, partition)
	dst = binary.BigEndian.AppendUint64(dst, uint64(due))
	return append(dst, customerID...)
}

// AppendMetaKey appends the key of a store metadata entry and returns the
// extended slice.
func AppendMetaKey(dst []byte, name string) []byte {
	dst = append(dst, KindMeta)
	return append(dst, name...)
}

// DecodeKey splits a store key into its kind, partition and the bytes after
// the prefix (customer id, topic, meta name, ...). rest aliases k. For the
// unpartitioned meta kind, partition is 0 and rest is the name.
//
// It returns an error wrapping ErrInvalidKey for an empty key, an unknown
// kind, or a partitioned key shorter than its 5-byte prefix, and for a timer
// key without its 8-byte due time.
func DecodeKey(k []byte) (kind byte, partition int32, rest []byte, err error) {
	if len(k) == 0 {
		return 0, 0, nil, fmt.Errorf("decode key: empty: %w", ErrInvalidKey)
	}
	kind = k[0]
	switch kind {
	case KindMeta:
		return kind, 0, k[1:], nil
	case KindCustomer, KindOffset, KindTimer, KindClock, KindChangelog:
	default:
		return 0, 0, nil, fmt.Errorf("decode key: unknown kind 0x%02x: %w", kind, ErrInvalidKey)
	}
	if len(k) < partitionedPrefixLen {
		return 0, 0, nil, fmt.Errorf("decode key: kind %q: %d bytes, want at least %d: %w",
			kind, len(k), partitionedPrefixLen, ErrInvalidKey)
	}
	partition = int32(binary.BigEndian.Uint32(k[1:partitionedPrefixLen]))
	rest = k[partitionedPrefixLen:]
	if kind == KindTimer && len(rest) < 8 {
		return 0, 0, nil, fmt.Errorf("decode key: timer key without due time: %w", ErrInvalidKey)
	}
	return kind, partition, rest, nil
}

// prefixSuccessor returns the smallest key greater than every key that starts
// with prefix, for use as an exclusive upper bound, or nil if there is none
// (prefix is all 0xff). It appends to dst.
func prefixSuccessor(dst, prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xff {
			dst = append(dst, prefix[:i+1]...)
			dst[len(dst)-1]++
			return dst
		}
	}
	return nil
}

// partitionBounds returns the [lower, upper) bounds of all keys of one kind
// and partition.
func partitionBounds(kind byte, partition int32) (lower, upper []byte) {
	lower = AppendPartitionPrefix(make([]byte, 0, partitionedPrefixLen), kind, partition)
	upper = prefixSuccessor(make([]byte, 0, partitionedPrefixLen), lower)
	return lower, upper
}
