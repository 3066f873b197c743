// Package interop checks that valora's wire format and schemas stand on
// their own: records written by clients that share no code with valora are
// scored, and valora's output is read by them.
//
//   - Debian's kcat (librdkafka) produces the input records, which a Python
//     script encodes with fastavro from the .avsc files in schemas/ only,
//     and reads valora's output topic back;
//   - the same script consumes the output with the confluent-kafka client
//     and decodes the TierChange records with tier_change.avsc only, and
//     rebuilds every customer's current profile from the compacted profile
//     topic with customer_profile.avsc only, which must equal the lookup's.
//
// The test runs the valora binary as a subprocess against the real broker
// named by VALORA_TEST_BROKERS or, without it, against the embedded broker
// of `valora dev --broker-only`. It skips when kcat, Python or the Python
// packages are missing (internal/interop/setup.sh installs them), unless
// VALORA_REQUIRE_INTEROP=1 turns the skip into a failure.
package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"valora/internal/kafkatest"
	"valora/processor"
)

const (
	// envRequire set to 1 makes a missing tool fail the test instead of
	// skipping it.
	envRequire = "VALORA_REQUIRE_INTEROP"
	// envPython names the Python interpreter that has the packages of
	// requirements.txt.
	envPython = "VALORA_PYTHON"
	// envVenv is the virtualenv setup.sh creates (default below).
	envVenv = "VALORA_PY_VENV"

	partitions = 3
)

// missing skips the test because a tool is not installed, or fails it when
// VALORA_REQUIRE_INTEROP=1.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(envRequire) == "1" {
		t.Fatalf("%s (%s=1 forbids skipping)", msg, envRequire)
	}
	t.Skipf("%s (set %s=1 to fail instead of skipping)", msg, envRequire)
}

// Event times: a fixed day in the past, so that the scores do not depend on
// the wall clock (valora evaluates a customer at event time).
var t0 = time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC).UnixMilli()

const (
	hour = int64(time.Hour / time.Millisecond)
	day  = 24 * hour
)

// input is one record that the Python script encodes and kcat produces.
type input struct {
	phase  int
	topic  string // "purchases" or "interactions"
	key    string
	record map[string]any
}

func purchase(phase int, id, customer string, at int64, kind string, amount int64, currency, channel string, category any) input {
	return input{phase: phase, topic: "purchases", key: customer, record: map[string]any{
		"event_id": id, "customer_id": customer, "occurred_at": at, "kind": kind,
		"amount_minor": amount, "currency": currency, "channel": channel,
		"category": category, "items": 1,
	}}
}

func interaction(phase int, id, customer string, at int64, channel, typ string, satisfaction any, attrs map[string]string) input {
	return input{phase: phase, topic: "interactions", key: customer, record: map[string]any{
		"event_id": id, "customer_id": customer, "occurred_at": at, "channel": channel,
		"type": typ, "satisfaction": satisfaction, "attributes": attrs,
	}}
}

// scenario: alice buys her way from new_customers to champions; bob buys
// in EUR and refunds it; carol is a prospect who complains, then (phase 2,
// produced once her first change is out, so that the topics' interleaving
// cannot matter) buys in GBP while at risk.
var scenario = []input{
	purchase(1, "p-a1", "alice", t0, "PURCHASE", 2000, "USD", "WEB", "books"),
	purchase(1, "p-a2", "alice", t0+day, "PURCHASE", 15000, "USD", "APP", nil),
	purchase(1, "p-a3", "alice", t0+2*day, "PURCHASE", 100000, "USD", "STORE", "electronics"),
	// Consent changes no tier: a version with no tier change.
	interaction(1, "i-a4", "alice", t0+2*day+hour, "EMAIL", "consent_granted", nil, map[string]string{}),
	purchase(1, "p-b1", "bob", t0, "PURCHASE", 10000, "EUR", "STORE", nil),
	purchase(1, "p-b2", "bob", t0+hour, "REFUND", 10000, "EUR", "STORE", nil),
	interaction(1, "i-c1", "carol", t0, "WEB", "visit", nil, map[string]string{"campaign": "spring", "page": "/pricing"}),
	interaction(1, "i-c2", "carol", t0+hour, "CHAT", "complaint", 2, map[string]string{}),
	purchase(2, "p-c3", "carol", t0+2*hour, "PURCHASE", 4500, "GBP", "APP", nil),
}

