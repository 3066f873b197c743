package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"valora/processor"
)

// liveJoin is the second instance of a live benchmark run with --join-at:
// it joins the group while traffic flows, and the rebalance moves some
// tasks to it. Its goroutine owns the instance; stop ends and waits for it.
type liveJoin struct {
	mu     sync.Mutex
	at     time.Time            // when it started
	ready  time.Time            // when the group assigned it its tasks (zero: not yet)
	moved  []int32              // the partitions it owns
	proc   *processor.Processor // nil until it starts
	err    error
	cancel context.CancelFunc
	done   chan struct{}
}

// startJoin starts the goroutine that, at `at`, runs a second scorer in sf's
// group with a state directory of its own and no HTTP server.
func startJoin(ctx context.Context, sf *scorerFlags, log *slog.Logger, at time.Time) *liveJoin {
	jctx, cancel := context.WithCancel(ctx)
	j := &liveJoin{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(j.done)
		j.setErr(j.run(jctx, sf, log, at))
	}()
	return j
}

func (j *liveJoin) setErr(err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err == nil {
		j.err = err
	}
}

func (j *liveJoin) run(ctx context.Context, sf *scorerFlags, log *slog.Logger, at time.Time) error {
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil
	}
	dir, err := os.MkdirTemp("", "valora-bench-join-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sf2 := *sf
	sf2.stateDir, sf2.httpAddr, sf2.advertiseURL = dir, "", ""
	if sf2.instanceID != "" {
		sf2.instanceID += "-joined"
	}
	s, err := newScorer(ctx, &sf2, log.With("instance", "joined"))
	if err != nil {
		return fmt.Errorf("second instance: %w", err)
	}
	j.mu.Lock()
	j.at, j.proc = time.Now(), s.proc
	j.mu.Unlock()
	runDone := make(chan error, 1)
	go func() { runDone <- s.run(ctx) }()
	select {
	case <-s.proc.Ready():
	case err := <-runDone:
		return fmt.Errorf("second instance stopped before it was ready: %w", err)
	}
	ready := time.Now()
	// Its tasks publish their lag gauges at their first ticks after they
	// start: once one has, a second later all have, and they name the
	// partitions the rebalance moved.
	var moved []int32
	for deadline := time.Now().Add(10 * time.Second); len(moved) == 0 && time.Now().Before(deadline) && ctx.Err() == nil; {
		moved = lagPartitions(s.proc, sf.interactions)
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case <-time.After(time.Second):
		moved = lagPartitions(s.proc, sf.interactions)
	case <-ctx.Done():
	}
	j.mu.Lock()
	j.ready, j.moved = ready, moved
	j.mu.Unlock()
	if err := <-runDone; err != nil {
		return fmt.Errorf("second instance: %w", err)
	}
	return nil
}

// stop ends the second instance and waits for it.
func (j *liveJoin) stop() error {
	j.cancel()
	<-j.done
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// lagPartitions lists the partitions of topic that p has measured a
// consumer lag for: the tasks the instance runs.
func lagPartitions(p *processor.Processor, topic string) []int32 {
	return slices.Sorted(maps.Keys(p.Stats().ConsumerLag[topic]))
}

// liveJoinResult is what a run with --join-at reports of the rebalance.
type liveJoinResult struct {
	// AtSeconds is when the second instance started, from readiness;
	// ReadySeconds how long the group took to assign it its tasks.
	AtSeconds    float64 `json:"at_seconds"`
	ReadySeconds float64 `json:"ready_seconds"`
	Moved        []int32 `json:"moved_partitions"`
	// FirstOutput is, over the moved partitions, the median and the
	// longest time from the second instance's start to the first tier
	// change read from the partition after the group assigned it to the
	// second instance: how long a moved task stays silent, at most.
	FirstOutputMedian float64 `json:"first_output_median_seconds"`
	FirstOutputMax    float64 `json:"first_output_max_seconds"`
	// Moved and Others are the latencies, in the window from the start,
	// of the tier changes of the moved partitions and of the others: a
	// rebalance must not stall the tasks it does not move.
	MovedWindow  liveWindow `json:"moved_window"`
	OthersWindow liveWindow `json:"others_window"`
}

// result summarises the rebalance from the reader's samples (sorted by at);
// nil when the second instance never started.
func (j *liveJoin) result(samples []liveSample, ready time.Time, window time.Duration) *liveJoinResult {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.at.IsZero() {
		return nil
	}
	r := &liveJoinResult{AtSeconds: j.at.Sub(ready).Seconds(), Moved: j.moved}
	if !j.ready.IsZero() {
		r.ReadySeconds = j.ready.Sub(j.at).Seconds()
	}
	lo, hi := j.at.UnixNano(), j.at.Add(window).UnixNano()
	assigned := j.ready.UnixNano()
	first := map[int32]int64{}
	var moved, others []liveSample
	for _, s := range samples {
		isMoved := slices.Contains(j.moved, s.part)
		if arr := s.at + s.lat; isMoved && !j.ready.IsZero() && arr > assigned && (first[s.part] == 0 || arr < first[s.part]) {
			first[s.part] = arr
		}
		if s.at < lo || s.at >= hi {
			continue
		}
		if isMoved {
			moved = append(moved, s)
		} else {
			others = append(others, s)
		}
	}
	var firsts []float64
	for _, p := range j.moved {
		if f, ok := first[p]; ok {
			firsts = append(firsts, time.Duration(f-lo).Seconds())
		}
	}
	if len(firsts) > 0 {
		slices.Sort(firsts)
		r.FirstOutputMedian, r.FirstOutputMax = firsts[(len(firsts)-1)/2], firsts[len(firsts)-1]
	}
	r.MovedWindow, r.OthersWindow = summarise(moved, lo, hi), summarise(others, lo, hi)
	return r
}

func (r *liveJoinResult) print(w io.Writer) {
	fmt.Fprintf(w, "rebalance: a second instance started %.1fs after readiness, was assigned its tasks %.2fs later; moved partitions %v\n",
		r.AtSeconds, r.ReadySeconds, r.Moved)
	fmt.Fprintf(w, "           first tier change of a moved partition from its new owner %.2fs (median) / %.2fs (max) after the start\n",
		r.FirstOutputMedian, r.FirstOutputMax)
	fmt.Fprintf(w, "           in the window from the start: moved p50 %.1f p99 %.1f max %.1f ms (%d); others p50 %.1f p99 %.1f max %.1f ms (%d)\n",
		r.MovedWindow.P50*1e3, r.MovedWindow.P99*1e3, r.MovedWindow.Max*1e3, r.MovedWindow.TierChanges,
		r.OthersWindow.P50*1e3, r.OthersWindow.P99*1e3, r.OthersWindow.Max*1e3, r.OthersWindow.TierChanges)
}
