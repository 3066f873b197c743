package kafkasec

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Mechanism is a SASL mechanism name as Kafka spells it.
type Mechanism string

// The SASL mechanisms valora speaks.
const (
	Plain       Mechanism = "PLAIN"
	ScramSHA256 Mechanism = "SCRAM-SHA-256"
	ScramSHA512 Mechanism = "SCRAM-SHA-512"
	OAuthBearer Mechanism = "OAUTHBEARER"
)

// Mechanisms lists the supported mechanisms in the order messages name them.
var Mechanisms = []Mechanism{Plain, ScramSHA256, ScramSHA512, OAuthBearer}

// PasswordEnv is the environment variable a command reads the SASL password
// from when no password file is given. Config does not read it: the command
// puts its value in SASL.Password.
const PasswordEnv = "VALORA_SASL_PASSWORD"

// Secret is a string that never prints: fmt, slog and encoding/json show
// "[redacted]" (or nothing when it is empty).
type Secret string

const redacted = "[redacted]"

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return fmt.Sprintf("kafkasec.Secret(%q)", s.String()) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText implements encoding.TextMarshaler (used by slog's JSON
// handler and encoders that prefer text).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Config is how valora connects to Kafka securely. The zero value is a
// plain-text connection without authentication (Kafka's PLAINTEXT
// listener). Each field names its flag.
type Config struct {
	TLS  TLS
	SASL SASL
}

// TLS configures the encryption of the broker connections.
type TLS struct {
	// Enabled dials every broker with TLS 1.2 or later (--tls). The other
	// TLS fields require it.
	Enabled bool
	// CAFile is a PEM file of the certificate authorities that sign the
	// brokers' certificates (--tls-ca). Default: the system's trust store.
	CAFile string
	// CertFile and KeyFile are the PEM client certificate and its private
	// key, for brokers that authenticate clients by certificate (mutual
	// TLS; --tls-cert, --tls-key). Both or neither.
	CertFile string
	KeyFile  string
	// ServerName is the name the brokers' certificates must carry
	// (--tls-server-name). Default: the host of each broker address.
	ServerName string
}

// SASL configures the authentication of the broker connections.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER
	// (--sasl-mechanism, any case). Empty: no SASL.
	Mechanism Mechanism
	// Username is the SASL user of PLAIN and SCRAM (--sasl-username).
	Username string
	// PasswordFile holds the password of PLAIN and SCRAM
	// (--sasl-password-file); one trailing newline is ignored. Read again on
	// every authentication.
	PasswordFile string
	// Password is the password when there is no PasswordFile; a command
	// fills it from the environment (PasswordEnv).
	Password Secret
	// OAuthTokenFile holds the OAUTHBEARER token
	// (--sasl-oauth-token-file); one trailing newline is ignored. Read
	// again on every authentication, so a token refreshed in place (by a
	// sidecar, for example) is used by the next connection.
	OAuthTokenFile string
}

// normalize upper-cases the mechanism.
func (c *Config) normalize() {
	c.SASL.Mechanism = Mechanism(strings.ToUpper(strings.TrimSpace(string(c.SASL.Mechanism))))
}

func mechanismList() string {
	names := make([]string, len(Mechanisms))
	for i, m := range Mechanisms {
		names[i] = string(m)
	}
	return strings.Join(names, ", ")
}

