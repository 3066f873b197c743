package score

import (
	"crypto/sha256"
	"encoding/json"
)

// Digest identifies everything in the policy that decides scores, tiers and
// deadlines: two policies with equal digests evaluate every customer alike
// and give the same NextDeadline. The processor stores it beside the timer
// index and rebuilds the index when the policy in force has another digest.
func (p *Policy) Digest() []byte {
	// encoding/json writes struct fields in declaration order and map keys
	// sorted, so equal policies always marshal to equal bytes.
	b, err := json.Marshal(p)
	if err != nil {
		// A Policy holds only strings, numbers, slices and maps of them.
		panic("score: marshal policy: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return sum[:]
}
