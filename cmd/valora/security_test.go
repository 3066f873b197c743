package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/certtest"
)

// The tests of this file run against in-process kfake clusters with TLS and
// SASL, also when VALORA_TEST_BROKERS names a real broker (which has
// neither).

const (
	saslUser = "valora-svc"
	saslPass = "pa55-never-printed"
)

func mapEnv(m map[string]string) env { return func(k string) string { return m[k] } }

// secureCluster starts a kfake cluster that requires TLS (certificates of
// pki) and SASL SCRAM-SHA-512 for saslUser, with the input topics.
func secureCluster(t *testing.T, pki *certtest.PKI) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(pki.ServerConfig(false)), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", saslUser, saslPass),
		kfake.SeedTopics(2, "interactions", "purchases", "customer-tier-changes", "valora-dlq"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	t.Logf("kfake with TLS and SASL SCRAM-SHA-512 at %s", c.ListenAddrs()[0])
	return c.ListenAddrs()[0]
}

func runCmd(t *testing.T, ctx context.Context, args []string, getenv env) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, getenv, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestSecurityFlagsBadValues checks that a bad security or HTTP setting
// stops run, gen and import (a dry run too) at start, with exit code 2, a
// message naming the flag, and nothing opened.
func TestSecurityFlagsBadValues(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	pki := certtest.New(t, "flags")
	f := func(args []string, envs map[string]string, wants ...string) {
		t.Helper()
		code, _, stderr := runCmd(t, context.Background(), args, mapEnv(envs))
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, stderr)
		}
		for _, w := range wants {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: stderr %q does not contain %q", args, stderr, w)
			}
		}
		if strings.Contains(stderr, saslPass) {
			t.Errorf("%v: stderr shows the password: %q", args, stderr)
		}
		if _, err := os.Stat(state); err == nil {
			t.Errorf("%v: the state directory was created before validation failed", args)
		}
	}
	for _, cmd := range []string{"run", "gen", "import"} {
		base := []string{cmd}
		switch cmd {
		case "run":
			base = append(base, "--state-dir", state)
		case "import":
			base = append(base, "--dry-run", calCDNOWSample)
		}
		args := func(a ...string) []string { return append(append([]string{}, base...), a...) }
		f(args("--sasl-mechanism", "FOO"), nil,
			`--sasl-mechanism: unknown "FOO" (want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER)`)
		f(args(), map[string]string{"VALORA_SASL_MECHANISM": "FOO"}, `--sasl-mechanism: unknown "FOO"`)
		f(args("--tls", "--tls-key", pki.ClientKeyFile), nil, "--tls-key: set without --tls-cert")
		f(args("--tls-ca", pki.CAFile), nil, "--tls-ca: set, but TLS is off")
		f(args("--tls", "--tls-ca", filepath.Join(dir, "nope.pem")), nil, "--tls-ca", "nope.pem")
		f(args("--sasl-mechanism", "PLAIN", "--sasl-username", "u"), nil, "--sasl-password-file: required", "VALORA_SASL_PASSWORD")
		f(args("--sasl-mechanism", "SCRAM-SHA-256"), map[string]string{"VALORA_SASL_PASSWORD": saslPass}, "--sasl-username: required")
		f(args(), map[string]string{"VALORA_SASL_PASSWORD": saslPass}, "VALORA_SASL_PASSWORD: set, but --sasl-mechanism is empty")
		f(args("--sasl-mechanism", "OAUTHBEARER"), nil, "--sasl-oauth-token-file: required")
	}
	f([]string{"run", "--state-dir", state, "--http-lookup", "maybe"}, nil, `--http-lookup: "maybe" is not on or off`)
	f([]string{"run", "--state-dir", state, "--http-tls-cert", pki.ServerCertFile}, nil, "http_tls_cert: set without http_tls_key")
	f([]string{"run", "--state-dir", state, "--http-token-file", filepath.Join(dir, "missing-token")}, nil, "http_token_file", "missing-token")
}

