package txcsv

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"valora/schemas"
)

func TestParseMinor(t *testing.T) {
	tests := []struct {
		in   string
		exp  int
		want int64
		ok   bool
	}{
		{"29.33", 2, 2933, true},
		{"0", 2, 0, true},
		{"12", 2, 1200, true},
		{".5", 2, 50, true},
		{"7.", 2, 700, true},
		{"-3.1", 2, -310, true},
		{"+1.005", 2, 101, true}, // half away from zero
		{"-1.005", 2, -101, true},
		{"1.004", 2, 100, true},
		{"1234", 0, 1234, true},
		{"1.5", 0, 2, true},
		{"0.1234", 3, 123, true},
		{"", 2, 0, false},
		{".", 2, 0, false},
		{"1e3", 2, 0, false},
		{"1,5", 2, 0, false},
		{"99999999999999999999", 2, 0, false},
	}
	for _, tc := range tests {
		got, err := ParseMinor(tc.in, tc.exp)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseMinor(%q, %d) = %d, %v; want %d (ok %v)", tc.in, tc.exp, got, err, tc.want, tc.ok)
		}
	}
}

// TestConfigValidate checks that a config that cannot work is refused
// before anything is read, naming its field.
func TestConfigValidate(t *testing.T) {
	ok := Config{Format: FormatGeneric, Delimiter: ';', DefaultCurrency: "EUR"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"format", func(c *Config) { c.Format = "xlsx" }, "Format"},
		{"quote delimiter", func(c *Config) { c.Delimiter = '"' }, "Delimiter"},
		{"line end delimiter", func(c *Config) { c.Delimiter = '\n' }, "Delimiter"},
		{"currency", func(c *Config) { c.DefaultCurrency = "XYZ" }, "DefaultCurrency"},
		{"channel", func(c *Config) { c.DefaultChannel = "PIGEON" }, "DefaultChannel"},
		{"kind twice", func(c *Config) {
			c.PurchaseKinds = map[string]bool{"sale": true}
			c.RefundKinds = map[string]bool{"sale": true}
		}, "RefundKinds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Validate = %v; want an error naming %s", err, tc.field)
			}
			if _, err := NewReader(failReader{t}, &c); err == nil {
				t.Fatal("NewReader accepted an invalid config")
			}
		})
	}
}

// failReader fails the test when it is read: NewReader must validate its
// config before any I/O.
type failReader struct{ t *testing.T }

func (r failReader) Read([]byte) (int, error) {
	r.t.Error("read before the config was validated")
	return 0, io.EOF
}

