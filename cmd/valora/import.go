package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/processor/score"
	"valora/processor/txcsv"
	"valora/schemas"
)

const importHelp = `Load historical transactions from CSV files into the input topics: purchases
and refunds to the purchases topic, and (generic format) interactions to the
interactions topic, each keyed by customer id with the default partitioner
and with its event time (occurred_at) from the file. Kafka record timestamps
are the import time, so topic retention does not delete old events at once.

--format cdnow reads CDNOW's whitespace-separated log: the master file
(customer_id date cds dollars, with a header line) or the 1/10 sample
(master_id sample_id date cds dollars, no header; the customer is
sample_id). The customer id is kept as written (zero padding included); the
event time is the date at 00:00 UTC (same-day rows share it and keep the file
order, as they go to one partition in order); items is the number of CDs; the
amount is the dollar value in cents (--currency, default USD) on --channel.
--format generic reads a delimited file with a header line whose columns the
--csv-* flags name (the mapping of valora calibrate --format generic).

Amounts are parsed from the decimal text, never through a float; more
decimals than the currency has is a bad row. A negative amount is a refund
of its absolute value. A purchase of 0 is a free order (CDNOW has such
rows): it counts as an order and adds no money. A refund of 0 is a bad row.

Each record's event_id is the hex SHA-256 (first 16 bytes) of the file's base
name, the line number and the row's content, so importing the same file again
gives the same event ids.

A bad row (one that cannot become a valid record) is reported on stderr as
FILE:LINE: reason. With --on-error fail (the default) every file is checked
before anything is produced and any bad row fails the import with nothing
produced. With --on-error skip, bad rows are left out and counted. The exit
code is 0 on success, 1 when a row or a record failed, 2 for a bad flag.`

// importFlags are the flags of `valora import`.
type importFlags struct {
	brokers, interactions, purchases, registry string

	format                                             string
	colCustomer, colTime, timeLayout, colAmount        string
	colCurrency, delimiter, colKind                    string
	purchaseKinds, refundKinds, interactionKinds       string
	colChannel, colCategory, colItems, colSatisfaction string
	amountMinor                                        bool
	currency, channel                                  string

	onError          string
	maxErrors        int
	maxClockSkew     time.Duration
	maxBuffered      int
	dryRun           bool
	json             bool
	progress         bool
	progressInterval time.Duration
	sec              securityFlags
}

