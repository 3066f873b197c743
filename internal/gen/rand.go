package gen

import (
	"math"
	"math/rand/v2"
)

// golden is 2^64 divided by the golden ratio, the SplitMix64 increment.
const golden = 0x9e3779b97f4a7c15

// Each customer draws from three independent streams, so that its purchase
// history does not depend on the interaction parameters and vice versa.
const (
	streamInit        = 0x243f6a8885a308d3
	streamPurchase    = 0x13198a2e03707344
	streamInteraction = 0xa4093822299f31d0
)

// mix64 is the SplitMix64 finaliser, a bijection with full avalanche.
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// stream is a counter-based random source: output n of the stream with key
// k is a hash of (k, n). A customer stores only the counter, so its state
// stays small, and any customer's stream can be resumed in O(1).
type stream struct {
	key uint64
	ctr uint64
}

// Uint64 implements rand.Source.
func (s *stream) Uint64() uint64 {
	s.ctr++
	return mix64(mix64(s.key^(s.ctr*golden)) + s.key)
}

var _ rand.Source = (*stream)(nil)

// sampler draws from well-known distributions over a resumable stream.
type sampler struct {
	src stream
	rng *rand.Rand
}

func newSampler() *sampler {
	s := &sampler{}
	s.rng = rand.New(&s.src)
	return s
}

// reset points the sampler at stream key, resuming after ctr outputs.
func (s *sampler) reset(key, ctr uint64) {
	s.src.key = key
	s.src.ctr = ctr
}

// uniform returns a value in [0, 1).
func (s *sampler) uniform() float64 { return s.rng.Float64() }

// openUniform returns a value in (0, 1].
func (s *sampler) openUniform() float64 { return 1 - s.rng.Float64() }

// exp returns an exponential value with mean 1.
func (s *sampler) exp() float64 { return s.rng.ExpFloat64() }

// gamma returns a Gamma(shape, rate 1) value, by Marsaglia and Tsang's
// method, boosted for shape < 1.
func (s *sampler) gamma(shape float64) float64 {
	if shape < 1 {
		// Gamma(k) = Gamma(k+1) * U^(1/k).
		return s.gamma(shape+1) * math.Pow(s.openUniform(), 1/shape)
	}
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := s.rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := s.openUniform()
		x2 := x * x
		if u < 1-0.0331*x2*x2 || math.Log(u) < 0.5*x2+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}

// beta returns a Beta(a, b) value.
func (s *sampler) beta(a, b float64) float64 {
	x := s.gamma(a)
	y := s.gamma(b)
	if x+y == 0 {
		return 0
	}
	return x / (x + y)
}

// pick returns an index drawn with probability proportional to the
// cumulative weights cum (cum[len-1] is the total).
func (s *sampler) pick(cum []float64) int {
	u := s.uniform() * cum[len(cum)-1]
	for i, c := range cum {
		if u < c {
			return i
		}
	}
	return len(cum) - 1
}
