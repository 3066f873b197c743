package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/kafkatest"
	"valora/schemas"
)

// The full CDNOW cohort, copied into the repository with its source and
// licence (testdata/cdnow/README.md).
var impCDNOWMaster = filepath.Join("..", "..", "testdata", "cdnow", "CDNOW_master.txt")

// impReport is the --json summary as the tests read it.
type impReport struct {
	Rows      int64 `json:"rows"`
	BadRows   int64 `json:"bad_rows"`
	Purchases struct {
		Topic   string `json:"topic"`
		Records int64  `json:"records"`
	} `json:"purchases"`
	Interactions struct {
		Topic   string `json:"topic"`
		Records int64  `json:"records"`
	} `json:"interactions"`
	Failed        int64   `json:"failed"`
	Seconds       float64 `json:"seconds"`
	CheckSeconds  float64 `json:"check_seconds"`
	RowsPerSecond float64 `json:"rows_per_second"`
}

// impRun runs `valora import args...`.
func impRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"import"}, args...), noEnv, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// impEnv is a broker with fresh, co-partitioned input topics.
type impEnv struct {
	b                       kafkatest.Broker
	purchases, interactions string
}

func newImpEnv(t *testing.T) *impEnv {
	t.Helper()
	e := &impEnv{b: kafkatest.New(t), purchases: kafkatest.Name(t, "purchases"), interactions: kafkatest.Name(t, "interactions")}
	e.b.CreateTopics(t, 4, e.purchases, e.interactions)
	return e
}

// args are the broker and topic flags followed by more.
func (e *impEnv) args(more ...string) []string {
	return append([]string{"--brokers", strings.Join(e.b.Addrs, ","), "--purchases-topic", e.purchases,
		"--interactions-topic", e.interactions, "--progress=false", "--json"}, more...)
}

// importJSON runs an import that must succeed and returns its summary.
func (e *impEnv) importJSON(t *testing.T, more ...string) impReport {
	t.Helper()
	code, out, errOut := impRun(t, e.args(more...)...)
	if code != 0 {
		t.Fatalf("import exit %d\nstderr: %s", code, errOut)
	}
	var rep impReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, out)
	}
	return rep
}

