package processor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// errKilled ends a commit that a simulated crash (kill) interrupted.
var errKilled = errors.New("task killed")

// taskPartitioner partitions the changelog by hand (record.Partition is
// the task) and every other topic by the default key hash, so that a
// customer's outputs share a partition, as Java clients would place them.
type taskPartitioner struct {
	changelog string
	def       kgo.Partitioner
}

func newTaskPartitioner(changelog string) taskPartitioner {
	return taskPartitioner{changelog: changelog, def: kgo.UniformBytesPartitioner(64<<10, true, true, nil)}
}

func (p taskPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if topic == p.changelog {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return p.def.ForTopic(topic)
}

// transactionalID names task part's producer. It is stable across
// instances and restarts, so the producer of a new owner fences every
// earlier producer of the task (KIP-98 zombie fencing) and aborts the
// transaction one of them left open.
func (p *Processor) transactionalID(part int32) string {
	return p.cfg.Group + "-task-" + strconv.Itoa(int(part))
}

// producer returns the client that sends the task's outputs.
func (t *task) producer() *kgo.Client {
	if t.tx != nil {
		return t.tx
	}
	return t.cl
}

// nextCycle returns a new cycle number for the changelog.
func (t *task) nextCycle() uint64 {
	t.cycle++
	return t.cycle
}

// startChangelog prepares a task whose state the changelog backs: in
// exactly-once mode it creates the task's transactional producer and
// initialises it (fencing any earlier owner), then restores the store from
// the changelog. Without a changelog (a replay) it does nothing.
func (t *task) startChangelog() error {
	if t.p.cfg.Topics.Changelog == "" {
		return nil
	}
	if t.p.cfg.Guarantee == ExactlyOnce {
		tx, err := kgo.NewClient(append(t.p.producerOpts(),
			kgo.TransactionalID(t.p.transactionalID(t.part)),
			kgo.TransactionTimeout(t.p.cfg.TransactionTimeout),
			kgo.ClientID("valora-task-"+strconv.Itoa(int(t.part))),
		)...)
		if err != nil {
			return fmt.Errorf("transactional producer: %w", err)
		}
		t.tx = tx
		if _, _, err := tx.ProducerID(t.ctx); err != nil {
			tx.Close()
			t.tx = nil
			return fmt.Errorf("initialise transactional producer %q: %w", t.p.transactionalID(t.part), err)
		}
	}
	if err := t.restore(t.ctx); err != nil {
		if t.tx != nil {
			t.tx.Close()
			t.tx = nil
		}
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

// produceAll produces recs and waits until Kafka has acknowledged them
// all, returning the first error, or until ctx ends. Unlike ProduceSync,
// it does not wait past ctx: an idempotent producer keeps retrying a batch
// that may have reached a broker that stopped answering, so ProduceSync
// can wait forever. The records' fate is then settled when the client is
// closed (it fails them), and the task, which stops, never reuses them.
func produceAll(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	var (
		left  atomic.Int64
		first atomic.Pointer[error]
		done  = make(chan struct{})
	)
	left.Store(int64(len(recs)))
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			first.CompareAndSwap(nil, &err)
		}
		if left.Add(-1) == 0 {
			close(done)
		}
	}
	for _, r := range recs {
		cl.Produce(ctx, r, promise)
	}
	select {
	case <-done:
		if err := first.Load(); err != nil {
			return *err
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("produce: %w", context.Cause(ctx))
	}
}

// endTransaction commits the task's open transaction.
func (t *task) endTransaction(ctx context.Context) error {
	start := time.Now()
	err := t.tx.EndTransaction(ctx, kgo.TryCommit)
	if err != nil {
		t.abort(ctx)
		return fmt.Errorf("commit transaction: %w", err)
	}
	t.p.m.transactions.WithLabelValues("commit").Inc()
	t.p.m.txnTime.Observe(time.Since(start).Seconds())
	return nil
}

// abort ends the open transaction without committing, as far as the
// broker still lets it; the task stops afterwards either way.
func (t *task) abort(ctx context.Context) {
	t.p.m.transactions.WithLabelValues("abort").Inc()
	if err := t.tx.AbortBufferedRecords(ctx); err == nil {
		_ = t.tx.EndTransaction(ctx, kgo.TryAbort)
	}
}
