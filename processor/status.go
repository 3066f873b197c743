package processor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"valora/processor/group"
	"valora/processor/score"
	"valora/schemas"
)

// What the instance reports about itself and reads for a caller: the
// methods the HTTP API (package httpapi) serves. Each answers at once: it
// reads atomics or takes p.mu briefly, and only Owner waits on the network,
// without a lock held.

// Stalled returns why the instance is wedged, or "" when it is not: the
// poll loop has been handing one poll's records to the tasks, or a task
// has made no progress (see task.beat), for longer than StallTimeout. An
// idle instance is not stalled: its poll loop waits for records without
// handing any, and its tasks tick every CommitInterval.
func (p *Processor) Stalled() string { return p.stalled(time.Now()) }

func (p *Processor) stalled(now time.Time) string {
	bound := p.cfg.StallTimeout
	if at := p.handing.Load(); at != 0 && now.Sub(time.Unix(0, at)) > bound {
		return fmt.Sprintf("the poll loop has waited %v for a task to take its records (stall timeout %v)",
			now.Sub(time.Unix(0, at)).Round(time.Second), bound)
	}
	p.mu.Lock()
	var worst time.Duration
	var part int32
	for n, t := range p.tasks {
		if d := now.Sub(time.Unix(0, t.beat.Load())); d > worst {
			worst, part = d, n
		}
	}
	for t := range p.retiring {
		if d := now.Sub(time.Unix(0, t.beat.Load())); d > worst {
			worst, part = d, t.part
		}
	}
	p.mu.Unlock()
	if worst > bound {
		return fmt.Sprintf("task %d has made no progress for %v (stall timeout %v)", part, worst.Round(time.Second), bound)
	}
	return ""
}

// Readiness returns how many tasks this instance owns, how many of them are
// still loading their state, and, when the brokers did not answer the
// latest offset listing or none within the last readyBrokerAge, an error
// saying so. The instance is ready once Ready is closed, no task is loading
// and brokers is nil.
func (p *Processor) Readiness() (tasks, loading int, brokers error) {
	p.mu.Lock()
	tasks = len(p.tasks)
	for _, t := range p.tasks {
		if !t.loaded.Load() {
			loading++
		}
	}
	p.mu.Unlock()
	switch at := p.listedAt.Load(); {
	case p.listFailing.Load():
		brokers = errors.New("the brokers did not answer the latest offset listing")
	case at == 0 || time.Since(time.Unix(0, at)) > p.readyBrokerAge():
		brokers = errors.New("the brokers have not answered an offset listing recently")
	}
	return tasks, loading, brokers
}

// readyBrokerAge is how old the last successful offset listing may be for
// Readiness to report the brokers reachable: a few listing intervals.
func (p *Processor) readyBrokerAge() time.Duration {
	return 5*p.endsInterval() + 10*time.Second
}

// TaskOf returns the task that holds customerID (by
// Config.InputPartitioner) and whether this instance owns it. It fails
// before the processor knows its topics' partition count.
func (p *Processor) TaskOf(customerID string) (task int32, owned bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.partitions == 0 {
		return 0, false, errors.New("processor not started")
	}
	task = p.cfg.InputPartitioner.Partition([]byte(customerID), p.partitions)
	return task, p.tasks[task] != nil, nil
}

// Customer reads the committed state of customerID from task's part of
// the store (found false: no such customer). It reads only what commits
// made durable, so it is safe to call concurrently with processing.
func (p *Processor) Customer(task int32, customerID string) (c *schemas.Customer, found bool, err error) {
	val, found, err := p.cfg.Store.GetCustomer(task, []byte(customerID), nil)
	if err != nil {
		return nil, false, fmt.Errorf("read state: %w", err)
	}
	if !found {
		return nil, false, nil
	}
	c = new(schemas.Customer)
	if err := schemas.DecodeCustomer(val, c); err != nil {
		return nil, false, fmt.Errorf("decode state: %w", err)
	}
	return c, true, nil
}

// Policy returns the policy in force (see SetPolicy).
func (p *Processor) Policy() *score.Policy { return p.policy.Load() }

// ownerCache maps tasks to the advertised URL of the member that owns them,
// from DescribeGroups. It is refreshed at most every ownerTTL, and at once
// when a lookup finds no owner for a task (after a rebalance).
type ownerCache struct {
	mu     sync.Mutex
	adm    *kadm.Client // set by Run
	at     time.Time
	byTask map[int32]string
}

const ownerTTL = 2 * time.Second

// Owner returns the URL that the member owning task advertises in the
// group (Config.AdvertiseURL), or "" when no member advertises one for it.
// It asks the group coordinator at most every ownerTTL and otherwise
// answers from a cache; ctx bounds the question.
func (p *Processor) Owner(ctx context.Context, task int32) (string, error) {
	o := &p.owners
	o.mu.Lock()
	if u, ok := o.byTask[task]; ok && time.Since(o.at) < ownerTTL {
		o.mu.Unlock()
		return u, nil
	}
	adm := o.adm
	if adm == nil {
		o.mu.Unlock()
		return "", errors.New("not connected to the group yet")
	}
	if !o.at.IsZero() && time.Since(o.at) < ownerTTL/4 {
		u := o.byTask[task]
		o.mu.Unlock()
		return u, nil // asked just now: do not hammer the coordinator
	}
	// Mark the cache as fresh for the time of the call, so that the
	// lookups that come meanwhile read it instead of asking too; o.mu is
	// not held across the call.
	prev := o.at
	o.at = time.Now()
	o.mu.Unlock()
	groups, err := adm.DescribeGroups(ctx, p.cfg.Group)
	if err == nil {
		err = groups.Error()
	}
	if err != nil {
		o.mu.Lock()
		o.at = prev
		o.mu.Unlock()
		return "", fmt.Errorf("describe group %s: %w", p.cfg.Group, err)
	}
	byTask := map[int32]string{}
	for _, m := range groups[p.cfg.Group].Members {
		meta, ok := m.Join.AsConsumer()
		if !ok {
			continue
		}
		url := group.ParseMemberData(meta.UserData).URL
		if url == "" {
			continue
		}
		as, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		for _, t := range as.Topics {
			if t.Topic != p.cfg.Topics.Purchases {
				continue
			}
			for _, q := range t.Partitions {
				byTask[q] = url
			}
		}
	}
	o.mu.Lock()
	o.byTask, o.at = byTask, time.Now()
	o.mu.Unlock()
	return byTask[task], nil
}
