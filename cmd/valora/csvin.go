package main

import (
	"bufio"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"valora/processor/score"
	"valora/schemas"
)

// The formats of a transactions file, shared by `valora import` and
// `valora calibrate --csv`.
const (
	// formatCDNOW is CDNOW's whitespace-separated log: the master file
	// (customer_id date cds dollars, after a header line) or the 1/10
	// sample (master_id sample_id date cds dollars, no header; the customer
	// is sample_id, the id of every published result). Dates are YYYYMMDD,
	// read as 00:00 UTC; the customer id is kept as written (zero padding
	// included).
	formatCDNOW = "cdnow"
	// formatGeneric is a delimited file with a header line, its columns
	// named by a csvMapping.
	formatGeneric = "generic"
)

// txnKind is what a row of a transactions file is.
type txnKind uint8

const (
	txnPurchase txnKind = iota
	txnRefund
	txnInteraction
)

// csvTxn is one row of a transactions file. The reader fills every field
// (defaults included), so a caller needs nothing else to build a record.
type csvTxn struct {
	// line is the number of the row's first line in the file, from 1.
	line     int
	customer string
	// at is the event time in Unix milliseconds.
	at   int64
	kind txnKind
	// amount is a count of currency's minor units, never negative (kind
	// gives the sign; 0 is possible: whether that is valid is the caller's
	// choice). Interactions have no amount.
	amount   int64
	currency string
	channel  schemas.Channel
	// category is empty when the file has none for the row.
	category string
	items    int32
	// itype and satisfaction are the interaction type and score (-1: none)
	// of an interaction.
	itype        string
	satisfaction int32
	// raw identifies the row's content: the line for CDNOW, the fields
	// length-prefixed for a generic file. It is valid until the next call
	// of next.
	raw []byte
}

// csvMapping says how to read a transactions file. The column fields name
// header columns of a generic file (matched ignoring case and blanks; empty:
// the file has no such column).
type csvMapping struct {
	format    string
	delimiter rune

	customer, time, amount, currency, kind string
	channel, category, items, satisfaction string
	// timeLayout is a Go layout (UTC unless the value has a zone), or
	// "unix" (decimal seconds), "unix_ms" (integer milliseconds) or
	// "rfc3339".
	timeLayout string
	// amountMinor reads the amount as an integer count of minor units
	// instead of a decimal number of major units.
	amountMinor bool
	// exact rejects an amount with more decimals than its currency has
	// (instead of rounding them half away from zero).
	exact bool

	// defaultCurrency applies when there is no currency column or the
	// row's is empty; defaultChannel likewise (OTHER when empty).
	defaultCurrency string
	defaultChannel  schemas.Channel

	// Kind values, lower case: a row whose kind column holds one of
	// purchaseKinds is a purchase, of refundKinds a refund, and a key of
	// interactionKinds an interaction of the mapped type. Any other value
	// is a bad row. Without a kind column every row is a purchase. Either
	// way a negative amount is a refund of its absolute value.
	purchaseKinds    map[string]bool
	refundKinds      map[string]bool
	interactionKinds map[string]string
}

// rowError is a bad row: the reader can go on with the next one.
type rowError struct {
	line int
	err  error
}

func (e *rowError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }
func (e *rowError) Unwrap() error { return e.err }

func badRow(line int, format string, args ...any) error {
	return &rowError{line: line, err: fmt.Errorf(format, args...)}
}

// txnReader reads a transactions file row by row.
type txnReader struct {
	m    *csvMapping
	line int

	// CDNOW.
	sc   *bufio.Scanner
	cols int

	// Generic.
	cr     *csv.Reader
	header []string
	col    struct {
		customer, time, amount, currency, kind, channel, category, items, satisfaction int
	}
	width int // fields a row needs: the largest column index + 1

	raw []byte
}

// newTxnReader returns a reader of r. For a generic file it reads the
// header line and resolves the columns: a column missing from the header is
// a usage error naming its --csv-* flag.
func newTxnReader(r io.Reader, m *csvMapping) (*txnReader, error) {
	tr := &txnReader{m: m}
	switch m.format {
	case formatCDNOW:
		tr.sc = bufio.NewScanner(r)
		tr.sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		return tr, nil
	case formatGeneric:
	default:
		return nil, usagef("--format %q: want cdnow or generic", m.format)
	}
	tr.cr = csv.NewReader(bufio.NewReaderSize(r, 256<<10))
	tr.cr.Comma = m.delimiter
	tr.cr.FieldsPerRecord = -1
	tr.cr.ReuseRecord = true
	h, err := tr.cr.Read()
	if err != nil {
		return nil, fmt.Errorf("header line: %w", err)
	}
	tr.header = append([]string(nil), h...)
	c := &tr.col
	for _, v := range []struct {
		idx      *int
		flag     string
		name     string
		required bool
	}{
		{&c.customer, "csv-customer", m.customer, true},
		{&c.time, "csv-time", m.time, true},
		{&c.amount, "csv-amount", m.amount, true},
		{&c.currency, "csv-currency", m.currency, false},
		{&c.kind, "csv-kind", m.kind, false},
		{&c.channel, "csv-channel", m.channel, false},
		{&c.category, "csv-category", m.category, false},
		{&c.items, "csv-items", m.items, false},
		{&c.satisfaction, "csv-satisfaction", m.satisfaction, false},
	} {
		*v.idx = -1
		if v.name == "" && !v.required {
			continue
		}
		for i, name := range tr.header {
			if strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(name, "\ufeff")), strings.TrimSpace(v.name)) {
				*v.idx = i
				break
			}
		}
		if *v.idx < 0 {
			return nil, usagef("--%s: no column %q in the header %q", v.flag, v.name, strings.Join(tr.header, string(m.delimiter)))
		}
		tr.width = max(tr.width, *v.idx+1)
	}
	return tr, nil
}

