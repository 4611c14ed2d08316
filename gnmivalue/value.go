// Package gnmivalue types gNMI values: which schema.ValueKind each field
// of a TypedValue becomes and where its value is carried. The gNMI
// collector (its wire-format decoder and its reference decoder on the
// generated types) and the recording reader both type values with it, so
// that golden tests over recordings see the kinds the live collector
// emits.
//
// The rules, one function each so that a decoder reading the protobuf
// wire format itself applies them without building a TypedValue:
//
//	uint_val                      KindCounter64 (Uint)
//	int_val                       KindInteger (Int), whatever its sign
//	string_val                    yangjson.StringKind: KindEnum or KindString
//	ascii_val                     KindString
//	bool_val                      KindBool (Int 1 for true)
//	float_val, double_val         KindFloat
//	decimal_val                   KindFloat (digits / 10^precision)
//	bytes_val, proto_bytes, any   KindBytes (Str; for any, its value field)
//	leaflist_val                  KindJSON (Str: the elements as a JSON array)
//	json_val, json_ietf_val       one leaf each, by yangjson.Decode
package gnmivalue

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/netfeat/netfeat/schema"
	"github.com/netfeat/netfeat/yangjson"
)

// ErrNoValue is returned by Decode for a TypedValue that is nil or holds
// no value field it knows.
var ErrNoValue = errors.New("gNMI TypedValue without a value")

// Uint types a uint_val.
func Uint(u uint64) schema.Observation {
	return schema.Observation{Kind: schema.KindCounter64, Uint: u}
}

// Int types an int_val: a signed leaf stays KindInteger when it is not
// negative, so that its kind does not change with its value.
func Int(i int64) schema.Observation {
	return schema.Observation{Kind: schema.KindInteger, Int: i}
}

// String types a string_val by yangjson.StringKind: an OpenConfig
// enumeration or identityref is KindEnum without its module prefix.
func String(s string) schema.Observation {
	var o schema.Observation
	o.Kind, o.Str = yangjson.StringKind(s)
	return o
}

// ASCII types an ascii_val: always KindString.
func ASCII(s string) schema.Observation {
	return schema.Observation{Kind: schema.KindString, Str: s}
}

// Bool types a bool_val: Int is 1 for true.
func Bool(b bool) schema.Observation {
	o := schema.Observation{Kind: schema.KindBool}
	if b {
		o.Int = 1
	}
	return o
}

// Float types a double_val, or a float_val widened to float64.
func Float(f float64) schema.Observation {
	return schema.Observation{Kind: schema.KindFloat, Float: f}
}

// Decimal types a decimal_val (digits / 10^precision) as KindFloat.
func Decimal(digits int64, precision uint32) schema.Observation {
	return Float(float64(digits) / math.Pow10(int(precision)))
}

// Bytes types a bytes_val, a proto_bytes or the value of an any_val: the
// bytes are copied into Str.
func Bytes(b []byte) schema.Observation {
	return schema.Observation{Kind: schema.KindBytes, Str: string(b)}
}

// LeafList types a leaflist_val as a KindJSON array of its elements;
// an element that is not a string, integer, bool or float is written as
// its protobuf text.
func LeafList(l *gpb.ScalarArray) schema.Observation {
	vals := make([]any, 0, len(l.GetElement()))
	for _, e := range l.GetElement() {
		switch x := e.GetValue().(type) {
		case *gpb.TypedValue_StringVal:
			vals = append(vals, x.StringVal)
		case *gpb.TypedValue_UintVal:
			vals = append(vals, x.UintVal)
		case *gpb.TypedValue_IntVal:
			vals = append(vals, x.IntVal)
		case *gpb.TypedValue_BoolVal:
			vals = append(vals, x.BoolVal)
		case *gpb.TypedValue_DoubleVal:
			vals = append(vals, x.DoubleVal)
		case *gpb.TypedValue_FloatVal:
			//lint:ignore SA1019 float_val is deprecated for double_val, but older targets (IOS-XR 6.x, NX-OS 9.x) still send it.
			vals = append(vals, x.FloatVal)
		default:
			vals = append(vals, e.String())
		}
	}
	b, _ := json.Marshal(vals)
	return schema.Observation{Kind: schema.KindJSON, Str: string(b)}
}

// Decode calls leaf for each leaf of v below the path in dst: once with
// dst itself for a scalar, once per leaf for a JSON value
// (yangjson.Decode). It returns dst, possibly grown, with its original
// length. The error is ErrNoValue for a nil or empty v, or wraps the
// reason a JSON value does not parse; leaf is then not called.
func Decode(dst []byte, v *gpb.TypedValue, leaf yangjson.LeafFunc) ([]byte, error) {
	var o schema.Observation
	switch tv := v.GetValue().(type) {
	case *gpb.TypedValue_JsonIetfVal:
		return decodeJSON(dst, tv.JsonIetfVal, leaf)
	case *gpb.TypedValue_JsonVal:
		return decodeJSON(dst, tv.JsonVal, leaf)
	case *gpb.TypedValue_UintVal:
		o = Uint(tv.UintVal)
	case *gpb.TypedValue_IntVal:
		o = Int(tv.IntVal)
	case *gpb.TypedValue_StringVal:
		o = String(tv.StringVal)
	case *gpb.TypedValue_BoolVal:
		o = Bool(tv.BoolVal)
	case *gpb.TypedValue_FloatVal:
		//lint:ignore SA1019 float_val is deprecated for double_val, but older targets (IOS-XR 6.x, NX-OS 9.x) still send it.
		o = Float(float64(tv.FloatVal))
	case *gpb.TypedValue_DoubleVal:
		o = Float(tv.DoubleVal)
	case *gpb.TypedValue_DecimalVal:
		//lint:ignore SA1019 decimal_val is deprecated for double_val, but older targets still send it.
		o = Decimal(tv.DecimalVal.GetDigits(), tv.DecimalVal.GetPrecision())
	case *gpb.TypedValue_AsciiVal:
		o = ASCII(tv.AsciiVal)
	case *gpb.TypedValue_BytesVal:
		o = Bytes(tv.BytesVal)
	case *gpb.TypedValue_ProtoBytes:
		o = Bytes(tv.ProtoBytes)
	case *gpb.TypedValue_AnyVal:
		o = Bytes(tv.AnyVal.GetValue())
	case *gpb.TypedValue_LeaflistVal:
		o = LeafList(tv.LeaflistVal)
	default:
		return dst, ErrNoValue
	}
	leaf(dst, o, true)
	return dst, nil
}

func decodeJSON(dst, raw []byte, leaf yangjson.LeafFunc) ([]byte, error) {
	dst, err := yangjson.Decode(dst, raw, leaf)
	if err != nil {
		return dst, fmt.Errorf("json value: %w", err)
	}
	return dst, nil
}