func impCodec(t *testing.T) *schemas.Codec {
	t.Helper()
	c, err := schemas.NewCodec(context.Background(), schemas.Options{Framing: schemas.FramingSingleObject})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// purchases reads every record of the purchases topic, checks that each
// key is its customer id, and returns them decoded in partition and offset
// order.
func (e *impEnv) readPurchases(t *testing.T) []schemas.Purchase {
	t.Helper()
	codec := impCodec(t)
	recs := e.b.ConsumeAll(t, e.purchases)
	impSortRecords(recs)
	out := make([]schemas.Purchase, len(recs))
	for i, r := range recs {
		if err := codec.DecodePurchase(r.Value, &out[i]); err != nil {
			t.Fatalf("record %d/%d: %v", r.Partition, r.Offset, err)
		}
		if string(r.Key) != out[i].CustomerID {
			t.Fatalf("record %d/%d: key %q, customer_id %q", r.Partition, r.Offset, r.Key, out[i].CustomerID)
		}
	}
	return out
}

func (e *impEnv) readInteractions(t *testing.T) []schemas.Interaction {
	t.Helper()
	codec := impCodec(t)
	recs := e.b.ConsumeAll(t, e.interactions)
	impSortRecords(recs)
	out := make([]schemas.Interaction, len(recs))
	for i, r := range recs {
		if err := codec.DecodeInteraction(r.Value, &out[i]); err != nil {
			t.Fatalf("record %d/%d: %v", r.Partition, r.Offset, err)
		}
		if string(r.Key) != out[i].CustomerID {
			t.Fatalf("record %d/%d: key %q, customer_id %q", r.Partition, r.Offset, r.Key, out[i].CustomerID)
		}
	}
	return out
}

func impSortRecords(rs []*kgo.Record) {
	slices.SortFunc(rs, func(a, b *kgo.Record) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
}

func impDay(y int, m time.Month, d int) int64 {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).UnixMilli()
}

func impOf(ps []schemas.Purchase, customer string) []schemas.Purchase {
	var out []schemas.Purchase
	for _, p := range ps {
		if p.CustomerID == customer {
			out = append(out, p)
		}
	}
	return out
}

var impEventID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestImportCDNOWSample imports the CDNOW sample twice (into two topics),
// checks the count, records by hand from the file, the keys, the free
// orders ($0) and that the event ids are the same both times.
func TestImportCDNOWSample(t *testing.T) {
	e := newImpEnv(t)
	// The default --on-error fail: the sample has no bad row, its 8 rows
	// of $0 are free orders.
	rep := e.importJSON(t, calCDNOWSample)
	t.Logf("CDNOW sample: %d rows in %.2fs (%.0f rows/s)", rep.Rows, rep.Seconds, rep.RowsPerSecond)
	if rep.Rows != 6919 || rep.BadRows != 0 || rep.Purchases.Records != 6919 || rep.Interactions.Records != 0 || rep.Failed != 0 {
		t.Errorf("summary %+v; want 6919 rows, none bad, 6919 purchases", rep)
	}
	got := e.readPurchases(t)
	if len(got) != 6919 {
		t.Fatalf("%d records in the topic, want 6919", len(got))
	}

	// The first customer of the sample, by hand from lines 1-4:
	//  00004 0001 19970101  2   29.33
	//  00004 0001 19970118  2   29.73
	//  00004 0001 19970802  1   14.96
	//  00004 0001 19971212  2   26.48
	type row struct {
		at     int64
		amount int64
		items  int32
	}
	want := []row{{852076800000, 2933, 2}, {853545600000, 2973, 2}, {impDay(1997, 8, 2), 1496, 1}, {impDay(1997, 12, 12), 2648, 2}}
	c1 := impOf(got, "0001")
	if len(c1) != len(want) {
		t.Fatalf("customer 0001: %d records, want %d: %+v", len(c1), len(want), c1)
	}
	for i, p := range c1 {
		if (row{p.OccurredAt, p.AmountMinor, p.Items}) != want[i] || p.Kind != schemas.KindPurchase ||
			p.Currency != "USD" || p.Channel != schemas.ChannelOther || p.Category != nil || !impEventID.MatchString(p.EventID) {
			t.Errorf("customer 0001 record %d: %+v, want %+v USD OTHER", i, p, want[i])
		}
	}
	// Lines 226 (customer 0087, its only row) to 6156 are the 8 rows of
	// $0: purchases of amount 0.
	var total int64
	free := map[string]int{}
	for _, p := range got {
		total += p.AmountMinor
		if p.AmountMinor == 0 {
			if p.Kind != schemas.KindPurchase {
				t.Errorf("a $0 row became %+v, want a PURCHASE", p)
			}
			free[p.CustomerID]++
		}
	}
	if n := len(impOf(got, "0087")); len(free) == 0 || free["0087"] != 1 || n != 1 || free["2086"] == 0 {
		t.Errorf("free orders by customer %v (customer 0087 has %d records); want 8 over 0087 (1 of 1) and 2086 among others", free, n)
	}
	var nfree int
	for _, n := range free {
		nfree += n
	}
	if nfree != 8 {
		t.Errorf("%d free orders, want 8", nfree)
	}
	if total != 24409194 { // $244,091.94, the sample's documented total
		t.Errorf("total %d cents, want 24409194", total)
	}

	// A second import into other topics gives the same event ids.
	e2 := &impEnv{b: e.b, purchases: kafkatest.Name(t, "purchases2"), interactions: kafkatest.Name(t, "interactions2")}
	e.b.CreateTopics(t, 4, e2.purchases, e2.interactions)
	e2.importJSON(t, calCDNOWSample)
	again := e2.readPurchases(t)
	ids := func(ps []schemas.Purchase) map[string]schemas.Purchase {
		m := map[string]schemas.Purchase{}
		for _, p := range ps {
			m[p.EventID] = p
		}
		return m
	}
	first, second := ids(got), ids(again)
	if len(first) != len(got) {
		t.Errorf("%d distinct event ids for %d records", len(first), len(got))
	}
	for id, p := range first {
		if q, ok := second[id]; !ok || q != p {
			t.Fatalf("event id %s: first import %+v, second %+v (found %v)", id, p, q, ok)
		}
	}
}

// TestImportCDNOWMaster imports the whole CDNOW cohort (69,659 rows, 80 of
// them $0: free orders) with the default --on-error fail, checks that every
// row became one record, replays the topic into a new state directory and
// checks the replay's accounting and customers worked out by hand from the
// file.
func TestImportCDNOWMaster(t *testing.T) {
	if testing.Short() {
		t.Skip("imports and replays 69,659 rows; skipped with -short")
	}
	e := newImpEnv(t)
	rep := e.importJSON(t, impCDNOWMaster)
	t.Logf("CDNOW master: %d rows, %d records in %.2fs (%.0f rows/s, broker %s)", rep.Rows, rep.Purchases.Records, rep.Seconds, rep.RowsPerSecond, e.b.Kind)
	if rep.Rows != 69659 || rep.BadRows != 0 || rep.Purchases.Records != 69659 || rep.Failed != 0 {
		t.Errorf("summary %+v; want 69659 rows, none bad, 69659 records", rep)
	}
	if n := len(e.b.ConsumeAll(t, e.purchases)); n != 69659 {
		t.Errorf("%d records in the topic, want 69659 (one per row)", n)
	}

	dir := filepath.Join(t.TempDir(), "state")
	s := e.replayJSON(t, "--state-dir", dir, "--no-output")
	t.Logf("replay: %d records in %.2fs (%.0f/s), %d customers, tiers %v, stages %v",
		s.Records, s.Seconds, s.EventsPerSecond, s.Customers, s.Tiers, s.Stages)
	// 23,570 customers in the cohort, the 68 who bought only for $0
	// included.
	if s.Records != 69659 || s.Applied != 69659 || s.DeadLettered != 0 || s.Customers != 23570 {
		t.Errorf("replay: %d records, %d applied, %d dead-lettered, %d customers; want 69659, all applied, 23570 customers",
			s.Records, s.Applied, s.DeadLettered, s.Customers)
	}
	var total int
	for _, n := range s.Tiers {
		total += n
	}
	if total != s.Customers || s.Tiers["lost"] == 0 || s.Tiers["champions"] == 0 {
		t.Errorf("tier distribution %v covers %d customers (want %d), with lost and champions", s.Tiers, total, s.Customers)
	}

	// By hand from the file, with the default policy (recency [30 90 180
	// 365] days, frequency [1 2 4 8], monetary [5000 15000 40000 100000]
	// cents, FM = (F+M+1)/2, churn after 180 silent days). The data end on
	// 1998-06-30, and with 17,000 records per partition every partition's
	// stream time gets within days of it, so every recency timer due by
	// mid-June has fired.
	//   00001: one purchase, 11.77 on 1997-01-01: F=1, M=1, FM=1; 545 days
	//          silent: R=1 → lost, churned.
	//   00457: 3 purchases, 509.26 USD, the last on 1997-01-10: F=3, M=4,
	//          FM=4; R=1 → cannot_lose_them, churned.
	//   00033: 25 purchases, 1045.47, the last on 1998-03-13: F=5, M=5,
	//          FM=5; the 91-day timer (1998-06-12) fired, the 181-day one
	//          is not due: R=3 → loyal, not churned.
	//   00096: 19 purchases, 1445.99, the last on 1998-06-27: F=5, M=5;
	//          R=5 → champions, not churned.
	//   00455: one free order ($0) on 1997-01-02, nothing else: F=1,
	//          M=1 (no money), FM=1; R=1 → lost, churned.
	//   03858: 7 purchases, one of them free (1998-03-14), 119.74, the
	//          last on 1998-06-27: F=4, M=2, FM=3; R=5 → loyal.
	checkByHand(t, dir, []handCustomer{
		{"00001", 1, 1177, time.Date(1997, 1, 1, 0, 0, 0, 0, time.UTC), 1, 1, 1, "lost", true},
		{"00457", 3, 50926, time.Date(1997, 1, 10, 0, 0, 0, 0, time.UTC), 1, 3, 4, "cannot_lose_them", true},
		{"00033", 25, 104547, time.Date(1998, 3, 13, 0, 0, 0, 0, time.UTC), 3, 5, 5, "loyal", false},
		{"00096", 19, 144599, time.Date(1998, 6, 27, 0, 0, 0, 0, time.UTC), 5, 5, 5, "champions", false},
		{"00455", 1, 0, time.Date(1997, 1, 2, 0, 0, 0, 0, time.UTC), 1, 1, 1, "lost", true},
		{"03858", 7, 11974, time.Date(1998, 6, 27, 0, 0, 0, 0, time.UTC), 5, 4, 2, "loyal", false},
	})
}

// impWrite writes a test file and returns its path.
func impWrite(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// impGenericArgs map the columns of impGenericCSV.
var impGenericArgs = []string{"--format", "generic", "--csv-delimiter", ";", "--csv-customer", "client",
	"--csv-time", "when", "--csv-time-layout", "2006-01-02 15:04", "--csv-amount", "value", "--csv-currency", "cur",
	"--currency", "EUR", "--csv-kind", "what", "--csv-interaction-kinds", "visit,ticket=support_ticket",
	"--csv-channel", "via", "--csv-category", "cat", "--csv-items", "n", "--csv-satisfaction", "score"}

func TestImportGeneric(t *testing.T) {
	e := newImpEnv(t)
	path := impWrite(t, "shop.csv", strings.Join([]string{
		"client;when;what;value;cur;via;cat;n;score",
		"c1;2024-03-01 10:30;order;12.50;eur;web;books;2;",
		"c1;2024-03-02 09:00;Refund;-2.5;;store;;;",
		"c2;2024-03-01 08:00;visit;;;app;;;",
		"c2;2024-03-03 18:45;ticket;;;phone;;;3",
		"c2;2024-03-04 12:00;sale;1000;JPY;;\"games; toys\";1;",
		"c3;2024-03-05 00:00;ORDER;-7;USD;chat;;;",
	}, "\n")+"\n")
	rep := e.importJSON(t, append(impGenericArgs, path)...)
	if rep.Rows != 6 || rep.BadRows != 0 || rep.Purchases.Records != 4 || rep.Interactions.Records != 2 {
		t.Fatalf("summary %+v; want 6 rows, 4 purchases, 2 interactions", rep)
	}
	at := func(s string) int64 {
		v, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return v.UnixMilli()
	}
	str := func(s string) *string { return &s }
	ps := e.readPurchases(t)
	slices.SortFunc(ps, func(a, b schemas.Purchase) int { return int(a.OccurredAt - b.OccurredAt) })
	want := []schemas.Purchase{
		{CustomerID: "c1", OccurredAt: at("2024-03-01 10:30"), Kind: schemas.KindPurchase, AmountMinor: 1250, Currency: "EUR", Channel: schemas.ChannelWeb, Category: str("books"), Items: 2},
		{CustomerID: "c1", OccurredAt: at("2024-03-02 09:00"), Kind: schemas.KindRefund, AmountMinor: 250, Currency: "EUR", Channel: schemas.ChannelStore, Items: 1},
		{CustomerID: "c2", OccurredAt: at("2024-03-04 12:00"), Kind: schemas.KindPurchase, AmountMinor: 1000, Currency: "JPY", Channel: schemas.ChannelOther, Category: str("games; toys"), Items: 1},
		{CustomerID: "c3", OccurredAt: at("2024-03-05 00:00"), Kind: schemas.KindRefund, AmountMinor: 700, Currency: "USD", Channel: schemas.ChannelChat, Items: 1},
	}
	if len(ps) != len(want) {
		t.Fatalf("%d purchases, want %d: %+v", len(ps), len(want), ps)
	}
	for i, p := range ps {
		if !impEventID.MatchString(p.EventID) {
			t.Errorf("purchase %d: event id %q", i, p.EventID)
		}
		p.EventID = ""
		if !impSamePurchase(p, want[i]) {
			t.Errorf("purchase %d:\n got %+v (category %v)\nwant %+v (category %v)", i, p, impDeref(p.Category), want[i], impDeref(want[i].Category))
		}
	}
	is := e.readInteractions(t)
	slices.SortFunc(is, func(a, b schemas.Interaction) int { return int(a.OccurredAt - b.OccurredAt) })
	if len(is) != 2 {
		t.Fatalf("%d interactions, want 2: %+v", len(is), is)
	}
	if v := is[0]; v.CustomerID != "c2" || v.OccurredAt != at("2024-03-01 08:00") || v.Type != "visit" || v.Channel != schemas.ChannelApp || v.Satisfaction != nil {
		t.Errorf("interaction 0: %+v", v)
	}
	if v := is[1]; v.CustomerID != "c2" || v.OccurredAt != at("2024-03-03 18:45") || v.Type != "support_ticket" || v.Channel != schemas.ChannelPhone ||
		v.Satisfaction == nil || *v.Satisfaction != 3 || !impEventID.MatchString(v.EventID) {
		t.Errorf("interaction 1: %+v", v)
	}
}

func impDeref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func impSamePurchase(a, b schemas.Purchase) bool {
	ca, cb := a.Category, b.Category
	a.Category, b.Category = nil, nil
	return a == b && impDeref(ca) == impDeref(cb)
}

// TestImportBadRows checks that bad rows are reported with the file and
// line, skipped or failing the import, and counted.
func TestImportBadRows(t *testing.T) {
	e := newImpEnv(t)
	path := impWrite(t, "bad.csv", strings.Join([]string{
		"client;when;what;value;cur;via;cat;n;score",  // 1
		"c1;2024-03-01 10:30;order;12.50;;;;;",        // 2 good
		"c1;yesterday;order;1;;;;;",                   // 3 time
		"c2;2024-03-01 10:30;gift;1;;;;;",             // 4 kind
		"c2;2024-03-01 10:30;refund;0.00;;;;;",        // 5 refund of 0
		"c2;2024-03-01 10:30;order;1;XYZ;;;;",         // 6 currency
		"c2;2024-03-01 10:30;order;1.005;;;;;",        // 7 decimals
		"c3;2024-03-01 10:30;order;1;;fax machine;;;", // 8 channel
		"c3;2024-03-01 10:30;order;1;;;\"two",         // 9-10: a quoted field over two lines
		"lines\";1;",                                  //
		";2024-03-01 10:30;order;1;;;;;",              // 11 customer
		"c3;2024-03-01 10:30;ticket;;;;;;11",          // 12 satisfaction
		"c3;2024-03-01 10:30;order;1;;;;-1;",          // 13 items
		"c3;2124-03-01 10:30;order;1;;;;;",            // 14 future
		"c3;2024-03-01 10:30",                         // 15 fields
		"c4;2024-03-01 10:30;order;3;;;;;",            // 16 good
	}, "\n")+"\n")
	wantLines := map[int]string{3: "time", 4: "kind \"gift\"", 5: "refund of 0", 6: "currency \"XYZ\"", 7: "more than 2 decimals",
		8: "channel", 11: "empty customer id", 12: "satisfaction", 13: "items", 14: "future", 15: "fields"}
	check := func(errOut string) {
		t.Helper()
		for line, why := range wantLines {
			if !regexp.MustCompile(regexp.QuoteMeta(fmt.Sprintf("bad.csv:%d: ", line)) + ".*" + regexp.QuoteMeta(why)).MatchString(errOut) {
				t.Errorf("stderr does not report line %d (%s):\n%s", line, why, errOut)
			}
		}
		if n := strings.Count(errOut, "bad.csv:"); n != len(wantLines) {
			t.Errorf("%d bad rows reported, want %d:\n%s", n, len(wantLines), errOut)
		}
	}

	// fail (the default): every bad row reported, nothing produced.
	code, out, errOut := impRun(t, e.args(append(impGenericArgs, path)...)...)
	if code != 1 || !strings.Contains(errOut, "11 bad rows; nothing was produced") {
		t.Errorf("fail: exit %d, stderr %q", code, errOut)
	}
	check(errOut)
	if !strings.Contains(out, `"bad_rows": 11`) {
		t.Errorf("fail: summary %s", out)
	}
	if n := len(e.b.ConsumeAll(t, e.purchases)) + len(e.b.ConsumeAll(t, e.interactions)); n != 0 {
		t.Fatalf("fail: %d records produced, want none", n)
	}

	// skip: the three good rows are produced.
	rep := e.importJSON(t, append(impGenericArgs, "--on-error", "skip", path)...)
	if rep.Rows != 14 || rep.BadRows != 11 || rep.Purchases.Records != 3 || rep.Interactions.Records != 0 {
		t.Errorf("skip: summary %+v; want 14 rows, 11 bad, 3 records", rep)
	}
	ps := e.readPurchases(t)
	if len(ps) != 3 {
		t.Fatalf("skip: %d records, want 3", len(ps))
	}
	var cs []string
	for _, p := range ps {
		cs = append(cs, p.CustomerID)
	}
	slices.Sort(cs)
	if !slices.Equal(cs, []string{"c1", "c3", "c4"}) {
		t.Errorf("skip: customers %v, want c1, c3 (the row over two lines) and c4", cs)
	}
	code, _, errOut = impRun(t, e.args(append(impGenericArgs, "--on-error", "skip", "--dry-run", path)...)...)
	if code != 0 {
		t.Errorf("skip, dry run: exit %d: %s", code, errOut)
	}
	check(errOut)

	// skip with --max-errors stops after the limit.
	code, _, errOut = impRun(t, e.args(append(impGenericArgs, "--on-error", "skip", "--max-errors", "2", "--dry-run", path)...)...)
	if code != 1 || !strings.Contains(errOut, "more than --max-errors 2 bad rows; stopped at "+path+":5") {
		t.Errorf("max errors: exit %d, stderr %q", code, errOut)
	}

	// CDNOW: ragged and malformed rows.
	cd := impWrite(t, "cd.txt", " 00001 19970101  1   11.77\r\n 00001 1997-01-02  1   1.00\r\n 00002 19970103  x   1.00\r\n 00002 19970103  1\r\n 00003 19970104  1   -1.00\r\n 00003 19970105  2   3.50\r\n")
	code, out, errOut = impRun(t, e.args("--on-error", "skip", "--dry-run", cd)...)
	for _, w := range []string{"cd.txt:2: date", "cd.txt:3: number of CDs", "cd.txt:4: 3 columns, want 4", "cd.txt:5: negative"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("cdnow: stderr lacks %q:\n%s", w, errOut)
		}
	}
	if code != 0 || !strings.Contains(out, `"rows": 6`) || !strings.Contains(out, `"bad_rows": 4`) {
		t.Errorf("cdnow: exit %d, summary %s", code, out)
	}
}

// TestImportConfiguration checks the usage errors (exit 2, before any
// connection) and the runtime ones.
func TestImportConfiguration(t *testing.T) {
	good := impWrite(t, "ok.csv", "id,at,amount\n1,2024-01-01T00:00:00Z,1\n")
	cd := impWrite(t, "cd.txt", " 00001 19970101  1   11.77\r\n")
	nowhere := []string{"--brokers", "127.0.0.1:1", "--progress=false"}
	f := func(code int, want string, args ...string) {
		t.Helper()
		got, _, errOut := impRun(t, append(nowhere, args...)...)
		if got != code || !strings.Contains(errOut, want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", args, got, errOut, code, want)
		}
	}
	f(2, "no FILE", "--format", "cdnow")
	f(2, "--format", "--format", "xml", cd)
	f(2, "--on-error", "--on-error", "ignore", cd)
	f(2, "--channel", "--channel", "pigeon", cd)
	f(2, "--currency", "--currency", "XYZ", cd)
	f(2, "--csv-kind: only for --format generic", cd, "--csv-kind", "k")
	f(2, "--csv-currency", "--format", "generic", good)
	f(2, "--csv-customer: no column", "--format", "generic", "--currency", "EUR", good)
	f(2, "--csv-time-layout", "--format", "generic", "--currency", "EUR", "--csv-customer", "id", "--csv-time", "at", "--csv-time-layout", "yyyy-mm-dd", good)
	f(2, "needs --csv-kind", "--format", "generic", "--currency", "EUR", "--csv-customer", "id", "--csv-time", "at", "--csv-interaction-kinds", "visit", good)
	f(2, "both", "--format", "generic", "--currency", "EUR", "--csv-customer", "id", "--csv-time", "at", "--csv-kind", "amount", "--csv-refund-kinds", "order", good)
	f(2, "--csv-delimiter", "--format", "generic", "--csv-delimiter", "\"", good)
	f(2, "--max-buffered-records", "--max-buffered-records", "0", cd)
	f(1, "missing.txt", filepath.Join(t.TempDir(), "missing.txt"))

	// A generic file checked without a broker, flags after the file.
	code, out, errOut := impRun(t, "--format", "generic", good, "--currency", "eur", "--csv-customer", "id", "--csv-time", "at", "--dry-run", "--progress=false")
	if code != 0 || !strings.Contains(out, "checked (dry run) 1 files (generic): 1 rows read, 0 bad") {
		t.Errorf("dry run: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// A topic that does not exist is an error, not an auto-created topic.
	b := kafkatest.New(t)
	code, _, errOut = impRun(t, "--brokers", strings.Join(b.Addrs, ","), "--purchases-topic", kafkatest.Name(t, "none"), "--progress=false", cd)
	if code != 1 || !strings.Contains(errOut, "create it first") {
		t.Errorf("missing topic: exit %d, stderr %q", code, errOut)
	}
}

func TestProgress(t *testing.T) {
	t.Run("lines", func(t *testing.T) {
		var out syncBuffer
		p, err := startProgress(progressOptions{Label: "import", Unit: "bytes", Out: &out, Interval: 10 * time.Millisecond,
			Detail: func() string { return "7 rows" }}, 2000)
		if err != nil {
			t.Fatal(err)
		}
		p.Add(1000)
		kafkatest.Eventually(t, 10*time.Second, func() error {
			if !strings.Contains(out.String(), "import:  50.0% 1.0 kB / 2.0 kB, ") {
				return fmt.Errorf("no line at 50%%: %q", out.String())
			}
			return nil
		})
		p.Printf("a message")
		p.Add(1000)
		p.Stop()
		p.Stop()
		s := out.String()
		lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
		for _, l := range lines {
			if strings.HasPrefix(l, "import:  50.0%") && (!strings.HasSuffix(l, ", 7 rows") || !strings.Contains(l, "/s, ETA ")) {
				t.Errorf("progress line %q", l)
			}
		}
		if !slices.Contains(lines, "a message") {
			t.Errorf("message missing: %q", s)
		}
		last := lines[len(lines)-1]
		if !strings.HasPrefix(last, "import: 100.0% 2.0 kB / 2.0 kB, ") || !strings.Contains(last, "done in") || strings.Contains(s, "\r") {
			t.Errorf("last line %q", last)
		}
		time.Sleep(30 * time.Millisecond)
		if out.String() != s {
			t.Errorf("output after Stop: %q", strings.TrimPrefix(out.String(), s))
		}
	})
	t.Run("terminal", func(t *testing.T) {
		var out syncBuffer
		p, err := startProgress(progressOptions{Label: "replay", Unit: "records", Out: &out, Terminal: true}, 0)
		if err != nil {
			t.Fatal(err)
		}
		p.Add(5)
		kafkatest.Eventually(t, 10*time.Second, func() error {
			if !strings.Contains(out.String(), "\rreplay 5 records") {
				return fmt.Errorf("no redraw: %q", out.String())
			}
			return nil
		})
		p.SetTotal(10)
		kafkatest.Eventually(t, 10*time.Second, func() error {
			if !strings.Contains(out.String(), "] ") {
				return fmt.Errorf("no bar: %q", out.String())
			}
			return nil
		})
		p.Printf("note")
		if !strings.Contains(out.String(), "\r\x1b[Knote\n") {
			t.Errorf("a message does not clear the progress line: %q", out.String())
		}
		p.Stop()
		if s := out.String(); !strings.HasSuffix(s, "\x1b[K\n") || !strings.Contains(s, "replay:  50.0% 5 records / 10 records") {
			t.Errorf("final line: %q", s)
		}
	})
	t.Run("off with gauges", func(t *testing.T) {
		var out bytes.Buffer
		reg := prometheus.NewRegistry()
		p, err := startProgress(progressOptions{Label: "import", Unit: "bytes", Out: &out, Off: true, Registerer: reg}, 100)
		if err != nil {
			t.Fatal(err)
		}
		p.Add(40)
		p.Stop()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			got[mf.GetName()] = mf.GetMetric()[0].GetGauge().GetValue()
			if l := mf.GetMetric()[0].GetLabel(); len(l) != 2 || l[0].GetValue() != "import" || l[1].GetValue() != "bytes" {
				t.Errorf("%s labels %v", mf.GetName(), l)
			}
		}
		if got["valora_progress_done"] != 40 || got["valora_progress_total"] != 100 {
			t.Errorf("gauges %v", got)
		}
		if _, ok := got["valora_progress_rate"]; !ok {
			t.Errorf("no rate gauge: %v", got)
		}
		if out.Len() != 0 {
			t.Errorf("Off printed %q", out.String())
		}
		if _, err := startProgress(progressOptions{Label: "import", Unit: "bytes", Off: true, Registerer: reg}, 0); err == nil {
			t.Error("a second reporter with the same labels registered")
		}
		p.unregister()
		if _, err := startProgress(progressOptions{Label: "import", Unit: "bytes", Off: true, Registerer: reg}, 0); err != nil {
			t.Errorf("after unregister: %v", err)
		}
	})
}
