package processor

import (
	"fmt"

	"valora/processor/clv"
	"valora/processor/knownids"
	"valora/schemas"
	"valora/state"
)

// customers is where a task's customers are between its store and its
// records: it finds each one (get), takes its changes (changed, erase) and
// hands them to the commit (commitOrder, fillBatch, committed).
//
// Invariant: the current value of customer id is the first hit of pend
// (decoded customers changed since they were last encoded, so that a
// customer changed by several records in a row is encoded once), cache
// (decoded customers, so that a customer in use is not decoded again) and
// ws (encoded in a pointer-free arena: the customers changed since the
// last commit, until the commit writes them, and clean ones while there is
// room, which spare store reads);
// else there is none if erased holds id (the store keeps an erased
// customer until the commit deletes it) or if ws is complete or known
// says id was never stored (both spare a store read that would find
// nothing); else it is what the store holds; and a hit in any layer is
// never older than what the layers after it hold for id.
//
// Only the task goroutine uses a customers.
type customers struct {
	store *state.Store
	part  int32

	// pend maps each customer changed since it was last encoded into ws
	// to its decoded object (the one cache holds for it, if cache holds
	// it) and the due time of the timer index entry the store held for it
	// at its first change. It holds at most pendMax; while it holds id,
	// the encoding of id in ws (if any) is stale.
	pend map[string]pendCustomer
	// cache holds decoded customers, each the current one: a record
	// changes the cached object in place, and changed caches the objects
	// it puts in pend.
	cache    *state.Cache[*cust]
	cacheCap int
	// ws holds the customers encoded (writeset.go); wsMax is the task's
	// share of Config.WriteSetBytes, past which the task commits (full).
	ws    writeSet
	wsMax int
	// erased holds the customers erased since the last commit, with the
	// due time of the timer index entry the store holds for each (0:
	// none). The commit deletes them from the store before it writes ws
	// (a customer erased and then seen again in the same cycle is a new
	// customer).
	erased map[string]int64
	// known holds every customer id the store may hold (see package
	// knownids): an id is added before the commit can write it.
	known *knownids.Filter

	// spare holds customers nothing refers to, for get to decode into;
	// evicted holds customers the cache evicted while pend held them,
	// which encodePending moves to spare once it has encoded them. Neither
	// holds a customer's value.
	spare   []*cust
	evicted []*cust
	// buf holds a store read, or an encoding on its way into ws.
	buf []byte
	// loadKnown holds the hashes of the ids the load scan read, for
	// loaded to add to known once it knows how many there are.
	loadKnown []uint64

	// hits and misses count the lookups served from memory and from the
	// store since takeCounts.
	hits, misses int
}

// newCustomers returns the customers of partition part of store, with a
// cache of cacheCap decoded customers, a write set of wsMax bytes and a
// filter of known ids of knownBytes.
func newCustomers(store *state.Store, part int32, cacheCap, wsMax, knownBytes int) customers {
	return customers{
		store:    store,
		part:     part,
		pend:     make(map[string]pendCustomer),
		cache:    state.NewCache[*cust](cacheCap),
		cacheCap: cacheCap,
		ws:       newWriteSet(wsMax),
		wsMax:    wsMax,
		erased:   make(map[string]int64),
		known:    knownids.New(knownBytes),
	}
}

// cust is a customer as a task holds it decoded (in its cache, pend and
// spare list): its state and, while it is dirty, its place in the timer
// clock's dues, slot, valid in the clock's cycle only. A customer decoded
// from a dirty write-set entry gets the place the entry keeps.
type cust struct {
	schemas.Customer
	slot  int32
	cycle uint64
	// value is the models' evaluation of the customer at its EvaluatedAt
	// when valued is set (the Outcome of its last evaluation was Valued),
	// so that its profile need not evaluate them again.
	value  clv.Value
	valued bool
}

func newCust(id string) *cust { return &cust{Customer: schemas.Customer{CustomerID: id}} }

