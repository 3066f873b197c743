package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestBenchLive runs `valora bench --live` for a few seconds against an
// in-process broker and checks its mechanics: it produces at the rate, the
// scorer handles every input, the reader times the tier changes, and the
// windows account for every timed one, and the run's topics and group are
// deleted at the end. It asserts no latency figures.
func TestBenchLive(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the live benchmark twice for about 7 s; skipped with -short")
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	for _, guarantee := range []string{"exactly_once", "at_least_once"} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"bench", "--live", "--brokers", cluster.ListenAddrs()[0],
			"--guarantee", guarantee, "--rate", "300", "--duration", "6s", "--window", "2s", "--partitions", "3",
			"--customers", "5000", "--json"}, noEnv, &stdout, &stderr)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s", guarantee, code, stderr.String())
		}
		var res liveResult
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
			t.Fatalf("%s: %v\n%s", guarantee, err, stdout.String())
		}
		// 6 s at 300/s from readiness, plus what was produced before it.
		if res.Produced < 1500 || res.Handled != float64(res.Produced) {
			t.Errorf("%s: produced %d, handled %g", guarantee, res.Produced, res.Handled)
		}
		if res.TierChanges == 0 || res.Unread != 0 {
			t.Errorf("%s: %d tier changes timed, %g unread", guarantee, res.TierChanges, res.Unread)
		}
		if len(res.Windows) != 4 {
			t.Fatalf("%s: %d windows, want the one before readiness and 3", guarantee, len(res.Windows))
		}
		timed := 0
		for i, w := range res.Windows {
			timed += w.TierChanges
			if i > 0 && (w.Produced == 0 || w.TierChanges == 0) {
				t.Errorf("%s: window %d: %d produced, %d timed", guarantee, i, w.Produced, w.TierChanges)
			}
			if w.TierChanges > 0 && !(0 < w.P50 && w.P50 <= w.P99 && w.P99 <= w.P999 && w.P999 <= w.Max) {
				t.Errorf("%s: window %d: percentiles out of order: %+v", guarantee, i, w)
			}
		}
		if timed != res.TierChanges {
			t.Errorf("%s: the windows hold %d tier changes of %d", guarantee, timed, res.TierChanges)
		}
		if res.Settled.TierChanges == 0 || res.Settled.TierChanges > res.TierChanges {
			t.Errorf("%s: %d tier changes from readiness+5s, of %d", guarantee, res.Settled.TierChanges, res.TierChanges)
		}
		if strings.Contains(stderr.String(), "bench: delete") {
			t.Errorf("%s: cleaning up failed: %s", guarantee, stderr.String())
		}
	}
	// Each run deleted its topics and its group.
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if names := topics.Names(); len(names) > 0 {
		t.Errorf("topics left behind: %v", names)
	}
	groups, err := adm.ListGroups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if names := groups.Groups(); len(names) > 0 {
		t.Errorf("groups left behind: %v", names)
	}
}

// TestBenchLiveFlags checks that bad live flags stop bench before any I/O,
// naming the flag.
func TestBenchLiveFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--duration", "5s"}, "--duration"},
		{[]string{"--live"}, "--brokers"},
		{[]string{"--live", "--brokers", "127.0.0.1:1", "--rate", "-3"}, "--rate"},
		{[]string{"--live", "--brokers", "127.0.0.1:1", "--window", "2m"}, "--window"},
		{[]string{"--live", "--brokers", "127.0.0.1:1", "--duration", "0s"}, "--duration"},
		{[]string{"--live", "--brokers", "127.0.0.1:1", "--guarantee", "twice"}, "--guarantee"},
		{[]string{"--live", "--brokers", "127.0.0.1:1", "--replay"}, "--replay"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"bench"}, c.args...), noEnv, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming %s", c.args, code, stderr.String(), c.want)
		}
	}
}

// TestBenchLiveJoin runs `valora bench --live --join-at` against an
// in-process broker: a second instance joins while traffic flows, takes
// some of the tasks, and the report names them and times their first
// output after the rebalance, and both groups of partitions keep
// publishing. It asserts no latency figures.
func TestBenchLiveJoin(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the live benchmark for about 8 s; skipped with -short")
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"bench", "--live", "--brokers", cluster.ListenAddrs()[0],
		"--rate", "300", "--duration", "8s", "--window", "4s", "--join-at", "2s", "--partitions", "4",
		"--customers", "5000", "--json"}, noEnv, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	var res liveResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	j := res.Join
	if j == nil {
		t.Fatalf("no rebalance in the report:\n%s", stdout.String())
	}
	t.Logf("rebalance: %+v", *j)
	if len(j.Moved) == 0 || len(j.Moved) >= 4 || j.AtSeconds < 2 || j.ReadySeconds <= 0 {
		t.Errorf("rebalance: moved %v at %.2fs, ready after %.2fs: want some but not all of 4 partitions moved at 2s", j.Moved, j.AtSeconds, j.ReadySeconds)
	}
	if !(0 < j.FirstOutputMedian && j.FirstOutputMedian <= j.FirstOutputMax) {
		t.Errorf("first output of the moved partitions: median %v, max %v", j.FirstOutputMedian, j.FirstOutputMax)
	}
	if j.MovedWindow.TierChanges == 0 || j.OthersWindow.TierChanges == 0 {
		t.Errorf("in the window after the join: %d tier changes of moved partitions, %d of the others", j.MovedWindow.TierChanges, j.OthersWindow.TierChanges)
	}
	if res.Handled < float64(res.Produced) || res.Unread != 0 {
		t.Errorf("produced %d, handled %g by both instances, %g unread", res.Produced, res.Handled, res.Unread)
	}
}
