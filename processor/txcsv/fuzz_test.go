package txcsv

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"valora/processor/score"
	"valora/schemas"
)

// fuzzHeader and fuzzConfig are the generic mapping of FuzzCSVRow.
const fuzzHeader = "c,t,k,a,cur,ch,cat,n,s\n"

func fuzzConfig(format string) *Config {
	return &Config{Format: format, Delimiter: ',', Columns: Columns{Customer: "c", Time: "t", Kind: "k", Amount: "a", Currency: "cur",
		Channel: "ch", Category: "cat", Items: "n", Satisfaction: "s"}, TimeLayout: "rfc3339", Exact: true,
		DefaultCurrency: "USD", DefaultChannel: schemas.ChannelWeb,
		PurchaseKinds: map[string]bool{"purchase": true}, RefundKinds: map[string]bool{"refund": true},
		InteractionKinds: map[string]string{"visit": "visit", "ticket": "support_ticket"}}
}

// formatRow writes t back as a row of the format.
func formatRow(t *Txn, format string) string {
	exp, _ := score.MinorUnits(t.Currency)
	amount := strconv.FormatInt(t.Amount, 10)
	if exp > 0 {
		amount = strings.Repeat("0", max(exp+1-len(amount), 0)) + amount
		amount = amount[:len(amount)-exp] + "." + amount[len(amount)-exp:]
	}
	when := time.UnixMilli(t.At).UTC()
	if format == FormatCDNOW {
		return fmt.Sprintf(" 1 19970101 1 1.00\r\n %s %s %d %s\r\n", t.Customer, when.Format("20060102"), t.Items, amount)
	}
	var b strings.Builder
	w := csv.NewWriter(&b)
	row := []string{t.Customer, when.Format(time.RFC3339Nano), "purchase", amount, t.Currency, string(t.Channel), t.Category, strconv.Itoa(int(t.Items)), ""}
	switch t.Kind {
	case Refund:
		row[2] = "refund"
	case Interaction:
		row[2], row[3], row[4], row[6], row[7] = "visit", "", "", "", ""
		if t.InteractionType == "support_ticket" {
			row[2] = "ticket"
		}
		if t.Satisfaction >= 0 {
			row[8] = strconv.Itoa(int(t.Satisfaction))
		}
	}
	_ = w.Write(row)
	w.Flush()
	return fuzzHeader + b.String()
}

// FuzzCSVRow feeds rows to the reader in both formats: it must
// never panic nor loop, and a valid row written back reads the same.
func FuzzCSVRow(f *testing.F) {
	f.Add(" 00001 19970101  1   11.77\r\n", false)
	f.Add(" 00004 0001 19970101  2   29.33\r\n", false)
	f.Add("c1,2024-03-01T10:30:00Z,purchase,12.50,eur,web,books,2,\n", true)
	f.Add("c2,2024-03-01T10:30:00+02:00,ticket,,,phone,,,3\n", true)
	f.Fuzz(func(t *testing.T, row string, generic bool) {
		format, in := FormatCDNOW, row
		if generic {
			format, in = FormatGeneric, fuzzHeader+row
		}
		m := fuzzConfig(format)
		tr, err := NewReader(strings.NewReader(in), m)
		if err != nil {
			return
		}
		var txn Txn
		for i := 0; i <= len(in)+1; i++ {
			err := tr.Next(&txn)
			if err == io.EOF {
				return
			}
			if _, bad := err.(*RowError); bad {
				continue
			}
			if err != nil {
				return
			}
			if txn.At < 1 || txn.At > score.MaxEventTime {
				continue // not a valid event time: the importer rejects it
			}
			back := formatRow(&txn, format)
			tr2, err := NewReader(strings.NewReader(back), m)
			if err != nil {
				t.Fatalf("row %q written back as %q: %v", row, back, err)
			}
			var got Txn
			for range 2 {
				if err := tr2.Next(&got); err != nil {
					t.Fatalf("row %q written back as %q: %v", row, back, err)
				}
				if format == FormatGeneric {
					break
				}
			}
			want := txn
			got.Line, got.Raw, want.Line, want.Raw = 0, nil, 0, nil
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
				t.Fatalf("row %q written back as %q reads\n%+v, want\n%+v", row, back, got, want)
			}
		}
		t.Fatalf("reader did not end on %q", in)
	})
}
