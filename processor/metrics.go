package processor

import (
	"github.com/prometheus/client_golang/prometheus"

	"valora/processor/histogram"
)

// metrics are the processor's Prometheus series. Labels are bounded: topic,
// reason, tier and cause come from small fixed sets, never from a customer.
type metrics struct {
	consumed     *prometheus.CounterVec // topic
	applied      *prometheus.CounterVec // topic
	deadLettered *prometheus.CounterVec // topic, reason
	tierChanges  *prometheus.CounterVec // from, to, cause
	customers    *prometheus.GaugeVec   // tier
	stages       *prometheus.GaugeVec   // stage
	classes      *prometheus.GaugeVec   // value class (customers without one are not counted)
	treatments   *prometheus.GaugeVec   // treatment
	churnRisk    prometheus.Gauge
	latency      prometheus.Histogram // fetch to durable commit, per batch
	commitTime   prometheus.Histogram
	commits      prometheus.Counter
	tasks        prometheus.Gauge
	rebalances   prometheus.Counter
	cacheHits    prometheus.Counter
	cacheMisses  prometheus.Counter
	profiles     prometheus.Counter // profile records and tombstones published

	timersPending prometheus.Gauge
	timersFired   prometheus.Counter
	timerLateness *histogram.Batched   // observed per firing: tasks batch it
	watermarkLag  *prometheus.GaugeVec // partition
	consumerLag   *prometheus.GaugeVec // topic, partition
	// consumerLagSeconds: 0 when caught up, else the age (wall clock minus
	// Kafka timestamp) of the last record the task handled.
	consumerLagSeconds *prometheus.GaugeVec   // topic, partition
	late               *prometheus.CounterVec // topic
	policy             *prometheus.GaugeVec   // policy_version

	// Replay progress, registered only in a replay: records of the bounded
	// ranges in all, and those not yet covered by a commit.
	replayTarget    prometheus.Gauge
	replayRemaining prometheus.Gauge

	// Changelog and transactions, registered only in a daemon.
	transactions     *prometheus.CounterVec // outcome
	txnTime          prometheus.Histogram
	txnTasks         prometheus.Histogram
	restoreRemaining prometheus.Gauge
	restored         prometheus.Counter
	standbys         prometheus.Gauge
	standbyRecords   prometheus.Counter
	// eventLatency: event time to durable commit, per applied record
	// (daemon only: a replay's event times are history).
	eventLatency *histogram.Batched
}

// eventLatencyBuckets span a live stream (seconds) to a backlog (a day).
var eventLatencyBuckets = []float64{
	.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400,
}

var latencyBuckets = []float64{
	.0005, .001, .0025, .005, .01, .025, .05, .1, .15, .2, .3, .5, 1, 2.5, 5, 10,
}

