package learning

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/netfeat/netfeat/federated"
)

// The trainer plugs into a federated.Participant.
var _ federated.Trainer = (*FederatedTrainer)(nil)

func TestFeatureSpaceApply(t *testing.T) {
	space := FeatureSpace{
		{Name: "util", Scale: 1},
		{Name: "drops", Log1p: true, Scale: 2},
		{Name: "temp", Center: 40, Scale: 10},
	}
	for _, tc := range []struct {
		name string
		raw  []float64
		want []float64
		err  string
	}{
		{"identity, log1p and center", []float64{0.5, math.E - 1, 60}, []float64{0.5, 0.5, 2}, ""},
		{"zeros", []float64{0, 0, 40}, []float64{0, 0, 0}, ""},
		{"a negative rate is clipped to 0 before log1p", []float64{0.1, -5, 30}, []float64{0.1, 0, -1}, ""},
		{"NaN maps to 0", []float64{math.NaN(), math.NaN(), math.NaN()}, []float64{0, 0, 0}, ""},
		{"+Inf refused", []float64{0, math.Inf(1), 0}, nil, "drops is +Inf"},
		{"-Inf refused", []float64{math.Inf(-1), 0, 0}, nil, "util is -Inf"},
		{"too few values", []float64{1, 2}, nil, "2 values for 3 features"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := space.Apply(nil, tc.raw)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if math.Abs(got[i]-tc.want[i]) > 1e-12 {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestFeatureSpaceValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		space FeatureSpace
		err   string
	}{
		{"ok", FeatureSpace{{Name: "a", Scale: 1}, {Name: "b", Log1p: true, Scale: 7, Center: 1}}, ""},
		{"empty", nil, "no features"},
		{"no name", FeatureSpace{{Scale: 1}}, `name "" empty`},
		{"twice", FeatureSpace{{Name: "a", Scale: 1}, {Name: "a", Scale: 2}}, `name "a" empty or given twice`},
		{"zero scale", FeatureSpace{{Name: "a"}}, "scale 0 must be"},
		{"negative scale", FeatureSpace{{Name: "a", Scale: -1}}, "scale -1 must be"},
		{"NaN scale", FeatureSpace{{Name: "a", Scale: math.NaN()}}, "scale NaN must be"},
		{"infinite center", FeatureSpace{{Name: "a", Scale: 1, Center: math.Inf(1)}}, "center +Inf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.space.Validate()
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
		})
	}
}

func TestNewFederatedTrainerRefuses(t *testing.T) {
	good := func() *Dataset {
		return &Dataset{Names: []string{"a", "b"}, X: []float64{0, 1, 1, 0}, Y: []float64{0, 1}}
	}
	for _, tc := range []struct {
		name string
		ds   func() *Dataset
		opt  FederatedOptions
		err  string
	}{
		{"both classes", good, FederatedOptions{}, ""},
		{"one class is accepted", func() *Dataset { ds := good(); ds.Y = []float64{0, 0}; return ds }, FederatedOptions{}, ""},
		{"no rows", func() *Dataset { return &Dataset{Names: []string{"a"}} }, FederatedOptions{}, "0 rows"},
		{"no names", func() *Dataset { return &Dataset{X: []float64{1}, Y: []float64{1}} }, FederatedOptions{}, "no feature names"},
		{"NaN", func() *Dataset { ds := good(); ds.X[1] = math.NaN(); return ds }, FederatedOptions{}, "feature b is NaN"},
		{"label 2", func() *Dataset { ds := good(); ds.Y[1] = 2; return ds }, FederatedOptions{}, "label 2"},
		{"ragged", func() *Dataset { ds := good(); ds.X = ds.X[:3]; return ds }, FederatedOptions{}, "3 values for 2 rows"},
		{"negative epochs", good, FederatedOptions{Epochs: -1}, "epochs -1"},
		{"negative learning rate", good, FederatedOptions{LearningRate: -0.1}, "learning rate -0.1"},
		{"infinite learning rate", good, FederatedOptions{LearningRate: math.Inf(1)}, "learning rate +Inf"},
		{"negative l2", good, FederatedOptions{L2: -1}, "l2 -1"},
		{"negative positive weight", good, FederatedOptions{PositiveWeight: -2}, "positive weight -2"},
		{"NaN positive weight", good, FederatedOptions{PositiveWeight: math.NaN()}, "positive weight NaN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewFederatedTrainer(tc.ds(), tc.opt)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
		})
	}
}

