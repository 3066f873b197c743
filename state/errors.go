package state

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/cockroachdb/pebble/v2"
)

// Error is the error of a Store, Batch or Loader operation that failed on
// the store itself: an I/O error or a full disk under Pebble, or a stored
// value that does not decode. It names the store's directory once, before
// the operation and its cause:
//
//	state "/var/lib/valora": commit state batch: pebble: fatal commit error: write /var/lib/valora/000012.log: no space left on device
//
// Callers add their own context around it and need not repeat the
// directory. errors.Is finds the cause through it (syscall.ENOSPC,
// ErrCorrupt, ...), and errors.As tells a failure of the store from any
// other.
type Error struct {
	// Dir is the store's directory (Options.Dir).
	Dir string
	// Err is the operation and its cause.
	Err error
}

// Error returns `state "<dir>": <operation>: <cause>`.
func (e *Error) Error() string { return "state " + strconv.Quote(e.Dir) + ": " + e.Err.Error() }

// Unwrap returns the operation's error.
func (e *Error) Unwrap() error { return e.Err }

// wrap returns err as an *Error of s.
func (s *Store) wrap(err error) error { return &Error{Dir: s.dir, Err: err} }

// errStopped is the cause of the writes a store refuses after one failed
// (see Store.write).
var errStopped = errors.New("the store stopped writing after an earlier write failed")

// write runs f, a write to Pebble (a batch commit, an ingest, a flush, a
// compaction), and returns its error, wrapped, as an *Error. The first
// write that fails (but for a benign reason) stops the store: every later one fails at once with
// the first one's cause, without reaching Pebble. Pebble treats a failed
// write-ahead log write or sync as fatal (it calls Logger.Fatalf, whose
// panic call turns back into the error), and its commit pipeline may be
// wedged afterwards: a later commit could wait forever. Reads go on, so
// that a caller can finish what it was reading; the process is expected
// to stop, and the store to be opened again, when the fault is mended.
//
// f runs on a goroutine of its own, so that a write stuck in a write stall
// behind a flush that cannot succeed (a full disk: Pebble retries the
// flush until it does) returns when the store stops (see stop); the
// goroutine finishes when Pebble lets the write through, if ever.
func (s *Store) write(op string, f func() error) error {
	if first := s.failed.Load(); first != nil {
		return s.wrap(fmt.Errorf("%s: %w: %w", op, errStopped, *first))
	}
	done := make(chan error, 1)
	go func() { done <- s.call(f) }()
	var err error
	select {
	case err = <-done:
	case <-s.stopped:
		select {
		case err = <-done: // finished all the same
		default:
			return s.wrap(fmt.Errorf("%s: %w: %w", op, errStopped, *s.failed.Load()))
		}
	}
	if err != nil {
		if !benign(err) {
			cause := err
			s.failed.CompareAndSwap(nil, &cause)
		}
		return s.wrap(fmt.Errorf("%s: %w", op, err))
	}
	return nil
}

// benign reports whether a failed write's error leaves the store sound: the
// caller's context ended (an ingest or compaction given up), or the store
// is read-only.
func benign(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, pebble.ErrReadOnly)
}

// call runs f and turns a fatalError panic (Pebble's Fatalf) into its
// error.
func (s *Store) call(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			fe, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			err = fe
		}
	}()
	return f()
}

// stop stops the store's writes with cause, from Pebble's event listener:
// writes stall (the memtables are full, or level 0 is) while the flushes
// or compactions that would end the stall fail. Pebble retries them until
// the fault is mended, and would keep the stalled writes waiting until
// then; the store instead fails them, and every later one, with cause.
func (s *Store) stop(cause error) {
	s.stopOnce.Do(func() {
		s.failed.CompareAndSwap(nil, &cause)
		s.stalled.Store(true)
		close(s.stopped)
	})
}

// fatalError is the value pebbleLogger.Fatalf panics with: the message and,
// when one of its arguments is an error, that error (so that errors.Is
// finds the cause, syscall.ENOSPC say, through it).
type fatalError struct {
	msg   string
	cause error
}

// Error returns the message Pebble gave.
func (e fatalError) Error() string { return e.msg }

// Unwrap returns the error among Fatalf's arguments, if any.
func (e fatalError) Unwrap() error { return e.cause }

// closeIter closes iter and returns its error: the one that stopped it, or
// else Close's. (Close returns the error that stopped the iterator too, so
// joining both would say it twice.)
func closeIter(iter *pebble.Iterator) error {
	err := iter.Error()
	if cerr := iter.Close(); err == nil {
		err = cerr
	}
	return err
}
