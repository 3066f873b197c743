package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/gen"
	"valora/schemas"
)

var updateMetrics = flag.Bool("update", false, "rewrite "+exportedMetricsFile)

// exportedMetricsFile lists the metric families valora exports, one a
// line, sorted: the deployment tests (deploy/deploy_test.go) check the
// dashboard and the alert rules against it, and TestExportedMetricsFile
// keeps it equal to what the scorer's registry exports.
var exportedMetricsFile = filepath.Join("..", "..", "deploy", "testdata", "exported-metrics.txt")

// TestExportedMetricsFile checks that exportedMetricsFile lists exactly the
// metric families the registry of `valora run` and `valora dev`
// (newScorer) exports after traffic has been processed: the names of its
// collectors' descriptors (vectors with no series yet included) and of a
// scrape of /metrics. With -update it rewrites the file.
func TestExportedMetricsFile(t *testing.T) {
	names := exportedMetricNames(t)
	got := slices.Sorted(func(yield func(string) bool) {
		for n := range names {
			if !yield(n) {
				return
			}
		}
	})
	text := strings.Join(got, "\n") + "\n"
	if *updateMetrics {
		if err := os.WriteFile(exportedMetricsFile, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(exportedMetricsFile)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Fields(string(b))
	for _, n := range got {
		if !slices.Contains(want, n) {
			t.Errorf("valora exports %s, which %s lacks", n, exportedMetricsFile)
		}
	}
	for _, n := range want {
		if !names[n] {
			t.Errorf("%s lists %s, which valora does not export", exportedMetricsFile, n)
		}
	}
	if t.Failed() {
		t.Logf("after checking the dashboard and alert rules, rewrite it: go test ./cmd/valora -run TestExportedMetricsFile -update")
	}
}

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

// exportedMetricNames starts the scorer of `valora run` against an in-process
// kfake broker, feeds it generated traffic (and one undecodable record, for a
// dead letter) until it has applied records and published tier changes, then
// returns the union of the registry's descriptor names and the family names
// of a /metrics scrape.
func exportedMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	const partitions = 2
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var sf scorerFlags
	fs := flag.NewFlagSet("deploy-test", flag.ContinueOnError)
	sf.register(fs, "127.0.0.1:0")
	topics := []string{sf.interactions, sf.purchases, sf.tierChanges, sf.deadLetter}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]
	if err := fs.Parse([]string{"--brokers", addr, "--state-dir", t.TempDir(),
		"--http-addr", "127.0.0.1:0", "--commit-interval", "20ms"}); err != nil {
		t.Fatal(err)
	}
	s, err := newScorer(ctx, &sf, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("start the scorer: %v", err)
	}
	if s.ln == nil {
		t.Fatal("the scorer has no HTTP listener")
	}
	stop := runScorer(ctx, cancel, t, s)
	defer stop()

	// Traffic: generated customers, as `valora dev` produces them.
	var gf genFlags
	gfs := flag.NewFlagSet("deploy-test-gen", flag.ContinueOnError)
	gf.register(gfs, 300, 0)
	params, err := gf.params(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	gn, err := gen.New(params)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := newCodec(ctx, "", schemas.TopicNames{
		Interactions: sf.interactions, Purchases: sf.purchases, TierChanges: sf.tierChanges})
	if err != nil {
		t.Fatal(err)
	}
	pcl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer pcl.Close()
	prod := &producer{cl: pcl, codec: codec, interactions: sf.interactions, purchases: sf.purchases}
	if err := prod.run(ctx, gn, 3000, 0, 0); err != nil {
		t.Fatalf("produce traffic: %v", err)
	}
	bad := &kgo.Record{Topic: sf.interactions, Key: []byte("c-bad"), Value: []byte("not avro")}
	if err := pcl.ProduceSync(ctx, bad).FirstErr(); err != nil {
		t.Fatalf("produce a bad record: %v", err)
	}
	produced := float64(prod.produced.Load() + 1)

	deadline := time.Now().Add(30 * time.Second)
	for {
		st := s.proc.Stats()
		applied, dead, changes := float64(st.Applied), float64(st.DeadLettered), float64(st.TierChanges)
		if applied+dead >= produced && dead > 0 && changes > 0 {
			t.Logf("scorer applied %.0f records, dead-lettered %.0f, published %.0f tier changes", applied, dead, changes)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s the scorer applied %.0f and dead-lettered %.0f of %.0f records, %.0f tier changes",
				applied, dead, produced, changes)
		}
		time.Sleep(50 * time.Millisecond)
	}

	names := map[string]bool{}
	descs := make(chan *prometheus.Desc)
	go func() {
		s.reg.Describe(descs)
		close(descs)
	}()
	for d := range descs {
		m := fqNameRE.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no fqName in descriptor %s", d)
		}
		names[m[1]] = true
	}
	described := len(names)

	resp, err := http.Get("http://" + s.ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatalf("scrape /metrics: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape /metrics: status %d, %v", resp.StatusCode, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	scraped := 0
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 4 && f[0] == "#" && f[1] == "TYPE" {
			names[f[2]] = true
			scraped++
		}
	}
	stop()
	t.Logf("%d metric descriptors, %d families scraped from /metrics", described, scraped)
	for _, want := range []string{"valora_records_applied_total", "valora_kafka_fetch_bytes_total",
		"valora_pebble_disk_usage_bytes", "go_goroutines", "process_resident_memory_bytes"} {
		if !names[want] {
			t.Errorf("the scorer's registry lacks %s: the exported set is incomplete", want)
		}
	}
	return names
}
