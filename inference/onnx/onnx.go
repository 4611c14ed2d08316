// Package onnx runs ONNX models of tabular features in pure Go: tree
// ensembles, linear models and small neural networks.
//
// It reads the ModelProto with protowire (no generated code, no new
// dependency), checks the graph and every shape when it loads, and then
// evaluates one row at a time without allocating. The graph has one input,
// a [N, features] tensor, and its first output gives the score: one value
// per row, or the column that the model's metadata_props key score_index
// names (a classifier's probabilities, say).
//
// Operators (Operators lists them): Identity, Dropout (as identity), Cast
// to float or double; Relu, LeakyRelu, Elu, Sigmoid, Tanh, Softplus, Exp,
// Log, Abs, Neg, Sqrt, Erf, Clip; Add, Sub, Mul, Div, Pow, Max, Min with
// numpy broadcasting; Gemm, MatMul; Softmax and Concat on the last axis;
// Flatten, Reshape to a constant shape; BatchNormalization in inference
// mode; Constant; and from ai.onnx.ml TreeEnsembleRegressor, Scaler,
// Imputer and LinearRegressor. That covers what PyTorch exports for a
// multilayer perceptron, what skl2onnx and onnxmltools give scikit-learn,
// XGBoost and LightGBM regressors and linear models, and pipelines of
// imputer, scaler and model. Tensors have rank 2 at most; float, double,
// int32 and int64 constants are read, and everything is computed in
// float64.
//
// TreeEnsembleRegressor: one target, every node mode (BRANCH_LEQ,
// BRANCH_LT, BRANCH_GTE, BRANCH_GT, BRANCH_EQ, BRANCH_NEQ, LEAF), missing
// values through nodes_missing_value_tracks_true, aggregate_function SUM
// or AVERAGE, post_transform NONE or LOGISTIC, base_values. Thresholds and
// inputs are compared as float32, as ONNX float tensors are.
//
// Anything else (classifier operators, convolutions, recurrent layers,
// tensors above rank 2, control flow, external data) is refused with
// ErrUnsupported, naming what was found.
package onnx

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrUnsupported is returned for a model outside the supported subset.
var ErrUnsupported = errors.New("unsupported onnx model")

// Model is a loaded ONNX graph; immutable and safe for concurrent use.
type Model struct {
	numFeature   int
	featureNames []string
	trees        int

	// Values are numbered: 0 is the feature input, then the constants and
	// the nodes' outputs in graph order.
	consts     [][]float64 // by value; nil for a computed one
	sizes      []int       // elements of every computed value, one row
	steps      []step
	output     int
	scoreIndex int
	maxInputs  int
	states     sync.Pool // *state
}

// step evaluates one node.
type step struct {
	op  operator
	in  []int // values; -1 for an absent optional input
	out int
}

// state holds one evaluation's values.
type state struct {
	vals [][]float64
	ins  [][]float64
}

// NumFeature is the length of the feature vector.
func (m *Model) NumFeature() int { return m.numFeature }

// FeatureNames returns the names stored in the model's metadata_props
// under "feature_names" (comma-separated), or nil.
func (m *Model) FeatureNames() []string { return m.featureNames }

// NumTrees returns the number of trees in the model's tree ensembles.
func (m *Model) NumTrees() int { return m.trees }

// Predict evaluates x (NumFeature values, NaN for missing) and returns
// the score. A tree ensemble routes NaN as the model says; arithmetic
// carries it to the score unless an Imputer replaces it.
func (m *Model) Predict(x []float64) float64 {
	st := m.states.Get().(*state)
	score := m.run(st, x)[m.scoreIndex]
	st.vals[0] = nil
	m.states.Put(st)
	return score
}

// run evaluates the graph on x in st and returns the output, which is
// st's until st is used again.
func (m *Model) run(st *state, x []float64) []float64 {
	st.vals[0] = x[:m.numFeature]
	for i := range m.steps {
		s := &m.steps[i]
		ins := st.ins[:len(s.in)]
		for k, v := range s.in {
			if v < 0 {
				ins[k] = nil
			} else {
				ins[k] = st.vals[v]
			}
		}
		s.op.eval(ins, st.vals[s.out])
	}
	return st.vals[m.output]
}

