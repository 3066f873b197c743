package schemas

import (
	"errors"
)

// Reason classifies why a record could not be decoded. Its values are
// stable: they name dead-letter reasons and label metrics.
type Reason string

// The reasons a record cannot be decoded. Each is returned in a
// *DecodeError and means the record itself is unreadable, so retrying it
// cannot help: it belongs in the dead-letter topic.
const (
	// ReasonTruncated: the input is empty or shorter than its framing
	// header.
	ReasonTruncated Reason = "truncated"
	// ReasonBadMagic: the input starts with neither the Confluent magic
	// byte 0x00 nor the single-object marker C3 01 (or, for customer
	// state, not with C3 01).
	ReasonBadMagic Reason = "bad_magic"
	// ReasonUnknownSchema: the framing names a writer schema that is not
	// known locally, is not in the schema registry, or cannot be read as
	// the expected record under the evolution rules.
	ReasonUnknownSchema Reason = "unknown_schema"
	// ReasonMalformed: the Avro body does not decode with the writer
	// schema, or bytes remain after the record.
	ReasonMalformed Reason = "malformed"
)

// Reasons returns every Reason, in a fixed order: the complete list, so
// that a caller can create a metric series for each before any occurs.
func Reasons() []Reason {
	return []Reason{ReasonTruncated, ReasonBadMagic, ReasonUnknownSchema, ReasonMalformed}
}

// DecodeError is returned when a record cannot be decoded. Reason says why;
// Err holds the detail.
type DecodeError struct {
	Reason Reason
	Err    error
}

// Error implements error.
func (e *DecodeError) Error() string {
	if e.Err == nil {
		return "decode: " + string(e.Reason)
	}
	return "decode: " + string(e.Reason) + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *DecodeError) Unwrap() error { return e.Err }

// ErrRegistryUnavailable is wrapped by the error a decoder returns when it
// needed to fetch a writer schema from the schema registry and the request
// failed for a reason other than "no such schema" (network, time-out,
// server error). It is not a *DecodeError: the record may be fine, so the
// caller should retry or stop rather than dead-letter it.
var ErrRegistryUnavailable = errors.New("schema registry unavailable")

// ReasonOf returns the Reason of the *DecodeError in err's chain, and false
// if there is none.
func ReasonOf(err error) (Reason, bool) {
	if de, ok := errors.AsType[*DecodeError](err); ok {
		return de.Reason, true
	}
	return "", false
}

func decodeErr(r Reason, err error) error {
	return &DecodeError{Reason: r, Err: err}
}