func (f *importFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.brokers, "brokers", "127.0.0.1:9092", "comma-separated Kafka bootstrap brokers")
	fs.StringVar(&f.interactions, "interactions-topic", "interactions", "topic for Interaction records")
	fs.StringVar(&f.purchases, "purchases-topic", "purchases", "topic for Purchase records")
	fs.StringVar(&f.registry, "schema-registry", "", "schema registry URL (Confluent framing); default single-object encoding")
	fs.StringVar(&f.format, "format", txcsv.FormatCDNOW, "format of the files: cdnow or generic")
	fs.StringVar(&f.colCustomer, "csv-customer", "customer_id", "generic: the column of the customer id")
	fs.StringVar(&f.colTime, "csv-time", "occurred_at", "generic: the column of the event time")
	fs.StringVar(&f.timeLayout, "csv-time-layout", time.RFC3339, "generic: Go time layout of --csv-time (UTC unless it has a zone), or unix (decimal seconds), unix_ms or rfc3339")
	fs.StringVar(&f.colAmount, "csv-amount", "amount", "generic: the column of the amount, a decimal number in major units (negative: a refund); ignored for interactions")
	fs.BoolVar(&f.amountMinor, "csv-amount-minor", false, "generic: --csv-amount is an integer count of minor units (cents), not major units")
	fs.StringVar(&f.colCurrency, "csv-currency", "", "generic: the column of the ISO 4217 currency (an empty cell takes --currency)")
	fs.StringVar(&f.delimiter, "csv-delimiter", ",", "generic: the field delimiter, one character (\\t for a tab)")
	fs.StringVar(&f.colKind, "csv-kind", "", "generic: the column of the row's kind, matched ignoring case against the three kind lists (default: every row is a purchase)")
	fs.StringVar(&f.purchaseKinds, "csv-purchase-kinds", "purchase,order,sale", "generic: comma-separated --csv-kind values of a purchase")
	fs.StringVar(&f.refundKinds, "csv-refund-kinds", "refund,return", "generic: comma-separated --csv-kind values of a refund")
	fs.StringVar(&f.interactionKinds, "csv-interaction-kinds", "", "generic: comma-separated --csv-kind values of an interaction, each VALUE or VALUE=TYPE (the interaction type; default the value), e.g. visit,complaint,ticket=support_ticket")
	fs.StringVar(&f.colChannel, "csv-channel", "", "generic: the column of the channel (EMAIL, PHONE, WEB, APP, STORE, SOCIAL, SURVEY, CHAT, FAX, OTHER; an empty cell takes --channel)")
	fs.StringVar(&f.colCategory, "csv-category", "", "generic: the column of the product category (empty: null)")
	fs.StringVar(&f.colItems, "csv-items", "", "generic: the column of the number of items (empty: 1)")
	fs.StringVar(&f.colSatisfaction, "csv-satisfaction", "", "generic: the column of an interaction's satisfaction score 0..10 (empty: null)")
	fs.StringVar(&f.currency, "currency", "", "ISO 4217 currency of rows without one (default USD for cdnow; generic needs this or --csv-currency)")
	fs.StringVar(&f.channel, "channel", string(schemas.ChannelOther), "channel of rows without one")
	fs.StringVar(&f.onError, "on-error", "fail", "what a bad row does: fail (check every file first; any bad row fails the import, nothing is produced) or skip (leave it out)")
	fs.IntVar(&f.maxErrors, "max-errors", 0, "stop once more than this many rows are bad (0: no limit); with skip the import then fails")
	fs.DurationVar(&f.maxClockSkew, "max-clock-skew", 24*time.Hour, "event times further in the future are bad rows (as the scorer would dead-letter them)")
	fs.IntVar(&f.maxBuffered, "max-buffered-records", 100_000, "records produced but not yet acknowledged, at most; reading waits when it is reached")
	fs.BoolVar(&f.dryRun, "dry-run", false, "check every row and print the summary; produce nothing (no broker needed)")
	fs.BoolVar(&f.json, "json", false, "print the summary as JSON")
	fs.BoolVar(&f.progress, "progress", true, "report progress on stderr: one line redrawn on a terminal, else a line per --progress-interval")
	fs.DurationVar(&f.progressInterval, "progress-interval", 5*time.Second, "progress line interval when stderr is not a terminal")
	f.sec.register(fs)
}

// importMaxPrinted is the number of bad rows printed on stderr; the rest
// are counted only.
const importMaxPrinted = 100

// importFile is one input file.
type importFile struct {
	path string
	base string
	size int64
}

// importer runs one import. Counters read by the progress line are atomic.
type importer struct {
	f       *importFlags
	m       *txcsv.Config
	files   []importFile
	bytes   int64 // sum of the file sizes
	stderr  io.Writer
	isTerm  bool
	codec   *schemas.Codec
	kafka   []kgo.Opt // TLS and SASL, from f.sec
	cl      *kgo.Client
	now     time.Time
	idBuf   []byte
	printed int

	rows, bad            atomic.Int64
	purchases, interacts atomic.Int64 // acknowledged by Kafka
	failed               atomic.Int64
	firstErr             error
	errOnce              sync.Once
}