func (m *Model) newState() any {
	st := &state{vals: make([][]float64, len(m.consts)), ins: make([][]float64, m.maxInputs)}
	for i, c := range m.consts {
		if c != nil {
			st.vals[i] = c
		} else if i > 0 {
			st.vals[i] = make([]float64, m.sizes[i])
		}
	}
	return st
}

// Load parses an ONNX model file and checks its graph.
func Load(b []byte) (*Model, error) {
	var graph []byte
	meta := map[string]string{}
	opsets := map[string]int64{}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch num {
		case 7: // graph
			graph = v
		case 8: // opset_import
			var domain string
			var version int64
			if err := fields(v, func(n protowire.Number, _ protowire.Type, v []byte, u uint64) error {
				switch n {
				case 1:
					domain = string(v)
				case 2:
					version = int64(u)
				}
				return nil
			}); err != nil {
				return err
			}
			opsets[domain] = version
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
	g, err := parseGraph(graph)
	if err != nil {
		return nil, fmt.Errorf("onnx graph: %w", err)
	}
	opset, ok := opsets[""]
	if !ok {
		opset, ok = opsets["ai.onnx"]
	}
	if !ok {
		opset = 1
	}
	_, ml := opsets["ai.onnx.ml"]
	m, err := g.build(opset, ml)
	if err != nil {
		return nil, err
	}
	if s, ok := meta["score_index"]; ok {
		i, err := strconv.Atoi(s)
		if err != nil || i < 0 || i >= m.sizes[m.output] {
			return nil, fmt.Errorf("onnx model: score_index %q for an output of %d values per row", s, m.sizes[m.output])
		}
		m.scoreIndex = i
	} else if n := m.sizes[m.output]; n != 1 {
		return nil, fmt.Errorf("%w: the output has %d values per row; name the score's column in metadata_props score_index", ErrUnsupported, n)
	}
	if s := meta["feature_names"]; s != "" {
		m.featureNames = strings.Split(s, ",")
		if len(m.featureNames) != m.numFeature {
			return nil, fmt.Errorf("onnx model: %d feature_names for %d features", len(m.featureNames), m.numFeature)
		}
	}
	m.states.New = m.newState
	return m, nil
}

// maxNodes bounds a graph's nodes (a tree ensemble is one node).
const maxNodes = 1 << 16

// graph is a GraphProto's parts.
type graph struct {
	nodes   []*node
	inits   []*tensor
	inputs  []valueInfo
	outputs []valueInfo
}

func parseGraph(b []byte) (*graph, error) {
	g := &graph{}
	err := fields(b, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
		switch num {
		case 1:
			if len(g.nodes) >= maxNodes {
				return fmt.Errorf("%w: more than %d nodes", ErrUnsupported, maxNodes)
			}
			n, err := parseNode(v)
			if err != nil {
				return fmt.Errorf("node: %w", err)
			}
			g.nodes = append(g.nodes, n)
		case 5:
			t, err := parseTensor(v)
			if err != nil {
				return fmt.Errorf("initializer: %w", err)
			}
			g.inits = append(g.inits, t)
		case 11, 12:
			vi, err := parseValueInfo(v)
			if err != nil {
				return fmt.Errorf("input or output: %w", err)
			}
			if num == 11 {
				g.inputs = append(g.inputs, vi)
			} else {
				g.outputs = append(g.outputs, vi)
			}
		case 15:
			return fmt.Errorf("%w: sparse initializer", ErrUnsupported)
		}
		return nil
	})
	return g, err
}

