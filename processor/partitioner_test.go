package processor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/kafkatest"
	"valora/processor/httpapi"
	"valora/schemas"
)

func TestInputPartitionerValidate(t *testing.T) {
	for _, p := range []Partitioner{"", PartitionerMurmur2, PartitionerCRC32} {
		c := Config{Brokers: []string{"b"}, Group: "g", InputPartitioner: p}
		if err := c.ValidateSettings(); err != nil {
			t.Errorf("%q: %v", p, err)
		}
		if p == "" && c.InputPartitioner != PartitionerMurmur2 {
			t.Errorf("default input partitioner %q, want murmur2", c.InputPartitioner)
		}
	}
	c := Config{Brokers: []string{"b"}, Group: "g", InputPartitioner: "consistent_random"}
	if err := c.ValidateSettings(); err == nil || !strings.Contains(err.Error(), "input_partitioner") {
		t.Errorf("an unknown partitioner: %v, want an error naming input_partitioner", err)
	}
}

// logBuffer is a slog handler's writer shared with the processor's
// goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestCRC32ProducedInputs produces purchases and interactions the way a
// librdkafka producer with its default partitioner does (CRC32 of the key,
// modulo the partition count, to explicit partitions). With the default
// murmur2 input partitioner, every record whose partition is not its key's
// murmur2 partition is dead-lettered as wrong_partition, the others are
// applied, consumed = applied + dead-lettered holds, and the first wrong
// record of a task is logged once with CRC32 as the likely cause. With
// --input-partitioner crc32, every record is applied and the HTTP lookup
// finds each customer in the task of its CRC32 partition.
func TestCRC32ProducedInputs(t *testing.T) {
	const parts = 6
	h := newHarness(t, parts)
	crcClient := h.b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	wrong := map[int32]int{} // by partition, under murmur2
	var ids []string
	for i := range 40 {
		id := fmt.Sprintf("crc-%02d", i)
		ids = append(ids, id)
		p := h.purchase(schemas.Purchase{EventID: id + "-p", CustomerID: id, OccurredAt: day(0), AmountMinor: 1000})
		in := h.interaction(schemas.Interaction{EventID: id + "-i", CustomerID: id, OccurredAt: day(1), Channel: schemas.ChannelWeb, Type: "visit"})
		part := int32(crc32.ChecksumIEEE([]byte(id)) % parts)
		for _, r := range []*kgo.Record{p, in} {
			r.Partition = part
			recs = append(recs, r)
			if PartitionerMurmur2.Partition([]byte(id), parts) != part {
				wrong[part]++
			}
		}
	}
	var nWrong int
	for _, n := range wrong {
		nWrong += n
	}
	if nWrong == 0 || nWrong == len(recs) {
		t.Fatalf("%d of %d records in another partition than murmur2's: the test needs both kinds", nWrong, len(recs))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := crcClient.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	t.Run("murmur2", func(t *testing.T) {
		var logs logBuffer
		r := h.start(t.TempDir(), kafkatest.Name(t, "g"), func(c *Config) {
			c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		})
		r.waitHandled(t, float64(len(recs)))
		consumed, applied, dead := sumCounter(r.p.m.consumed), sumCounter(r.p.m.applied), sumCounter(r.p.m.deadLettered)
		wrongDead := 0.0
		for _, topic := range []string{h.topics.Purchases, h.topics.Interactions} {
			wrongDead += testutil.ToFloat64(r.p.m.deadLettered.WithLabelValues(topic, ReasonWrongPartition))
		}
		if consumed != float64(len(recs)) || consumed != applied+dead || dead != float64(nWrong) || wrongDead != dead {
			t.Errorf("consumed %v, applied %v, dead-lettered %v (%v wrong_partition); want %d = applied + %d wrong_partition",
				consumed, applied, dead, wrongDead, len(recs), nWrong)
		}
		dlq := h.b.ConsumeN(t, h.topics.DeadLetter, nWrong, 30*time.Second)
		for _, d := range dlq {
			if header(d, HeaderReason) != ReasonWrongPartition || PartitionerCRC32.Partition(d.Key, parts) == PartitionerMurmur2.Partition(d.Key, parts) {
				t.Errorf("dead letter of %s: reason %q", d.Key, header(d, HeaderReason))
			}
		}
		// One warning per task that saw a wrong record, naming CRC32.
		out := logs.String()
		if got := strings.Count(out, "dead-lettered as wrong_partition"); got != len(wrong) {
			t.Errorf("%d wrong_partition warnings, want one per partition with such records (%d):\n%s", got, len(wrong), out)
		}
		if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "CRC32") || !strings.Contains(out, "--input-partitioner crc32") {
			t.Errorf("the warning does not name the likely cause:\n%s", out)
		}
		for _, id := range ids {
			if strings.Contains(out, id) {
				t.Errorf("a log line names customer %s", id)
			}
		}
	})

	t.Run("crc32", func(t *testing.T) {
		h2 := h.withOutputs()
		r := h2.start(t.TempDir(), kafkatest.Name(t, "g"), func(c *Config) { c.InputPartitioner = PartitionerCRC32 })
		r.waitHandled(t, float64(len(recs)))
		if applied, dead := sumCounter(r.p.m.applied), sumCounter(r.p.m.deadLettered); applied != float64(len(recs)) || dead != 0 {
			t.Fatalf("applied %v, dead-lettered %v; want all %d applied", applied, dead, len(recs))
		}
		srv := httptest.NewServer(httpapi.Handler(r.p, r.reg, nil))
		defer srv.Close()
		for _, id := range ids {
			resp, err := http.Get(srv.URL + "/v1/customers/" + id)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var v struct {
				CustomerID string  `json:"customer_id"`
				Task       int32   `json:"task"`
				Purchases  float64 `json:"purchases"`
			}
			if err := json.Unmarshal(b, &v); err != nil || resp.StatusCode != http.StatusOK ||
				v.CustomerID != id || v.Purchases != 1 || v.Task != PartitionerCRC32.Partition([]byte(id), parts) {
				t.Errorf("lookup of %s: %d %s; want its state in task %d", id, resp.StatusCode, b, PartitionerCRC32.Partition([]byte(id), parts))
			}
		}
	})
}
