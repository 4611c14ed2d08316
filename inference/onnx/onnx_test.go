package onnx

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
)

type golden struct {
	Features   []string     `json:"features"`
	Rows       [][]*float64 `json:"rows"`
	Prediction []float64    `json:"prediction"`
}

func load(t testing.TB, path string) *Model {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(b)
	if err != nil {
		t.Fatalf("Load %s: %v", path, err)
	}
	return m
}

// TestGolden checks congestion.onnx (the shipped XGBoost model converted
// by testdata/gen.py with python3-onnx) against python3-xgboost's
// predictions, modes.onnx against the reference evaluator in gen.py, and
// mlp.onnx (a scikit-learn imputer, scaler and perceptron written out as
// ONNX nodes) against scikit-learn's own predictions.
func TestGolden(t *testing.T) {
	cases := []struct {
		model, golden string
		trees         int
		// tails: the scores are probabilities; check those near 0 and 1
		// to 1e-4 of their distance from it, not only to 1e-5 absolute.
		tails bool
	}{
		{"testdata/congestion.onnx", "../../models/congestion.golden.json", 40, true},
		{"testdata/modes.onnx", "testdata/modes.golden.json", 6, false},
		{"testdata/mlp.onnx", "testdata/mlp.golden.json", 0, true},
	}
	for _, c := range cases {
		t.Run(c.model, func(t *testing.T) {
			m := load(t, c.model)
			b, err := os.ReadFile(c.golden)
			if err != nil {
				t.Fatal(err)
			}
			var g golden
			if err := json.Unmarshal(b, &g); err != nil {
				t.Fatal(err)
			}
			if m.NumTrees() != c.trees || len(g.Rows) < 100 {
				t.Fatalf("%d trees, %d golden rows", m.NumTrees(), len(g.Rows))
			}
			if g.Features != nil && strings.Join(m.FeatureNames(), ",") != strings.Join(g.Features, ",") {
				t.Fatalf("feature names %v, want %v", m.FeatureNames(), g.Features)
			}
			x := make([]float64, m.NumFeature())
			missing := 0
			for i, row := range g.Rows {
				for j, v := range row {
					if v == nil {
						x[j] = math.NaN()
						missing++
					} else {
						x[j] = *v
					}
				}
				got, want := m.Predict(x), g.Prediction[i]
				if math.Abs(got-want) > 1e-5*math.Max(1, math.Abs(want)) {
					t.Fatalf("row %d %v: %v, want %v", i, x, got, want)
				}
				if tail := min(want, 1-want); c.tails && tail > 1e-12 && math.Abs(got-want) > 1e-4*tail {
					t.Fatalf("row %d %v: %v, want %v (to 1e-4 relative in the tail)", i, x, got, want)
				}
			}
			if missing == 0 {
				t.Fatal("no missing values in the golden rows")
			}
		})
	}
}

func TestLoadRejects(t *testing.T) {
	good, err := os.ReadFile("testdata/modes.onnx")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		data  []byte
		unsup bool
	}{
		{"garbage", []byte{0xff, 0xff, 0xff}, false},
		{"empty", nil, false},
		{"truncated", good[:len(good)/2], false},
		// Replacing the operator name keeps the length, so the file still
		// parses: the operator is refused.
		{"other operator", []byte(strings.Replace(string(good), "TreeEnsembleRegressor", "TreeEnsembleRegressoX", 1)), true},
		{"aggregate function", []byte(strings.Replace(string(good), "AVERAGE", "MAXIMUM", 1)), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(c.data)
			if err == nil {
				t.Fatal("accepted")
			}
			if errors.Is(err, ErrUnsupported) != c.unsup {
				t.Fatalf("ErrUnsupported = %v: %v", !c.unsup, err)
			}
		})
	}
}

var sink float64

func BenchmarkPredictCongestion(b *testing.B) {
	data, err := os.ReadFile("testdata/congestion.onnx")
	if err != nil {
		b.Fatal(err)
	}
	m, err := Load(data)
	if err != nil {
		b.Fatal(err)
	}
	x := []float64{0.2, 0.3, 0.9, 0.99, 0, 0, 40, 300}
	b.ReportAllocs()
	for b.Loop() {
		sink += m.Predict(x)
	}
}