// gradStep is one full-batch gradient step of the regularised log loss
// over rows, computed here independently of the trainer.
// Rows labelled 1 weigh pw.
func gradStep(w []float64, rows [][]float64, y []float64, lr, l2, pw float64) []float64 {
	d := len(w) - 1
	g := make([]float64, d+1)
	for i, x := range rows {
		z := w[d]
		for j := range d {
			z += w[j] * x[j]
		}
		e := 1/(1+math.Exp(-z)) - y[i]
		if y[i] == 1 {
			e *= pw
		}
		for j := range d {
			g[j] += e * x[j]
		}
		g[d] += e
	}
	out := make([]float64, d+1)
	for j := range out {
		reg := 0.0
		if j < d {
			reg = l2 * w[j]
		}
		out[j] = w[j] - lr*(g[j]/float64(len(rows))+reg)
	}
	return out
}

// logLoss is the mean log loss of w on ds.
func logLoss(w []float64, ds *Dataset) float64 {
	var s float64
	for i := range ds.Len() {
		p := Sigmoid(Margin(w, ds.Row(i)))
		if ds.Y[i] == 1 {
			s -= math.Log(p)
		} else {
			s -= math.Log(1 - p)
		}
	}
	return s / float64(ds.Len())
}

func TestFederatedTrainerTrain(t *testing.T) {
	rows := [][]float64{{0.1, 0}, {0.2, 0}, {0.9, 1}, {1, 0.8}, {0.3, 0.1}}
	labels := []float64{0, 0, 1, 1, 0}
	mk := func(y []float64) *Dataset {
		ds := &Dataset{Names: []string{"util", "drops"}}
		for i, x := range rows {
			if err := ds.Add(x, y[i]); err != nil {
				t.Fatal(err)
			}
		}
		return ds
	}
	for _, tc := range []struct {
		name   string
		labels []float64
		opt    FederatedOptions
		global []float64
		check  func(t *testing.T, ds *Dataset, global, update []float64)
	}{
		{
			name: "one epoch is one gradient step from the global weights", labels: labels,
			opt: FederatedOptions{Epochs: 1, LearningRate: 0.7, L2: 0.01}, global: []float64{0.5, -0.2, 0.1},
			check: func(t *testing.T, ds *Dataset, global, update []float64) {
				want := gradStep(global, rows, labels, 0.7, 0.01, 1)
				for j := range update {
					if math.Abs(global[j]+update[j]-want[j]) > 1e-12 {
						t.Fatalf("local weights %v, want %v", add(global, update), want)
					}
				}
			},
		},
		{
			name: "positive rows weigh PositiveWeight", labels: labels,
			opt: FederatedOptions{Epochs: 1, LearningRate: 0.3, L2: 0.01, PositiveWeight: 5}, global: []float64{0.5, -0.2, 0.1},
			check: func(t *testing.T, ds *Dataset, global, update []float64) {
				want := gradStep(global, rows, labels, 0.3, 0.01, 5)
				plain := gradStep(global, rows, labels, 0.3, 0.01, 1)
				for j := range update {
					if math.Abs(global[j]+update[j]-want[j]) > 1e-12 {
						t.Fatalf("local weights %v, want %v", add(global, update), want)
					}
				}
				if !(want[2] > plain[2]) {
					t.Fatalf("weighting the positives did not raise the bias: %v vs %v", want, plain)
				}
			},
		},
		{
			name: "the local weights lower the loss", labels: labels,
			opt: FederatedOptions{Epochs: 30}, global: []float64{0, 0, 0},
			check: func(t *testing.T, ds *Dataset, global, update []float64) {
				if before, after := logLoss(global, ds), logLoss(add(global, update), ds); !(after < before-0.05) {
					t.Fatalf("loss %v → %v", before, after)
				}
			},
		},
		{
			name: "an edge without incidents pushes the bias down and keeps training", labels: []float64{0, 0, 0, 0, 0},
			opt: FederatedOptions{Epochs: 10}, global: []float64{1, 1, 0},
			check: func(t *testing.T, ds *Dataset, global, update []float64) {
				if !(update[2] < 0 && update[0] < 0 && update[1] < 0) {
					t.Fatalf("update %v: every weight should fall", update)
				}
			},
		},
		{
			name: "the L2 penalty shrinks a weight with no signal, not the bias", labels: labels,
			opt: FederatedOptions{Epochs: 1, LearningRate: 1, L2: 0.5}, global: []float64{0, 4, 0},
			check: func(t *testing.T, ds *Dataset, global, update []float64) {
				noPenalty := gradStep(global, rows, labels, 1, 0, 1)
				if d := (global[1] + update[1]) - noPenalty[1]; math.Abs(d+0.5*4) > 1e-12 {
					t.Fatalf("penalty moved drops by %v, want -2", d)
				}
				if d := (global[2] + update[2]) - noPenalty[2]; math.Abs(d) > 1e-12 {
					t.Fatalf("penalty moved the bias by %v", d)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := mk(tc.labels)
			tr, err := NewFederatedTrainer(ds, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if tr.Dim() != 3 {
				t.Fatalf("dim %d", tr.Dim())
			}
			global := append([]float64(nil), tc.global...)
			update, n, err := tr.Train(context.Background(), global)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(rows) || len(update) != 3 {
				t.Fatalf("n %d, update %v", n, update)
			}
			for j := range global {
				if global[j] != tc.global[j] {
					t.Fatalf("Train changed the global weights: %v", global)
				}
			}
			tc.check(t, ds, global, update)
		})
	}
}

func TestFederatedTrainerTrainRefuses(t *testing.T) {
	ds := &Dataset{Names: []string{"a"}, X: []float64{0, 1}, Y: []float64{0, 1}}
	tr, err := NewFederatedTrainer(ds, FederatedOptions{Epochs: 5})
	if err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		global []float64
		err    string
	}{
		{"too few weights", context.Background(), []float64{0}, "1 global weights, want 2"},
		{"too many weights", context.Background(), []float64{0, 0, 0}, "3 global weights, want 2"},
		{"NaN weight", context.Background(), []float64{math.NaN(), 0}, "global weight 0 is NaN"},
		{"canceled", canceled, []float64{0, 0}, "context canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tr.Train(tc.ctx, tc.global)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
		})
	}
}

