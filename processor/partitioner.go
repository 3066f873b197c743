package processor

import (
	"fmt"

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
