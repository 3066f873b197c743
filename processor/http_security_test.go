package processor

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"valora/internal/certtest"
	"valora/state"
)

// lookupProcessor returns a processor that owns task 0 of a one-partition
// topic over an empty store, enough to serve the HTTP surface: a lookup
// that passes every guard answers 404 "unknown customer".
func lookupProcessor(t *testing.T, hc HTTPConfig) *Processor {
	t.Helper()
	if err := hc.Validate(); err != nil {
		t.Fatalf("http config: %v", err)
	}
	st, err := state.Open(state.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tk := &task{}
	tk.beat.Store(time.Now().UnixNano())
	return &Processor{
		cfg:        Config{Store: st, HTTP: hc, StallTimeout: time.Hour},
		partitions: 1,
		tasks:      map[int32]*task{0: tk},
		ready:      make(chan struct{}),
	}
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
	h := lookupProcessor(t, HTTPConfig{TokenFile: tokenFile}).Handler(prometheus.NewRegistry())

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
	h := lookupProcessor(t, HTTPConfig{DisableLookup: true}).Handler(prometheus.NewRegistry())
	get(t, h, "GET", "/v1/customers/c1", "").is(t, "lookup off", http.StatusForbidden, "disabled")
	get(t, h, "GET", "/healthz", "").is(t, "healthz", http.StatusOK, "")

	h = lookupProcessor(t, HTTPConfig{}).Handler(prometheus.NewRegistry())
	get(t, h, "GET", "/v1/customers/c1", "").is(t, "lookup on, no token configured", http.StatusNotFound, "unknown customer")
}

func TestHTTPErrorsAreJSON(t *testing.T) {
	h := lookupProcessor(t, HTTPConfig{}).Handler(prometheus.NewRegistry())
	get(t, h, "GET", "/nope", "").is(t, "unknown path", http.StatusNotFound, "no such endpoint")
	a := get(t, h, "POST", "/metrics", "")
	a.is(t, "POST /metrics", http.StatusMethodNotAllowed, "not allowed")
	if a.hdr.Get("Allow") == "" {
		t.Error("405 without an Allow header")
	}
	get(t, h, "DELETE", "/v1/customers/c1", "").is(t, "DELETE lookup", http.StatusMethodNotAllowed, "use GET")
}

func TestHTTPLookupConcurrencyCap(t *testing.T) {
	hc := HTTPConfig{MaxConcurrentLookups: 1}
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

func TestHTTPConfigValidate(t *testing.T) {
	dir := t.TempDir()
	pki := certtest.New(t, "http")
	empty := filepath.Join(dir, "empty")
	spaced := filepath.Join(dir, "spaced")
	os.WriteFile(empty, nil, 0o600)
	os.WriteFile(spaced, []byte("two words\n"), 0o600)
	bad := func(c HTTPConfig, want string) {
		t.Helper()
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: error %v, want %q", c, err, want)
		}
	}
	bad(HTTPConfig{CertFile: pki.ServerCertFile}, "http_tls_cert: set without http_tls_key")
	bad(HTTPConfig{KeyFile: pki.ServerKeyFile}, "http_tls_key: set without http_tls_cert")
	bad(HTTPConfig{CertFile: pki.ServerCertFile, KeyFile: pki.ClientKeyFile}, "http_tls_cert")
	bad(HTTPConfig{CertFile: filepath.Join(dir, "missing"), KeyFile: pki.ServerKeyFile}, "missing")
	bad(HTTPConfig{TokenFile: filepath.Join(dir, "missing")}, "http_token_file")
	bad(HTTPConfig{TokenFile: empty}, "is empty")
	bad(HTTPConfig{TokenFile: spaced}, "one line without spaces")
	bad(HTTPConfig{TokenFile: spaced, DisableLookup: true}, "lookup is off")
	bad(HTTPConfig{ReadTimeout: -time.Second}, "http_read_timeout")
	bad(HTTPConfig{MaxConcurrentLookups: -1}, "http_max_concurrent_lookups")

	var c HTTPConfig
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
func serve(t *testing.T, c *HTTPConfig, h http.Handler) string {
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
	c := HTTPConfig{CertFile: certFile, KeyFile: keyFile}
	h := lookupProcessor(t, HTTPConfig{}).Handler(prometheus.NewRegistry())
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
	c := HTTPConfig{ReadHeaderTimeout: 200 * time.Millisecond}
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