// Validate reports every invalid field, each error starting with the field's
// flag. It reads the files the config names (CA, certificate and key,
// password, token) to check that they exist and hold what they should, but
// opens no socket. The mechanism may be given in any case.
func (c *Config) Validate() error {
	c.normalize()
	var errs []error
	add := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", flag, fmt.Sprintf(format, args...)))
	}

	t := c.TLS
	if !t.Enabled {
		for _, f := range [...]struct{ flag, v string }{
			{"--tls-ca", t.CAFile}, {"--tls-cert", t.CertFile}, {"--tls-key", t.KeyFile}, {"--tls-server-name", t.ServerName},
		} {
			if f.v != "" {
				add(f.flag, "set, but TLS is off: add --tls (VALORA_TLS=true)")
			}
		}
	} else {
		if t.CAFile != "" {
			if _, err := loadCAs(t.CAFile); err != nil {
				errs = append(errs, fmt.Errorf("--tls-ca: %w", err))
			}
		}
		switch {
		case t.CertFile == "" && t.KeyFile != "":
			add("--tls-key", "set without --tls-cert: a client key needs its certificate")
		case t.CertFile != "" && t.KeyFile == "":
			add("--tls-cert", "set without --tls-key: a client certificate needs its private key")
		case t.CertFile != "":
			if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
				errs = append(errs, fmt.Errorf("--tls-cert %s / --tls-key %s: %w", t.CertFile, t.KeyFile, err))
			}
		}
	}

	s := c.SASL
	switch s.Mechanism {
	case "":
		for _, f := range [...]struct{ flag, v string }{
			{"--sasl-username", s.Username}, {"--sasl-password-file", s.PasswordFile},
			{PasswordEnv, string(s.Password)}, {"--sasl-oauth-token-file", s.OAuthTokenFile},
		} {
			if f.v != "" {
				add(f.flag, "set, but --sasl-mechanism is empty (want %s)", mechanismList())
			}
		}
	case Plain, ScramSHA256, ScramSHA512:
		if s.Username == "" {
			add("--sasl-username", "required with --sasl-mechanism %s", s.Mechanism)
		}
		if s.OAuthTokenFile != "" {
			add("--sasl-oauth-token-file", "only used with --sasl-mechanism OAUTHBEARER, not %s", s.Mechanism)
		}
		switch {
		case s.PasswordFile != "" && s.Password != "":
			add("--sasl-password-file", "set together with %s: give the password one way", PasswordEnv)
		case s.PasswordFile != "":
			if _, err := readSecretFile(s.PasswordFile); err != nil {
				errs = append(errs, fmt.Errorf("--sasl-password-file: %w", err))
			}
		case s.Password == "":
			add("--sasl-password-file", "required with --sasl-mechanism %s (or set %s)", s.Mechanism, PasswordEnv)
		}
	case OAuthBearer:
		if s.Username != "" {
			add("--sasl-username", "not used with OAUTHBEARER: the token names the principal")
		}
		if s.PasswordFile != "" {
			add("--sasl-password-file", "not used with OAUTHBEARER: give --sasl-oauth-token-file")
		}
		if s.Password != "" {
			add(PasswordEnv, "not used with OAUTHBEARER: give --sasl-oauth-token-file")
		}
		if s.OAuthTokenFile == "" {
			add("--sasl-oauth-token-file", "required with --sasl-mechanism OAUTHBEARER")
		} else if _, err := readSecretFile(s.OAuthTokenFile); err != nil {
			errs = append(errs, fmt.Errorf("--sasl-oauth-token-file: %w", err))
		}
	default:
		add("--sasl-mechanism", "unknown %q (want %s)", s.Mechanism, mechanismList())
	}
	return errors.Join(errs...)
}

// Warnings are valid but risky settings that a command should log at start:
// a password or token sent over a plain-text connection.
func (c *Config) Warnings() []string {
	c.normalize()
	if c.TLS.Enabled {
		return nil
	}
	switch c.SASL.Mechanism {
	case Plain:
		return []string{"SASL PLAIN without --tls sends the password to the brokers in clear text"}
	case OAuthBearer:
		return []string{"SASL OAUTHBEARER without --tls sends the token to the brokers in clear text"}
	}
	return nil
}

// Opts validates the config and returns the Kafka client options it
// implies: none for the zero Config, kgo.DialTLSConfig with TLS,
// kgo.SASL with a mechanism.
func (c *Config) Opts() ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var opts []kgo.Opt
	if c.TLS.Enabled {
		tc, err := c.TLS.config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if m := c.SASL.mechanism(); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// config builds the TLS client config. kgo clones it per dial and sets
// ServerName to the broker's host when it is empty.
func (t TLS) config() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pool, err := loadCAs(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		certFile, keyFile := t.CertFile, t.KeyFile
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return nil, fmt.Errorf("load client certificate --tls-cert %s / --tls-key %s: %w", certFile, keyFile, err)
			}
			return &c, nil
		}
	}
	return tc, nil
}