// TestHelpShowsNoSecret checks that --help lists the security flags and
// never the password, even when it is set in the environment.
func TestHelpShowsNoSecret(t *testing.T) {
	envs := mapEnv(map[string]string{"VALORA_SASL_PASSWORD": saslPass, "VALORA_SASL_USERNAME": saslUser})
	for _, cmd := range []string{"run", "gen", "import"} {
		_, _, help := runCmd(t, context.Background(), []string{cmd, "--help"}, envs)
		for _, flag := range []string{"-tls", "-tls-ca", "-tls-cert", "-tls-key", "-tls-server-name", "-sasl-mechanism",
			"-sasl-username", "-sasl-password-file", "-sasl-oauth-token-file", "VALORA_SASL_PASSWORD"} {
			if !strings.Contains(help, flag) {
				t.Errorf("%s --help lacks %s", cmd, flag)
			}
		}
		if strings.Contains(help, saslPass) {
			t.Errorf("%s --help shows the password", cmd)
		}
	}
	_, _, help := runCmd(t, context.Background(), []string{"run", "--help"}, envs)
	for _, flag := range []string{"-http-tls-cert", "-http-tls-key", "-http-lookup", "-http-token-file"} {
		if !strings.Contains(help, flag) {
			t.Errorf("run --help lacks %s", flag)
		}
	}
}

