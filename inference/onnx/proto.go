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

// varints appends a repeated integer field, packed (v) or not (u).
func varints(dst []int64, typ protowire.Type, v []byte, u uint64) ([]int64, error) {
	if typ != protowire.BytesType {
		return append(dst, int64(u)), nil
	}
	for len(v) > 0 {
		x, k := protowire.ConsumeVarint(v)
		if k < 0 {
			return nil, protowire.ParseError(k)
		}
		dst = append(dst, int64(x))
		v = v[k:]
	}
	return dst, nil
}

// floats32 appends a repeated float field, packed (v) or not (u).
func floats32(dst []float64, typ protowire.Type, v []byte, u uint64) ([]float64, error) {
	if typ != protowire.BytesType {
		return append(dst, float64(math.Float32frombits(uint32(u)))), nil
	}
	if len(v)%4 != 0 {
		return nil, errors.New("packed floats: length not a multiple of 4")
	}
	for ; len(v) > 0; v = v[4:] {
		dst = append(dst, float64(math.Float32frombits(binary.LittleEndian.Uint32(v))))
	}
	return dst, nil
}

// floats64 appends a repeated double field, packed (v) or not (u).
func floats64(dst []float64, typ protowire.Type, v []byte, u uint64) ([]float64, error) {
	if typ != protowire.BytesType {
		return append(dst, math.Float64frombits(u)), nil
	}
	if len(v)%8 != 0 {
		return nil, errors.New("packed doubles: length not a multiple of 8")
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

// parseTensor decodes a TensorProto.
func parseTensor(b []byte) (*tensor, error) {
	t := &tensor{}
	var dims []int64
	var raw []byte
	var hasRaw, external bool
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, u uint64) error {
		var err error
		switch num {
		case 1:
			dims, err = varints(dims, typ, v, u)
		case 2:
			t.dtype = int(u)
		case 4:
			t.data, err = floats32(t.data, typ, v, u)
		case 5, 7: // int32_data, int64_data
			var xs []int64
			xs, err = varints(nil, typ, v, u)
			for _, x := range xs {
				if num == 5 {
					x = int64(int32(x))
				}
				t.data = append(t.data, float64(x))
			}
		case 8:
			t.name = string(v)
		case 9:
			raw, hasRaw = v, true
		case 10:
			t.data, err = floats64(t.data, typ, v, u)
		case 13:
			external = true
		case 14:
			external = external || u == 1
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.name, err)
	}
	if external {
		return nil, fmt.Errorf("%w: tensor %q keeps its data in an external file", ErrUnsupported, t.name)
	}
	size := 1
	for _, d := range dims {
		if d < 0 || d > 1<<30 {
			return nil, fmt.Errorf("tensor %q: dimension %d", t.name, d)
		}
		t.dims = append(t.dims, int(d))
		size *= int(d)
		if size > maxValues {
			return nil, fmt.Errorf("tensor %q: %v elements is too large", t.name, dims)
		}
	}
	if hasRaw {
		if t.data, err = rawData(t.dtype, raw); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.name, err)
		}
	}
	switch t.dtype {
	case typeFloat, typeDouble, typeInt32, typeInt64:
	default:
		return nil, fmt.Errorf("%w: tensor %q of data type %d (float, double, int32 and int64 are supported)", ErrUnsupported, t.name, t.dtype)
	}
	if len(t.data) != size {
		return nil, fmt.Errorf("tensor %q: %d values for dims %v", t.name, len(t.data), t.dims)
	}
	return t, nil
}

// rawData decodes raw_data, little-endian as onnx.proto defines it.
func rawData(dtype int, raw []byte) ([]float64, error) {
	width := map[int]int{typeFloat: 4, typeInt32: 4, typeInt64: 8, typeDouble: 8}[dtype]
	if width == 0 {
		return nil, fmt.Errorf("%w: raw data of type %d", ErrUnsupported, dtype)
	}
	if len(raw)%width != 0 {
		return nil, fmt.Errorf("raw data of %d bytes for %d-byte elements", len(raw), width)
	}
	out := make([]float64, 0, len(raw)/width)
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
	n := &node{ints: map[string][]int64{}, floats: map[string][]float32{}, strings: map[string][]string{},
		str: map[string]string{}, i: map[string]int64{}, f: map[string]float32{}, tensors: map[string]*tensor{}}
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
			xs, err = floats32(nil, typ, v, u)
			for _, x := range xs {
				floats = append(floats, float32(x))
			}
		case 8: // ints: packed or not
			ints, err = varints(ints, typ, v, u)
		case 9:
			strs = append(strs, string(v))
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("attribute %s: %w", name, err)
	}
	n.ints[name], n.floats[name], n.strings[name] = ints, floats, strs
	if hasI {
		n.i[name] = i
	}
	if hasS {
		n.str[name] = s
	}
	if hasF {
		n.f[name] = f
	}
	if t != nil {
		n.tensors[name] = t
	}
	return nil
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