// importReport is the summary, printed as text or JSON.
type importReport struct {
	Files        []string         `json:"files"`
	Format       string           `json:"format"`
	DryRun       bool             `json:"dry_run"`
	Rows         int64            `json:"rows"`
	BadRows      int64            `json:"bad_rows"`
	Purchases    importTopicCount `json:"purchases"`
	Interactions importTopicCount `json:"interactions"`
	Failed       int64            `json:"failed"`
	// CheckSeconds is the part of Seconds spent checking the files before
	// producing (--on-error fail).
	CheckSeconds  float64 `json:"check_seconds"`
	Seconds       float64 `json:"seconds"`
	RowsPerSecond float64 `json:"rows_per_second"`
}

type importTopicCount struct {
	Topic   string `json:"topic"`
	Records int64  `json:"records"`
}

func runImport(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := newFlagSet("import", importHelp, stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: valora import [flags] FILE...\n\n%s\n\nFlags (each also read from VALORA_<NAME>, e.g. --on-error from VALORA_ON_ERROR):\n", importHelp)
		fs.PrintDefaults()
	}
	var f importFlags
	f.register(fs)
	paths, err := parseFlagsAndArgs(fs, args, getenv)
	if err != nil {
		return err
	}
	im := &importer{f: &f, stderr: stderr, isTerm: isTerminal(stderr), now: time.Now()}
	if err := im.configure(fs, paths); err != nil {
		return err
	}
	// The security flags are checked on a dry run too, so that the command
	// a dry run accepted does not fail later on them.
	if im.kafka, err = f.sec.clientOpts(getenv, slog.New(slog.NewTextHandler(stderr, nil))); err != nil {
		return err
	}
	if !f.dryRun {
		if err := im.connect(ctx); err != nil {
			return err
		}
		defer im.cl.Close()
	}

	start := time.Now()
	var checkSecs float64
	var runErr error
	if f.onError == "fail" || f.dryRun {
		runErr = im.pass(ctx, "check", false)
		checkSecs = time.Since(start).Seconds()
		if runErr == nil && im.bad.Load() > 0 && f.onError == "fail" {
			runErr = fmt.Errorf("%d bad rows; nothing was produced (fix them, or leave them out with --on-error skip)", im.bad.Load())
		}
		if runErr == nil && !f.dryRun {
			im.rows.Store(0)
		}
	}
	if runErr == nil && !f.dryRun {
		runErr = im.pass(ctx, "import", true)
		if err := im.flush(ctx); runErr == nil {
			runErr = err
		}
	}
	el := time.Since(start)
	rep := im.report(el, checkSecs)
	if err := rep.write(stdout, f.json); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

// parseFlagsAndArgs is parseFlags for a command that takes arguments:
// flags may come before, between or after them, and "--" ends the flags.
func parseFlagsAndArgs(fs *flag.FlagSet, args []string, getenv env) ([]string, error) {
	var out []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, usageError{}
			}
			return nil, usageError{err}
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			out = append(out, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		out = append(out, rest[0])
		args = rest[1:]
	}
	// Every flag given on the command line is set: parseFlags fills the
	// others from the environment.
	return out, parseFlags(fs, nil, getenv)
}

