package inference

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
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

const lgModelPath = "testdata/lightgbm/lg_dart_breast_cancer.model"

// lgEdit returns the shipped LightGBM model with the line of field in tree
// (or in the header, for tree -1) replaced by field=value.
func lgEdit(t testing.TB, tree int, field, value string) []byte {
	t.Helper()
	b, err := os.ReadFile(lgModelPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	in := tree < 0
	for i, l := range lines {
		if strings.HasPrefix(l, "Tree=") {
			in = l == "Tree="+strconv.Itoa(tree)
		}
		if in && strings.HasPrefix(l, field+"=") {
			lines[i] = field + "=" + value
			return []byte(strings.Join(lines, "\n"))
		}
	}
	t.Fatalf("no %s in tree %d", field, tree)
	return nil
}

// brokenLightGBM are the shipped model with one defect each, and what the
// error must say. The first three are issue #20's: leaves panicked on the
// first two while scoring and looped forever on the third.
func brokenLightGBM(t testing.TB) []struct {
	name string
	file []byte
	want string
} {
	first := func(field string) string {
		b, _ := os.ReadFile(lgModelPath)
		_, rest, _ := strings.Cut(string(b), "\n"+field+"=")
		v, _, _ := strings.Cut(rest, "\n")
		return v
	}
	leaf0, _, _ := strings.Cut(first("leaf_value"), " ")
	return []struct {
		name string
		file []byte
		want string
	}{
		{"leaf_value cut to one value", lgEdit(t, 0, "leaf_value", leaf0), "tree 0: leaf_value has 1 values, want num_leaves=10"},
		{"split_feature 99999", lgEdit(t, 0, "split_feature", "99999 27 22 27 5 10 21 0 0"), "tree 0: split_feature[0]=99999, want < 30"},
		{"left_child cycle", lgEdit(t, 0, "left_child", "1 2 3 5 -2 6 8 -6 1"), "tree 0: left_child[8]=1: node 1 has two parents"},
		{"left_child to the root", lgEdit(t, 1, "left_child", "1 3 -3 4 6 -2 7 9 -7 10 11 0 13 -10"), "tree 1: left_child[11]=0: points back to the root"},
		{"self loop", lgEdit(t, 0, "left_child", "1 2 3 5 -2 6 8 -6 8"), "tree 0: left_child[8]=8: node 8 has two parents"},
		{"num_leaves too large", lgEdit(t, 0, "num_leaves", "11"), "tree 0: leaf_value has 10 values, want num_leaves=11"},
		{"num_leaves 0", lgEdit(t, 0, "num_leaves", "0"), "tree 0: num_leaves=0"},
		{"threshold short", lgEdit(t, 0, "threshold", "114.45 0.1457 107.45 0.11 0.089 0.447 32.1 19.3"), "tree 0: threshold has 8 values, want num_leaves-1=9"},
		{"decision_type long", lgEdit(t, 2, "decision_type", strings.Repeat("2 ", 30)+"2"), "tree 2: decision_type has 31 values"},
		{"right_child leaf out of range", lgEdit(t, 0, "right_child", "4 -3 -4 -5 7 -7 -8 -9 -11"), "tree 0: right_child[8]=-11: leaf 10, want < num_leaves=10"},
		{"right_child node out of range", lgEdit(t, 0, "right_child", "4 -3 -4 -5 9 -7 -8 -9 -10"), "tree 0: right_child[4]=9, want < num_leaves-1=9"},
		{"leaf used twice", lgEdit(t, 0, "right_child", "4 -3 -4 -5 7 -7 -8 -9 -9"), "tree 0: right_child[8]=-9: leaf 8 has two parents"},
		{"unknown missing type", lgEdit(t, 0, "decision_type", "14 2 2 2 2 2 2 2 2"), "tree 0: decision_type[0]=14: unknown missing type"},
		{"categorical without bitsets", lgEdit(t, 0, "decision_type", "3 2 2 2 2 2 2 2 2"), "tree 0: decision_type[0]: categorical split in a tree with num_cat=0"},
		{"more trees than the file has", lgEdit(t, -1, "tree_sizes", "836 1227 1533 1679 1761 1954 1784 1865 1942 1862 900"), "tree 10: num_leaves: no num_leaves field"},
		{"two classes", lgEdit(t, -1, "num_class", "2"), "header: num_class=2, want 1"},
		{"max_feature_idx negative", lgEdit(t, -1, "max_feature_idx", "-1"), "header: max_feature_idx=-1"},
		{"split_feature not a number", lgEdit(t, 3, "split_feature", "a b"), "tree 3: split_feature:"},
	}
}

// TestLightGBMRefusesBrokenTrees checks that each defect is refused by the
// loader with an error naming the tree and field, before leaves can panic
// or loop on it.
func TestLightGBMRefusesBrokenTrees(t *testing.T) {
	for _, c := range brokenLightGBM(t) {
		t.Run(c.name, func(t *testing.T) {
			_, err := buildScorer(KindLightGBM, c.file, nil, nil)
			if !errors.Is(err, ErrInvalidModel) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want ErrInvalidModel with %q", err, c.want)
			}
		})
	}
}