// TestFederatedAveragingIsPooledGradientDescent checks why the trainer
// suits federated averaging: with one local step per round, the
// sample-weighted mean of two edges' updates is exactly one gradient step
// on their pooled rows, even when only one edge has positives (and with
// the positives weighted).
func TestFederatedAveragingIsPooledGradientDescent(t *testing.T) {
	rowsA := [][]float64{{0.9, 1}, {0.2, 0}, {1, 0.7}, {0.3, 0}}
	yA := []float64{1, 0, 1, 0}
	rowsB := [][]float64{{0.1, 0}, {0.25, 0}, {0.4, 0.1}}
	yB := []float64{0, 0, 0}
	mk := func(rows [][]float64, y []float64) *FederatedTrainer {
		ds := &Dataset{Names: []string{"util", "drops"}}
		for i, x := range rows {
			if err := ds.Add(x, y[i]); err != nil {
				t.Fatal(err)
			}
		}
		tr, err := NewFederatedTrainer(ds, FederatedOptions{Epochs: 1, LearningRate: 0.5, L2: 0.01, PositiveWeight: 4})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	a, b := mk(rowsA, yA), mk(rowsB, yB)
	pooled := append(append([][]float64(nil), rowsA...), rowsB...)
	pooledY := append(append([]float64(nil), yA...), yB...)
	w := []float64{0, 0, 0}
	want := []float64{0, 0, 0}
	for round := range 20 {
		ua, na, err := a.Train(context.Background(), w)
		if err != nil {
			t.Fatal(err)
		}
		ub, nb, err := b.Train(context.Background(), w)
		if err != nil {
			t.Fatal(err)
		}
		for j := range w {
			w[j] += (float64(na)*ua[j] + float64(nb)*ub[j]) / float64(na+nb)
		}
		want = gradStep(want, pooled, pooledY, 0.5, 0.01, 4)
		for j := range w {
			if math.Abs(w[j]-want[j]) > 1e-12 {
				t.Fatalf("round %d: federated %v, pooled %v", round+1, w, want)
			}
		}
	}
	score := WeightsScorer(w)
	m, err := Evaluate(&Dataset{Names: []string{"util", "drops"}, X: []float64{0.95, 0.9, 0.2, 0}, Y: []float64{1, 0}}, score, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if m.TP != 1 || m.TN != 1 {
		t.Fatalf("after 20 rounds: %+v (weights %v)", m, w)
	}
	if _, err := score([]float64{1}); err == nil {
		t.Fatal("a row of the wrong length scored")
	}
}

func add(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] + b[i]
	}
	return out
}

