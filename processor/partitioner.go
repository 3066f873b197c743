package processor

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"valora/processor/partition"
)

// Partitioner names the function that producers of the input topics use to
// place a record's key (the customer id) in a partition (package
// partition). A task holds the customers whose keys the function maps to
// its partition, so every input record must be in that partition: one
// elsewhere would be applied to a task that does not own the customer,
// beside the customer's state in its own task. The HTTP lookup finds a
// customer's task with the same function.
type Partitioner = partition.Partitioner

// The partitioners.
const (
	// PartitionerMurmur2 (the default): the Java client's and franz-go's.
	PartitionerMurmur2 = partition.Murmur2
	// PartitionerCRC32: librdkafka's default ("consistent_random"). A
	// record without a key, which librdkafka places at random, is
	// dead-lettered anyway.
	PartitionerCRC32 = partition.CRC32
)

func validatePartitioner(p Partitioner) error {
	if p.Valid() {
		return nil
	}
	return fmt.Errorf("input_partitioner: %q is not one of %s, %s (how the producers of the input topics partition by key)",
		p, PartitionerMurmur2, PartitionerCRC32)
}

var keyPartitioner = kgo.StickyKeyPartitioner(nil).ForTopic("")

// PartitionOf returns the partition that Kafka's default partitioner (murmur2
// of the key, as in the Java client and kgo) gives a record keyed by
// customerID in a topic of n partitions: the task that owns the customer
// under the default Config.InputPartitioner, and the partition of the
// customer's tier changes, which valora produces with that partitioner.
func PartitionOf(customerID string, n int) int32 {
	return int32(keyPartitioner.Partition(&kgo.Record{Key: []byte(customerID)}, n))
}
