package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The parts of onnx.proto this package reads, decoded field by field with
// protowire: ModelProto, GraphProto, NodeProto, AttributeProto,
// ValueInfoProto and TensorProto.

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

// varints appends a repeated integer field, packed (v) or not (u), to
// at most limit values.
func varints(dst []int64, typ protowire.Type, v []byte, u uint64, limit int) ([]int64, error) {
	if typ != protowire.BytesType {
		v = protowire.AppendVarint(nil, u)
	}
	for len(v) > 0 {
		if len(dst) >= limit {
			return nil, fmt.Errorf("more than %d values", limit)
		}
		x, k := protowire.ConsumeVarint(v)
		if k < 0 {
			return nil, protowire.ParseError(k)
		}
		dst = append(dst, int64(x))
		v = v[k:]
	}
	return dst, nil
}

// floats32 appends a repeated float field, packed (v) or not (u), to at
// most limit values.
func floats32(dst []float64, typ protowire.Type, v []byte, u uint64, limit int) ([]float64, error) {
	if typ != protowire.BytesType {
		v = binary.LittleEndian.AppendUint32(nil, uint32(u))
	}
	if len(v)%4 != 0 {
		return nil, errors.New("packed floats: length not a multiple of 4")
	}
	if len(dst)+len(v)/4 > limit {
		return nil, fmt.Errorf("more than %d values", limit)
	}
	for ; len(v) > 0; v = v[4:] {
		dst = append(dst, float64(math.Float32frombits(binary.LittleEndian.Uint32(v))))
	}
	return dst, nil
}

// floats64 appends a repeated double field, packed (v) or not (u), to at
// most limit values.
func floats64(dst []float64, typ protowire.Type, v []byte, u uint64, limit int) ([]float64, error) {
	if typ != protowire.BytesType {
		v = binary.LittleEndian.AppendUint64(nil, u)
	}
	if len(v)%8 != 0 {
		return nil, errors.New("packed doubles: length not a multiple of 8")
	}
	if len(dst)+len(v)/8 > limit {
		return nil, fmt.Errorf("more than %d values", limit)
	}
	for ; len(v) > 0; v = v[8:] {
		dst = append(dst, math.Float64frombits(binary.LittleEndian.Uint64(v)))
	}
	return dst, nil
}

// TensorProto data types this package reads.
const (
	typeFloat  = 1
	typeInt32  = 6
	typeInt64  = 7
	typeDouble = 11
)

// maxValues bounds a model's constants and, separately, its computed
// values for one row: 16 Mi float64 values, 128 MiB.
const maxValues = 1 << 24

// tensor is a constant: an initializer or a Constant node's value. Every
// element type is held as float64 (int64 shapes and axes are exact).
type tensor struct {
	name  string
	dims  []int
	data  []float64
	dtype int
}

