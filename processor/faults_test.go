package processor

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"valora/internal/kafkatest"
	"valora/processor/httpapi"
	"valora/processor/score"
	"valora/schemas"
	"valora/state"
)

// getWithin calls the processor's HTTP handler for path and fails the test
// unless it answers within a second.
func getWithin(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	}()
	select {
	case <-done:
		return rec
	case <-time.After(time.Second):
		t.Fatalf("GET %s did not answer within a second", path)
		return nil
	}
}

// feeder produces purchases of new customers to the harness's purchases
// topic until stop is called, a batch every few milliseconds, so that the
// poll loop always has records to hand over.
func feeder(t *testing.T, h *harness, cl *kgo.Client) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	base := time.Now().Add(-time.Hour).UnixMilli()
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			var recs []*kgo.Record
			for j := range 50 {
				id := fmt.Sprintf("c%d-%d", i, j)
				e := schemas.Purchase{EventID: id, CustomerID: id, OccurredAt: base + int64(i), AmountMinor: 1000,
					Kind: schemas.KindPurchase, Channel: schemas.ChannelWeb, Currency: "USD", Items: 1}
				v, err := h.codec.AppendPurchase(nil, &e)
				if err != nil {
					panic(err)
				}
				recs = append(recs, &kgo.Record{Topic: h.topics.Purchases, Key: []byte(id), Value: v})
			}
			cl.ProduceSync(ctx, recs...) // errors: the broker is gone, or we stop
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// TestCommitFailsWhileInputIsFull holds a task's transaction commit until
// the poll loop has filled the task's input channel and waits to hand it
// more, checks that /readyz and /healthz answer meanwhile, then fails the
// commit: Run must return the commit's error. When the poll loop waited on
// the channel holding the processor's lock, the failing task could not
// stop the processor (its fail took the lock too) and nothing moved again.
// It needs kfake, to hold and fail the request.
func TestCommitFailsWhileInputIsFull(t *testing.T) {
	b, cluster := kafkatest.NewKfake(t)
	h := newHarnessOn(t, b, 1)
	var tk atomic.Pointer[task]
	var armed, held atomic.Bool
	full, release := make(chan struct{}), make(chan struct{})
	cluster.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if !armed.Load() || !req.(*kmsg.EndTxnRequest).Commit || !held.CompareAndSwap(false, true) {
			return nil, nil, false // the broker answers it
		}
		cluster.SleepControl(func() {
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				if t0 := tk.Load(); t0 != nil && len(t0.in) == cap(t0.in) {
					close(full)
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			select {
			case <-release:
			case <-time.After(30 * time.Second):
			}
		})
		resp := req.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil, true
	})
	stopFeed := feeder(t, h, b.Client(t))
	defer stopFeed()
	r := h.start(t.TempDir(), kafkatest.Name(t, "g"))
	kafkatest.Eventually(t, 30*time.Second, func() error {
		r.p.mu.Lock()
		defer r.p.mu.Unlock()
		if t0 := r.p.tasks[0]; t0 != nil {
			tk.Store(t0)
			return nil
		}
		return errors.New("no task yet")
	})
	handler := httpapi.Handler(r.p, r.reg, nil)
	kafkatest.Eventually(t, 30*time.Second, func() error {
		if code := getWithin(t, handler, "/readyz").Code; code != http.StatusOK {
			return fmt.Errorf("/readyz %d before the fault", code)
		}
		return nil
	})
	armed.Store(true)
	select {
	case <-full:
	case <-time.After(40 * time.Second):
		t.Fatal("the task's input channel never filled while its commit was held: the test checks nothing")
	}
	// The poll loop now waits to hand the task more records.
	kafkatest.Eventually(t, 10*time.Second, func() error {
		if r.p.handing.Load() == 0 {
			return errors.New("the poll loop is not handing records")
		}
		return nil
	})
	if code := getWithin(t, handler, "/readyz").Code; code != http.StatusOK {
		t.Errorf("/readyz while a commit is held: %d, want 200 (the brokers answer, the task is loaded)", code)
	}
	if code := getWithin(t, handler, "/healthz").Code; code != http.StatusOK {
		t.Errorf("/healthz while a commit is held for less than the stall timeout: %d, want 200", code)
	}
	close(release)
	select {
	case err := <-r.done:
		r.done <- err
		if err == nil || !strings.Contains(err.Error(), "commit") {
			t.Fatalf("Run returned %v, want the commit's error", err)
		}
		t.Logf("Run returned: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of a failed commit")
	}
}

// idle returns a processor over h's topics and a store on disk, not run.
func (h *harness) idle() *Processor {
	h.t.Helper()
	st, err := state.Open(state.Options{Dir: h.t.TempDir(), CacheSize: 8 << 20, MemTableSize: 4 << 20})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { st.Close() })
	p, err := New(Config{Brokers: h.b.Addrs, Group: kafkatest.Name(h.t, "g"), Topics: h.topics,
		Policy: score.DefaultPolicy(), Codec: h.codec, Store: st})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// TestStandbyStoppedWhileStarting starts standby copies and stops them at