// tierChange holds the TierChange fields the test checks, as the Python
// script prints them (the model's fields are logged, not checked).
type tierChange struct {
	EventID        string  `json:"event_id"`
	CustomerID     string  `json:"customer_id"`
	Version        int64   `json:"version"`
	OccurredAt     int64   `json:"occurred_at"`
	Cause          string  `json:"cause"`
	PreviousTier   *string `json:"previous_tier"`
	Tier           string  `json:"tier"`
	ChurnRisk      bool    `json:"churn_risk"`
	LifecycleStage string  `json:"lifecycle_stage"`
	RecencyDays    *int32  `json:"recency_days"`
	Frequency      int64   `json:"frequency"`
	Monetary       int64   `json:"monetary"`
	Currency       string  `json:"currency"`
	RScore         int32   `json:"r_score"`
	FScore         int32   `json:"f_score"`
	MScore         int32   `json:"m_score"`
	PolicyVersion  string  `json:"policy_version"`
	Action         *string `json:"action"`
}

func ptr[T any](v T) *T { return &v }

// change builds an expected TierChange under the default policy (USD base,
// EUR at 1.08, GBP at 1.27).
func change(customer string, version, at int64, cause string, prev *string, tier, stage string,
	recency *int32, freq, monetary int64, r, f, m int32, action string) tierChange {
	return tierChange{
		EventID: customer + ":" + strconv.FormatInt(version, 10), CustomerID: customer,
		Version: version, OccurredAt: at, Cause: cause, PreviousTier: prev, Tier: tier,
		LifecycleStage: stage, RecencyDays: recency, Frequency: freq, Monetary: monetary,
		Currency: "USD", RScore: r, FScore: f, MScore: m, PolicyVersion: "default-1",
		Action: ptr(action),
	}
}

var expected = map[string][]tierChange{
	"alice": {
		change("alice", 1, t0, "PURCHASE", nil, "new_customers", "new", ptr[int32](0), 1, 2000, 5, 1, 1, "nurture"),
		change("alice", 2, t0+day, "PURCHASE", ptr("new_customers"), "loyal", "new", ptr[int32](0), 2, 17000, 5, 2, 3, "retain"),
		change("alice", 3, t0+2*day, "PURCHASE", ptr("loyal"), "champions", "new", ptr[int32](0), 3, 117000, 5, 3, 5, "retain"),
	},
	"bob": {
		change("bob", 1, t0, "PURCHASE", nil, "potential_loyalist", "new", ptr[int32](0), 1, 10800, 5, 1, 2, "grow"),
		change("bob", 2, t0+hour, "REFUND", ptr("potential_loyalist"), "new_customers", "new", ptr[int32](0), 1, 0, 5, 1, 1, "nurture"),
	},
	"carol": {
		// The complaint (version 2) changes nothing visible: no record.
		// A customer who has not purchased is not scored: R, F, M are 0.
		change("carol", 1, t0, "INTERACTION", nil, "prospect", "prospect", nil, 0, 0, 0, 0, 0, "acquire"),
		change("carol", 3, t0+2*hour, "PURCHASE", ptr("prospect"), "potential_loyalist", "at_risk", ptr[int32](0), 1, 5715, 5, 1, 2, "grow"),
	},
}

func expectedCount(phase int) int {
	n := 0
	for _, cs := range expected {
		for _, c := range cs {
			if phase >= 2 || c.EventID != "carol:3" {
				n++
			}
		}
	}
	return n
}

