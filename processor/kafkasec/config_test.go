package kafkasec

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"valora/internal/certtest"
)

const testPassword = "hunter2-do-not-print"

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	pki := certtest.New(t, "validate")
	pw := writeFile(t, dir, "password", testPassword+"\n")
	empty := writeFile(t, dir, "empty", "\n")
	token := writeFile(t, dir, "token", "eyJ.token\n")
	missing := filepath.Join(dir, "missing")

	ok := func(c Config) {
		t.Helper()
		if err := c.Validate(); err != nil {
			t.Errorf("%v: %v", c, err)
		}
	}
	// bad checks that Validate fails and that its message contains every
	// want, and never the password.
	bad := func(c Config, wants ...string) {
		t.Helper()
		err := c.Validate()
		if err == nil {
			t.Errorf("%v: no error, want %q", c, wants)
			return
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q lacks %q", c, err, w)
			}
		}
		if strings.Contains(err.Error(), testPassword) {
			t.Errorf("error shows the password: %q", err)
		}
	}

	ok(Config{})
	ok(Config{TLS: TLS{Enabled: true}})
	ok(Config{TLS: TLS{Enabled: true, CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile, ServerName: "kafka"}})
	ok(Config{SASL: SASL{Mechanism: "scram-sha-512", Username: "u", PasswordFile: pw}})
	ok(Config{SASL: SASL{Mechanism: Plain, Username: "u", Password: testPassword}})
	ok(Config{SASL: SASL{Mechanism: OAuthBearer, OAuthTokenFile: token}})

	bad(Config{SASL: SASL{Mechanism: "FOO"}},
		`--sasl-mechanism: unknown "FOO" (want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER)`)
	bad(Config{TLS: TLS{CAFile: pki.CAFile}}, "--tls-ca: set, but TLS is off")
	bad(Config{TLS: TLS{Enabled: true, CAFile: missing}}, "--tls-ca", "missing", "no such file")
	bad(Config{TLS: TLS{Enabled: true, CAFile: pw}}, "--tls-ca", "no PEM certificate")
	bad(Config{TLS: TLS{Enabled: true, KeyFile: pki.ClientKeyFile}}, "--tls-key: set without --tls-cert")
	bad(Config{TLS: TLS{Enabled: true, CertFile: pki.ClientCertFile}}, "--tls-cert: set without --tls-key")
	bad(Config{TLS: TLS{Enabled: true, CertFile: pki.ClientCertFile, KeyFile: pki.ServerKeyFile}}, "--tls-cert", "--tls-key", "does not match")
	bad(Config{SASL: SASL{Mechanism: Plain, PasswordFile: pw}}, "--sasl-username: required with --sasl-mechanism PLAIN")
	bad(Config{SASL: SASL{Mechanism: ScramSHA256, Username: "u"}}, "--sasl-password-file: required", PasswordEnv)
	bad(Config{SASL: SASL{Mechanism: ScramSHA256, Username: "u", PasswordFile: missing}}, "--sasl-password-file", "no such file")
	bad(Config{SASL: SASL{Mechanism: ScramSHA256, Username: "u", PasswordFile: empty}}, "--sasl-password-file", "empty")
	bad(Config{SASL: SASL{Mechanism: ScramSHA256, Username: "u", PasswordFile: pw, Password: testPassword}}, "give the password one way")
	bad(Config{SASL: SASL{Mechanism: Plain, Username: "u", Password: "p", OAuthTokenFile: token}}, "--sasl-oauth-token-file: only used with")
	bad(Config{SASL: SASL{Mechanism: OAuthBearer}}, "--sasl-oauth-token-file: required")
	bad(Config{SASL: SASL{Mechanism: OAuthBearer, OAuthTokenFile: empty}}, "--sasl-oauth-token-file", "empty")
	bad(Config{SASL: SASL{Mechanism: OAuthBearer, OAuthTokenFile: token, Username: "u", Password: testPassword}},
		"--sasl-username: not used with OAUTHBEARER", PasswordEnv+": not used")
	bad(Config{SASL: SASL{Username: "u", Password: testPassword}}, "--sasl-username: set, but --sasl-mechanism is empty", PasswordEnv)
	// Every problem is reported at once.
	bad(Config{TLS: TLS{KeyFile: "k"}, SASL: SASL{Mechanism: "X"}}, "--tls-key", "--sasl-mechanism")
}

