//lint:file-ignore SA1019 these tests build the deprecated encodings (Path.element, float_val, decimal_val, the error field) that older targets still send, to check the decoders read them.

package gnmi

import (
	"math/rand/v2"
	"reflect"
	"testing"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/netfeat/netfeat/schema"
)

// decodeBoth decodes n with the reference decoder (generated types) and
// with the wire decoder and returns both results.
func decodeBoth(t testing.TB, subs []*gpb.Path, n *gpb.Notification) (ref, wire []schema.Observation, refRej, wireRej map[string]int) {
	t.Helper()
	refRej, wireRej = map[string]int{}, map[string]int{}
	rd := newDecoder("r1", subs, func(r string) { refRej[r]++ })
	rd.notification(n, 42)
	raw, err := proto.Marshal(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: n}})
	if err != nil {
		t.Fatal(err)
	}
	wd := newDecoder("r1", subs, func(r string) { wireRej[r]++ })
	if kind, _ := wd.response(raw, 42); kind != respUpdate {
		t.Fatalf("response kind %d, want update", kind)
	}
	return rd.out, wd.out, refRej, wireRej
}

// randomNotification builds notifications that exercise prefixes with and
// without origins, module-qualified first elements, multi-key lists,
// escapes, deprecated string elements and every value type, plus broken
// paths and values.
func randomNotification(r *rand.Rand) *gpb.Notification {
	names := []string{"interfaces", "interface", "state", "counters", "in-octets", "Cisco-IOS-XE-interfaces-oper:interfaces", "", "a:b", "sys"}
	keyVals := []string{"Gi0/0/0/0", "a]b", `x\y`, "", "eth1/1"}
	origins := []string{"", "", "openconfig-interfaces", "Cisco-IOS-XR-infra-statsd-oper", "Bogus-Model", "openconfig"}
	elem := func() *gpb.PathElem {
		e := &gpb.PathElem{Name: names[r.IntN(len(names))]}
		for range r.IntN(3) {
			if e.Key == nil {
				e.Key = map[string]string{}
			}
			k := []string{"name", "id", "index", ""}[r.IntN(4)]
			e.Key[k] = keyVals[r.IntN(len(keyVals))]
		}
		return e
	}
	path := func(max int, origin bool) *gpb.Path {
		p := &gpb.Path{}
		if origin {
			p.Origin = origins[r.IntN(len(origins))]
		}
		if r.IntN(10) == 0 {
			for range r.IntN(max + 1) {
				p.Element = append(p.Element, names[r.IntN(len(names))])
			}
			return p
		}
		for range r.IntN(max + 1) {
			p.Elem = append(p.Elem, elem())
		}
		return p
	}
	anyV, _ := anypb.New(&gpb.Decimal64{Digits: 5})
	vals := []func() *gpb.TypedValue{
		func() *gpb.TypedValue { return &gpb.TypedValue{Value: &gpb.TypedValue_UintVal{UintVal: r.Uint64()}} },
		func() *gpb.TypedValue { return &gpb.TypedValue{Value: &gpb.TypedValue_IntVal{IntVal: -r.Int64()}} },
		func() *gpb.TypedValue {
			return &gpb.TypedValue{Value: &gpb.TypedValue_StringVal{StringVal: []string{"UP", "text", "iana-if-type:ETHERNET"}[r.IntN(3)]}}
		},
		func() *gpb.TypedValue {
			return &gpb.TypedValue{Value: &gpb.TypedValue_BoolVal{BoolVal: r.IntN(2) == 0}}
		},
		func() *gpb.TypedValue {
			return &gpb.TypedValue{Value: &gpb.TypedValue_DoubleVal{DoubleVal: r.Float64()}}
		},
		func() *gpb.TypedValue { return &gpb.TypedValue{Value: &gpb.TypedValue_FloatVal{FloatVal: r.Float32()}} },
		func() *gpb.TypedValue {
			return &gpb.TypedValue{Value: &gpb.TypedValue_DecimalVal{DecimalVal: &gpb.Decimal64{Digits: r.Int64N(1e6), Precision: uint32(r.IntN(4))}}}
		},
		func() *gpb.TypedValue {
			return &gpb.TypedValue{Value: &gpb.TypedValue_BytesVal{BytesVal: []byte{1, 2, 3}}}
		},
		func() *gpb.TypedValue { return &gpb.TypedValue{Value: &gpb.TypedValue_AsciiVal{AsciiVal: "ascii"}} },
		func() *gpb.TypedValue {
			return &gpb.TypedValue{Value: &gpb.TypedValue_ProtoBytes{ProtoBytes: []byte{9}}}
		},
		func() *gpb.TypedValue { return &gpb.TypedValue{Value: &gpb.TypedValue_AnyVal{AnyVal: anyV}} },
		func() *gpb.TypedValue {
			return &gpb.TypedValue{Value: &gpb.TypedValue_LeaflistVal{LeaflistVal: &gpb.ScalarArray{Element: []*gpb.TypedValue{
				{Value: &gpb.TypedValue_StringVal{StringVal: "a"}}, {Value: &gpb.TypedValue_UintVal{UintVal: 2}}}}}}
		},
		func() *gpb.TypedValue {
			return &gpb.TypedValue{Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: []byte(`{"openconfig-interfaces:counters":{"in-octets":"12"},"list":[{"name":"x","v":1}],"s":"UP"}`)}}
		},
		func() *gpb.TypedValue {
			return &gpb.TypedValue{Value: &gpb.TypedValue_JsonVal{JsonVal: []byte(`"42"`)}}
		},
		func() *gpb.TypedValue {
			return &gpb.TypedValue{Value: &gpb.TypedValue_JsonVal{JsonVal: []byte(`{"a":`)}}
		},
		func() *gpb.TypedValue { return &gpb.TypedValue{} },
		func() *gpb.TypedValue { return nil },
	}
	n := &gpb.Notification{Timestamp: r.Int64N(2e18), Prefix: path(4, true)}
	if r.IntN(4) == 0 {
		n.Prefix = nil
	}
	for range 1 + r.IntN(5) {
		n.Update = append(n.Update, &gpb.Update{Path: path(3, r.IntN(3) == 0), Val: vals[r.IntN(len(vals))]()})
	}
	return n
}

