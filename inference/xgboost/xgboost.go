// Package xgboost evaluates gradient-boosted tree models saved by XGBoost
// (≥ 1.0) in its JSON model format (Booster.save_model("m.json")).
//
// github.com/dmitryikh/leaves reads only pre-1.0 XGBoost binaries, so
// netfeat carries this small evaluator instead. It supports the gbtree
// booster with numerical splits, one output group, and the objectives
// binary:logistic, reg:logistic, binary:logitraw, reg:squarederror,
// reg:linear and reg:pseudohubererror. Arithmetic follows XGBoost's CPU
// predictor: features are compared as float32 (go left when value <
// split condition, missing values follow default_left) and leaf values are
// summed in float32 starting from the base margin. The tests check it
// against predictions made by python3-xgboost for the same inputs.
package xgboost

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// ErrUnsupported is returned for model files that use a feature of XGBoost
// this evaluator does not implement (dart booster, categorical splits,
// multi-class or multi-target output, unknown objectives).
var ErrUnsupported = errors.New("unsupported xgboost model")

// Model is a loaded XGBoost tree ensemble. It is immutable and safe for
// concurrent use.
type Model struct {
	objective    string
	baseMargin   float32
	numFeature   int
	featureNames []string
	trees        []tree
}

type tree struct {
	// Parallel arrays indexed by node id; left[i] == -1 marks a leaf whose
	// value is cond[i].
	left, right []int32
	feature     []int32
	cond        []float32
	defaultLeft []bool
}

// file mirrors the parts of the JSON model format that prediction needs.
type file struct {
	Version []int `json:"version"`
	Learner struct {
		FeatureNames     []string `json:"feature_names"`
		LearnerModelParm struct {
			BaseScore  string `json:"base_score"`
			NumClass   string `json:"num_class"`
			NumFeature string `json:"num_feature"`
			NumTarget  string `json:"num_target"`
		} `json:"learner_model_param"`
		Objective struct {
			Name string `json:"name"`
		} `json:"objective"`
		GradientBooster struct {
			Name  string `json:"name"`
			Model struct {
				TreeInfo []int      `json:"tree_info"`
				Trees    []jsonTree `json:"trees"`
			} `json:"model"`
		} `json:"gradient_booster"`
	} `json:"learner"`
}

type jsonTree struct {
	LeftChildren    []int32   `json:"left_children"`
	RightChildren   []int32   `json:"right_children"`
	SplitIndices    []int32   `json:"split_indices"`
	SplitConditions []float32 `json:"split_conditions"`
	DefaultLeft     []int     `json:"default_left"`
	SplitType       []int     `json:"split_type"`
}

// Load reads a model in XGBoost's JSON format.
func Load(r io.Reader) (*Model, error) {
	var f file
	dec := json.NewDecoder(r)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode xgboost json model: %w", err)
	}
	l := &f.Learner
	if l.GradientBooster.Name != "gbtree" {
		return nil, fmt.Errorf("%w: booster %q (want gbtree)", ErrUnsupported, l.GradientBooster.Name)
	}
	if nc := l.LearnerModelParm.NumClass; nc != "" && nc != "0" && nc != "1" {
		return nil, fmt.Errorf("%w: %s classes", ErrUnsupported, nc)
	}
	if nt := l.LearnerModelParm.NumTarget; nt != "" && nt != "1" {
		return nil, fmt.Errorf("%w: %s targets", ErrUnsupported, nt)
	}
	base, err := strconv.ParseFloat(l.LearnerModelParm.BaseScore, 32)
	if err != nil {
		return nil, fmt.Errorf("xgboost model: base_score %q: %w", l.LearnerModelParm.BaseScore, err)
	}
	m := &Model{objective: l.Objective.Name, featureNames: l.FeatureNames}
	switch m.objective {
	case "binary:logistic", "reg:logistic":
		// base_score is a probability; the margin starts at its logit.
		p := float32(base)
		m.baseMargin = -float32(math.Log(float64(1/p - 1)))
	case "binary:logitraw", "reg:squarederror", "reg:linear", "reg:pseudohubererror":
		// base_score is already a margin.
		m.baseMargin = float32(base)
	default:
		return nil, fmt.Errorf("%w: objective %q", ErrUnsupported, m.objective)
	}
	if m.numFeature, err = strconv.Atoi(l.LearnerModelParm.NumFeature); err != nil {
		return nil, fmt.Errorf("xgboost model: num_feature %q: %w", l.LearnerModelParm.NumFeature, err)
	}
	if len(m.featureNames) != 0 && len(m.featureNames) != m.numFeature {
		return nil, fmt.Errorf("xgboost model: %d feature names for %d features", len(m.featureNames), m.numFeature)
	}
	for i, jt := range l.GradientBooster.Model.Trees {
		t, err := convertTree(jt, m.numFeature)
		if err != nil {
			return nil, fmt.Errorf("xgboost model: tree %d: %w", i, err)
		}
		m.trees = append(m.trees, t)
	}
	for i, g := range l.GradientBooster.Model.TreeInfo {
		if g != 0 {
			return nil, fmt.Errorf("%w: tree %d belongs to output group %d", ErrUnsupported, i, g)
		}
	}
	return m, nil
}