func TestKcatAndPythonInterop(t *testing.T) {
	start := time.Now()
	step := func(format string, args ...any) {
		t.Helper()
		t.Logf("[%5.1fs] %s", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}

	kcat, err := exec.LookPath("kcat")
	if err != nil {
		missing(t, "kcat is not installed: run internal/interop/setup.sh (or apt-get install kcat)")
	}
	python := findPython(t)
	schemasDir, err := filepath.Abs(filepath.Join("..", "..", "schemas"))
	if err != nil {
		t.Fatal(err)
	}
	tool, err := filepath.Abs("avro_tool.py")
	if err != nil {
		t.Fatal(err)
	}
	kc := kcatRunner{bin: kcat}
	py := pyRunner{python: python, tool: tool, schemas: schemasDir}

	valora := buildValora(t)
	step("built valora")

	brokers, kind := startBroker(t, valora)
	kc.brokers = brokers

	topics := processor.Topics{
		Interactions: kafkatest.Name(t, "interactions"),
		Purchases:    kafkatest.Name(t, "purchases"),
		TierChanges:  kafkatest.Name(t, "tier-changes"),
		DeadLetter:   kafkatest.Name(t, "dlq"),
	}
	profilesTopic := kafkatest.Name(t, "profiles") // valora creates it
	topicOf := map[string]string{"purchases": topics.Purchases, "interactions": topics.Interactions}
	b := kafkatest.Broker{Addrs: strings.Split(brokers, ","), Kind: kind}
	b.CreateTopics(t, partitions, topics.Interactions, topics.Purchases)
	step("created input topics (%d partitions each)", partitions)

	// The output topics are left to --create-topics.
	run := startProc(t, "valora run", valora, "run",
		"--brokers", brokers,
		"--group", kafkatest.Name(t, "group"),
		"--state-dir", t.TempDir(),
		"--interactions-topic", topics.Interactions,
		"--purchases-topic", topics.Purchases,
		"--tier-changes-topic", topics.TierChanges,
		"--dlq-topic", topics.DeadLetter,
		"--profiles-topic", profilesTopic,
		"--erasures-topic", kafkatest.Name(t, "erasures"),
		"--create-topics",
		"--http-addr", "127.0.0.1:0",
		"--log-format", "json")
	httpAddr := run.waitHTTP(t, 30*time.Second)
	waitReady(t, run, "http://"+httpAddr+"/readyz", 30*time.Second)
	step("valora run is ready (http %s)", httpAddr)

	// Python encodes every input from the .avsc files alone.
	encDir := t.TempDir()
	files := py.encode(t, encDir, scenario)
	step("python encoded %d records with fastavro", len(files))

	for phase := 1; phase <= 2; phase++ {
		n := kc.produce(t, topicOf, encDir, files, phase)
		want := expectedCount(phase)
		step("phase %d: kcat produced %d records; waiting for %d tier changes", phase, n, want)
		var got []kcatRecord
		kafkatest.Eventually(t, 30*time.Second, func() error {
			if err := run.exited(); err != nil {
				t.Fatalf("valora run exited: %v", err)
			}
			var err error
			got, err = kc.dump(topics.TierChanges)
			if err != nil {
				return err
			}
			if len(got) < want {
				return fmt.Errorf("%d of %d tier changes on %s", len(got), want, topics.TierChanges)
			}
			return nil
		})
		step("phase %d: kcat read %d tier changes", phase, len(got))
	}

	// kcat's view of the output: raw values, keys, partitions.
	out, err := kc.dump(topics.TierChanges)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != expectedCount(2) {
		t.Errorf("kcat read %d tier changes, want %d", len(out), expectedCount(2))
	}
	tcDir := t.TempDir()
	var tcFiles []string
	for _, r := range out {
		f := filepath.Join(tcDir, fmt.Sprintf("tc-%d-%d.avro", r.partition, r.offset))
		if err := os.WriteFile(f, r.value, 0o644); err != nil {
			t.Fatal(err)
		}
		tcFiles = append(tcFiles, f)
	}
	fromKcat := py.decode(t, "tier_change", tcFiles)
	step("python decoded kcat's %d values with tier_change.avsc", len(fromKcat))

	// The Python Kafka client's view of the same records.
	consumed := py.consume(t, brokers, topics.TierChanges, len(out))
	step("python consumer (confluent-kafka) read and decoded %d tier changes", len(consumed))
	if len(consumed) != len(out) {
		t.Errorf("python consumer read %d tier changes, kcat %d", len(consumed), len(out))
	}

	byCustomer := map[string][]tierChange{}
	for i, r := range out {
		key := string(r.key)
		d, ok := fromKcat[tcFiles[i]]
		if !ok {
			t.Fatalf("no decoding of %s", tcFiles[i])
		}
		var tc tierChange
		if err := json.Unmarshal(d.Value, &tc); err != nil {
			t.Fatalf("%s: %v", d.Value, err)
		}
		if tc.CustomerID != key {
			t.Errorf("%s[%d]@%d: key %q, customer_id %q", topics.TierChanges, r.partition, r.offset, key, tc.CustomerID)
		}
		if want := processor.PartitionOf(key, partitions); r.partition != want {
			t.Errorf("tier change of %s on partition %d, want %d (murmur2 of the key)", key, r.partition, want)
		}
		if i < len(consumed) {
			c := consumed[i]
			if c.Partition != r.partition || c.Offset != r.offset || c.Key != key || !jsonEqual(c.Value, d.Value) {
				t.Errorf("record %d: python consumer read %d@%d key %q %s; kcat read %d@%d key %q, decoded %s",
					i, c.Partition, c.Offset, c.Key, c.Value, r.partition, r.offset, key, d.Value)
			}
		}
		t.Logf("%s[%d]@%d %s", topics.TierChanges, r.partition, r.offset, d.Value)
		byCustomer[key] = append(byCustomer[key], tc)
	}
	for customer, want := range expected {
		got := byCustomer[customer]
		for i := 1; i < len(got); i++ {
			if got[i].Version <= got[i-1].Version {
				t.Errorf("%s: version %d after %d", customer, got[i].Version, got[i-1].Version)
			}
		}
		if !slices.EqualFunc(got, want, tierChangeEqual) {
			t.Errorf("%s: tier changes\n got: %s\nwant: %s", customer, mustJSON(got), mustJSON(want))
		}
	}
	for customer := range byCustomer {
		if _, ok := expected[customer]; !ok {
			t.Errorf("unexpected tier changes for %q", customer)
		}
	}

	// The inputs arrived byte for byte, on the partitions that valora's
	// key partitioner (and Java's) would have chosen.
	for _, logical := range []string{"purchases", "interactions"} {
		recs, err := kc.dump(topicOf[logical])
		if err != nil {
			t.Fatal(err)
		}
		var want [][]byte
		for i, in := range scenario {
			if in.topic == logical {
				b, err := os.ReadFile(filepath.Join(encDir, files[i]))
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, b)
			}
		}
		if len(recs) != len(want) {
			t.Errorf("%s: %d records, want %d", logical, len(recs), len(want))
		}
		for _, r := range recs {
			if p := processor.PartitionOf(string(r.key), partitions); r.partition != p {
				t.Errorf("%s: kcat put key %q on partition %d, valora looks for it on %d", logical, r.key, r.partition, p)
			}
			if !slices.ContainsFunc(want, func(w []byte) bool { return bytes.Equal(w, r.value) }) {
				t.Errorf("%s[%d]@%d: value %x is none of the encoded files", logical, r.partition, r.offset, r.value)
			}
		}
	}

	// Nothing was dead-lettered.
	dlq, err := kc.dump(topics.DeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range dlq {
		t.Errorf("dead-lettered: %s[%d]@%d key %q headers %s", topics.DeadLetter, r.partition, r.offset, r.key, kc.headers(topics.DeadLetter, r))
	}

	// valora's HTTP lookup finds each customer in the task that owns the
	// partition kcat wrote to.
	for customer, cs := range expected {
		last := cs[len(cs)-1]
		kafkatest.Eventually(t, 10*time.Second, func() error {
			var v struct {
				Task      int32 `json:"task"`
				Purchases int64 `json:"purchases"`
				Version   int64 `json:"version"`
			}
			code, body, err := httpGet("http://" + httpAddr + "/v1/customers/" + customer)
			if err != nil {
				return err
			}
			if code != http.StatusOK {
				return fmt.Errorf("GET /v1/customers/%s: %d %s", customer, code, body)
			}
			if err := json.Unmarshal(body, &v); err != nil {
				return fmt.Errorf("%s: %v", body, err)
			}
			if v.Task != processor.PartitionOf(customer, partitions) || v.Purchases != last.Frequency || v.Version < last.Version {
				return fmt.Errorf("GET /v1/customers/%s: task %d, purchases %d, version %d; want task %d, purchases %d, version >= %d",
					customer, v.Task, v.Purchases, v.Version, processor.PartitionOf(customer, partitions), last.Frequency, last.Version)
			}
			return nil
		})
	}
	step("checked %d tier changes, inputs, dead-letter topic and HTTP state", len(out))

	// Python rebuilds the current profile of every customer from the
	// compacted profile topic and customer_profile.avsc alone; each equals
	// the lookup's answer, field by field.
	kafkatest.Eventually(t, 30*time.Second, func() error {
		profiles := py.latest(t, brokers, profilesTopic)
		if len(profiles) != len(expected) {
			return fmt.Errorf("python rebuilt %d profiles, want %d", len(profiles), len(expected))
		}
		for _, d := range profiles {
			code, body, err := httpGet("http://" + httpAddr + "/v1/customers/" + d.Key)
			if err != nil {
				return err
			}
			if code != http.StatusOK {
				return fmt.Errorf("GET /v1/customers/%s: %d %s", d.Key, code, body)
			}
			if diff := profileDiff(d.Value, body); diff != "" {
				return fmt.Errorf("%s: the profile topic and the lookup differ:\n%s", d.Key, diff)
			}
		}
		return nil
	})
	step("python rebuilt %d profiles from %s, equal to the lookup's", len(expected), profilesTopic)

	run.stop(t, 30*time.Second)
	step("valora run exited 0 after SIGTERM")
}

// profileDiff compares a profile decoded by Python with the lookup's JSON
// body: every field of the profile must be in the body with an equal value,
// and a null one absent. It returns the differences, one per line.
func profileDiff(profile, lookup json.RawMessage) string {
	var p, l map[string]any
	if err := json.Unmarshal(profile, &p); err != nil {
		return err.Error()
	}
	if err := json.Unmarshal(lookup, &l); err != nil {
		return err.Error()
	}
	var diff []string
	for k, v := range p {
		got, ok := l[k]
		switch {
		case v == nil && ok:
			diff = append(diff, fmt.Sprintf("%s: null in the profile, %s in the lookup", k, mustJSON(got)))
		case v != nil && mustJSON(v) != mustJSON(got):
			diff = append(diff, fmt.Sprintf("%s: %s in the profile, %s in the lookup", k, mustJSON(v), mustJSON(got)))
		}
	}
	slices.Sort(diff)
	return strings.Join(diff, "\n")
}

// tierChangeEqual compares got with want field by field.
func tierChangeEqual(got, want tierChange) bool {
	return mustJSON(got) == mustJSON(want)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return mustJSON(x) == mustJSON(y)
}

func httpGet(url string) (int, []byte, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, bytes.TrimSpace(body), err
}

// findPython returns the interpreter named by VALORA_PYTHON, else the one
// of setup.sh's virtualenv, else python3; it must import fastavro and
// confluent_kafka.
func findPython(t *testing.T) string {
	t.Helper()
	var candidates []string
	if p := os.Getenv(envPython); p != "" {
		candidates = append(candidates, p)
	} else {
		venv := os.Getenv(envVenv)
		if venv == "" {
			if home, err := os.UserHomeDir(); err == nil {
				venv = filepath.Join(home, ".cache", "valora-py")
			}
		}
		if venv != "" {
			candidates = append(candidates, filepath.Join(venv, "bin", "python"))
		}
		candidates = append(candidates, "python3")
	}
	var problems []string
	for _, c := range candidates {
		p, err := exec.LookPath(c)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: not found", c))
			continue
		}
		out, err := exec.Command(p, "-c",
			"import fastavro, confluent_kafka; print(fastavro.__version__, confluent_kafka.__version__, confluent_kafka.libversion()[0])").CombinedOutput()
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s", p, lastLine(out)))
			continue
		}
		v := strings.Fields(string(out))
		if len(v) == 3 {
			t.Logf("python: %s (fastavro %s, confluent-kafka %s, librdkafka %s)", p, v[0], v[1], v[2])
		}
		return p
	}
	missing(t, "no Python with fastavro and confluent-kafka (%s): run internal/interop/setup.sh, which installs "+
		"internal/interop/requirements.txt into a virtualenv, or point %s at a Python that has them",
		strings.Join(problems, "; "), envPython)
	return ""
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// buildValora builds the valora command into a temporary directory.
func buildValora(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "valora")
	cmd := exec.Command("go", "build", "-o", bin, "valora/cmd/valora")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build valora/cmd/valora: %v\n%s", err, out)
	}
	return bin
}

