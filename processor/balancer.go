package processor

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

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
	// replicas is Config.StandbyReplicas, used when this member leads.
	replicas int
	// warm reports the member's changelog positions (join metadata,
	// cooperative protocol only); onStandby receives the standby tasks of
	// each assignment this member gets. Either may be nil.
	warm      func() map[int32]int64
	onStandby func([]int32)
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
func (p *Processor) balancers() []kgo.GroupBalancer {
	coop := coPartitionBalancer{
		advertise:   strings.TrimSuffix(p.cfg.AdvertiseURL, "/"),
		cooperative: true,
		replicas:    p.cfg.StandbyReplicas,
		warm:        p.warmTasks,
		onStandby:   p.setStandbys,
	}
	eager := coop
	eager.cooperative = false
	eager.warm = nil
	return []kgo.GroupBalancer{coop, eager}
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
	if b.cooperative {
		d := memberData{URL: b.advertise}
		if b.warm != nil {
			d.Warm = b.warm()
		}
		meta.UserData, _ = json.Marshal(d)
	} else if b.advertise != "" {
		// The eager protocol's user data stays the URL alone, as members
		// of earlier versions read it.
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

func (b coPartitionBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	assigned, err := kgo.ParseConsumerSyncAssignment(assignment)
	if err != nil {
		return nil, err
	}
	if b.onStandby != nil {
		var d assignmentData
		var a kmsg.ConsumerMemberAssignment
		if len(assignment) > 0 && a.ReadFrom(assignment) == nil && len(a.UserData) > 0 {
			_ = json.Unmarshal(a.UserData, &d) // a leader of an earlier version sends none
		}
		b.onStandby(d.Standby)
	}
	return assigned, nil
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
	warm := make([]map[int32]int64, len(members))
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		i := slices.IndexFunc(members, func(x kmsg.JoinGroupResponseMember) bool { return x.MemberID == m.MemberID })
		warm[i] = parseMemberData(meta.UserData).Warm
		for _, op := range meta.OwnedPartitions {
			for _, p := range op.Partitions {
				if p < tasks && !slices.Contains(prev[i], p) {
					prev[i] = append(prev[i], p)
				}
			}
		}
		slices.Sort(prev[i])
	})
	assign := assignTasks(int(tasks), prev, warm)
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
	if b.replicas <= 0 {
		return plan
	}
	owner := make([]int, tasks)
	for i, ts := range assign {
		for _, p := range ts {
			owner[p] = i
		}
	}
	sp := standbyPlan{BalancePlan: plan, standby: map[string][]int32{}}
	for i, ts := range planStandbys(owner, warm, b.replicas) {
		sp.standby[members[i].MemberID] = ts
	}
	return sp
}

// standbyPlan is a plan whose members' assignments name, in their user
// data, the tasks each keeps a standby copy of.
type standbyPlan struct {
	*kgo.BalancePlan
	standby map[string][]int32 // by member id
}

func (s standbyPlan) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment {
	out := s.BalancePlan.IntoSyncAssignment()
	for i := range out {
		ts := s.standby[out[i].MemberID]
		if len(ts) == 0 {
			continue
		}
		var a kmsg.ConsumerMemberAssignment
		if err := a.ReadFrom(out[i].MemberAssignment); err != nil {
			continue // cannot happen: kgo encoded it
		}
		a.UserData, _ = json.Marshal(assignmentData{Standby: ts})
		out[i].MemberAssignment = a.AppendTo(nil)
	}
	return out
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
// to the first. A task nobody keeps goes to the member under its share
// whose store is furthest along the task's changelog (warm[i], a standby
// copy or an earlier ownership), if any, else to the next member under
// its share. The result is deterministic for a given input.
func assignTasks(n int, prev [][]int32, warm []map[int32]int64) [][]int32 {
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
	for p := range n {
		if owned[p] {
			continue
		}
		best, bestAt := -1, int64(-1)
		for i := range m {
			if i >= len(warm) || len(out[i]) >= quota[i] {
				continue
			}
			if at, ok := warm[i][int32(p)]; ok && at > bestAt {
				best, bestAt = i, at
			}
		}
		if best >= 0 {
			owned[p] = true
			out[best] = append(out[best], int32(p))
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