// pendCustomer is a customer changed since it was last encoded into the
// write set, and the due time of its stored timer index entry when it was
// first changed.
type pendCustomer struct {
	c        *cust
	storedAt int64
}

// pendMax bounds pend: a task holds at most this many changed customers
// decoded (about 0.75 KiB each) besides its cache. In a replay, which has
// no cache, pend is what holds its customers decoded, and a small one
// stays in the processor's caches, which measured cheaper than larger ones
// (BENCHMARKS.md).
const pendMax = 256

// spareMax bounds the customers kept for reuse: a lookup takes one and the
// cache insertion that follows gives one back, and encodePending gives back
// those that only pend held, up to pendMax at once. In a replay, which
// keeps no cache, those are all of them: dropped, they were about a fifth
// of what a replay allocated (BENCHMARKS.md).
const spareMax = pendMax

// pendEntryBytes is what a customer in pend is counted for against the
// write set's share: about what its entry will take there (header, id,
// encoding, room to grow) and the dirty overhead.
const pendEntryBytes = 256 + wsDirtyOverhead

// get returns the current customer id, or a new customer (isNew) if there
// is none; clock is the timer clock's cycle, in which a customer decoded
// from a dirty write-set entry takes the place in dues the entry keeps. A
// customer read from the store is cached only once changed takes it; a new
// one enters pend and the write set only then too.
func (cs *customers) get(id string, clock uint64) (c *cust, isNew bool, err error) {
	// pend first: small, and it holds the customers changed last (the
	// cache holds the same object for any of them it holds).
	if p, ok := cs.pend[id]; ok {
		cs.hits++
		return p.c, false, nil
	}
	if c, ok := cs.cache.Get([]byte(id)); ok {
		cs.hits++
		return c, false, nil
	}
	if enc, slot, ok := cs.ws.get(id); ok {
		cs.hits++
		c = cs.spareCustomer()
		if err := schemas.DecodeCustomer(enc, &c.Customer); err != nil {
			return nil, false, fmt.Errorf("decode changed customer: %w", err)
		}
		if slot >= 0 {
			c.slot, c.cycle = slot, clock
		}
		cs.cachePut(c)
		return c, false, nil
	}
	if _, gone := cs.erased[id]; gone {
		// Erased in this cycle: the store still holds the old customer
		// until the commit deletes it.
		return newCust(id), true, nil
	}
	h := cs.known.Hash(id)
	if cs.ws.complete || !cs.known.MayContain(h) {
		// Not in the store: every customer it holds is in the write set
		// while that is complete (an erased one is in neither, once its
		// commit deleted it), and in known always.
		return cs.created(id, h), true, nil
	}
	cs.misses++
	val, found, err := cs.store.GetCustomer(cs.part, []byte(id), cs.buf[:0])
	if err != nil {
		return nil, false, fmt.Errorf("read customer: %w", err)
	}
	if !found {
		return cs.created(id, h), true, nil
	}
	cs.buf = val
	c = cs.spareCustomer()
	if err := schemas.DecodeCustomer(val, &c.Customer); err != nil {
		return nil, false, fmt.Errorf("decode stored customer: %w", err)
	}
	return c, false, nil
}

// created returns a new customer id (whose hash in known is h), which
// known records first: the commit may write it to the store.
func (cs *customers) created(id string, h uint64) *cust {
	cs.known.Add(h)
	return newCust(id)
}

// changed records c, which get returned and a record or timer has just
// changed, as changed: in pend and the cache, with due, its new deadline,
// as TimerAt (pend keeps the one the store holds). clock is the timer
// clock's cycle (see encodePending).
func (cs *customers) changed(c *cust, due int64, clock uint64) error {
	if _, ok := cs.pend[c.CustomerID]; !ok {
		if len(cs.pend) >= pendMax {
			if err := cs.encodePending(clock); err != nil {
				return err
			}
		}
		// The stored entry's, unless c is in ws already (ws keeps its own).
		cs.pend[c.CustomerID] = pendCustomer{c: c, storedAt: c.TimerAt}
		cs.cachePut(c)
	}
	c.TimerAt = due
	return nil
}

