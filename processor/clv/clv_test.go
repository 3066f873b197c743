package clv

import (
	"errors"
	"math"
	"testing"
)

func cdnowModel() *Model {
	return &Model{
		Unit:         Week,
		BGNBD:        cdnowParams,
		GammaGamma:   GammaGamma{P: 6.25, Q: 3.74, Gamma: 15.44},
		Horizon:      52,
		DiscountRate: 0.1,
	}
}

func TestModelValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Model)
		want   error
	}{
		{"valid", func(*Model) {}, nil},
		{"unit", func(m *Model) { m.Unit = "month" }, ErrInvalidParams},
		{"r", func(m *Model) { m.BGNBD.R = 0 }, ErrInvalidParams},
		{"alpha NaN", func(m *Model) { m.BGNBD.Alpha = math.NaN() }, ErrInvalidParams},
		{"b infinite", func(m *Model) { m.BGNBD.B = math.Inf(1) }, ErrInvalidParams},
		{"p", func(m *Model) { m.GammaGamma.P = -1 }, ErrInvalidParams},
		{"q = 1", func(m *Model) { m.GammaGamma.Q = 1 }, ErrQNotAboveOne},
		{"horizon", func(m *Model) { m.Horizon = 0 }, ErrInvalidParams},
		{"discount negative", func(m *Model) { m.DiscountRate = -0.1 }, ErrInvalidParams},
		{"discount huge", func(m *Model) { m.DiscountRate = 11 }, ErrInvalidParams},
		{"steps", func(m *Model) { m.Steps = MaxSteps + 1 }, ErrInvalidParams},
		{"steps negative", func(m *Model) { m.Steps = -1 }, ErrInvalidParams},
		{"bgnbd named", func(m *Model) { m.Count = CountBGNBD }, nil},
		{"unknown count model", func(m *Model) { m.Count = "pareto" }, ErrInvalidParams},
		{"paretonbd without parameters", func(m *Model) { m.Count = CountParetoNBD }, ErrInvalidParams},
		{"paretonbd", func(m *Model) { m.Count, m.ParetoNBD = CountParetoNBD, &ParetoNBD{R: 1, Alpha: 1, S: 1, Beta: 1} }, nil},
		{"mbgnbd without parameters", func(m *Model) { m.Count = CountMBGNBD }, ErrInvalidParams},
		{"mbgnbd bad parameter", func(m *Model) { m.Count, m.MBGNBD = CountMBGNBD, &MBGNBD{R: 1, Alpha: 1, A: 0, B: 1} }, ErrInvalidParams},
		{"mbgnbd without bgnbd", func(m *Model) { m.Count, m.MBGNBD, m.BGNBD = CountMBGNBD, &MBGNBD{R: 1, Alpha: 1, A: 1, B: 1}, BGNBD{} }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := cdnowModel()
			tc.change(m)
			err := m.Validate()
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Validate() = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestModelUnvalidatedPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Evaluate on an unvalidated Model did not panic")
		}
	}()
	(&Model{}).Evaluate(Summary{}, 0)
}

func TestModelEvaluate(t *testing.T) {
	m := cdnowModel()
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	undiscounted := *m
	undiscounted.DiscountRate = 0
	if err := undiscounted.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []Summary{{0, 0, 30}, {1, 10, 30}, {5, 29, 30}, {5, 2, 38}, {100, 38, 38.5}, {10_000, 38, 38.5}} {
		for _, spend := range []float64{0, 20, 80} {
			v := m.Evaluate(s, spend)
			u := undiscounted.Evaluate(s, spend)
			if v.PAlive != m.BGNBD.PAlive(s) {
				t.Errorf("%+v: PAlive %v, want %v", s, v.PAlive, m.BGNBD.PAlive(s))
			}
			if e := m.BGNBD.ExpectedPurchases(s, m.Horizon); math.Abs(v.ExpectedPurchases-e) > 1e-12*math.Max(1, e) {
				t.Errorf("%+v: ExpectedPurchases %v, want %v", s, v.ExpectedPurchases, e)
			}
			if es := m.GammaGamma.ExpectedSpend(s.X, spend); v.ExpectedSpend != es {
				t.Errorf("%+v: ExpectedSpend %v, want %v", s, v.ExpectedSpend, es)
			}
			// Without discounting, CLV is the expected purchases times the
			// expected spend; discounting lowers it, by at most the
			// discount over the whole horizon.
			if want := u.ExpectedPurchases * u.ExpectedSpend; math.Abs(u.CLV-want) > 1e-9*math.Max(1, want) {
				t.Errorf("%+v: undiscounted CLV %v, want %v", s, u.CLV, want)
			}
			floor := u.CLV / math.Pow(1.1, 1/m.Unit.PerYear()*m.Horizon)
			if v.CLV > u.CLV || v.CLV < floor*(1-1e-12) || math.IsNaN(v.CLV) {
				t.Errorf("%+v: discounted CLV %v outside [%v, %v]", s, v.CLV, floor, u.CLV)
			}
		}
	}
}

// TestModelCLVSteps checks that the discounted value converges as the
// horizon is cut into more periods.
func TestModelCLVSteps(t *testing.T) {
	s := Summary{X: 3, Tx: 20, T: 30}
	var prev float64
	for i, steps := range []int{1, 4, 12, 52, MaxSteps} {
		m := cdnowModel()
		m.Steps = steps
		m.DiscountRate = 0.5
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
		v := m.CLV(s, 30)
		if i > 0 && v < prev {
			t.Errorf("%d steps: CLV %v below %v with fewer steps (later periods are discounted more)", steps, v, prev)
		}
		prev = v
	}
}

