package score

import (
	"errors"
	"fmt"
	"slices"

	"valora/schemas"
)

// ErrDuplicateEvent is returned (wrapped) by ApplyPurchase and
// ApplyInteraction for an event whose kind and event_id are in the
// customer's duplicate window (Customer.RecentEventHashes): the event was
// applied already and is not applied again. The customer is left unchanged,
// Version included. It is a dead-letter case of its own, distinct from
// ErrInvalidEvent: the record is well formed, just repeated.
var ErrDuplicateEvent = errors.New("duplicate event")

// DefaultDedupWindow is the number of recent event ids per customer that
// DefaultPolicy, and ParsePolicy when the policy has no dedup section,
// remember.
const DefaultDedupWindow = 32

// MaxDedupWindow bounds Dedup.WindowEvents: the window is stored as an Avro
// array in the customer state, and the state decoder refuses arrays of more
// than 1024 items.
const MaxDedupWindow = 1024

// Dedup is the duplicate rule.
//
// A customer's state keeps the hashes of the kind and event_id of its last
// WindowEvents applied events (purchases and refunds, interactions) that
// carry a non-empty event_id, oldest first. An event whose hash is among
// them is a duplicate (ErrDuplicateEvent). The window is counted in events,
// not in time, so that the state stays bounded (8 bytes per entry at most,
// whatever the ids) and the decision depends only on the customer's own
// sequence of events, never on the wall clock: a replay decides exactly as
// the live run did. A repeat is therefore caught as long as fewer than
// WindowEvents other events of the same customer were applied between the
// original and the repeat; producers that retry (the usual source of
// repeats) resend within seconds, far inside any sensible window.
//
// The hash is 64-bit FNV-1a over one byte naming the kind ('i' or 'p') and
// the event id, so an interaction and a purchase that share an id are not
// duplicates of each other. Two different ids of one customer collide with
// probability about WindowEvents / 2^64 per event; FNV is not collision
// resistant, but a producer able to craft a collision can already write
// any event it likes for that customer, so a keyed or cryptographic hash
// would protect nothing. An event with an empty event_id cannot be told
// from another, so it is neither checked nor remembered.
type Dedup struct {
	// WindowEvents is the number of recent event ids remembered per
	// customer, in 0..MaxDedupWindow; 0 disables the check (and empties
	// each customer's window at its next event). ParsePolicy defaults it
	// to DefaultDedupWindow when the policy does not set it.
	WindowEvents int `yaml:"window_events"`
}

// Event kinds, as hashed into the duplicate window.
const (
	kindInteraction byte = 'i'
	kindPurchase    byte = 'p'
)

// EventHash returns the value the duplicate window keeps for an event of
// the given kind ('i' for an interaction, 'p' for a purchase or refund) and
// id: 64-bit FNV-1a over the kind byte and the id's bytes, as an int64 (the
// Avro long of the customer state). It is stable across builds and
// machines: stored state depends on it.
func EventHash(kind byte, id string) int64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	h ^= uint64(kind)
	h *= prime64
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= prime64
	}
	return int64(h)
}

// checkDuplicate returns an error wrapping ErrDuplicateEvent when the event
// (kind, id) is in c's window under pc, and its hash otherwise; remember
// reports whether the hash is to be recorded once the event applies.
func checkDuplicate(pc *compiled, c *schemas.Customer, kind byte, id string) (h int64, remember bool, err error) {
	if pc.dedupWindow == 0 || id == "" {
		return 0, false, nil
	}
	h = EventHash(kind, id)
	// Only the newest dedupWindow entries count: the window may hold more
	// if the policy shrank it since they were written.
	w := c.RecentEventHashes
	if len(w) > pc.dedupWindow {
		w = w[len(w)-pc.dedupWindow:]
	}
	if slices.Contains(w, h) {
		return 0, false, fmt.Errorf("%w: event_id already applied to this customer", ErrDuplicateEvent)
	}
	return h, true, nil
}

// remember appends h to c's window, dropping the oldest entries beyond the
// policy's window (all of them when the check is disabled). It allocates
// only while the window grows to its full size.
func remember(pc *compiled, c *schemas.Customer, h int64, ok bool) {
	w := c.RecentEventHashes
	if ok {
		if len(w) >= pc.dedupWindow && len(w) > 0 {
			// Full: shift in place instead of reslicing, so that the
			// backing array never needs to grow again.
			drop := len(w) - pc.dedupWindow + 1
			w = w[:copy(w, w[drop:])]
		}
		w = append(w, h)
	} else if len(w) > pc.dedupWindow {
		w = w[:copy(w, w[len(w)-pc.dedupWindow:])]
	}
	c.RecentEventHashes = w
}
