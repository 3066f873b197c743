package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"valora/processor/score"
	"valora/schemas"
)

// TestDevLifetimeValue runs valora dev as a newcomer would (only the ports
// differ from the defaults) and checks that within 50 s every lifecycle
// stage and every value class has customers, per the scorer's metrics and
// the printed summary, and that the tier changes on the output topic carry
// the models' p_alive and clv.
func TestDevLifetimeValue(t *testing.T) {
	if testing.Short() {
		t.Skip("runs valora dev for up to 50 s; skipped with -short")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr syncBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"dev", "--kafka-port", "0", "--http-addr", "127.0.0.1:0", "--summary-interval", "2s"},
			noEnv, pw, &stderr)
		pw.Close()
	}()
	var out syncBuffer
	addrs := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		var broker string
		for sc.Scan() {
			line := sc.Text()
			out.Write([]byte(line + "\n"))
			if rest, ok := strings.CutPrefix(line, "broker: "); ok {
				broker = strings.Fields(rest)[0]
			}
			if rest, ok := strings.CutPrefix(line, "http:   "); ok {
				addrs <- [2]string{broker, rest}
			}
		}
	}()
	var broker, metricsURL string
	select {
	case a := <-addrs:
		broker, metricsURL = a[0], a[1]
	case code := <-exit:
		t.Fatalf("valora dev exited with %d before starting: %s", code, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("valora dev printed no HTTP address")
	}
	start := time.Now()

	// Poll the metrics until every stage and every class has customers.
	want := map[string][]string{
		"valora_customers_lifecycle":   {score.StageNew, score.StageActive, score.StageAtRisk, score.StageChurned, score.StageReactivated},
		"valora_customers_value_class": {score.ClassHighYield, score.ClassHighPotential, score.ClassBelowZero},
	}
	var counts map[string]map[string]float64
	missing := func() []string {
		var m []string
		for name, labels := range want {
			for _, l := range labels {
				if counts[name][l] <= 0 {
					m = append(m, name+"/"+l)
				}
			}
		}
		return m
	}
	deadline := start.Add(50 * time.Second)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for counts = scrapeGauges(t, metricsURL); len(missing()) > 0 && time.Now().Before(deadline); counts = scrapeGauges(t, metricsURL) {
		select {
		case <-tick.C:
		case code := <-exit:
			t.Fatalf("valora dev exited with %d: %s", code, stderr.String())
		}
	}
	if m := missing(); len(m) > 0 {
		t.Fatalf("after %v no customers in %v; counts %v", time.Since(start).Round(time.Millisecond), m, counts)
	}
	t.Logf("every stage and class seen after %v: stages %v, classes %v, late records %v", time.Since(start).Round(time.Millisecond),
		counts["valora_customers_lifecycle"], counts["valora_customers_value_class"], counts["valora_records_late_total"])
	if late := counts["valora_records_late_total"]; late["interactions"]+late["purchases"] > 0 {
		t.Errorf("late records %v: the history reached the scorer out of order", late)
	}

	// The tier changes carry the models' values: every buyer's p_alive and
	// clv, and some a value class.
	codec, err := newCodec(ctx, "", schemas.TopicNames{TierChanges: "customer-tier-changes"})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics("customer-tier-changes"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var buyers, classed int
	classes, treatments := map[string]bool{}, map[string]bool{}
	for buyers < 1000 {
		pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
		fs := cl.PollFetches(pctx)
		timedOut := pctx.Err() != nil
		pcancel()
		if timedOut {
			t.Fatalf("read %d buyers' tier changes in 10 s", buyers)
		}
		fs.EachRecord(func(r *kgo.Record) {
			var tc schemas.TierChange
			if err := codec.DecodeTierChange(r.Value, &tc); err != nil {
				t.Fatalf("decode tier change: %v", err)
			}
			if tc.Treatment == nil || tc.Relationship == nil || tc.RelationshipCostMinor == nil {
				t.Fatalf("tier change of %s (tier %s) names no treatment and relationship", tc.CustomerID, tc.Tier)
			}
			treatments[*tc.Treatment] = true
			if tc.Tier == "prospect" {
				return
			}
			buyers++
			if tc.PAlive == nil || tc.CLV == nil || tc.ExpectedPurchases == nil {
				t.Fatalf("tier change of buyer %s (tier %s) lacks the models' values: p_alive %v, clv %v", tc.CustomerID, tc.Tier, tc.PAlive, tc.CLV)
			}
			if p := *tc.PAlive; !(p >= 0 && p <= 1) || !(*tc.CLV >= 0) {
				t.Fatalf("tier change of %s: p_alive %v, clv %v", tc.CustomerID, p, *tc.CLV)
			}
			if tc.ValueClass != nil {
				classed++
				classes[*tc.ValueClass] = true
			}
		})
	}
	if len(treatments) < 4 {
		t.Errorf("treatments on the tier changes: %v, want the value-aware table's, at least four", treatments)
	}
	if len(classes) != 3 {
		t.Errorf("value classes on %d of %d buyers' tier changes: %v, want all three", classed, buyers, classes)
	}

	// The profiles exercise every field: categories, complaints and their
	// resolutions, survey scores, consent, preferred channels and each
	// risk reason.
	checkDevProfiles(ctx, t, broker)

	// The summary says which models run and counts the classes.
	wantLine := regexp.MustCompile(`customers per value class: high_yield=[1-9]\d* high_potential=[1-9]\d* below_zero=[1-9]\d*`)
	for !wantLine.MatchString(out.String()) && time.Now().Before(deadline.Add(5*time.Second)) {
		<-tick.C
	}
	summary := out.String()
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`models: BG/NBD r=0\.243 alpha=30\.898 a=0\.793 b=2\.426 .*Gamma-Gamma p=6\.25 q=3\.74 gamma=15\.44 .*the generator's own parameters`),
		regexp.MustCompile(`customers per stage: prospect=\d+ new=\d+ active=\d+ at_risk=\d+ churned=\d+ reactivated=\d+`),
		wantLine,
		regexp.MustCompile(`p_alive=[01]\.\d\d clv=\d+\.\d\d USD`),
		regexp.MustCompile(`customers per treatment: .*vip_care=[1-9]`),
		regexp.MustCompile(`treatment=\w+ \((dedicated|personal|automated|self_service)\)`),
	} {
		if !re.MatchString(summary) {
			t.Errorf("summary lacks %q:\n%s", re, summary)
		}
	}
	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("valora dev exited with %d: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("valora dev did not stop within 30 s of cancellation")
	}
}