func TestParseDelimiter(t *testing.T) {
	for in, want := range map[string]rune{",": ',', ";": ';', `\t`: '\t', "\t": '\t', "|": '|', "é": 'é'} {
		if got, ok := ParseDelimiter(in); !ok || got != want {
			t.Errorf("ParseDelimiter(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", ",,", `"`, "\n", "\r", "\xff"} {
		if got, ok := ParseDelimiter(in); ok {
			t.Errorf("ParseDelimiter(%q) = %q; want refused", in, got)
		}
	}
}

func TestMissingColumn(t *testing.T) {
	c := &Config{Format: FormatGeneric, Delimiter: ',', DefaultCurrency: "USD",
		Columns: Columns{Customer: "customer_id", Time: "when", Amount: "amount", Category: "cat"}}
	_, err := NewReader(strings.NewReader("Customer_ID , when,amount\n"), c)
	var ce *ColumnError
	if !errors.As(err, &ce) || ce.Field != "category" || ce.Name != "cat" || ce.Header != "Customer_ID , when,amount" {
		t.Fatalf("err = %#v; want a ColumnError for the category column", err)
	}
	c.Columns.Category = ""
	if _, err := NewReader(strings.NewReader("\ufeffCustomer_ID , when,amount\n"), c); err != nil {
		t.Fatalf("columns matched ignoring case, blanks and a byte order mark: %v", err)
	}
}

// TestRows reads a generic file of good and bad rows: each good row is
// filled in full, each bad one names its line and field, and reading goes
// on after it.
func TestRows(t *testing.T) {
	c := &Config{Format: FormatGeneric, Delimiter: ';', TimeLayout: "unix", DefaultCurrency: "EUR",
		Columns:       Columns{Customer: "id", Time: "ts", Amount: "amt", Kind: "kind", Currency: "cur", Satisfaction: "sat"},
		PurchaseKinds: map[string]bool{"sale": true}, RefundKinds: map[string]bool{"return": true},
		InteractionKinds: map[string]string{"call": "phone_call"}}
	in := "id;ts;amt;kind;cur;sat\n" +
		"a;1700000000.5;12.345;SALE;;\n" + // line 2
		"b;1700000001;-3;sale;jpy;\n" + // line 3
		"c;1700000002;;call;;7\n" + // line 4
		"d;1700000003;1;gift;;\n" + // line 5
		"e;yesterday;1;sale;;\n" + // line 6
		"f;1700000004;1;return;xyz;\n" + // line 7
		";1700000005;1;sale;;\n" + // line 8
		"g;1700000006;1;call;;11\n" + // line 9
		"h;1700000007\n" // line 10
	r, err := NewReader(strings.NewReader(in), c)
	if err != nil {
		t.Fatal(err)
	}
	want := []Txn{
		{Line: 2, Customer: "a", At: 1700000000500, Kind: Purchase, Amount: 1235, Currency: "EUR", Channel: schemas.ChannelOther, Items: 1, Satisfaction: -1},
		{Line: 3, Customer: "b", At: 1700000001000, Kind: Refund, Amount: 3, Currency: "JPY", Channel: schemas.ChannelOther, Items: 1, Satisfaction: -1},
		{Line: 4, Customer: "c", At: 1700000002000, Kind: Interaction, Channel: schemas.ChannelOther, Items: 1, InteractionType: "phone_call", Satisfaction: 7},
	}
	bad := []struct {
		line  int
		field string
	}{{5, "kind"}, {6, "time"}, {7, "currency"}, {8, "customer"}, {9, "satisfaction"}, {10, ""}}
	var got Txn
	for _, w := range want {
		if err := r.Next(&got); err != nil {
			t.Fatalf("line %d: %v", w.Line, err)
		}
		if len(got.Raw) == 0 {
			t.Errorf("line %d: no raw content", w.Line)
		}
		got.Raw = nil
		if !reflect.DeepEqual(got, w) {
			t.Errorf("got %+v\nwant %+v", got, w)
		}
	}
	for _, b := range bad {
		err := r.Next(&got)
		var re *RowError
		if !errors.As(err, &re) || re.Line != b.line || re.Field != b.field {
			t.Fatalf("line %d: err = %v; want a RowError for field %q", b.line, err, b.field)
		}
		if b.field == "kind" && !errors.Is(err, ErrUnknownKind) {
			t.Errorf("line %d: %v does not wrap ErrUnknownKind", b.line, err)
		}
	}
	if err := r.Next(&got); err != io.EOF {
		t.Fatalf("after the last row: %v; want io.EOF", err)
	}
}

// TestCDNOW reads both CDNOW layouts: the master file's header line is
// skipped, the sample's customer is its second column.
func TestCDNOW(t *testing.T) {
	c := &Config{Format: FormatCDNOW, DefaultCurrency: "USD", Exact: true}
	for _, tc := range []struct{ name, in, customer string }{
		{"master", "customer_id date cds dollars\n 00001 19970101  1   11.77\n", "00001"},
		{"sample", " 4 00001 19970101  1   11.77\n", "00001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewReader(strings.NewReader(tc.in), c)
			if err != nil {
				t.Fatal(err)
			}
			var got Txn
			if err := r.Next(&got); err != nil {
				t.Fatal(err)
			}
			if got.Customer != tc.customer || got.At != 852076800000 || got.Amount != 1177 || got.Items != 1 || got.Currency != "USD" || got.Kind != Purchase {
				t.Errorf("got %+v", got)
			}
			if err := r.Next(&got); err != io.EOF {
				t.Errorf("after the last row: %v; want io.EOF", err)
			}
		})
	}
	r, err := NewReader(strings.NewReader(" 1 19970101 1 1.005\n 1 19970101 1\n 1 1997-01-01 1 1\n"), c)
	if err != nil {
		t.Fatal(err)
	}
	var got Txn
	for _, want := range []struct {
		line  int
		field string
	}{{1, "dollars"}, {2, ""}, {3, "date"}} {
		var re *RowError
		if err := r.Next(&got); !errors.As(err, &re) || re.Line != want.line || re.Field != want.field {
			t.Errorf("err = %v; want a RowError at line %d, field %q", err, want.line, want.field)
		}
	}
}
