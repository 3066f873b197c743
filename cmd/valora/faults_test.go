package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"valora/internal/buildtest"
	"valora/internal/deliverytest"
	"valora/internal/kafkatest"
	"valora/processor"
	"valora/schemas"
)

// faultPort is the port of the broker the fault suite starts for itself
// (deploy/kafka-local), apart from the one other tests share: the suite
// pauses and kills it.
const faultPort = "19392"

// faultBroker is a real Apache Kafka broker run by deploy/kafka-local.
type faultBroker struct {
	kafkatest.Broker
	dir string // deploy/kafka-local
	env []string
}

// script runs one of deploy/kafka-local's scripts and returns its stdout.
func (fb *faultBroker) script(t *testing.T, name string, env ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(fb.dir, name))
	cmd.Env = append(append(os.Environ(), fb.env...), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// up starts the broker (on its data when keep is set) and returns its address.
func (fb *faultBroker) up(t *testing.T, keep bool) {
	t.Helper()
	env := []string{}
	if keep {
		env = append(env, "KAFKA_KEEP_DATA=1")
	}
	start := time.Now()
	out := fb.script(t, "up.sh", env...)
	line := out[strings.LastIndex(out, "\n")+1:]
	addr, ok := strings.CutPrefix(line, "VALORA_TEST_BROKERS=")
	if !ok {
		t.Fatalf("up.sh printed %q", out)
	}
	fb.Addrs, fb.Kind = []string{addr}, "kafka"
	t.Logf("broker at %s up in %v (on its data: %v)", addr, time.Since(start).Round(time.Millisecond), keep)
}

// signal sends sig to the broker process.
func (fb *faultBroker) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	pid, err := strconv.Atoi(fb.script(t, "pid.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("signal %v to broker %d: %v", sig, pid, err)
	}
	if sig == syscall.SIGKILL {
		for syscall.Kill(pid, 0) == nil {
			time.Sleep(20 * time.Millisecond) // the kernel reaps it at once
		}
	}
}

// TestFaultsRealBroker is the fault suite against a real Apache Kafka
// broker of its own (deploy/kafka-local on faultPort), in exactly-once
// mode: while a `valora run` process works through a backlog, the broker
// is paused for 10 s, paused for longer than the transaction timeout,
// killed and restarted on its data, and killed for good (then /readyz must
// turn 503 and SIGTERM must stop the process within --shutdown-timeout;
// the broker comes back on its data afterwards). For each fault valora
// either recovers by itself or exits non-zero, and is then started again;
// it must never stop making progress while it runs. Once all the input is
// handled, a read_committed reader must see each tier change once, every
// customer's changes must form a chain, and the state and the changes
// must equal those of a clean run over the same input.
//
// It needs java and the Kafka jars (deploy/kafka-local/up.sh fetches them)
// and takes minutes: VALORA_FAULTS=1 runs it (`make faults`, and CI).
func TestFaultsRealBroker(t *testing.T) {
	if os.Getenv("VALORA_FAULTS") == "" {
		t.Skip("the fault suite pauses and kills a real broker of its own: set VALORA_FAULTS=1 (make faults; CI does)")
	}
	dir, err := filepath.Abs("../../deploy/kafka-local")
	if err != nil {
		t.Fatal(err)
	}
	fb := &faultBroker{dir: dir, env: []string{"KAFKA_PORT=" + faultPort}}
	fb.up(t, false)
	t.Cleanup(func() { fb.script(t, "down.sh") })
	bin := buildtest.Valora(t)
	for _, f := range []struct {
		name  string
		fault func(t *testing.T, fb *faultBroker, v *valoraProc)
	}{
		{"pause-10s", func(t *testing.T, fb *faultBroker, _ *valoraProc) {
			fb.signal(t, syscall.SIGSTOP)
			time.Sleep(10 * time.Second) // the fault's length
			fb.signal(t, syscall.SIGCONT)
		}},
		{"pause-past-transaction-timeout", func(t *testing.T, fb *faultBroker, _ *valoraProc) {
			fb.signal(t, syscall.SIGSTOP)
			time.Sleep(faultTxnTimeout + 8*time.Second) // the fault's length
			fb.signal(t, syscall.SIGCONT)
		}},
		{"kill-restart", func(t *testing.T, fb *faultBroker, _ *valoraProc) {
			fb.signal(t, syscall.SIGKILL)
			fb.up(t, true)
		}},
		{"kill-for-good", func(t *testing.T, fb *faultBroker, v *valoraProc) {
			kafkatest.Eventually(t, time.Minute, func() error {
				if code, err := v.get("/readyz"); err != nil || code != http.StatusOK {
					return fmt.Errorf("/readyz before the fault: %d %v", code, err)
				}
				return nil
			})
			fb.signal(t, syscall.SIGKILL)
			lost := time.Now()
			kafkatest.Eventually(t, time.Minute, func() error {
				code, err := v.get("/readyz")
				if err != nil {
					t.Fatalf("/readyz with the broker gone: %v", err)
				}
				if code != http.StatusServiceUnavailable {
					return fmt.Errorf("/readyz %d, want 503", code)
				}
				return nil
			})
			t.Logf("/readyz 503 %v after the broker was killed", time.Since(lost).Round(time.Millisecond))
			code, took := v.term(t)
			t.Logf("SIGTERM with the broker gone: exit code %d after %v", code, took.Round(time.Millisecond))
			if took > faultShutdown+5*time.Second {
				t.Errorf("SIGTERM took %v, want under --shutdown-timeout %v and a little", took, faultShutdown)
			}
			fb.up(t, true)
		}},
	} {
		t.Run(f.name, func(t *testing.T) { faultScenario(t, bin, fb, f.fault) })
	}
}

const (
	faultTxnTimeout = 10 * time.Second
	faultShutdown   = 10 * time.Second
)

// valoraProc is one `valora run` process of the fault suite.
type valoraProc struct {
	*proc
	http   string // host:port, from the log
	termed bool   // term was called
}

func (v *valoraProc) exited() (error, bool) {
	select {
	case err := <-v.done:
		v.done <- err
		return err, true
	default:
		return nil, false
	}
}

// get answers GET path's status code; an error if it took over a second.
func (v *valoraProc) get(path string) (int, error) {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + v.http + path)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// term sends SIGTERM and returns the exit code and how long the exit took;
// it fails the test if the process does not exit within a minute.
func (v *valoraProc) term(t *testing.T) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	v.termed = true
	_ = v.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-v.done:
		v.done <- err
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		return code, time.Since(start)
	case <-time.After(time.Minute):
		t.Fatalf("valora run did not exit within a minute of SIGTERM (log %s)", v.log)
		return 0, 0
	}
}

