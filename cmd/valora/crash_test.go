package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/buildtest"
	"valora/internal/deliverytest"
	"valora/internal/gen"
	"valora/internal/kafkatest"
	"valora/processor"
	"valora/schemas"
)

// crashSeeds is the number of seeds of the real-process crash test:
// VALORA_CRASH_SEEDS, or 2 (1 with -short). `make crash` runs more.
func crashSeeds(t *testing.T) int {
	if v := os.Getenv("VALORA_CRASH_SEEDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("VALORA_CRASH_SEEDS=%q: want a positive number", v)
		}
		return n
	}
	if testing.Short() {
		return 1
	}
	return 2
}

// TestCrashRealProcesses builds the valora binary as deploy/Dockerfile does
// (buildtest.Valora) and runs `valora run` processes in one group against the
// test broker (kfake in-process, or the real Apache Kafka of
// VALORA_TEST_BROKERS): the group scales 1 → 3 → 2
// while the input arrives in chunks, and random instances are killed with
// SIGKILL at random moments and started again (half of the time on an empty
// state directory, as after losing a disk); odd seeds run with one standby
// replica per task. In both guarantees it then
// checks the output topic as a read_committed consumer sees it (chains;
// no repeated event_id in exactly-once mode, identical repeats only in
// at-least-once mode), and that the state the changelog holds equals that
// of one clean process over the same input.
func TestCrashRealProcesses(t *testing.T) {
	bin := buildtest.Valora(t)
	for _, g := range []processor.Guarantee{processor.ExactlyOnce, processor.AtLeastOnce} {
		t.Run(string(g), func(t *testing.T) {
			for seed := range uint64(crashSeeds(t)) {
				t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { crashRealProcesses(t, bin, g, seed) })
			}
		})
	}
}

// proc is one `valora run` process.
type proc struct {
	cmd  *exec.Cmd
	done chan error
	log  string
	// logged is the size of the log when the process started: the
	// file is shared by the incarnations of a state directory.
	logged int64
}

// startLogged starts bin with args, its output appended to logPath (the
// log a state directory's incarnations share), and kills it at cleanup.
func startLogged(t *testing.T, bin string, args []string, logPath string) *proc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := logf.Stat()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1), log: logf.Name(), logged: fi.Size()}
	go func() { p.done <- cmd.Wait(); logf.Close() }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-p.done })
	return p
}

