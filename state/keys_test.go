package state

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func TestKeyRoundTrip(t *testing.T) {
	f := func(name string, key []byte, wantKind byte, wantPartition int32, wantRest string) {
		t.Helper()
		kind, p, rest, err := DecodeKey(key)
		if err != nil {
			t.Fatalf("%s: DecodeKey(%x): %v", name, key, err)
		}
		if kind != wantKind || p != wantPartition || string(rest) != wantRest {
			t.Fatalf("%s: DecodeKey(%x) = (%q, %d, %q), want (%q, %d, %q)",
				name, key, kind, p, rest, wantKind, wantPartition, wantRest)
		}
	}
	f("customer", AppendCustomerKey(nil, 7, "alice"), KindCustomer, 7, "alice")
	f("customer bytes id", AppendCustomerKey(nil, 0, []byte("bob")), KindCustomer, 0, "bob")
	f("customer empty id", AppendCustomerKey(nil, 3, ""), KindCustomer, 3, "")
	f("customer max partition", AppendCustomerKey(nil, math.MaxInt32, "x"), KindCustomer, math.MaxInt32, "x")
	f("customer negative partition", AppendCustomerKey(nil, -1, "x"), KindCustomer, -1, "x")
	f("offset", AppendOffsetKey(nil, 12, "purchases"), KindOffset, 12, "purchases")
	f("meta", AppendMetaKey(nil, "format"), KindMeta, 0, "format")
	f("timer", append(AppendPartitionPrefix(nil, KindTimer, 4), "\x00\x00\x00\x00\x00\x00\x00\x01c"...), KindTimer, 4, "\x00\x00\x00\x00\x00\x00\x00\x01c")
	f("changelog", AppendPartitionPrefix(nil, KindChangelog, 9), KindChangelog, 9, "")

	// The exact layout is part of the on-disk format.
	if got, want := AppendCustomerKey(nil, 0x01020304, "id"), []byte("c\x01\x02\x03\x04id"); !bytes.Equal(got, want) {
		t.Fatalf("customer key = %q, want %q", got, want)
	}
	if got, want := AppendOffsetKey(nil, 1, "t"), []byte("o\x00\x00\x00\x01t"); !bytes.Equal(got, want) {
		t.Fatalf("offset key = %q, want %q", got, want)
	}
}

func TestDecodeKeyErrors(t *testing.T) {
	for _, k := range []string{"", "x", "c", "c\x00\x00\x00", "o\x00", "t\x00\x00\x00\x01\x00\x00", "\xff\x00\x00\x00\x00"} {
		if _, _, _, err := DecodeKey([]byte(k)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("DecodeKey(%q) error = %v, want ErrInvalidKey", k, err)
		}
	}
}

func TestAppendCustomerKeyReusesBuffer(t *testing.T) {
	buf := make([]byte, 0, 64)
	id := []byte("customer-42")
	allocs := testing.AllocsPerRun(100, func() {
		buf = AppendCustomerKey(buf[:0], 5, id)
	})
	if allocs != 0 {
		t.Fatalf("AppendCustomerKey allocates %v times per call with a big enough buffer", allocs)
	}
}

// Keys of one partition sort strictly between the bounds of that partition,
// and those bounds never overlap the next partition's, even when customer ids
// are prefixes of each other or all 0xff.
func TestPartitionBoundsIsolate(t *testing.T) {
	for _, p := range []int32{0, 1, 255, 256, math.MaxInt32, -1, -2} {
		lower, upper := partitionBounds(KindCustomer, p)
		for _, id := range []string{"", "a", "ab", "\x00", "\xff", "\xff\xff\xff\xff\xff"} {
			k := AppendCustomerKey(nil, p, id)
			if bytes.Compare(k, lower) < 0 || (upper != nil && bytes.Compare(k, upper) >= 0) {
				t.Fatalf("p=%d id=%q: key %x outside [%x, %x)", p, id, k, lower, upper)
			}
			next := AppendCustomerKey(nil, p+1, "")
			if p != -1 && bytes.Compare(upper, next) > 0 {
				t.Fatalf("p=%d: upper bound %x above next partition's first key %x", p, upper, next)
			}
		}
	}
}

func TestPrefixSuccessor(t *testing.T) {
	f := func(in, want string, wantNil bool) {
		t.Helper()
		got := prefixSuccessor(nil, []byte(in))
		if wantNil {
			if got != nil {
				t.Fatalf("prefixSuccessor(%x) = %x, want nil", in, got)
			}
			return
		}
		if string(got) != want {
			t.Fatalf("prefixSuccessor(%x) = %x, want %x", in, got, want)
		}
	}
	f("a", "b", false)
	f("a\xff", "b", false)
	f("c\x00\x00\x00\xff", "c\x00\x00\x01", false)
	f("\xff\xff", "", true)
	f("", "", true)
}

func FuzzDecodeKey(f *testing.F) {
	f.Add([]byte("c\x00\x00\x00\x01alice"))
	f.Add([]byte("o\x00\x00\x00\x01purchases"))
	f.Add([]byte("mformat"))
	f.Add([]byte("t\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01c"))
	f.Add([]byte("l\x00\x00\x00\x01"))
	f.Add([]byte{})
	f.Add([]byte("c\x00"))
	f.Fuzz(func(t *testing.T, k []byte) {
		kind, p, rest, err := DecodeKey(k)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("DecodeKey(%x) error %v does not wrap ErrInvalidKey", k, err)
			}
			return
		}
		// A key that decodes re-encodes to itself.
		var re []byte
		if kind == KindMeta {
			re = append(AppendMetaKey(nil, ""), rest...)
		} else {
			re = append(AppendPartitionPrefix(nil, kind, p), rest...)
		}
		if !bytes.Equal(re, k) {
			t.Fatalf("DecodeKey(%x) = (%q, %d, %x), re-encodes to %x", k, kind, p, rest, re)
		}
	})
}

func FuzzCustomerKeyRoundTrip(f *testing.F) {
	f.Add(int32(0), []byte("alice"))
	f.Add(int32(-1), []byte{})
	f.Add(int32(math.MaxInt32), []byte{0xff, 0x00})
	f.Fuzz(func(t *testing.T, p int32, id []byte) {
		k := AppendCustomerKey([]byte("junk"), p, id)[len("junk"):]
		kind, gotP, rest, err := DecodeKey(k)
		if err != nil {
			t.Fatalf("DecodeKey(AppendCustomerKey(%d, %x)): %v", p, id, err)
		}
		if kind != KindCustomer || gotP != p || !bytes.Equal(rest, id) {
			t.Fatalf("round trip of (%d, %x) gave (%q, %d, %x)", p, id, kind, gotP, rest)
		}
		lower, upper := partitionBounds(KindCustomer, p)
		if bytes.Compare(k, lower) < 0 || (upper != nil && bytes.Compare(k, upper) >= 0) {
			t.Fatalf("key %x outside its partition bounds [%x, %x)", k, lower, upper)
		}
	})
}
