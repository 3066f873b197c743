package processor

import (
	"fmt"
	"hash/crc32"
)

// Partitioner names the function that producers of the input topics use to
// place a record's key (the customer id) in a partition. A task holds the
// customers whose keys the function maps to its partition, so every input
// record must be in that partition: one elsewhere would be applied to a
// task that does not own the customer, beside the customer's state in its
// own task. The HTTP lookup finds a customer's task with the same function.
type Partitioner string

// The partitioners.
const (
	// PartitionerMurmur2 (the default): murmur2 of the key, high bit
	// cleared, modulo the partition count. The Java client's default and
	// franz-go's (kgo.StickyKeyPartitioner with kgo.KafkaHasher(murmur2)),
	// and librdkafka's "murmur2_random".
	PartitionerMurmur2 Partitioner = "murmur2"
	// PartitionerCRC32: CRC-32 (IEEE) of the key, as an unsigned 32-bit
	// number, modulo the partition count: librdkafka's default,
	// "consistent_random" (rd_crc32(key) % partition_cnt), used by kcat,
	// confluent-kafka-python and confluent-kafka-go. ("random" applies
	// only to records without a key, which valora dead-letters.)
	PartitionerCRC32 Partitioner = "crc32"
)

// Partition returns the partition of key among n (n > 0). It does not
// allocate.
func (p Partitioner) Partition(key []byte, n int) int32 {
	if p == PartitionerCRC32 {
		return int32(crc32.ChecksumIEEE(key) % uint32(n))
	}
	return int32((murmur2(key) & 0x7fffffff) % uint32(n))
}

func (p Partitioner) validate() error {
	switch p {
	case PartitionerMurmur2, PartitionerCRC32:
		return nil
	}
	return fmt.Errorf("input_partitioner: %q is not one of %s, %s (how the producers of the input topics partition by key)",
		p, PartitionerMurmur2, PartitionerCRC32)
}

// murmur2 is Kafka's murmur2 hash (Utils.murmur2 in the Java client, the
// hash of kgo's default partitioner): MurmurHash2 with seed 0x9747b28c,
// reading the key as little-endian 32-bit words.
func murmur2(b []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	h := seed ^ uint32(len(b))
	for len(b) >= 4 {
		k := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
		b = b[4:]
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch len(b) {
	case 3:
		h ^= uint32(b[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(b[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(b[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
