package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/processor/group"
	"valora/processor/score"
	"valora/schemas"
)

// Handler serves the HTTP API of this instance:
//
//	GET /metrics              Prometheus text format from g
//	GET /healthz              200 unless the instance is wedged (liveness)
//	GET /readyz               200 once tasks are assigned and loaded and the brokers answer
//	GET /v1/customers/{id}    the customer's committed state as JSON
//
// A lookup of a customer whose task another instance owns answers 421 with
// the task, and the owner's advertised URL ("owner", and a Location header
// with the customer's URL there) when the owner advertises one
// (Config.AdvertiseURL); otherwise "owner_error" says why not.
//
// Errors are JSON objects {"error": "..."}. The customer lookup reads only
// committed state and is safe to call concurrently with processing; Config.HTTP
// can turn it off, require a bearer token for it, and caps how many run at once.
func (p *Processor) Handler(g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", p.serveHealth)
	mux.HandleFunc("GET /readyz", p.serveReady)
	mux.Handle("GET /v1/customers/{id}", p.cfg.HTTP.guardLookup(http.HandlerFunc(p.serveCustomer)))
	mux.HandleFunc("/", notFound)
	return mux
}

// serveHealth answers /healthz: 503 with the reason when the instance is
// wedged (stalled), 200 otherwise. It takes p.mu only to list the tasks,
// and nothing holds p.mu across a wait, so it answers at once.
func (p *Processor) serveHealth(w http.ResponseWriter, _ *http.Request) {
	if reason := p.stalled(time.Now()); reason != "" {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": reason})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// stalled returns why the instance is wedged, or "": the poll loop has
// been handing one poll's records to the tasks, or a task has made no
// progress (see task.beat), for longer than StallTimeout. An idle instance
// is not stalled: its poll loop waits for records without handing any,
// and its tasks tick every CommitInterval.
func (p *Processor) stalled(now time.Time) string {
	bound := p.cfg.StallTimeout
	if at := p.handing.Load(); at != 0 && now.Sub(time.Unix(0, at)) > bound {
		return fmt.Sprintf("the poll loop has waited %v for a task to take its records (stall timeout %v)",
			now.Sub(time.Unix(0, at)).Round(time.Second), bound)
	}
	p.mu.Lock()
	var worst time.Duration
	var part int32
	for n, t := range p.tasks {
		if d := now.Sub(time.Unix(0, t.beat.Load())); d > worst {
			worst, part = d, n
		}
	}
	for t := range p.retiring {
		if d := now.Sub(time.Unix(0, t.beat.Load())); d > worst {
			worst, part = d, t.part
		}
	}
	p.mu.Unlock()
	if worst > bound {
		return fmt.Sprintf("task %d has made no progress for %v (stall timeout %v)", part, worst.Round(time.Second), bound)
	}
	return ""
}

// serveReady answers /readyz: 200 once this instance has been assigned
// tasks, every task it owns has loaded its state, and the brokers answered
// the latest offset listing, within the last readyBrokerAge; 503 with the
// reason otherwise.
func (p *Processor) serveReady(w http.ResponseWriter, _ *http.Request) {
	select {
	case <-p.ready:
	default:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no tasks assigned yet"})
		return
	}
	p.mu.Lock()
	owned, loading := len(p.tasks), 0
	for _, t := range p.tasks {
		if !t.loaded.Load() {
			loading++
		}
	}
	p.mu.Unlock()
	if loading > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{
			"error": fmt.Sprintf("%d of %d tasks are loading their state", loading, owned), "tasks": owned, "loading": loading})
		return
	}
	if p.listFailing.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{
			"error": "the brokers did not answer the latest offset listing", "tasks": owned})
		return
	}
	if at := p.listedAt.Load(); at == 0 || time.Since(time.Unix(0, at)) > p.readyBrokerAge() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{
			"error": "the brokers have not answered an offset listing recently", "tasks": owned})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "tasks": owned})
}

// readyBrokerAge is how old the last successful offset listing may be for
// /readyz to report the brokers reachable: a few listing intervals.
func (p *Processor) readyBrokerAge() time.Duration {
	return 5*p.endsInterval() + 10*time.Second
}