func loadCAs(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate found", path)
	}
	return pool, nil
}

// readSecretFile reads a password or token file, dropping one trailing
// newline (\n or \r\n). An empty secret is an error. Errors name the file,
// never its content.
func readSecretFile(path string) (Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("%s: empty", path)
	}
	return Secret(s), nil
}

// password returns the current password: the file, read now, or the
// environment value.
func (s SASL) password() (string, error) {
	if s.PasswordFile == "" {
		return string(s.Password), nil
	}
	p, err := readSecretFile(s.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("read --sasl-password-file: %w", err)
	}
	return string(p), nil
}

// mechanism returns the franz-go SASL mechanism, or nil without SASL. Its
// credentials are read on every authentication.
func (s SASL) mechanism() sasl.Mechanism {
	user := s.Username
	scramAuth := func(context.Context) (scram.Auth, error) {
		p, err := s.password()
		return scram.Auth{User: user, Pass: p}, err
	}
	switch s.Mechanism {
	case Plain:
		return plain.Plain(func(context.Context) (plain.Auth, error) {
			p, err := s.password()
			return plain.Auth{User: user, Pass: p}, err
		})
	case ScramSHA256:
		return scram.Sha256(scramAuth)
	case ScramSHA512:
		return scram.Sha512(scramAuth)
	case OAuthBearer:
		file := s.OAuthTokenFile
		return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
			tok, err := readSecretFile(file)
			if err != nil {
				return oauth.Auth{}, fmt.Errorf("read --sasl-oauth-token-file: %w", err)
			}
			return oauth.Auth{Token: string(tok)}, nil
		})
	}
	return nil
}

// String describes the config without any secret: where the password or
// token comes from, never its value.
func (c Config) String() string {
	var b strings.Builder
	if c.TLS.Enabled {
		b.WriteString("tls=on")
		for _, f := range [...]struct{ k, v string }{
			{"ca", c.TLS.CAFile}, {"cert", c.TLS.CertFile}, {"key", c.TLS.KeyFile}, {"server-name", c.TLS.ServerName},
		} {
			if f.v != "" {
				fmt.Fprintf(&b, " %s=%s", f.k, f.v)
			}
		}
	} else {
		b.WriteString("tls=off")
	}
	if c.SASL.Mechanism == "" {
		b.WriteString(" sasl=off")
		return b.String()
	}
	fmt.Fprintf(&b, " sasl=%s", c.SASL.Mechanism)
	if c.SASL.Username != "" {
		fmt.Fprintf(&b, " user=%s", c.SASL.Username)
	}
	if src := c.SASL.secretSource(); src != "" {
		fmt.Fprintf(&b, " secret=%s", src)
	}
	return b.String()
}

// GoString keeps %#v from printing a secret.
func (c Config) GoString() string { return "kafkasec.Config{" + c.String() + "}" }

// LogValue implements slog.LogValuer: the same fields as String, as a group.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{slog.Bool("tls", c.TLS.Enabled)}
	for _, f := range [...]struct{ k, v string }{
		{"tls_ca", c.TLS.CAFile}, {"tls_cert", c.TLS.CertFile}, {"tls_key", c.TLS.KeyFile}, {"tls_server_name", c.TLS.ServerName},
		{"sasl_mechanism", string(c.SASL.Mechanism)}, {"sasl_username", c.SASL.Username}, {"sasl_secret", c.SASL.secretSource()},
	} {
		if f.v != "" {
			attrs = append(attrs, slog.String(f.k, f.v))
		}
	}
	return slog.GroupValue(attrs...)
}

// secretSource says where the password or token comes from.
func (s SASL) secretSource() string {
	switch {
	case s.OAuthTokenFile != "":
		return "token file " + s.OAuthTokenFile
	case s.PasswordFile != "":
		return "password file " + s.PasswordFile
	case s.Password != "":
		return "password from " + PasswordEnv + " " + redacted
	}
	return ""
}
