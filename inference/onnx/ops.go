package onnx

import (
	"fmt"
	"math"
	"slices"
)

// operator is one node of the graph. setup receives the static shapes of
// the node's inputs (nil for an absent optional input) with a batch of
// one row, checks them and returns the output's; eval computes the output
// into out, which has the size setup gave. Operators are immutable after
// setup, so one graph serves concurrent Predict calls.
type operator interface {
	setup(in [][]int) ([]int, error)
	eval(in [][]float64, out []float64)
}

// widthHinter is an operator that knows how wide its first input must be:
// it gives a graph whose feature input has a symbolic width its width.
type widthHinter interface {
	widthHint() int
}

// constants gives a builder the value of a node's input when it is a
// constant (an initializer or a Constant node), or nil.
type constants func(name string) *tensor

// builders makes an operator from a node, by domain and op_type. opset is
// the version of the default domain the model imports.
var builders = map[string]func(n *node, opset int64, c constants) (operator, error){
	"Identity": func(*node, int64, constants) (operator, error) {
		return unary{fn: func(x float64) float64 { return x }}, nil
	},
	"Dropout": func(*node, int64, constants) (operator, error) {
		return unary{fn: func(x float64) float64 { return x }}, nil
	},
	"Cast":     buildCast,
	"Relu":     unaryOf(func(x float64) float64 { return max(x, 0) }),
	"Sigmoid":  unaryOf(func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }),
	"Tanh":     unaryOf(math.Tanh),
	"Exp":      unaryOf(math.Exp),
	"Log":      unaryOf(math.Log),
	"Abs":      unaryOf(math.Abs),
	"Neg":      unaryOf(func(x float64) float64 { return -x }),
	"Sqrt":     unaryOf(math.Sqrt),
	"Erf":      unaryOf(math.Erf),
	"Softplus": unaryOf(func(x float64) float64 { return max(x, 0) + math.Log1p(math.Exp(-math.Abs(x))) }),
	"LeakyRelu": func(n *node, _ int64, _ constants) (operator, error) {
		a := n.floatAttr("alpha", 0.01)
		return unary{fn: func(x float64) float64 {
			if x < 0 {
				return a * x
			}
			return x
		}}, nil
	},
	"Elu": func(n *node, _ int64, _ constants) (operator, error) {
		a := n.floatAttr("alpha", 1)
		return unary{fn: func(x float64) float64 {
			if x < 0 {
				return a * (math.Exp(x) - 1)
			}
			return x
		}}, nil
	},
	"Clip": buildClip,
	"Add":  binaryOf(func(a, b float64) float64 { return a + b }),
	"Sub":  binaryOf(func(a, b float64) float64 { return a - b }),
	"Mul":  binaryOf(func(a, b float64) float64 { return a * b }),
	"Div":  binaryOf(func(a, b float64) float64 { return a / b }),
	"Pow":  binaryOf(math.Pow),
	"Max":  binaryOf(math.Max),
	"Min":  binaryOf(math.Min),
	"Gemm": func(n *node, _ int64, c constants) (operator, error) {
		g := &gemm{alpha: n.floatAttr("alpha", 1), beta: n.floatAttr("beta", 1),
			transA: n.intAttr("transA", 0) != 0, transB: n.intAttr("transB", 0) != 0}
		g.hint = weightRows(n, c, g.transB)
		return g, nil
	},
	"MatMul": func(n *node, _ int64, c constants) (operator, error) {
		return &gemm{alpha: 1, matmul: true, hint: weightRows(n, c, false)}, nil
	},
	"Softmax": buildSoftmax,
	"Flatten": buildFlatten,
	"Reshape": buildReshape,
	"Concat": func(n *node, _ int64, _ constants) (operator, error) {
		return &concat{axis: int(n.intAttr("axis", 0))}, nil
	},
	"BatchNormalization": buildBatchNorm,
	"ai.onnx.ml:TreeEnsembleRegressor": func(n *node, _ int64, _ constants) (operator, error) {
		return buildEnsemble(n)
	},
	"ai.onnx.ml:Scaler":          buildScaler,
	"ai.onnx.ml:Imputer":         buildImputer,
	"ai.onnx.ml:LinearRegressor": buildLinear,
}

