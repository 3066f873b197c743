package state

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The crash test runs a writer in a child process (this test binary, re-run
// with crashChildEnv set) and kills it with SIGKILL at a random moment, then
// checks the store it left. Each round reopens the same directory, so later
// rounds also crash during recovery writes, flushes and compactions of the
// earlier rounds' data.
const (
	crashChildEnv     = "VALORA_STATE_CRASH_DIR"
	crashPartitionA   = int32(1)
	crashPartitionB   = int32(2)
	crashRandomIDs    = 500
	crashRandomPerBat = 40
)

// crashBatchValue is the value written in batch i for a random customer.
func crashBatchValue(i int64) []byte {
	return fmt.Appendf(nil, "batch=%d;%s", i, strings.Repeat("x", 80))
}

// TestCrashChild is the child side of TestCrashAllOrNothing; it does nothing
// in a normal test run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("runs only as the child process of TestCrashAllOrNothing")
	}
	// A small memtable makes flushes and compactions happen while writing.
	s, err := Open(Options{Dir: dir, CacheSize: 4 << 20, MemTableSize: 256 << 10})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	offs, err := s.Offsets(crashPartitionA)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	b := s.NewBatch()
	deadline := time.Now().Add(30 * time.Second)
	for i := offs["purchases"]; time.Now().Before(deadline); i++ {
		for _, p := range []int32{crashPartitionA, crashPartitionB} {
			// Batch i: a counter, a rotating marker (previous one deleted),
			// random customers, and the offsets that cover all of it.
			b.PutCustomer(p, "counter", strconv.AppendInt(nil, i+1, 10))
			b.DeleteCustomer(p, fmt.Sprintf("marker-%08d", i-1))
			b.PutCustomer(p, fmt.Sprintf("marker-%08d", i), nil)
			for range crashRandomPerBat {
				b.PutCustomer(p, fmt.Sprintf("r%04d", rng.IntN(crashRandomIDs)), crashBatchValue(i))
			}
			b.SetOffset(p, "purchases", i+1)
			b.SetOffset(p, "interactions", 2*(i+1))
		}
		if err := b.Commit(); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Printf("committed %d\n", i+1) // stdout is unbuffered
	}
	os.Exit(3) // never killed: the parent reports it
}

func TestCrashAllOrNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test re-runs the test binary; skipped with -short")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var lastAcked int64
	for seed := uint64(1); seed <= 6; seed++ {
		rng := rand.New(rand.NewPCG(seed, 42))
		acked := crashOnce(t, exe, dir, rng)
		if acked < lastAcked {
			acked = lastAcked
		}
		lastAcked = verifyCrashed(t, dir, seed, acked)
	}
}

// crashOnce runs a child writer until it has committed at least one batch,
// lets it run a random while longer, kills it, and returns the highest batch
// count the child reported as committed.
func crashOnce(t *testing.T, exe, dir string, rng *rand.Rand) int64 {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked atomic.Int64
	var firstErr atomic.Value
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if n, ok := strings.CutPrefix(line, "committed "); ok {
				v, _ := strconv.ParseInt(n, 10, 64)
				acked.Store(v)
			} else if strings.HasPrefix(line, "error") {
				firstErr.CompareAndSwap(nil, line)
			}
		}
	}()
	// Wait for a first commit of this round, then kill at a random moment.
	start := acked.Load()
	deadline := time.Now().Add(20 * time.Second)
	for acked.Load() == start && firstErr.Load() == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	<-done
	waitErr := cmd.Wait()
	if e := firstErr.Load(); e != nil {
		t.Fatalf("child failed: %v\nstderr: %s", e, stderr.String())
	}
	if ee, ok := waitErr.(*exec.ExitError); !ok || ee.ExitCode() != -1 {
		t.Fatalf("child did not die by the signal: %v\nstderr: %s", waitErr, stderr.String())
	}
	return acked.Load()
}

// verifyCrashed opens the store a killed child left and checks that every
// batch is either wholly there or wholly absent, and that every batch the
// child saw committed is there. It returns the number of batches found.
func verifyCrashed(t *testing.T, dir string, seed uint64, acked int64) int64 {
	t.Helper()
	s, err := Open(Options{Dir: dir, CacheSize: 4 << 20})
	if err != nil {
		t.Fatalf("seed %d: reopen after kill: %v", seed, err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Fatalf("seed %d: close: %v", seed, err)
		}
	}()

	offsA, err := s.Offsets(crashPartitionA)
	if err != nil {
		t.Fatal(err)
	}
	n := offsA["purchases"]
	if n < acked {
		t.Fatalf("seed %d: %d batches stored, but the child saw %d committed", seed, n, acked)
	}
	if n == 0 {
		t.Fatalf("seed %d: no batch stored", seed)
	}
	for _, p := range []int32{crashPartitionA, crashPartitionB} {
		offs, err := s.Offsets(p)
		if err != nil {
			t.Fatal(err)
		}
		// Offsets of both partitions and both topics come from the same batch.
		if offs["purchases"] != n || offs["interactions"] != 2*n {
			t.Fatalf("seed %d partition %d: offsets %v, want purchases=%d interactions=%d", seed, p, offs, n, 2*n)
		}
		counter, found, err := s.GetCustomer(p, []byte("counter"), nil)
		if err != nil || !found || string(counter) != strconv.FormatInt(n, 10) {
			t.Fatalf("seed %d partition %d: counter = %q, %v, %v; offsets say %d batches", seed, p, counter, found, err, n)
		}
		var markers []string
		err = s.ScanCustomers(p, func(id, v []byte) error {
			switch {
			case strings.HasPrefix(string(id), "marker-"):
				markers = append(markers, string(id))
			case id[0] == 'r':
				var b int64
				if _, err := fmt.Sscanf(string(v), "batch=%d;", &b); err != nil {
					return fmt.Errorf("customer %q: value %q: %w", id, v, err)
				}
				if b >= n {
					return fmt.Errorf("customer %q holds batch %d, but only %d batches are committed", id, b, n)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("seed %d partition %d: %v", seed, p, err)
		}
		if want := fmt.Sprintf("marker-%08d", n-1); len(markers) != 1 || markers[0] != want {
			t.Fatalf("seed %d partition %d: markers %v, want only %s", seed, p, markers, want)
		}
	}
	t.Logf("seed %d: %d batches stored, %d acknowledged before the kill", seed, n, acked)
	return n
}