// parseTensor decodes a TensorProto: its shape first, so that the data,
// checked against it as it is decoded, cannot grow past maxValues.
func parseTensor(b []byte) (*tensor, error) {
	t := &tensor{dims: []int{}}
	var raw []byte
	var hasRaw, external bool
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, u uint64) error {
		switch num {
		case 1:
			dims, err := varints(nil, typ, v, u, 8)
			for _, d := range dims {
				t.dims = append(t.dims, int(min(max(d, -1), maxValues+1)))
			}
			return err
		case 2:
			t.dtype = int(u)
		case 8:
			t.name = string(v)
		case 9:
			raw, hasRaw = v, true
		case 13:
			external = true
		case 14:
			external = external || u == 1
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.name, err)
	}
	if external {
		return nil, fmt.Errorf("%w: tensor %q keeps its data in an external file", ErrUnsupported, t.name)
	}
	switch t.dtype {
	case typeFloat, typeDouble, typeInt32, typeInt64:
	default:
		return nil, fmt.Errorf("%w: tensor %q of data type %d (float, double, int32 and int64 are supported)", ErrUnsupported, t.name, t.dtype)
	}
	size := 1
	for _, d := range t.dims {
		if d < 0 || d > maxValues {
			return nil, fmt.Errorf("tensor %q: dimension %d", t.name, d)
		}
		if size *= d; size > maxValues {
			return nil, fmt.Errorf("tensor %q: %v is more than %d values", t.name, t.dims, maxValues)
		}
	}
	if hasRaw {
		t.data, err = rawData(t.dtype, raw, size)
	} else {
		t.data = make([]float64, 0, size)
		err = fields(b, func(num protowire.Number, typ protowire.Type, v []byte, u uint64) error {
			var err error
			switch num {
			case 4:
				t.data, err = floats32(t.data, typ, v, u, size)
			case 5, 7: // int32_data, int64_data
				var xs []int64
				xs, err = varints(nil, typ, v, u, size-len(t.data))
				for _, x := range xs {
					if num == 5 {
						x = int64(int32(x))
					}
					t.data = append(t.data, float64(x))
				}
			case 10:
				t.data, err = floats64(t.data, typ, v, u, size)
			}
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w for dims %v", t.name, err, t.dims)
	}
	if len(t.data) != size {
		return nil, fmt.Errorf("tensor %q: %d values for dims %v", t.name, len(t.data), t.dims)
	}
	return t, nil
}

// rawData decodes raw_data, little-endian as onnx.proto defines it: size
// elements.
func rawData(dtype int, raw []byte, size int) ([]float64, error) {
	width := map[int]int{typeFloat: 4, typeInt32: 4, typeInt64: 8, typeDouble: 8}[dtype]
	if len(raw) != size*width {
		return nil, fmt.Errorf("%d bytes of raw data, want %d", len(raw), size*width)
	}
	out := make([]float64, 0, size)
	for ; len(raw) > 0; raw = raw[width:] {
		switch dtype {
		case typeFloat:
			out = append(out, float64(math.Float32frombits(binary.LittleEndian.Uint32(raw))))
		case typeInt32:
			out = append(out, float64(int32(binary.LittleEndian.Uint32(raw))))
		case typeInt64:
			out = append(out, float64(int64(binary.LittleEndian.Uint64(raw))))
		case typeDouble:
			out = append(out, math.Float64frombits(binary.LittleEndian.Uint64(raw)))
		}
	}
	return out, nil
}

// valueInfo is a graph input or output: its name and shape, -1 for a
// symbolic or absent dimension; dims is nil when no shape is given.
type valueInfo struct {
	name string
	dims []int
}

func parseValueInfo(b []byte) (valueInfo, error) {
	var vi valueInfo
	err := fields(b, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
		switch num {
		case 1:
			vi.name = string(v)
		case 2: // TypeProto
			return fields(v, func(num protowire.Number, _ protowire.Type, tt []byte, _ uint64) error {
				if num != 1 { // tensor_type
					return nil
				}
				return fields(tt, func(num protowire.Number, _ protowire.Type, shape []byte, _ uint64) error {
					if num != 2 { // shape
						return nil
					}
					vi.dims = []int{}
					return fields(shape, func(num protowire.Number, _ protowire.Type, dim []byte, _ uint64) error {
						if num != 1 {
							return nil
						}
						d := -1
						err := fields(dim, func(num protowire.Number, _ protowire.Type, _ []byte, u uint64) error {
							if num == 1 { // dim_value
								d = int(u)
							}
							return nil
						})
						vi.dims = append(vi.dims, d)
						return err
					})
				})
			})
		}
		return nil
	})
	return vi, err
}

// node is a NodeProto with its attributes by name.
type node struct {
	name    string
	opType  string
	domain  string
	inputs  []string
	outputs []string
	ints    map[string][]int64
	floats  map[string][]float32
	strings map[string][]string
	str     map[string]string
	i       map[string]int64
	f       map[string]float32
	tensors map[string]*tensor
}

func parseNode(b []byte) (*node, error) {
	n := &node{} // attribute maps are made as attributes come
	err := fields(b, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
		switch num {
		case 1:
			n.inputs = append(n.inputs, string(v))
		case 2:
			n.outputs = append(n.outputs, string(v))
		case 3:
			n.name = string(v)
		case 4:
			n.opType = string(v)
		case 5:
			return n.attribute(v)
		case 7:
			n.domain = string(v)
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
	var f float32
	var t *tensor
	var hasI, hasS, hasF bool
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, u uint64) error {
		var err error
		switch num {
		case 1:
			name = string(v)
		case 2:
			f, hasF = math.Float32frombits(uint32(u)), true
		case 3:
			i, hasI = int64(u), true
		case 4:
			s, hasS = string(v), true
		case 5:
			t, err = parseTensor(v)
		case 7: // floats: packed or not
			var xs []float64
			xs, err = floats32(nil, typ, v, u, maxValues-len(floats))
			for _, x := range xs {
				floats = append(floats, float32(x))
			}
		case 8: // ints: packed or not
			ints, err = varints(ints, typ, v, u, maxValues)
		case 9:
			strs = append(strs, string(v))
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("attribute %s: %w", name, err)
	}
	if ints != nil {
		put(&n.ints, name, ints)
	}
	if floats != nil {
		put(&n.floats, name, floats)
	}
	if strs != nil {
		put(&n.strings, name, strs)
	}
	if hasI {
		put(&n.i, name, i)
	}
	if hasS {
		put(&n.str, name, s)
	}
	if hasF {
		put(&n.f, name, f)
	}
	if t != nil {
		put(&n.tensors, name, t)
	}
	return nil
}

// put sets m[k], making m first if it is nil.
func put[V any](m *map[string]V, k string, v V) {
	if *m == nil {
		*m = map[string]V{}
	}
	(*m)[k] = v
}

// floatAttr returns the float attribute name, or def when absent.
func (n *node) floatAttr(name string, def float64) float64 {
	if v, ok := n.f[name]; ok {
		return float64(v)
	}
	return def
}

// intAttr returns the int attribute name, or def when absent.
func (n *node) intAttr(name string, def int64) int64 {
	if v, ok := n.i[name]; ok {
		return v
	}
	return def
}
