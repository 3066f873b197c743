package processor

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"valora/processor/score"
	"valora/schemas"
	"valora/state"
)

// newMetricsProcessor returns a processor (never run) whose metrics live in
// reg, with replay metrics when replay is set.
func newMetricsProcessor(t *testing.T, reg *prometheus.Registry, replay bool) *Processor {
	t.Helper()
	st, err := state.Open(state.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	codec, err := schemas.NewCodec(context.Background(), schemas.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Brokers: []string{"127.0.0.1:1"}, Group: "g", Topics: DefaultTopics(), Policy: score.DefaultPolicy(),
		Codec: codec, Store: st, Registerer: reg}
	if replay {
		cfg.Replay = &Replay{NoOutput: true}
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMetricsLint runs Prometheus' linter over every processor metric, with
// each labelled family populated, in both modes.
func TestMetricsLint(t *testing.T) {
	for _, replay := range []bool{false, true} {
		reg := prometheus.NewRegistry()
		p := newMetricsProcessor(t, reg, replay)
		m := p.m
		m.consumed.WithLabelValues("purchases").Inc()
		m.applied.WithLabelValues("purchases").Inc()
		m.deadLettered.WithLabelValues("purchases", "bad_magic").Inc()
		m.tierChanges.WithLabelValues("none", "champions", "PURCHASE").Inc()
		m.customers.WithLabelValues("champions").Inc()
		m.stages.WithLabelValues("active").Inc()
		m.watermarkLag.WithLabelValues("0").Set(1)
		m.consumerLag.WithLabelValues("purchases", "0").Set(1)
		m.consumerLagSeconds.WithLabelValues("purchases", "0").Set(1)
		m.late.WithLabelValues("purchases").Inc()
		problems, err := testutil.GatherAndLint(reg)
		if err != nil {
			t.Fatal(err)
		}
		for _, pr := range problems {
			t.Errorf("replay %t: %s: %s", replay, pr.Metric, pr.Text)
		}
	}
}

// TestPolicyInfoMetric compares valora_policy_info's exposition before and
// after SetPolicy: one series, for the version in force.
func TestPolicyInfoMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := newMetricsProcessor(t, reg, false)
	const head = "# HELP valora_policy_info 1 for the policy_version in force (tasks switch to a new one at their next commit).\n# TYPE valora_policy_info gauge\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(head+`valora_policy_info{policy_version="default-1"} 1`+"\n"), "valora_policy_info"); err != nil {
		t.Error(err)
	}
	next := score.DefaultPolicy()
	next.Version = "next-2"
	if err := p.SetPolicy(next); err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(head+`valora_policy_info{policy_version="next-2"} 1`+"\n"), "valora_policy_info"); err != nil {
		t.Error(err)
	}
}