// checkDevProfiles reads valora dev's profile topic until every profile
// field has been seen with a value (or fails after 20 s).
func checkDevProfiles(ctx context.Context, t *testing.T, broker string) {
	t.Helper()
	codec, err := newCodec(ctx, "", schemas.TopicNames{})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics("customer-profiles"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[string]bool{}
	want := []string{"categories", "several categories", "refund in a category", "favourite_category", "complaints",
		"complaints_resolved", "last_satisfaction", "contactable_channels", "preferred_channel",
		"risk_reason=complaint", "risk_reason=low_satisfaction", "risk_reason=inactivity", "p_alive"}
	missing := func() []string {
		var m []string
		for _, w := range want {
			if !seen[w] {
				m = append(m, w)
			}
		}
		return m
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		fs.EachRecord(func(r *kgo.Record) {
			if r.Value == nil {
				return // a tombstone
			}
			var p schemas.CustomerProfile
			if err := codec.DecodeProfile(r.Value, &p); err != nil {
				t.Fatalf("decode profile: %v", err)
			}
			seen["categories"] = seen["categories"] || len(p.Categories) > 0
			seen["several categories"] = seen["several categories"] || p.DistinctCategories > 1
			for _, c := range p.Categories {
				seen["refund in a category"] = seen["refund in a category"] || (c.Purchases > 0 && c.NetMinor <= 0)
			}
			seen["favourite_category"] = seen["favourite_category"] || p.FavouriteCategory != nil
			seen["complaints"] = seen["complaints"] || p.Complaints > 0
			seen["complaints_resolved"] = seen["complaints_resolved"] || p.ComplaintsResolved > 0
			seen["last_satisfaction"] = seen["last_satisfaction"] || p.LastSatisfaction != nil
			seen["contactable_channels"] = seen["contactable_channels"] || len(p.ContactableChannels) > 0
			seen["preferred_channel"] = seen["preferred_channel"] || p.PreferredChannel != nil
			seen["p_alive"] = seen["p_alive"] || p.PAlive != nil
			if p.RiskReason != nil {
				seen["risk_reason="+*p.RiskReason] = true
			}
		})
	}
	if m := missing(); len(m) > 0 {
		t.Errorf("the dev profiles never showed %v", m)
	}
}

// scrapeGauges reads every labelled sample of /metrics at url as
// name -> label value -> value (one label per series).
func scrapeGauges(t *testing.T, url string) map[string]map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	out := map[string]map[string]float64{}
	re := regexp.MustCompile(`^(\w+)\{\w+="([^"]*)"\} (\S+)$`)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			continue
		}
		if out[m[1]] == nil {
			out[m[1]] = map[string]float64{}
		}
		out[m[1]][m[2]] = v
	}
	return out
}
