package processor

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/kafkatest"
	"valora/state"
)

// diskFault fails one kind of operation on a store's write-ahead log from
// its nth occurrence (counted once armed) on: once for an I/O error, for
// good for a full disk.
type diskFault struct {
	kind   string
	ops    []errorfs.OpKind
	sticky bool
	n      int64
	armed  atomic.Bool
	seen   atomic.Int64
	fired  atomic.Int64
}

func newDiskFault(kind string, n int64) *diskFault {
	f := &diskFault{kind: kind, n: n}
	switch kind {
	case "write":
		f.ops = []errorfs.OpKind{errorfs.OpFileWrite, errorfs.OpFileWriteAt}
	case "sync":
		f.ops = []errorfs.OpKind{errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo}
	case "full":
		f.sticky = true
		f.ops = []errorfs.OpKind{errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFilePreallocate,
			errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo}
	}
	return f
}

func (f *diskFault) String() string { return f.kind + " #" + strconv.FormatInt(f.n, 10) }

func (f *diskFault) MaybeError(op errorfs.Op) error {
	if !f.armed.Load() {
		return nil
	}
	if !strings.HasSuffix(op.Path, ".log") {
		// The write-ahead log only: a fault in a table or the MANIFEST
		// written by a flush or compaction, on Pebble's own goroutines,
		// ends the process (state's TestStoreFaultsUnderFlushes).
		return nil
	}
	for _, k := range f.ops {
		if op.Kind != k {
			continue
		}
		if i := f.seen.Add(1); i == f.n || (f.sticky && i > f.n) {
			f.fired.Add(1)
			if f.sticky {
				return &fs.PathError{Op: "write", Path: op.Path, Err: syscall.ENOSPC}
			}
			return errorfs.ErrInjected
		}
		return nil
	}
	return nil
}

// cause is the error the fault injects.
func (f *diskFault) cause() error {
	if f.sticky {
		return syscall.ENOSPC
	}
	return errorfs.ErrInjected
}

// TestDiskFaultRestartSameState runs a workload once on a sound disk, and
// once on a store whose file system fails write-ahead log writes, syncs,
// or every write as a full disk does, at a point of the run (the nth operation of the
// kind: in a task's commit, its restore from the changelog on a restart, or
// its load), restarting it up to three times on a faulty disk and then on
// a sound one, over many seeds. Each faulty run must stop by itself, Run
// returning an error that names the state directory once and carries the
// cause; the store must reopen; and the final state and the tier changes
// (repeats dropped) must equal the sound run's: the cycle Kafka committed
// before the store's batch failed is restored from the changelog.
func TestDiskFaultRestartSameState(t *testing.T) {
	seeds := 8
	if testing.Short() {
		seeds = 1
	}
	stopped := 0
	for _, kind := range []string{"write", "sync", "full"} {
		for seed := range uint64(seeds) {
			t.Run(fmt.Sprintf("%s/seed%d", kind, seed), func(t *testing.T) {
				stopped += diskFaultRun(t, kind, seed)
			})
		}
	}
	t.Logf("%d faulty runs stopped by their fault", stopped)
}

