package httpapi

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"valora/internal/certtest"
	"valora/processor/score"
	"valora/schemas"
)

// instance is a fake Instance: it owns the tasks in owned of a topic of
// partitions partitions (0: not started), a customer's task is the length
// of its id modulo partitions, and it holds the customers in customers.
// The zero value is started with one task, task 0, and no customer, enough
// to serve the HTTP API: a lookup that passes every guard answers 404
// "unknown customer".
type instance struct {
	ready      chan struct{}
	stalled    string
	loading    int
	brokers    error
	partitions int
	owned      map[int32]bool
	customers  map[string]*schemas.Customer
	readErr    error
	owner      string
	ownerErr   error
	policy     *score.Policy
}

func (in *instance) Ready() <-chan struct{} {
	if in.ready == nil {
		in.ready = make(chan struct{})
	}
	return in.ready
}

func (in *instance) Stalled() string { return in.stalled }

func (in *instance) Readiness() (int, int, error) {
	return len(in.owned), in.loading, in.brokers
}

func (in *instance) TaskOf(id string) (int32, bool, error) {
	if in.partitions == 0 {
		return 0, false, errors.New("processor not started")
	}
	task := int32(len(id) % in.partitions)
	return task, in.owned[task], nil
}

func (in *instance) Owner(ctx context.Context, task int32) (string, error) {
	return in.owner, in.ownerErr
}

func (in *instance) Customer(task int32, id string) (*schemas.Customer, bool, error) {
	if in.readErr != nil {
		return nil, false, in.readErr
	}
	c, ok := in.customers[id]
	return c, ok, nil
}

func (in *instance) Policy() *score.Policy { return in.policy }

// lookupHandler returns the API of an instance that owns task 0 of a
// one-partition topic and holds no customer, under hc.
func lookupHandler(t *testing.T, hc Config) http.Handler {
	t.Helper()
	if err := hc.Validate(); err != nil {
		t.Fatalf("http config: %v", err)
	}
	in := &instance{partitions: 1, owned: map[int32]bool{0: true}}
	return Handler(in, prometheus.NewRegistry(), &hc)
}

type answer struct {
	code int
	body map[string]any
	hdr  http.Header
}

func get(t *testing.T, h http.Handler, method, path, auth string) answer {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	a := answer{code: w.Code, hdr: w.Header()}
	if strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(w.Body.Bytes(), &a.body); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", method, path, w.Body.String(), err)
		}
	}
	return a
}

func (a answer) is(t *testing.T, what string, code int, errSubstr string) {
	t.Helper()
	if a.code != code {
		t.Errorf("%s: status %d, want %d (body %v)", what, a.code, code, a.body)
	}
	if errSubstr != "" {
		msg, _ := a.body["error"].(string)
		if !strings.Contains(msg, errSubstr) {
			t.Errorf("%s: error %q, want it to contain %q", what, msg, errSubstr)
		}
	}
}

func TestHTTPLookupToken(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cr3t-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := lookupHandler(t, Config{TokenFile: tokenFile})

	a := get(t, h, "GET", "/v1/customers/c1", "")
	a.is(t, "no token", http.StatusUnauthorized, "missing bearer token")
	if !strings.HasPrefix(a.hdr.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("no token: WWW-Authenticate %q", a.hdr.Get("WWW-Authenticate"))
	}
	get(t, h, "GET", "/v1/customers/c1", "Bearer wrong").is(t, "wrong token", http.StatusUnauthorized, "invalid bearer token")
	get(t, h, "GET", "/v1/customers/c1", "Bearer s3cr3t-token-and-more").is(t, "longer token", http.StatusUnauthorized, "invalid")
	get(t, h, "GET", "/v1/customers/c1", "Basic s3cr3t-token").is(t, "basic scheme", http.StatusUnauthorized, "missing bearer")
	a = get(t, h, "GET", "/v1/customers/c1", "Bearer s3cr3t-token")
	a.is(t, "right token", http.StatusNotFound, "unknown customer")
	if a.hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("lookup: Cache-Control %q, want no-store", a.hdr.Get("Cache-Control"))
	}
	get(t, h, "GET", "/v1/customers/c1", "bearer s3cr3t-token").is(t, "scheme in lower case", http.StatusNotFound, "unknown customer")
	// The operational endpoints stay open.
	get(t, h, "GET", "/healthz", "").is(t, "healthz", http.StatusOK, "")
	get(t, h, "GET", "/readyz", "").is(t, "readyz", http.StatusServiceUnavailable, "no tasks")
	if a := get(t, h, "GET", "/metrics", ""); a.code != http.StatusOK {
		t.Errorf("metrics: status %d", a.code)
	}
}