// CustomerView is the JSON body of GET /v1/customers/{id}: the customer's
// committed state under the field names of the Avro schemas (snake_case),
// the task that owns it, and, under the policy in force, what its profile
// (score.Policy.Profile, customer_profile.avsc) carries: every field of the
// profile under the same name, so that a reader of the profile topic and a
// caller of the lookup see the same values, with null fields left out.
// Times are Unix milliseconds of event time (0: never); money is in minor
// units of the policy's base currency. The duplicate-detection window and
// the timer bookkeeping are internal and not shown.
type CustomerView struct {
	CustomerID            string                 `json:"customer_id"`
	Task                  int32                  `json:"task"`
	Version               int64                  `json:"version"`
	Tier                  string                 `json:"tier"`
	RScore                int32                  `json:"r_score"`
	FScore                int32                  `json:"f_score"`
	MScore                int32                  `json:"m_score"`
	ChurnRisk             bool                   `json:"churn_risk"`
	LifecycleStage        string                 `json:"lifecycle_stage"`
	ValueClass            *string                `json:"value_class,omitempty"`
	RiskReason            *string                `json:"risk_reason,omitempty"`
	RecencyDays           *int32                 `json:"recency_days,omitempty"`
	Purchases             int64                  `json:"purchases"`
	Refunds               int64                  `json:"refunds"`
	RepeatDays            int64                  `json:"repeat_days"`
	MonetaryMinor         int64                  `json:"monetary_minor"`
	Currency              string                 `json:"currency"`
	FirstSeen             int64                  `json:"first_seen"`
	LastActivity          int64                  `json:"last_activity"`
	FirstPurchase         int64                  `json:"first_purchase"`
	LastPurchase          int64                  `json:"last_purchase"`
	RiskUntil             int64                  `json:"risk_until"`
	ReactivatedAt         int64                  `json:"reactivated_at"`
	InteractionsByChannel map[string]int64       `json:"interactions_by_channel"`
	PurchasesByChannel    map[string]int64       `json:"purchases_by_channel"`
	EvaluatedAt           int64                  `json:"evaluated_at"`
	PolicyVersion         string                 `json:"policy_version"`
	Action                *string                `json:"action,omitempty"`
	PAlive                *float64               `json:"p_alive,omitempty"`
	ExpectedPurchases     *float64               `json:"expected_purchases,omitempty"`
	CLV                   *float64               `json:"clv,omitempty"`
	PreferredChannel      *schemas.Channel       `json:"preferred_channel,omitempty"`
	ContactableChannels   []schemas.Channel      `json:"contactable_channels"`
	Categories            []schemas.CategoryStat `json:"categories"`
	FavouriteCategory     *string                `json:"favourite_category,omitempty"`
	DistinctCategories    int64                  `json:"distinct_categories"`
	Complaints            int64                  `json:"complaints"`
	ComplaintsResolved    int64                  `json:"complaints_resolved"`
	LastComplaintAt       int64                  `json:"last_complaint_at"`
	LastSatisfaction      *int32                 `json:"last_satisfaction,omitempty"`
	Treatment             *string                `json:"treatment,omitempty"`
	Relationship          *string                `json:"relationship,omitempty"`
	RelationshipCostMinor *int64                 `json:"relationship_cost_minor,omitempty"`
}

// newCustomerView builds the view of c, owned by task part, under pol (nil:
// the stored fields only).
func newCustomerView(c *schemas.Customer, part int32, pol *score.Policy) CustomerView {
	v := CustomerView{
		CustomerID: c.CustomerID, Task: part, Version: c.Version, Tier: c.Tier,
		RScore: c.RScore, FScore: c.FScore, MScore: c.MScore, ChurnRisk: c.ChurnRisk,
		LifecycleStage: c.LifecycleStage, ValueClass: c.ValueClass,
		Purchases: c.Purchases, Refunds: c.Refunds, RepeatDays: c.RepeatDays, MonetaryMinor: c.MonetaryMinor,
		FirstSeen: c.FirstSeen, LastActivity: c.LastActivity, FirstPurchase: c.FirstPurchase,
		LastPurchase: c.LastPurchase, RiskUntil: c.RiskUntil, ReactivatedAt: c.ReactivatedAt,
		InteractionsByChannel: byChannel(c.InteractionsByChannel),
		PurchasesByChannel:    byChannel(c.PurchasesByChannel),
		EvaluatedAt:           c.EvaluatedAt, PolicyVersion: c.PolicyVersion,
		ContactableChannels: []schemas.Channel{}, Categories: []schemas.CategoryStat{},
		DistinctCategories: c.DistinctCategories, Complaints: c.Complaints,
		ComplaintsResolved: c.ComplaintsResolved, LastComplaintAt: c.LastComplaintAt,
	}
	if pol != nil {
		pr := pol.Profile(c)
		v.RecencyDays, v.Currency, v.RiskReason = pr.RecencyDays, pr.Currency, pr.RiskReason
		v.Action, v.PAlive, v.ExpectedPurchases, v.CLV = pr.Action, pr.PAlive, pr.ExpectedPurchases, pr.CLV
		v.PreferredChannel, v.FavouriteCategory, v.LastSatisfaction = pr.PreferredChannel, pr.FavouriteCategory, pr.LastSatisfaction
		v.Treatment, v.Relationship, v.RelationshipCostMinor = pr.Treatment, pr.Relationship, pr.RelationshipCostMinor
		if len(pr.ContactableChannels) > 0 {
			v.ContactableChannels = pr.ContactableChannels
		}
		if len(pr.Categories) > 0 {
			v.Categories = slices.Clone(pr.Categories)
		}
	}
	return v
}

