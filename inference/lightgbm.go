package inference

// LightGBM models: loading, validation and prediction. A loaded model is
// immutable and scored by the worker goroutines concurrently.

// LightGBM text models are evaluated by github.com/dmitryikh/leaves, which
// trusts the file: a leaf_value line shorter than num_leaves, a
// split_feature beyond the feature vector or a child index out of range
// panics in its loader or in predict, and a child pointing back up the
// tree makes predict loop forever (issue #20). validateLightGBM reads the
// file the way leaves does (its own params reader, the same tree count)
// and refuses anything leaves could not evaluate safely, before leaves
// sees it.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/dmitryikh/leaves"
	"github.com/dmitryikh/leaves/util"
)

// ErrInvalidModel is returned when a model file is malformed: its trees
// have out-of-range indices, arrays of the wrong length, cycles or are too
// deep. The API answers it with 400.
var ErrInvalidModel = errors.New("invalid model file")

// Limits of a LightGBM model, against hostile files.
const (
	// lgMaxLeaves is LightGBM's own upper bound on num_leaves.
	lgMaxLeaves = 131072
	// lgMaxDepth bounds the path from a tree's root to a leaf, so one
	// prediction costs at most lgMaxDepth comparisons per tree.
	lgMaxDepth = 1024
	// lgMaxFeatures bounds max_feature_idx+1: the feature vector's length.
	lgMaxFeatures = 1 << 16
)

// lightGBM is a validated LightGBM model.
type lightGBM struct {
	e         *leaves.Ensemble
	nFeatures int
}

// loadLightGBM validates a LightGBM text model and loads it with leaves.
// It does not recover panics: buildScorer does, and FuzzLightGBMLoad
// checks that there are none to recover.
func loadLightGBM(artifact []byte) (*lightGBM, error) {
	nf, err := validateLightGBM(artifact)
	if err != nil {
		return nil, err
	}
	e, err := leaves.LGEnsembleFromReader(bufio.NewReader(bytes.NewReader(artifact)), true)
	if err != nil {
		return nil, fmt.Errorf("load lightgbm model: %w", err)
	}
	if e.NOutputGroups() != 1 {
		return nil, fmt.Errorf("lightgbm model has %d output groups, want 1", e.NOutputGroups())
	}
	return &lightGBM{e: e, nFeatures: nf}, nil
}

// predict scores x, which has nFeatures values.
func (m *lightGBM) predict(x []float64) float64 { return m.e.PredictSingle(x, 0) }

func lgInvalid(format string, args ...any) error {
	return fmt.Errorf("%w: lightgbm "+format, append([]any{ErrInvalidModel}, args...)...)
}

// validateLightGBM checks the header and every tree leaves will read from
// artifact and returns the number of features (max_feature_idx+1).
func validateLightGBM(artifact []byte) (int, error) {
	rd := bufio.NewReader(bytes.NewReader(artifact))
	head, err := util.ReadParamsUntilBlank(rd)
	if err != nil {
		return 0, lgInvalid("header: %v", err)
	}
	if v := head["version"]; v != "v2" && v != "v3" {
		return 0, lgInvalid("header: version %q, want v2 or v3", v)
	}
	for _, k := range []string{"num_class", "num_tree_per_iteration"} {
		n, err := head.ToInt(k)
		if err != nil {
			return 0, lgInvalid("header: %s: %v", k, err)
		}
		if n != 1 {
			return 0, lgInvalid("header: %s=%d, want 1 (one output)", k, n)
		}
	}
	maxIdx, err := head.ToInt("max_feature_idx")
	if err != nil {
		return 0, lgInvalid("header: max_feature_idx: %v", err)
	}
	if maxIdx < 0 || maxIdx >= lgMaxFeatures {
		return 0, lgInvalid("header: max_feature_idx=%d, want 0 to %d", maxIdx, lgMaxFeatures-1)
	}
	nf := maxIdx + 1
	sizes, ok := head["tree_sizes"]
	if !ok {
		return 0, lgInvalid("header: no tree_sizes")
	}
	// leaves reads as many trees as tree_sizes has entries, and ignores
	// the rest of the file.
	nTrees := len(strings.Split(sizes, " "))
	var v lgValidator
	for i := range nTrees {
		p, err := util.ReadParamsUntilBlank(rd)
		if err != nil {
			return 0, lgInvalid("tree %d of %d (tree_sizes): %v", i, nTrees, err)
		}
		if err := v.tree(&p, nf); err != nil {
			return 0, lgInvalid("tree %d: %v", i, err)
		}
	}
	return nf, nil
}

