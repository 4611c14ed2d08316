package onnx

import (
	"errors"
	"fmt"
	"math"
)

// ensemble is the ai.onnx.ml TreeEnsembleRegressor operator with one
// target: [N, features] in, [N, 1] out.
type ensemble struct {
	numFeature int
	trees      []tree
	base       float64
	average    bool
	logistic   bool
}

func (m *ensemble) widthHint() int { return m.numFeature }

func (m *ensemble) setup(in [][]int) ([]int, error) {
	if len(in[0]) != 2 || in[0][1] < m.numFeature {
		return nil, fmt.Errorf("input of shape %v, want [N, ≥%d]: the trees split on feature %d", in[0], m.numFeature, m.numFeature-1)
	}
	return []int{in[0][0], 1}, nil
}

func (m *ensemble) eval(in [][]float64, out []float64) {
	x := in[0]
	w := len(x) / len(out)
	for r := range out {
		out[r] = m.predict(x[r*w : (r+1)*w])
	}
}

// predict scores one row (NaN for missing values).
func (m *ensemble) predict(x []float64) float64 {
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

var modes = map[string]mode{
	"LEAF": leaf, "BRANCH_LEQ": leq, "BRANCH_LT": lt, "BRANCH_GTE": gte,
	"BRANCH_GT": gt, "BRANCH_EQ": eq, "BRANCH_NEQ": neq,
}

// buildEnsemble reads a TreeEnsembleRegressor node.
func buildEnsemble(n *node) (*ensemble, error) {
	if len(n.tensors) > 0 {
		return nil, fmt.Errorf("%w: tensor attributes (double-precision thresholds or weights)", ErrUnsupported)
	}
	if t, ok := n.i["n_targets"]; ok && t != 1 {
		return nil, fmt.Errorf("%w: %d targets", ErrUnsupported, t)
	}
	m := &ensemble{}
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
		if _, dup := pos[key{tids[i], nids[i]}]; dup {
			return nil, fmt.Errorf("node %d/%d appears twice", tids[i], nids[i])
		}
		pos[key{tids[i], nids[i]}] = int32(len(t.mode))
		t.mode = append(t.mode, md)
		t.feature = append(t.feature, int32(feats[i]))
		t.value = append(t.value, vals[i])
		t.missingTrue = append(t.missingTrue, len(miss) > 0 && miss[i] != 0)
		t.weight = append(t.weight, 0)
		if md != leaf {
			maxFeature = max(maxFeature, feats[i])
			if feats[i] < 0 || feats[i] >= maxValues {
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
	// The input must be at least this wide (setup checks it); a graph
	// whose input width is symbolic gets it from here (widthHint).
	m.numFeature = max(int(maxFeature+1), 1)
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

// checkAcyclic verifies that every path from the root ends at a leaf. It
// walks with its own stack: a tree may be as deep as it has nodes.
func (t *tree) checkAcyclic() error {
	state := make([]uint8, len(t.mode)) // 0 new, 1 on the path, 2 done
	type frame struct {
		i    int32
		next uint8 // 0: visit the true child next, 1: the false child, 2: done
	}
	stack := []frame{{i: t.root}}
	state[t.root] = 1
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		if t.mode[f.i] == leaf || f.next == 2 {
			state[f.i] = 2
			stack = stack[:len(stack)-1]
			continue
		}
		c := t.trueNode[f.i]
		if f.next == 1 {
			c = t.falseNode[f.i]
		}
		f.next++
		switch state[c] {
		case 1:
			return errors.New("cycle")
		case 0:
			state[c] = 1
			stack = append(stack, frame{i: c})
		}
	}
	return nil
}
