package processor

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Stats is a snapshot of what a processor has done since New, for the
// reports of the commands that run one (bench, replay, dev): the values of
// its metrics, summed over the labels a report does not need. Counts of
// customers are those of the tasks the processor owns at the snapshot.
type Stats struct {
	// Consumed counts the input records tasks handled; each is either
	// Applied or DeadLettered once its cycle is committed.
	Consumed, Applied, DeadLettered int64
	// TierChanges and Profiles count the records published on the
	// tier-change and profile topics; TimersFired the timers fired.
	TierChanges, Profiles, TimersFired int64
	// Commits counts the commit cycles tasks completed, and CommitSeconds
	// is their total duration; Transactions and TransactionSeconds the
	// same of the transactions' commits (exactly-once mode), and Batches
	// and BatchSeconds of the fetched batches' time to a durable commit.
	Commits, Transactions, Batches                  int64
	CommitSeconds, TransactionSeconds, BatchSeconds float64
	// ChurnRisk counts the customers flagged with churn risk; Tiers,
	// Stages, ValueClasses and Treatments count the customers by tier,
	// lifecycle stage, value class and treatment. A key stays, at 0, once
	// its last customer has gone.
	ChurnRisk                               int64
	Tiers, Stages, ValueClasses, Treatments map[string]int64
	// ConsumerLag holds, by input topic and partition, the records between
	// a task's position and the end of its partition, for each task that
	// runs and has measured it.
	ConsumerLag map[string]map[int32]int64
}

// Stats returns a snapshot of the processor's counts. It is safe to call
// at any time, also after Run has returned, from any goroutine; it reads
// the processor's metrics, so it costs what a scrape of them does.
func (p *Processor) Stats() Stats {
	m := p.m
	st := Stats{
		Consumed:     int64(sumOf(m.consumed)),
		Applied:      int64(sumOf(m.applied)),
		DeadLettered: int64(sumOf(m.deadLettered)),
		TierChanges:  int64(sumOf(m.tierChanges)),
		Profiles:     int64(sumOf(m.profiles)),
		TimersFired:  int64(sumOf(m.timersFired)),
		ChurnRisk:    int64(sumOf(m.churnRisk)),
		Tiers:        byLabel(m.customers, "tier"),
		Stages:       byLabel(m.stages, "stage"),
		ValueClasses: byLabel(m.classes, "class"),
		Treatments:   byLabel(m.treatments, "treatment"),
		ConsumerLag:  map[string]map[int32]int64{},
	}
	st.Commits, st.CommitSeconds = countSum(m.commitTime)
	st.Transactions, st.TransactionSeconds = countSum(m.txnTime)
	st.Batches, st.BatchSeconds = countSum(m.latency)
	each(m.consumerLag, func(d *dto.Metric) {
		part, err := strconv.Atoi(label(d, "partition"))
		if err != nil {
			return
		}
		topic := label(d, "topic")
		if st.ConsumerLag[topic] == nil {
			st.ConsumerLag[topic] = map[int32]int64{}
		}
		st.ConsumerLag[topic][int32(part)] = int64(value(d))
	})
	return st
}

// each calls fn with every series c collects.
func each(c prometheus.Collector, fn func(*dto.Metric)) {
	ch := make(chan prometheus.Metric)
	go func() {
		defer close(ch)
		c.Collect(ch)
	}()
	for pm := range ch {
		var d dto.Metric
		if pm.Write(&d) == nil {
			fn(&d)
		}
	}
}

// countSum returns the number and sum of a histogram's observations.
func countSum(h prometheus.Histogram) (int64, float64) {
	var d dto.Metric
	if h.Write(&d) != nil {
		return 0, 0
	}
	return int64(d.GetHistogram().GetSampleCount()), d.GetHistogram().GetSampleSum()
}

// sumOf returns the sum of the counter or gauge series c collects.
func sumOf(c prometheus.Collector) float64 {
	var sum float64
	each(c, func(d *dto.Metric) { sum += value(d) })
	return sum
}

// byLabel returns the counter or gauge series c collects, by the value of
// one of their labels.
func byLabel(c prometheus.Collector, name string) map[string]int64 {
	out := map[string]int64{}
	each(c, func(d *dto.Metric) { out[label(d, name)] += int64(value(d)) })
	return out
}

func label(d *dto.Metric, name string) string {
	for _, l := range d.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func value(d *dto.Metric) float64 {
	switch {
	case d.GetCounter() != nil:
		return d.GetCounter().GetValue()
	case d.GetGauge() != nil:
		return d.GetGauge().GetValue()
	}
	return 0
}
