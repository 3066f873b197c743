package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"valora/processor/score"
	"valora/schemas"
)

// Instance is the running instance that the API reports on and reads
// customers from; *processor.Processor is one. Every method but Owner
// answers at once, without waiting on another goroutine or the network;
// Owner waits at most until its ctx ends.
type Instance interface {
	// Ready is closed once the instance has been assigned its first tasks.
	Ready() <-chan struct{}
	// Stalled returns why the instance is wedged, or "" when it is not.
	Stalled() string
	// Readiness returns how many tasks the instance owns, how many of
	// them are still loading their state, and why the brokers are not
	// known to answer (nil when they are).
	Readiness() (tasks, loading int, brokers error)
	// TaskOf returns the task that holds customerID and whether this
	// instance owns it; an error when it cannot tell yet (not started).
	TaskOf(customerID string) (task int32, owned bool, err error)
	// Owner returns the URL that the instance owning task advertises, or
	// "" when none advertises one.
	Owner(ctx context.Context, task int32) (url string, err error)
	// Customer returns the committed state of customerID in task (found
	// false: no such customer).
	Customer(task int32, customerID string) (c *schemas.Customer, found bool, err error)
	// Policy returns the policy in force, under which the lookup shows
	// the customer's profile (nil: the stored fields only).
	Policy() *score.Policy
}

// ownerTimeout bounds how long a lookup of a customer this instance does
// not own waits to learn the owner's URL.
const ownerTimeout = 3 * time.Second

// Handler serves the HTTP API of in:
//
//	GET /metrics              Prometheus text format from g
//	GET /healthz              200 unless the instance is wedged (liveness)
//	GET /readyz               200 once tasks are assigned and loaded and the brokers answer
//	GET /v1/customers/{id}    the customer's committed state as JSON (CustomerView)
//
// A lookup of a customer whose task another instance owns answers 421 with
// the task, and the owner's advertised URL ("owner", and a Location header
// with the customer's URL there) when the owner advertises one; otherwise
// "owner_error" says why not.
//
// Errors are JSON objects {"error": "..."}. c (nil: the zero Config) can
// turn the customer lookup off, require a bearer token for it, and caps how
// many run at once; it must have passed Validate, which reads the token:
// Handler panics otherwise, rather than serve an unguarded lookup.
func Handler(in Instance, g prometheus.Gatherer, c *Config) http.Handler {
	if c == nil {
		c = &Config{}
		c.setDefaults()
		c.validated = true
	}
	if !c.validated {
		panic("httpapi: Handler with a Config that Validate has not accepted")
	}
	a := api{in: in}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", a.serveHealth)
	mux.HandleFunc("GET /readyz", a.serveReady)
	mux.Handle("GET /v1/customers/{id}", c.guardLookup(http.HandlerFunc(a.serveCustomer)))
	mux.HandleFunc("/", notFound)
	return mux
}

// api holds the handlers' one dependency.
type api struct{ in Instance }

// serveHealth answers /healthz: 503 with the reason when the instance is
// wedged (stalled), 200 otherwise.
func (a api) serveHealth(w http.ResponseWriter, _ *http.Request) {
	if reason := a.in.Stalled(); reason != "" {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": reason})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// serveReady answers /readyz: 200 once this instance has been assigned
// tasks, every task it owns has loaded its state, and the brokers answer;
// 503 with the reason otherwise.
func (a api) serveReady(w http.ResponseWriter, _ *http.Request) {
	select {
	case <-a.in.Ready():
	default:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no tasks assigned yet"})
		return
	}
	owned, loading, brokers := a.in.Readiness()
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

// serveCustomer answers /v1/customers/{id}: 200 with the CustomerView,
// 404 for a customer the store does not hold, 421 naming the owner for a
// customer of another instance's task, 400 for an id out of bounds, 503
// before the instance is started, 500 when the state cannot be read.
func (a api) serveCustomer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "" || len(id) > 256 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "customer id must be 1 to 256 bytes"})
		return
	}
	part, owned, err := a.in.TaskOf(id)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	if !owned {
		// Name the owner: the URL its member advertises in the group.
		body := map[string]any{"error": "customer belongs to a task this instance does not own", "task": part}
		ctx, cancel := context.WithTimeout(r.Context(), ownerTimeout)
		owner, err := a.in.Owner(ctx, part)
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
	c, found, err := a.in.Customer(part, id)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	if !found {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown customer"})
		return
	}
	writeJSON(w, http.StatusOK, newCustomerView(c, part, a.in.Policy()))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// notFound answers every request that no route matches, in JSON: 405 for a
// known path with another method, 404 otherwise.
func notFound(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == "/metrics" || p == "/healthz" || p == "/readyz" || strings.HasPrefix(p, "/v1/customers/"):
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method " + r.Method + " not allowed; use GET"})
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{
			"error": "no such endpoint; there are /metrics, /healthz, /readyz and /v1/customers/{id}"})
	}
}
