package state

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Defaults applied by Open to zero-valued Options fields.
const (
	// DefaultCacheSize is the Pebble block cache size when Options.CacheSize
	// is 0.
	DefaultCacheSize int64 = 256 << 20
	// DefaultMemTableSize is the memtable size when Options.MemTableSize is 0.
	DefaultMemTableSize uint64 = 64 << 20
	// DefaultBulkLoadMemTableSize is the memtable size when
	// Options.MemTableSize is 0 and Options.BulkLoad is set.
	DefaultBulkLoadMemTableSize uint64 = 128 << 20
	// MaxMemTableSize is the largest accepted Options.MemTableSize.
	MaxMemTableSize uint64 = 2 << 30
)

// Options configures Open. The zero value of every field but Dir is valid and
// means the documented default.
type Options struct {
	// Dir is the directory of the store. Required. Open creates it unless
	// ReadOnly is set.
	Dir string
	// CacheSize is the Pebble block cache size in bytes: the room for
	// blocks, on top of the memtables (Pebble charges those to its cache
	// too, so the cache it is given is larger by their size). 0 means
	// DefaultCacheSize (256 MiB). It should cover the working set of hot
	// customers that the in-memory Cache does not hold.
	CacheSize int64
	// MemTableSize is the size of one memtable in bytes; up to two may be
	// in memory at once (the one being written and one being flushed). 0 means DefaultMemTableSize
	// (64 MiB), or DefaultBulkLoadMemTableSize (128 MiB) with BulkLoad. At
	// most MaxMemTableSize.
	MemTableSize uint64
	// BulkLoad tunes the store for replay and bulk loads, where writes
	// dominate: a larger default memtable and looser L0 thresholds, so writes stall less at the price of a higher read
	// amplification until compactions catch up. Durability is unchanged.
	BulkLoad bool
	// Logger receives Pebble's log messages (Info at info level, Error and
	// Fatal at error level, attribute component=pebble). nil discards them.
	// A Pebble Fatalf panics after logging: Pebble calls it only when it
	// cannot continue safely (a failed write-ahead log write or sync,
	// corruption, a failed MANIFEST write). Under a batch commit or an
	// ingest the panic becomes that call's error (see Error).
	Logger *slog.Logger
	// ReadOnly opens an existing store without writing to it: Open fails if
	// the store does not exist, and Batch.Commit, Compact fail.
	ReadOnly bool
	// FS is the file system the store lives on: Pebble's files and every
	// file or directory this package creates, lists or removes itself (the
	// loaders' tables, Purge's cleanup). nil means vfs.Default, the
	// operating system's. Tests pass a file system that injects faults
	// (Pebble's errorfs) to see how the store and its callers fail.
	FS vfs.FS
	// OnFatal is called when Pebble, on one of its own goroutines (a
	// flush, a compaction), meets a fault it cannot go on from: a failed
	// MANIFEST write or sync, say on a full disk. It gets the *Error, and
	// must end the process without returning and without closing the
	// store: Pebble may hold its locks, and must not resume. nil means a
	// panic with the error. (A fault under a call of the store's caller, a
	// batch commit or an ingest, is that call's error instead.)
	OnFatal func(err error)
}

// Validate reports every invalid field of o, each error naming its field. Open
// calls it.
func (o *Options) Validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("state options: Dir is required"))
	}
	if o.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("state options: CacheSize is %d, must be >= 0 (0 means %d)",
			o.CacheSize, DefaultCacheSize))
	}
	if o.MemTableSize > MaxMemTableSize {
		errs = append(errs, fmt.Errorf("state options: MemTableSize is %d, must be <= %d",
			o.MemTableSize, MaxMemTableSize))
	}
	if o.BulkLoad && o.ReadOnly {
		errs = append(errs, errors.New("state options: BulkLoad and ReadOnly cannot both be set"))
	}
	return errors.Join(errs...)
}