var brokerLine = regexp.MustCompile(`(?m)^broker: (\S+) `)

// startBroker returns the real broker of VALORA_TEST_BROKERS, or starts
// `valora dev --broker-only` and returns its embedded broker.
func startBroker(t *testing.T, valora string) (addrs, kind string) {
	t.Helper()
	if v := os.Getenv(kafkatest.EnvBrokers); v != "" {
		t.Logf("broker: real Apache Kafka at %s (%s)", v, kafkatest.EnvBrokers)
		return v, "kafka"
	}
	dev := startProc(t, "valora dev", valora, "dev", "--broker-only", "--kafka-port", "0", "--partitions", "1")
	kafkatest.Eventually(t, 30*time.Second, func() error {
		if err := dev.exited(); err != nil {
			t.Fatalf("valora dev exited: %v", err)
		}
		if m := brokerLine.FindStringSubmatch(dev.stdout.String()); m != nil {
			addrs = m[1]
			return nil
		}
		return errors.New("valora dev has not printed its broker address")
	})
	t.Cleanup(func() { dev.stop(t, 10*time.Second) })
	t.Logf("broker: embedded kfake of `valora dev --broker-only` at %s (set %s to run against a real broker)", addrs, kafkatest.EnvBrokers)
	return addrs, "kfake"
}