func TestExpectedSpend(t *testing.T) {
	g := GammaGamma{P: 6.25, Q: 3.74, Gamma: 15.44}
	mean := g.MeanSpend()
	if math.Abs(mean-6.25*15.44/2.74) > 1e-12 {
		t.Fatalf("MeanSpend = %v", mean)
	}
	tests := []struct {
		x    int64
		m    float64
		want float64
	}{
		{0, 50, mean},
		{3, 0, mean},
		{3, -5, mean},
		{1, 50, 6.25 * (15.44 + 50) / (6.25 + 2.74)},
		{10, 50, 6.25 * (15.44 + 500) / (62.5 + 2.74)},
	}
	for _, tc := range tests {
		if got := g.ExpectedSpend(tc.x, tc.m); math.Abs(got-tc.want) > 1e-12*tc.want {
			t.Errorf("ExpectedSpend(%d, %v) = %v, want %v", tc.x, tc.m, got, tc.want)
		}
	}
	// Many purchases: the customer's own mean dominates.
	if got := g.ExpectedSpend(100_000, 50); math.Abs(got-50) > 0.01 {
		t.Errorf("ExpectedSpend(1e5, 50) = %v, want about 50", got)
	}
}

// TestModelMBGNBD checks that a Model with Count MBG/NBD evaluates with
// MBG/NBD: P(alive) (below 1 for a one-time buyer), the expected purchases
// over the horizon, and the P(alive) crossing.
func TestModelMBGNBD(t *testing.T) {
	mb := MBGNBD{R: 0.525, Alpha: 6.183, A: 0.891, B: 1.614}
	m := cdnowModel()
	m.Count, m.MBGNBD = CountMBGNBD, &mb
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if !m.OneTimeBuyersDrop() || cdnowModelValid(t).OneTimeBuyersDrop() {
		t.Error("OneTimeBuyersDrop: want true under MBG/NBD only")
	}
	for _, s := range []Summary{{0, 0, 10}, {0, 0, 38}, {2, 30.43, 38.86}, {9, 5, 38}} {
		v := m.Evaluate(s, 30)
		if v.PAlive != mb.PAlive(s) || m.PAlive(s) != v.PAlive {
			t.Errorf("%+v: P(alive) %v, MBG/NBD %v", s, v.PAlive, mb.PAlive(s))
		}
		if want := mb.ExpectedPurchases(s, m.Horizon); math.Abs(v.ExpectedPurchases-want) > 1e-12*max(1, want) {
			t.Errorf("%+v: expected purchases %v, MBG/NBD %v", s, v.ExpectedPurchases, want)
		}
		if got := m.ExpectedPurchases(s, 13); got != mb.ExpectedPurchases(s, 13) {
			t.Errorf("%+v: Model.ExpectedPurchases %v", s, got)
		}
		if got, want := m.PAliveFallsBelow(s.X, s.Tx, 0.3), mb.PAliveFallsBelow(s.X, s.Tx, 0.3); got != want {
			t.Errorf("%+v: PAliveFallsBelow %v, MBG/NBD %v", s, got, want)
		}
	}
	if pa := m.PAlive(Summary{T: 38}); !(pa < 1) {
		t.Errorf("one-time buyer's P(alive) %v under MBG/NBD", pa)
	}
}

func cdnowModelValid(t *testing.T) *Model {
	t.Helper()
	m := cdnowModel()
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestModelParetoNBD checks that a Model with Count Pareto/NBD evaluates
// with Pareto/NBD: P(alive), the expected purchases over the horizon (the
// discounted sum's undiscounted total), and the P(alive) crossing.
func TestModelParetoNBD(t *testing.T) {
	pn := ParetoNBD{R: 0.553, Alpha: 10.578, S: 0.606, Beta: 11.669}
	m := cdnowModel()
	m.Count, m.ParetoNBD = CountParetoNBD, &pn
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if !m.OneTimeBuyersDrop() {
		t.Error("OneTimeBuyersDrop: want true under Pareto/NBD")
	}
	for _, s := range []Summary{{0, 0, 10}, {0, 0, 38}, {2, 30.43, 38.86}, {9, 5, 38}} {
		v := m.Evaluate(s, 30)
		if v.PAlive != pn.PAlive(s) || m.PAlive(s) != v.PAlive {
			t.Errorf("%+v: P(alive) %v, Pareto/NBD %v", s, v.PAlive, pn.PAlive(s))
		}
		if want := pn.ExpectedPurchases(s, m.Horizon); math.Abs(v.ExpectedPurchases-want) > 1e-12*max(1, want) {
			t.Errorf("%+v: expected purchases %v, Pareto/NBD %v", s, v.ExpectedPurchases, want)
		}
		if !(v.CLV > 0 && v.CLV < v.ExpectedPurchases*v.ExpectedSpend) {
			t.Errorf("%+v: CLV %v, undiscounted %v", s, v.CLV, v.ExpectedPurchases*v.ExpectedSpend)
		}
		if got, want := m.PAliveFallsBelow(s.X, s.Tx, 0.3), pn.PAliveFallsBelow(s.X, s.Tx, 0.3); got != want {
			t.Errorf("%+v: PAliveFallsBelow %v, Pareto/NBD %v", s, got, want)
		}
	}
}
