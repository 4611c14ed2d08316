package learning

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// synthetic draws n rows of d standard normal features (feature j scaled
// by 1+j and shifted by j, so standardisation matters) and labels from a
// logistic model with the given standardised weights and intercept.
func synthetic(n int, w []float64, b float64, seed uint64) *Dataset {
	d := len(w)
	rng := rand.New(rand.NewPCG(seed, 1))
	ds := &Dataset{Names: make([]string, d), X: make([]float64, 0, n*d), Y: make([]float64, 0, n)}
	for j := range d {
		ds.Names[j] = "f" + string(rune('a'+j%26)) + strings.Repeat("x", j/26)
	}
	x := make([]float64, d)
	for range n {
		z := b
		for j := range d {
			s := rng.NormFloat64()
			x[j] = s*float64(1+j) + float64(j)
			z += w[j] * s
		}
		y := 0.0
		if rng.Float64() < 1/(1+math.Exp(-z)) {
			y = 1
		}
		ds.X = append(ds.X, x...)
		ds.Y = append(ds.Y, y)
	}
	return ds
}

func TestTrainRecoversKnownWeights(t *testing.T) {
	w := []float64{1.5, -2, 0.5, 0}
	ds := synthetic(200_000, w, -1, 7)
	m, err := Train(ds, Options{L2: 1e-6})
	if err != nil {
		t.Fatal(err)
	}
	// The sample's standardisation differs slightly from the generator's
	// (mean j, sd 1+j): compare weights on the generator's scale.
	for j := range w {
		got := m.Weights[j] / m.Scale[j] * float64(1+j)
		if math.Abs(got-w[j]) > 0.05 {
			t.Errorf("weight %d: %v, want %v ± 0.05", j, got, w[j])
		}
	}
	if m.Trained.Iterations < 2 || m.Trained.Iterations > 20 {
		t.Errorf("%d Newton iterations", m.Trained.Iterations)
	}
}

// TestTrainIsTheOptimum checks the first-order optimality condition of the
// convex objective, computed here independently of the trainer: at the
// unique minimum the gradient of (1/N)Σ logloss + (λ/2)‖w‖² is zero.
func TestTrainIsTheOptimum(t *testing.T) {
	for _, tc := range []struct {
		name    string
		l2      float64
		workers int
	}{{"l2=1e-4", 1e-4, 1}, {"l2=1e-2", 1e-2, 1}, {"l2=1e-2/4 workers", 1e-2, 4}, {"l2=1", 1, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			ds := synthetic(20_000, []float64{0.7, -1.1, 2, 0.3, -0.2}, 0.4, 3)
			m, err := Train(ds, Options{L2: tc.l2, Workers: tc.workers})
			if err != nil {
				t.Fatal(err)
			}
			d := len(ds.Names)
			g := make([]float64, d+1)
			for i := range ds.Len() {
				x := ds.Row(i)
				r := m.Predict(x) - ds.Y[i]
				g[0] += r
				for j := range d {
					g[j+1] += r * (x[j] - m.Mean[j]) / m.Scale[j]
				}
			}
			for j := range g {
				g[j] /= float64(ds.Len())
				if j > 0 {
					g[j] += tc.l2 * m.Weights[j-1]
				}
				if math.Abs(g[j]) > 1e-8 {
					t.Errorf("gradient[%d] = %g at the returned weights", j, g[j])
				}
			}
		})
	}
}

func TestTrainSeparableStaysFinite(t *testing.T) {
	ds := &Dataset{Names: []string{"x"}}
	for i := range 100 {
		y := 0.0
		if i >= 50 {
			y = 1
		}
		if err := ds.Add([]float64{float64(i)}, y); err != nil {
			t.Fatal(err)
		}
	}
	m, err := Train(ds, Options{L2: 1e-3})
	if err != nil {
		t.Fatal(err)
	}
	if p := m.Predict([]float64{99}); p < 0.99 {
		t.Errorf("P(x=99) = %v", p)
	}
	if p := m.Predict([]float64{0}); p > 0.01 {
		t.Errorf("P(x=0) = %v", p)
	}
}

