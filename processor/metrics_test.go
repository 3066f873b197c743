package processor

import (
	"context"
	"fmt"
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

// TestMetricsExposition compares the exposition (HELP, TYPE, labels and
// values) of the record and tier-change counters and of the processing
// latency histogram, with its buckets, after setting them through the
// processor's metrics: the names, help texts and label names are the
// contract that the dashboard and the alert rules rely on.
func TestMetricsExposition(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := newMetricsProcessor(t, reg, false)
	m := p.m
	m.consumed.WithLabelValues("purchases").Add(5)
	m.consumed.WithLabelValues("interactions").Add(2)
	m.applied.WithLabelValues("purchases").Add(4)
	m.deadLettered.WithLabelValues("purchases", ReasonUnknownCurrency).Inc()
	m.tierChanges.WithLabelValues("none", "champions", string(schemas.CausePurchase)).Add(3)
	m.tierChanges.WithLabelValues("champions", "none", string(schemas.CauseErasure)).Inc()
	// Binary fractions, so that the sum is exact; 0.5 is a bucket's upper
	// bound and falls in it.
	for _, v := range []float64{0.0625, 0.5, 2} {
		m.latency.Observe(v)
	}

	// Every reason of every input topic is exposed, at 0 until it occurs.
	dead := `
# HELP valora_records_dead_lettered_total Input records written to the dead-letter topic, by source topic and reason.
# TYPE valora_records_dead_lettered_total counter
`
	for _, topic := range []string{"customer-erasures", "interactions", "purchases"} {
		for _, r := range DeadLetterReasons() {
			n := 0
			if topic == "purchases" && r == ReasonUnknownCurrency {
				n = 1
			}
			dead += fmt.Sprintf("valora_records_dead_lettered_total{reason=%q,topic=%q} %d\n", r, topic, n)
		}
	}

	for _, c := range []struct {
		name      string
		collector prometheus.Collector
		want      string
	}{
		{"valora_records_consumed_total", m.consumed, `
# HELP valora_records_consumed_total Input records fetched and handled by a task, by topic.
# TYPE valora_records_consumed_total counter
valora_records_consumed_total{topic="customer-erasures"} 0
valora_records_consumed_total{topic="interactions"} 2
valora_records_consumed_total{topic="purchases"} 5
`},
		{"valora_records_applied_total", m.applied, `
# HELP valora_records_applied_total Input records whose effect on customer state is durable, by topic.
# TYPE valora_records_applied_total counter
valora_records_applied_total{topic="customer-erasures"} 0
valora_records_applied_total{topic="interactions"} 0
valora_records_applied_total{topic="purchases"} 4
`},
		{"valora_records_dead_lettered_total", m.deadLettered, dead},
		{"valora_tier_changes_total", m.tierChanges, `
# HELP valora_tier_changes_total Tier changes published, by previous tier, new tier and cause.
# TYPE valora_tier_changes_total counter
valora_tier_changes_total{cause="ERASURE",from="champions",to="none"} 1
valora_tier_changes_total{cause="PURCHASE",from="none",to="champions"} 3
`},
		{"valora_processing_latency_seconds", m.latency, `
# HELP valora_processing_latency_seconds Time from a fetched batch reaching its task to its effects being durable.
# TYPE valora_processing_latency_seconds histogram
valora_processing_latency_seconds_bucket{le="0.0005"} 0
valora_processing_latency_seconds_bucket{le="0.001"} 0
valora_processing_latency_seconds_bucket{le="0.0025"} 0
valora_processing_latency_seconds_bucket{le="0.005"} 0
valora_processing_latency_seconds_bucket{le="0.01"} 0
valora_processing_latency_seconds_bucket{le="0.025"} 0
valora_processing_latency_seconds_bucket{le="0.05"} 0
valora_processing_latency_seconds_bucket{le="0.1"} 1
valora_processing_latency_seconds_bucket{le="0.15"} 1
valora_processing_latency_seconds_bucket{le="0.2"} 1
valora_processing_latency_seconds_bucket{le="0.3"} 1
valora_processing_latency_seconds_bucket{le="0.5"} 2
valora_processing_latency_seconds_bucket{le="1"} 2
valora_processing_latency_seconds_bucket{le="2.5"} 3
valora_processing_latency_seconds_bucket{le="5"} 3
valora_processing_latency_seconds_bucket{le="10"} 3
valora_processing_latency_seconds_bucket{le="+Inf"} 3
valora_processing_latency_seconds_sum 2.5625
valora_processing_latency_seconds_count 3
`},
	} {
		if err := testutil.CollectAndCompare(c.collector, strings.NewReader(c.want), c.name); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		// The registry that /metrics serves exposes the same.
		if err := testutil.GatherAndCompare(reg, strings.NewReader(c.want), c.name); err != nil {
			t.Errorf("%s from the registry: %v", c.name, err)
		}
	}
}