func TestWarnings(t *testing.T) {
	c := Config{SASL: SASL{Mechanism: Plain}}
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "clear text") {
		t.Errorf("PLAIN without TLS: warnings %q", w)
	}
	c.TLS.Enabled = true
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("PLAIN over TLS: warnings %q", w)
	}
	c = Config{SASL: SASL{Mechanism: ScramSHA256}}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("SCRAM without TLS: warnings %q", w)
	}
}

// TestSecretsNeverPrinted formats a config with a password and a password
// file in every way a log line or an error might.
func TestSecretsNeverPrinted(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []Config{
		{TLS: TLS{Enabled: true}, SASL: SASL{Mechanism: Plain, Username: "alice", Password: testPassword}},
		{SASL: SASL{Mechanism: ScramSHA256, Username: "alice", PasswordFile: writeFile(t, dir, "pw", testPassword)}},
		{SASL: SASL{Mechanism: OAuthBearer, OAuthTokenFile: writeFile(t, dir, "tok", testPassword)}},
	} {
		var outs []string
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			outs = append(outs, fmt.Sprintf(verb, c), fmt.Sprintf(verb, &c), fmt.Sprintf(verb, c.SASL.Password))
		}
		// The secret inside a struct that is printed as a whole.
		outs = append(outs, fmt.Sprintf("%+v", struct{ C Config }{c}), fmt.Sprintf("%+v", c.SASL))
		js, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(js))
		var text, jsn bytes.Buffer
		slog.New(slog.NewTextHandler(&text, nil)).Info("start", "kafka", c, "password", c.SASL.Password)
		slog.New(slog.NewJSONHandler(&jsn, nil)).Info("start", "kafka", c, "sasl", c.SASL)
		outs = append(outs, text.String(), jsn.String())
		for _, o := range outs {
			if strings.Contains(o, testPassword) {
				t.Errorf("secret printed: %s", o)
			}
		}
		if s := c.String(); !strings.Contains(s, "sasl="+string(c.SASL.Mechanism)) {
			t.Errorf("String() %q does not describe the mechanism", s)
		}
		t.Logf("%s | %s", c, strings.TrimSpace(text.String()))
	}
}

// TestOAuthBearerTokenFile checks the OAUTHBEARER client message carries
// the token file's current content, read again on every authentication.
// kfake has no OAUTHBEARER, so the mechanism is exercised directly.
func TestOAuthBearerTokenFile(t *testing.T) {
	dir := t.TempDir()
	tok := writeFile(t, dir, "token", "first-token\n")
	c := Config{SASL: SASL{Mechanism: "oauthbearer", OAuthTokenFile: tok}}
	opts, err := c.Opts()
	if err != nil {
		t.Fatal(err)
	}
	if len(opts) != 1 {
		t.Fatalf("%d options, want 1 (kgo.SASL)", len(opts))
	}
	m := c.SASL.mechanism()
	if m.Name() != "OAUTHBEARER" {
		t.Fatalf("mechanism %q", m.Name())
	}
	first := func() string {
		t.Helper()
		_, msg, err := m.Authenticate(context.Background(), "broker:9093")
		if err != nil {
			t.Fatal(err)
		}
		return string(msg)
	}
	if got := first(); !strings.Contains(got, "auth=Bearer first-token\x01") {
		t.Errorf("client first message %q lacks the token", got)
	}
	writeFile(t, dir, "token", "rotated-token")
	if got := first(); !strings.Contains(got, "auth=Bearer rotated-token\x01") {
		t.Errorf("after rotation, client first message %q lacks the new token", got)
	}
	if err := os.Remove(tok); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Authenticate(context.Background(), "broker:9093"); err == nil || !strings.Contains(err.Error(), "--sasl-oauth-token-file") {
		t.Errorf("missing token file: error %v, want one naming --sasl-oauth-token-file", err)
	}
}

func TestMechanismNames(t *testing.T) {
	for _, m := range Mechanisms {
		c := SASL{Mechanism: m, Username: "u", Password: "p", OAuthTokenFile: "f"}
		if got := c.mechanism().Name(); got != string(m) {
			t.Errorf("%s: franz-go mechanism %q", m, got)
		}
	}
	if (SASL{}).mechanism() != nil {
		t.Error("no mechanism configured, but got one")
	}
}
