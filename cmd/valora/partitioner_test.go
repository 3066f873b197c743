package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/kafkatest"
	"valora/processor"
)

// checkMurmur2Placement fails the test unless every record of topics is in
// the partition murmur2 gives its key among parts (the scorer's default
// --input-partitioner), and unless there are records in more than one
// partition.
func checkMurmur2Placement(t *testing.T, b kafkatest.Broker, parts int, topics ...string) int {
	t.Helper()
	n := 0
	used := map[int32]bool{}
	for _, topic := range topics {
		for _, r := range b.ConsumeAll(t, topic) {
			n++
			used[r.Partition] = true
			if want := processor.PartitionerMurmur2.Partition(r.Key, parts); r.Partition != want {
				t.Fatalf("%s: key %q in partition %d, murmur2 places it in %d", topic, r.Key, r.Partition, want)
			}
		}
	}
	if n == 0 || len(used) < 2 {
		t.Fatalf("%d records over %d partitions of %v: too few to check the placement", n, len(used), topics)
	}
	return n
}

// TestOwnProducersPlaceKeysByMurmur2 checks that `valora gen` and `valora
// import` write every record to the partition the scorer's default
// --input-partitioner (murmur2) expects. (`valora dev` produces through the
// same code as gen: TestDev checks its records.)
func TestOwnProducersPlaceKeysByMurmur2(t *testing.T) {
	const parts = 4
	t.Run("gen", func(t *testing.T) {
		b := kafkatest.New(t)
		in, pu := kafkatest.Name(t, "interactions"), kafkatest.Name(t, "purchases")
		b.CreateTopics(t, parts, in, pu)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		code, stdout, stderr := runCmd(t, ctx, []string{"gen", "--brokers", strings.Join(b.Addrs, ","),
			"--interactions-topic", in, "--purchases-topic", pu, "--customers", "50", "--events", "400"}, noEnv)
		if code != 0 {
			t.Fatalf("gen: exit %d\n%s%s", code, stdout, stderr)
		}
		if n := checkMurmur2Placement(t, b, parts, in, pu); n != 400 {
			t.Errorf("%d records, want 400", n)
		}
	})
	t.Run("import", func(t *testing.T) {
		e := newImpEnv(t)
		rep := e.importJSON(t, calCDNOWSample)
		if n := checkMurmur2Placement(t, e.b, parts, e.purchases); n != int(rep.Purchases.Records) {
			t.Errorf("%d records, want %d", n, rep.Purchases.Records)
		}
	})
}

// TestProducerPartitioner checks the partitioner that dev and bench give
// their traffic: kgo's default for murmur2, CRC32 of the key for crc32, and
// a usage error naming the flag otherwise.
func TestProducerPartitioner(t *testing.T) {
	f := scorerFlags{partitioner: "murmur2"}
	if opts, err := f.producerPartitioner(); err != nil || len(opts) != 0 {
		t.Errorf("murmur2: %d options, %v; want kgo's default", len(opts), err)
	}
	f.partitioner = "crc32"
	opts, err := f.producerPartitioner()
	if err != nil || len(opts) != 1 {
		t.Fatalf("crc32: %d options, %v", len(opts), err)
	}
	b := kafkatest.New(t)
	topic := kafkatest.Name(t, "crc")
	b.CreateTopics(t, 6, topic)
	cl := b.Client(t, opts...)
	var recs []*kgo.Record
	for _, k := range []string{"a", "customer-1", "customer-2", "0001", "0002", "x-99", "zz", "q"} {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte("v")})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, r := range b.ConsumeAll(t, topic) {
		if want := processor.PartitionerCRC32.Partition(r.Key, 6); r.Partition != want {
			t.Errorf("key %q in partition %d, want CRC32's %d", r.Key, r.Partition, want)
		}
	}
	f.partitioner = "fnv"
	if _, err := f.producerPartitioner(); err == nil || !isUsage(err) || !strings.Contains(err.Error(), "--input-partitioner") {
		t.Errorf("fnv: %v, want a usage error naming --input-partitioner", err)
	}
}

// TestReplayInputPartitioner replays the CDNOW sample, imported with
// murmur2 like every valora producer, under --input-partitioner crc32: the
// records whose CRC32 partition is another than their own are dead-lettered
// (wrong_partition) and the others applied, so the flag reaches the replay's
// processor.
func TestReplayInputPartitioner(t *testing.T) {
	e := newImpEnv(t)
	rep := e.importJSON(t, calCDNOWSample)
	var elsewhere int64
	for _, r := range e.b.ConsumeAll(t, e.purchases) {
		if processor.PartitionerCRC32.Partition(r.Key, 4) != r.Partition {
			elsewhere++
		}
	}
	if elsewhere == 0 || elsewhere == rep.Purchases.Records {
		t.Fatalf("%d of %d records elsewhere under crc32: the test needs both kinds", elsewhere, rep.Purchases.Records)
	}
	s := e.replayJSON(t, "--state-dir", t.TempDir()+"/state", "--no-output", "--input-partitioner", "crc32")
	if s.Records != rep.Purchases.Records || s.DeadLettered != elsewhere || s.Applied != s.Records-elsewhere {
		t.Errorf("replay under crc32: %d records, %d applied, %d dead-lettered; want %d, %d dead-lettered as wrong_partition",
			s.Records, s.Applied, s.DeadLettered, rep.Purchases.Records, elsewhere)
	}
}
