package group

import (
	"encoding/json"
	"maps"
	"testing"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzParseMemberData feeds arbitrary user data to ParseMemberData, which
// reads what any member of the group sent: it never panics, and the JSON of
// a MemberData reads back as itself.
func FuzzParseMemberData(f *testing.F) {
	f.Add([]byte(""), "http://a:1", int32(3), int64(7))
	f.Add([]byte("http://a:1"), "", int32(0), int64(0))
	f.Add([]byte(`{"url":"x","warm":{"1":2}}`), "u", int32(-1), int64(-5))
	f.Add([]byte(`{"warm":{"x":1}}`), "", int32(1), int64(1))
	f.Fuzz(func(t *testing.T, raw []byte, url string, task int32, at int64) {
		ParseMemberData(raw)
		if !utf8.ValidString(url) {
			t.Skip() // JSON carries text: a URL is UTF-8
		}
		want := MemberData{URL: url, Warm: map[int32]int64{task: at}}
		b, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got := ParseMemberData(b)
		if got.URL != want.URL {
			t.Fatalf("URL %q read back as %q", want.URL, got.URL)
		}
		if !maps.Equal(got.Warm, want.Warm) {
			t.Fatalf("warm %v read back as %v", want.Warm, got.Warm)
		}
	})
}

// FuzzParseSyncAssignment feeds arbitrary assignment bytes to a member's
// balancer: it never panics, and standby tasks reach OnStandby only from
// an assignment that decodes.
func FuzzParseSyncAssignment(f *testing.F) {
	a := kmsg.NewConsumerMemberAssignment()
	a.Topics = []kmsg.ConsumerMemberAssignmentTopic{{Topic: "i", Partitions: []int32{0, 2}}}
	a.UserData, _ = json.Marshal(AssignmentData{Standby: []int32{1}})
	f.Add(a.AppendTo(nil))
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var standby []int32
		called := false
		b := Balancer{Cooperative: true, OnStandby: func(ts []int32) { called, standby = true, ts }}
		_, err := b.ParseSyncAssignment(raw)
		if err != nil && called {
			t.Fatalf("OnStandby(%v) called for an assignment that does not decode: %v", standby, err)
		}
	})
}
