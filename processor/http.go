package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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
	if reason := p.Stalled(); reason != "" {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": reason})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// serveReady answers /readyz: 200 once this instance has been assigned
// tasks, every task it owns has loaded its state, and the brokers answered
// the latest offset listing, within the last readyBrokerAge; 503 with the
// reason otherwise.
func (p *Processor) serveReady(w http.ResponseWriter, _ *http.Request) {
	select {
	case <-p.Ready():
	default:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no tasks assigned yet"})
		return
	}
	owned, loading, brokers := p.Readiness()
	if loading > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{
			"error": fmt.Sprintf("%d of %d tasks are loading their state", loading, owned), "tasks": owned, "loading": loading})
		return
	}
	if brokers != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": brokers.Error(), "tasks": owned})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "tasks": owned})
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
	part, owned, err := p.TaskOf(id)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	if !owned {
		// Name the owner: the URL its member advertises in the group.
		body := map[string]any{"error": "customer belongs to a task this instance does not own", "task": part}
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		owner, err := p.Owner(ctx, part)
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
	c, found, err := p.Customer(part, id)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	if !found {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown customer"})
		return
	}
	writeJSON(w, http.StatusOK, newCustomerView(c, part, p.Policy()))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
