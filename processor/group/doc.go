// Package group is valora's consumer group protocol: which member runs
// which task, and which members keep a standby copy of it. It holds the
// balancer (Balancer, a kgo.GroupBalancer), the encoding of the member and
// assignment user data, and the plan itself (Assign, PlanStandbys), which
// is pure: the same members and claims give the same plan on every leader.
// It imports no other package of the project; the processor supplies the
// member's state (its changelog positions, what to do with its standby
// tasks) as functions.
//
// # Tasks
//
// The balancer assigns whole tasks, not partitions: partition p of every
// subscribed topic goes to the same member (task p). It is sticky: a member
// keeps the tasks it owned (reported in its join metadata) up to its fair
// share, and only the surplus and the orphans move. It refuses to balance
// topics whose partition counts differ (ErrNotCoPartitioned), because such
// topics cannot be co-partitioned by customer.
//
// # Protocols
//
// Every member offers two protocols, cooperative first; Kafka picks the one
// that every member offers and most prefer. The cooperative one
// (CooperativeProtocol, KIP-429) moves tasks in two rounds: the first plan
// leaves out every task that changes owner, so that its old owner revokes
// only those and rejoins, and the second round hands them to their new
// owners; every other task keeps running through the rebalance. The eager
// one (EagerProtocol) is for a group with a member that knows only it:
// every member then gives up all its tasks at the start of a rebalance and
// gets its (mostly unchanged) set back at the end.
//
// # Wire format
//
// The member metadata is Kafka's ConsumerMemberMetadata (version 3) with
// the owned partitions sorted. Its user data is, in the cooperative
// protocol, the JSON of MemberData (the advertised URL and the changelog
// positions of the tasks the member's store holds); in the eager protocol,
// the URL alone, as members of earlier versions read it. An assignment's
// user data, when the leader plans standbys, is the JSON of AssignmentData.
// Members of different versions share a group, so these bytes do not
// change.
package group
