package txcsv

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
	"unicode/utf8"

	"valora/processor/score"
	"valora/schemas"
)

// The formats of a transactions file.
const (
	// FormatCDNOW is CDNOW's whitespace-separated log: the master file
	// (customer_id date cds dollars, after a header line) or the 1/10
	// sample (master_id sample_id date cds dollars, no header; the customer
	// is sample_id, the id of every published result). Dates are YYYYMMDD,
	// read as 00:00 UTC; the customer id is kept as written (zero padding
	// included).
	FormatCDNOW = "cdnow"
	// FormatGeneric is a delimited file with a header line, its columns
	// named by Config.Columns.
	FormatGeneric = "generic"
)

// Kind is what a row of a transactions file is.
type Kind uint8

// The kinds of a row.
const (
	Purchase Kind = iota
	Refund
	Interaction
)

// Txn is one row of a transactions file. The reader fills every field
// (defaults included).
type Txn struct {
	// Line is the number of the row's first line in the file, from 1.
	Line     int
	Customer string
	// At is the event time in Unix milliseconds.
	At   int64
	Kind Kind
	// Amount is a count of the currency's minor units, never negative
	// (Kind gives the sign; 0 is possible: whether that is valid is the
	// caller's choice). Interactions have no amount.
	Amount   int64
	Currency string
	Channel  schemas.Channel
	// Category is empty when the file has none for the row.
	Category string
	Items    int32
	// InteractionType and Satisfaction are the type and score (-1: none)
	// of an interaction.
	InteractionType string
	Satisfaction    int32
	// Raw identifies the row's content: the line for CDNOW, the fields
	// length-prefixed for a generic file. It is valid until the next call
	// of Next.
	Raw []byte
}

// Columns names the header columns of a generic file, matched ignoring
// case and surrounding blanks. Customer, Time and Amount are required; an
// empty optional name means the file has no such column.
type Columns struct {
	Customer, Time, Amount, Currency, Kind string
	Channel, Category, Items, Satisfaction string
}

// Config says how to read a transactions file. Validate checks it; NewReader
// calls Validate before it reads anything.
type Config struct {
	// Format is FormatCDNOW or FormatGeneric.
	Format string
	// Delimiter separates the fields of a generic file.
	Delimiter rune
	Columns   Columns
	// TimeLayout is a Go layout (UTC unless the value has a zone), or
	// "unix" (decimal seconds), "unix_ms" (integer milliseconds) or
	// "rfc3339". A value that does not match it is a bad row.
	TimeLayout string
	// AmountMinor reads the amount as an integer count of minor units
	// instead of a decimal number of major units.
	AmountMinor bool
	// Exact rejects an amount with more decimals than its currency has
	// (instead of rounding them half away from zero).
	Exact bool

	// DefaultCurrency applies when there is no currency column or the
	// row's is empty; DefaultChannel likewise (OTHER when empty).
	DefaultCurrency string
	DefaultChannel  schemas.Channel

	// Kind values, lower case: a row whose kind column holds one of
	// PurchaseKinds is a purchase, of RefundKinds a refund, and a key of
	// InteractionKinds an interaction of the mapped type. Any other value
	// is a bad row. Without a kind column every row is a purchase. Either
	// way a negative amount is a refund of its absolute value.
	PurchaseKinds    map[string]bool
	RefundKinds      map[string]bool
	InteractionKinds map[string]string
}

