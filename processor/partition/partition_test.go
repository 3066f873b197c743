package partition

import (
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestPartitionerMatchesClients checks the two partitioners against the
// clients they stand for, over random keys of 0 to 64 bytes and partition
// counts of 1 to 100: murmur2 against kgo's default (StickyKeyPartitioner
// with KafkaHasher(murmur2), which places keys as the Java client does),
// crc32 against librdkafka's consistent partitioner written out
// (rd_crc32(key) % partition_cnt, unsigned) and against kgo's
// SaramaHasher(crc32.ChecksumIEEE), which franz-go documents as matching it.
// Kafka's own test vectors of murmur2 (UtilsTest) pin the hash itself.
func TestPartitionerMatchesClients(t *testing.T) {
	for key, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		if got := int32(murmur2([]byte(key))); got != want {
			t.Errorf("murmur2(%q) = %d, want %d (Kafka's UtilsTest)", key, got, want)
		}
	}
	kafka := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	sarama := kgo.StickyKeyPartitioner(kgo.SaramaHasher(crc32.ChecksumIEEE)).ForTopic("t")
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		key := make([]byte, rng.IntN(65))
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		n := 1 + rng.IntN(100)
		r := &kgo.Record{Key: key}
		if got, want := Murmur2.Partition(key, n), int32(kafka.Partition(r, n)); got != want {
			t.Fatalf("murmur2 %x over %d: %d, kgo's default %d", key, n, got, want)
		}
		got := CRC32.Partition(key, n)
		if want := int32(crc32.ChecksumIEEE(key) % uint32(n)); got != want {
			t.Fatalf("crc32 %x over %d: %d, librdkafka's %d", key, n, got, want)
		}
		if want := int32(sarama.Partition(r, n)); got != want {
			t.Fatalf("crc32 %x over %d: %d, kgo's SaramaHasher(crc32) %d", key, n, got, want)
		}
	}
	key := []byte("customer-000123")
	for _, p := range []Partitioner{Murmur2, CRC32} {
		if n := testing.AllocsPerRun(100, func() { p.Partition(key, 12) }); n != 0 {
			t.Errorf("%s allocates %v times per key", p, n)
		}
	}
}

// BenchmarkPartition measures the partition check of every input record.
func BenchmarkPartition(b *testing.B) {
	for _, p := range []Partitioner{Murmur2, CRC32} {
		for _, key := range []string{"c-0012345", "customer-00000001234567", "0f8fad5b-d9cb-469f-a165-70867728950e"} {
			b.Run(fmt.Sprintf("%s/%dB", p, len(key)), func(b *testing.B) {
				k := []byte(key)
				b.ReportAllocs()
				var sink int32
				for b.Loop() {
					sink += p.Partition(k, 12)
				}
				_ = sink
			})
		}
	}
}
