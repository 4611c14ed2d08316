package onnx

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// A small ONNX writer for the tests: enough of ModelProto to build one
// graph per case with protowire, field numbers as in onnx.proto.

func msg(num protowire.Number, body []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), body)
}

func str(num protowire.Number, s string) []byte { return msg(num, []byte(s)) }

func varint(num protowire.Number, v int64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), uint64(v))
}

func packedInts(num protowire.Number, vs []int64) []byte {
	var b []byte
	for _, v := range vs {
		b = protowire.AppendVarint(b, uint64(v))
	}
	return msg(num, b)
}

func packedFloats(num protowire.Number, vs []float64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v)))
	}
	return msg(num, b)
}

// tensorF is a float TensorProto in float_data.
func tensorF(name string, dims []int64, vs ...float64) []byte {
	return slices.Concat(packedInts(1, dims), varint(2, typeFloat), packedFloats(4, vs), str(8, name))
}

// tensorRaw is a float TensorProto in raw_data.
func tensorRaw(name string, dims []int64, vs ...float64) []byte {
	var raw []byte
	for _, v := range vs {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(float32(v)))
	}
	return slices.Concat(packedInts(1, dims), varint(2, typeFloat), str(8, name), msg(9, raw))
}

// tensorD is a double TensorProto in double_data.
func tensorD(name string, dims []int64, vs ...float64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return slices.Concat(packedInts(1, dims), varint(2, typeDouble), msg(10, b), str(8, name))
}

// tensorI is an int64 TensorProto in int64_data.
func tensorI(name string, dims []int64, vs ...int64) []byte {
	return slices.Concat(packedInts(1, dims), varint(2, typeInt64), packedInts(7, vs), str(8, name))
}

func attrF(name string, v float64) []byte {
	return slices.Concat(str(1, name), protowire.AppendFixed32(protowire.AppendTag(nil, 2, protowire.Fixed32Type), math.Float32bits(float32(v))))
}
func attrI(name string, v int64) []byte { return slices.Concat(str(1, name), varint(3, v)) }
func attrT(name string, t []byte) []byte {
	return slices.Concat(str(1, name), msg(5, t))
}
func attrFs(name string, vs ...float64) []byte {
	return slices.Concat(str(1, name), packedFloats(7, vs))
}
func attrIs(name string, vs ...int64) []byte {
	return slices.Concat(str(1, name), packedInts(8, vs))
}
func attrSs(name string, vs ...string) []byte {
	b := str(1, name)
	for _, v := range vs {
		b = append(b, str(9, v)...)
	}
	return b
}

// nd is a NodeProto: op (prefixed "ml:" for ai.onnx.ml), inputs and
// outputs separated by "->", then attributes.
func nd(op, io string, attrs ...[]byte) []byte {
	ins, outs, _ := strings.Cut(io, "->")
	var b []byte
	for _, s := range strings.Split(ins, ",") {
		if s = strings.TrimSpace(s); s == "-" {
			s = ""
		}
		b = append(b, str(1, s)...)
	}
	for _, s := range strings.Split(outs, ",") {
		b = append(b, str(2, strings.TrimSpace(s))...)
	}
	if o, ok := strings.CutPrefix(op, "ml:"); ok {
		b = append(b, str(4, o)...)
		b = append(b, str(7, "ai.onnx.ml")...)
	} else {
		b = append(b, str(4, op)...)
	}
	for _, a := range attrs {
		b = append(b, msg(5, a)...)
	}
	return b
}

// valueInfo of a float tensor; a negative dimension is symbolic.
func vinfo(name string, dims ...int64) []byte {
	var shape []byte
	for _, d := range dims {
		if d < 0 {
			shape = append(shape, msg(1, str(2, "N"))...)
		} else {
			shape = append(shape, msg(1, varint(1, d))...)
		}
	}
	tt := slices.Concat(varint(1, typeFloat), msg(2, shape))
	return slices.Concat(str(1, name), msg(2, msg(1, tt)))
}

// spec is one test graph: the input X of shape [N, width] (width < 0:
// symbolic), nodes, initializers, and the output Y.
type spec struct {
	width  int64
	nodes  [][]byte
	inits  [][]byte
	meta   map[string]string
	noML   bool     // no ai.onnx.ml opset import
	inputs [][]byte // graph inputs; nil: X alone
	output string
}