// Validate reports the first setting that cannot work, naming its field.
// Column names are checked against a file's header by NewReader.
func (c *Config) Validate() error {
	switch c.Format {
	case FormatCDNOW:
	case FormatGeneric:
		if !validDelimiter(c.Delimiter) {
			return fmt.Errorf("config: Delimiter %q: want one character other than a quote or a line end", c.Delimiter)
		}
	default:
		return fmt.Errorf("config: Format %q: want %s or %s", c.Format, FormatCDNOW, FormatGeneric)
	}
	if _, ok := score.MinorUnits(c.DefaultCurrency); c.DefaultCurrency != "" && !ok {
		return fmt.Errorf("config: DefaultCurrency %q: not an ISO 4217 currency with a minor unit", c.DefaultCurrency)
	}
	if c.DefaultChannel != "" && schemas.ChannelIndex(c.DefaultChannel) < 0 {
		return fmt.Errorf("config: DefaultChannel %q: want one of %v", c.DefaultChannel, schemas.Channels)
	}
	for k := range c.PurchaseKinds {
		if c.RefundKinds[k] {
			return fmt.Errorf("config: kind %q is both in PurchaseKinds and RefundKinds", k)
		}
		if _, ok := c.InteractionKinds[k]; ok {
			return fmt.Errorf("config: kind %q is both in PurchaseKinds and InteractionKinds", k)
		}
	}
	for k := range c.RefundKinds {
		if _, ok := c.InteractionKinds[k]; ok {
			return fmt.Errorf("config: kind %q is both in RefundKinds and InteractionKinds", k)
		}
	}
	return nil
}

// RowError is a bad row: the reader can go on with the next one.
type RowError struct {
	Line int
	// Field is the row's field at fault ("customer", "time", "amount",
	// "currency", "kind", "channel", "items", "satisfaction", "date",
	// "cds", "dollars"), or "" when the row as a whole is malformed.
	Field string
	Err   error
}

func (e *RowError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *RowError) Unwrap() error { return e.Err }

func badRow(line int, field, format string, args ...any) error {
	return &RowError{Line: line, Field: field, Err: fmt.Errorf(format, args...)}
}

// ErrUnknownKind is wrapped by the RowError of a kind value that is in none
// of Config's kind sets.
var ErrUnknownKind = errors.New("not a purchase, refund or interaction kind")

// ColumnError is a column of Config.Columns that a generic file's header
// does not have.
type ColumnError struct {
	// Field is the Columns field, lower case: "customer", "time", ...
	Field string
	// Name is the column name looked for.
	Name string
	// Header is the file's header line, its fields joined by the
	// delimiter.
	Header string
}

func (e *ColumnError) Error() string {
	return fmt.Sprintf("%s column: no column %q in the header %q", e.Field, e.Name, e.Header)
}

// Reader reads a transactions file row by row.
type Reader struct {
	c    *Config
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

// NewReader validates c and returns a reader of r. For a generic file it
// reads the header line and resolves the columns: a column missing from
// the header is a *ColumnError. The reader keeps c, which must not change
// while it is in use.
func NewReader(r io.Reader, c *Config) (*Reader, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	tr := &Reader{c: c}
	if c.Format == FormatCDNOW {
		tr.sc = bufio.NewScanner(r)
		tr.sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		return tr, nil
	}
	tr.cr = csv.NewReader(bufio.NewReaderSize(r, 256<<10))
	tr.cr.Comma = c.Delimiter
	tr.cr.FieldsPerRecord = -1
	tr.cr.ReuseRecord = true
	h, err := tr.cr.Read()
	if err != nil {
		return nil, fmt.Errorf("header line: %w", err)
	}
	tr.header = append([]string(nil), h...)
	col, cs := &tr.col, &c.Columns
	for _, v := range []struct {
		idx      *int
		field    string
		name     string
		required bool
	}{
		{&col.customer, "customer", cs.Customer, true},
		{&col.time, "time", cs.Time, true},
		{&col.amount, "amount", cs.Amount, true},
		{&col.currency, "currency", cs.Currency, false},
		{&col.kind, "kind", cs.Kind, false},
		{&col.channel, "channel", cs.Channel, false},
		{&col.category, "category", cs.Category, false},
		{&col.items, "items", cs.Items, false},
		{&col.satisfaction, "satisfaction", cs.Satisfaction, false},
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
			return nil, &ColumnError{Field: v.field, Name: v.name, Header: strings.Join(tr.header, string(c.Delimiter))}
		}
		tr.width = max(tr.width, *v.idx+1)
	}
	return tr, nil
}

