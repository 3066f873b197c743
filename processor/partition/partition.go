package partition

import "hash/crc32"

// Partitioner names a function that producers use to place a record's
// key in a partition.
type Partitioner string

// The partitioners.
const (
	// Murmur2: murmur2 of the key, high bit cleared, modulo the partition
	// count. The Java client's default and franz-go's
	// (kgo.StickyKeyPartitioner with kgo.KafkaHasher(murmur2)), and
	// librdkafka's "murmur2_random".
	Murmur2 Partitioner = "murmur2"
	// CRC32: CRC-32 (IEEE) of the key, as an unsigned 32-bit number,
	// modulo the partition count: librdkafka's default,
	// "consistent_random" (rd_crc32(key) % partition_cnt), used by kcat,
	// confluent-kafka-python and confluent-kafka-go. ("random" applies
	// only to records without a key.)
	CRC32 Partitioner = "crc32"
)

// Valid reports whether p is one of the partitioners.
func (p Partitioner) Valid() bool { return p == Murmur2 || p == CRC32 }

// Partition returns the partition of key among n (n > 0); any other
// value than CRC32 is Murmur2. It does not allocate.
func (p Partitioner) Partition(key []byte, n int) int32 {
	if p == CRC32 {
		return int32(crc32.ChecksumIEEE(key) % uint32(n))
	}
	return int32((murmur2(key) & 0x7fffffff) % uint32(n))
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
