package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"valora/internal/kafkatest"
	"valora/processor/score"
	"valora/schemas"
)

// replayRun runs `valora replay args...` and returns its exit code, stdout
// and stderr.
func replayRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, append([]string{"replay"}, args...), noEnv, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func (e *impEnv) replayJSON(t *testing.T, more ...string) replaySummary {
	t.Helper()
	args := append([]string{"--brokers", strings.Join(e.b.Addrs, ","), "--purchases-topic", e.purchases,
		"--erasures-topic", e.purchases + "-erasures", // none: the replay goes on without
		"--interactions-topic", e.interactions, "--progress=false", "--json", "--log-level", "warn"}, more...)
	code, out, errOut := replayRun(t, args...)
	if code != 0 {
		t.Fatalf("replay exit %d\nstderr: %s", code, errOut)
	}
	var s replaySummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("replay summary: %v\n%s", err, out)
	}
	return s
}

// inspectCustomer reads one customer from a state directory with
// `valora inspect`.
func inspectCustomer(t *testing.T, dir, id string) schemas.Customer {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"inspect", "--state-dir", dir, "--customer", id}, noEnv, &stdout, &stderr); code != 0 {
		t.Fatalf("inspect %s: exit %d: %s", id, code, stderr.String())
	}
	var c schemas.Customer
	if err := json.Unmarshal(stdout.Bytes(), &c); err != nil {
		t.Fatalf("inspect %s: %v", id, err)
	}
	return c
}

// handCustomer is a customer's final state worked out by hand from a CSV.
type handCustomer struct {
	id        string
	purchases int64
	monetary  int64
	last      time.Time
	r, f, m   int32
	tier      string
	churned   bool // churn flag raised and stage churned
}

// checkByHand compares customers of the state directory dir with their
// hand-computed state.
func checkByHand(t *testing.T, dir string, want []handCustomer) {
	t.Helper()
	for _, w := range want {
		c := inspectCustomer(t, dir, w.id)
		churned := c.ChurnRisk && c.LifecycleStage == "churned"
		if c.Purchases != w.purchases || c.MonetaryMinor != w.monetary || c.LastPurchase != w.last.UnixMilli() ||
			c.RScore != w.r || c.FScore != w.f || c.MScore != w.m || c.Tier != w.tier || churned != w.churned || (!w.churned && c.ChurnRisk) {
			t.Errorf("customer %s: %d purchases, %d cents, last %v, RFM %d%d%d, tier %s, stage %s, churn %v; want %d, %d, %v, RFM %d%d%d, %s, churned %v",
				w.id, c.Purchases, c.MonetaryMinor, time.UnixMilli(c.LastPurchase).UTC(), c.RScore, c.FScore, c.MScore, c.Tier, c.LifecycleStage, c.ChurnRisk,
				w.purchases, w.monetary, w.last, w.r, w.f, w.m, w.tier, w.churned)
		}
	}
}

// TestReplayCDNOW imports the CDNOW sample (CSV → purchases topic), replays
// it twice into new state directories and shadow topics, and checks that
// both replays agree byte for byte (state digest, shadow stream), that
// every record is accounted for, and that two customers end where a hand
// computation over the default policy puts them.
func TestReplayCDNOW(t *testing.T) {
	e := newImpEnv(t)
	rep := e.importJSON(t, calCDNOWSample)
	t.Logf("broker: %s; imported %d purchases", e.b.Kind, rep.Purchases.Records)

	var sums [2]replaySummary
	var streams, profiles [2][]string
	var dirs [2]string
	for i := range sums {
		dirs[i] = filepath.Join(t.TempDir(), "state")
		out, prof := kafkatest.Name(t, "shadow"), kafkatest.Name(t, "shadow-profiles")
		e.b.CreateTopics(t, 4, out)
		sums[i] = e.replayJSON(t, "--state-dir", dirs[i], "--output-topic", out, "--profiles-output-topic", prof)
		for _, r := range e.b.ConsumeAll(t, out) {
			streams[i] = append(streams[i], string(r.Key)+"/"+string(r.Value))
		}
		slices.Sort(streams[i]) // partitions interleave in any order; within one, offsets follow
		for _, r := range e.b.ConsumeAll(t, prof) {
			profiles[i] = append(profiles[i], string(r.Key)+"/"+string(r.Value))
		}
		slices.Sort(profiles[i])
	}
	// The shadow profile topic (created by the replay) has at least one
	// profile per customer; its records, as the replays' commits group
	// them, need not be the same.
	if int64(len(profiles[0])) != sums[0].Profiles || len(profiles[0]) < sums[0].Customers {
		t.Errorf("shadow profiles: %d records (summary says %d) for %d customers; want at least one per customer", len(profiles[0]), sums[0].Profiles, sums[0].Customers)
	}
	s := sums[0]
	t.Logf("replay: %d records in %.2fs (%.0f/s), %d customers, %d tier changes, tiers %v",
		s.Records, s.Seconds, s.EventsPerSecond, s.Customers, s.TierChanges, s.Tiers)
	if s.Records != rep.Purchases.Records || s.DeadLettered != 0 || s.Applied != s.Records {
		t.Errorf("replay read %d records (%d applied, %d dead-lettered), want the %d imported, all applied", s.Records, s.Applied, s.DeadLettered, rep.Purchases.Records)
	}
	if s.Digest == "" || s.Digest != sums[1].Digest || s.Customers != sums[1].Customers {
		t.Errorf("replays differ: digests %s and %s, customers %d and %d", s.Digest, sums[1].Digest, s.Customers, sums[1].Customers)
	}
	if len(streams[0]) == 0 || !slices.Equal(streams[0], streams[1]) || int64(len(streams[0])) != s.TierChanges {
		t.Errorf("shadow streams: %d and %d records (summary says %d); want equal and non-empty", len(streams[0]), len(streams[1]), s.TierChanges)
	}
	var total int
	for _, n := range s.Tiers {
		total += n
	}
	if total != s.Customers {
		t.Errorf("tier distribution %v covers %d customers, want %d", s.Tiers, total, s.Customers)
	}

	// By hand, with the default policy (recency [30 90 180 365] days,
	// frequency [1 2 4 8], monetary [5000 15000 40000 100000] cents,
	// churn after 180 days without activity). The sample's records run to
	// June 1998, so stream time on every partition is past June 11, 1998.
	//   0001: 4 purchases, 1997-01-01 to 1997-12-12, 29.33+29.73+14.96+26.48
	//         = 100.50 USD: F=3, M=2, fm=3; 181+ days since the last: R=2
	//         → at_risk tier, churned.
	//   0002: 2 purchases, 1997-01-01 and 1997-01-13, 63.34+11.77 = 75.11:
	//         F=2, M=2, fm=2; 365+ days: R=1 → lost, churned.
	checkByHand(t, dirs[0], []handCustomer{
		{"0001", 4, 10050, time.Date(1997, 12, 12, 0, 0, 0, 0, time.UTC), 2, 3, 2, "at_risk", true},
		{"0002", 2, 7511, time.Date(1997, 1, 13, 0, 0, 0, 0, time.UTC), 1, 2, 2, "lost", true},
	})
	checkSegments(t, dirs[0], s.Customers)

	// The replay's directory is refused as a new one once it holds state
	// that is not a replay's; a replay's own directory resumes (and, being
	// complete, changes nothing).
	again := e.replayJSON(t, "--state-dir", dirs[0], "--no-output")
	if !again.Resumed || again.Digest != s.Digest || again.Records != 0 {
		t.Errorf("replay again over a finished replay: resumed %v, %d records, digest %s; want resumed, 0 records, %s", again.Resumed, again.Records, again.Digest, s.Digest)
	}
	other := filepath.Join(t.TempDir(), "live")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "MANIFEST-000001"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := replayRun(t, "--brokers", strings.Join(e.b.Addrs, ","), "--state-dir", other, "--no-output", "--progress=false")
	if code != 2 || !strings.Contains(errOut, "--state-dir") || !strings.Contains(errOut, "not empty") {
		t.Errorf("replay into a non-empty directory: exit %d, stderr %q; want 2 naming --state-dir", code, errOut)
	}
}

