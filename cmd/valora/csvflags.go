package main

import (
	"errors"

	"valora/processor/txcsv"
)

// csvUsage turns a column missing from a file's header into a usage error
// naming the --csv-* flag that named the column; other errors pass as they
// are.
func csvUsage(err error) error {
	var ce *txcsv.ColumnError
	if !errors.As(err, &ce) {
		return err
	}
	return usagef("--csv-%s: no column %q in the header %q", ce.Field, ce.Name, ce.Header)
}

// rowMessage is the text printed for a bad row: the reader's reason, with
// the flags that define the kinds when the row's kind is in none of them.
func rowMessage(re *txcsv.RowError) string {
	msg := re.Err.Error()
	if errors.Is(re.Err, txcsv.ErrUnknownKind) {
		msg += " (see --csv-purchase-kinds, --csv-refund-kinds, --csv-interaction-kinds)"
	}
	return msg
}