// Next reads the next row into t. It returns io.EOF at the end, a
// *RowError for a bad row (Next can be called again), and any other error
// when the file cannot be read further.
func (r *Reader) Next(t *Txn) error {
	if r.sc != nil {
		return r.nextCDNOW(t)
	}
	return r.nextGeneric(t)
}

func (r *Reader) nextCDNOW(t *Txn) error {
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
			return badRow(r.line, "", "%d columns, want %d", len(fs), r.cols)
		}
		id, date, cds, dollars := fs[0], fs[1], fs[2], fs[3]
		if r.cols == 5 {
			id, date, cds, dollars = fs[1], fs[2], fs[3], fs[4]
		}
		*t = Txn{Line: r.line, Customer: id, Kind: Purchase, Channel: r.c.channelOr(""), Satisfaction: -1}
		at, err := time.Parse("20060102", date)
		if err != nil {
			return badRow(r.line, "date", "date %q is not YYYYMMDD", date)
		}
		t.At = at.UnixMilli()
		items, err := strconv.ParseInt(cds, 10, 32)
		if err != nil || items < 0 {
			return badRow(r.line, "cds", "number of CDs %q is not a count", cds)
		}
		t.Items = int32(items)
		t.Currency = r.c.DefaultCurrency
		exp, ok := score.MinorUnits(t.Currency)
		if !ok {
			return badRow(r.line, "currency", "currency %q has no known ISO 4217 minor unit", t.Currency)
		}
		if t.Amount, err = r.c.parseAmount(dollars, exp); err != nil {
			return badRow(r.line, "dollars", "dollar value: %v", err)
		}
		if t.Amount < 0 {
			return badRow(r.line, "dollars", "negative dollar value %q", dollars)
		}
		r.raw = append(r.raw[:0], text...)
		t.Raw = r.raw
		return nil
	}
	if err := r.sc.Err(); err != nil {
		return fmt.Errorf("after line %d: %w", r.line, err)
	}
	return io.EOF
}