func TestTrainRefusesBadInput(t *testing.T) {
	good := func() *Dataset { return synthetic(100, []float64{1, -1}, 0, 1) }
	for _, tc := range []struct {
		name   string
		mutate func(*Dataset)
		reason string
		msg    string
	}{
		{"NaN", func(ds *Dataset) { ds.X[7] = math.NaN() }, ReasonNonFinite, "row 4: feature fb is NaN"},
		{"+Inf", func(ds *Dataset) { ds.X[0] = math.Inf(1) }, ReasonNonFinite, "row 1: feature fa is +Inf"},
		{"feature count", func(ds *Dataset) { ds.X = ds.X[:len(ds.X)-1] }, ReasonFeatureCount, "199 values for 100 rows of 2 features"},
		{"all zero", func(ds *Dataset) { clear(ds.Y) }, ReasonOneClass, "all 100 labels are 0"},
		{"all one", func(ds *Dataset) {
			for i := range ds.Y {
				ds.Y[i] = 1
			}
		}, ReasonOneClass, "all 100 labels are 1"},
		{"label 2", func(ds *Dataset) { ds.Y[3] = 2 }, ReasonLabel, "row 4: label 2"},
		{"too few", func(ds *Dataset) { ds.X, ds.Y = ds.X[:10], ds.Y[:5] }, ReasonTooFew, "5 rows, need at least 10"},
		{"duplicate name", func(ds *Dataset) { ds.Names[1] = "fa" }, ReasonNames, `"fa" empty or given twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := good()
			tc.mutate(ds)
			_, err := Train(ds, Options{})
			if !errors.Is(err, ErrBadInput) || Reason(err) != tc.reason || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v (reason %q), want reason %s and %q", err, Reason(err), tc.reason, tc.msg)
			}
		})
	}
	ds := &Dataset{Names: []string{"a", "b"}}
	if err := ds.Add([]float64{1}, 0); Reason(err) != ReasonFeatureCount {
		t.Errorf("Add of a short row: %v", err)
	}
	if err := ds.Add([]float64{1, math.NaN()}, 0); Reason(err) != ReasonNonFinite {
		t.Errorf("Add of NaN: %v", err)
	}
	if ds.Len() != 0 {
		t.Errorf("refused rows were added: %d", ds.Len())
	}
}

func TestModelFileRoundTrip(t *testing.T) {
	ds := synthetic(5000, []float64{1, -1, 0.5}, 0.2, 9)
	m, err := Train(ds, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := LoadLogistic(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if a, b := m.Predict(ds.Row(i)), back.Predict(ds.Row(i)); a != b {
			t.Fatalf("row %d: %v before, %v after the round trip", i, a, b)
		}
	}
	if back.Profile == nil || len(back.Profile.Features) != 3 {
		t.Fatalf("profile lost: %+v", back.Profile)
	}
}

func TestLoadLogisticRefuses(t *testing.T) {
	ds := synthetic(500, []float64{1, -1}, 0, 2)
	m, err := Train(ds, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Logistic)
		want   string
	}{
		{"format", func(m *Logistic) { m.Format = "xgboost" }, `format "xgboost"`},
		{"version", func(m *Logistic) { m.Version = 9 }, "format_version 9"},
		{"weights", func(m *Logistic) { m.Weights = m.Weights[:1] }, "2 features but 2 means, 2 scales, 1 weights"},
		{"scale", func(m *Logistic) { m.Scale[1] = 0 }, "feature fb"},
		{"no features", func(m *Logistic) { m.Features, m.Mean, m.Scale, m.Weights = nil, nil, nil, nil }, "no features"},
		{"profile names", func(m *Logistic) { m.Profile.Features[0].Name = "zz" }, `profile feature 0 is "zz"`},
		{"profile edges", func(m *Logistic) { e := m.Profile.Features[0].Edges; e[0], e[1] = e[1], e[0] }, "increasing"},
		{"profile shares", func(m *Logistic) { m.Profile.Features[1].Expected[0] += 0.5 }, "shares sum"},
		{"transforms length", func(m *Logistic) { m.Transforms = []string{TransformLog1p} }, "2 features but 1 transforms"},
		{"transform unknown", func(m *Logistic) { m.Transforms = []string{"", "sqrt"} }, `feature fb: transform "sqrt"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := *m
			c.Weights, c.Scale = append([]float64(nil), m.Weights...), append([]float64(nil), m.Scale...)
			p := *m.Profile
			p.Features = append([]FeatureProfile(nil), m.Profile.Features...)
			for i := range p.Features {
				p.Features[i].Edges = append([]float64(nil), p.Features[i].Edges...)
				p.Features[i].Expected = append([]float64(nil), p.Features[i].Expected...)
			}
			c.Profile = &p
			tc.mutate(&c)
			b, err := c.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := LoadLogistic(b); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := LoadLogistic([]byte(`{"format":"netfeat-logistic","format_version":1,"bogus":1}`)); err == nil {
		t.Error("unknown field accepted")
	}
}

// BenchmarkTrainLogistic trains on 1,000,000 windows × 16 features. Run
// with GOMAXPROCS=1 for the one-core figure (docs/learning.md).
func BenchmarkTrainLogistic(b *testing.B) {
	w := make([]float64, 16)
	for j := range w {
		w[j] = math.Sin(float64(j+1)) * 1.5
	}
	ds := synthetic(1_000_000, w, -2, 11)
	b.ResetTimer()
	var m *Logistic
	cpu0 := cpuTime()
	for b.Loop() {
		var err error
		if m, err = Train(ds, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	// CPU time as well as wall time: on a shared machine the wall time
	// includes waiting for the core.
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(m.Trained.Iterations), "iterations")
}
