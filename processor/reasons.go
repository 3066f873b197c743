package processor

import "valora/schemas"

// Dead-letter reasons decided by the processor: checks of a decoded record
// (customer id, key, partition, timestamps) and of scoring (score's errors).
// Decoding reasons come from schemas.Reason. Every reason is in
// DeadLetterReasons, which the metrics use to create each series at 0.
const (
	ReasonMissingCustomerID = "missing_customer_id"
	ReasonKeyMismatch       = "key_mismatch"
	// ReasonWrongPartition: the record's key maps to another partition
	// under Config.InputPartitioner; applied here, it would build a
	// second state for a customer that another task owns.
	ReasonWrongPartition   = "wrong_partition"
	ReasonFutureTimestamp  = "future_timestamp"
	ReasonInvalidTimestamp = "invalid_timestamp"
	ReasonUnknownCurrency  = "unknown_currency"
	ReasonInvalidField     = "invalid_field"
	ReasonAmountOverflow   = "amount_overflow"
	// ReasonDuplicateEvent: the event_id is in the customer's duplicate
	// window (score.ErrDuplicateEvent); the record was applied before.
	ReasonDuplicateEvent = "duplicate_event"
)

// processorReasons lists the constants above; a test checks that it names
// each of them, so that no reason escapes DeadLetterReasons.
var processorReasons = []string{
	ReasonMissingCustomerID,
	ReasonKeyMismatch,
	ReasonWrongPartition,
	ReasonInvalidTimestamp,
	ReasonFutureTimestamp,
	ReasonInvalidField,
	ReasonUnknownCurrency,
	ReasonAmountOverflow,
	ReasonDuplicateEvent,
}

// DeadLetterReasons returns every value the valora.reason header of a dead
// letter (and the reason label of valora_records_dead_lettered_total) can
// take: the schemas.Reason codes, then the processor's. The slice is new on
// each call.
func DeadLetterReasons() []string {
	dec := schemas.Reasons()
	out := make([]string, 0, len(dec)+len(processorReasons))
	for _, r := range dec {
		out = append(out, string(r))
	}
	return append(out, processorReasons...)
}
