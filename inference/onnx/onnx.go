// Package onnx runs tree-ensemble models stored in ONNX files, in pure Go.
//
// It reads the ModelProto with protowire (no generated code, no new
// dependency) and evaluates the ai.onnx.ml TreeEnsembleRegressor operator:
// the form that skl2onnx and onnxmltools give scikit-learn, XGBoost and
// LightGBM tree regression models. TreeEnsembleClassifier is not supported. A general ONNX runtime (neural networks) is out of
// scope: the pure-Go one breaks this module's build (docs/inference.md).
//
// Supported: one TreeEnsembleRegressor node (Identity and Cast nodes around
// it are allowed), one target, all node modes (BRANCH_LEQ, BRANCH_LT,
// BRANCH_GTE, BRANCH_GT, BRANCH_EQ, BRANCH_NEQ, LEAF), missing values
// through nodes_missing_value_tracks_true, aggregate_function SUM or
// AVERAGE, post_transform NONE or LOGISTIC, base_values. Thresholds and
// inputs are compared as float32, as ONNX float tensors are.
package onnx

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrUnsupported is returned for a model outside the supported subset.
var ErrUnsupported = errors.New("unsupported onnx model")

// Model is a loaded tree ensemble; immutable and safe for concurrent use.
type Model struct {
	numFeature   int
	featureNames []string
	trees        []tree
	base         float64
	average      bool
	logistic     bool
}

type mode uint8

const (
	leaf mode = iota
	leq
	lt
	gte
	gt
	eq
	neq
)

type tree struct {
	// Parallel arrays by node index within the tree.
	mode        []mode
	feature     []int32
	value       []float32
	trueNode    []int32
	falseNode   []int32
	missingTrue []bool
	weight      []float64 // leaf weight (sum of the node's target weights)
	root        int32
}

// NumFeature is the length of the feature vector.
func (m *Model) NumFeature() int { return m.numFeature }

// FeatureNames returns the names stored in the model's metadata_props
// under "feature_names" (comma-separated), or nil.
func (m *Model) FeatureNames() []string { return m.featureNames }

// NumTrees returns the number of trees.
func (m *Model) NumTrees() int { return len(m.trees) }

// Predict evaluates x (NumFeature values, NaN for missing).
func (m *Model) Predict(x []float64) float64 {
	_ = x[m.numFeature-1]
	sum := 0.0
	for i := range m.trees {
		sum += m.trees[i].eval(x)
	}
	if m.average && len(m.trees) > 0 {
		sum /= float64(len(m.trees))
	}
	sum += m.base
	if m.logistic {
		return 1 / (1 + math.Exp(-sum))
	}
	return sum
}

func (t *tree) eval(x []float64) float64 {
	i := t.root
	for t.mode[i] != leaf {
		v := x[t.feature[i]]
		var right bool // "true" branch taken
		if math.IsNaN(v) {
			right = t.missingTrue[i]
		} else {
			f, th := float32(v), t.value[i]
			switch t.mode[i] {
			case leq:
				right = f <= th
			case lt:
				right = f < th
			case gte:
				right = f >= th
			case gt:
				right = f > th
			case eq:
				right = f == th
			case neq:
				right = f != th
			}
		}
		if right {
			i = t.trueNode[i]
		} else {
			i = t.falseNode[i]
		}
	}
	return t.weight[i]
}