// build numbers the graph's values, makes every node's operator, and
// works out every value's shape for one row.
func (g *graph) build(opset int64, ml bool) (*Model, error) {
	m := &Model{consts: [][]float64{nil}, sizes: []int{0}}
	slot := map[string]int{}
	shapes := [][]int{nil}
	constTensors := map[string]*tensor{}
	constValues := 0
	for _, t := range g.inits {
		if constValues += len(t.data); constValues > maxValues {
			return nil, fmt.Errorf("%w: more than %d constant values", ErrUnsupported, maxValues)
		}
		if _, dup := slot[t.name]; dup || t.name == "" {
			return nil, fmt.Errorf("onnx graph: initializer %q defined twice or unnamed", t.name)
		}
		if len(t.dims) > 2 {
			return nil, fmt.Errorf("%w: initializer %q of shape %v (rank 2 at most)", ErrUnsupported, t.name, t.dims)
		}
		slot[t.name] = len(m.consts)
		m.consts, m.sizes, shapes = append(m.consts, t.data), append(m.sizes, len(t.data)), append(shapes, shapeOf(t))
		constTensors[t.name] = t
	}
	var in *valueInfo
	for i := range g.inputs {
		if _, isInit := slot[g.inputs[i].name]; isInit {
			continue // older exporters list initializers as inputs
		}
		if in != nil {
			return nil, fmt.Errorf("%w: graph inputs %q and %q, want one [N, features] tensor", ErrUnsupported, in.name, g.inputs[i].name)
		}
		in = &g.inputs[i]
	}
	if in == nil {
		return nil, fmt.Errorf("%w: no graph input", ErrUnsupported)
	}
	if len(in.dims) != 2 || in.dims[0] > 1 {
		return nil, fmt.Errorf("%w: input %q of shape %v, want [N, features]", ErrUnsupported, in.name, in.dims)
	}
	slot[in.name] = 0
	width := in.dims[1]
	if width > maxValues {
		return nil, fmt.Errorf("%w: input %q is %d features wide", ErrUnsupported, in.name, width)
	}

	consts := func(name string) *tensor { return constTensors[name] }
	type pending struct {
		n  *node
		op operator
		in []int
	}
	var nodes []pending
	extra := map[string]string{} // a node's other outputs, which nothing may use
	for _, n := range g.nodes {
		where := n.opType
		if n.name != "" {
			where = fmt.Sprintf("%s %q", n.opType, n.name)
		}
		ins := make([]int, len(n.inputs))
		for k, name := range n.inputs {
			if name == "" {
				ins[k] = -1
				continue
			}
			if op, ok := extra[name]; ok {
				return nil, fmt.Errorf("%w: node %s uses %q, a secondary output of %s", ErrUnsupported, where, name, op)
			}
			s, ok := slot[name]
			if !ok {
				return nil, fmt.Errorf("onnx graph: node %s uses %q before anything defines it", where, name)
			}
			ins[k] = s
		}
		if len(n.outputs) == 0 || n.outputs[0] == "" {
			return nil, fmt.Errorf("onnx graph: node %s has no output", where)
		}
		for _, name := range n.outputs {
			if _, dup := slot[name]; dup {
				return nil, fmt.Errorf("onnx graph: node %s defines %q again", where, name)
			}
		}
		for _, name := range n.outputs[1:] {
			if name != "" {
				extra[name] = where
			}
		}
		if n.opType == "Constant" && (n.domain == "" || n.domain == "ai.onnx") {
			t, err := constantValue(n)
			if err != nil {
				return nil, fmt.Errorf("onnx node %s: %w", where, err)
			}
			if constValues += len(t.data); constValues > maxValues {
				return nil, fmt.Errorf("%w: more than %d constant values", ErrUnsupported, maxValues)
			}
			t.name = n.outputs[0]
			slot[t.name] = len(m.consts)
			m.consts, m.sizes, shapes = append(m.consts, t.data), append(m.sizes, len(t.data)), append(shapes, shapeOf(t))
			constTensors[t.name] = t
			continue
		}
		key := n.opType
		switch n.domain {
		case "", "ai.onnx":
		case "ai.onnx.ml":
			if !ml {
				return nil, fmt.Errorf("onnx graph: node %s is in ai.onnx.ml, which the model does not import", where)
			}
			key = "ai.onnx.ml:" + n.opType
		default:
			return nil, fmt.Errorf("%w: operator %s of domain %q", ErrUnsupported, n.opType, n.domain)
		}
		mk, ok := builders[key]
		if !ok {
			return nil, fmt.Errorf("%w: operator %s (%s)", ErrUnsupported, key, where)
		}
		if err := checkArity(key, ins); err != nil {
			return nil, fmt.Errorf("onnx node %s: %w", where, err)
		}
		op, err := mk(n, opset, consts)
		if err != nil {
			return nil, fmt.Errorf("onnx node %s: %w", where, err)
		}
		if e, ok := op.(*ensemble); ok {
			m.trees += len(e.trees)
		}
		if width < 0 && ins[0] == 0 {
			if h, ok := op.(widthHinter); ok && h.widthHint() > 0 {
				width = h.widthHint()
			}
		}
		slot[n.outputs[0]] = len(m.consts)
		m.consts, m.sizes, shapes = append(m.consts, nil), append(m.sizes, 0), append(shapes, nil)
		nodes = append(nodes, pending{n: n, op: op, in: ins})
	}
	if width <= 0 {
		return nil, fmt.Errorf("%w: input %q has no fixed width and no node says how wide it is", ErrUnsupported, in.name)
	}
	m.numFeature = width
	shapes[0] = []int{1, width}

	computed := 0
	for _, p := range nodes {
		ins := make([][]int, len(p.in))
		for k, s := range p.in {
			if s >= 0 {
				ins[k] = shapes[s]
			}
		}
		out, err := p.op.setup(ins)
		if err != nil {
			return nil, fmt.Errorf("onnx node %s %q: %w", p.n.opType, p.n.name, err)
		}
		if len(out) > 2 {
			return nil, fmt.Errorf("%w: node %s %q gives shape %v (rank 2 at most)", ErrUnsupported, p.n.opType, p.n.name, out)
		}
		if size(out) == 0 {
			return nil, fmt.Errorf("%w: node %s %q gives an empty tensor, shape %v", ErrUnsupported, p.n.opType, p.n.name, out)
		}
		s := slot[p.n.outputs[0]]
		shapes[s], m.sizes[s] = out, size(out)
		if computed += m.sizes[s]; computed > maxValues {
			return nil, fmt.Errorf("%w: more than %d computed values for one row", ErrUnsupported, maxValues)
		}
		m.steps = append(m.steps, step{op: p.op, in: p.in, out: s})
		m.maxInputs = max(m.maxInputs, len(p.in))
	}
	if len(g.outputs) == 0 {
		return nil, errors.New("onnx graph: no output")
	}
	out, ok := slot[g.outputs[0].name]
	if !ok {
		return nil, fmt.Errorf("onnx graph: output %q is not computed by any node", g.outputs[0].name)
	}
	if out == 0 || m.consts[out] != nil {
		return nil, fmt.Errorf("%w: output %q is the input or a constant", ErrUnsupported, g.outputs[0].name)
	}
	if r := shapes[out]; len(r) == 2 && r[0] != 1 {
		return nil, fmt.Errorf("%w: output %q of shape %v for one row", ErrUnsupported, g.outputs[0].name, r)
	}
	m.output = out
	return m, nil
}