// newMetrics creates the processor's series in reg. The record counters of
// every input topic in topics, and every dead-letter reason of each, start
// at 0, so that a rate, an increase() in an alert or a sum over them counts
// the first record too, and a dashboard lists every reason before it
// occurs.
func newMetrics(reg prometheus.Registerer, replay bool, topics Topics) *metrics {
	m := &metrics{
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "valora_records_consumed_total",
			Help: "Input records fetched and handled by a task, by topic.",
		}, []string{"topic"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "valora_records_applied_total",
			Help: "Input records whose effect on customer state is durable, by topic.",
		}, []string{"topic"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "valora_records_dead_lettered_total",
			Help: "Input records written to the dead-letter topic, by source topic and reason.",
		}, []string{"topic", "reason"}),
		tierChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "valora_tier_changes_total",
			Help: "Tier changes published, by previous tier, new tier and cause.",
		}, []string{"from", "to", "cause"}),
		customers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "valora_customers",
			Help: "Customers in the state of the tasks this instance owns, by tier.",
		}, []string{"tier"}),
		stages: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "valora_customers_lifecycle",
			Help: "Customers in the state of the tasks this instance owns, by lifecycle stage.",
		}, []string{"stage"}),
		classes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "valora_customers_value_class",
			Help: "Customers in the state of the tasks this instance owns, by value class (those without a class are not counted).",
		}, []string{"class"}),
		treatments: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "valora_customers_treatment",
			Help: "Customers in the state of the tasks this instance owns, by the treatment the policy gives them.",
		}, []string{"treatment"}),
		churnRisk: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "valora_customers_churn_risk",
			Help: "Customers flagged with churn risk in the tasks this instance owns.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "valora_processing_latency_seconds",
			Help:    "Time from a fetched batch reaching its task to its effects being durable.",
			Buckets: latencyBuckets,
		}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "valora_commit_duration_seconds",
			Help:    "Duration of a task's commit cycle (outputs acknowledged, state batch synced).",
			Buckets: latencyBuckets,
		}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "valora_commits_total",
			Help: "Commit cycles completed by tasks.",
		}),
		tasks: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "valora_tasks_assigned",
			Help: "Tasks (partition numbers) this instance owns.",
		}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "valora_rebalances_total",
			Help: "Group rebalances that assigned tasks to this instance.",
		}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "valora_customer_cache_hits_total",
			Help: "Customer lookups served from memory (write set or hot-customer cache).",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "valora_customer_cache_misses_total",
			Help: "Customer lookups that read the state store.",
		}),
		profiles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "valora_profiles_published_total",
			Help: "Records published on the profile topic: one per customer changed in a commit cycle, and a tombstone per erased customer.",
		}),
	}
	m.timersPending = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "valora_timers_pending",
		Help: "Customer timers in the timer index of the tasks this instance owns.",
	})
	m.timersFired = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "valora_timers_fired_total",
		Help: "Timers fired: customers re-evaluated because stream time reached a deadline.",
	})
	m.timerLateness = histogram.New("valora_timer_lateness_seconds",
		"How far stream time had passed a timer's due time when it fired.",
		[]float64{0, 1, 10, 60, 600, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400})
	m.watermarkLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "valora_watermark_lag_seconds",
		Help: "Wall clock minus the task's stream time, per partition.",
	}, []string{"partition"})
	m.consumerLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "valora_consumer_lag_records",
		Help: "Records between a task's position and the end of its input partition.",
	}, []string{"topic", "partition"})
	m.consumerLagSeconds = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "valora_consumer_lag_seconds",
		Help: "How far behind its input partition a task is in time: 0 when caught up, else the age of the last record it handled (wall clock minus the record's Kafka timestamp).",
	}, []string{"topic", "partition"})
	m.late = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "valora_records_late_total",
		Help: "Applied records whose event time was more than the allowed lateness behind stream time.",
	}, []string{"topic"})
	m.policy = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "valora_policy_info",
		Help: "1 for the policy_version in force (tasks switch to a new one at their next commit).",
	}, []string{"policy_version"})
	reg.MustRegister(m.timersPending, m.timersFired, m.timerLateness, m.watermarkLag,
		m.consumerLag, m.consumerLagSeconds, m.late, m.policy)
	reg.MustRegister(m.consumed, m.applied, m.deadLettered, m.tierChanges, m.customers,
		m.stages, m.classes, m.treatments, m.churnRisk, m.latency, m.commitTime, m.commits, m.tasks, m.rebalances,
		m.cacheHits, m.cacheMisses, m.profiles)
	m.replayTarget = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "valora_replay_records_target",
		Help: "Input records between the replay's start and end offsets, over all partitions.",
	})
	m.replayRemaining = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "valora_replay_records_remaining",
		Help: "Input records of the replay's ranges not yet covered by a commit (counted once a task has loaded).",
	})
	m.transactions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "valora_transactions_total",
		Help: "Transactions ended (exactly-once mode: one per round of the instance's commit cycles), by outcome: commit or abort.",
	}, []string{"outcome"})
	m.txnTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "valora_transaction_commit_seconds",
		Help:    "Time to commit a transaction: produce and flush the round's records, commit the offsets, EndTxn.",
		Buckets: latencyBuckets,
	})
	m.txnTasks = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "valora_transaction_tasks",
		Help:    "Tasks whose commit cycles a committed transaction carried.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
	})
	m.restoreRemaining = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "valora_restore_remaining_records",
		Help: "Changelog records still to read before the restoring tasks of this instance start (ETA: this over the rate of valora_restored_records_total).",
	})
	m.restored = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "valora_restored_records_total",
		Help: "Changelog records read by task restores.",
	})
	m.standbys = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "valora_standby_tasks",
		Help: "Tasks owned by other instances that this instance keeps a standby copy of (--standby-replicas).",
	})
	m.standbyRecords = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "valora_standby_records_total",
		Help: "Changelog records read by this instance's standby copies.",
	})
	m.eventLatency = histogram.New("valora_event_latency_seconds",
		"End-to-end latency per applied record: from its event time (occurred_at, requested_at) to the commit that made its effects durable.",
		eventLatencyBuckets)
	m.initRecordSeries(topics)
	if replay {
		reg.MustRegister(m.replayTarget, m.replayRemaining)
	} else {
		m.transactions.WithLabelValues("commit")
		m.transactions.WithLabelValues("abort")
		reg.MustRegister(m.transactions, m.txnTime, m.txnTasks, m.restoreRemaining, m.restored, m.eventLatency,
			m.standbys, m.standbyRecords)
	}
	return m
}

// initRecordSeries creates, at 0, the series of the record counters for
// each input topic: consumed, applied and dead-lettered for every reason of
// DeadLetterReasons, and late for the topics whose records can be late
// (interactions and purchases: an erasure never is).
func (m *metrics) initRecordSeries(topics Topics) {
	reasons := DeadLetterReasons()
	for _, topic := range []string{topics.Interactions, topics.Purchases, topics.Erasures} {
		if topic == "" {
			continue
		}
		m.consumed.WithLabelValues(topic)
		m.applied.WithLabelValues(topic)
		for _, r := range reasons {
			m.deadLettered.WithLabelValues(topic, r)
		}
	}
	for _, topic := range []string{topics.Interactions, topics.Purchases} {
		if topic != "" {
			m.late.WithLabelValues(topic)
		}
	}
}