// withDefaults returns a copy of o with the zero-valued fields set to their
// defaults.
func (o Options) withDefaults() Options {
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
		if o.BulkLoad {
			o.MemTableSize = DefaultBulkLoadMemTableSize
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	return o
}

// memTablesInMemory is the most memtables a store holds at once (Pebble's
// MemTableStopWritesThreshold): the one being written and one being flushed.
//
// Pebble charges memtables to its block cache: each one reserves its size
// in the cache while it lives. The cache Pebble is given is therefore
// Options.CacheSize plus room for memtablesInMemory memtables, so that
// CacheSize bytes of blocks stay cached even while the memtables are full.
// (Given CacheSize alone, a replay's 128 MiB cache beside two 64 MiB
// memtables held no block at all.)
const memTablesInMemory = 2

// pebbleOptions builds the Pebble options for o (defaults already applied).
// The choices follow measurements on small values with a high write rate:
// the newest format (columnar blocks), a large block cache and memtable, bloom
// filters on every level so that a lookup of a new customer rarely touches
// disk, and an eager L0 compaction threshold that keeps read amplification
// low.
func (s *Store) pebbleOptions(o Options) *pebble.Options {
	upper := max(2, runtime.GOMAXPROCS(0)/2)
	po := &pebble.Options{
		FS:                          o.FS,
		FormatMajorVersion:          pebble.FormatNewest,
		CacheSize:                   o.CacheSize + int64(o.MemTableSize)*memTablesInMemory,
		MemTableSize:                o.MemTableSize,
		L0CompactionThreshold:       2,
		L0StopWritesThreshold:       12,
		CompactionConcurrencyRange:  func() (int, int) { return 1, upper },
		Logger:                      pebbleLogger{l: o.Logger, dir: o.Dir, onFatal: o.OnFatal},
		ReadOnly:                    o.ReadOnly,
		ErrorIfNotExists:            o.ReadOnly,
		EventListener:               s.eventListener(o.Logger),
		MemTableStopWritesThreshold: memTablesInMemory,
	}
	if o.BulkLoad {
		po.L0CompactionThreshold = 4
		po.L0StopWritesThreshold = 32
	}
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return po
}

// eventListener counts write stalls for the metrics, logs the events that
// need attention, and stops the store when writes stall behind flushes or
// compactions that fail (see Store.stop). Nothing here runs per write.
func (s *Store) eventListener(l *slog.Logger) *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: func(err error) {
			// Pebble retries a failed flush at once: on a full disk this
			// runs thousands of times a second, so only the first error
			// of a series is logged.
			if s.bgErr.Swap(&err) == nil {
				l.Error("pebble background error", "component", "pebble", "err", err)
			}
			if s.stallStart.Load() != 0 {
				s.stop(err)
			}
		},
		FlushEnd: func(info pebble.FlushInfo) {
			if info.Err == nil {
				s.bgErr.Store(nil)
			}
		},
		CompactionEnd: func(info pebble.CompactionInfo) {
			if info.Err == nil {
				s.bgErr.Store(nil)
			}
		},
		DiskSlow: func(info pebble.DiskSlowInfo) {
			l.Warn("pebble disk slow", "component", "pebble", "info", info.String())
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			s.writeStalls.Add(1)
			s.stallStart.Store(time.Now().UnixNano())
			if err := s.bgErr.Load(); err != nil {
				s.stop(*err)
			}
			l.Debug("pebble write stall", "component", "pebble", "reason", info.Reason)
		},
		WriteStallEnd: func() {
			if start := s.stallStart.Swap(0); start != 0 {
				s.stallNanos.Add(time.Now().UnixNano() - start)
			}
		},
	}
}

// pebbleLogger bridges Pebble's Logger interface to slog.
type pebbleLogger struct {
	l       *slog.Logger
	dir     string
	onFatal func(error)
}

var _ pebble.Logger = pebbleLogger{}

// Infof logs at info level.
func (p pebbleLogger) Infof(format string, args ...any) { p.log(slog.LevelInfo, format, args) }

// Errorf logs at error level.
func (p pebbleLogger) Errorf(format string, args ...any) { p.log(slog.LevelError, format, args) }

// Fatalf logs at error level and panics with a fatalError: Pebble cannot go
// on, and must not return to the code that called Fatalf. Store.call
// recovers the panic of a write made on its caller's goroutine (a failed
// write-ahead log sync); on Pebble's own goroutines (a failed MANIFEST
// write in a flush or compaction) nothing can, and Options.OnFatal, if
// set, ends the process in its own way first.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	fe := fatalError{msg: fmt.Sprintf(format, args...)}
	for _, a := range args {
		if err, ok := a.(error); ok {
			fe.cause = err
			break
		}
	}
	p.l.Error(fe.msg, "component", "pebble", "fatal", true)
	if p.onFatal != nil && !underWrite() {
		p.onFatal(&Error{Dir: p.dir, Err: fe})
	}
	panic(fe)
}

// writeFunc is the name of Store.call as the runtime reports it.
var writeFunc = reflect.TypeFor[Store]().PkgPath() + ".(*Store).call"

// underWrite reports whether the calling goroutine runs Store.call, which
// recovers a fatalError panic. Only Fatalf calls it, at most once per
// store's life.
func underWrite() bool {
	pcs := make([]uintptr, 256)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	for {
		f, more := frames.Next()
		if f.Function == writeFunc {
			return true
		}
		if !more {
			return false
		}
	}
}

func (p pebbleLogger) log(level slog.Level, format string, args []any) {
	ctx := context.Background()
	if !p.l.Enabled(ctx, level) {
		return
	}
	p.l.Log(ctx, level, fmt.Sprintf(format, args...), "component", "pebble")
}