// next reads the next row into t. It returns io.EOF at the end, a
// *rowError for a bad row (next can be called again), and any other error
// when the file cannot be read further.
func (r *txnReader) next(t *csvTxn) error {
	if r.sc != nil {
		return r.nextCDNOW(t)
	}
	return r.nextGeneric(t)
}

func (r *txnReader) nextCDNOW(t *csvTxn) error {
	for r.sc.Scan() {
		r.line++
		text := strings.TrimSpace(r.sc.Text())
		fs := strings.Fields(text)
		if len(fs) == 0 {
			continue
		}
		if r.cols == 0 {
			r.cols = len(fs)
			if r.cols != 4 && r.cols != 5 {
				return fmt.Errorf("line %d: %d columns; want 4 (CDNOW master) or 5 (CDNOW sample)", r.line, r.cols)
			}
			if _, err := strconv.ParseUint(fs[0], 10, 64); err != nil {
				continue // the master file's header line
			}
		}
		if len(fs) != r.cols {
			return badRow(r.line, "%d columns, want %d", len(fs), r.cols)
		}
		id, date, cds, dollars := fs[0], fs[1], fs[2], fs[3]
		if r.cols == 5 {
			id, date, cds, dollars = fs[1], fs[2], fs[3], fs[4]
		}
		*t = csvTxn{line: r.line, customer: id, kind: txnPurchase, channel: r.m.channelOr(""), satisfaction: -1}
		at, err := time.Parse("20060102", date)
		if err != nil {
			return badRow(r.line, "date %q is not YYYYMMDD", date)
		}
		t.at = at.UnixMilli()
		items, err := strconv.ParseInt(cds, 10, 32)
		if err != nil || items < 0 {
			return badRow(r.line, "number of CDs %q is not a count", cds)
		}
		t.items = int32(items)
		t.currency = r.m.defaultCurrency
		exp, ok := score.MinorUnits(t.currency)
		if !ok {
			return badRow(r.line, "currency %q has no known ISO 4217 minor unit", t.currency)
		}
		if t.amount, err = r.m.parseAmount(dollars, exp); err != nil {
			return badRow(r.line, "dollar value: %v", err)
		}
		if t.amount < 0 {
			return badRow(r.line, "negative dollar value %q", dollars)
		}
		r.raw = append(r.raw[:0], text...)
		t.raw = r.raw
		return nil
	}
	if err := r.sc.Err(); err != nil {
		return fmt.Errorf("after line %d: %w", r.line, err)
	}
	return io.EOF
}

