package processor

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// coPartitionBalancer assigns whole tasks, not partitions: partition p of
// every subscribed topic goes to the same member. It is sticky: a member
// keeps the tasks it owned (reported in its join metadata) up to its fair
// share, and only the surplus and the orphans move. It refuses to balance
// topics whose partition counts differ, because such topics cannot be
// co-partitioned by customer.
//
// It comes in two protocols. The cooperative one (KIP-429, preferred) moves
// tasks in two rounds: the first plan leaves out every task that changes
// owner, so that its old owner revokes only those and rejoins, and the
// second round hands them to their new owners; every other task keeps
// running through the rebalance. The eager one is offered second, so that
// a group with a member of a version that knows only the eager protocol
// still agrees on one: every member then gives up all its tasks at the start
// of a rebalance and gets its (mostly unchanged) set back at the end.
//
// A member's join metadata carries its advertised HTTP URL (Config.
// AdvertiseURL) as user data, which DescribeGroups then shows to every
// instance: that is how an instance names a customer's owner.
type coPartitionBalancer struct {
	advertise   string
	cooperative bool
}

// The group protocol names. Every member of a valora group offers both,
// cooperative first; Kafka picks the one that every member offers and most
// prefer, and refuses a member that offers neither.
const (
	balancerProtocol    = "valora-copartition-v1" // eager
	cooperativeProtocol = "valora-copartition-v2"
)

var _ kgo.GroupBalancer = coPartitionBalancer{}

// balancers returns the group balancers in order of preference.
func balancers(advertise string) []kgo.GroupBalancer {
	return []kgo.GroupBalancer{
		coPartitionBalancer{advertise: advertise, cooperative: true},
		coPartitionBalancer{advertise: advertise},
	}
}

func (b coPartitionBalancer) ProtocolName() string {
	if b.cooperative {
		return cooperativeProtocol
	}
	return balancerProtocol
}

func (b coPartitionBalancer) IsCooperative() bool { return b.cooperative }

func (b coPartitionBalancer) JoinGroupMetadata(interests []string, current map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3
	if b.advertise != "" {
		meta.UserData = []byte(b.advertise)
	}
	meta.Topics = interests
	meta.Generation = generation
	topics := make([]string, 0, len(current))
	for t := range current {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	for _, t := range topics {
		ps := slices.Clone(current[t])
		slices.Sort(ps)
		meta.OwnedPartitions = append(meta.OwnedPartitions, kmsg.ConsumerMemberMetadataOwnedPartition{Topic: t, Partitions: ps})
	}
	return meta.AppendTo(nil)
}

func (coPartitionBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return kgo.ParseConsumerSyncAssignment(assignment)
}

func (b coPartitionBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	if err != nil {
		return nil, nil, err
	}
	return cb, cb.MemberTopics(), nil
}

// Balance implements kgo.ConsumerBalancerBalance.
func (b coPartitionBalancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	slices.Sort(names)
	tasks := int32(-1)
	for _, t := range names {
		if tasks == -1 {
			tasks = topics[t]
		} else if topics[t] != tasks {
			cb.SetError(fmt.Errorf("%w: %v", ErrNotCoPartitioned, topics))
			return nil
		}
	}
	plan := cb.NewPlan()
	members := cb.Members()
	if tasks <= 0 || len(members) == 0 {
		return plan
	}
	prev := make([][]int32, len(members))
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		i := slices.IndexFunc(members, func(x kmsg.JoinGroupResponseMember) bool { return x.MemberID == m.MemberID })
		for _, op := range meta.OwnedPartitions {
			for _, p := range op.Partitions {
				if p < tasks && !slices.Contains(prev[i], p) {
					prev[i] = append(prev[i], p)
				}
			}
		}
		slices.Sort(prev[i])
	})
	assign := assignTasks(int(tasks), prev)
	for i, ts := range assign {
		for _, p := range ts {
			if b.cooperative && claimedByOther(prev, i, p) {
				// The task moves: leave it out of this round, so that
				// the members that claim it revoke it and rejoin, and
				// the next round hands it over. Whole tasks, not
				// partitions (kgo's BalancePlan.AdjustCooperative works
				// per partition, and would start the task on its new
				// owner for a topic nobody claimed while the old owner
				// still runs it): a task runs on one member at a time.
				// Every claim counts, a stale one too (KIP-792): a
				// needless revocation costs a round, never a double
				// owner.
				continue
			}
			for _, t := range names {
				plan.AddPartition(&members[i], t, p)
			}
		}
	}
	return plan
}

// claimedByOther reports whether a member other than i claims task p in
// prev.
func claimedByOther(prev [][]int32, i int, p int32) bool {
	for j, ps := range prev {
		if j != i && slices.Contains(ps, p) {
			return true
		}
	}
	return false
}

// assignTasks spreads tasks 0..n-1 over len(prev) members. Member i gets
// n/m tasks, the first n%m members one more. A member keeps the tasks it
// held before (prev[i]) up to its share; a task claimed by two members goes
// to the first. The result is deterministic for a given input.
func assignTasks(n int, prev [][]int32) [][]int32 {
	m := len(prev)
	quota := make([]int, m)
	for i := range quota {
		quota[i] = n / m
		if i < n%m {
			quota[i]++
		}
	}
	out := make([][]int32, m)
	owned := make([]bool, n)
	for i, ps := range prev {
		for _, p := range ps {
			if int(p) < n && !owned[p] && len(out[i]) < quota[i] {
				owned[p] = true
				out[i] = append(out[i], p)
			}
		}
	}
	i := 0
	for p := range n {
		if owned[p] {
			continue
		}
		for len(out[i]) >= quota[i] {
			i = (i + 1) % m
		}
		out[i] = append(out[i], int32(p))
		owned[p] = true
	}
	for i := range out {
		slices.Sort(out[i])
	}
	return out
}
