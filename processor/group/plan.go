package group

import "slices"

// Round is the plan of one rebalance round, by member index.
type Round struct {
	// Tasks are the tasks each member runs after the round. In the
	// cooperative protocol a task that moves is in no member's list
	// until the round after its old owner revoked it.
	Tasks [][]int32
	// Standby are the tasks each member keeps a standby copy of; nil
	// when no standbys are asked for.
	Standby [][]int32
}

// Plan plans a round for n tasks over len(prev) members (at least one):
// prev[i] are the tasks member i claims it owns, warm[i] how far its store
// is along each task's changelog (nil: unknown), replicas the standby
// copies wanted per task. In the cooperative protocol, a task that a member
// other than its new owner claims is left out of the round, so that the
// members that claim it revoke it and rejoin, and the next round hands it
// over: a task runs on one member at a time. Every claim counts, a stale
// one too (KIP-792): a needless revocation costs a round, never a double
// owner. Standbys are planned for the owners after the move.
func Plan(n int, prev [][]int32, warm []map[int32]int64, cooperative bool, replicas int) Round {
	assign := Assign(n, prev, warm)
	r := Round{Tasks: assign}
	if cooperative {
		r.Tasks = make([][]int32, len(assign))
		for i, ts := range assign {
			for _, p := range ts {
				if !claimedByOther(prev, i, p) {
					r.Tasks[i] = append(r.Tasks[i], p)
				}
			}
		}
	}
	if replicas <= 0 {
		return r
	}
	owner := make([]int, n)
	for i, ts := range assign {
		for _, p := range ts {
			owner[p] = i
		}
	}
	r.Standby = PlanStandbys(owner, warm, replicas)
	return r
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

// Assign spreads tasks 0..n-1 over len(prev) members (at least one).
// Member i gets n/m tasks, the first n%m members one more. A member keeps
// the tasks it held before (prev[i]) up to its share; a task claimed by two
// members goes to the first. A task nobody keeps goes to the member under
// its share whose store is furthest along the task's changelog (warm[i], a
// standby copy or an earlier ownership), if any, else to the next member
// under its share. Each member's tasks are sorted; the result is
// deterministic for a given input.
func Assign(n int, prev [][]int32, warm []map[int32]int64) [][]int32 {
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

// PlanStandbys picks, for each task p owned by owner[p] (-1: nobody), up to
// n members other than the owner to keep a standby copy: those whose store
// is furthest along p's changelog first (warm[i][p]), then those with the
// fewest standbys so far, then by index. len(warm) is the member count. It
// returns each member's standby tasks, sorted; the result is deterministic
// for a given input.
func PlanStandbys(owner []int, warm []map[int32]int64, n int) [][]int32 {
	m := len(warm)
	out := make([][]int32, m)
	if n <= 0 || m < 2 {
		return out
	}
	cand := make([]int, 0, m)
	for p, o := range owner {
		cand = cand[:0]
		for i := range m {
			if i != o {
				cand = append(cand, i)
			}
		}
		slices.SortStableFunc(cand, func(a, b int) int {
			wa, oka := warm[a][int32(p)]
			wb, okb := warm[b][int32(p)]
			switch {
			case oka != okb:
				if oka {
					return -1
				}
				return 1
			case wa != wb:
				if wa > wb {
					return -1
				}
				return 1
			}
			return len(out[a]) - len(out[b])
		})
		for _, i := range cand[:min(n, len(cand))] {
			out[i] = append(out[i], int32(p))
		}
	}
	return out
}
