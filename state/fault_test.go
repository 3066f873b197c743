package state

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// The fault tests run the store on the real disk (under t.TempDir) through
// Pebble's errorfs, fail one kind of operation from its nth occurrence on,
// and check that the store reports it as an *Error naming its directory
// and the cause, refuses later writes, closes, and that a reopen without
// the fault finds every batch whose Commit returned nil, whole.

// faultKind names a kind of file operation the tests fail.
type faultKind struct {
	name string
	// ops are the operations counted (and failed).
	ops []errorfs.OpKind
	// err builds the error of a failed operation on path.
	err func(path string) error
	// sticky: every counted operation from the nth on fails (a full disk);
	// otherwise only the nth (an I/O error).
	sticky bool
}

var (
	faultWrite = faultKind{name: "write", ops: []errorfs.OpKind{errorfs.OpFileWrite, errorfs.OpFileWriteAt},
		err: func(string) error { return errorfs.ErrInjected }}
	faultSync = faultKind{name: "sync", ops: []errorfs.OpKind{errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo},
		err: func(string) error { return errorfs.ErrInjected }}
	// faultFull fails what a full disk fails: every write, preallocation
	// and sync, with ENOSPC as the operating system gives it. (Creating a
	// file needs no data block, so a full disk seldom fails it: faultCreate
	// does.)
	faultFull = faultKind{name: "disk full", sticky: true,
		ops: []errorfs.OpKind{errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFilePreallocate,
			errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo},
		err: func(path string) error { return &fs.PathError{Op: "write", Path: path, Err: syscall.ENOSPC} }}
	// faultCreate fails every file creation from the nth on, as a disk out
	// of inodes does.
	faultCreate = faultKind{name: "create", sticky: true, ops: []errorfs.OpKind{errorfs.OpCreate},
		err: func(path string) error { return &fs.PathError{Op: "open", Path: path, Err: syscall.ENOSPC} }}
	// faultRead fails every read from the nth on (Pebble's background
	// reads, table statistics say, may take the nth itself).
	faultRead = faultKind{name: "read", sticky: true, ops: []errorfs.OpKind{errorfs.OpFileReadAt, errorfs.OpFileRead},
		err: func(string) error { return errorfs.ErrInjected }}
)

// faultInjector fails the operations of a faultKind from the nth one (1
// for the first) counted after arm; n = 0 fails none.
type faultInjector struct {
	kind  faultKind
	n     int64
	armed atomic.Bool
	seen  atomic.Int64
	fired atomic.Int64
}

func (f *faultInjector) String() string {
	return "fault " + f.kind.name + " #" + strconv.FormatInt(f.n, 10)
}

func (f *faultInjector) MaybeError(op errorfs.Op) error {
	if !f.armed.Load() || f.n == 0 {
		return nil
	}
	for _, k := range f.kind.ops {
		if op.Kind != k {
			continue
		}
		i := f.seen.Add(1)
		if i == f.n || (f.kind.sticky && i > f.n) {
			f.fired.Add(1)
			return f.kind.err(op.Path)
		}
		return nil
	}
	return nil
}

// checkStoreError fails the test unless err is an *Error of dir whose
// message names dir once and whose cause is the injected one.
func checkStoreError(t *testing.T, err error, dir string, k faultKind) {
	t.Helper()
	var se *Error
	if !errors.As(err, &se) || se.Dir != dir {
		t.Fatalf("error %v (%T) is not a *state.Error of %q", err, err, dir)
	}
	if n := strings.Count(err.Error(), dir); n < 1 || !strings.HasPrefix(err.Error(), "state "+strconv.Quote(dir)+": ") {
		t.Fatalf("error %q does not start by naming the state directory", err)
	}
	want := error(errorfs.ErrInjected)
	if k.sticky && k.name != faultRead.name {
		want = syscall.ENOSPC
	}
	if !errors.Is(err, want) && !strings.Contains(err.Error(), want.Error()) {
		t.Fatalf("error %q does not carry the cause %v", err, want)
	}
}

// faultBatch writes batch i to partition 1: a counter, ten customers, and
// the offset that covers them.
func faultBatch(b *Batch, i int64) {
	b.PutCustomer(1, "counter", strconv.AppendInt(nil, i, 10))
	for j := range 10 {
		b.PutCustomer(1, fmt.Sprintf("c%03d", (int(i)*7+j)%200), fmt.Appendf(nil, "batch=%d;%s", i, strings.Repeat("v", 200)))
	}
	b.SetOffset(1, "purchases", i)
}