// byChannel names per-channel counters by channel (schemas.Channels order),
// leaving out the zeros.
func byChannel(counts []int64) map[string]int64 {
	m := map[string]int64{}
	for i, n := range counts {
		if n != 0 && i < len(schemas.Channels) {
			m[string(schemas.Channels[i])] = n
		}
	}
	return m
}

func (p *Processor) serveCustomer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "" || len(id) > 256 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "customer id must be 1 to 256 bytes"})
		return
	}
	p.mu.Lock()
	n := p.partitions
	var owned bool
	var part int32
	if n > 0 {
		part = p.cfg.InputPartitioner.Partition([]byte(id), n)
		owned = p.tasks[part] != nil
	}
	p.mu.Unlock()
	if n == 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "processor not started"})
		return
	}
	if !owned {
		// Name the owner: the URL its member advertises in the group.
		body := map[string]any{"error": "customer belongs to a task this instance does not own", "task": part}
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		owner, err := p.ownerOf(ctx, part)
		cancel()
		switch {
		case err != nil:
			body["owner_error"] = err.Error()
		case owner != "":
			body["owner"] = owner
			w.Header().Set("Location", owner+"/v1/customers/"+url.PathEscape(id))
		default:
			body["owner_error"] = "no member of the group advertises an address for this task (--advertise-url)"
		}
		writeJSON(w, http.StatusMisdirectedRequest, body)
		return
	}
	val, found, err := p.cfg.Store.GetCustomer(part, []byte(id), nil)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "read state: " + err.Error()})
		return
	}
	if !found {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown customer"})
		return
	}
	var c schemas.Customer
	if err := schemas.DecodeCustomer(val, &c); err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "decode state: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, newCustomerView(&c, part, p.policy.Load()))
}

var keyPartitioner = kgo.StickyKeyPartitioner(nil).ForTopic("")

// PartitionOf returns the partition that Kafka's default partitioner (murmur2
// of the key, as in the Java client and kgo) gives a record keyed by
// customerID in a topic of n partitions: the task that owns the customer
// under the default Config.InputPartitioner, and the partition of the
// customer's tier changes, which valora produces with that partitioner.
func PartitionOf(customerID string, n int) int32 {
	return int32(keyPartitioner.Partition(&kgo.Record{Key: []byte(customerID)}, n))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// ownerCache maps tasks to the advertised URL of the member that owns them,
// from DescribeGroups. It is refreshed at most every ownerTTL, and at once
// when a lookup finds no owner for a task (after a rebalance).
type ownerCache struct {
	mu     sync.Mutex
	adm    *kadm.Client // set by Run
	at     time.Time
	byTask map[int32]string
}

const ownerTTL = 2 * time.Second

// ownerOf returns the advertised URL of the instance that owns task part,
// or "" when no member advertises one for it.
func (p *Processor) ownerOf(ctx context.Context, part int32) (string, error) {
	o := &p.owners
	o.mu.Lock()
	if u, ok := o.byTask[part]; ok && time.Since(o.at) < ownerTTL {
		o.mu.Unlock()
		return u, nil
	}
	adm := o.adm
	if adm == nil {
		o.mu.Unlock()
		return "", errors.New("not connected to the group yet")
	}
	if !o.at.IsZero() && time.Since(o.at) < ownerTTL/4 {
		u := o.byTask[part]
		o.mu.Unlock()
		return u, nil // asked just now: do not hammer the coordinator
	}
	// Mark the cache as fresh for the time of the call, so that the
	// lookups that come meanwhile read it instead of asking too; o.mu is
	// not held across the call.
	prev := o.at
	o.at = time.Now()
	o.mu.Unlock()
	groups, err := adm.DescribeGroups(ctx, p.cfg.Group)
	if err == nil {
		err = groups.Error()
	}
	if err != nil {
		o.mu.Lock()
		o.at = prev
		o.mu.Unlock()
		return "", fmt.Errorf("describe group %s: %w", p.cfg.Group, err)
	}
	byTask := map[int32]string{}
	for _, m := range groups[p.cfg.Group].Members {
		meta, ok := m.Join.AsConsumer()
		if !ok {
			continue
		}
		url := group.ParseMemberData(meta.UserData).URL
		if url == "" {
			continue
		}
		as, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		for _, t := range as.Topics {
			if t.Topic != p.cfg.Topics.Purchases {
				continue
			}
			for _, q := range t.Partitions {
				byTask[q] = url
			}
		}
	}
	o.mu.Lock()
	o.byTask, o.at = byTask, time.Now()
	o.mu.Unlock()
	return byTask[part], nil
}
