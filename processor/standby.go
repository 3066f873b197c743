package processor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"valora/processor/changelog"
	"valora/state"
)

// Standby replicas (Config.StandbyReplicas) keep a warm copy of tasks that
// other members own: the group leader names (group.PlanStandbys), for each
// task, up to N members other than its owner, in each member's assignment;
// each of them follows the task's changelog partition into its own store,
// applying cycles at their checkpoints through the restore's
// changelog.Restorer, so the store always holds a state some committed
// cycle produced. When the task moves to one of them, its restore starts
// from that checkpoint and reads only the cycles since. Members report, in
// their join metadata, how far their store is along each task's changelog
// (warmTasks), and the leader prefers the furthest member both for the new
// owner of a task that lost its owner and for its standbys.
//
// A task and its standby never run on one member at once: a standby starts
// only for a task the member does not own (or once its task has stopped),
// and a task starts only after its standby has stopped.

// warmTasks returns, for each task the store has a checkpoint for, the
// changelog offset after it (for the join metadata).
func (p *Processor) warmTasks() map[int32]int64 {
	if p.cfg.Topics.Changelog == "" {
		return nil
	}
	p.mu.Lock()
	n := p.partitions
	p.mu.Unlock()
	warm := map[int32]int64{}
	for part := range int32(n) {
		next, found, err := p.cfg.Store.ChangelogNext(part)
		if err == nil && found {
			warm[part] = next
		}
	}
	return warm
}

// standby is one running standby copy of a task.
type standby struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// setStandbys records the tasks the latest assignment names this member a
// standby for, stops the standbys of tasks no longer named and starts the
// others, except for tasks this member still runs: their standby starts
// when the task stops (stopPartitions).
func (p *Processor) setStandbys(parts []int32) {
	p.mu.Lock()
	if p.abandoned || p.standbyOff {
		p.mu.Unlock()
		return
	}
	want := make(map[int32]bool, len(parts))
	for _, part := range parts {
		want[part] = true
	}
	p.wantStandby = want
	var stopped []*standby
	for part := range p.standbys {
		if !want[part] {
			stopped = append(stopped, p.takeStandbyLocked(part))
		}
	}
	for part := range want {
		if p.tasks[part] == nil {
			p.startStandbyLocked(part)
		}
	}
	p.mu.Unlock()
	for _, s := range stopped {
		<-s.done
	}
}

// startStandbyLocked starts a standby for part unless one runs; p.mu is
// held.
func (p *Processor) startStandbyLocked(part int32) {
	if _, ok := p.standbys[part]; ok || p.abandoned || p.standbyOff || p.cfg.Topics.Changelog == "" {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &standby{cancel: cancel, done: make(chan struct{})}
	p.standbys[part] = s
	p.m.standbys.Set(float64(len(p.standbys)))
	go func() {
		defer close(s.done)
		p.followChangelog(ctx, part)
	}()
}

// takeStandbyLocked stops part's standby, if one runs, and returns it (nil
// if none); p.mu is held. The caller waits on its done channel after
// releasing p.mu: the standby takes p.mu as it exits, and its last write
// is in the store once done is closed.
func (p *Processor) takeStandbyLocked(part int32) *standby {
	s, ok := p.standbys[part]
	if !ok {
		return nil
	}
	s.cancel()
	delete(p.standbys, part)
	p.m.standbys.Set(float64(len(p.standbys)))
	return s
}

// stopStandbys stops every standby and waits for them (at shutdown).
func (p *Processor) stopStandbys() {
	p.mu.Lock()
	p.standbyOff = true
	var stopped []*standby
	for part := range p.standbys {
		stopped = append(stopped, p.takeStandbyLocked(part))
	}
	p.wantStandby = nil
	p.mu.Unlock()
	for _, s := range stopped {
		<-s.done
	}
}

// followChangelog keeps part's standby copy until ctx ends. A failure is
// logged and retried after a pause: a standby only saves restore time, and
// the task's own restore reads whatever it missed. A failure of the store
// (a disk fault) stops the processor instead: the tasks share the store.
func (p *Processor) followChangelog(ctx context.Context, part int32) {
	for {
		err := p.followOnce(ctx, part)
		if ctx.Err() != nil {
			return
		}
		if se := (*state.Error)(nil); errors.As(err, &se) {
			p.fail(err)
			return
		}
		p.log.Warn("standby stopped; retrying", "task", part, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

// followOnce reads part's changelog from the store's checkpoint for it (the
// start, with the task's old state wiped at the first checkpoint, when it
// has none) and applies each cycle at its checkpoint, committing after
// every poll that completed one, without syncing: a lost write is read
// again.
func (p *Processor) followOnce(ctx context.Context, part int32) error {
	store := p.cfg.Store
	next, found, err := store.ChangelogNext(part)
	if err != nil {
		return err
	}
	topic := p.cfg.Topics.Changelog
	p.mu.Lock()
	cl := p.cl
	p.mu.Unlock()
	if found && cl != nil {
		// A checkpoint past the end of the changelog: the topic was
		// recreated. Start over from its beginning, on a wiped copy, as a
		// restore does.
		_, end, err := p.changelogBounds(ctx, cl, part)
		if err != nil {
			return err
		}
		if next > end.Offset {
			p.log.Warn("changelog ends before the store's checkpoint (topic recreated?); copying it from the start",
				"task", part, "checkpoint", next, "changelog_end", end.Offset)
			found = false
		}
	}
	from := kgo.NewOffset().AtStart()
	if found {
		from = kgo.NewOffset().At(next)
	}
	rd, err := kgo.NewClient(p.clientOpts(roleStandby,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {part: from}}))...)
	if err != nil {
		return fmt.Errorf("changelog reader: %w", err)
	}
	defer rd.Close()
	r := changelog.NewRestorer(ctx, store, part, changelog.Options{Wipe: !found})
	defer r.Close()
	p.log.Debug("standby started", "task", part, "from", next, "found", found)
	for {
		fs := rd.PollRecords(ctx, 10000)
		if ctx.Err() != nil {
			return nil
		}
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("read changelog: %w", err)
		}
		var ferr error
		n := 0
		fs.EachRecord(func(rec *kgo.Record) {
			if ferr == nil {
				ferr = r.Add(ctx, rec)
				n++
			}
		})
		if ferr != nil {
			return fmt.Errorf("standby of task %d: %w", part, ferr)
		}
		p.m.standbyRecords.Add(float64(n))
		if err := r.Flush(ctx); err != nil {
			return fmt.Errorf("standby of task %d: %w", part, err)
		}
	}
}