func TestHTTPLookupOff(t *testing.T) {
	h := lookupHandler(t, Config{DisableLookup: true})
	get(t, h, "GET", "/v1/customers/c1", "").is(t, "lookup off", http.StatusForbidden, "disabled")
	get(t, h, "GET", "/healthz", "").is(t, "healthz", http.StatusOK, "")

	h = lookupHandler(t, Config{})
	get(t, h, "GET", "/v1/customers/c1", "").is(t, "lookup on, no token configured", http.StatusNotFound, "unknown customer")
}

func TestHTTPErrorsAreJSON(t *testing.T) {
	h := lookupHandler(t, Config{})
	get(t, h, "GET", "/nope", "").is(t, "unknown path", http.StatusNotFound, "no such endpoint")
	a := get(t, h, "POST", "/metrics", "")
	a.is(t, "POST /metrics", http.StatusMethodNotAllowed, "not allowed")
	if a.hdr.Get("Allow") == "" {
		t.Error("405 without an Allow header")
	}
	get(t, h, "DELETE", "/v1/customers/c1", "").is(t, "DELETE lookup", http.StatusMethodNotAllowed, "use GET")
}

func TestHTTPLookupConcurrencyCap(t *testing.T) {
	hc := Config{MaxConcurrentLookups: 1}
	if err := hc.Validate(); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	h := hc.guardLookup(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		entered <- struct{}{}
		<-release
		w.WriteHeader(http.StatusOK)
	}))
	done := make(chan int)
	go func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/v1/customers/a", nil))
		done <- w.Code
	}()
	<-entered
	a := get(t, h, "GET", "/v1/customers/b", "")
	a.is(t, "second concurrent lookup", http.StatusServiceUnavailable, "too many")
	if a.hdr.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	close(release)
	if code := <-done; code != http.StatusOK {
		t.Errorf("first lookup: %d", code)
	}
	// The slot is free again.
	go func() { <-entered }()
	if a := get(t, h, "GET", "/v1/customers/c", ""); a.code != http.StatusOK {
		t.Errorf("lookup after the first finished: %d", a.code)
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	pki := certtest.New(t, "http")
	empty := filepath.Join(dir, "empty")
	spaced := filepath.Join(dir, "spaced")
	os.WriteFile(empty, nil, 0o600)
	os.WriteFile(spaced, []byte("two words\n"), 0o600)
	bad := func(c Config, want string) {
		t.Helper()
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: error %v, want %q", c, err, want)
		}
	}
	bad(Config{CertFile: pki.ServerCertFile}, "http_tls_cert: set without http_tls_key")
	bad(Config{KeyFile: pki.ServerKeyFile}, "http_tls_key: set without http_tls_cert")
	bad(Config{CertFile: pki.ServerCertFile, KeyFile: pki.ClientKeyFile}, "http_tls_cert")
	bad(Config{CertFile: filepath.Join(dir, "missing"), KeyFile: pki.ServerKeyFile}, "missing")
	bad(Config{TokenFile: filepath.Join(dir, "missing")}, "http_token_file")
	bad(Config{TokenFile: empty}, "is empty")
	bad(Config{TokenFile: spaced}, "one line without spaces")
	bad(Config{TokenFile: spaced, DisableLookup: true}, "lookup is off")
	bad(Config{ReadTimeout: -time.Second}, "http_read_timeout")
	bad(Config{MaxConcurrentLookups: -1}, "http_max_concurrent_lookups")

	var c Config
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	srv := c.Server(http.NotFoundHandler())
	if srv.ReadHeaderTimeout != 5*time.Second || srv.ReadTimeout != 10*time.Second || srv.WriteTimeout != 30*time.Second ||
		srv.IdleTimeout != 2*time.Minute || srv.MaxHeaderBytes != 16<<10 {
		t.Errorf("default limits: header %v read %v write %v idle %v max header %d", srv.ReadHeaderTimeout,
			srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
	if srv.TLSConfig != nil {
		t.Error("TLS without a certificate")
	}
}

// serve starts c's server for h on a free port and returns its address.
func serve(t *testing.T, c *Config, h http.Handler) string {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	srv := c.Server(h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(c.Listener(srv, ln))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestHTTPTLS(t *testing.T) {
	pki := certtest.New(t, "http")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	copyFile(t, pki.ServerCertFile, certFile)
	copyFile(t, pki.ServerKeyFile, keyFile)
	c := Config{CertFile: certFile, KeyFile: keyFile}
	h := lookupHandler(t, Config{})
	addr := serve(t, &c, h)
	client := func(p *certtest.PKI) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: p.Pool()}}}
	}
	resp, err := client(pki).Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("https: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Errorf("https /healthz: status %d, tls %v", resp.StatusCode, resp.TLS != nil)
	}
	resp, err = http.Get("http://" + addr + "/healthz")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain http to the https port: status %d, want 400", resp.StatusCode)
		}
	}

	// A renewed certificate (here from another CA) is served to new
	// connections without a restart.
	next := certtest.New(t, "renewed")
	copyFile(t, next.ServerKeyFile, keyFile)
	copyFile(t, next.ServerCertFile, certFile)
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(certFile, later, later); err != nil {
		t.Fatal(err)
	}
	resp, err = client(next).Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("after renewal: %v", err)
	}
	resp.Body.Close()
}