func (s spec) encode() []byte {
	var g []byte
	for _, n := range s.nodes {
		g = append(g, msg(1, n)...)
	}
	for _, t := range s.inits {
		g = append(g, msg(5, t)...)
	}
	ins := s.inputs
	if ins == nil {
		ins = [][]byte{vinfo("X", -1, s.width)}
	}
	for _, in := range ins {
		g = append(g, msg(11, in)...)
	}
	out := s.output
	if out == "" {
		out = "Y"
	}
	g = append(g, msg(12, vinfo(out))...)
	m := slices.Concat(varint(1, 8), msg(8, slices.Concat(str(1, ""), varint(2, 17))))
	if !s.noML {
		m = append(m, msg(8, slices.Concat(str(1, "ai.onnx.ml"), varint(2, 3)))...)
	}
	m = append(m, msg(7, g)...)
	for k, v := range s.meta {
		m = append(m, msg(14, slices.Concat(str(1, k), str(2, v)))...)
	}
	return m
}

// outputs evaluates m on x and returns its whole output.
func outputs(m *Model, x []float64) []float64 {
	st := m.states.Get().(*state)
	defer m.states.Put(st)
	return slices.Clone(m.run(st, x))
}

func TestOperators(t *testing.T) {
	exp := math.Exp
	sm := func(v ...float64) []float64 {
		s := 0.0
		for _, x := range v {
			s += exp(x)
		}
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = exp(x) / s
		}
		return out
	}
	nan := math.NaN()
	cases := []struct {
		name  string
		spec  spec
		x     []float64
		want  []float64
		score float64 // Predict's answer when the output has several values; else want[0]
	}{
		{name: "Gemm transB alpha beta, C a vector",
			spec: spec{width: 3, nodes: [][]byte{nd("Gemm", "X,B,C->Y", attrI("transB", 1), attrF("alpha", 2), attrF("beta", 0.5))},
				inits: [][]byte{tensorF("B", []int64{2, 3}, 1, 0, 1, 0, 1, 0), tensorF("C", []int64{2}, 1, 2)},
				meta:  map[string]string{"score_index": "1"}},
			x: []float64{1, 2, 3}, want: []float64{8.5, 5}, score: 5},
		{name: "Reshape to a column, Gemm transA",
			spec: spec{width: 3, nodes: [][]byte{nd("Reshape", "X,shape->col"), nd("Gemm", "col,B->Y", attrI("transA", 1))},
				inits: [][]byte{tensorI("shape", []int64{2}, 3, 1), tensorF("B", []int64{3, 2}, 1, 2, 3, 4, 5, 6)},
				meta:  map[string]string{"score_index": "0"}},
			x: []float64{1, 2, 3}, want: []float64{22, 28}, score: 22},
		{name: "MatMul by a vector, weights in raw_data",
			spec: spec{width: 3, nodes: [][]byte{nd("MatMul", "X,v->Y")}, inits: [][]byte{tensorRaw("v", []int64{3}, 1, 1, 0.5)}},
			x:    []float64{1, 2, 4}, want: []float64{5}},
		{name: "Reshape -1 to a vector, MatMul vector by matrix, double weights",
			spec: spec{width: 3, nodes: [][]byte{nd("Reshape", "X,shape->v"), nd("MatMul", "v,B->Y")},
				inits: [][]byte{tensorI("shape", []int64{1}, -1), tensorD("B", []int64{3, 2}, 1, 2, 3, 4, 5, 6)},
				meta:  map[string]string{"score_index": "1"}},
			x: []float64{1, 2, 3}, want: []float64{22, 28}, score: 28},
		{name: "Softmax on the last axis",
			spec: spec{width: 3, nodes: [][]byte{nd("Softmax", "X->Y")}, meta: map[string]string{"score_index": "2"}},
			x:    []float64{1, 2, 3}, want: sm(1, 2, 3), score: sm(1, 2, 3)[2]},
		{name: "Clip with both bounds as inputs",
			spec: spec{width: 3, nodes: [][]byte{nd("Clip", "X,lo,hi->Y")},
				inits: [][]byte{tensorF("lo", nil, 0), tensorF("hi", nil, 2)}, meta: map[string]string{"score_index": "0"}},
			x: []float64{-1, 1, 3}, want: []float64{0, 1, 2}},
		{name: "Clip with only a maximum",
			spec: spec{width: 3, nodes: [][]byte{nd("Clip", "X,-,hi->Y")}, inits: [][]byte{tensorF("hi", nil, 2)}, meta: map[string]string{"score_index": "0"}},
			x:    []float64{-1, 1, 3}, want: []float64{-1, 1, 2}},
		{name: "Concat of the input and its negation, Reshape keeping a dimension, Flatten",
			spec: spec{width: 3, nodes: [][]byte{nd("Neg", "X->n"), nd("Concat", "X,n->c", attrI("axis", 1)), nd("Reshape", "c,keep->k"), nd("Flatten", "k->Y")},
				inits: [][]byte{tensorI("keep", []int64{2}, 0, -1)}, meta: map[string]string{"score_index": "4"}},
			x: []float64{1, 2, 3}, want: []float64{1, 2, 3, -1, -2, -3}, score: -2},
		{name: "Pow, Max and Min broadcasting scalars and rows",
			spec: spec{width: 3, nodes: [][]byte{nd("Pow", "X,two->p"), nd("Max", "p,four->q"), nd("Min", "q,row->Y")},
				inits: [][]byte{tensorF("two", []int64{1}, 2), tensorF("four", []int64{1, 1}, 4), tensorF("row", []int64{1, 3}, 9, 5, 5)},
				meta:  map[string]string{"score_index": "0"}},
			x: []float64{1, 2, 3}, want: []float64{4, 4, 5}},
		{name: "Sub and Div by a column broadcast across a row",
			spec: spec{width: 2, nodes: [][]byte{nd("Reshape", "X,shape->col"), nd("Sub", "col,row->d"), nd("Div", "d,two->q"), nd("Reshape", "q,back->Y")},
				inits: [][]byte{tensorI("shape", []int64{2}, 2, 1), tensorF("row", []int64{3}, 0, 1, 2), tensorF("two", nil, 2), tensorI("back", []int64{2}, 1, -1)},
				meta:  map[string]string{"score_index": "5"}},
			x: []float64{1, 5}, want: []float64{0.5, 0, -0.5, 2.5, 2, 1.5}, score: 1.5},
		{name: "LeakyRelu, Elu, Erf, Softplus, Tanh, Abs, Sqrt, Exp, Log",
			spec: spec{width: 3, nodes: [][]byte{nd("LeakyRelu", "X->a", attrF("alpha", 0.1)), nd("Elu", "X->b"), nd("Erf", "X->c"),
				nd("Softplus", "X->d"), nd("Tanh", "X->e"), nd("Abs", "X->f"), nd("Sqrt", "f->g"), nd("Exp", "X->h"), nd("Log", "h->i"),
				nd("Concat", "a,b,c,d,e,g,i->Y", attrI("axis", -1))}, meta: map[string]string{"score_index": "0"}},
			x: []float64{-1, 0, 4},
			want: []float64{-0.1, 0, 4, exp(-1) - 1, 0, 4, math.Erf(-1), 0, math.Erf(4), math.Log1p(exp(-1)), math.Log(2), math.Log1p(exp(4)),
				math.Tanh(-1), 0, math.Tanh(4), 1, 0, 2, -1, 0, 4}, score: -0.1},
		{name: "BatchNormalization folded",
			spec: spec{width: 3, nodes: [][]byte{nd("BatchNormalization", "X,s,b,m,v->Y", attrF("epsilon", 0))},
				inits: [][]byte{tensorF("s", []int64{3}, 1, 2, 1), tensorF("b", []int64{3}, 0, 1, 0), tensorF("m", []int64{3}, 1, 1, 1), tensorF("v", []int64{3}, 4, 1, 1)},
				meta:  map[string]string{"score_index": "1"}},
			x: []float64{1, 2, 3}, want: []float64{0, 3, 2}, score: 3},
		{name: "Scaler with a shared scale",
			spec: spec{width: 3, nodes: [][]byte{nd("ml:Scaler", "X->Y", attrFs("offset", 1, 2, 3), attrFs("scale", 2))}, meta: map[string]string{"score_index": "2"}},
			x:    []float64{1, 2, 5}, want: []float64{0, 0, 4}, score: 4},
		{name: "Imputer of NaN per column",
			spec: spec{width: 3, nodes: [][]byte{nd("ml:Imputer", "X->Y", attrFs("imputed_value_floats", 10, 20, 30), attrF("replaced_value_float", nan))},
				meta: map[string]string{"score_index": "2"}},
			x: []float64{nan, 2, nan}, want: []float64{10, 2, 30}, score: 30},
		{name: "Imputer of a sentinel, one value for all",
			spec: spec{width: 3, nodes: [][]byte{nd("ml:Imputer", "X->Y", attrFs("imputed_value_floats", 5), attrF("replaced_value_float", -1))},
				meta: map[string]string{"score_index": "0"}},
			x: []float64{-1, 2, -1}, want: []float64{5, 2, 5}, score: 5},
		{name: "LinearRegressor with two targets",
			spec: spec{width: 3, nodes: [][]byte{nd("ml:LinearRegressor", "X->Y", attrFs("coefficients", 1, 0, 0, 0, 1, 1), attrFs("intercepts", 0.5, -1), attrI("targets", 2))},
				meta: map[string]string{"score_index": "1"}},
			x: []float64{1, 2, 3}, want: []float64{1.5, 4}, score: 4},
		{name: "Constant node, Identity, Dropout, Cast to float",
			spec: spec{width: 3, nodes: [][]byte{nd("Constant", "->c", attrT("value", tensorF("", []int64{1, 3}, 1, 1, 0.1))),
				nd("Add", "X,c->a"), nd("Identity", "a->b"), nd("Dropout", "b->d"), nd("Cast", "d->Y", attrI("to", typeFloat))},
				meta: map[string]string{"score_index": "2"}},
			x: []float64{1, 2, 0}, want: []float64{2, 3, float64(float32(0.1))}, score: float64(float32(0.1))},
		{name: "Softplus stays finite for large inputs",
			spec: spec{width: 3, nodes: [][]byte{nd("Softplus", "X->Y")}, meta: map[string]string{"score_index": "0"}},
			x:    []float64{1000, -1000, 0}, want: []float64{1000, 0, math.Log(2)}, score: 1000},
		{name: "Constant value_float and Sigmoid, Relu",
			spec: spec{width: 1, nodes: [][]byte{nd("Constant", "->k", attrF("value_float", 2)), nd("Mul", "X,k->m"), nd("Relu", "m->r"), nd("Sigmoid", "r->Y")}},
			x:    []float64{1.5}, want: []float64{1 / (1 + exp(-3))}},
		{name: "symbolic width, taken from the first Gemm",
			spec: spec{width: -1, nodes: [][]byte{nd("Gemm", "X,W->Y", attrI("transB", 1))}, inits: [][]byte{tensorF("W", []int64{1, 4}, 1, 2, 3, 4)}},
			x:    []float64{1, 1, 1, 1}, want: []float64{10}},
		{name: "initializers listed among the inputs",
			spec: spec{width: 2, nodes: [][]byte{nd("MatMul", "X,w->Y")}, inits: [][]byte{tensorF("w", []int64{2, 1}, 3, 4)},
				inputs: [][]byte{vinfo("X", -1, 2), vinfo("w", 2, 1)}},
			x: []float64{1, 1}, want: []float64{7}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Load(c.spec.encode())
			if err != nil {
				t.Fatal(err)
			}
			got := outputs(m, c.x)
			if len(got) != len(c.want) {
				t.Fatalf("output %v, want %v", got, c.want)
			}
			for i := range got {
				if math.Abs(got[i]-c.want[i]) > 1e-6*math.Max(1, math.Abs(c.want[i])) {
					t.Fatalf("output %v, want %v", got, c.want)
				}
			}
			score := c.score
			if len(c.want) == 1 || (c.score == 0 && c.spec.meta["score_index"] == "0") {
				score = c.want[0]
			}
			if p := m.Predict(c.x); math.Abs(p-score) > 1e-6*math.Max(1, math.Abs(score)) {
				t.Fatalf("Predict %v, want %v", p, score)
			}
			if m.NumFeature() != len(c.x) {
				t.Fatalf("NumFeature %d, want %d", m.NumFeature(), len(c.x))
			}
		})
	}
}

