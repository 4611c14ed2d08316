package xgboost

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type golden struct {
	Features   []string     `json:"features"`
	Rows       [][]*float64 `json:"rows"`
	Margin     []float64    `json:"margin"`
	Prediction []float64    `json:"prediction"`
}

func loadGolden(t *testing.T, path string) golden {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden: %v", err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("decode golden %s: %v", path, err)
	}
	if len(g.Rows) == 0 || len(g.Rows) != len(g.Prediction) || len(g.Rows) != len(g.Margin) {
		t.Fatalf("golden %s: %d rows, %d predictions, %d margins", path, len(g.Rows), len(g.Prediction), len(g.Margin))
	}
	return g
}

func loadModel(t *testing.T, path string) *Model {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open model: %v", err)
	}
	defer f.Close()
	m, err := Load(f)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return m
}

// TestGolden compares the evaluator with predictions python3-xgboost made
// for the same models and inputs (testdata/gen_golden.py and
// models/train_congestion.py).
func TestGolden(t *testing.T) {
	cases := []struct {
		model, golden string
		objective     string
	}{
		{"testdata/binary_logistic.json", "testdata/binary_logistic.golden.json", "binary:logistic"},
		{"testdata/binary_logitraw.json", "testdata/binary_logitraw.golden.json", "binary:logitraw"},
		{"testdata/reg_squarederror.json", "testdata/reg_squarederror.golden.json", "reg:squarederror"},
		{"../../models/congestion.json", "../../models/congestion.golden.json", "binary:logistic"},
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.model), func(t *testing.T) {
			m := loadModel(t, c.model)
			g := loadGolden(t, c.golden)
			if m.Objective() != c.objective {
				t.Fatalf("objective %q, want %q", m.Objective(), c.objective)
			}
			if g.Features != nil && strings.Join(g.Features, ",") != strings.Join(m.FeatureNames(), ",") {
				t.Fatalf("feature names %v, want %v", m.FeatureNames(), g.Features)
			}
			x := make([]float64, m.NumFeature())
			nanRows := 0
			for i, row := range g.Rows {
				for j, v := range row {
					if v == nil {
						x[j] = math.NaN()
						nanRows++
					} else {
						x[j] = *v
					}
				}
				if got, want := float64(m.Margin(x)), g.Margin[i]; !close(got, want) {
					t.Fatalf("row %d %v: margin %v, xgboost %v", i, x, got, want)
				}
				if got, want := m.Predict(x), g.Prediction[i]; !close(got, want) {
					t.Fatalf("row %d %v: prediction %v, xgboost %v", i, x, got, want)
				}
			}
			if nanRows == 0 {
				t.Fatalf("golden file has no missing values; default_left is untested")
			}
		})
	}
}

// close allows for float32 rounding of the summation order.
func close(got, want float64) bool {
	return math.Abs(got-want) <= 1e-5*math.Max(1, math.Abs(want))
}

func TestLoadRejects(t *testing.T) {
	good, err := os.ReadFile("testdata/binary_logistic.json")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		edit    func(map[string]any)
		wantErr string
		unsup   bool
	}{
		{"dart", func(m map[string]any) { learner(m)["gradient_booster"].(map[string]any)["name"] = "dart" }, "booster", true},
		{"multiclass", func(m map[string]any) { learner(m)["learner_model_param"].(map[string]any)["num_class"] = "3" }, "classes", true},
		{"objective", func(m map[string]any) { learner(m)["objective"].(map[string]any)["name"] = "rank:pairwise" }, "objective", true},
		{"categorical", func(m map[string]any) { firstTree(m)["split_type"].([]any)[0] = 1.0 }, "categorical", true},
		{"cycle", func(m map[string]any) { firstTree(m)["left_children"].([]any)[0] = 0.0 }, "bad children", false},
		{"feature range", func(m map[string]any) { firstTree(m)["split_indices"].([]any)[0] = 99.0 }, "feature 99", false},
		{"ragged", func(m map[string]any) { firstTree(m)["split_indices"] = []any{} }, "length", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(good, &m); err != nil {
				t.Fatal(err)
			}
			c.edit(m)
			b, _ := json.Marshal(m)
			_, err := Load(strings.NewReader(string(b)))
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("Load: %v, want error containing %q", err, c.wantErr)
			}
			if errors.Is(err, ErrUnsupported) != c.unsup {
				t.Fatalf("errors.Is(ErrUnsupported) = %v for %v", !c.unsup, err)
			}
		})
	}
	if _, err := Load(strings.NewReader("{not json")); err == nil {
		t.Fatal("Load accepted broken JSON")
	}
}

func learner(m map[string]any) map[string]any { return m["learner"].(map[string]any) }

func firstTree(m map[string]any) map[string]any {
	gb := learner(m)["gradient_booster"].(map[string]any)
	return gb["model"].(map[string]any)["trees"].([]any)[0].(map[string]any)
}

var sink float64

func BenchmarkPredictCongestion(b *testing.B) {
	f, err := os.Open("../../models/congestion.json")
	if err != nil {
		b.Fatal(err)
	}
	m, err := Load(f)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	x := []float64{0.2, 0.3, 0.9, 0.99, 0, 0, 40, 300}
	b.ReportAllocs()
	for b.Loop() {
		sink += m.Predict(x)
	}
}