func (r *Reader) nextGeneric(t *Txn) error {
	rec, err := r.cr.Read()
	if err != nil {
		if pe := (*csv.ParseError)(nil); errors.As(err, &pe) {
			return badRow(pe.StartLine, "", "%v", pe.Err)
		}
		return err // io.EOF included
	}
	line, _ := r.cr.FieldPos(0)
	r.line = line
	if len(rec) < r.width {
		return badRow(line, "", "%d fields; the mapped columns need %d", len(rec), r.width)
	}
	r.raw = r.raw[:0]
	for _, f := range rec {
		r.raw = binary.AppendUvarint(r.raw, uint64(len(f)))
		r.raw = append(r.raw, f...)
	}
	c, col := r.c, &r.col
	field := func(i int) string {
		if i < 0 {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	*t = Txn{Line: line, Customer: field(col.customer), Kind: Purchase, Items: 1, Satisfaction: -1, Raw: r.raw}
	if t.Customer == "" {
		return badRow(line, "customer", "empty customer id")
	}
	if t.At, err = ParseEventTime(field(col.time), c.TimeLayout); err != nil {
		return badRow(line, "time", "time: %v", err)
	}
	ch := field(col.channel)
	t.Channel = c.channelOr(schemas.Channel(strings.ToUpper(ch)))
	if schemas.ChannelIndex(t.Channel) < 0 {
		return badRow(line, "channel", "channel %q is not one of %v", ch, schemas.Channels)
	}
	if col.kind >= 0 {
		k := strings.ToLower(field(col.kind))
		switch typ, isInteraction := c.InteractionKinds[k]; {
		case isInteraction:
			t.Kind, t.InteractionType = Interaction, typ
			if s := field(col.satisfaction); s != "" {
				v, err := strconv.ParseInt(s, 10, 32)
				if err != nil || v < 0 || v > 10 {
					return badRow(line, "satisfaction", "satisfaction %q is not an integer 0..10", s)
				}
				t.Satisfaction = int32(v)
			}
			return nil
		case c.RefundKinds[k]:
			t.Kind = Refund
		case c.PurchaseKinds[k]:
		default:
			return badRow(line, "kind", "kind %q is %w", k, ErrUnknownKind)
		}
	}
	t.Currency = strings.ToUpper(field(col.currency))
	if t.Currency == "" {
		t.Currency = c.DefaultCurrency
	}
	if t.Currency == "" {
		return badRow(line, "currency", "no currency (the currency column is empty and no default is set)")
	}
	exp, ok := score.MinorUnits(t.Currency)
	if !ok {
		return badRow(line, "currency", "currency %q has no known ISO 4217 minor unit", t.Currency)
	}
	amount := field(col.amount)
	if c.AmountMinor {
		t.Amount, err = strconv.ParseInt(amount, 10, 64)
		if err != nil {
			err = fmt.Errorf("%q is not an integer count of minor units", amount)
		}
	} else {
		t.Amount, err = c.parseAmount(amount, exp)
	}
	if err != nil {
		return badRow(line, "amount", "amount: %v", err)
	}
	if t.Amount < 0 {
		if t.Amount == math.MinInt64 {
			return badRow(line, "amount", "amount: %q is out of range", amount)
		}
		t.Kind, t.Amount = Refund, -t.Amount
	}
	t.Category = field(col.category)
	if s := field(col.items); s != "" {
		v, err := strconv.ParseInt(s, 10, 32)
		if err != nil || v < 0 {
			return badRow(line, "items", "items %q is not a count", s)
		}
		t.Items = int32(v)
	}
	return nil
}

// channelOr returns ch, or the default channel when ch is empty.
func (c *Config) channelOr(ch schemas.Channel) schemas.Channel {
	switch {
	case ch != "":
		return ch
	case c.DefaultChannel != "":
		return c.DefaultChannel
	}
	return schemas.ChannelOther
}

func (c *Config) parseAmount(s string, exp int) (int64, error) {
	if c.Exact {
		return parseMinorExact(s, exp)
	}
	return ParseMinor(s, exp)
}

// ParseDelimiter returns the one-character delimiter that s names, with
// `\t` standing for a tab. A quote or a line end cannot delimit fields.
func ParseDelimiter(s string) (rune, bool) {
	if s == `\t` {
		s = "\t"
	}
	r := []rune(s)
	if len(r) != 1 || !validDelimiter(r[0]) {
		return 0, false
	}
	return r[0], true
}

// validDelimiter reports whether r can separate fields: a quote or a line
// end cannot, and utf8.RuneError is what an invalid byte decodes to.
func validDelimiter(r rune) bool {
	return r != '"' && r != '\r' && r != '\n' && r != utf8.RuneError
}

// ParseEventTime parses a time with a Go layout (UTC unless the value has a
// zone), or "unix" (decimal seconds, exact to the millisecond, rounded half
// away from zero beyond it), "unix_ms" (integer milliseconds; "unixms"
// too) or "rfc3339", into Unix milliseconds.
func ParseEventTime(s, layout string) (int64, error) {
	switch layout {
	case "unix":
		v, err := ParseMinor(s, 3)
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

// parseMinorExact is ParseMinor that refuses to round: decimals beyond
// exp must be zeros.
func parseMinorExact(s string, exp int) (int64, error) {
	if _, frac, ok := strings.Cut(s, "."); ok && len(frac) > exp && strings.Trim(frac[exp:], "0") != "" {
		return 0, fmt.Errorf("%q has more than %d decimals", s, exp)
	}
	return ParseMinor(s, exp)
}

// ParseMinor parses a decimal amount in major units ("12.5", "-3",
// "0.125") into minor units with exp decimals, exactly, rounding extra
// decimals half away from zero.
func ParseMinor(s string, exp int) (int64, error) {
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