// TestWireMatchesReference checks, on random and recorded notifications,
// that the wire decoder produces exactly what the reference decoder on the
// generated types produces, rejections included.
func TestWireMatchesReference(t *testing.T) {
	subsets := [][]*gpb.Path{nil}
	for _, pl := range Platforms() {
		var ps []*gpb.Path
		for _, p := range PlatformPaths(pl) {
			ps = append(ps, mustPath(t, p))
		}
		subsets = append(subsets, ps)
	}
	r := rand.New(rand.NewPCG(1, 2))
	var cases []*gpb.Notification
	for range 5000 {
		cases = append(cases, randomNotification(r))
	}
	cases = append(cases, readResponses(t, "../../testdata/gnmi/telegraf-testcases/gnmi_issue_14044_responses.json")...)
	cases = append(cases, readResponses(t, "../../testdata/gnmi/telegraf-testcases/gnmi_issue_14833_responses.json")...)
	for i, n := range cases {
		subs := subsets[i%len(subsets)]
		ref, wire, refRej, wireRej := decodeBoth(t, subs, n)
		if len(ref) == 0 && len(wire) == 0 {
			ref, wire = nil, nil
		}
		if !reflect.DeepEqual(ref, wire) || !reflect.DeepEqual(refRej, wireRej) {
			t.Fatalf("case %d %v\nreference %+v rejects %v\nwire      %+v rejects %v", i, n, ref, refRej, wire, wireRej)
		}
	}
}

func TestWireResponseKinds(t *testing.T) {
	d := newDecoder("r1", nil, func(string) {})
	for _, tt := range []struct {
		resp *gpb.SubscribeResponse
		kind int
		msg  string
	}{
		{&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_SyncResponse{SyncResponse: true}}, respSync, ""},
		{&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Error{Error: &gpb.Error{Code: 5, Message: "boom"}}}, respError, "boom"},
		{&gpb.SubscribeResponse{}, respOther, ""},
	} {
		raw, err := proto.Marshal(tt.resp)
		if err != nil {
			t.Fatal(err)
		}
		if kind, msg := d.response(raw, 1); kind != tt.kind || msg != tt.msg {
			t.Fatalf("response(%v) = %d %q, want %d %q", tt.resp, kind, msg, tt.kind, tt.msg)
		}
	}
}

// FuzzWire feeds arbitrary frames to the wire decoder: it must not panic,
// and what it accepts must carry a path.
func FuzzWire(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		raw, _ := proto.Marshal(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: randomNotification(r)}})
		f.Add(raw)
	}
	f.Add([]byte{0x0a, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := newDecoder("r1", nil, func(string) {})
		d.response(b, 1)
		for _, o := range d.out {
			if o.Path == "" {
				t.Fatalf("observation without a path: %+v", o)
			}
		}
	})
}