// checkFaultStore reopens dir on the plain file system and checks that it
// holds batches 1..n for some n >= acked, whole: the counter, the offset
// and every customer of the last batch agree.
func checkFaultStore(t *testing.T, dir string, acked int64) int64 {
	t.Helper()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatalf("reopen without the fault: %v", err)
	}
	defer s.Close()
	offs, err := s.Offsets(1)
	if err != nil {
		t.Fatal(err)
	}
	n := offs["purchases"]
	if n < acked {
		t.Fatalf("reopened store holds %d batches, but %d commits returned nil", n, acked)
	}
	if n == 0 {
		return 0
	}
	v, found, err := s.GetCustomer(1, []byte("counter"), nil)
	if err != nil || !found || string(v) != strconv.FormatInt(n, 10) {
		t.Fatalf("counter = %q, %v, %v; offsets say %d batches", v, found, err, n)
	}
	for j := range 10 {
		id := fmt.Sprintf("c%03d", (int(n)*7+j)%200)
		v, found, err := s.GetCustomer(1, []byte(id), nil)
		if err != nil || !found || !strings.HasPrefix(string(v), fmt.Sprintf("batch=%d;", n)) {
			t.Fatalf("%s = %.20q, %v, %v; want batch %d's value", id, v, found, err, n)
		}
	}
	return n
}

// TestStoreWriteFaults fails writes, syncs, and every write as on a full
// disk, at a range of points of a run of synced commits, and checks the
// error, the refusal of later writes, Close, and what a reopen finds.
func TestStoreWriteFaults(t *testing.T) {
	points := []int64{1, 2, 3, 5, 8, 13, 21, 34, 55, 89}
	if testing.Short() {
		points = []int64{1, 3, 13}
	}
	for _, k := range []faultKind{faultWrite, faultSync, faultFull} {
		for _, n := range points {
			t.Run(fmt.Sprintf("%s/%d", k.name, n), func(t *testing.T) {
				dir := t.TempDir()
				inj := &faultInjector{kind: k, n: n}
				// The memtable holds every batch: no flush, so the faults
				// hit the write-ahead log (TestStoreFaultChild covers
				// flushes and compactions).
				s, err := Open(Options{Dir: dir, FS: errorfs.Wrap(vfs.Default, inj), CacheSize: 1 << 20,
					OnFatal: func(err error) {
						t.Errorf("OnFatal called under a commit: %v", err)
						runtime.Goexit()
					}})
				if err != nil {
					t.Fatal(err)
				}
				inj.armed.Store(true)
				b := s.NewBatch()
				var acked int64
				var cerr error
				for i := int64(1); i <= 400 && cerr == nil; i++ {
					faultBatch(b, i)
					if cerr = b.Commit(); cerr == nil {
						acked = i
					}
				}
				if cerr == nil {
					t.Fatalf("400 commits succeeded; %d faults injected", inj.fired.Load())
				}
				checkStoreError(t, cerr, dir, k)
				t.Logf("commit %d failed: %v", acked+1, cerr)
				faultBatch(b, acked+2)
				if err := b.Commit(); !errors.Is(err, errStopped) {
					t.Fatalf("commit after a failed one = %v, want the store stopped", err)
				}
				b.Close()
				if err := s.Close(); err != nil {
					t.Logf("close after the fault: %v", err)
				}
				got := checkFaultStore(t, dir, acked)
				t.Logf("%d batches acknowledged, %d found on reopen", acked, got)
			})
		}
	}
}

