package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/processor"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func noEnv(string) string { return "" }

// TestDev starts `valora dev` (embedded kfake broker on a free port) for
// about fifteen seconds and reads its tier changes with a separate client,
// decoding them with nothing but schemas/tier_change.avsc.
func TestDev(t *testing.T) {
	if testing.Short() {
		t.Skip("runs valora dev for about 15 s; skipped with -short")
	}
	avsc, err := os.ReadFile(filepath.Join("..", "..", "schemas", "tier_change.avsc"))
	if err != nil {
		t.Fatal(err)
	}
	schema, err := avro.Parse(string(avsc))
	if err != nil {
		t.Fatalf("parse tier_change.avsc: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr syncBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"dev", "--kafka-port", "0", "--http-addr", "127.0.0.1:0",
			"--summary-interval", "3s", "--customers", "500", "--speed", "96h"}, noEnv, pw, &stderr)
		pw.Close()
	}()
	var out syncBuffer
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			out.Write([]byte(line + "\n"))
			if rest, ok := strings.CutPrefix(line, "broker: "); ok {
				addrCh <- strings.Fields(rest)[0]
			}
		}
	}()
	var addr string
	select {
	case addr = <-addrCh:
	case code := <-exit:
		t.Fatalf("valora dev exited with %d before starting: %s", code, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("valora dev printed no broker address")
	}
	t.Logf("valora dev broker at %s (kfake)", addr)

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("customer-tier-changes"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	type rec struct{ customer, prev, tier, cause string }
	var got []rec
	tiers := map[string]bool{}
	withPrev := 0
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		pctx, pcancel := context.WithDeadline(ctx, deadline)
		fs := cl.PollFetches(pctx)
		pcancel()
		fs.EachRecord(func(r *kgo.Record) {
			v := r.Value
			if len(v) < 10 || v[0] != 0xC3 || v[1] != 0x01 {
				t.Fatalf("tier change is not in single-object encoding: % x", v[:min(len(v), 10)])
			}
			_ = binary.LittleEndian.Uint64(v[2:10]) // the schema fingerprint
			var m map[string]any
			if err := avro.Unmarshal(schema, v[10:], &m); err != nil {
				t.Fatalf("decode with tier_change.avsc: %v", err)
			}
			rc := rec{customer: m["customer_id"].(string), tier: m["tier"].(string), cause: m["cause"].(string)}
			if string(r.Key) != rc.customer {
				t.Errorf("key %q, customer %q", r.Key, rc.customer)
			}
			if p, ok := m["previous_tier"].(string); ok {
				rc.prev = p
				withPrev++
			}
			tiers[rc.tier] = true
			got = append(got, rc)
		})
	}
	// dev's traffic is in the partitions murmur2 (the default
	// --input-partitioner) gives its keys among dev's 6.
	in, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("interactions", "purchases"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	inputs := 0
	for inputs < 1000 {
		pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
		fs := in.PollFetches(pctx)
		timedOut := pctx.Err() != nil
		pcancel()
		if timedOut {
			t.Fatalf("read %d of dev's input records in 10 s", inputs)
		}
		fs.EachRecord(func(r *kgo.Record) {
			inputs++
			if want := processor.PartitionerMurmur2.Partition(r.Key, 6); r.Partition != want {
				t.Fatalf("dev produced key %q to partition %d of %s, murmur2 places it in %d", r.Key, r.Partition, r.Topic, want)
			}
		})
	}
	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("valora dev exited with %d: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("valora dev did not stop within 30 s of cancellation")
	}
	t.Logf("%d tier changes, %d with a previous tier, tiers %v", len(got), withPrev, tiers)
	if len(got) < 50 || withPrev < 10 || len(tiers) < 3 {
		t.Errorf("too little happened in 15 s: %d changes, %d with a previous tier, %d tiers", len(got), withPrev, len(tiers))
	}
	summary := out.String()
	for _, want := range []string{"events/s", "customers per tier:", "stopped"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
}

// TestBadConfigurationStopsAtStart checks that a bad flag, env value or
// policy stops the program with exit code 2 and a message naming the field.
func TestBadConfigurationStopsAtStart(t *testing.T) {
	dir := t.TempDir()
	badPolicy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(badPolicy, []byte("policy_version: v1\nbase_currency: usd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := func(args []string, env map[string]string, want string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("%v: stderr %q does not name %q", args, stderr.String(), want)
		}
		if _, err := os.Stat(filepath.Join(dir, "state")); err == nil {
			t.Errorf("%v: a state directory was created before validation failed", args)
		}
	}
	state := filepath.Join(dir, "state")
	f([]string{"run", "--state-dir", state, "--guarantee", "sometimes"}, nil, "guarantee")
	f([]string{"run", "--state-dir", state, "--commit-interval", "soon"}, nil, "commit-interval")
	f([]string{"run", "--state-dir", state}, map[string]string{"VALORA_CACHE_CUSTOMERS": "many"}, "VALORA_CACHE_CUSTOMERS")
	f([]string{"run", "--state-dir", state, "--policy", badPolicy}, nil, "base_currency")
	f([]string{"run", "--state-dir", state, "--policy", filepath.Join(dir, "missing.yaml")}, nil, "missing.yaml")
	f([]string{"run", "--state-dir", state, "--log-level", "loud"}, nil, "log-level")
	f([]string{"gen", "--bgnbd", "1,2,3"}, nil, "bgnbd")
	f([]string{"dev", "--partitions", "0"}, nil, "partitions")
	f([]string{"dev", "--brokers", "kafka:9092"}, nil, "--brokers")
	f([]string{"dev"}, map[string]string{"VALORA_BROKERS": "kafka:9092"}, "VALORA_BROKERS")
	f([]string{"dev", "--history-days", "-1"}, nil, "history-days")
	f([]string{"run", "--state-dir", state, "--input-partitioner", "consistent_random"}, nil, "input_partitioner")
	f([]string{"run", "--state-dir", state}, map[string]string{"VALORA_INPUT_PARTITIONER": "fnv"}, "input_partitioner")
	f([]string{"dev", "--input-partitioner", "fnv"}, nil, "--input-partitioner")
	f([]string{"bench", "--input-partitioner", "fnv"}, nil, "--input-partitioner")
	f([]string{"run", "--state-dir", state, "--memory-limit", "lots"}, nil, "--memory-limit")
	f([]string{"run", "--state-dir", state, "--memory-limit", "256MiB", "--cache-customers", "1000000"}, nil,
		"--memory-limit 256MiB, --cache-customers 1000000 (732.42MiB): do not fit")
	f([]string{"run", "--state-dir", state, "--cache-customers", "100000"},
		map[string]string{"VALORA_MEMORY_LIMIT": "96MiB", "VALORA_BLOCK_CACHE_MIB": "64"}, "--memory-limit 96MiB, --cache-customers 100000 (73.24MiB), --block-cache-mib 64: do not fit")
	f([]string{"nonsense"}, nil, "unknown command")
}

// TestHelpDocumentsEveryFlag checks that --help lists every flag with its
// environment variable convention.
func TestHelpDocumentsEveryFlag(t *testing.T) {
	for _, c := range commands {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{c.name, "--help"}, noEnv, &stdout, &stderr)
		if code != 2 {
			t.Errorf("%s --help: exit %d", c.name, code)
		}
		help := stderr.String()
		if !strings.Contains(help, "VALORA_") || !strings.Contains(help, "Usage: valora "+c.name) {
			t.Errorf("%s --help lacks usage or env convention:\n%s", c.name, help)
		}
	}
}

// TestStateDirFailureExitCode checks that a command whose state directory
// cannot be used exits with exitState, not as a usage error or a generic
// failure, and says which directory and why, once: here a store that is a
// regular file (Pebble fails to open it), as a disk fault under a running
// store does (processor and state test those with injected faults).
func TestStateDirFailureExitCode(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "state")
	if err := os.WriteFile(notDir, []byte("not a store"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"inspect", "--state-dir", notDir}, noEnv, &stdout, &stderr)
	if code != exitState {
		t.Fatalf("exit code %d, want %d; stderr: %s", code, exitState, stderr.String())
	}
	msg := stderr.String()
	if want := "valora inspect: state " + strconv.Quote(notDir) + ": "; !strings.HasPrefix(msg, want) || strings.Count(msg, strconv.Quote(notDir)) != 1 {
		t.Fatalf("message %q does not start with %q, naming the directory once", msg, want)
	}
	t.Logf("%s", msg)
}
