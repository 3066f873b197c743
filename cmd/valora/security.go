package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"valora/processor/kafkasec"
)

// securityFlags are the Kafka TLS and SASL flags of every command that
// connects to real brokers. A command registers them, then calls
// clientOpts after parsing and appends the result to its kgo options.
// Secrets are never flag values: the flags take file paths, and the
// password may also come from VALORA_SASL_PASSWORD, which is read here and
// never printed.
type securityFlags struct {
	tls            bool
	caFile         string
	certFile       string
	keyFile        string
	serverName     string
	mechanism      string
	username       string
	passwordFile   string
	oauthTokenFile string
}

func (s *securityFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&s.tls, "tls", false, "connect to the Kafka brokers with TLS")
	fs.StringVar(&s.caFile, "tls-ca", "", "PEM `file` of the CAs that sign the brokers' certificates (default: the system's trust store)")
	fs.StringVar(&s.certFile, "tls-cert", "", "PEM `file` of a client certificate, for brokers that require one (with --tls-key)")
	fs.StringVar(&s.keyFile, "tls-key", "", "PEM `file` of the client certificate's private key")
	fs.StringVar(&s.serverName, "tls-server-name", "", "`name` the brokers' certificates must carry (default: each broker's host)")
	fs.StringVar(&s.mechanism, "sasl-mechanism", "", "SASL `mechanism`: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (default: no SASL)")
	fs.StringVar(&s.username, "sasl-username", "", "SASL user `name` (PLAIN, SCRAM)")
	fs.StringVar(&s.passwordFile, "sasl-password-file", "", "`file` holding the SASL password (PLAIN, SCRAM), read on every login; or set "+kafkasec.PasswordEnv)
	fs.StringVar(&s.oauthTokenFile, "sasl-oauth-token-file", "", "`file` holding the OAUTHBEARER token, read on every login so that a refreshed token is used")
}

// config returns the validated security config. The password comes from
// --sasl-password-file or else from VALORA_SASL_PASSWORD. Errors are usage
// errors that name the flag, never a secret.
func (s *securityFlags) config(getenv env) (kafkasec.Config, error) {
	c := kafkasec.Config{
		TLS: kafkasec.TLS{
			Enabled: s.tls, CAFile: s.caFile, CertFile: s.certFile, KeyFile: s.keyFile, ServerName: s.serverName,
		},
		SASL: kafkasec.SASL{
			Mechanism: kafkasec.Mechanism(s.mechanism), Username: s.username,
			PasswordFile: s.passwordFile, Password: kafkasec.Secret(getenv(kafkasec.PasswordEnv)),
			OAuthTokenFile: s.oauthTokenFile,
		},
	}
	if err := c.Validate(); err != nil {
		return c, usageError{err}
	}
	return c, nil
}

// clientOpts validates the flags and returns the kgo options they imply
// (none without TLS and SASL). It logs the settings, secrets redacted, and
// any warning (a password sent in clear text).
func (s *securityFlags) clientOpts(getenv env, log *slog.Logger) ([]kgo.Opt, error) {
	c, err := s.config(getenv)
	if err != nil {
		return nil, err
	}
	opts, err := c.Opts()
	if err != nil {
		return nil, usageError{err}
	}
	if c.TLS.Enabled || c.SASL.Mechanism != "" {
		log.Info("kafka security", "kafka", c)
	}
	for _, w := range c.Warnings() {
		log.Warn(w)
	}
	return opts, nil
}

// connectTimeout bounds the start-up connectivity check.
const connectTimeout = 20 * time.Second

// checkBrokers connects to the brokers once, with opts, so that a command
// stops at start with the reason when it cannot connect: an untrusted
// certificate, a broker that does not speak TLS, failed authentication.
// Without it, kgo retries and the cause surfaces later, or as a bare EOF.
// It returns nil when ctx ends first: the caller is stopping anyway.
func checkBrokers(ctx context.Context, brokers []string, opts []kgo.Opt) error {
	var sasl saslWatch
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, append(opts, kgo.WithHooks(&sasl))...)...)
	if err != nil {
		return usageError{fmt.Errorf("--brokers: %w", err)}
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("connect to Kafka at %s: %s", strings.Join(brokers, ","), explainConnectErr(err, sasl.failed.Load()))
	}
	return nil
}

// saslWatch notes a SASL request that failed on the wire: brokers that
// reject a login may just close the connection, which kgo reports as EOF.
type saslWatch struct{ failed atomic.Bool }

func (w *saslWatch) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e kgo.BrokerE2E) {
	if (key == int16(kmsg.SASLHandshake) || key == int16(kmsg.SASLAuthenticate)) && e.Err() != nil {
		w.failed.Store(true)
	}
}

// explainConnectErr turns a connection error into a sentence that names the
// likely cause and the flag to check, keeping the original error.
// saslFailed says that a SASL exchange was cut off.
func explainConnectErr(err error, saslFailed bool) string {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		record    tls.RecordHeaderError
	)
	const saslHint = "check --sasl-mechanism, --sasl-username and the password (--sasl-password-file or " +
		kafkasec.PasswordEnv + ") or token (--sasl-oauth-token-file)"
	switch {
	case errors.As(err, &unknownCA):
		return fmt.Sprintf("the broker's TLS certificate is not trusted: it is signed by an unknown authority; give the CA that signed it with --tls-ca (%v)", err)
	case errors.As(err, &hostname):
		return fmt.Sprintf("the broker's TLS certificate is not trusted for this host name; check --brokers or set --tls-server-name (%v)", err)
	case errors.As(err, &invalid):
		return fmt.Sprintf("the broker's TLS certificate is not trusted (%v)", err)
	case errors.As(err, &record):
		return fmt.Sprintf("the broker did not answer with TLS: is this a TLS listener? (%v)", err)
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Sprintf("SASL authentication failed: %s (%v)", saslHint, err)
	case errors.Is(err, kerr.UnsupportedSaslMechanism), errors.Is(err, kerr.IllegalSaslState):
		return fmt.Sprintf("the broker does not accept this --sasl-mechanism (%v)", err)
	case saslFailed:
		return fmt.Sprintf("SASL authentication failed: the broker closed the connection during login; %s (%v)", saslHint, err)
	}
	return err.Error()
}