// arity is how many inputs an operator takes, the first min of them
// required; operators not listed take exactly one.
var arity = map[string]struct{ min, max int }{
	"Dropout": {1, 3}, "Clip": {1, 3},
	"Add": {2, 2}, "Sub": {2, 2}, "Mul": {2, 2}, "Div": {2, 2}, "Pow": {2, 2}, "Max": {2, 2}, "Min": {2, 2},
	"Gemm": {2, 3}, "MatMul": {2, 2}, "Reshape": {2, 2}, "Concat": {1, 1 << 10}, "BatchNormalization": {5, 5},
}

// checkArity tells whether ins (-1 for an absent input) suit operator key.
func checkArity(key string, ins []int) error {
	a, ok := arity[key]
	if !ok {
		a.min, a.max = 1, 1
	}
	if len(ins) < a.min || len(ins) > a.max {
		if a.min == a.max {
			return fmt.Errorf("%d inputs, %s takes %d", len(ins), key, a.min)
		}
		return fmt.Errorf("%d inputs, %s takes %d to %d", len(ins), key, a.min, a.max)
	}
	for k := range a.min {
		if ins[k] < 0 {
			return fmt.Errorf("input %d of %s is required", k+1, key)
		}
	}
	return nil
}

// Operators lists the operators Load accepts, ai.onnx.ml ones prefixed
// with their domain.
func Operators() []string {
	ops := make([]string, 0, len(builders))
	for k := range builders {
		ops = append(ops, k)
	}
	slices.Sort(ops)
	return ops
}