func TestLoadRejectsGraphs(t *testing.T) {
	w := tensorF("W", []int64{3, 1}, 1, 2, 3)
	cases := []struct {
		name  string
		spec  spec
		unsup bool   // errors.Is ErrUnsupported
		says  string // in the message
	}{
		{"unknown operator", spec{width: 3, nodes: [][]byte{nd("Conv", "X,W->Y")}, inits: [][]byte{w}}, true, "Conv"},
		{"another domain", spec{width: 3, nodes: [][]byte{append(nd("Relu", "X->Y"), str(7, "com.microsoft")...)}}, true, "com.microsoft"},
		{"ai.onnx.ml not imported", spec{width: 3, noML: true, nodes: [][]byte{nd("ml:Scaler", "X->Y", attrFs("scale", 2))}, meta: map[string]string{"score_index": "0"}}, false, "does not import"},
		{"Softmax over the batch", spec{width: 3, nodes: [][]byte{nd("Softmax", "X->Y", attrI("axis", 0))}, meta: map[string]string{"score_index": "0"}}, true, "Softmax"},
		{"rank 3 initializer", spec{width: 3, nodes: [][]byte{nd("Add", "X,T->Y")}, inits: [][]byte{tensorF("T", []int64{1, 1, 3}, 1, 2, 3)}}, true, "rank 2"},
		{"used before defined", spec{width: 3, nodes: [][]byte{nd("Relu", "h->Y"), nd("MatMul", "X,W->h")}, inits: [][]byte{w}}, false, "before anything defines it"},
		{"defined twice", spec{width: 3, nodes: [][]byte{nd("MatMul", "X,W->h"), nd("Relu", "h->h"), nd("Relu", "h->Y")}, inits: [][]byte{w}}, false, "again"},
		{"secondary output used", spec{width: 3, nodes: [][]byte{nd("Dropout", "X->d,mask"), nd("Mul", "d,mask->m"), nd("MatMul", "m,W->Y")}, inits: [][]byte{w}}, true, "secondary output"},
		{"Reshape to a computed shape", spec{width: 3, nodes: [][]byte{nd("Reshape", "X,X->r"), nd("MatMul", "r,W->Y")}, inits: [][]byte{w}}, true, "computed shape"},
		{"several values without score_index", spec{width: 3, nodes: [][]byte{nd("Relu", "X->Y")}}, true, "score_index"},
		{"score_index out of range", spec{width: 3, nodes: [][]byte{nd("Relu", "X->Y")}, meta: map[string]string{"score_index": "3"}}, false, "score_index"},
		{"no width anywhere", spec{width: -1, nodes: [][]byte{nd("Relu", "X->r"), nd("MatMul", "r,W->Y")}, inits: [][]byte{w}}, true, "no fixed width"},
		{"Gemm shapes disagree", spec{width: 2, nodes: [][]byte{nd("MatMul", "X,W->Y")}, inits: [][]byte{w}}, false, "MatMul of shapes [1 2] and [3 1]"},
		{"Gemm C does not broadcast", spec{width: 3, nodes: [][]byte{nd("Gemm", "X,W,C->Y")}, inits: [][]byte{w, tensorF("C", []int64{2}, 1, 2)}}, false, "broadcast"},
		{"external data", spec{width: 3, nodes: [][]byte{nd("MatMul", "X,E->Y")}, inits: [][]byte{slices.Concat(tensorF("E", []int64{3, 1}, 1, 2, 3), varint(14, 1))}}, true, "external"},
		{"Cast to int64", spec{width: 1, nodes: [][]byte{nd("Cast", "X->Y", attrI("to", typeInt64))}}, true, "Cast"},
		{"rank 3 input", spec{width: 3, inputs: [][]byte{vinfo("X", -1, 3, 2)}, nodes: [][]byte{nd("MatMul", "X,W->Y")}, inits: [][]byte{w}}, true, "[N, features]"},
		{"two inputs", spec{width: 3, inputs: [][]byte{vinfo("X", -1, 3), vinfo("Z", -1, 3)}, nodes: [][]byte{nd("Add", "X,Z->Y")}}, true, "graph inputs"},
		{"output not computed", spec{width: 3, output: "Z", nodes: [][]byte{nd("MatMul", "X,W->Y")}, inits: [][]byte{w}}, false, "not computed"},
		{"feature names miscounted", spec{width: 3, nodes: [][]byte{nd("MatMul", "X,W->Y")}, inits: [][]byte{w}, meta: map[string]string{"feature_names": "a,b"}}, false, "feature_names"},
		{"tensor data miscounted", spec{width: 3, nodes: [][]byte{nd("MatMul", "X,W->Y")}, inits: [][]byte{tensorF("W", []int64{3, 1}, 1, 2)}}, false, "2 values for dims [3 1]"},
		{"too few inputs", spec{width: 3, nodes: [][]byte{nd("Gemm", "X->Y")}}, false, "Gemm takes 2 to 3"},
		{"a required input left empty", spec{width: 3, nodes: [][]byte{nd("Add", "X,-->Y")}}, false, "input 2 of Add is required"},
		{"an empty tensor", spec{width: 3, nodes: [][]byte{nd("MatMul", "X,E->m"), nd("Softmax", "m->Y")}, inits: [][]byte{tensorF("E", []int64{3, 0})}}, true, "empty tensor"},
		{"a tree node id twice", spec{width: 1, nodes: [][]byte{nd("ml:TreeEnsembleRegressor", "X->Y",
			attrIs("nodes_treeids", 0, 0, 0, 0), attrIs("nodes_nodeids", 0, 1, 2, 1), attrIs("nodes_featureids", 0, 0, 0, 0),
			attrFs("nodes_values", .5, .5, 0, 0), attrSs("nodes_modes", "BRANCH_LEQ", "BRANCH_LEQ", "LEAF", "LEAF"),
			attrIs("nodes_truenodeids", 1, 2, 0, 0), attrIs("nodes_falsenodeids", 2, 2, 0, 0),
			attrIs("target_treeids", 0), attrIs("target_nodeids", 2), attrFs("target_weights", 1))}}, false, "node 0/1 appears twice"},
		{"an input too wide", spec{width: 1 << 40, nodes: [][]byte{nd("Relu", "X->Y")}}, true, "features wide"},
		{"a tensor too large", spec{width: 3, nodes: [][]byte{nd("Add", "X,T->Y")}, inits: [][]byte{tensorF("T", []int64{1 << 20, 1 << 20})}}, false, "more than 16777216 values"},
		{"more values than the dims", spec{width: 3, nodes: [][]byte{nd("Add", "X,T->Y")}, inits: [][]byte{tensorI("T", []int64{1, 3}, 1, 2, 3, 4, 5)}}, false, "more than 3 values"},
		{"raw data of the wrong length", spec{width: 3, nodes: [][]byte{nd("Add", "X,T->Y")}, inits: [][]byte{tensorRaw("T", []int64{1, 3}, 1, 2)}}, false, "8 bytes of raw data, want 12"},
		{"BatchNormalization in training mode", spec{width: 3, nodes: [][]byte{nd("BatchNormalization", "X,s,s,s,s->Y", attrI("training_mode", 1))},
			inits: [][]byte{tensorF("s", []int64{3}, 1, 1, 1)}}, true, "training mode"},
		{"BatchNormalization parameters computed", spec{width: 3, nodes: [][]byte{nd("BatchNormalization", "X,X,X,X,X->b"), nd("MatMul", "b,W->Y")}, inits: [][]byte{w}}, true, "not a constant"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(c.spec.encode())
			if err == nil {
				t.Fatal("accepted")
			}
			if errors.Is(err, ErrUnsupported) != c.unsup || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("error %q: want ErrUnsupported %v and %q in it", err, c.unsup, c.says)
			}
		})
	}
}

