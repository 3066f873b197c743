package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"valora/internal/kafkatest"
	"valora/processor/score"
)

// TestReloadPolicyOnSIGHUP runs the scorer of `valora run` (in-process
// kfake) with a policy file, rewrites the file and delivers SIGHUP to the
// scorer's reload channel: the new policy_version comes into force (the
// valora_policy_info metric); an invalid file is refused with the field at
// fault in the log, and the policy in force stays.
func TestReloadPolicyOnSIGHUP(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	writePolicy := func(version string) {
		t.Helper()
		body := strings.Replace(string(score.DefaultPolicyYAML()), "policy_version: default-1", "policy_version: "+version, 1)
		if err := os.WriteFile(policyPath, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writePolicy("file-1")

	var sf scorerFlags
	fs := flag.NewFlagSet("reload-test", flag.ContinueOnError)
	sf.register(fs, "")
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, sf.interactions, sf.purchases, sf.tierChanges, sf.deadLetter))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	if err := fs.Parse([]string{"--brokers", cluster.ListenAddrs()[0], "--state-dir", filepath.Join(dir, "state"),
		"--commit-interval", "20ms", "--policy", policyPath}); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	s, err := newScorer(ctx, &sf, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer runScorer(ctx, cancel, t, s)()
	inForce := func() string {
		mfs, err := s.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "valora_policy_info" && len(mf.GetMetric()) == 1 {
				for _, l := range mf.GetMetric()[0].GetLabel() {
					if l.GetName() == "policy_version" {
						return l.GetValue()
					}
				}
			}
		}
		return ""
	}
	if v := inForce(); v != "file-1" {
		t.Fatalf("policy in force %q, want file-1", v)
	}

	writePolicy("file-2")
	s.reload <- syscall.SIGHUP
	kafkatest.Eventually(t, 30*time.Second, func() error {
		if v := inForce(); v != "file-2" {
			return fmt.Errorf("policy in force %q", v)
		}
		return nil
	})

	if err := os.WriteFile(policyPath, []byte("policy_version: broken\nbase_currency: usd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.reload <- syscall.SIGHUP
	kafkatest.Eventually(t, 30*time.Second, func() error {
		if !strings.Contains(logs.String(), "policy not reloaded") {
			return errors.New("no refusal logged")
		}
		return nil
	})
	if l := logs.String(); !strings.Contains(l, "base_currency") {
		t.Errorf("the refusal does not name the field:\n%s", l)
	}
	if v := inForce(); v != "file-2" {
		t.Errorf("policy in force %q after a bad reload, want file-2", v)
	}
}

// runScorer runs s until the returned stop is called: stop cancels ctx
// (through cancel) and waits up to 30 s for run to return, reporting its
// error. Calling stop again does nothing.
func runScorer(ctx context.Context, cancel context.CancelFunc, t *testing.T, s *scorer) (stop func()) {
	runErr := make(chan error, 1)
	go func() { runErr <- s.run(ctx) }()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-runErr:
				if err != nil {
					t.Errorf("scorer: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("scorer did not stop within 30 s")
			}
		})
	}
}