// erase forgets c, which get returned (not new): it leaves pend, the cache
// and the write set, and erased keeps the due time of the timer index
// entry the store holds for it, for the commit to delete with it.
func (cs *customers) erase(c *cust) {
	id := c.CustomerID
	if _, ok := cs.erased[id]; !ok {
		// The index entry the store holds belongs to the stored customer;
		// a customer erased, seen again and erased again in one cycle has
		// no other entry.
		at := c.TimerAt
		if p, ok := cs.pend[id]; ok {
			at = p.storedAt
		}
		if stored, ok := cs.ws.storedAt(id); ok {
			at = stored // changed before pend held it
		}
		cs.erased[id] = at
	}
	delete(cs.pend, id)
	cs.ws.remove(id)
	cs.cache.Delete(id)
}

// cached returns the decoded customer id if the cache holds it.
func (cs *customers) cached(id []byte) (*cust, bool) { return cs.cache.Get(id) }

// cachePut caches c, and keeps the customer it evicts for reuse
// (spareCustomer), at once or, if pend still holds it, once encodePending
// has encoded it (evicted).
func (cs *customers) cachePut(c *cust) {
	old, ok := cs.cache.Put(c.CustomerID, c)
	if !ok {
		return
	}
	if p, ok := cs.pend[old.CustomerID]; ok && p.c == old {
		cs.evicted = append(cs.evicted, old)
		return
	}
	cs.keepSpare(old)
}

// keepSpare keeps c, which nothing holds any more, for reuse.
func (cs *customers) keepSpare(c *cust) {
	if len(cs.spare) < spareMax {
		cs.spare = append(cs.spare, c)
	}
}

// spareCustomer returns a customer to decode into: one nothing holds any
// more (evicted from the cache, or encoded out of pend with no cache),
// whose slices the decoder reuses, or a new one. Without it, a task whose
// customers do not fit its cache (a replay's, which has none) made a new
// customer and its slices for nearly every record (BENCHMARKS.md).
func (cs *customers) spareCustomer() *cust {
	if n := len(cs.spare); n > 0 {
		c := cs.spare[n-1]
		cs.spare[n-1] = nil
		cs.spare = cs.spare[:n-1]
		c.cycle = 0 // its place in dues was another customer's
		c.valued = false
		return c
	}
	return new(cust)
}

// hasChanged reports whether a customer changed since the last commit.
func (cs *customers) hasChanged() bool {
	return len(cs.pend) > 0 || cs.ws.dirtyLen() > 0
}

// encodePending moves the customers of pend into the write set, encoded,
// each with its place in the timer clock's dues if it got it in the
// clock's cycle clock.
func (cs *customers) encodePending(clock uint64) error {
	for id, p := range cs.pend {
		var err error
		cs.buf, err = schemas.AppendCustomer(cs.buf[:0], &p.c.Customer)
		if err != nil {
			return fmt.Errorf("encode customer: %w", err)
		}
		slot := int32(-1)
		if p.c.cycle == clock {
			slot = p.c.slot
		}
		cs.ws.put(id, cs.buf, p.storedAt, p.c.TimerAt, slot)
	}
	if cs.cache.Cap() == 0 {
		// Without a cache nothing else holds them.
		for _, p := range cs.pend {
			cs.keepSpare(p.c)
		}
	}
	clear(cs.pend)
	// Customers the cache evicted while pend held them: nothing holds
	// them now.
	for i, c := range cs.evicted {
		cs.keepSpare(c)
		cs.evicted[i] = nil
	}
	cs.evicted = cs.evicted[:0]
	return nil
}