func crashRealProcesses(t *testing.T, bin string, g processor.Guarantee, seed uint64) {
	b := kafkatest.New(t)
	const parts = 4
	in, pu := kafkatest.Name(t, "interactions"), kafkatest.Name(t, "purchases")
	b.CreateTopics(t, parts, in, pu)
	codec, err := schemas.NewCodec(context.Background(), schemas.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs := crashWorkload(t, codec, pu, seed+1, 150)
	n := len(recs)
	rng := rand.New(rand.NewPCG(seed, 11))
	adm := kadm.NewClient(b.Client(t))
	// Logs stay when the test fails.
	logDir, err := os.MkdirTemp("", "valora-crash-logs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(logDir)
		}
	})

	start := func(group, out, dir, instance string) *proc {
		t.Helper()
		args := []string{"run", "--brokers", b.Addrs[0], "--group", group, "--state-dir", dir,
			"--interactions-topic", in, "--purchases-topic", pu, "--erasures-topic", pu + "-erasures",
			"--tier-changes-topic", out, "--dlq-topic", out + "-dlq", "--create-topics",
			"--guarantee", string(g), "--http-addr", "", "--session-timeout", "10s",
			"--commit-interval", "30ms", "--commit-records", strconv.Itoa(1 + rng.IntN(40)),
			"--time", "event"}
		if instance != "" {
			args = append(args, "--instance-id", instance)
		}
		if seed%2 == 1 {
			// Odd seeds keep a standby copy of every task on another
			// instance: takeovers then restore from those copies.
			args = append(args, "--standby-replicas", "1")
		}
		return startLogged(t, bin, args, filepath.Join(logDir, filepath.Base(dir)+".log"))
	}
	stop := func(p *proc, sig syscall.Signal) {
		t.Helper()
		if sig == syscall.SIGTERM {
			// Before main installs its handler, SIGTERM kills the
			// process like SIGKILL: wait until it has started.
			kafkatest.Eventually(t, time.Minute, func() error {
				b, err := os.ReadFile(p.log)
				if err == nil && int64(len(b)) > p.logged && bytes.Contains(b[p.logged:], []byte("processor started")) {
					return nil
				}
				return fmt.Errorf("%s: not started yet", p.log)
			})
		}
		_ = p.cmd.Process.Signal(sig)
		select {
		case err := <-p.done:
			p.done <- err
			if sig == syscall.SIGTERM && err != nil {
				t.Fatalf("valora run after SIGTERM: %v (logs in %s)", err, logDir)
			}
		case <-time.After(time.Minute):
			t.Fatalf("valora run did not exit within a minute of %v", sig)
		}
	}
	handled := func(group string) int64 { return deliverytest.GroupHandled(adm, group, in, pu) }
	waitHandled := func(group string, want int) {
		t.Helper()
		kafkatest.Eventually(t, 3*time.Minute, func() error {
			if got := handled(group); got < int64(want) {
				return fmt.Errorf("group %s committed %d of %d records (logs in %s)", group, got, want, logDir)
			}
			return nil
		})
	}

	// The group under test: 1 → 3 instances, random SIGKILLs and
	// restarts, then 2.
	group, out := kafkatest.Name(t, "g"), kafkatest.Name(t, "out")
	var slots [3]*proc
	dirs := [3]string{}
	launch := func(i int, fresh bool) {
		if fresh || dirs[i] == "" {
			dirs[i] = filepath.Join(t.TempDir(), fmt.Sprintf("slot%d-%d", i, rng.Uint32()))
		}
		// Static membership: a restarted instance takes its tasks back
		// without waiting for the session timeout.
		slots[i] = start(group, out, dirs[i], fmt.Sprintf("slot-%d", i))
	}
	fed := 0
	feed := func(k int) {
		hi := min(n, fed+k)
		b.Produce(t, recs[fed:hi]...)
		fed = hi
	}
	launch(0, false)
	feed(n / 6)
	waitHandled(group, fed/2)
	launch(1, false)
	launch(2, false)
	kills := 0
	for fed < n {
		feed(n / 6)
		// Kill while the chunk is being processed: after a random share
		// of it has been committed.
		target := handled(group) + int64(rng.IntN(n/12+1))
		kafkatest.Eventually(t, 3*time.Minute, func() error {
			if got := handled(group); got < min(target, int64(fed)) {
				return fmt.Errorf("committed %d, waiting for %d", got, target)
			}
			return nil
		})
		i := rng.IntN(3)
		stop(slots[i], syscall.SIGKILL)
		kills++
		launch(i, rng.IntN(2) == 0)
	}
	// Scale in to two: one instance stops with SIGTERM (a static member
	// does not leave the group; its tasks move after the session timeout).
	i := rng.IntN(3)
	stop(slots[i], syscall.SIGTERM)
	slots[i] = nil
	waitHandled(group, n)
	for _, p := range slots {
		if p != nil {
			stop(p, syscall.SIGTERM)
		}
	}
	t.Logf("%d records through 3 processes, %d SIGKILLs (%s)", n, kills, b.Kind)

	// One clean process over the same input.
	refGroup, refOut := kafkatest.Name(t, "ref"), kafkatest.Name(t, "ref-out")
	ref := start(refGroup, refOut, filepath.Join(t.TempDir(), "ref"), "")
	waitHandled(refGroup, n)
	stop(ref, syscall.SIGTERM)

	want := deliverytest.ChangelogCustomers(t, b, refGroup+"-changelog")
	wantOut := deliverytest.ReadChanges(t, b, codec, refOut, true)
	ch := deliverytest.ReadChanges(t, b, codec, out, g == processor.ExactlyOnce)
	t.Logf("%d distinct tier changes, %d repeats", len(ch.Distinct), ch.Repeats)
	ch.CheckChains(t)
	if !reflect.DeepEqual(ch.Distinct, wantOut.Distinct) {
		t.Fatalf("tier changes differ from the clean run: got %d distinct, want %d", len(ch.Distinct), len(wantOut.Distinct))
	}
	got := deliverytest.ChangelogCustomers(t, b, group+"-changelog")
	deliverytest.SameState(t, got, want)
	ch.CheckFinal(t, got)
}

// crashWorkload is 300 days of purchases of generated customers.
func crashWorkload(t *testing.T, codec *schemas.Codec, topic string, seed uint64, customers int) []*kgo.Record {
	t.Helper()
	p := gen.DefaultParams()
	p.Seed = seed
	p.Customers = customers
	p.Start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	p.Horizon = 300 * 24 * time.Hour
	p.R, p.Alpha = 1, 10
	gn, err := gen.New(p)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	var ev gen.Event
	for gn.Next(&ev) {
		if ev.Kind != gen.KindPurchase {
			continue
		}
		v, err := codec.AppendPurchase(nil, &ev.Purchase)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(ev.Purchase.CustomerID), Value: v})
	}
	return recs
}