// configure validates the flags and the files (their headers included)
// before anything is opened on the network.
func (im *importer) configure(fs *flag.FlagSet, paths []string) error {
	f := im.f
	if len(paths) == 0 {
		return usagef("no FILE given: valora import [flags] FILE...")
	}
	m := &txcsv.Config{Format: f.format, TimeLayout: f.timeLayout, AmountMinor: f.amountMinor, Exact: true}
	switch f.format {
	case txcsv.FormatCDNOW:
		var generic []string
		fs.Visit(func(fl *flag.Flag) {
			if strings.HasPrefix(fl.Name, "csv-") {
				generic = append(generic, "--"+fl.Name)
			}
		})
		if len(generic) > 0 {
			return usagef("%s: only for --format generic", strings.Join(generic, ", "))
		}
		if f.currency == "" {
			f.currency = "USD"
		}
	case txcsv.FormatGeneric:
		d, ok := txcsv.ParseDelimiter(f.delimiter)
		if !ok {
			return usagef("--csv-delimiter %q: want one character other than a quote or a line end", f.delimiter)
		}
		m.Delimiter = d
		m.Columns = txcsv.Columns{Customer: f.colCustomer, Time: f.colTime, Amount: f.colAmount, Currency: f.colCurrency,
			Kind: f.colKind, Channel: f.colChannel, Category: f.colCategory, Items: f.colItems, Satisfaction: f.colSatisfaction}
		if f.colCustomer == "" || f.colTime == "" || f.colAmount == "" {
			return usagef("--csv-customer, --csv-time and --csv-amount must name columns")
		}
		if f.colCurrency == "" && f.currency == "" {
			return usagef("--format generic needs --csv-currency (a column) or --currency (one for every row)")
		}
		switch f.timeLayout {
		case "unix", "unix_ms", "unixms", "rfc3339":
		default:
			if ref := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC); ref.Format(f.timeLayout) == f.timeLayout {
				return usagef("--csv-time-layout %q: not a Go time layout (e.g. 2006-01-02 15:04:05), unix, unix_ms or rfc3339", f.timeLayout)
			}
		}
		if err := im.kinds(m); err != nil {
			return err
		}
	default:
		return usagef("--format %q: want cdnow or generic", f.format)
	}
	m.DefaultCurrency = strings.ToUpper(f.currency)
	if _, ok := score.MinorUnits(m.DefaultCurrency); m.DefaultCurrency != "" && !ok {
		return usagef("--currency %q: not an ISO 4217 currency with a minor unit", f.currency)
	}
	m.DefaultChannel = schemas.Channel(strings.ToUpper(f.channel))
	if schemas.ChannelIndex(m.DefaultChannel) < 0 {
		return usagef("--channel %q: want one of %v", f.channel, schemas.Channels)
	}
	switch {
	case f.onError != "fail" && f.onError != "skip":
		return usagef("--on-error %q: want fail or skip", f.onError)
	case f.maxErrors < 0:
		return usagef("--max-errors %d: must not be negative", f.maxErrors)
	case f.maxClockSkew < 0:
		return usagef("--max-clock-skew %v: must not be negative", f.maxClockSkew)
	case f.maxBuffered < 1:
		return usagef("--max-buffered-records %d: want at least 1", f.maxBuffered)
	case f.progressInterval <= 0:
		return usagef("--progress-interval %v: want a positive duration", f.progressInterval)
	case f.purchases == "" || (len(m.InteractionKinds) > 0 && f.interactions == ""):
		return usagef("--purchases-topic and --interactions-topic must not be empty")
	}
	im.m = m
	for _, p := range paths {
		file, err := os.Open(p)
		if err != nil {
			return err
		}
		st, err := file.Stat()
		if err == nil {
			_, err = txcsv.NewReader(file, m) // a generic file's header
			err = csvUsage(err)
		}
		file.Close()
		if err != nil {
			if isUsage(err) {
				return usagef("%s: %v", p, err)
			}
			return fmt.Errorf("%s: %w", p, err)
		}
		im.files = append(im.files, importFile{path: p, base: filepath.Base(p), size: st.Size()})
		im.bytes += st.Size()
	}
	return nil
}