// diskFaultRun is one seed of TestDiskFaultRestartSameState; it returns
// the number of runs the fault stopped.
func diskFaultRun(t *testing.T, kind string, seed uint64) int {
	h := newHarness(t, 3)
	n := h.workload(t, seed+1, 150)

	refDir := filepath.Join(t.TempDir(), "ref")
	ref := h.start(refDir, kafkatest.Name(t, "ref"))
	ref.waitHandled(t, float64(n))
	if err := ref.shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, refDir)
	wantOut := dedupOutputs(t, h, h.topics.TierChanges)

	faulty := h.withOutputs()
	dir := filepath.Join(t.TempDir(), "faulty")
	group := kafkatest.Name(t, "faulty")
	rng := rand.New(rand.NewPCG(seed, 7))
	stopped := 0
	for run := 0; ; run++ {
		var f *diskFault
		o := state.Options{Dir: dir}
		if run < 3 && handledInDir(t, dir) < n {
			f = newDiskFault(kind, 1+int64(rng.IntN(8)))
			o.FS = errorfs.Wrap(vfs.Default, f)
		}
		r := faulty.startWith(o, group, func(c *Config) { c.CommitRecords = 1 + rng.IntN(8) })
		if f != nil {
			f.armed.Store(true)
		}
		var runErr error
		ended := false
		kafkatest.Eventually(t, time.Minute, func() error {
			select {
			case runErr = <-r.done:
				r.done <- runErr
				ended = true
				return nil
			default:
			}
			if got := handledInStore(t, r.store); got < n {
				return fmt.Errorf("state covers %d of %d records; %v", got, n, f)
			}
			return nil
		})
		if ended && runErr == nil {
			t.Fatalf("run %d: Run returned nil by itself", run)
		}
		if !ended {
			// Every record handled: a clean stop (whose last commit, or
			// whose closing of the log, may meet the fault yet).
			r.stop()
			select {
			case runErr = <-r.done:
			case <-time.After(time.Minute):
				t.Fatalf("run %d: processor did not stop within a minute", run)
			}
		} else {
			<-r.done
		}
		cerr := r.store.Close()
		r.store = nil
		switch {
		case f == nil:
			if runErr != nil || cerr != nil {
				t.Fatalf("run %d on a sound disk: %v; close: %v", run, runErr, cerr)
			}
		case runErr != nil:
			stopped++
			checkDiskFaultError(t, runErr, dir, f.cause())
			t.Logf("run %d: %v stopped it: %v (close: %v)", run, f, runErr, cerr)
		case cerr != nil:
			checkDiskFaultError(t, cerr, dir, f.cause())
			t.Logf("run %d: %v failed Close: %v", run, f, cerr)
		default:
			t.Logf("run %d: fault %v not reached (%d operations of the kind)", run, f, f.seen.Load())
		}
		if f == nil {
			break
		}
	}
	got := snapshot(t, dir)
	if len(got) != len(want) {
		t.Fatalf("customers: got %d, want %d", len(got), len(want))
	}
	for id, w := range want {
		if g := got[id]; !reflect.DeepEqual(g, w) {
			t.Fatalf("customer %s differs after disk faults:\n got %+v\nwant %+v", id, g, w)
		}
	}
	if gotOut := dedupOutputs(t, faulty, faulty.topics.TierChanges); !reflect.DeepEqual(gotOut, wantOut) {
		t.Fatalf("tier changes differ: got %d distinct, want %d", len(gotOut), len(wantOut))
	}
	return stopped
}

// checkDiskFaultError fails the test unless err, Run's error, is a
// *state.Error of dir whose message names the directory once (the
// state "<dir>" part: a file's path in the cause may repeat it) and which
// carries cause.
func checkDiskFaultError(t *testing.T, err error, dir string, cause error) {
	t.Helper()
	var se *state.Error
	if !errors.As(err, &se) || se.Dir != dir {
		t.Fatalf("Run's error %v is not a *state.Error of %q", err, dir)
	}
	if n := strings.Count(err.Error(), "state "+strconv.Quote(dir)); n != 1 {
		t.Fatalf("Run's error %q names the state directory %d times, want once", err, n)
	}
	if !errors.Is(err, cause) && !strings.Contains(err.Error(), cause.Error()) {
		t.Fatalf("Run's error %q does not carry the cause %v", err, cause)
	}
}

// sstReadFault fails every read of a table file once on.
type sstReadFault struct {
	on    atomic.Bool
	fired atomic.Int64
}

func (f *sstReadFault) String() string { return "table reads" }

