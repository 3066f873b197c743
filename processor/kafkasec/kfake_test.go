package kafkasec

import (
	"context"
	"crypto/x509"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/certtest"
)

// These tests always run against an in-process kfake cluster, also when
// VALORA_TEST_BROKERS names a real broker: that broker has no TLS or SASL
// listener. kfake speaks TLS and SASL PLAIN, SCRAM-SHA-256 and
// SCRAM-SHA-512, but not OAUTHBEARER (see TestOAuthBearerTokenFile).

// cluster starts a one-broker kfake cluster with the given options.
func cluster(t *testing.T, opts ...kfake.Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// ping connects with c's options and returns the first error.
func ping(t *testing.T, addrs []string, c Config) error {
	t.Helper()
	opts, err := c.Opts()
	if err != nil {
		t.Fatalf("opts: %v", err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(addrs...))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}

func TestTLS(t *testing.T) {
	pki := certtest.New(t, "broker")
	other := certtest.New(t, "stranger")

	t.Run("server auth", func(t *testing.T) {
		addrs := cluster(t, kfake.TLS(pki.ServerConfig(false)))
		if err := ping(t, addrs, Config{TLS: TLS{Enabled: true, CAFile: pki.CAFile}}); err != nil {
			t.Errorf("trusted CA: %v", err)
		}
		err := ping(t, addrs, Config{TLS: TLS{Enabled: true, CAFile: other.CAFile}})
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("untrusted CA: error %v (%T), want x509.UnknownAuthorityError", err, err)
		}
		t.Logf("untrusted CA: %v", err)
		// The certificate is for 127.0.0.1 and localhost only.
		err = ping(t, addrs, Config{TLS: TLS{Enabled: true, CAFile: pki.CAFile, ServerName: "kafka.example"}})
		var host x509.HostnameError
		if !errors.As(err, &host) {
			t.Errorf("wrong server name: error %v, want x509.HostnameError", err)
		}
	})

	t.Run("mutual", func(t *testing.T) {
		addrs := cluster(t, kfake.TLS(pki.ServerConfig(true)))
		withCert := Config{TLS: TLS{Enabled: true, CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}}
		if err := ping(t, addrs, withCert); err != nil {
			t.Errorf("client certificate: %v", err)
		}
		if err := ping(t, addrs, Config{TLS: TLS{Enabled: true, CAFile: pki.CAFile}}); err == nil {
			t.Error("no client certificate: connected, want a failure")
		}
		strangerCert := Config{TLS: TLS{Enabled: true, CAFile: pki.CAFile, CertFile: other.ClientCertFile, KeyFile: other.ClientKeyFile}}
		if err := ping(t, addrs, strangerCert); err == nil {
			t.Error("client certificate from another CA: connected, want a failure")
		}
	})
}

func TestSASL(t *testing.T) {
	pki := certtest.New(t, "sasl")
	const user, pass = "valora", "s3cret-pass"
	addrs := cluster(t, kfake.TLS(pki.ServerConfig(false)), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", user, pass),
		kfake.Superuser("SCRAM-SHA-256", user, pass),
		kfake.Superuser("SCRAM-SHA-512", user, pass))
	dir := t.TempDir()
	tlsOn := TLS{Enabled: true, CAFile: pki.CAFile}
	for _, m := range []Mechanism{Plain, ScramSHA256, ScramSHA512} {
		t.Run(string(m), func(t *testing.T) {
			pwFile := writeFile(t, dir, "pw-"+string(m), pass+"\n")
			if err := ping(t, addrs, Config{TLS: tlsOn, SASL: SASL{Mechanism: m, Username: user, PasswordFile: pwFile}}); err != nil {
				t.Errorf("right password from a file: %v", err)
			}
			if err := ping(t, addrs, Config{TLS: tlsOn, SASL: SASL{Mechanism: m, Username: user, Password: pass}}); err != nil {
				t.Errorf("right password from the environment: %v", err)
			}
			err := ping(t, addrs, Config{TLS: tlsOn, SASL: SASL{Mechanism: m, Username: user, Password: "wrong"}})
			if err == nil {
				t.Fatal("wrong password: connected")
			}
			if strings.Contains(err.Error(), pass) {
				t.Errorf("error shows the password: %v", err)
			}
			t.Logf("wrong password: %v", err)
			if err := ping(t, addrs, Config{TLS: tlsOn, SASL: SASL{Mechanism: m, Username: "nobody", Password: pass}}); err == nil {
				t.Error("unknown user: connected")
			}
		})
	}
}

// TestPasswordRotation checks that the password file is read again for a
// new connection: a client built with a stale password connects once the
// file holds the right one, without being rebuilt.
func TestPasswordRotation(t *testing.T) {
	addrs := cluster(t, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "valora", "new-pass"))
	pw := writeFile(t, t.TempDir(), "pw", "old-pass\n")
	c := Config{SASL: SASL{Mechanism: ScramSHA256, Username: "valora", PasswordFile: pw}}
	opts, err := c.Opts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(addrs...))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err == nil {
		t.Fatal("stale password: connected")
	}
	writeFile(t, filepath.Dir(pw), "pw", "new-pass\n")
	if err := cl.Ping(ctx); err != nil {
		t.Errorf("after the password file changed: %v", err)
	}
}