// kinds parses the three kind lists into m.
func (im *importer) kinds(m *txcsv.Config) error {
	f := im.f
	m.PurchaseKinds, m.RefundKinds, m.InteractionKinds = map[string]bool{}, map[string]bool{}, map[string]string{}
	owner := map[string]string{}
	add := func(flagName, v string) error {
		if prev, dup := owner[v]; dup {
			return usagef("kind %q is in both --%s and --%s", v, prev, flagName)
		}
		owner[v] = flagName
		return nil
	}
	for _, v := range splitList(strings.ToLower(f.purchaseKinds)) {
		if err := add("csv-purchase-kinds", v); err != nil {
			return err
		}
		m.PurchaseKinds[v] = true
	}
	for _, v := range splitList(strings.ToLower(f.refundKinds)) {
		if err := add("csv-refund-kinds", v); err != nil {
			return err
		}
		m.RefundKinds[v] = true
	}
	for _, v := range splitList(f.interactionKinds) {
		k, typ, ok := strings.Cut(v, "=")
		k, typ = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(typ)
		if !ok {
			typ = k
		}
		if k == "" || typ == "" {
			return usagef("--csv-interaction-kinds: %q is not VALUE or VALUE=TYPE", v)
		}
		if err := add("csv-interaction-kinds", k); err != nil {
			return err
		}
		m.InteractionKinds[k] = typ
	}
	if len(m.InteractionKinds) > 0 && f.colKind == "" {
		return usagef("--csv-interaction-kinds needs --csv-kind (the column that holds the kinds)")
	}
	return nil
}

// importClientOpts is every Kafka setting of the import: a throughput
// producer (linger, lz4, many records buffered, which bounds what is in
// flight) that is idempotent with acks from all in-sync replicas, so that
// retries neither lose, repeat nor reorder records.
func importClientOpts(f *importFlags, security []kgo.Opt) []kgo.Opt {
	return append([]kgo.Opt{
		kgo.SeedBrokers(splitList(f.brokers)...),
		kgo.RequiredAcks(kgo.AllISRAcks()), // and idempotence, franz-go's default
		kgo.ProducerLinger(10 * time.Millisecond),
		kgo.ProducerBatchCompression(kgo.Lz4Compression()),
		kgo.MaxBufferedRecords(f.maxBuffered),
		kgo.RecordDeliveryTimeout(2 * time.Minute),
	}, security...)
}

// connect opens the codec and the client and checks that the topics to
// write exist (an import must not auto-create them with a default
// partition count) and are co-partitioned.
func (im *importer) connect(ctx context.Context) error {
	f := im.f
	codec, err := newCodec(ctx, f.registry, schemas.TopicNames{Interactions: f.interactions, Purchases: f.purchases})
	if err != nil {
		return err
	}
	im.codec = codec
	// A certificate or login the brokers refuse stops the import here, with
	// the cause, rather than as a metadata timeout.
	if err := checkBrokers(ctx, splitList(f.brokers), im.kafka); err != nil {
		return err
	}
	cl, err := kgo.NewClient(importClientOpts(f, im.kafka)...)
	if err != nil {
		return usageError{fmt.Errorf("kafka client: %w", err)}
	}
	topics := []string{f.purchases}
	if len(im.m.InteractionKinds) > 0 {
		topics = append(topics, f.interactions)
	}
	mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	td, err := kadm.NewClient(cl).ListTopics(mctx, topics...)
	if err != nil {
		cl.Close()
		return fmt.Errorf("topic metadata from %s: %w", f.brokers, err)
	}
	parts := map[string]int{}
	for _, t := range topics {
		d, ok := td[t]
		if !ok || d.Err != nil {
			cl.Close()
			why := "not in the metadata"
			if ok {
				why = d.Err.Error()
			}
			return fmt.Errorf("topic %q: %s; create it first, with the scorer's partition count (valora dev creates the topics)", t, why)
		}
		parts[t] = len(d.Partitions)
	}
	if len(topics) == 2 && parts[topics[0]] != parts[topics[1]] {
		cl.Close()
		return fmt.Errorf("topics %q (%d partitions) and %q (%d) are not co-partitioned: the scorer needs the same partition count", topics[0], parts[topics[0]], topics[1], parts[topics[1]])
	}
	im.cl = cl
	return nil
}

// countingReader counts the bytes read into a progress reporter.
type countingReader struct {
	r io.Reader
	p *progress
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.Add(int64(n))
	return n, err
}

