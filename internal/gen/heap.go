package gen

// entry is a scheduled event in the queue: a customer's next own event
// (ref 0) or a pending refund (ref = slot in the refund table + 1).
type entry struct {
	at   int64 // Unix milliseconds
	cust uint32
	ref  uint32
}

// before orders entries by time, then customer, then own events before
// refunds, so ties break the same way whatever the queue's history.
func (a entry) before(b entry) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	if a.cust != b.cust {
		return a.cust < b.cust
	}
	return a.ref < b.ref
}

// queue is a 4-ary min-heap of entries, for the entries of the current
// time in a radixQueue.
type queue []entry

func (q queue) init() {
	for i := (len(q) - 2) / 4; i >= 0; i-- {
		q.down(i)
	}
}

func (q *queue) push(e entry) {
	*q = append(*q, e)
	q.up(len(*q) - 1)
}

// pop removes the minimum.
func (q *queue) pop() {
	h := *q
	n := len(h) - 1
	h[0] = h[n]
	*q = h[:n]
	if n > 0 {
		q.down(0)
	}
}

func (q queue) up(i int) {
	e := q[i]
	for i > 0 {
		parent := (i - 1) / 4
		if !e.before(q[parent]) {
			break
		}
		q[i] = q[parent]
		i = parent
	}
	q[i] = e
}

func (q queue) down(i int) {
	n := len(q)
	e := q[i]
	for {
		first := 4*i + 1
		if first >= n {
			break
		}
		best := first
		last := min(first+4, n)
		for c := first + 1; c < last; c++ {
			if q[c].before(q[best]) {
				best = c
			}
		}
		if !q[best].before(e) {
			break
		}
		q[i] = q[best]
		i = best
	}
	q[i] = e
}