// TestLoadLogisticBeforeTransforms loads a model file written before
// Logistic had transforms (testdata/logistic-before-transforms.json,
// written by Train at 224fa66): it loads, scores with the formula of its
// own numbers, and writes no transforms back.
func TestLoadLogisticBeforeTransforms(t *testing.T) {
	b, err := os.ReadFile("testdata/logistic-before-transforms.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := LoadLogistic(b)
	if err != nil {
		t.Fatalf("a file of before transforms no longer loads: %v", err)
	}
	if m.Transforms != nil || m.Profile == nil || len(m.Features) != 2 {
		t.Fatalf("loaded %+v", m)
	}
	for _, x := range [][]float64{{0, 0}, {1.5, -2}, {-3, 4}} {
		z := m.Intercept
		for j := range x {
			z += m.Weights[j] * (x[j] - m.Mean[j]) / m.Scale[j]
		}
		if got, want := m.Predict(x), 1/(1+math.Exp(-z)); math.Abs(got-want) > 1e-15 {
			t.Errorf("Predict(%v) = %v, want %v", x, got, want)
		}
	}
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), `"transforms"`) {
		t.Errorf("a model without transforms writes them:\n%s", out)
	}
	// Present, transforms hold one entry per feature: an empty list is
	// refused, not read as none.
	empty := strings.Replace(string(b), `"format_version": 1,`, `"format_version": 1, "transforms": [],`, 1)
	if _, err := LoadLogistic([]byte(empty)); err == nil || !strings.Contains(err.Error(), "2 features but 0 transforms") {
		t.Errorf("empty transforms: err %v", err)
	}
}

// TestFederatedModelRoundTrip turns federated weights into a model file
// and back: on raw values the loaded model scores what the weights score
// on the same values in the feature space, for spaces with and without
// log1p; only a space with log1p writes transforms.
func TestFederatedModelRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name       string
		space      FeatureSpace
		w          []float64
		transforms bool
	}{
		{"identity", FeatureSpace{{Name: "util", Scale: 1}, {Name: "temp", Center: 40, Scale: 10}}, []float64{2, -0.5, -1}, false},
		{"log1p", FeatureSpace{{Name: "drops", Log1p: true, Center: 1, Scale: 7}}, []float64{3, -2}, true},
		{"mixed", FeatureSpace{{Name: "util", Scale: 0.5}, {Name: "drops", Log1p: true, Scale: 7}, {Name: "errs", Log1p: true, Center: 0.5, Scale: 2}},
			[]float64{1.5, 4, -0.7, -3}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := FederatedModel(tc.space, tc.w, 1e-3, TrainInfo{Rows: 40, Source: "federated round 3"})
			if err != nil {
				t.Fatal(err)
			}
			b, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(string(b), `"transforms"`); got != tc.transforms {
				t.Errorf("transforms written: %v, want %v", got, tc.transforms)
			}
			back, err := LoadLogistic(b)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(5, 6))
			raw := make([]float64, len(tc.space))
			for range 200 {
				for j := range raw {
					raw[j] = (rng.Float64() - 0.2) * math.Pow(10, 3*rng.Float64()) // negatives and heavy tails
				}
				z, err := tc.space.Apply(nil, raw)
				if err != nil {
					t.Fatal(err)
				}
				want := Sigmoid(Margin(tc.w, z))
				if got := back.Predict(raw); math.Abs(got-want) > 1e-12 {
					t.Fatalf("raw %v: model file %v, weights %v", raw, got, want)
				}
			}
		})
	}
}

func TestFederatedModelRefuses(t *testing.T) {
	space := FeatureSpace{{Name: "a", Scale: 1}, {Name: "b", Log1p: true, Scale: 2}}
	for _, tc := range []struct {
		name  string
		space FeatureSpace
		w     []float64
		want  string
	}{
		{"too few weights", space, []float64{1, 2}, "2 weights, want 3"},
		{"NaN weight", space, []float64{1, math.NaN(), 0}, "weight 1 is NaN"},
		{"bad space", FeatureSpace{{Name: "a", Scale: 0}}, []float64{1, 0}, "scale 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := FederatedModel(tc.space, tc.w, 0, TrainInfo{}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}