// TestGenOverTLSAndSASL runs `valora gen` end to end against a broker that
// requires TLS and SCRAM-SHA-512, the password coming from the
// environment, and reads the records back.
func TestGenOverTLSAndSASL(t *testing.T) {
	pki := certtest.New(t, "gen")
	addr := secureCluster(t, pki)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, stdout, stderr := runCmd(t, ctx, []string{"gen", "--brokers", addr, "--customers", "50", "--events", "300",
		"--tls", "--tls-ca", pki.CAFile, "--sasl-mechanism", "scram-sha-512", "--sasl-username", saslUser},
		mapEnv(map[string]string{"VALORA_SASL_PASSWORD": saslPass}))
	if code != 0 {
		t.Fatalf("gen: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "produced 300 events") {
		t.Errorf("gen stdout: %q", stdout)
	}
	if strings.Contains(stdout+stderr, saslPass) {
		t.Errorf("gen printed the password:\n%s%s", stdout, stderr)
	}
	if !strings.Contains(stderr, "SCRAM-SHA-512") || !strings.Contains(stderr, "[redacted]") {
		t.Errorf("gen's start-up log does not describe the security settings: %q", stderr)
	}

	if n := readSecure(t, ctx, pki, addr, 300); n != 300 {
		t.Errorf("read back %d records, want 300", n)
	}
}

// secureClient is a client of the secureCluster at addr, with the
// security flags' own client options.
func secureClient(t *testing.T, pki *certtest.PKI, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	sec := securityFlags{tls: true, caFile: pki.CAFile, mechanism: "SCRAM-SHA-512", username: saslUser}
	secOpts, err := sec.clientOpts(mapEnv(map[string]string{"VALORA_SASL_PASSWORD": saslPass}), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(append(secOpts, kgo.SeedBrokers(addr)), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// readSecure reads the input topics of the secureCluster at addr until it
// has want records or ctx ends, and returns how many it read.
func readSecure(t *testing.T, ctx context.Context, pki *certtest.PKI, addr string, want int) int {
	t.Helper()
	cl := secureClient(t, pki, addr, kgo.ConsumeTopics("interactions", "purchases"))
	n := 0
	for n < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil && ctx.Err() == nil {
			t.Fatalf("consume: %v", err)
		}
		n += fs.NumRecords()
	}
	return n
}

// TestImportOverTLSAndSASL imports the CDNOW sample into a broker that
// requires TLS and SCRAM-SHA-512 and reads every row back; with a wrong
// password the import stops at once, exit 1, naming the cause and
// producing nothing.
func TestImportOverTLSAndSASL(t *testing.T) {
	pki := certtest.New(t, "import")
	addr := secureCluster(t, pki)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := []string{"import", "--brokers", addr, "--progress=false",
		"--tls", "--tls-ca", pki.CAFile, "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", saslUser}

	code, stdout, stderr := runCmd(t, ctx, append(args, "--json", calCDNOWSample), mapEnv(map[string]string{"VALORA_SASL_PASSWORD": saslPass + "-wrong"}))
	if code != 1 || !strings.Contains(stderr, "SASL authentication failed") || strings.Contains(stdout+stderr, saslPass) {
		t.Errorf("import with a wrong password: exit %d, want 1 with the cause and no password\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	ends, err := kadm.NewClient(secureClient(t, pki, addr)).ListEndOffsets(ctx, "interactions", "purchases")
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset != 0 {
			t.Errorf("the refused import produced: %s/%d ends at %d", o.Topic, o.Partition, o.Offset)
		}
	})

	code, stdout, stderr = runCmd(t, ctx, append(args, "--json", calCDNOWSample), mapEnv(map[string]string{"VALORA_SASL_PASSWORD": saslPass}))
	if code != 0 {
		t.Fatalf("import: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	var rep importReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("import summary %q: %v", stdout, err)
	}
	if rep.Purchases.Records != 6919 || strings.Contains(stdout+stderr, saslPass) {
		t.Errorf("import: %d purchases acknowledged, want 6919 (stderr %q)", rep.Purchases.Records, stderr)
	}
	if n := readSecure(t, ctx, pki, addr, 6919); n != 6919 {
		t.Errorf("read back %d records, want 6919", n)
	}
}

// TestRunExplainsConnectionFailures checks that `valora run` stops at start,
// before opening its state, with a message that says what is wrong: an
// untrusted certificate or a wrong password.
func TestRunExplainsConnectionFailures(t *testing.T) {
	pki := certtest.New(t, "broker")
	stranger := certtest.New(t, "stranger")
	addr := secureCluster(t, pki)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte(saslPass+"-wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := func(name string, args []string, wants ...string) {
		t.Helper()
		state := filepath.Join(dir, name)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		env := map[string]string{"VALORA_SASL_PASSWORD": saslPass}
		if slices.Contains(args, "--sasl-password-file") {
			env = nil // one way only: the flag and the variable together are refused
		}
		code, _, stderr := runCmd(t, ctx, append([]string{"run", "--brokers", addr, "--state-dir", state, "--http-addr", ""}, args...),
			mapEnv(env))
		if code != 1 {
			t.Errorf("%s: exit %d, want 1 (stderr %q)", name, code, stderr)
		}
		for _, w := range wants {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: stderr does not contain %q:\n%s", name, w, stderr)
			}
		}
		if strings.Contains(stderr, saslPass) {
			t.Errorf("%s: stderr shows the password:\n%s", name, stderr)
		}
		if _, err := os.Stat(state); err == nil {
			t.Errorf("%s: the state directory was created", name)
		}
		if el := time.Since(start); el > 10*time.Second {
			t.Errorf("%s: took %v to fail", name, el)
		}
		t.Logf("%s: %s", name, lastLine(stderr))
	}
	f("untrusted", []string{"--tls", "--tls-ca", stranger.CAFile, "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", saslUser},
		"certificate is not trusted", "--tls-ca")
	f("wrong-password", []string{"--tls", "--tls-ca", pki.CAFile, "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", saslUser,
		"--sasl-password-file", pwFile}, "SASL authentication failed", "--sasl-username")
	f("no-tls", []string{"--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", saslUser}, "TLS")
}

// TestRunOverTLSAndSASL starts `valora run` against a broker that requires
// TLS and SCRAM-SHA-512, with an HTTPS server whose lookup needs a token,
// waits until it owns its tasks, and stops it. Its log describes the
// security settings and never shows the password.
func TestRunOverTLSAndSASL(t *testing.T) {
	pki := certtest.New(t, "run")
	addr := secureCluster(t, pki)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "http-token")
	if err := os.WriteFile(tokenFile, []byte("lookup-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"run", "--brokers", addr, "--state-dir", filepath.Join(dir, "state"),
			"--http-addr", "127.0.0.1:0", "--http-tls-cert", pki.ServerCertFile, "--http-tls-key", pki.ServerKeyFile,
			"--http-token-file", tokenFile, "--create-topics", "--log-level", "debug",
			"--tls", "--tls-ca", pki.CAFile, "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", saslUser},
			mapEnv(map[string]string{"VALORA_SASL_PASSWORD": saslPass}), &bytes.Buffer{}, &stderr)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "tasks assigned") {
		select {
		case code := <-exit:
			t.Fatalf("valora run exited with %d:\n%s", code, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("valora run owns no task after 20 s:\n%s", stderr.String())
		}
	}
	// The customer lookup over HTTPS: a token is required.
	m := regexp.MustCompile(`msg="http listening" addr=(\S+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no http address in the log:\n%s", stderr.String())
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool()}}}
	lookup := func(token string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://"+m[1]+"/v1/customers/nobody", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("lookup over https: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := lookup(""); code != http.StatusUnauthorized {
		t.Errorf("lookup without a token: %d, want 401", code)
	}
	if code := lookup("lookup-token"); code != http.StatusNotFound {
		t.Errorf("lookup of an unknown customer with the token: %d, want 404", code)
	}
	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("valora run exited with %d", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("valora run did not stop")
	}
	log := stderr.String()
	if strings.Contains(log, saslPass) {
		t.Errorf("the log shows the password:\n%s", log)
	}
	for _, want := range []string{"kafka security", "sasl_mechanism=SCRAM-SHA-512", "[redacted]", "tls=true"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}
