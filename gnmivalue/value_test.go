//lint:file-ignore SA1019 these tests build the deprecated float_val and decimal_val that older targets still send, to check they are typed.

package gnmivalue

import (
	"errors"
	"testing"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/netfeat/netfeat/schema"
)

type leaf struct {
	path string
	o    schema.Observation
	ok   bool
}

func decodeLeaves(t *testing.T, v *gpb.TypedValue) ([]leaf, error) {
	t.Helper()
	var got []leaf
	dst := []byte("a/b")
	dst, err := Decode(dst, v, func(p []byte, o schema.Observation, ok bool) {
		got = append(got, leaf{string(p), o, ok})
	})
	if string(dst) != "a/b" {
		t.Fatalf("Decode returned dst %q, want it at its original length", dst)
	}
	return got, err
}

func TestDecodeScalars(t *testing.T) {
	anyV := &anypb.Any{TypeUrl: "type.googleapis.com/x", Value: []byte{7, 8}}
	tests := []struct {
		name string
		v    *gpb.TypedValue
		want schema.Observation
	}{
		{"uint", &gpb.TypedValue{Value: &gpb.TypedValue_UintVal{UintVal: 1 << 63}}, schema.Observation{Kind: schema.KindCounter64, Uint: 1 << 63}},
		// A signed leaf keeps its kind when it is not negative.
		{"int non-negative", &gpb.TypedValue{Value: &gpb.TypedValue_IntVal{IntVal: 7}}, schema.Observation{Kind: schema.KindInteger, Int: 7}},
		{"int negative", &gpb.TypedValue{Value: &gpb.TypedValue_IntVal{IntVal: -3}}, schema.Observation{Kind: schema.KindInteger, Int: -3}},
		{"string enum", &gpb.TypedValue{Value: &gpb.TypedValue_StringVal{StringVal: "UP"}}, schema.Observation{Kind: schema.KindEnum, Str: "UP"}},
		{"string identityref", &gpb.TypedValue{Value: &gpb.TypedValue_StringVal{StringVal: "iana-if-type:ETHERNET_CSMACD"}}, schema.Observation{Kind: schema.KindEnum, Str: "ETHERNET_CSMACD"}},
		{"string", &gpb.TypedValue{Value: &gpb.TypedValue_StringVal{StringVal: "to core"}}, schema.Observation{Kind: schema.KindString, Str: "to core"}},
		// A number in a string_val stays a string: only JSON has RFC 7951
		// numeric strings.
		{"string number", &gpb.TypedValue{Value: &gpb.TypedValue_StringVal{StringVal: "12"}}, schema.Observation{Kind: schema.KindString, Str: "12"}},
		{"ascii", &gpb.TypedValue{Value: &gpb.TypedValue_AsciiVal{AsciiVal: "UP"}}, schema.Observation{Kind: schema.KindString, Str: "UP"}},
		{"bool true", &gpb.TypedValue{Value: &gpb.TypedValue_BoolVal{BoolVal: true}}, schema.Observation{Kind: schema.KindBool, Int: 1}},
		{"bool false", &gpb.TypedValue{Value: &gpb.TypedValue_BoolVal{}}, schema.Observation{Kind: schema.KindBool}},
		{"float", &gpb.TypedValue{Value: &gpb.TypedValue_FloatVal{FloatVal: 1.5}}, schema.Observation{Kind: schema.KindFloat, Float: 1.5}},
		{"double", &gpb.TypedValue{Value: &gpb.TypedValue_DoubleVal{DoubleVal: 2}}, schema.Observation{Kind: schema.KindFloat, Float: 2}},
		{"decimal", &gpb.TypedValue{Value: &gpb.TypedValue_DecimalVal{DecimalVal: &gpb.Decimal64{Digits: 12345, Precision: 2}}}, schema.Observation{Kind: schema.KindFloat, Float: 123.45}},
		{"bytes", &gpb.TypedValue{Value: &gpb.TypedValue_BytesVal{BytesVal: []byte{1, 2}}}, schema.Observation{Kind: schema.KindBytes, Str: "\x01\x02"}},
		{"proto bytes", &gpb.TypedValue{Value: &gpb.TypedValue_ProtoBytes{ProtoBytes: []byte{9}}}, schema.Observation{Kind: schema.KindBytes, Str: "\x09"}},
		{"any", &gpb.TypedValue{Value: &gpb.TypedValue_AnyVal{AnyVal: anyV}}, schema.Observation{Kind: schema.KindBytes, Str: "\x07\x08"}},
		{"leaf-list", &gpb.TypedValue{Value: &gpb.TypedValue_LeaflistVal{LeaflistVal: &gpb.ScalarArray{Element: []*gpb.TypedValue{
			{Value: &gpb.TypedValue_StringVal{StringVal: "a"}}, {Value: &gpb.TypedValue_UintVal{UintVal: 2}}, {Value: &gpb.TypedValue_IntVal{IntVal: -1}},
			{Value: &gpb.TypedValue_BoolVal{BoolVal: true}}, {Value: &gpb.TypedValue_DoubleVal{DoubleVal: 0.5}}}}}},
			schema.Observation{Kind: schema.KindJSON, Str: `["a",2,-1,true,0.5]`}},
		{"json scalar", &gpb.TypedValue{Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: []byte(`"42"`)}}, schema.Observation{Kind: schema.KindCounter64, Uint: 42}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeLeaves(t, tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] != (leaf{"a/b", tt.want, true}) {
				t.Fatalf("leaves %+v, want one a/b %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeJSONTree(t *testing.T) {
	got, err := decodeLeaves(t, &gpb.TypedValue{Value: &gpb.TypedValue_JsonVal{JsonVal: []byte(`{"m:c":{"x":-1},"s":"UP"}`)}})
	if err != nil {
		t.Fatal(err)
	}
	want := []leaf{
		{"a/b/c/x", schema.Observation{Kind: schema.KindInteger, Int: -1}, true},
		{"a/b/s", schema.Observation{Kind: schema.KindEnum, Str: "UP"}, true},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("leaves %+v, want %+v", got, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, v := range []*gpb.TypedValue{nil, {}} {
		got, err := decodeLeaves(t, v)
		if !errors.Is(err, ErrNoValue) || len(got) != 0 {
			t.Fatalf("Decode(%v): leaves %+v, error %v; want none and ErrNoValue", v, got, err)
		}
	}
	got, err := decodeLeaves(t, &gpb.TypedValue{Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: []byte(`{"a":`)}})
	if err == nil || errors.Is(err, ErrNoValue) || len(got) != 0 {
		t.Fatalf("broken JSON: leaves %+v, error %v; want none and a JSON error", got, err)
	}
}
