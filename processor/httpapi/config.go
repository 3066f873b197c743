package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Config configures the HTTP API of an instance (see Handler): who may
// read customers, TLS, and the server's limits. The zero value serves plain
// HTTP with the customer lookup open to anyone who can reach the port, and
// the default limits. Validate it before Handler and Server use it.
type Config struct {
	// CertFile and KeyFile, both or neither, serve HTTPS with this PEM
	// certificate and key (flags --http-tls-cert, --http-tls-key). The
	// files are read again when the certificate file changes, so a renewed
	// certificate is served without a restart.
	CertFile string
	KeyFile  string
	// DisableLookup turns GET /v1/customers/{id} off: it answers 403
	// (--http-lookup=off). /metrics, /healthz and /readyz stay.
	DisableLookup bool
	// TokenFile holds a bearer token that GET /v1/customers/{id} requires
	// (Authorization: Bearer <token>); one trailing newline is ignored
	// (--http-token-file). Read once, by Validate. /metrics, /healthz and
	// /readyz stay open.
	TokenFile string

	// Server limits. Defaults: ReadHeaderTimeout 5s, ReadTimeout 10s,
	// WriteTimeout 30s, IdleTimeout 2m, MaxHeaderBytes 16 KiB,
	// MaxConcurrentLookups 64 (further lookups get 503 at once).
	ReadHeaderTimeout    time.Duration
	ReadTimeout          time.Duration
	WriteTimeout         time.Duration
	IdleTimeout          time.Duration
	MaxHeaderBytes       int
	MaxConcurrentLookups int

	// tokenSum is the SHA-256 of the token, set by Validate.
	tokenSum *[sha256.Size]byte
	// cert serves the certificate, set by Validate.
	cert *certReloader
	// validated is set by a Validate that found no fault: Handler and
	// Server refuse a config whose token and certificate were not read.
	validated bool
}

func (c *Config) setDefaults() {
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = 5 * time.Second
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 10 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 2 * time.Minute
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = 16 << 10
	}
	if c.MaxConcurrentLookups == 0 {
		c.MaxConcurrentLookups = 64
	}
}

// Validate applies defaults, checks every field and reads the token file
// and the certificate, so that a bad file stops the program at start. Each
// error names the field (http_tls_cert for --http-tls-cert, and so on).
func (c *Config) Validate() error {
	c.setDefaults()
	var errs []error
	switch {
	case c.CertFile == "" && c.KeyFile != "":
		errs = append(errs, errors.New("http_tls_key: set without http_tls_cert"))
	case c.CertFile != "" && c.KeyFile == "":
		errs = append(errs, errors.New("http_tls_cert: set without http_tls_key"))
	case c.CertFile != "":
		r, err := newCertReloader(c.CertFile, c.KeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("http_tls_cert %s / http_tls_key %s: %w", c.CertFile, c.KeyFile, err))
		}
		c.cert = r
	}
	c.tokenSum = nil
	if c.TokenFile != "" && c.DisableLookup {
		errs = append(errs, errors.New("http_token_file: set, but the customer lookup is off; the token guards only the lookup"))
	} else if c.TokenFile != "" {
		b, err := os.ReadFile(c.TokenFile)
		tok := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("http_token_file: %w", err))
		case tok == "":
			errs = append(errs, fmt.Errorf("http_token_file: %s is empty", c.TokenFile))
		case strings.ContainsAny(tok, " \t\r\n"):
			errs = append(errs, fmt.Errorf("http_token_file: %s: the token must be one line without spaces", c.TokenFile))
		default:
			sum := sha256.Sum256([]byte(tok))
			c.tokenSum = &sum
		}
	}
	for _, d := range [...]struct {
		field string
		v     time.Duration
	}{
		{"http_read_header_timeout", c.ReadHeaderTimeout}, {"http_read_timeout", c.ReadTimeout},
		{"http_write_timeout", c.WriteTimeout}, {"http_idle_timeout", c.IdleTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %v must be positive", d.field, d.v))
		}
	}
	if c.MaxHeaderBytes < 0 {
		errs = append(errs, fmt.Errorf("http_max_header_bytes: %d must be positive", c.MaxHeaderBytes))
	}
	if c.MaxConcurrentLookups < 0 {
		errs = append(errs, fmt.Errorf("http_max_concurrent_lookups: %d must be positive", c.MaxConcurrentLookups))
	}
	c.validated = len(errs) == 0
	return errors.Join(errs...)
}

// TLS reports whether the server speaks HTTPS.
func (c *Config) TLS() bool { return c.CertFile != "" }

// Server returns an http.Server for h with the configured limits and, with
// a certificate, its TLS config. Serve it with Serve(c.Listener(srv, ln)).
// It panics when Validate has not accepted c, rather than serve plain HTTP
// in place of HTTPS.
func (c *Config) Server(h http.Handler) *http.Server {
	if !c.validated {
		panic("httpapi: Server with a Config that Validate has not accepted")
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
	}
	if c.cert != nil {
		srv.TLSConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: c.cert.get,
			NextProtos:     []string{"h2", "http/1.1"},
		}
	}
	return srv
}

// Listener wraps ln in TLS when the server speaks HTTPS (srv is what Server
// returned), and returns ln otherwise.
func (c *Config) Listener(srv *http.Server, ln net.Listener) net.Listener {
	if srv.TLSConfig == nil {
		return ln
	}
	return tls.NewListener(ln, srv.TLSConfig)
}

// guardLookup applies the lookup settings in front of next: off (403),
// bearer token (401), concurrency cap (503). Every answer is JSON and is not
// cached. It works on a copy of c.
func (c Config) guardLookup(next http.Handler) http.Handler {
	c.setDefaults()
	slots := make(chan struct{}, c.MaxConcurrentLookups)
	disabled, want := c.DisableLookup, c.tokenSum
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if disabled {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "customer lookup is disabled on this instance"})
			return
		}
		if want != nil {
			tok, ok := bearerToken(r)
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="valora"`)
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing bearer token: send Authorization: Bearer <token>"})
				return
			}
			// Compare fixed-size digests in constant time, so that neither
			// the content nor the length of the token leaks through timing.
			got := sha256.Sum256([]byte(tok))
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="valora", error="invalid_token"`)
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid bearer token"})
				return
			}
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "too many concurrent customer lookups; retry shortly"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearerToken returns the token of an "Authorization: Bearer <token>"
// header (the scheme in any case).
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// certReloader serves a certificate and loads it again when the
// certificate file's modification time changes. A failed reload keeps the
// previous certificate.
type certReloader struct {
	certFile, keyFile string
	mu                sync.Mutex
	cert              *tls.Certificate
	mod               time.Time
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	fi, err := os.Stat(certFile)
	if err != nil {
		return nil, err
	}
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	r.cert, r.mod = &c, fi.ModTime()
	return r, nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if fi, err := os.Stat(r.certFile); err == nil && !fi.ModTime().Equal(r.mod) {
		if c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile); err == nil {
			r.cert, r.mod = &c, fi.ModTime()
		}
	}
	return r.cert, nil
}
