package group

import (
	"encoding/hex"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// wireCases returns the bytes a member and a leader put on the wire for a
// few fixed inputs: join metadata in both protocols, with and without an
// advertised URL and changelog positions, and a leader's sync assignments
// with standbys.
func wireCases(t *testing.T) map[string][]byte {
	t.Helper()
	owned := map[string][]int32{"p": {2, 0}, "i": {0, 2}}
	warm := func() map[int32]int64 { return map[int32]int64{0: 12, 3: 7} }
	out := map[string][]byte{
		"join/cooperative": Balancer{Advertise: "http://a:8080", Cooperative: true, Warm: warm}.
			JoinGroupMetadata([]string{"i", "p"}, owned, 5),
		"join/cooperative-bare": Balancer{Cooperative: true}.JoinGroupMetadata([]string{"i", "p"}, nil, 1),
		"join/eager":            Balancer{Advertise: "http://a:8080"}.JoinGroupMetadata([]string{"i", "p"}, owned, 5),
		"join/eager-bare":       Balancer{}.JoinGroupMetadata([]string{"i", "p"}, nil, 1),
	}
	for _, coop := range []bool{true, false} {
		b := Balancer{Cooperative: coop, Replicas: 1}
		meta := func(owned map[string][]int32, warm map[int32]int64) []byte {
			return Balancer{Cooperative: coop, Warm: func() map[int32]int64 { return warm }}.
				JoinGroupMetadata([]string{"i", "p"}, owned, 3)
		}
		members := []kmsg.JoinGroupResponseMember{
			{MemberID: "a", ProtocolMetadata: meta(map[string][]int32{"i": {0, 1, 2, 3}, "p": {0, 1, 2, 3}}, nil)},
			{MemberID: "b", ProtocolMetadata: meta(nil, map[int32]int64{2: 40, 3: 41})},
			{MemberID: "c", ProtocolMetadata: meta(map[string][]int32{"i": {4}, "p": {4}}, map[int32]int64{0: 9})},
		}
		cb, err := kgo.NewConsumerBalancer(b, members)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range b.Balance(cb, map[string]int32{"i": 6, "p": 6}).IntoSyncAssignment() {
			out["sync/"+b.ProtocolName()+"/"+a.MemberID] = a.MemberAssignment
		}
	}
	return out
}

// TestWireGolden pins the protocol names and the bytes of the join
// metadata and sync assignments: members of different versions share a
// group, so a change here is a protocol change.
func TestWireGolden(t *testing.T) {
	if EagerProtocol != "valora-copartition-v1" || CooperativeProtocol != "valora-copartition-v2" {
		t.Errorf("protocol names %q, %q changed", EagerProtocol, CooperativeProtocol)
	}
	want := map[string]string{
		"join/cooperative":             "0003000000020001690001700000002d7b2275726c223a22687474703a2f2f613a38303830222c227761726d223a7b2230223a31322c2233223a377d7d0000000200016900000002000000000000000200017000000002000000000000000200000005ffff",
		"join/cooperative-bare":        "000300000002000169000170000000027b7d0000000000000001ffff",
		"join/eager":                   "0003000000020001690001700000000d687474703a2f2f613a383038300000000200016900000002000000000000000200017000000002000000000000000200000005ffff",
		"join/eager-bare":              "000300000002000169000170ffffffff0000000000000001ffff",
		"sync/valora-copartition-v1/a": "000000000002000169000000020000000000000001000170000000020000000000000001000000137b227374616e646279223a5b322c332c355d7d",
		"sync/valora-copartition-v1/b": "000000000002000169000000020000000200000003000170000000020000000200000003000000117b227374616e646279223a5b302c345d7d",
		"sync/valora-copartition-v1/c": "0000000000020001690000000200000004000000050001700000000200000004000000050000000f7b227374616e646279223a5b315d7d",
		"sync/valora-copartition-v2/a": "000000000002000169000000020000000000000001000170000000020000000000000001000000137b227374616e646279223a5b322c332c355d7d",
		"sync/valora-copartition-v2/b": "000000000000000000117b227374616e646279223a5b312c345d7d",
		"sync/valora-copartition-v2/c": "0000000000020001690000000200000004000000050001700000000200000004000000050000000f7b227374616e646279223a5b305d7d",
	}
	got := wireCases(t)
	if len(got) != len(want) {
		t.Errorf("%d cases, want %d", len(got), len(want))
	}
	for name, b := range got {
		if h := hex.EncodeToString(b); h != want[name] {
			t.Errorf("%s:\n got %s\nwant %s", name, h, want[name])
		}
	}
}