// shapeOf is t's shape, never nil: a nil shape stands for an absent
// optional input.
func shapeOf(t *tensor) []int {
	if t.dims == nil {
		return []int{}
	}
	return t.dims
}

// constantValue reads a Constant node's value.
func constantValue(n *node) (*tensor, error) {
	if t, ok := n.tensors["value"]; ok {
		if len(t.dims) > 2 {
			return nil, fmt.Errorf("%w: constant of shape %v", ErrUnsupported, t.dims)
		}
		return t, nil
	}
	if f, ok := n.f["value_float"]; ok {
		return &tensor{data: []float64{float64(f)}, dtype: typeFloat}, nil
	}
	if fs, ok := n.floats["value_floats"]; ok && len(fs) > 0 {
		t := &tensor{dims: []int{len(fs)}, dtype: typeFloat}
		for _, f := range fs {
			t.data = append(t.data, float64(f))
		}
		return t, nil
	}
	if i, ok := n.i["value_int"]; ok {
		return &tensor{data: []float64{float64(i)}, dtype: typeInt64}, nil
	}
	if is, ok := n.ints["value_ints"]; ok && len(is) > 0 {
		t := &tensor{dims: []int{len(is)}, dtype: typeInt64}
		for _, i := range is {
			t.data = append(t.data, float64(i))
		}
		return t, nil
	}
	return nil, fmt.Errorf("%w: Constant without a float or int value", ErrUnsupported)
}
