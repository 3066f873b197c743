// Package txcsv reads files of customer transactions: CDNOW's
// whitespace-separated log and delimited files with a header line whose
// columns a Config names. A Reader yields one Txn per row, every field
// filled (defaults included), so a caller needs nothing else to build a
// purchase, refund or interaction record.
//
// Amounts are exact: a decimal amount becomes an int64 count of its
// currency's minor units (score.MinorUnits) without floating point, and
// times become Unix milliseconds. A bad row is a *RowError naming its line
// and field; the Reader goes on with the next row after one. A mapped
// column missing from the header is a *ColumnError from NewReader, before
// any row is read.
//
// The package does no validation that depends on the use of a row (event
// time bounds, clock skew, a refund of 0): callers apply their own.
package txcsv
