package group

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCooperativePlanWholeTasks checks the cooperative plan directly: a
// task that changes owner is left out of the first round for every topic,
// including a topic its old owner did not claim (an erasure topic created
// later), so that no task ever runs on two members.
func TestCooperativePlanWholeTasks(t *testing.T) {
	meta := func(owned map[string][]int32) []byte {
		return Balancer{Cooperative: true}.JoinGroupMetadata([]string{"i", "p", "e"}, owned, 1)
	}
	members := []kmsg.JoinGroupResponseMember{
		// a owns tasks 0–3 of the inputs, not of the erasure topic.
		{MemberID: "a", ProtocolMetadata: meta(map[string][]int32{"i": {0, 1, 2, 3}, "p": {0, 1, 2, 3}})},
		{MemberID: "b", ProtocolMetadata: meta(nil)},
	}
	bal := Balancer{Cooperative: true}
	balance := func() map[string]map[string][]int32 {
		t.Helper()
		cb, err := kgo.NewConsumerBalancer(bal, members)
		if err != nil {
			t.Fatal(err)
		}
		plan, ok := bal.Balance(cb, map[string]int32{"i": 4, "p": 4, "e": 4}).(*kgo.BalancePlan)
		if !ok {
			t.Fatalf("plan is %T", plan)
		}
		return plan.AsMemberIDMap()
	}
	got := balance()
	for _, topic := range []string{"i", "p", "e"} {
		if g := got["a"][topic]; !slices.Equal(g, []int32{0, 1}) {
			t.Errorf("a's %s partitions: %v, want [0 1] (it keeps two tasks)", topic, g)
		}
		if g := got["b"][topic]; len(g) != 0 {
			t.Errorf("b's %s partitions in the first round: %v, want none (tasks 2 and 3 are still a's)", topic, g)
		}
	}

	// The second round: a revoked 2 and 3; b gets them, a keeps 0 and 1.
	members[0].ProtocolMetadata = meta(map[string][]int32{"i": {0, 1}, "p": {0, 1}, "e": {0, 1}})
	got = balance()
	for _, topic := range []string{"i", "p", "e"} {
		if g := got["a"][topic]; !slices.Equal(g, []int32{0, 1}) {
			t.Errorf("round 2, a's %s partitions: %v, want [0 1]", topic, g)
		}
		if g := got["b"][topic]; !slices.Equal(g, []int32{2, 3}) {
			t.Errorf("round 2, b's %s partitions: %v, want [2 3]", topic, g)
		}
	}
}

// TestPlanProperties checks the plan over many seeds of random claims and
// changelog positions: every task has one owner, each member holds its
// share (n/m, or one more); a member keeps what it claims up to its share;
// in the cooperative round a task runs only on a member that no other
// member contests; and each task has min(replicas, m-1) standbys, none on
// its owner. The same input gives the same plan.
func TestPlanProperties(t *testing.T) {
	for seed := range uint64(500) {
		rng := rand.New(rand.NewPCG(seed, 11))
		n, m := rng.IntN(40), 1+rng.IntN(8)
		replicas := rng.IntN(4)
		coop := rng.IntN(2) == 0
		prev := make([][]int32, m)
		warm := make([]map[int32]int64, m)
		for i := range m {
			for p := range int32(n + 2) { // claims past n are stale
				if rng.IntN(m+1) == 0 {
					prev[i] = append(prev[i], p)
				}
				if rng.IntN(3) == 0 {
					if warm[i] == nil {
						warm[i] = map[int32]int64{}
					}
					warm[i][p] = rng.Int64N(100)
				}
			}
		}
		r := Plan(n, prev, warm, coop, replicas)
		name := fmt.Sprintf("seed %d (n=%d m=%d replicas=%d coop=%v)", seed, n, m, replicas, coop)
		if again := Plan(n, prev, warm, coop, replicas); fmt.Sprint(again) != fmt.Sprint(r) {
			t.Fatalf("%s: plan not deterministic", name)
		}
		assign := Assign(n, prev, warm)
		owner := make([]int, n)
		for p := range owner {
			owner[p] = -1
		}
		for i, ts := range assign {
			if len(ts) < n/m || len(ts) > n/m+1 {
				t.Fatalf("%s: member %d has %d tasks, want %d or %d", name, i, len(ts), n/m, n/m+1)
			}
			if !slices.IsSorted(ts) {
				t.Fatalf("%s: member %d's tasks %v not sorted", name, i, ts)
			}
			for _, p := range ts {
				if owner[p] != -1 {
					t.Fatalf("%s: task %d assigned to %d and %d", name, p, owner[p], i)
				}
				owner[p] = i
			}
			kept := 0
			for _, p := range prev[i] {
				if int(p) < n && slices.Contains(ts, p) {
					kept++
				}
			}
			first := 0 // tasks i claims that no earlier member claims
			for _, p := range prev[i] {
				if int(p) < n && !slices.ContainsFunc(prev[:i], func(q []int32) bool { return slices.Contains(q, p) }) {
					first++
				}
			}
			if kept < min(first, len(ts)) {
				t.Fatalf("%s: member %d kept %d of its %d uncontested claims with %d tasks", name, i, kept, first, len(ts))
			}
		}
		for p, o := range owner {
			if o == -1 {
				t.Fatalf("%s: task %d has no owner", name, p)
			}
		}
		for i, ts := range r.Tasks {
			for _, p := range ts {
				if owner[p] != i {
					t.Fatalf("%s: round gives task %d to %d, owner %d", name, p, i, owner[p])
				}
				if coop && claimedByOther(prev, i, p) {
					t.Fatalf("%s: cooperative round gives task %d to %d while another member claims it", name, p, i)
				}
			}
			if !coop && !slices.Equal(ts, assign[i]) {
				t.Fatalf("%s: eager round gives %d %v, want %v", name, i, ts, assign[i])
			}
		}
		if replicas == 0 {
			if r.Standby != nil {
				t.Fatalf("%s: standbys planned without replicas", name)
			}
			continue
		}
		count := make([]int, n)
		for i, ts := range r.Standby {
			for _, p := range ts {
				if owner[p] == i {
					t.Fatalf("%s: member %d is owner and standby of task %d", name, i, p)
				}
				count[p]++
			}
		}
		for p, c := range count {
			if want := min(replicas, m-1); c != want {
				t.Fatalf("%s: task %d has %d standbys, want %d", name, p, c, want)
			}
		}
	}
}

// TestParseMemberData reads both forms of the user data, and gives the
// zero value for JSON it cannot read.
func TestParseMemberData(t *testing.T) {
	f := func(in string, want MemberData) {
		t.Helper()
		if got := ParseMemberData([]byte(in)); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("ParseMemberData(%q) = %+v, want %+v", in, got, want)
		}
	}
	f("", MemberData{})
	f("http://a:1", MemberData{URL: "http://a:1"})
	f(`{"url":"http://a:1","warm":{"3":7}}`, MemberData{URL: "http://a:1", Warm: map[int32]int64{3: 7}})
	f(`{"url":`, MemberData{})
}