// Load parses an ONNX model file.
func Load(b []byte) (*Model, error) {
	var graph []byte
	var meta = map[string]string{}
	var mlOpset bool
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch num {
		case 7: // graph
			graph = v
		case 8: // opset_import
			var domain string
			if err := fields(v, func(n protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
				if n == 1 {
					domain = string(v)
				}
				return nil
			}); err != nil {
				return err
			}
			if domain == "ai.onnx.ml" {
				mlOpset = true
			}
		case 14: // metadata_props
			var k, val string
			if err := fields(v, func(n protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
				switch n {
				case 1:
					k = string(v)
				case 2:
					val = string(v)
				}
				return nil
			}); err != nil {
				return err
			}
			meta[k] = val
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("onnx model: %w", err)
	}
	if graph == nil {
		return nil, errors.New("onnx model: no graph")
	}
	if !mlOpset {
		return nil, fmt.Errorf("%w: no ai.onnx.ml opset import", ErrUnsupported)
	}
	var nodes [][]byte
	var inputs []int
	err = fields(graph, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
		switch num {
		case 1:
			nodes = append(nodes, v)
		case 11:
			n, err := inputWidth(v)
			if err != nil {
				return err
			}
			inputs = append(inputs, n)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("onnx graph: %w", err)
	}
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%w: %d graph inputs, want one [N, features] tensor", ErrUnsupported, len(inputs))
	}
	var ensemble *node
	for _, nb := range nodes {
		n, err := parseNode(nb)
		if err != nil {
			return nil, fmt.Errorf("onnx node: %w", err)
		}
		switch n.opType {
		case "Identity", "Cast":
		case "TreeEnsembleRegressor":
			if ensemble != nil {
				return nil, fmt.Errorf("%w: more than one tree ensemble", ErrUnsupported)
			}
			ensemble = n
		default:
			return nil, fmt.Errorf("%w: operator %s", ErrUnsupported, n.opType)
		}
	}
	if ensemble == nil {
		return nil, fmt.Errorf("%w: no TreeEnsembleRegressor node", ErrUnsupported)
	}
	m, err := build(ensemble, inputs[0])
	if err != nil {
		return nil, fmt.Errorf("onnx TreeEnsembleRegressor: %w", err)
	}
	if s := meta["feature_names"]; s != "" {
		m.featureNames = strings.Split(s, ",")
		if len(m.featureNames) != m.numFeature {
			return nil, fmt.Errorf("onnx model: %d feature_names for %d features", len(m.featureNames), m.numFeature)
		}
	}
	return m, nil
}

// fields walks the top-level fields of a message. For length-delimited
// fields v is the payload; for varints and fixed32/64 u is the value.
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, u uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		var u uint64
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			u, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(b)
			u = uint64(x)
		case protowire.Fixed64Type:
			u, n = protowire.ConsumeFixed64(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, v, u); err != nil {
			return err
		}
	}
	return nil
}

// inputWidth reads a ValueInfoProto and returns the last dimension of its
// tensor shape (the number of features), or -1 when it is symbolic.
func inputWidth(vi []byte) (int, error) {
	width := -1
	err := fields(vi, func(num protowire.Number, _ protowire.Type, typ []byte, _ uint64) error {
		if num != 2 { // type
			return nil
		}
		return fields(typ, func(num protowire.Number, _ protowire.Type, tt []byte, _ uint64) error {
			if num != 1 { // tensor_type
				return nil
			}
			return fields(tt, func(num protowire.Number, _ protowire.Type, shape []byte, _ uint64) error {
				if num != 2 { // shape
					return nil
				}
				return fields(shape, func(num protowire.Number, _ protowire.Type, dim []byte, _ uint64) error {
					if num != 1 {
						return nil
					}
					width = -1
					return fields(dim, func(num protowire.Number, _ protowire.Type, _ []byte, u uint64) error {
						if num == 1 { // dim_value
							width = int(u)
						}
						return nil
					})
				})
			})
		})
	})
	return width, err
}

type node struct {
	opType  string
	ints    map[string][]int64
	floats  map[string][]float32
	strings map[string][]string
	str     map[string]string
	i       map[string]int64
}

func parseNode(b []byte) (*node, error) {
	n := &node{ints: map[string][]int64{}, floats: map[string][]float32{}, strings: map[string][]string{},
		str: map[string]string{}, i: map[string]int64{}}
	err := fields(b, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
		switch num {
		case 4:
			n.opType = string(v)
		case 5:
			return n.attribute(v)
		}
		return nil
	})
	return n, err
}