// TestStoreReadFaults fails the nth read of a store's tables and checks
// that lookups and scans report it as an *Error, and that the data is
// whole once the store is reopened without the fault.
func TestStoreReadFaults(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	for i := int64(1); i <= 50; i++ {
		faultBatch(b, i)
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	if err := s.write("flush", s.flush); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	points := []int64{1, 2, 3, 4, 6, 9}
	for _, n := range points {
		t.Run(strconv.FormatInt(n, 10), func(t *testing.T) {
			inj := &faultInjector{kind: faultRead, n: n}
			// A block cache too small to hold a block: every lookup
			// reads its table.
			s, err := Open(Options{Dir: dir, FS: errorfs.Wrap(vfs.Default, inj), CacheSize: 1})
			if err != nil {
				t.Fatal(err)
			}
			closed := false
			t.Cleanup(func() {
				if !closed {
					s.Close()
				}
			})
			inj.armed.Store(true)
			var rerr error
			for i := 0; i < 200 && rerr == nil; i++ {
				_, _, rerr = s.GetCustomer(1, []byte(fmt.Sprintf("c%03d", i)), nil)
				if rerr == nil {
					rerr = s.ScanCustomers(1, func(_, _ []byte) error { return nil })
				}
			}
			if rerr == nil {
				t.Fatalf("no read failed; %d faults injected", inj.fired.Load())
			}
			checkStoreError(t, rerr, dir, faultRead)
			t.Logf("read failed: %v", rerr)
			closed = true
			if err := s.Close(); err != nil {
				t.Logf("close after the fault: %v", err)
			}
			checkFaultStore(t, dir, 50)
		})
	}
	// The files are the real disk's: nothing of the faults' left behind.
	if _, err := os.Stat(filepath.Join(dir, ingestDir)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ingest directory: %v", err)
	}
}

// faultChildEnv, set to "<dir>|<kind>|<n>", makes TestStoreFaultChild run
// the faulty writer.
const faultChildEnv = "VALORA_STATE_FAULT_CHILD"

// faultKinds are the kinds a child can fail, by name.
var faultKinds = map[string]faultKind{"write": faultWrite, "sync": faultSync, "full": faultFull, "create": faultCreate}

// TestStoreFaultChild is the child side of TestStoreFaultsUnderFlushes; it
// does nothing in a normal test run. It commits batches with a small
// memtable (so that flushes and compactions run) until the fault stops it:
// a failed commit prints "error <err>" and exits 4; a fault on Pebble's own
// goroutines reaches OnFatal, which prints "fatal <err>" and exits 3.
func TestStoreFaultChild(t *testing.T) {
	arg := os.Getenv(faultChildEnv)
	if arg == "" {
		t.Skip("runs only as the child process of TestStoreFaultsUnderFlushes")
	}
	parts := strings.Split(arg, "|")
	n, _ := strconv.ParseInt(parts[2], 10, 64)
	inj := &faultInjector{kind: faultKinds[parts[1]], n: n}
	s, err := Open(Options{Dir: parts[0], FS: errorfs.Wrap(vfs.Default, inj), MemTableSize: 64 << 10, CacheSize: 1 << 20,
		OnFatal: func(err error) {
			fmt.Println("fatal", err)
			os.Exit(3)
		}})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	inj.armed.Store(true)
	b := s.NewBatch()
	for i := int64(1); i <= 3000; i++ {
		faultBatch(b, i)
		if err := b.Commit(); err != nil {
			fmt.Println("error", err)
			os.Exit(4)
		}
		fmt.Printf("committed %d\n", i)
	}
	os.Exit(5) // the fault never stopped it: the parent reports it
}

// TestStoreFaultsUnderFlushes fails writes, syncs and a full disk at
// points spread over a run whose flushes and compactions write tables and
// the MANIFEST, in a child process: Pebble meets some of the faults on its
// own goroutines, where only ending the process is safe. Each child must
// stop by a commit error or by OnFatal, both naming the directory (or, for
// a one-off fault in a table write, which Pebble retries, run to the end),
// never by a panic but the one Pebble raises itself when it rotates a
// failed write-ahead log; a reopen without the fault must find every
// acknowledged batch, whole.
func TestStoreFaultsUnderFlushes(t *testing.T) {
	if testing.Short() {
		t.Skip("re-runs the test binary; skipped with -short")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	points := map[string][]int64{
		"write":  {40, 90, 150, 330, 610},
		"sync":   {40, 150, 330, 460, 610},
		"full":   {40, 150, 330, 610, 800},
		"create": {5, 40, 150},
	}
	byExit := map[int]int{}
	for _, kind := range []string{"write", "sync", "full", "create"} {
		for _, n := range points[kind] {
			dir := t.TempDir()
			cmd := exec.Command(exe, "-test.run=^TestStoreFaultChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), faultChildEnv+"="+dir+"|"+kind+"|"+strconv.FormatInt(n, 10))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, _ := cmd.Output()
			code := cmd.ProcessState.ExitCode()
			var acked int64
			var last string
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if v, ok := strings.CutPrefix(line, "committed "); ok {
					acked, _ = strconv.ParseInt(v, 10, 64)
				} else {
					last = line
				}
			}
			if code == 5 && !faultKinds[kind].sticky {
				// A table write of a flush or compaction failed once:
				// Pebble reports a background error and retries.
				byExit[code]++
				if got := checkFaultStore(t, dir, acked); got != 3000 {
					t.Fatalf("%s #%d: the child committed 3000 batches, the store holds %d", kind, n, got)
				}
				t.Logf("%s #%d: survived (3000 commits)", kind, n)
				continue
			}
			if code == 2 && strings.Contains(stderr.String(), "pebble/v2.(*DB).rotateWAL") {
				// Pebble panics when it rotates a write-ahead log whose
				// writer failed; the panic unwinds through a mutex it has
				// already unlocked, a fatal error of the runtime that no
				// recover catches. The process ends all the same.
				byExit[code]++
				got := checkFaultStore(t, dir, acked)
				t.Logf("%s #%d: Pebble ended the process rotating its log, after %d commits (%d on reopen)", kind, n, acked, got)
				continue
			}
			if code != 3 && code != 4 {
				t.Fatalf("%s #%d: child exited %d after %d commits: %s\nstderr: %.3000s", kind, n, code, acked, last, stderr.String())
			}
			want := "state " + strconv.Quote(dir) + ": "
			if !strings.Contains(last, want) {
				t.Fatalf("%s #%d: child's last word %q does not name the directory", kind, n, last)
			}
			byExit[code]++
			got := checkFaultStore(t, dir, acked)
			t.Logf("%s #%d: exit %d after %d commits (%d on reopen): %s", kind, n, code, acked, got, last)
		}
	}
	t.Logf("%d children stopped by a failed commit, %d by OnFatal, %d by Pebble's panic in rotateWAL; %d ran on past a failed table write",
		byExit[4], byExit[3], byExit[2], byExit[5])
}

// TestStoreStallOnFullDisk fills the disk for tables only: the write-ahead
// log takes the commits, but no flush can write its table, so the
// memtables fill and commits stall. Pebble would keep them waiting, and
// retry the flush, until the disk has room; the store must fail the
// stalled commit instead (no hang), refuse later ones, and, once the disk
// has room again, let the stalled write finish and close, with every
// acknowledged batch found on reopen.
func TestStoreStallOnFullDisk(t *testing.T) {
	dir := t.TempDir()
	var full atomic.Bool
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if full.Load() && strings.HasSuffix(op.Path, ".sst") && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return &fs.PathError{Op: "write", Path: op.Path, Err: syscall.ENOSPC}
		}
		return nil
	})
	s, err := Open(Options{Dir: dir, FS: errorfs.Wrap(vfs.Default, inj), MemTableSize: 64 << 10, CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	full.Store(true)
	b := s.NewBatch()
	var acked int64
	var cerr error
	for i := int64(1); i <= 2000 && cerr == nil; i++ {
		faultBatch(b, i)
		if cerr = b.Commit(); cerr == nil {
			acked = i
		}
	}
	if cerr == nil {
		t.Fatal("2000 commits on a full disk succeeded")
	}
	checkStoreError(t, cerr, dir, faultFull)
	t.Logf("commit %d failed: %v", acked+1, cerr)
	faultBatch(b, acked+2)
	if err := b.Commit(); !errors.Is(err, errStopped) {
		t.Fatalf("commit after the stall = %v, want the store stopped", err)
	}
	b.Close()
	if err := s.Close(); !errors.Is(err, errStopped) {
		t.Fatalf("Close of the stalled store = %v, want it refused", err)
	}
	// Room again: the flush Pebble retries succeeds, the stalled write
	// goes through, and the database closes.
	full.Store(false)
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
	got := checkFaultStore(t, dir, acked)
	t.Logf("%d batches acknowledged, %d found on reopen", acked, got)
}

// TestStoreCancelledWriteKeepsStore checks that a write given up by its
// caller (a cancelled ingest) does not stop the store.
func TestStoreCancelledWriteKeepsStore(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.write("ingest", func() error { return ctx.Err() }); !errors.Is(err, context.Canceled) {
		t.Fatalf("write = %v, want context.Canceled", err)
	}
	b := s.NewBatch()
	defer b.Close()
	faultBatch(b, 1)
	if err := b.Commit(); err != nil {
		t.Fatalf("commit after a cancelled write: %v", err)
	}
}
