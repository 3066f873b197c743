package processor

import "github.com/twmb/franz-go/pkg/kgo"

const (
	// outBlock is the number of records in one block of an outputs.
	outBlock = 1024
	// outChunk is the size of one chunk of encoded keys and values, and
	// outHeadroom the room a chunk must have left to take another record:
	// a TierChange encodes to a few hundred bytes. A larger one still
	// fits: the chunk grows, which only copies that chunk.
	outChunk, outHeadroom = 1 << 20, 4 << 10
	// outRetainBlocks and outRetainChunks bound what an outputs keeps for
	// the next cycle (about 200 KiB of records per block, 1 MiB per chunk):
	// a timer storm's rare huge cycle does not pin its memory.
	outRetainBlocks, outRetainChunks = 16, 8
)

// outputs holds a commit cycle's records for the output and dead-letter
// topics, in the order they were made, and the bytes of the keys and values
// valora encodes for them. Records live in fixed blocks and bytes in fixed
// chunks, so neither is ever copied as a cycle grows (a cycle whose stream
// time jumps can fire timers for a large part of the task's customers) and
// both are reused from cycle to cycle: a record and its bytes stay valid
// until reset, which commit calls only once Kafka acknowledged them all.
type outputs struct {
	blocks [][]kgo.Record
	n      int // records in use, in blocks[0], blocks[1], ...
	chunks [][]byte
	c      int // the chunk being filled; chunks after it are empty
}

// add returns a new zero record at the end.
func (o *outputs) add() *kgo.Record {
	b := o.n / outBlock
	if b == len(o.blocks) {
		o.blocks = append(o.blocks, make([]kgo.Record, outBlock))
	}
	r := &o.blocks[b][o.n%outBlock]
	o.n++
	return r
}

// at returns the i-th record, i < len.
func (o *outputs) at(i int) *kgo.Record { return &o.blocks[i/outBlock][i%outBlock] }

func (o *outputs) len() int { return o.n }

// buf returns the chunk to append the next encoding to; the caller hands
// the result of its appends back with keep.
func (o *outputs) buf() []byte {
	for {
		if o.c == len(o.chunks) {
			o.chunks = append(o.chunks, make([]byte, 0, outChunk))
		}
		if ch := o.chunks[o.c]; cap(ch)-len(ch) >= outHeadroom {
			return ch
		}
		o.c++
	}
}

// keep records what was appended to the chunk buf returned. Slices of it
// taken before the append stay valid even when the append moved it.
func (o *outputs) keep(ch []byte) { o.chunks[o.c] = ch }

// reset forgets every record and byte, keeping up to outRetainBlocks
// blocks and outRetainChunks chunks for the next cycle.
func (o *outputs) reset() {
	for b := 0; b*outBlock < o.n; b++ {
		clear(o.blocks[b][:min(outBlock, o.n-b*outBlock)])
	}
	o.n = 0
	if len(o.blocks) > outRetainBlocks {
		clear(o.blocks[outRetainBlocks:])
		o.blocks = o.blocks[:outRetainBlocks]
	}
	for i := 0; i <= o.c && i < len(o.chunks); i++ {
		o.chunks[i] = o.chunks[i][:0]
	}
	o.c = 0
	if len(o.chunks) > outRetainChunks {
		clear(o.chunks[outRetainChunks:])
		o.chunks = o.chunks[:outRetainChunks]
	}
}