func (n *node) attribute(b []byte) error {
	var name string
	var ints []int64
	var floats []float32
	var strs []string
	var s string
	var i int64
	var hasI, hasS bool
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, u uint64) error {
		switch num {
		case 1:
			name = string(v)
		case 3:
			i, hasI = int64(u), true
		case 4:
			s, hasS = string(v), true
		case 7: // floats: packed or not
			if typ == protowire.BytesType {
				for len(v) > 0 {
					x, k := protowire.ConsumeFixed32(v)
					if k < 0 {
						return protowire.ParseError(k)
					}
					floats = append(floats, math.Float32frombits(x))
					v = v[k:]
				}
			} else {
				floats = append(floats, math.Float32frombits(uint32(u)))
			}
		case 8: // ints: packed or not
			if typ == protowire.BytesType {
				for len(v) > 0 {
					x, k := protowire.ConsumeVarint(v)
					if k < 0 {
						return protowire.ParseError(k)
					}
					ints = append(ints, int64(x))
					v = v[k:]
				}
			} else {
				ints = append(ints, int64(u))
			}
		case 9:
			strs = append(strs, string(v))
		case 5:
			return fmt.Errorf("%w: tensor attribute (double thresholds)", ErrUnsupported)
		}
		return nil
	})
	if err != nil {
		return err
	}
	n.ints[name], n.floats[name], n.strings[name] = ints, floats, strs
	if hasI {
		n.i[name] = i
	}
	if hasS {
		n.str[name] = s
	}
	return nil
}

var modes = map[string]mode{
	"LEAF": leaf, "BRANCH_LEQ": leq, "BRANCH_LT": lt, "BRANCH_GTE": gte,
	"BRANCH_GT": gt, "BRANCH_EQ": eq, "BRANCH_NEQ": neq,
}