// pass reads every file once: label "check" only validates, "import" also
// produces the valid rows.
func (im *importer) pass(ctx context.Context, label string, produce bool) error {
	prog, err := startProgress(progressOptions{
		Label: label, Unit: "bytes", Out: im.stderr, Terminal: im.isTerm,
		Interval: im.f.progressInterval, Off: !im.f.progress,
		Detail: func() string {
			d := fmt.Sprintf("%d rows, %d bad", im.rows.Load(), im.bad.Load())
			if produce {
				d += fmt.Sprintf(", %d records acknowledged", im.purchases.Load()+im.interacts.Load())
			}
			return d
		},
	}, im.bytes)
	if err != nil {
		return err
	}
	defer prog.Stop()
	var t txcsv.Txn
	for _, file := range im.files {
		if err := im.passFile(ctx, prog, file, produce, &t); err != nil {
			return err
		}
	}
	return nil
}

func (im *importer) passFile(ctx context.Context, prog *progress, file importFile, produce bool, t *txcsv.Txn) error {
	fh, err := os.Open(file.path)
	if err != nil {
		return err
	}
	defer fh.Close()
	tr, err := txcsv.NewReader(countingReader{fh, prog}, im.m)
	if err != nil {
		return fmt.Errorf("%s: %w", file.path, err)
	}
	for n := 0; ; n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return fmt.Errorf("interrupted in %s: %w", file.path, ctx.Err())
		}
		err := tr.Next(t)
		if errors.Is(err, io.EOF) {
			return nil
		}
		var re *txcsv.RowError
		if err == nil {
			if verr := im.validate(t); verr != nil {
				re = &txcsv.RowError{Line: t.Line, Err: verr}
			}
		} else if !errors.As(err, &re) {
			return fmt.Errorf("read %s: %w", file.path, err)
		}
		im.rows.Add(1)
		if re != nil {
			bad := im.bad.Add(1)
			if im.printed < importMaxPrinted {
				im.printed++
				prog.Printf("%s:%d: %v", file.path, re.Line, rowMessage(re))
				if im.printed == importMaxPrinted {
					prog.Printf("(further bad rows are counted, not printed)")
				}
			}
			if im.f.maxErrors > 0 && bad > int64(im.f.maxErrors) {
				return fmt.Errorf("more than --max-errors %d bad rows; stopped at %s:%d", im.f.maxErrors, file.path, re.Line)
			}
			continue
		}
		if produce {
			rec, err := im.record(t, file.base)
			if err != nil {
				return fmt.Errorf("%s:%d: %w", file.path, t.Line, err)
			}
			im.cl.Produce(ctx, rec, im.done)
		}
	}
}

// validate applies the checks the scorer would (a record that fails them
// would be dead-lettered) and the schema's (a refund's amount_minor
// positive; a purchase of 0 is a free order).
func (im *importer) validate(t *txcsv.Txn) error {
	switch {
	case !utf8.ValidString(t.Customer):
		return errors.New("customer id is not UTF-8")
	case t.At < 1 || t.At > score.MaxEventTime:
		return fmt.Errorf("event time %d ms is outside 1970-01-01T00:00:00.001Z..9999-12-31", t.At)
	case t.At > im.now.Add(im.f.maxClockSkew).UnixMilli():
		return fmt.Errorf("event time %s is more than --max-clock-skew %v in the future", time.UnixMilli(t.At).UTC().Format(time.RFC3339), im.f.maxClockSkew)
	case t.Kind == txcsv.Interaction:
		if !utf8.ValidString(t.InteractionType) {
			return errors.New("interaction type is not UTF-8")
		}
	case t.Kind == txcsv.Refund && t.Amount == 0:
		return errors.New("refund of 0: a refund's amount_minor must be positive")
	case !utf8.ValidString(t.Category):
		return errors.New("category is not UTF-8")
	}
	return nil
}