func (f *sstReadFault) MaybeError(op errorfs.Op) error {
	if f.on.Load() && strings.HasSuffix(op.Path, ".sst") &&
		(op.Kind == errorfs.OpFileReadAt || op.Kind == errorfs.OpFileRead) {
		f.fired.Add(1)
		return errorfs.ErrInjected
	}
	return nil
}

// TestDiskReadFaultStopsTask fails the reads of the store's tables, once
// a task has loaded (so in its lookups of stored customers) or as soon as
// the processor starts (so in its load, or its restore), and checks that the task stops the processor with the
// read's error, no panic, and that a restart on a sound disk ends with the
// state of a run that never failed.
func TestDiskReadFaultStopsTask(t *testing.T) {
	for _, inLoad := range []bool{false, true} {
		t.Run(fmt.Sprintf("inLoad=%v", inLoad), func(t *testing.T) {
			h := newHarness(t, 1)
			recs := h.workloadRecords(t, 3, 200)
			half := len(recs) / 2

			refDir := filepath.Join(t.TempDir(), "ref")
			h.b.Produce(t, recs...)
			ref := h.start(refDir, kafkatest.Name(t, "ref"))
			ref.waitHandled(t, float64(len(recs)))
			if err := ref.shutdown(t, false); err != nil {
				t.Fatal(err)
			}
			want := snapshot(t, refDir)

			// The first half, in tables on disk.
			second := newHarness(t, 1)
			dir := filepath.Join(t.TempDir(), "faulty")
			group := kafkatest.Name(t, "faulty")
			copies := make([]*kgo.Record, len(recs))
			for i, r := range recs {
				copies[i] = &kgo.Record{Topic: second.topics.Purchases, Key: r.Key, Value: r.Value, Headers: r.Headers}
			}
			second.b.Produce(t, copies[:half]...)
			r := second.start(dir, group)
			r.waitHandled(t, float64(half))
			if err := r.store.DB().Flush(); err != nil {
				t.Fatal(err)
			}
			if err := r.shutdown(t, false); err != nil {
				t.Fatal(err)
			}

			// The second half, with the tables unreadable. The block
			// cache is too small to hold a block, so each lookup of a
			// stored customer reads its table.
			f := &sstReadFault{}
			r = second.startWith(state.Options{Dir: dir, FS: errorfs.Wrap(vfs.Default, f), CacheSize: 1}, group,
				func(c *Config) { c.CacheCustomers = 1 })
			if inLoad {
				// Before the group assigns the task, so before its load
				// (the store's Open, which reads the tables too, is
				// done).
				f.on.Store(true)
			} else {
				kafkatest.Eventually(t, time.Minute, func() error {
					r.p.mu.Lock()
					defer r.p.mu.Unlock()
					if t := r.p.tasks[0]; t == nil || !t.loaded.Load() {
						return errors.New("task 0 not loaded")
					}
					return nil
				})
				f.on.Store(true)
			}
			second.b.Produce(t, copies[half:]...)
			var runErr error
			select {
			case runErr = <-r.done:
			case <-time.After(time.Minute):
				t.Fatalf("processor did not stop within a minute of the read fault (%d reads failed)", f.fired.Load())
			}
			checkDiskFaultError(t, runErr, dir, errorfs.ErrInjected)
			t.Logf("stopped: %v", runErr)
			if err := r.store.Close(); err != nil {
				t.Logf("close: %v", err)
			}
			r.store = nil

			r = second.start(dir, group)
			r.sent = float64(len(recs) - half)
			kafkatest.Eventually(t, time.Minute, func() error {
				if got := handledInStore(t, r.store); got < len(recs) {
					return fmt.Errorf("state covers %d of %d records", got, len(recs))
				}
				return nil
			})
			if err := r.shutdown(t, false); err != nil {
				t.Fatal(err)
			}
			if got := snapshot(t, dir); !reflect.DeepEqual(got, want) {
				t.Fatalf("state after the read fault and a restart differs from the sound run's (%d customers, want %d)", len(got), len(want))
			}
		})
	}
}