var httpListening = regexp.MustCompile(`http listening.* addr=(\S+)`)

func faultScenario(t *testing.T, bin string, fb *faultBroker, fault func(*testing.T, *faultBroker, *valoraProc)) {
	const parts = 4
	in, pu := kafkatest.Name(t, "interactions"), kafkatest.Name(t, "purchases")
	fb.CreateTopics(t, parts, in, pu)
	codec, err := schemas.NewCodec(context.Background(), schemas.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs := crashWorkload(t, codec, pu, 7, 600) // about 4,000 records
	n := len(recs)
	logDir, err := os.MkdirTemp("", "valora-fault-logs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(logDir)
		}
	})
	start := func(group, out, dir string) *valoraProc {
		t.Helper()
		args := []string{"run", "--brokers", fb.Addrs[0], "--group", group, "--state-dir", dir,
			"--interactions-topic", in, "--purchases-topic", pu, "--erasures-topic", pu + "-erasures",
			"--tier-changes-topic", out, "--dlq-topic", out + "-dlq", "--create-topics",
			"--guarantee", string(processor.ExactlyOnce), "--http-addr", "127.0.0.1:0",
			"--session-timeout", "10s", "--transaction-timeout", faultTxnTimeout.String(),
			"--shutdown-timeout", faultShutdown.String(),
			"--commit-interval", "30ms", "--commit-records", "8", "--time", "event"}
		v := &valoraProc{proc: startLogged(t, bin, args, filepath.Join(logDir, filepath.Base(dir)+".log"))}
		kafkatest.Eventually(t, time.Minute, func() error {
			if err, ok := v.exited(); ok {
				t.Fatalf("valora run exited at start: %v (log %s)", err, v.log)
			}
			b, _ := os.ReadFile(v.log)
			if int64(len(b)) > v.logged {
				sc := bufio.NewScanner(bytes.NewReader(b[v.logged:]))
				for sc.Scan() {
					if m := httpListening.FindStringSubmatch(sc.Text()); m != nil {
						v.http = strings.Trim(m[1], `"`)
						return nil
					}
				}
			}
			return errors.New("no http address logged yet")
		})
		return v
	}
	adm := kadm.NewClient(fb.Client(t))
	handled := func(group string) int64 { return deliverytest.GroupHandled(adm, group, in, pu) }

	group, out := kafkatest.Name(t, "g"), kafkatest.Name(t, "out")
	stateDir := filepath.Join(t.TempDir(), "state")
	v := start(group, out, stateDir)
	// The input arrives in chunks while valora runs, before, during and
	// after the fault; a produce the fault holds up waits (the client
	// retries) until the broker is back.
	feeder := fb.Client(t)
	fed := make(chan error, 1)
	go func() {
		const chunks = 40
		for i := range chunks {
			lo, hi := i*n/chunks, (i+1)*n/chunks
			if err := feeder.ProduceSync(context.Background(), recs[lo:hi]...).FirstErr(); err != nil {
				fed <- fmt.Errorf("produce chunk %d: %w", i, err)
				return
			}
			time.Sleep(250 * time.Millisecond) // the input's pace
		}
		fed <- nil
	}()
	kafkatest.Eventually(t, 2*time.Minute, func() error {
		if got := handled(group); got < int64(n/5) {
			return fmt.Errorf("committed %d of %d records before the fault", got, n/5)
		}
		return nil
	})
	at := handled(group)
	fault(t, fb, v)
	t.Logf("fault injected after %d of %d records", at, n)

	// From here on valora either goes on by itself or exits non-zero, and
	// is started again; while it runs it must make progress.
	restarts, last, lastAt := 0, int64(-1), time.Now()
	kafkatest.Eventually(t, 5*time.Minute, func() error {
		if err, ok := v.exited(); ok {
			if v.termed {
				t.Logf("starting valora run again after the SIGTERM of the fault")
				v = start(group, out, stateDir)
				return errors.New("started again")
			}
			if err == nil {
				t.Fatalf("valora run exited 0 by itself (log %s)", v.log)
			}
			t.Logf("valora run exited by itself after the fault: %v; starting it again", err)
			restarts++
			v = start(group, out, stateDir)
		}
		got := handled(group)
		if got != last {
			last, lastAt = got, time.Now()
		} else if time.Since(lastAt) > 2*time.Minute {
			t.Fatalf("no progress for 2 minutes at %d of %d records while valora runs: hung (log %s)", got, n, v.log)
		}
		if got < int64(n) {
			return fmt.Errorf("committed %d of %d records (log %s)", got, n, v.log)
		}
		return nil
	})
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	if code, took := v.term(t); code != 0 {
		t.Fatalf("valora run exited %d after SIGTERM (%v) with the broker up (log %s)", code, took, v.log)
	}
	t.Logf("%d records handled, %d restarts after the fault", n, restarts)

	refGroup, refOut := kafkatest.Name(t, "ref"), kafkatest.Name(t, "ref-out")
	ref := start(refGroup, refOut, filepath.Join(t.TempDir(), "ref"))
	kafkatest.Eventually(t, 3*time.Minute, func() error {
		if got := handled(refGroup); got < int64(n) {
			return fmt.Errorf("reference committed %d of %d records", got, n)
		}
		return nil
	})
	ref.term(t)

	want := deliverytest.ChangelogCustomers(t, fb.Broker, refGroup+"-changelog")
	wantOut := deliverytest.ReadChanges(t, fb.Broker, codec, refOut, true)
	ch := deliverytest.ReadChanges(t, fb.Broker, codec, out, true)
	ch.CheckChains(t)
	if !reflect.DeepEqual(ch.Distinct, wantOut.Distinct) {
		t.Fatalf("tier changes differ from the clean run: got %d distinct, want %d", len(ch.Distinct), len(wantOut.Distinct))
	}
	got := deliverytest.ChangelogCustomers(t, fb.Broker, group+"-changelog")
	deliverytest.SameState(t, got, want)
	ch.CheckFinal(t, got)
	t.Logf("%d tier changes, each once; state equal to the clean run's (%d customers)", len(ch.Distinct), len(got))
}