// BenchmarkPredictMLP scores the scikit-learn perceptron of mlp.onnx.
func BenchmarkPredictMLP(b *testing.B) {
	m := load(b, "testdata/mlp.onnx")
	x := []float64{0.2, 0.3, 0.9, 0.99, 0, 0, 40, 300}
	b.ReportAllocs()
	for b.Loop() {
		sink += m.Predict(x)
	}
}

// TestDeepTree loads and scores a tree 50,000 levels deep: the checks
// and the walk must not recurse.
func TestDeepTree(t *testing.T) {
	const depth = 50_000
	var tids, nids, feats, tn, fn, targetNodes []int64
	var vals []float64
	var modes []string
	for d := range depth {
		// branch 2d: x ≤ d goes to leaf 2d+1 (weight d), else down to 2d+2
		tids, nids, feats, tn, fn = append(tids, 0, 0), append(nids, int64(2*d), int64(2*d+1)), append(feats, 0, 0),
			append(tn, int64(2*d+1), 0), append(fn, int64(2*d+2), 0)
		vals, modes = append(vals, float64(d), 0), append(modes, "BRANCH_LEQ", "LEAF")
		targetNodes = append(targetNodes, int64(2*d+1))
	}
	tids, nids, feats, tn, fn = append(tids, 0), append(nids, 2*depth), append(feats, 0), append(tn, 0), append(fn, 0)
	vals, modes = append(vals, 0), append(modes, "LEAF")
	targetNodes = append(targetNodes, 2*depth)
	weights := make([]float64, len(targetNodes))
	for i := range weights {
		weights[i] = float64(i)
	}
	tree := nd("ml:TreeEnsembleRegressor", "X->Y", attrIs("nodes_treeids", tids...), attrIs("nodes_nodeids", nids...),
		attrIs("nodes_featureids", feats...), attrFs("nodes_values", vals...), attrSs("nodes_modes", modes...),
		attrIs("nodes_truenodeids", tn...), attrIs("nodes_falsenodeids", fn...),
		attrIs("target_treeids", make([]int64, len(targetNodes))...), attrIs("target_nodeids", targetNodes...), attrFs("target_weights", weights...))
	m, err := Load(spec{width: 1, nodes: [][]byte{tree}}.encode())
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []float64{0, 7, 49_999, 1e9} {
		want := min(x, depth)
		if got := m.Predict([]float64{x}); got != want {
			t.Errorf("Predict(%v) = %v, want %v", x, got, want)
		}
	}
}