// proc is a subprocess that the test started.
type proc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	err            error // set before done is closed
}

// startProc starts bin with args, without the caller's VALORA_* variables
// (they would set flags). It is killed at cleanup if still running.
func startProc(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, stdout: new(syncBuffer), stderr: new(syncBuffer), done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VALORA_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s stderr (last 4 KiB):\n%s", name, tail(p.stderr.String(), 4096))
		}
	})
	return p
}

// exited returns nil while the process runs, else how it ended.
func (p *proc) exited() error {
	select {
	case <-p.done:
		if p.err == nil {
			return errors.New("exit status 0")
		}
		return p.err
	default:
		return nil
	}
}

// stop sends SIGTERM and fails the test unless the process exits 0 within
// timeout.
func (p *proc) stop(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(timeout):
			t.Errorf("%s did not exit within %v of SIGTERM", p.name, timeout)
			_ = p.cmd.Process.Kill()
			<-p.done
			return
		}
	}
	if p.err != nil {
		t.Errorf("%s: %v", p.name, p.err)
	}
}

// waitHTTP returns the address from valora's "http listening" log line.
func (p *proc) waitHTTP(t *testing.T, timeout time.Duration) string {
	t.Helper()
	var addr string
	kafkatest.Eventually(t, timeout, func() error {
		if err := p.exited(); err != nil {
			t.Fatalf("%s exited: %v", p.name, err)
		}
		sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
		for sc.Scan() {
			var l struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "http listening" && l.Addr != "" {
				addr = l.Addr
				return nil
			}
		}
		return errors.New(`no "http listening" log line yet`)
	})
	return addr
}