// eventID is the row's deterministic event id: the hex of the first 16
// bytes of SHA-256 over the file's base name, the line number and the
// row's content.
func (im *importer) eventID(base string, t *txcsv.Txn) string {
	b := append(im.idBuf[:0], "valora-import\x00"...)
	b = append(b, base...)
	b = append(b, 0)
	b = strconv.AppendInt(b, int64(t.Line), 10)
	b = append(b, 0)
	b = append(b, t.Raw...)
	im.idBuf = b
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func (im *importer) record(t *txcsv.Txn, base string) (*kgo.Record, error) {
	id := im.eventID(base, t)
	if t.Kind == txcsv.Interaction {
		v := schemas.Interaction{EventID: id, CustomerID: t.Customer, OccurredAt: t.At, Channel: t.Channel, Type: t.InteractionType}
		if t.Satisfaction >= 0 {
			s := t.Satisfaction
			v.Satisfaction = &s
		}
		val, err := im.codec.AppendInteraction(nil, &v)
		if err != nil {
			return nil, fmt.Errorf("encode interaction: %w", err)
		}
		return &kgo.Record{Topic: im.f.interactions, Key: []byte(t.Customer), Value: val}, nil
	}
	v := schemas.Purchase{EventID: id, CustomerID: t.Customer, OccurredAt: t.At, Kind: schemas.KindPurchase,
		AmountMinor: t.Amount, Currency: t.Currency, Channel: t.Channel, Items: t.Items}
	if t.Kind == txcsv.Refund {
		v.Kind = schemas.KindRefund
	}
	if t.Category != "" {
		c := t.Category
		v.Category = &c
	}
	val, err := im.codec.AppendPurchase(nil, &v)
	if err != nil {
		return nil, fmt.Errorf("encode purchase: %w", err)
	}
	return &kgo.Record{Topic: im.f.purchases, Key: []byte(t.Customer), Value: val}, nil
}

// done is the produce callback.
func (im *importer) done(r *kgo.Record, err error) {
	if err != nil {
		im.failed.Add(1)
		im.errOnce.Do(func() { im.firstErr = err })
		return
	}
	if r.Topic == im.f.purchases {
		im.purchases.Add(1)
	} else {
		im.interacts.Add(1)
	}
}

// flush waits for every buffered record, also after an interrupt (a record
// whose context ended fails rather than being sent), and reports failures.
func (im *importer) flush(ctx context.Context) error {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	defer cancel()
	if err := im.cl.Flush(fctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if n := im.failed.Load(); n > 0 {
		return fmt.Errorf("%d records failed to produce, first: %w", n, im.firstErr)
	}
	return nil
}

func (im *importer) report(el time.Duration, checkSecs float64) *importReport {
	r := &importReport{
		Format: im.f.format, DryRun: im.f.dryRun,
		Rows: im.rows.Load(), BadRows: im.bad.Load(), Failed: im.failed.Load(),
		Purchases:    importTopicCount{Topic: im.f.purchases, Records: im.purchases.Load()},
		Interactions: importTopicCount{Topic: im.f.interactions, Records: im.interacts.Load()},
		CheckSeconds: checkSecs, Seconds: el.Seconds(),
	}
	for _, f := range im.files {
		r.Files = append(r.Files, f.path)
	}
	if s := el.Seconds(); s > 0 {
		r.RowsPerSecond = float64(r.Rows) / s
	}
	return r
}

func (r *importReport) write(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	verb := "imported"
	if r.DryRun {
		verb = "checked (dry run)"
	}
	_, err := fmt.Fprintf(w, "%s %d files (%s): %d rows read, %d bad; records produced: %d to %s, %d to %s; %d failed; %.2f s (%.2f s checking), %.0f rows/s\n",
		verb, len(r.Files), r.Format, r.Rows, r.BadRows, r.Purchases.Records, r.Purchases.Topic,
		r.Interactions.Records, r.Interactions.Topic, r.Failed, r.Seconds, r.CheckSeconds, r.RowsPerSecond)
	return err
}