func (r *txnReader) nextGeneric(t *csvTxn) error {
	rec, err := r.cr.Read()
	if err != nil {
		if pe := (*csv.ParseError)(nil); errors.As(err, &pe) {
			return badRow(pe.StartLine, "%v", pe.Err)
		}
		return err // io.EOF included
	}
	line, _ := r.cr.FieldPos(0)
	r.line = line
	if len(rec) < r.width {
		return badRow(line, "%d fields; the mapped columns need %d", len(rec), r.width)
	}
	r.raw = r.raw[:0]
	for _, f := range rec {
		r.raw = binary.AppendUvarint(r.raw, uint64(len(f)))
		r.raw = append(r.raw, f...)
	}
	m, c := r.m, &r.col
	field := func(i int) string {
		if i < 0 {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	*t = csvTxn{line: line, customer: field(c.customer), kind: txnPurchase, items: 1, satisfaction: -1, raw: r.raw}
	if t.customer == "" {
		return badRow(line, "empty customer id")
	}
	if t.at, err = parseEventTime(field(c.time), m.timeLayout); err != nil {
		return badRow(line, "time: %v", err)
	}
	ch := field(c.channel)
	t.channel = m.channelOr(schemas.Channel(strings.ToUpper(ch)))
	if schemas.ChannelIndex(t.channel) < 0 {
		return badRow(line, "channel %q is not one of %v", ch, schemas.Channels)
	}
	if c.kind >= 0 {
		k := strings.ToLower(field(c.kind))
		switch typ, isInteraction := m.interactionKinds[k]; {
		case isInteraction:
			t.kind, t.itype = txnInteraction, typ
			if s := field(c.satisfaction); s != "" {
				v, err := strconv.ParseInt(s, 10, 32)
				if err != nil || v < 0 || v > 10 {
					return badRow(line, "satisfaction %q is not an integer 0..10", s)
				}
				t.satisfaction = int32(v)
			}
			return nil
		case m.refundKinds[k]:
			t.kind = txnRefund
		case m.purchaseKinds[k]:
		default:
			return badRow(line, "kind %q is not a purchase, refund or interaction kind (see --csv-purchase-kinds, --csv-refund-kinds, --csv-interaction-kinds)", k)
		}
	}
	t.currency = strings.ToUpper(field(c.currency))
	if t.currency == "" {
		t.currency = m.defaultCurrency
	}
	if t.currency == "" {
		return badRow(line, "no currency (the currency column is empty and no default is set)")
	}
	exp, ok := score.MinorUnits(t.currency)
	if !ok {
		return badRow(line, "currency %q has no known ISO 4217 minor unit", t.currency)
	}
	amount := field(c.amount)
	if m.amountMinor {
		t.amount, err = strconv.ParseInt(amount, 10, 64)
		if err != nil {
			err = fmt.Errorf("%q is not an integer count of minor units", amount)
		}
	} else {
		t.amount, err = m.parseAmount(amount, exp)
	}
	if err != nil {
		return badRow(line, "amount: %v", err)
	}
	if t.amount < 0 {
		if t.amount == math.MinInt64 {
			return badRow(line, "amount: %q is out of range", amount)
		}
		t.kind, t.amount = txnRefund, -t.amount
	}
	t.category = field(c.category)
	if s := field(c.items); s != "" {
		v, err := strconv.ParseInt(s, 10, 32)
		if err != nil || v < 0 {
			return badRow(line, "items %q is not a count", s)
		}
		t.items = int32(v)
	}
	return nil
}

// channelOr returns c, or the default channel when c is empty.
func (m *csvMapping) channelOr(c schemas.Channel) schemas.Channel {
	switch {
	case c != "":
		return c
	case m.defaultChannel != "":
		return m.defaultChannel
	}
	return schemas.ChannelOther
}

func (m *csvMapping) parseAmount(s string, exp int) (int64, error) {
	if m.exact {
		return parseMinorExact(s, exp)
	}
	return parseMinor(s, exp)
}

// parseCSVDelimiter returns the one-character delimiter of a --csv-delimiter
// value, with \t standing for a tab.
func parseCSVDelimiter(s string) (rune, bool) {
	if s == `\t` {
		s = "\t"
	}
	r := []rune(s)
	if len(r) != 1 || r[0] == '"' || r[0] == '\r' || r[0] == '\n' || r[0] == '\uFFFD' {
		return 0, false
	}
	return r[0], true
}

// parseEventTime parses a time with a Go layout (UTC unless the value has a
// zone), or "unix" (decimal seconds, exact to the millisecond, rounded half
// away from zero beyond it), "unix_ms" (integer milliseconds; "unixms"
// too) or "rfc3339", into Unix milliseconds.
func parseEventTime(s, layout string) (int64, error) {
	switch layout {
	case "unix":
		v, err := parseMinor(s, 3)
		if err != nil {
			return 0, fmt.Errorf("%q is not Unix seconds", s)
		}
		return v, nil
	case "unix_ms", "unixms":
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not Unix milliseconds", s)
		}
		return v, nil
	case "rfc3339":
		layout = time.RFC3339
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return 0, fmt.Errorf("%q does not match layout %q", s, layout)
	}
	return t.UnixMilli(), nil
}

// parseMinorExact is parseMinor that refuses to round: decimals beyond
// exp must be zeros.
func parseMinorExact(s string, exp int) (int64, error) {
	if _, frac, ok := strings.Cut(s, "."); ok && len(frac) > exp && strings.Trim(frac[exp:], "0") != "" {
		return 0, fmt.Errorf("%q has more than %d decimals", s, exp)
	}
	return parseMinor(s, exp)
}

// parseMinor parses a decimal amount in major units ("12.5", "-3",
// "0.125") into minor units with exp decimals, exactly, rounding extra
// decimals half away from zero.
func parseMinor(s string, exp int) (int64, error) {
	bad := func() (int64, error) { return 0, fmt.Errorf("%q is not a decimal amount", s) }
	neg := false
	switch {
	case strings.HasPrefix(s, "-"):
		neg, s = true, s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	if intPart == "" && frac == "" {
		return bad()
	}
	digits := func(d string) bool {
		for i := 0; i < len(d); i++ {
			if d[i] < '0' || d[i] > '9' {
				return false
			}
		}
		return true
	}
	if !digits(intPart) || !digits(frac) {
		return bad()
	}
	roundUp := false
	if len(frac) > exp {
		roundUp = frac[exp] >= '5'
		frac = frac[:exp]
	}
	frac += strings.Repeat("0", exp-len(frac))
	all := strings.TrimLeft(intPart+frac, "0")
	if all == "" {
		all = "0"
	}
	v, err := strconv.ParseInt(all, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	if roundUp {
		if v == math.MaxInt64 {
			return 0, fmt.Errorf("%q is out of range", s)
		}
		v++
	}
	if neg {
		v = -v
	}
	return v, nil
}