func convertTree(jt jsonTree, numFeature int) (tree, error) {
	n := len(jt.LeftChildren)
	if n == 0 {
		return tree{}, errors.New("no nodes")
	}
	if len(jt.RightChildren) != n || len(jt.SplitIndices) != n || len(jt.SplitConditions) != n || len(jt.DefaultLeft) != n {
		return tree{}, errors.New("node arrays differ in length")
	}
	t := tree{
		left: jt.LeftChildren, right: jt.RightChildren, feature: jt.SplitIndices,
		cond: jt.SplitConditions, defaultLeft: make([]bool, n),
	}
	for i := range n {
		if i < len(jt.SplitType) && jt.SplitType[i] != 0 {
			return tree{}, fmt.Errorf("%w: categorical split at node %d", ErrUnsupported, i)
		}
		t.defaultLeft[i] = jt.DefaultLeft[i] != 0
		if t.left[i] == -1 {
			continue
		}
		// Children must point forward, so evaluation always terminates.
		if t.left[i] <= int32(i) || int(t.left[i]) >= n || t.right[i] <= int32(i) || int(t.right[i]) >= n {
			return tree{}, fmt.Errorf("node %d: bad children %d, %d", i, t.left[i], t.right[i])
		}
		if t.feature[i] < 0 || int(t.feature[i]) >= numFeature {
			return tree{}, fmt.Errorf("node %d: split on feature %d of %d", i, t.feature[i], numFeature)
		}
	}
	return t, nil
}

// NumFeature is the length of the feature vector the model expects.
func (m *Model) NumFeature() int { return m.numFeature }

// FeatureNames returns the feature names stored in the model, or nil when
// it was trained without them. Do not modify the slice.
func (m *Model) FeatureNames() []string { return m.featureNames }

// Objective returns the model's objective ("binary:logistic", ...).
func (m *Model) Objective() string { return m.objective }

// NumTrees returns the number of trees.
func (m *Model) NumTrees() int { return len(m.trees) }

// Margin returns the raw sum of the base margin and the leaf values for
// features x, which must have NumFeature values; NaN marks a missing value.
func (m *Model) Margin(x []float64) float32 {
	sum := m.baseMargin
	for i := range m.trees {
		sum += m.trees[i].leaf(x)
	}
	return sum
}

// Predict returns the model's prediction for x (NumFeature values, NaN for
// missing): a probability for logistic objectives, the margin for
// binary:logitraw, the regression value otherwise. It panics if x is
// shorter than NumFeature.
func (m *Model) Predict(x []float64) float64 {
	_ = x[m.numFeature-1]
	margin := m.Margin(x)
	switch m.objective {
	case "binary:logistic", "reg:logistic":
		return float64(float32(1) / (float32(1) + float32(math.Exp(float64(-margin)))))
	}
	return float64(margin)
}

func (t *tree) leaf(x []float64) float32 {
	i := int32(0)
	for t.left[i] != -1 {
		v := x[t.feature[i]]
		switch {
		case math.IsNaN(v):
			if t.defaultLeft[i] {
				i = t.left[i]
			} else {
				i = t.right[i]
			}
		case float32(v) < t.cond[i]:
			i = t.left[i]
		default:
			i = t.right[i]
		}
	}
	return t.cond[i]
}