// lgValidator keeps the buffers of validateLightGBM across trees.
type lgValidator struct {
	parents []int32 // per internal node: references from a parent
	leafRef []int32 // per leaf: references from a parent
	level   []int32 // breadth-first frontier
	next    []int32
}

type lgParams interface {
	ToInt(string) (int, error)
	ToInt32Slice(string) ([]int32, error)
	ToUint32Slice(string) ([]uint32, error)
	ToFloat64Slice(string) ([]float64, error)
}

// tree checks one tree section: counts, array lengths, indices, that every
// node and leaf has exactly one parent and is reachable from the root (no
// cycle), the depth, and categorical splits.
func (v *lgValidator) tree(p lgParams, nFeatures int) error {
	numLeaves, err := p.ToInt("num_leaves")
	if err != nil {
		return fmt.Errorf("num_leaves: %v", err)
	}
	if numLeaves < 1 || numLeaves > lgMaxLeaves {
		return fmt.Errorf("num_leaves=%d, want 1 to %d", numLeaves, lgMaxLeaves)
	}
	numCat, err := p.ToInt("num_cat")
	if err != nil {
		return fmt.Errorf("num_cat: %v", err)
	}
	leafValue, err := p.ToFloat64Slice("leaf_value")
	if err != nil {
		return fmt.Errorf("leaf_value: %v", err)
	}
	if len(leafValue) != numLeaves {
		return fmt.Errorf("leaf_value has %d values, want num_leaves=%d", len(leafValue), numLeaves)
	}
	if numLeaves == 1 {
		return nil // a constant: leaves reads nothing else
	}
	n := numLeaves - 1 // internal nodes
	if numCat < 0 || numCat > n {
		return fmt.Errorf("num_cat=%d, want 0 to %d", numCat, n)
	}
	left, err := p.ToInt32Slice("left_child")
	if err != nil {
		return fmt.Errorf("left_child: %v", err)
	}
	right, err := p.ToInt32Slice("right_child")
	if err != nil {
		return fmt.Errorf("right_child: %v", err)
	}
	decision, err := p.ToUint32Slice("decision_type")
	if err != nil {
		return fmt.Errorf("decision_type: %v", err)
	}
	feature, err := p.ToUint32Slice("split_feature")
	if err != nil {
		return fmt.Errorf("split_feature: %v", err)
	}
	threshold, err := p.ToFloat64Slice("threshold")
	if err != nil {
		return fmt.Errorf("threshold: %v", err)
	}
	for _, a := range []struct {
		name string
		n    int
	}{{"split_feature", len(feature)}, {"threshold", len(threshold)}, {"decision_type", len(decision)},
		{"left_child", len(left)}, {"right_child", len(right)}} {
		if a.n != n {
			return fmt.Errorf("%s has %d values, want num_leaves-1=%d", a.name, a.n, n)
		}
	}
	var catBounds, catThresh []uint32
	if numCat > 0 {
		if catThresh, err = p.ToUint32Slice("cat_threshold"); err != nil {
			return fmt.Errorf("cat_threshold: %v", err)
		}
		if catBounds, err = p.ToUint32Slice("cat_boundaries"); err != nil {
			return fmt.Errorf("cat_boundaries: %v", err)
		}
		if len(catBounds) != numCat+1 {
			return fmt.Errorf("cat_boundaries has %d values, want num_cat+1=%d", len(catBounds), numCat+1)
		}
		for k, b := range catBounds {
			if (k == 0 && b != 0) || (k > 0 && b < catBounds[k-1]) || int(b) > len(catThresh) {
				return fmt.Errorf("cat_boundaries[%d]=%d: want 0 first, then non-decreasing up to len(cat_threshold)=%d", k, b, len(catThresh))
			}
		}
	}
	v.parents = resize(v.parents, n)
	v.leafRef = resize(v.leafRef, numLeaves)
	for j := range n {
		if int(feature[j]) >= nFeatures {
			return fmt.Errorf("split_feature[%d]=%d, want < %d (max_feature_idx+1)", j, feature[j], nFeatures)
		}
		if mt := (decision[j] >> 2) & 3; mt == 3 {
			return fmt.Errorf("decision_type[%d]=%d: unknown missing type", j, decision[j])
		}
		if decision[j]&1 != 0 {
			if err := lgCategorical(j, threshold[j], numCat, catBounds, catThresh); err != nil {
				return err
			}
		}
		for _, c := range []struct {
			name string
			idx  int32
		}{{"left_child", left[j]}, {"right_child", right[j]}} {
			switch {
			case c.idx < 0:
				leaf := ^c.idx
				if int(leaf) >= numLeaves {
					return fmt.Errorf("%s[%d]=%d: leaf %d, want < num_leaves=%d", c.name, j, c.idx, leaf, numLeaves)
				}
				if v.leafRef[leaf]++; v.leafRef[leaf] > 1 {
					return fmt.Errorf("%s[%d]=%d: leaf %d has two parents", c.name, j, c.idx, leaf)
				}
			case c.idx == 0:
				return fmt.Errorf("%s[%d]=0: points back to the root (cycle)", c.name, j)
			case int(c.idx) >= n:
				return fmt.Errorf("%s[%d]=%d, want < num_leaves-1=%d", c.name, j, c.idx, n)
			default:
				if v.parents[c.idx]++; v.parents[c.idx] > 1 {
					return fmt.Errorf("%s[%d]=%d: node %d has two parents (cycle or shared subtree)", c.name, j, c.idx, c.idx)
				}
			}
		}
	}
	// Every non-root node has one parent and the root none, so the nodes
	// reachable from the root form a tree; any node left over sits on a
	// cycle or below one.
	seen, depth := 1, 1
	v.level = append(v.level[:0], 0)
	for len(v.level) > 0 {
		v.next = v.next[:0]
		for _, j := range v.level {
			for _, c := range [2]int32{left[j], right[j]} {
				if c > 0 {
					v.next = append(v.next, c)
				}
			}
		}
		if len(v.next) == 0 {
			break
		}
		seen += len(v.next)
		if depth++; depth > lgMaxDepth {
			return fmt.Errorf("deeper than %d levels", lgMaxDepth)
		}
		v.level, v.next = v.next, v.level
	}
	if seen != n {
		return fmt.Errorf("left_child/right_child: %d of %d nodes unreachable from the root (cycle)", n-seen, n)
	}
	return nil
}

// lgCategorical checks categorical split j: its threshold names a bitset of
// cat_threshold through cat_boundaries.
func lgCategorical(j int, threshold float64, numCat int, bounds, bits []uint32) error {
	if numCat == 0 {
		return fmt.Errorf("decision_type[%d]: categorical split in a tree with num_cat=0", j)
	}
	if threshold < 0 || threshold >= float64(numCat) || threshold != math.Trunc(threshold) {
		return fmt.Errorf("threshold[%d]=%v: categorical split, want a bitset index 0 to %d", j, threshold, numCat-1)
	}
	k := int(threshold)
	for _, w := range bits[bounds[k]:bounds[k+1]] {
		if w != 0 {
			return nil
		}
	}
	return fmt.Errorf("threshold[%d]=%d: categorical split on an empty bitset", j, k)
}

func resize(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n)
	}
	s = s[:n]
	clear(s)
	return s
}
