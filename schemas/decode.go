package schemas

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"
)

// A hand-written decoder for the customer state written under the current
// customer_state.avsc, the value read on every lookup that misses the
// decoded cache, in every restore and every timer-index rebuild. It accepts
// what the generic decoder accepts (including array blocks with a negative
// count and a byte size, which other Avro writers produce) and rejects what
// it rejects: a truncated value, a varint longer than its type allows, a
// negative or oversized length, a boolean other than 0 or 1, an unknown
// union branch (its index an int), more than maxArrayLen items, trailing bytes.
// TestHandDecoderMatchesSchema and FuzzDecodeCustomerHand check it against the
// generic decoder. Values written under an earlier schema go through the
// generic decoder, which resolves them.

// errArrayBound marks an array whose block counts are out of bounds. The
// generic decoder does not always reject these: it sums the counts in an int
// that can wrap, and then builds a slice of negative length.
var errArrayBound = errors.New("array size out of bounds")

// bodyReader reads Avro binary values from a byte slice. The first error
// sticks: later reads return zero values.
type bodyReader struct {
	b    []byte
	pos  int
	err  error
	slab *slab
}

func (r *bodyReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// varint reads an unsigned varint of at most maxBytes bytes. Like the
// generic decoder, it keeps the low bits of a last byte that overflows.
func (r *bodyReader) varint(maxBytes int, what string) uint64 {
	b, pos := r.b, r.pos
	var v uint64
	var s uint
	for n := 0; n < maxBytes; n++ {
		if pos >= len(b) {
			r.fail(fmt.Errorf("reading %s: %w", what, io.ErrUnexpectedEOF))
			return 0
		}
		c := b[pos]
		pos++
		v |= uint64(c&0x7f) << s
		if c < 0x80 {
			r.pos = pos
			return v
		}
		s += 7
	}
	r.fail(fmt.Errorf("reading %s: %s overflow", what, what))
	return 0
}

// long reads a long. Its one-byte case is inlined; after an error it may
// return a value other than 0, which the caller discards with the rest.
func (r *bodyReader) long() int64 {
	if b, p := r.b, r.pos; p < len(b) && b[p] < 0x80 {
		r.pos = p + 1
		return int64(b[p]>>1) ^ -int64(b[p]&1)
	}
	return r.longSlow()
}

// longSlow reads a long of more than one byte.
func (r *bodyReader) longSlow() int64 {
	if r.err != nil {
		return 0
	}
	var u uint64
	switch b, pos := r.b, r.pos; {
	case len(b)-pos >= maxVarintLen:
		var n int
		if u, n = uvarint10(b[pos : pos+maxVarintLen]); n == 0 {
			r.fail(errors.New("reading long: long overflow"))
			return 0
		}
		r.pos += n
	default:
		u = r.varint(maxVarintLen, "long")
	}
	return int64(u>>1) ^ -int64(u&1)
}

// maxVarintLen is the longest varint of a long.
const maxVarintLen = 10

// uvarint10 decodes the unsigned varint at the start of b, which holds
// maxVarintLen bytes, without a loop: it reads eight bytes at once, finds
// the last byte by its clear continuation bit, and packs the 7-bit groups
// (packVarint). It returns the value and its length, or 0 bytes when all
// ten bytes have the continuation bit (an overflow). Like varint, it keeps
// the low bit of a tenth byte and drops the rest. Most longs of a customer
// state that are not a single byte are times (six bytes) and event hashes
// (nine or ten), where the byte loop was most of a decode.
func uvarint10(b []byte) (uint64, int) {
	_ = b[maxVarintLen-1]
	x := binary.LittleEndian.Uint64(b)
	if stops := ^x & 0x8080808080808080; stops != 0 {
		bitLen := bits.TrailingZeros64(stops) + 1 // 8 × the bytes read
		if bitLen < 64 {
			x &= 1<<bitLen - 1
		}
		return packVarint(x), bitLen / 8
	}
	u := packVarint(x) | uint64(b[8]&0x7f)<<56
	if b[8] < 0x80 {
		return u, 9
	}
	if c := b[9]; c < 0x80 {
		return u | uint64(c)<<63, 10
	}
	return 0, 0
}

// packVarint packs the eight 7-bit groups of x (one per byte, little
// endian, continuation bits ignored) into a 56-bit value.
func packVarint(x uint64) uint64 {
	x &= 0x7f7f7f7f7f7f7f7f
	x = x&0x007f007f007f007f | x>>1&0x3f803f803f803f80
	x = x&0x00003fff00003fff | x>>2&0x0fffc0000fffc000
	return x&0x000000000fffffff | x>>4&0x00fffffff0000000
}

func (r *bodyReader) int() int32 {
	if r.err != nil {
		return 0
	}
	u := uint32(r.varint(5, "int"))
	return int32(u>>1) ^ -int32(u&1)
}

func (r *bodyReader) bool() bool {
	if r.err != nil {
		return false
	}
	if r.pos >= len(r.b) {
		r.fail(fmt.Errorf("reading bool: %w", io.ErrUnexpectedEOF))
		return false
	}
	c := r.b[r.pos]
	r.pos++
	if c > 1 {
		r.fail(fmt.Errorf("reading bool: invalid bool %d", c))
		return false
	}
	return c == 1
}

// bytes reads the bytes of a string; they alias the input.
func (r *bodyReader) bytes() []byte {
	n := r.long()
	if r.err != nil {
		return nil
	}
	switch {
	case n < 0:
		r.fail(fmt.Errorf("reading string: negative length %d", n))
		return nil
	case n > maxBytesLen:
		r.fail(fmt.Errorf("reading string: length %d over the %d-byte bound", n, maxBytesLen))
		return nil
	case n > int64(len(r.b)-r.pos):
		r.fail(fmt.Errorf("reading string of %d bytes: %w", n, io.ErrUnexpectedEOF))
		return nil
	}
	b := r.b[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return b
}

// string reads a string, copied into the reader's slab.
func (r *bodyReader) string() string {
	b := r.bytes()
	if len(b) == 0 {
		return ""
	}
	if len(b) > slabSize/4 {
		return string(b)
	}
	if r.slab == nil {
		r.slab = slabPool.Get().(*slab)
	}
	if cap(r.slab.b)-len(r.slab.b) < len(b) {
		r.slab.b = make([]byte, 0, slabSize)
	}
	n := len(r.slab.b)
	r.slab.b = append(r.slab.b, b...)
	return unsafe.String(&r.slab.b[n], len(b))
}

// slabSize is the size of the blocks that decoded strings are carved from.
const slabSize = 1024

// A slab is a block of memory that strings are carved from, so that most
// decodes allocate nothing. Bytes appended to it are never written again:
// the strings that view them stay immutable, and keep the block alive.
type slab struct{ b []byte }

var slabPool = sync.Pool{New: func() any { return new(slab) }}

// release returns the reader's slab to the pool.
func (r *bodyReader) release() {
	if r.slab != nil {
		slabPool.Put(r.slab)
		r.slab = nil
	}
}

// word reads a string that takes few distinct values (a tier, a stage, a
// policy version), interned.
func (r *bodyReader) word() string { return intern(r.bytes()) }

// internTable holds recently interned short strings, by hash. Entries are
// replaced on collision; a lookup compares contents, so any entry is right.
var internTable [256]atomic.Pointer[string]

// intern returns string(b), without allocating when an equal string was
// interned recently. Customers share a handful of tiers, stages and policy
// versions, so a decoded customer need not hold its own copies.
func intern(b []byte) string {
	if len(b) == 0 || len(b) > 32 {
		return string(b)
	}
	// A cheap hash: a collision costs an allocation, never a wrong string.
	h := uint32(len(b))*2654435761 ^ uint32(b[0])<<16 ^ uint32(b[len(b)/2])<<8 ^ uint32(b[len(b)-1])
	slot := &internTable[(h*2654435761)>>24]
	if p := slot.Load(); p != nil && *p == string(b) {
		return *p
	}
	s := string(b)
	slot.Store(&s)
	return s
}

// present reads the branch index of a ["null", T] union: true when a T
// follows, false for null or after an error. Like the generic decoder, it
// reads the index as an int: padded to 5 bytes it is read, to 6 it is
// malformed.
func (r *bodyReader) present() bool {
	switch i := r.int(); {
	case r.err != nil, i == 0:
		return false
	case i == 1:
		return true
	default:
		r.fail(fmt.Errorf("reading union: unknown branch %d", i))
		return false
	}
}

// optWord reads a ["null", "string"] union of few distinct values.
func (r *bodyReader) optWord() *string {
	if !r.present() {
		return nil
	}
	s := r.word()
	if r.err != nil {
		return nil
	}
	return &s
}

// blockCount reads the item count of an array or map block (what), and
// skips the byte size that follows a negative count. It returns 0 at the
// end of the value and after an error.
func (r *bodyReader) blockCount(what string) int64 {
	count := r.long()
	switch {
	case r.err != nil:
		return 0
	case count >= 0:
		return count
	case count == -1<<63:
		r.fail(fmt.Errorf("reading %s: block count %d: %w", what, count, errArrayBound))
		return 0
	}
	_ = r.long() // the block's size in bytes
	if r.err != nil {
		return 0
	}
	return -count
}

// longs reads an array of long into dst[:0].
func (r *bodyReader) longs(dst []int64) []int64 {
	dst = dst[:0]
	for {
		count := r.blockCount("array")
		if count == 0 {
			break
		}
		if count > maxArrayLen-int64(len(dst)) {
			r.fail(fmt.Errorf("reading array: more than %d items: %w", maxArrayLen, errArrayBound))
			break
		}
		if dst == nil {
			dst = make([]int64, 0, count)
		}
		for range count {
			// The one-byte case of long, by hand: long is too large to
			// inline, and arrays of small counters are most of a state.
			if b, p := r.b, r.pos; p < len(b) && b[p] < 0x80 {
				r.pos = p + 1
				dst = append(dst, int64(b[p]>>1)^-int64(b[p]&1))
				continue
			}
			dst = append(dst, r.longSlow())
		}
	}
	return dst
}

// decodeCustomerBody decodes the body of a customer state written under the
// current schema into v, reusing v's slices.
func decodeCustomerBody(b []byte, v *Customer) error {
	r := bodyReader{b: b}
	defer r.release()
	ibc, pbc, reh := v.InteractionsByChannel, v.PurchasesByChannel, v.RecentEventHashes
	ila, con, cats := v.InteractionLastAt, v.Consent, v.Categories
	*v = Customer{}
	v.CustomerID = r.string()
	v.Version = r.long()
	v.FirstSeen = r.long()
	v.LastActivity = r.long()
	v.FirstPurchase = r.long()
	v.LastPurchase = r.long()
	v.Purchases = r.long()
	v.Refunds = r.long()
	v.RepeatDays = r.long()
	v.MonetaryMinor = r.long()
	v.InteractionsByChannel = r.longs(ibc)
	v.PurchasesByChannel = r.longs(pbc)
	v.RiskUntil = r.long()
	v.ReactivatedAt = r.long()
	v.Tier = r.word()
	v.RScore = r.int()
	v.FScore = r.int()
	v.MScore = r.int()
	v.ChurnRisk = r.bool()
	v.LifecycleStage = r.word()
	v.ValueClass = r.optWord()
	v.EvaluatedAt = r.long()
	v.PolicyVersion = r.word()
	v.TimerAt = r.long()
	v.RecentEventHashes = r.longs(reh)
	v.Complaints = r.long()
	v.ComplaintsResolved = r.long()
	v.LastComplaintAt = r.long()
	v.LastResolvedAt = r.long()
	v.LowSatisfactionUntil = r.long()
	v.LastSatisfaction = r.int()
	v.LastSatisfactionAt = r.long()
	v.InteractionLastAt = r.longs(ila)
	v.Consent = r.longs(con)
	v.Categories = r.categories(cats)
	v.DistinctCategories = r.long()
	v.Treatment = r.word()
	return r.end(customerStateRecord.name)
}

// categories reads an array of CategoryStat into dst[:0]; the category
// names are interned (a customer base shares a catalogue's few names).
func (r *bodyReader) categories(dst []CategoryStat) []CategoryStat {
	dst = dst[:0]
	for {
		count := r.blockCount("array")
		if count == 0 {
			break
		}
		if count > maxArrayLen-int64(len(dst)) {
			r.fail(fmt.Errorf("reading array: more than %d items: %w", maxArrayLen, errArrayBound))
			break
		}
		for range count {
			var c CategoryStat
			c.Category = r.word()
			c.Purchases = r.long()
			c.NetMinor = r.long()
			if r.err != nil {
				return dst
			}
			dst = append(dst, c)
		}
	}
	return dst
}

// end returns the reader's error, or an error for bytes left after the
// record, as a *DecodeError for the record named name.
func (r *bodyReader) end(name string) error {
	if r.err == nil && r.pos != len(r.b) {
		r.err = errors.New("trailing bytes after the record")
	}
	if r.err != nil {
		return decodeErr(ReasonMalformed, fmt.Errorf("%s: %w", name, r.err))
	}
	return nil
}