// FuzzLoad loads mutated model files: Load must refuse or accept them
// without panicking, and an accepted model must score without panicking.
// `make fuzz` runs it.
func FuzzLoad(f *testing.F) {
	for _, path := range []string{"testdata/modes.onnx", "testdata/mlp.onnx"} {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	w := tensorF("W", []int64{3, 2}, 1, 2, 3, 4, 5, 6)
	for _, s := range []spec{
		{width: 3, nodes: [][]byte{nd("Gemm", "X,W->g", attrI("transB", 0)), nd("Softmax", "g->Y")}, inits: [][]byte{w}, meta: map[string]string{"score_index": "1"}},
		{width: 3, nodes: [][]byte{nd("Reshape", "X,shape->v"), nd("MatMul", "v,W->Y")}, inits: [][]byte{tensorI("shape", []int64{1}, -1), w}, meta: map[string]string{"score_index": "0"}},
		{width: 3, nodes: [][]byte{nd("ml:Imputer", "X->i", attrFs("imputed_value_floats", 1)), nd("ml:LinearRegressor", "i->Y", attrFs("coefficients", 1, 2, 3))}},
	} {
		f.Add(s.encode())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Load(data)
		if err != nil {
			return
		}
		x := make([]float64, m.NumFeature())
		for i := range x {
			x[i] = float64(i) - 1
		}
		m.Predict(x)
		x[0] = math.NaN()
		m.Predict(x)
	})
}

// TestOperatorsDocumented keeps docs/inference.md's operator table in
// step with what Load accepts.
func TestOperatorsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/inference.md")
	if err != nil {
		t.Fatal(err)
	}
	ops := Operators()
	if len(ops) < 30 {
		t.Fatalf("%d operators: %v", len(ops), ops)
	}
	for _, op := range append(ops, "Constant") {
		name := op[strings.LastIndexByte(op, ':')+1:]
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/inference.md does not list %s", op)
		}
	}
}