func TestHTTPReadHeaderTimeout(t *testing.T) {
	c := Config{ReadHeaderTimeout: 200 * time.Millisecond}
	addr := serve(t, &c, http.NotFoundHandler())
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Send half a request and stall: the server must hang up.
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = bufio.NewReader(conn).ReadString('\n')
	if err == nil {
		// Some servers answer 408 first; the connection must still close.
		_, err = io.ReadAll(conn)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("stalled request held the connection for %v (error %v)", el, err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestHTTPHealthAndReadiness checks how /healthz and /readyz report the
// instance: each reason as the error, the task counts beside it.
func TestHTTPHealthAndReadiness(t *testing.T) {
	in := &instance{partitions: 2, owned: map[int32]bool{0: true, 1: true}, ready: make(chan struct{})}
	h := Handler(in, prometheus.NewRegistry(), nil)
	get(t, h, "GET", "/healthz", "").is(t, "healthy", http.StatusOK, "")
	in.stalled = "task 1 has made no progress for 3m0s (stall timeout 2m0s)"
	get(t, h, "GET", "/healthz", "").is(t, "stalled", http.StatusServiceUnavailable, in.stalled)

	a := get(t, h, "GET", "/readyz", "")
	a.is(t, "before assignment", http.StatusServiceUnavailable, "no tasks assigned yet")
	if _, ok := a.body["tasks"]; ok {
		t.Errorf("before assignment: body %v names tasks", a.body)
	}
	close(in.ready)
	in.loading = 1
	a = get(t, h, "GET", "/readyz", "")
	a.is(t, "one task loading", http.StatusServiceUnavailable, "1 of 2 tasks are loading their state")
	if a.body["tasks"] != 2.0 || a.body["loading"] != 1.0 {
		t.Errorf("one task loading: body %v, want tasks 2, loading 1", a.body)
	}
	in.loading, in.brokers = 0, errors.New("the brokers did not answer the latest offset listing")
	a = get(t, h, "GET", "/readyz", "")
	a.is(t, "brokers", http.StatusServiceUnavailable, in.brokers.Error())
	if _, ok := a.body["loading"]; ok || a.body["tasks"] != 2.0 {
		t.Errorf("brokers: body %v, want tasks 2 and no loading", a.body)
	}
	in.brokers = nil
	a = get(t, h, "GET", "/readyz", "")
	a.is(t, "ready", http.StatusOK, "")
	if a.body["status"] != "ready" || a.body["tasks"] != 2.0 {
		t.Errorf("ready: body %v", a.body)
	}
}

// TestHTTPLookup checks each answer of the customer lookup: the view, an
// unknown customer, an id out of bounds, an instance not started, a state
// that cannot be read, and a customer of another instance's task, with the
// owner's URL or the reason there is none.
func TestHTTPLookup(t *testing.T) {
	channels := make([]int64, len(schemas.Channels))
	channels[1] = 3
	in := &instance{partitions: 2, owned: map[int32]bool{0: true}, customers: map[string]*schemas.Customer{
		"ab": {CustomerID: "ab", Version: 7, Tier: "gold", Purchases: 3, MonetaryMinor: 4500, PurchasesByChannel: channels},
	}}
	h := Handler(in, prometheus.NewRegistry(), nil)

	r := httptest.NewRequest("GET", "/v1/customers/ab", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var v CustomerView
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil || w.Code != http.StatusOK {
		t.Fatalf("lookup: %d %s (%v)", w.Code, w.Body, err)
	}
	want := CustomerView{CustomerID: "ab", Task: 0, Version: 7, Tier: "gold", Purchases: 3, MonetaryMinor: 4500,
		InteractionsByChannel: map[string]int64{}, PurchasesByChannel: map[string]int64{string(schemas.Channels[1]): 3},
		ContactableChannels: []schemas.Channel{}, Categories: []schemas.CategoryStat{}}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("view\n%+v, want\n%+v", v, want)
	}
	for _, h := range []string{"Content-Type", "Cache-Control", "X-Content-Type-Options"} {
		if w.Header().Get(h) == "" {
			t.Errorf("lookup: no %s header", h)
		}
	}

	get(t, h, "GET", "/v1/customers/xy", "").is(t, "unknown", http.StatusNotFound, "unknown customer")
	get(t, h, "GET", "/v1/customers/"+strings.Repeat("x", 257), "").is(t, "long id", http.StatusBadRequest, "1 to 256 bytes")

	a := get(t, h, "GET", "/v1/customers/a", "")
	a.is(t, "no owner advertised", http.StatusMisdirectedRequest, "does not own")
	if a.body["task"] != 1.0 || !strings.Contains(fmt.Sprint(a.body["owner_error"]), "--advertise-url") || a.hdr.Get("Location") != "" {
		t.Errorf("no owner advertised: body %v, Location %q", a.body, a.hdr.Get("Location"))
	}
	in.ownerErr = errors.New("describe group g: coordinator not available")
	a = get(t, h, "GET", "/v1/customers/a", "")
	if a.code != http.StatusMisdirectedRequest || a.body["owner_error"] != in.ownerErr.Error() {
		t.Errorf("owner unknown: %d %v", a.code, a.body)
	}
	in.ownerErr, in.owner = nil, "https://valora-1.valora:8089"
	a = get(t, h, "GET", "/v1/customers/a%2Fb?x", "")
	if a.code != http.StatusMisdirectedRequest || a.body["owner"] != in.owner || a.body["owner_error"] != nil ||
		a.hdr.Get("Location") != in.owner+"/v1/customers/a%2Fb" {
		t.Errorf("owner: %d %v, Location %q", a.code, a.body, a.hdr.Get("Location"))
	}

	in.readErr = errors.New("read state: disk on fire")
	get(t, h, "GET", "/v1/customers/ab", "").is(t, "read error", http.StatusInternalServerError, "read state: disk on fire")
	in.partitions = 0
	get(t, h, "GET", "/v1/customers/ab", "").is(t, "not started", http.StatusServiceUnavailable, "processor not started")
}

// TestHTTPNeedsValidate checks that an unvalidated config with a token
// cannot serve an unguarded lookup, nor a certificate plain HTTP.
func TestHTTPNeedsValidate(t *testing.T) {
	for name, f := range map[string]func(){
		"Handler": func() { Handler(&instance{}, prometheus.NewRegistry(), &Config{TokenFile: "token"}) },
		"Server":  func() { (&Config{CertFile: "cert.pem", KeyFile: "key.pem"}).Server(http.NotFoundHandler()) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s with an unvalidated config did not panic", name)
				}
			}()
			f()
		}()
	}
}