func waitReady(t *testing.T, p *proc, url string, timeout time.Duration) {
	t.Helper()
	kafkatest.Eventually(t, timeout, func() error {
		if err := p.exited(); err != nil {
			t.Fatalf("%s exited: %v", p.name, err)
		}
		code, body, err := httpGet(url)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("GET %s: %d %s", url, code, body)
		}
		return nil
	})
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// kcatRunner runs Debian's kcat against the broker.
type kcatRunner struct {
	bin     string
	brokers string
}

// common are the options of every kcat call: no config file, and fetches
// that return at once (the default waits up to 500 ms per empty fetch).
func (k kcatRunner) common() []string {
	return []string{"-F", "/dev/null", "-b", k.brokers, "-X", "fetch.wait.max.ms=10"}
}

func (k kcatRunner) run(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.bin, append(k.common(), args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("kcat %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// produce sends the phase's inputs, one kcat call per topic and key, each
// file as one message. murmur2_random is the Java client's (and valora's)
// key partitioner; librdkafka's default, consistent_random (CRC32), would
// put keys on other partitions, which valora's HTTP lookup (and any other
// producer) would not agree with. Idempotence keeps a key's records in order.
func (k kcatRunner) produce(t *testing.T, topicOf map[string]string, dir string, files []string, phase int) int {
	t.Helper()
	type group struct{ topic, key string }
	var order []group
	byGroup := map[group][]string{}
	n := 0
	for i, in := range scenario {
		if in.phase != phase {
			continue
		}
		g := group{topicOf[in.topic], in.key}
		if _, ok := byGroup[g]; !ok {
			order = append(order, g)
		}
		byGroup[g] = append(byGroup[g], filepath.Join(dir, files[i]))
		n++
	}
	for _, g := range order {
		args := []string{"-P", "-t", g.topic, "-k", g.key,
			"-X", "partitioner=murmur2_random", "-X", "enable.idempotence=true"}
		if _, err := k.run(append(args, byGroup[g]...)...); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

type kcatRecord struct {
	partition int32
	offset    int64
	key       []byte
	value     []byte
}

// dump reads a topic from the beginning to its end. Each record is printed
// as a header line with the lengths of the key and the value, then their
// raw bytes, so binary values survive.
func (k kcatRunner) dump(topic string) ([]kcatRecord, error) {
	out, err := k.run("-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p %o %K %S\n%k%s\n")
	if err != nil {
		return nil, err
	}
	var recs []kcatRecord
	for len(out) > 0 {
		nl := bytes.IndexByte(out, '\n')
		if nl < 0 {
			return nil, fmt.Errorf("kcat %s: truncated header %q", topic, out)
		}
		var r kcatRecord
		var klen, vlen int
		if _, err := fmt.Sscanf(string(out[:nl]), "%d %d %d %d", &r.partition, &r.offset, &klen, &vlen); err != nil {
			return nil, fmt.Errorf("kcat %s: header %q: %v", topic, out[:nl], err)
		}
		out = out[nl+1:]
		klen, vlen = max(klen, 0), max(vlen, 0)
		if len(out) < klen+vlen+1 || out[klen+vlen] != '\n' {
			return nil, fmt.Errorf("kcat %s: record %d@%d truncated", topic, r.partition, r.offset)
		}
		r.key = out[:klen]
		r.value = out[klen : klen+vlen]
		out = out[klen+vlen+1:]
		recs = append(recs, r)
	}
	slices.SortFunc(recs, func(a, b kcatRecord) int {
		if a.partition != b.partition {
			return int(a.partition - b.partition)
		}
		return int(a.offset - b.offset)
	})
	return recs, nil
}

// headers returns one record's headers as kcat prints them (diagnostics).
func (k kcatRunner) headers(topic string, r kcatRecord) string {
	out, err := k.run("-C", "-t", topic, "-p", strconv.Itoa(int(r.partition)), "-o", strconv.FormatInt(r.offset, 10),
		"-c", "1", "-e", "-q", "-f", "%h")
	if err != nil {
		return err.Error()
	}
	return string(out)
}

// pyRunner runs avro_tool.py.
type pyRunner struct {
	python, tool, schemas string
}

func (p pyRunner) run(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.python, append([]string{p.tool, args[0], "--schemas", p.schemas}, args[1:]...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("avro_tool.py %s: %v\n%s", args[0], err, stderr.String())
	}
	return out
}

// encode has the script write each input to a file in dir and returns the
// file names, in the order of scenario.
func (p pyRunner) encode(t *testing.T, dir string, in []input) []string {
	t.Helper()
	var stdin bytes.Buffer
	var names []string
	for i, r := range in {
		name := fmt.Sprintf("%d-%03d.%s.%s.avro", r.phase, i, r.topic, r.key)
		schema := strings.TrimSuffix(r.topic, "s") // purchases → purchase
		stdin.WriteString(mustJSON(map[string]any{"schema": schema, "file": name, "record": r.record}) + "\n")
		names = append(names, name)
	}
	out := p.run(t, stdin.Bytes(), "encode", "--out", dir)
	if n := bytes.Count(out, []byte("\n")); n != len(in) {
		t.Fatalf("avro_tool.py encode wrote %d files, want %d:\n%s", n, len(in), out)
	}
	return names
}

type decoded struct {
	File        string          `json:"file"`
	Partition   int32           `json:"partition"`
	Offset      int64           `json:"offset"`
	Key         string          `json:"key"`
	Fingerprint string          `json:"fingerprint"`
	Value       json.RawMessage `json:"value"`
}

func parseLines(t *testing.T, out []byte) []decoded {
	t.Helper()
	var ds []decoded
	for line := range bytes.Lines(out) {
		var d decoded
		if err := json.Unmarshal(line, &d); err != nil {
			t.Fatalf("avro_tool.py printed %q: %v", line, err)
		}
		ds = append(ds, d)
	}
	return ds
}

// decode decodes files holding one value each, by file name.
func (p pyRunner) decode(t *testing.T, schema string, files []string) map[string]decoded {
	t.Helper()
	m := map[string]decoded{}
	for _, d := range parseLines(t, p.run(t, nil, append([]string{"decode", "--schema", schema}, files...)...)) {
		m[d.File] = d
	}
	return m
}

// latest rebuilds the current value of every key of a compacted profile
// topic with the confluent-kafka client.
func (p pyRunner) latest(t *testing.T, brokers, topic string) []decoded {
	t.Helper()
	return parseLines(t, p.run(t, nil, "latest", "--schema", "customer_profile", "--brokers", brokers,
		"--topic", topic, "--timeout", "30"))
}

// consume reads n TierChanges with the confluent-kafka client, in partition
// and offset order.
func (p pyRunner) consume(t *testing.T, brokers, topic string, n int) []decoded {
	t.Helper()
	return parseLines(t, p.run(t, nil, "consume", "--schema", "tier_change", "--brokers", brokers,
		"--topic", topic, "--count", strconv.Itoa(n), "--timeout", "30"))
}