// TestLightGBMUploadRefused uploads each broken file through the real HTTP
// handler: 400 with the validator's error, and no version stored.
func TestLightGBMUploadRefused(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Models = []ModelConfig{{Name: "lg", Kind: KindLightGBM, View: "breast", File: lgModelPath}}
	r := newRuntime(t, cfg, nil, t.TempDir())
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	for _, c := range brokenLightGBM(t) {
		resp, err := http.Post(srv.URL+"/v1/models/lg/versions", "application/octet-stream", bytes.NewReader(c.file))
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Error string }
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusBadRequest || !strings.Contains(body.Error, c.want) {
			t.Fatalf("%s: %d %q (%v), want 400 with %q", c.name, resp.StatusCode, body.Error, err, c.want)
		}
	}
	mi, err := r.Model(context.Background(), "lg")
	if err != nil {
		t.Fatal(err)
	}
	if len(mi.Versions) != 1 || mi.Live != "v1" {
		t.Fatalf("versions after refused uploads: %+v", mi)
	}
}

// FuzzLightGBMLoad loads mutated LightGBM files: the loader must refuse or
// accept them without panicking, and an accepted model must score without
// panicking or looping (the fuzzer's deadline catches a loop). It calls
// loadLightGBM, which recovers nothing. `make fuzz` runs it.
func FuzzLightGBMLoad(f *testing.F) {
	b, err := os.ReadFile(lgModelPath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	for _, c := range brokenLightGBM(f) {
		f.Add(c.file)
	}
	f.Add([]byte("tree\nversion=v3\nnum_class=1\nnum_tree_per_iteration=1\nmax_feature_idx=1\nobjective=regression\ntree_sizes=1\n\n" +
		"Tree=0\nnum_leaves=3\nnum_cat=1\nsplit_feature=0 1\nthreshold=0 0.5\ndecision_type=1 2\nleft_child=1 -1\nright_child=-3 -2\n" +
		"leaf_value=1 2 3\ncat_boundaries=0 2\ncat_threshold=5 1\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := loadLightGBM(data)
		if err != nil {
			return
		}
		x := make([]float64, m.nFeatures)
		for i := range x {
			x[i] = float64(i) - 1
		}
		m.predict(x)
		x[0] = math.NaN()
		m.predict(x)
		x[len(x)-1] = 1e300
		m.predict(x)
	})
}

// chainLightGBM is a one-feature model of one tree whose nodes form a
// chain n levels deep.
func chainLightGBM(n int) []byte {
	var sf, th, dt, lc, rc, lv strings.Builder
	for j := range n {
		sf.WriteString("0 ")
		th.WriteString(strconv.Itoa(j) + " ")
		dt.WriteString("2 ")
		lc.WriteString(strconv.Itoa(^j) + " ")
		if j == n-1 {
			rc.WriteString(strconv.Itoa(^n) + " ")
		} else {
			rc.WriteString(strconv.Itoa(j+1) + " ")
		}
		lv.WriteString(strconv.Itoa(j) + " ")
	}
	lv.WriteString(strconv.Itoa(n))
	trim := func(b *strings.Builder) string { return strings.TrimSpace(b.String()) }
	return []byte("tree\nversion=v3\nnum_class=1\nnum_tree_per_iteration=1\nmax_feature_idx=0\nobjective=regression\n" +
		"feature_names=x\ntree_sizes=1\n\nTree=0\nnum_leaves=" + strconv.Itoa(n+1) + "\nnum_cat=0\nsplit_feature=" + trim(&sf) +
		"\nthreshold=" + trim(&th) + "\ndecision_type=" + trim(&dt) + "\nleft_child=" + trim(&lc) + "\nright_child=" + trim(&rc) +
		"\nleaf_value=" + lv.String() + "\nshrinkage=1\n\n")
}

// TestLightGBMDepthLimit: a tree lgMaxDepth levels deep loads and scores,
// one level more is refused.
func TestLightGBMDepthLimit(t *testing.T) {
	sc, err := buildScorer(KindLightGBM, chainLightGBM(lgMaxDepth), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var res result
	if err := sc.score(&schema.FeatureRow{View: "v", Names: []string{"x"}, Values: []float64{lgMaxDepth - 1.5}}, &res); err != nil {
		t.Fatal(err)
	}
	if res.score != lgMaxDepth-1 {
		t.Fatalf("score %v, want %v", res.score, lgMaxDepth-1)
	}
	_, err = buildScorer(KindLightGBM, chainLightGBM(lgMaxDepth+1), nil, nil)
	if !errors.Is(err, ErrInvalidModel) || !strings.Contains(err.Error(), "tree 0: deeper than 1024 levels") {
		t.Fatalf("a tree %d levels deep: %v", lgMaxDepth+1, err)
	}
}
