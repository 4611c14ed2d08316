package inference

import (
	"bufio"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/netfeat/netfeat/schema"
)

// TestLightGBM checks that a LightGBM text model, run through leaves by
// the runtime's scorer, reproduces LightGBM's own predictions
// (testdata/lightgbm/README.md).
func TestLightGBM(t *testing.T) {
	artifact, err := os.ReadFile("testdata/lightgbm/lg_dart_breast_cancer.model")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := buildScorer(KindLightGBM, artifact, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	names := lightGBMFeatureNames(artifact)
	if len(names) != 30 || names[0] != "Column_0" {
		t.Fatalf("feature names %v", names)
	}
	rows := readFloats(t, "testdata/lightgbm/breast_cancer_test.tsv")
	want := readFloats(t, "testdata/lightgbm/lg_dart_breast_cancer_true_predictions.txt")
	if len(rows) != len(want) || len(rows) == 0 {
		t.Fatalf("%d rows, %d predictions", len(rows), len(want))
	}
	// The row's features arrive in another order than the model's, as a
	// feature view may list them: binding is by name.
	perm := make([]string, len(names))
	for i := range names {
		perm[i] = names[len(names)-1-i]
	}
	for i, x := range rows {
		vals := make([]float64, len(x))
		for j := range x {
			vals[j] = x[len(x)-1-j]
		}
		var res result
		if err := sc.score(&schema.FeatureRow{View: "v", Names: perm, Values: vals}, &res); err != nil {
			t.Fatal(err)
		}
		if math.Abs(res.score-want[i][0]) > 1e-9 {
			t.Fatalf("row %d: %v, LightGBM %v", i, res.score, want[i][0])
		}
	}
	if _, err := buildScorer(KindLightGBM, []byte("not a model"), nil, nil); err == nil {
		t.Fatal("garbage loaded as a LightGBM model")
	}
	if _, err := buildScorer(KindLightGBM, artifact, []string{"a", "b"}, nil); err == nil {
		t.Fatal("2 feature names accepted for a 30-feature model")
	}
}

func readFloats(t *testing.T, path string) [][]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var row []float64
		for _, s := range strings.Fields(sc.Text()) {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatal(err)
			}
			row = append(row, v)
		}
		out = append(out, row)
	}
	return out
}