func build(n *node, width int) (*Model, error) {
	if t, ok := n.i["n_targets"]; ok && t != 1 {
		return nil, fmt.Errorf("%w: %d targets", ErrUnsupported, t)
	}
	m := &Model{}
	switch agg := n.str["aggregate_function"]; agg {
	case "", "SUM":
	case "AVERAGE":
		m.average = true
	default:
		return nil, fmt.Errorf("%w: aggregate_function %s", ErrUnsupported, agg)
	}
	switch pt := n.str["post_transform"]; pt {
	case "", "NONE":
	case "LOGISTIC":
		m.logistic = true
	default:
		return nil, fmt.Errorf("%w: post_transform %s", ErrUnsupported, pt)
	}
	if bv := n.floats["base_values"]; len(bv) > 1 {
		return nil, fmt.Errorf("%w: %d base values", ErrUnsupported, len(bv))
	} else if len(bv) == 1 {
		m.base = float64(bv[0])
	}
	tids, nids := n.ints["nodes_treeids"], n.ints["nodes_nodeids"]
	feats, vals, modeNames := n.ints["nodes_featureids"], n.floats["nodes_values"], n.strings["nodes_modes"]
	tn, fn := n.ints["nodes_truenodeids"], n.ints["nodes_falsenodeids"]
	miss := n.ints["nodes_missing_value_tracks_true"]
	cnt := len(tids)
	if cnt == 0 {
		return nil, errors.New("no nodes")
	}
	for name, l := range map[string]int{"nodes_nodeids": len(nids), "nodes_featureids": len(feats), "nodes_values": len(vals),
		"nodes_modes": len(modeNames), "nodes_truenodeids": len(tn), "nodes_falsenodeids": len(fn)} {
		if l != cnt {
			return nil, fmt.Errorf("%s has %d entries, nodes_treeids %d", name, l, cnt)
		}
	}
	if len(miss) != 0 && len(miss) != cnt {
		return nil, fmt.Errorf("nodes_missing_value_tracks_true has %d entries, want %d", len(miss), cnt)
	}
	// Trees are numbered by tree id; nodes by node id within a tree.
	type key struct{ t, n int64 }
	treeIndex := map[int64]int{}
	pos := map[key]int32{}
	var order []int64
	for i := range cnt {
		t := tids[i]
		if _, ok := treeIndex[t]; !ok {
			treeIndex[t] = len(order)
			order = append(order, t)
		}
	}
	m.trees = make([]tree, len(order))
	maxFeature := int64(-1)
	for i := range cnt {
		t := &m.trees[treeIndex[tids[i]]]
		md, ok := modes[modeNames[i]]
		if !ok {
			return nil, fmt.Errorf("node mode %q", modeNames[i])
		}
		pos[key{tids[i], nids[i]}] = int32(len(t.mode))
		t.mode = append(t.mode, md)
		t.feature = append(t.feature, int32(feats[i]))
		t.value = append(t.value, vals[i])
		t.missingTrue = append(t.missingTrue, len(miss) > 0 && miss[i] != 0)
		t.weight = append(t.weight, 0)
		if md != leaf {
			maxFeature = max(maxFeature, feats[i])
			if feats[i] < 0 {
				return nil, fmt.Errorf("node %d/%d: feature %d", tids[i], nids[i], feats[i])
			}
		}
	}
	// Resolve child node ids to positions; children must exist.
	for i := range cnt {
		t := &m.trees[treeIndex[tids[i]]]
		p := pos[key{tids[i], nids[i]}]
		if t.mode[p] == leaf {
			t.trueNode, t.falseNode = append(t.trueNode, -1), append(t.falseNode, -1)
			continue
		}
		tp, ok1 := pos[key{tids[i], tn[i]}]
		fp, ok2 := pos[key{tids[i], fn[i]}]
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("node %d/%d: child %d or %d does not exist", tids[i], nids[i], tn[i], fn[i])
		}
		t.trueNode, t.falseNode = append(t.trueNode, tp), append(t.falseNode, fp)
	}
	for ti := range m.trees {
		if err := m.trees[ti].findRoot(); err != nil {
			return nil, fmt.Errorf("tree %d: %w", order[ti], err)
		}
		if err := m.trees[ti].checkAcyclic(); err != nil {
			return nil, fmt.Errorf("tree %d: %w", order[ti], err)
		}
	}
	ttids, tnids, tw := n.ints["target_treeids"], n.ints["target_nodeids"], n.floats["target_weights"]
	if len(tnids) != len(ttids) || len(tw) != len(ttids) {
		return nil, errors.New("target_* attributes differ in length")
	}
	if ids := n.ints["target_ids"]; len(ids) > 0 {
		for _, id := range ids {
			if id != 0 {
				return nil, fmt.Errorf("%w: target id %d", ErrUnsupported, id)
			}
		}
	}
	for i := range ttids {
		p, ok := pos[key{ttids[i], tnids[i]}]
		if !ok {
			return nil, fmt.Errorf("target weight for missing node %d/%d", ttids[i], tnids[i])
		}
		t := &m.trees[treeIndex[ttids[i]]]
		if t.mode[p] != leaf {
			return nil, fmt.Errorf("target weight on branch node %d/%d", ttids[i], tnids[i])
		}
		t.weight[p] += float64(tw[i])
	}
	m.numFeature = int(maxFeature + 1)
	if width > 0 {
		if width <= int(maxFeature) {
			return nil, fmt.Errorf("splits on feature %d of a %d-wide input", maxFeature, width)
		}
		m.numFeature = width
	}
	if m.numFeature == 0 {
		m.numFeature = 1
	}
	return m, nil
}

// findRoot sets root to the one node that is no node's child.
func (t *tree) findRoot() error {
	child := make([]bool, len(t.mode))
	for i := range t.mode {
		if t.mode[i] != leaf {
			child[t.trueNode[i]], child[t.falseNode[i]] = true, true
		}
	}
	t.root = -1
	for i, c := range child {
		if !c {
			if t.root >= 0 {
				return errors.New("more than one root")
			}
			t.root = int32(i)
		}
	}
	if t.root < 0 {
		return errors.New("no root")
	}
	return nil
}

// checkAcyclic verifies that every path from the root ends at a leaf.
func (t *tree) checkAcyclic() error {
	state := make([]uint8, len(t.mode)) // 0 new, 1 on path, 2 done
	var visit func(i int32) error
	visit = func(i int32) error {
		switch state[i] {
		case 1:
			return errors.New("cycle")
		case 2:
			return nil
		}
		state[i] = 1
		if t.mode[i] != leaf {
			if err := visit(t.trueNode[i]); err != nil {
				return err
			}
			if err := visit(t.falseNode[i]); err != nil {
				return err
			}
		}
		state[i] = 2
		return nil
	}
	return visit(t.root)
}