// full reports whether the write set holds its share of WriteSetBytes and
// cannot make room without a commit (writeSet.makeRoom: a replay's set
// drops clean customers, and any set the bytes its moved entries left, as
// long as the changed customers leave room). The customers in pend count
// at pendEntryBytes each: the commit encodes them into the write set, and
// a task whose changed customers all fit in pend would otherwise never see
// its set fill.
func (cs *customers) full() bool {
	pend := pendEntryBytes * len(cs.pend)
	return cs.ws.bytes()+pend >= cs.wsMax && !cs.ws.makeRoom(cs.wsMax-pend)
}

// erasedLen returns the number of customers erased since the last commit.
func (cs *customers) erasedLen() int { return len(cs.erased) }

// erasures returns the customers erased since the last commit, with the
// due time of the timer index entry the store holds for each (0: none).
// The caller must not change it.
func (cs *customers) erasures() map[string]int64 { return cs.erased }

// commitOrder returns the customers changed since the last commit, which
// encodePending must have encoded, and their timer index moves, in the
// store's key order (writeSet.commitOrder); return them with putRefs.
func (cs *customers) commitOrder() (dirty, moves *[]commitRef, batchBytes int) {
	return cs.ws.commitOrder()
}

// id and enc return the id and encoding of the entry r of commitOrder.
func (cs *customers) id(r commitRef) []byte  { return cs.ws.id(r.off) }
func (cs *customers) enc(r commitRef) []byte { return cs.ws.enc(r.off) }

// fillBatch writes the customers' part of a commit to b: the erased
// customers and their timer index entries deleted, then the dirty
// customers (commitOrder) written. It returns the change in indexed
// timers.
func (cs *customers) fillBatch(b *state.Batch, dirty []commitRef) (pendingDelta int) {
	for id, due := range cs.erased {
		b.DeleteCustomer(cs.part, id)
		if due != 0 {
			b.DeleteTimer(cs.part, due, id)
			pendingDelta--
		}
	}
	for _, r := range dirty {
		b.PutCustomer(cs.part, string(cs.ws.id(r.off)), cs.ws.enc(r.off))
	}
	return pendingDelta
}

// committed runs once the commit made the write set and the erasures
// durable: the entries become clean (kept if keepClean is set and there
// is room, see writeSet.committed), and the erasures are done.
func (cs *customers) committed(keepClean bool) {
	cs.ws.committed(cs.wsMax, keepClean)
	clear(cs.erased)
}

// takeCounts returns the lookups served from memory and from the store
// since its last call.
func (cs *customers) takeCounts() (hits, misses int) {
	hits, misses = cs.hits, cs.misses
	cs.hits, cs.misses = 0, 0
	return hits, misses
}

// dropClean empties the write set, which holds only clean customers (right
// after a commit), for a rewrite of the store to make them stale. It is
// not complete afterwards: it holds none of the stored customers.
func (cs *customers) dropClean() { cs.ws = newWriteSet(cs.wsMax) }

// scanned takes c, read by the task's load scan of the store: the cache
// keeps it while it has room, and loaded adds its id to known.
func (cs *customers) scanned(c *cust) {
	cs.loadKnown = append(cs.loadKnown, cs.known.Hash(c.CustomerID))
	if cs.cache.Len() < cs.cacheCap {
		cs.cache.Put(c.CustomerID, c)
	}
}

// loaded ends the load scan: known gets every id scanned, in a first layer
// sized for twice their number. complete says the write set holds every
// stored customer (a replay's, from an empty store: its write set keeps
// every customer put into it until a commit drops some, and while it does
// a customer in neither pend, the cache nor ws is new).
func (cs *customers) loaded(complete bool) {
	cs.known.Reserve(2 * len(cs.loadKnown))
	for _, h := range cs.loadKnown {
		cs.known.Add(h)
	}
	cs.loadKnown = nil
	cs.ws.complete = complete
}

// memory returns the memory of the decoded cache, the write set and the
// filter of known ids, as valora_memory_bytes counts them.
func (cs *customers) memory() (decoded, writeSet, knownIDs int64) {
	return int64(cs.cache.Len()) * CacheCustomerBytes, int64(cs.ws.bytes()), int64(cs.known.Bytes())
}
