// Package partition places a record's key in a partition as the Kafka
// clients do (Partitioner): murmur2 as the Java client and franz-go,
// crc32 as librdkafka. valora keys every input by customer id and holds a
// customer's state in the task of its key's partition, so it checks each
// input record's partition, and finds a customer's task, with the
// function its producers use. The package imports no other package of the
// project.
package partition