// TestReplayFlags checks that bad flags stop replay at start with a
// message naming the flag.
func TestReplayFlags(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--no-output"}, "--state-dir"},
		{[]string{"--state-dir", dir}, "--output-topic"},
		{[]string{"--state-dir", dir, "--no-output", "--output-topic", "x"}, "--no-output"},
		{[]string{"--state-dir", dir, "--no-output", "--profiles-output-topic", "x"}, "--profiles-output-topic"},
		{[]string{"--state-dir", dir, "--output-topic", "x", "--profiles-output-topic", "x"}, "--profiles-output-topic"},
		{[]string{"--state-dir", dir, "--no-output", "--from", "yesterday"}, "--from"},
		{[]string{"--state-dir", dir, "--no-output", "--from", "2020-01-02", "--to", "2020-01-01"}, "--from"},
		{[]string{"--state-dir", dir, "--no-output", "--block-cache-mib", "-1"}, "--block-cache-mib"},
		{[]string{"--state-dir", dir, "--no-output", "--write-set-mib", "0"}, "--write-set-mib"},
	} {
		code, _, errOut := replayRun(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming %s", c.args, code, errOut, c.want)
		}
	}
}

// TestCacheCustomersZero checks that --cache-customers 0 disables the
// decoded cache, as a negative count does, instead of reaching the
// processor as its "default" 0 (a million customers, past a replay's
// memory bound).
func TestCacheCustomersZero(t *testing.T) {
	for _, c := range []struct{ flag, want int }{{0, -1}, {-3, -1}, {1, 1}, {10_000, 10_000}} {
		f := scorerFlags{cacheCustomers: optionalInt{v: c.flag, set: true}}
		if got := f.cacheSize(); got != c.want {
			t.Errorf("--cache-customers %d: Config.CacheCustomers %d, want %d", c.flag, got, c.want)
		}
	}
}

// checkSegments reads the segment economics of a state directory (the
// default policy: no models, so the cost over 12 months only) with `valora
// inspect` and checks that both tables count every customer once, with
// the relationship's cost for each.
func checkSegments(t *testing.T, dir string, customers int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"inspect", "--state-dir", dir}, noEnv, &stdout, &stderr); code != 0 {
		t.Fatalf("inspect: exit %d: %s", code, stderr.String())
	}
	var sum inspectSummary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil || sum.Segments == nil {
		t.Fatalf("inspect summary: %v\n%s", err, stdout.String())
	}
	seg := sum.Segments
	costs := map[string]int64{}
	for _, r := range score.DefaultRelationships() {
		costs[r.Name] = r.MonthlyCostMinor
	}
	for _, rows := range [][]score.SegmentRow{seg.ByTierClass, seg.ByTreatment} {
		n := 0
		for _, r := range rows {
			n += r.Customers
			if r.CLVMinor != nil {
				t.Errorf("%+v: a CLV without models", r)
			}
		}
		if n != customers {
			t.Errorf("segments count %d customers, want %d: %+v", n, customers, rows)
		}
	}
	for _, r := range seg.ByTreatment {
		if want := float64(costs[r.Relationship]*int64(r.Customers)) * 12; r.Relationship == "" || r.CostMinor != want {
			t.Errorf("treatment %s (%s): cost %v over 12 months, want %v", r.Treatment, r.Relationship, r.CostMinor, want)
		}
	}
}