// once, or after a short random pause, over many rounds: stopping must
// return while the standbys are still starting. When the stop waited for a
// standby holding the processor's lock, a standby that had not yet read
// the client (which takes the lock) never exited.
func TestStandbyStoppedWhileStarting(t *testing.T) {
	h := newHarness(t, 3)
	p := h.idle()
	p.partitions = int(h.parts)
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 40 {
		p.setStandbys([]int32{0, 1, 2})
		if d := rng.IntN(3); d > 0 {
			time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
		}
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			if round%2 == 0 {
				p.setStandbys(nil)
			} else {
				p.stopStandbys()
				p.mu.Lock()
				p.standbyOff = false
				p.mu.Unlock()
			}
		}()
		select {
		case <-stopped:
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: stopping starting standbys did not return within 20s", round)
		}
		p.mu.Lock()
		n := len(p.standbys)
		p.mu.Unlock()
		if n != 0 {
			t.Fatalf("round %d: %d standbys still registered after the stop", round, n)
		}
	}
}

// TestHealthzReportsStall checks /healthz against the processor's progress
// marks: 200 while the poll loop and every task move, 503 naming the cause
// once the poll loop has waited to hand records, or a task has made no
// progress, for longer than StallTimeout.
func TestHealthzReportsStall(t *testing.T) {
	h := newHarness(t, 1)
	p := h.idle()
	handler := httpapi.Handler(p, nil, nil)
	tk := &task{part: 7}
	p.tasks[7] = tk
	now := time.Now()
	f := func(handing, beat time.Time, want int, reason string) {
		t.Helper()
		p.handing.Store(0)
		if !handing.IsZero() {
			p.handing.Store(handing.UnixNano())
		}
		tk.beat.Store(beat.UnixNano())
		rec := getWithin(t, handler, "/healthz")
		if rec.Code != want || !strings.Contains(rec.Body.String(), reason) {
			t.Errorf("handing %v ago, beat %v ago: %d %s, want %d with %q", now.Sub(handing), now.Sub(beat), rec.Code, rec.Body, want, reason)
		}
	}
	bound := p.cfg.StallTimeout
	f(time.Time{}, now, http.StatusOK, "ok")
	f(now.Add(-bound/2), now.Add(-bound/2), http.StatusOK, "ok")
	f(now.Add(-bound-time.Second), now, http.StatusServiceUnavailable, "poll loop")
	f(time.Time{}, now.Add(-bound-time.Second), http.StatusServiceUnavailable, "task 7")
	// A task being stopped counts too.
	delete(p.tasks, 7)
	p.retiring[tk] = struct{}{}
	f(time.Time{}, now.Add(-bound-time.Second), http.StatusServiceUnavailable, "task 7")
}

// TestBrokerLostUnderBacklog stops the broker for good while a processor
// works through a backlog: /readyz and /healthz must keep answering within
// a second, /readyz must turn 503, and a stop must return within the
// shutdown timeout (and a few seconds for the client to close), whether a
// commit was in flight or not. It needs
// kfake, to lose the broker in-process; `make faults` does the same to a
// real one.
func TestBrokerLostUnderBacklog(t *testing.T) {
	b, cluster := kafkatest.NewKfake(t)
	h := newHarnessOn(t, b, 2)
	n := h.history(t, 5, 5000, 50000)
	const shutdown = 3 * time.Second
	r := h.start(t.TempDir(), kafkatest.Name(t, "g"), func(c *Config) {
		c.ShutdownTimeout = shutdown
		c.CommitRecords = 200
	})
	handler := httpapi.Handler(r.p, r.reg, nil)
	kafkatest.Eventually(t, time.Minute, func() error {
		if got := r.handled(); got == 0 {
			return errors.New("nothing handled yet")
		}
		return nil
	})
	cluster.Close()
	lost := time.Now()
	t.Logf("broker closed after %v of %d records", r.handled(), n)
	kafkatest.Eventually(t, time.Minute, func() error {
		getWithin(t, handler, "/healthz")
		if code := getWithin(t, handler, "/readyz").Code; code != http.StatusServiceUnavailable {
			return fmt.Errorf("/readyz %d, want 503", code)
		}
		return nil
	})
	t.Logf("/readyz 503 %v after the broker was lost", time.Since(lost).Round(time.Millisecond))
	stopAt := time.Now()
	r.stop()
	select {
	case err := <-r.done:
		r.done <- err
		// nil when no task had a commit in flight (a task may hold its
		// fetched records back while it waits for its other input);
		// otherwise the reason the commit was abandoned.
		t.Logf("Run returned after %v: %v", time.Since(stopAt).Round(time.Millisecond), err)
	case <-time.After(shutdown + 15*time.Second):
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		t.Fatalf("Run did not return within %v of the stop (goroutines above)", shutdown+15*time.Second)
	}
}