func size(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

// rowsCols views a shape of rank 0 to 2 as a matrix, padding on the left
// as broadcasting does.
func rowsCols(dims []int) (int, int) {
	switch len(dims) {
	case 0:
		return 1, 1
	case 1:
		return 1, dims[0]
	}
	return dims[0], dims[1]
}

// unary applies fn to every element.
type unary struct{ fn func(float64) float64 }

func unaryOf(fn func(float64) float64) func(*node, int64, constants) (operator, error) {
	return func(*node, int64, constants) (operator, error) { return unary{fn: fn}, nil }
}

func (u unary) setup(in [][]int) ([]int, error) { return in[0], nil }

func (u unary) eval(in [][]float64, out []float64) {
	for i, x := range in[0] {
		out[i] = u.fn(x)
	}
}

func buildCast(n *node, _ int64, _ constants) (operator, error) {
	switch to := n.intAttr("to", 0); to {
	case typeFloat:
		return unary{fn: func(x float64) float64 { return float64(float32(x)) }}, nil
	case typeDouble:
		return unary{fn: func(x float64) float64 { return x }}, nil
	default:
		return nil, fmt.Errorf("%w: Cast to data type %d (float and double are supported)", ErrUnsupported, to)
	}
}

// buildClip reads the bounds from constant inputs (opset 11 on) or from
// attributes (before).
func buildClip(n *node, _ int64, c constants) (operator, error) {
	lo, hi := n.floatAttr("min", math.Inf(-1)), n.floatAttr("max", math.Inf(1))
	for k, bound := range []*float64{&lo, &hi} {
		if len(n.inputs) <= k+1 || n.inputs[k+1] == "" {
			continue
		}
		t := c(n.inputs[k+1])
		if t == nil || len(t.data) != 1 {
			return nil, fmt.Errorf("%w: Clip bound %q is not a constant scalar", ErrUnsupported, n.inputs[k+1])
		}
		*bound = t.data[0]
	}
	return unary{fn: func(x float64) float64 { return min(max(x, lo), hi) }}, nil
}

// pairwise applies fn element-wise with numpy broadcasting.
type pairwise struct {
	fn               func(a, b float64) float64
	ar, ac, br, bc   int // the inputs' shapes as matrices
	outRows, outCols int
}

func binaryOf(fn func(a, b float64) float64) func(*node, int64, constants) (operator, error) {
	return func(*node, int64, constants) (operator, error) { return &pairwise{fn: fn}, nil }
}

func (o *pairwise) setup(in [][]int) ([]int, error) {
	out, err := broadcast(in[0], in[1])
	if err != nil {
		return nil, err
	}
	o.ar, o.ac = rowsCols(in[0])
	o.br, o.bc = rowsCols(in[1])
	o.outRows, o.outCols = rowsCols(out)
	return out, nil
}

// broadcast returns the shape a and b broadcast to.
func broadcast(a, b []int) ([]int, error) {
	rank := max(len(a), len(b))
	out := make([]int, rank)
	for i := 1; i <= rank; i++ {
		x, y := 1, 1
		if i <= len(a) {
			x = a[len(a)-i]
		}
		if i <= len(b) {
			y = b[len(b)-i]
		}
		switch {
		case x == y || y == 1:
			out[rank-i] = x
		case x == 1:
			out[rank-i] = y
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}

func (o *pairwise) eval(in [][]float64, out []float64) {
	a, b := in[0], in[1]
	for i := range o.outRows {
		ra, rb := (i%o.ar)*o.ac, (i%o.br)*o.bc
		row := out[i*o.outCols : (i+1)*o.outCols]
		for j := range row {
			row[j] = o.fn(a[ra+j%o.ac], b[rb+j%o.bc])
		}
	}
}

// gemm is Gemm (alpha·A·B + beta·C, A and B optionally transposed) and
// MatMul (A·B, either of them possibly a vector).
type gemm struct {
	alpha, beta    float64
	transA, transB bool
	matmul         bool
	m, k, n        int
	cr, cc         int  // C's shape as a matrix
	hasC           bool // Gemm's C is given
	hint           int  // widthHint
}

func (g *gemm) widthHint() int { return g.hint }

// weightRows is how wide the first input of a Gemm or MatMul must be when
// its second is a constant matrix (transposed or not), else 0.
func weightRows(n *node, c constants, transposed bool) int {
	if len(n.inputs) < 2 {
		return 0
	}
	t := c(n.inputs[1])
	if t == nil || len(t.dims) != 2 {
		return 0
	}
	if transposed {
		return t.dims[1]
	}
	return t.dims[0]
}

func (g *gemm) setup(in [][]int) ([]int, error) {
	a, b := in[0], in[1] // present: checkArity
	if g.matmul {
		if len(a) == 0 || len(a) > 2 || len(b) == 0 || len(b) > 2 {
			return nil, fmt.Errorf("MatMul of shapes %v and %v: ranks 1 and 2 are supported", a, b)
		}
		var out []int
		g.m, g.k = rowsCols(a)
		if len(a) == 2 {
			out = append(out, g.m)
		}
		if b[0] != g.k {
			return nil, fmt.Errorf("MatMul of shapes %v and %v", a, b)
		}
		g.n = 1
		if len(b) == 2 {
			g.n = b[1]
			out = append(out, g.n)
		}
		return out, nil
	}
	if len(a) != 2 || len(b) != 2 {
		return nil, fmt.Errorf("operator Gemm of shapes %v and %v: both must be matrices", a, b)
	}
	g.m, g.k = a[0], a[1]
	if g.transA {
		g.m, g.k = g.k, g.m
	}
	kb, n := b[0], b[1]
	if g.transB {
		kb, n = n, kb
	}
	if kb != g.k {
		return nil, fmt.Errorf("operator Gemm of shapes %v and %v (transA %v, transB %v)", a, b, g.transA, g.transB)
	}
	g.n = n
	if len(in) > 2 && in[2] != nil {
		if len(in[2]) > 2 {
			return nil, fmt.Errorf("operator Gemm C of shape %v", in[2])
		}
		if out, err := broadcast([]int{g.m, g.n}, in[2]); err != nil || !slices.Equal(out, []int{g.m, g.n}) {
			return nil, fmt.Errorf("operator Gemm C of shape %v does not broadcast to [%d %d]", in[2], g.m, g.n)
		}
		g.hasC = true
		g.cr, g.cc = rowsCols(in[2])
	}
	return []int{g.m, g.n}, nil
}

func (g *gemm) eval(in [][]float64, out []float64) {
	a, b := in[0], in[1]
	for i := range g.m {
		for j := range g.n {
			s := 0.0
			for p := range g.k {
				var x, y float64
				if g.transA {
					x = a[p*g.m+i]
				} else {
					x = a[i*g.k+p]
				}
				if g.transB {
					y = b[j*g.k+p]
				} else {
					y = b[p*g.n+j]
				}
				s += x * y
			}
			s *= g.alpha
			if g.hasC {
				s += g.beta * in[2][(i%g.cr)*g.cc+j%g.cc]
			}
			out[i*g.n+j] = s
		}
	}
}

// softmax normalises along the last axis.
type softmax struct {
	axis int
	cols int
}

func buildSoftmax(n *node, opset int64, _ constants) (operator, error) {
	def := int64(-1)
	if opset < 13 {
		def = 1 // before opset 13 the input is coerced to 2-D at axis
	}
	return &softmax{axis: int(n.intAttr("axis", def))}, nil
}

// lastAxis checks that op works on the last axis of shape.
func lastAxis(op string, axis int, shape []int) error {
	r := len(shape)
	if axis < 0 {
		axis += r
	}
	if r == 0 || axis != r-1 {
		return fmt.Errorf("%w: %s on axis %d of shape %v (the last axis is supported)", ErrUnsupported, op, axis, shape)
	}
	return nil
}

func (s *softmax) setup(in [][]int) ([]int, error) {
	if err := lastAxis("Softmax", s.axis, in[0]); err != nil {
		return nil, err
	}
	_, s.cols = rowsCols(in[0])
	return in[0], nil
}

func (s *softmax) eval(in [][]float64, out []float64) {
	x := in[0]
	for r := 0; r < len(x); r += s.cols {
		row, o := x[r:r+s.cols], out[r:r+s.cols]
		hi := math.Inf(-1)
		for _, v := range row {
			hi = max(hi, v)
		}
		sum := 0.0
		for j, v := range row {
			o[j] = math.Exp(v - hi)
			sum += o[j]
		}
		for j := range o {
			o[j] /= sum
		}
	}
}

// reshape gives its input a new shape: Flatten and Reshape.
type reshape struct {
	to func(in []int) ([]int, error)
}

func (r *reshape) setup(in [][]int) ([]int, error) {
	out, err := r.to(in[0])
	if err != nil {
		return nil, err
	}
	if size(out) != size(in[0]) {
		return nil, fmt.Errorf("shape %v cannot become %v", in[0], out)
	}
	return out, nil
}

func (r *reshape) eval(in [][]float64, out []float64) { copy(out, in[0]) }

func buildFlatten(n *node, _ int64, _ constants) (operator, error) {
	axis := int(n.intAttr("axis", 1))
	return &reshape{to: func(in []int) ([]int, error) {
		ax := axis
		if ax < 0 {
			ax += len(in)
		}
		if ax < 0 || ax > len(in) {
			return nil, fmt.Errorf("operator Flatten axis %d of shape %v", axis, in)
		}
		return []int{size(in[:ax]), size(in[ax:])}, nil
	}}, nil
}

func buildReshape(n *node, _ int64, c constants) (operator, error) {
	if len(n.inputs) < 2 {
		return nil, fmt.Errorf("operator Reshape without a shape input")
	}
	t := c(n.inputs[1])
	if t == nil {
		return nil, fmt.Errorf("%w: Reshape to a computed shape (%q is not a constant)", ErrUnsupported, n.inputs[1])
	}
	want := t.data
	if n.intAttr("allowzero", 0) != 0 && slices.Contains(want, 0) {
		return nil, fmt.Errorf("%w: Reshape to a zero dimension (allowzero)", ErrUnsupported)
	}
	return &reshape{to: func(in []int) ([]int, error) {
		out := make([]int, len(want))
		infer := -1
		known := 1
		for i, d := range want {
			switch {
			case d == 0 && i < len(in):
				out[i] = in[i]
			case d == -1 && infer < 0:
				infer = i
				continue
			case d > 0 && d <= maxValues:
				out[i] = int(d)
			default:
				return nil, fmt.Errorf("operator Reshape of %v to %v", in, want)
			}
			known *= out[i]
		}
		if infer >= 0 {
			if known == 0 || size(in)%known != 0 {
				return nil, fmt.Errorf("operator Reshape of %v to %v", in, want)
			}
			out[infer] = size(in) / known
		}
		return out, nil
	}}, nil
}

// concat joins its inputs along axis.
type concat struct {
	axis  int
	rows  int
	width []int // per input: values per row
}

func (c *concat) setup(in [][]int) ([]int, error) {
	if err := lastAxis("Concat", c.axis, in[0]); err != nil {
		return nil, err
	}
	r := len(in[0])
	ax := r - 1
	out := slices.Clone(in[0])
	out[ax] = 0
	c.rows, _ = rowsCols(in[0])
	c.width = c.width[:0]
	for _, s := range in {
		if len(s) != r || (r == 2 && s[0] != in[0][0]) {
			return nil, fmt.Errorf("operator Concat of shapes %v and %v", in[0], s)
		}
		out[ax] += s[ax]
		c.width = append(c.width, s[ax])
	}
	return out, nil
}

func (c *concat) eval(in [][]float64, out []float64) {
	o := 0
	for r := range c.rows {
		for k, x := range in {
			w := c.width[k]
			o += copy(out[o:], x[r*w:(r+1)*w])
		}
	}
}

// perColumn is an affine map per column of a [N, C] or [C] input, y =
// x·mul[c] + add[c]: BatchNormalization in inference mode and the
// ai.onnx.ml Scaler. Imputer sets replace for the value it replaces.
type perColumn struct {
	mul, add []float64 // length 1 (every column) or C
	impute   bool      // replace x == replaced (NaN: any NaN) by add[c]
	replaced float64
	cols     int
}

func (p *perColumn) widthHint() int {
	if n := max(len(p.add), len(p.mul)); n > 1 {
		return n
	}
	return 0 // one value for every column: any width
}

func (p *perColumn) setup(in [][]int) ([]int, error) {
	if len(in[0]) == 0 || len(in[0]) > 2 {
		return nil, fmt.Errorf("input of shape %v, want [N, C]", in[0])
	}
	_, p.cols = rowsCols(in[0])
	for _, v := range [][]float64{p.mul, p.add} {
		if len(v) != 0 && len(v) != 1 && len(v) != p.cols {
			return nil, fmt.Errorf("%d per-column values for %d columns", len(v), p.cols)
		}
	}
	return in[0], nil
}

func at(v []float64, c int, def float64) float64 {
	switch len(v) {
	case 0:
		return def
	case 1:
		return v[0]
	}
	return v[c]
}

func (p *perColumn) eval(in [][]float64, out []float64) {
	for i, x := range in[0] {
		c := i % p.cols
		if p.impute {
			if x == p.replaced || (math.IsNaN(p.replaced) && math.IsNaN(x)) {
				x = at(p.add, c, 0)
			}
			out[i] = x
			continue
		}
		out[i] = x*at(p.mul, c, 1) + at(p.add, c, 0)
	}
}

// buildBatchNorm folds scale, bias, mean and variance (constants) into a
// per-column affine map.
func buildBatchNorm(n *node, _ int64, c constants) (operator, error) {
	if len(n.outputs) > 1 || n.intAttr("training_mode", 0) != 0 {
		return nil, fmt.Errorf("%w: BatchNormalization in training mode", ErrUnsupported)
	}
	if len(n.inputs) != 5 {
		return nil, fmt.Errorf("BatchNormalization with %d inputs, want 5", len(n.inputs))
	}
	var p [4][]float64
	for k, name := range n.inputs[1:] {
		t := c(name)
		if t == nil {
			return nil, fmt.Errorf("%w: BatchNormalization input %q is not a constant", ErrUnsupported, name)
		}
		p[k] = t.data
	}
	scale, bias, mean, variance := p[0], p[1], p[2], p[3]
	if len(bias) != len(scale) || len(mean) != len(scale) || len(variance) != len(scale) {
		return nil, fmt.Errorf("BatchNormalization parameters of lengths %d, %d, %d, %d", len(scale), len(bias), len(mean), len(variance))
	}
	eps := n.floatAttr("epsilon", 1e-5)
	pc := &perColumn{mul: make([]float64, len(scale)), add: make([]float64, len(scale))}
	for i := range scale {
		pc.mul[i] = scale[i] / math.Sqrt(variance[i]+eps)
		pc.add[i] = bias[i] - mean[i]*pc.mul[i]
	}
	return &bnOp{pc}, nil
}

// bnOp is BatchNormalization: its parameters are inputs of the node, which
// the folded map does not read at evaluation time.
type bnOp struct{ *perColumn }

func (b *bnOp) setup(in [][]int) ([]int, error) { return b.perColumn.setup(in[:1]) }

func buildScaler(n *node, _ int64, _ constants) (operator, error) {
	offset, scale := n.floats["offset"], n.floats["scale"]
	cols := max(len(offset), len(scale), 1)
	for _, v := range [][]float32{offset, scale} {
		if len(v) > 1 && len(v) != cols {
			return nil, fmt.Errorf("operator Scaler: %d offsets, %d scales", len(offset), len(scale))
		}
	}
	// (x - offset) · scale = x·scale - offset·scale
	pc := &perColumn{mul: make([]float64, cols), add: make([]float64, cols)}
	for i := range cols {
		pc.mul[i] = 1
		if len(scale) > 0 {
			pc.mul[i] = float64(scale[min(i, len(scale)-1)])
		}
		if len(offset) > 0 {
			pc.add[i] = -float64(offset[min(i, len(offset)-1)]) * pc.mul[i]
		}
	}
	return pc, nil
}

func buildImputer(n *node, _ int64, _ constants) (operator, error) {
	if len(n.ints["imputed_value_int64s"]) > 0 {
		return nil, fmt.Errorf("%w: Imputer of int64 values", ErrUnsupported)
	}
	vals := n.floats["imputed_value_floats"]
	if len(vals) == 0 {
		return nil, fmt.Errorf("operator Imputer without imputed_value_floats")
	}
	pc := &perColumn{impute: true, replaced: n.floatAttr("replaced_value_float", 0)}
	for _, v := range vals {
		pc.add = append(pc.add, float64(v))
	}
	return pc, nil
}

// linear is the ai.onnx.ml LinearRegressor: [N, C] → [N, targets].
type linear struct {
	coef, intercept []float64
	targets, cols   int
}

func (l *linear) widthHint() int { return len(l.coef) / l.targets }

func buildLinear(n *node, _ int64, _ constants) (operator, error) {
	if pt := n.str["post_transform"]; pt != "" && pt != "NONE" {
		return nil, fmt.Errorf("%w: LinearRegressor post_transform %s", ErrUnsupported, pt)
	}
	l := &linear{targets: int(n.intAttr("targets", 1))}
	for _, v := range n.floats["coefficients"] {
		l.coef = append(l.coef, float64(v))
	}
	for _, v := range n.floats["intercepts"] {
		l.intercept = append(l.intercept, float64(v))
	}
	if l.targets < 1 || len(l.coef) == 0 || len(l.coef)%l.targets != 0 {
		return nil, fmt.Errorf("LinearRegressor: %d coefficients for %d targets", len(l.coef), l.targets)
	}
	if len(l.intercept) != 0 && len(l.intercept) != l.targets {
		return nil, fmt.Errorf("LinearRegressor: %d intercepts for %d targets", len(l.intercept), l.targets)
	}
	return l, nil
}

func (l *linear) setup(in [][]int) ([]int, error) {
	rows, cols := rowsCols(in[0])
	if len(in[0]) != 2 || cols*l.targets != len(l.coef) {
		return nil, fmt.Errorf("input of shape %v for %d coefficients and %d targets", in[0], len(l.coef), l.targets)
	}
	l.cols = cols
	return []int{rows, l.targets}, nil
}

func (l *linear) eval(in [][]float64, out []float64) {
	x := in[0]
	for r := 0; r*l.cols < len(x); r++ {
		row := x[r*l.cols : (r+1)*l.cols]
		for t := range l.targets {
			s := at(l.intercept, t, 0)
			for c, v := range row {
				s += v * l.coef[t*l.cols+c]
			}
			out[r*l.targets+t] = s
		}
	}
}
