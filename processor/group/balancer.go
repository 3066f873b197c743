package group

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrNotCoPartitioned is the error a leader's Balancer sets when the
// subscribed topics' partition counts differ.
var ErrNotCoPartitioned = errors.New("input topics are not co-partitioned")

// Balancer is the group balancer of one protocol: it encodes the member's
// join metadata, plans the group as its leader (Plan), and reads the
// member's assignment. A member offers Balancers(...), cooperative first.
type Balancer struct {
	// Advertise is the member's advertised HTTP URL, without a trailing
	// slash; DescribeGroups shows it to every instance, which is how an
	// instance names a customer's owner.
	Advertise   string
	Cooperative bool
	// Replicas is the standby copies wanted per task, used when this
	// member leads.
	Replicas int
	// Warm reports the member's changelog positions (join metadata,
	// cooperative protocol only); OnStandby receives the standby tasks of
	// each assignment this member gets. Either may be nil. Both are called
	// from the group client's goroutine.
	Warm      func() map[int32]int64
	OnStandby func([]int32)
}

var _ kgo.GroupBalancer = Balancer{}

// Balancers returns b's protocols in order of preference: the cooperative
// one, then the eager one (which reports no changelog positions).
func Balancers(b Balancer) []kgo.GroupBalancer {
	coop := b
	coop.Cooperative = true
	eager := b
	eager.Cooperative = false
	eager.Warm = nil
	return []kgo.GroupBalancer{coop, eager}
}

// ProtocolName implements kgo.GroupBalancer.
func (b Balancer) ProtocolName() string {
	if b.Cooperative {
		return CooperativeProtocol
	}
	return EagerProtocol
}

// IsCooperative implements kgo.GroupBalancer.
func (b Balancer) IsCooperative() bool { return b.Cooperative }

// JoinGroupMetadata implements kgo.GroupBalancer.
func (b Balancer) JoinGroupMetadata(interests []string, current map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3
	if b.Cooperative {
		d := MemberData{URL: b.Advertise}
		if b.Warm != nil {
			d.Warm = b.Warm()
		}
		meta.UserData, _ = json.Marshal(d)
	} else if b.Advertise != "" {
		// The eager protocol's user data stays the URL alone, as members
		// of earlier versions read it.
		meta.UserData = []byte(b.Advertise)
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

// ParseSyncAssignment implements kgo.GroupBalancer.
func (b Balancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	assigned, err := kgo.ParseConsumerSyncAssignment(assignment)
	if err != nil {
		return nil, err
	}
	if b.OnStandby != nil {
		var d AssignmentData
		var a kmsg.ConsumerMemberAssignment
		if len(assignment) > 0 && a.ReadFrom(assignment) == nil && len(a.UserData) > 0 {
			_ = json.Unmarshal(a.UserData, &d) // a leader of an earlier version sends none
		}
		b.OnStandby(d.Standby)
	}
	return assigned, nil
}

// MemberBalancer implements kgo.GroupBalancer.
func (b Balancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	if err != nil {
		return nil, nil, err
	}
	return cb, cb.MemberTopics(), nil
}

// Balance implements kgo.ConsumerBalancerBalance: it reads the members'
// claims and changelog positions, plans the round (Plan) and gives each
// member's tasks as partition p of every topic.
func (b Balancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
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
		warm[i] = ParseMemberData(meta.UserData).Warm
		for _, op := range meta.OwnedPartitions {
			for _, p := range op.Partitions {
				if p < tasks && !slices.Contains(prev[i], p) {
					prev[i] = append(prev[i], p)
				}
			}
		}
		slices.Sort(prev[i])
	})
	// Whole tasks, not partitions: kgo's BalancePlan.AdjustCooperative
	// works per partition, and would start a moving task on its new owner
	// for a topic nobody claimed while the old owner still runs it.
	r := Plan(int(tasks), prev, warm, b.Cooperative, b.Replicas)
	for i, ts := range r.Tasks {
		for _, p := range ts {
			for _, t := range names {
				plan.AddPartition(&members[i], t, p)
			}
		}
	}
	if r.Standby == nil {
		return plan
	}
	sp := standbyPlan{BalancePlan: plan, standby: map[string][]int32{}}
	for i, ts := range r.Standby {
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
		a.UserData, _ = json.Marshal(AssignmentData{Standby: ts})
		out[i].MemberAssignment = a.AppendTo(nil)
	}
	return out
}
