//lint:file-ignore SA1019 these tests build the deprecated decimal_val and float_val that older targets still send, to check the decoder reads them.

package gnmi

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"testing"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/netfeat/netfeat/gnmipath"
	"github.com/netfeat/netfeat/recording"
	"github.com/netfeat/netfeat/schema"
)

func TestPlatformPathsParse(t *testing.T) {
	for _, pl := range Platforms() {
		for _, p := range PlatformPaths(pl) {
			if _, err := gnmipath.Parse(p); err != nil {
				t.Fatalf("%s: %q: %v", pl, p, err)
			}
		}
	}
}

func mustPath(t testing.TB, s string) *gpb.Path {
	t.Helper()
	p, err := gnmipath.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func uintVal(v uint64) *gpb.TypedValue {
	return &gpb.TypedValue{Value: &gpb.TypedValue_UintVal{UintVal: v}}
}

// obs is the part of an Observation the decoder tests compare.
type obs struct {
	Origin, Path string
	Kind         schema.ValueKind
	Uint         uint64
	Int          int64
	Float        float64
	Str          string
	DeviceTime   int64
}

func decodeAll(t *testing.T, subs []string, ns ...*gpb.Notification) ([]obs, map[string]int) {
	t.Helper()
	var paths []*gpb.Path
	for _, s := range subs {
		paths = append(paths, mustPath(t, s))
	}
	rejects := map[string]int{}
	d := newDecoder("r1", paths, func(r string) { rejects[r]++ })
	for _, n := range ns {
		d.notification(n, 42)
	}
	var out []obs
	for _, o := range d.out {
		if o.Device != "r1" || o.Protocol != schema.ProtocolGNMI || o.RecvTime != 42 {
			t.Fatalf("observation %+v: wrong device, protocol or receive time", o)
		}
		out = append(out, obs{o.Origin, o.Path, o.Kind, o.Uint, o.Int, o.Float, o.Str, o.DeviceTime})
	}
	return out, rejects
}

func TestDecodeProto(t *testing.T) {
	n := &gpb.Notification{
		Timestamp: 1700000000123456789,
		Prefix:    &gpb.Path{Origin: "openconfig-interfaces", Elem: mustPath(t, "interfaces/interface[name=Gi0/0/0/0]/state").Elem},
		Update: []*gpb.Update{
			{Path: mustPath(t, "counters/in-octets"), Val: uintVal(123)},
			{Path: mustPath(t, "oper-status"), Val: &gpb.TypedValue{Value: &gpb.TypedValue_StringVal{StringVal: "UP"}}},
			{Path: mustPath(t, "description"), Val: &gpb.TypedValue{Value: &gpb.TypedValue_StringVal{StringVal: "to core"}}},
			{Path: mustPath(t, "counters/carrier-transitions"), Val: &gpb.TypedValue{Value: &gpb.TypedValue_IntVal{IntVal: -3}}},
			{Path: mustPath(t, "enabled"), Val: &gpb.TypedValue{Value: &gpb.TypedValue_BoolVal{BoolVal: true}}},
			{Path: mustPath(t, "rate"), Val: &gpb.TypedValue{Value: &gpb.TypedValue_DecimalVal{DecimalVal: &gpb.Decimal64{Digits: 12345, Precision: 2}}}},
			{Path: mustPath(t, "type"), Val: &gpb.TypedValue{Value: &gpb.TypedValue_StringVal{StringVal: "iana-if-type:ETHERNET_CSMACD"}}},
		},
	}
	got, rejects := decodeAll(t, PlatformPaths(PlatformIOSXR), n)
	const base = "interfaces/interface[name=Gi0/0/0/0]/state/"
	const ts = 1700000000123456789
	want := []obs{
		{"openconfig-interfaces", base + "counters/in-octets", schema.KindCounter64, 123, 0, 0, "", ts},
		{"openconfig-interfaces", base + "oper-status", schema.KindEnum, 0, 0, 0, "UP", ts},
		{"openconfig-interfaces", base + "description", schema.KindString, 0, 0, 0, "to core", ts},
		{"openconfig-interfaces", base + "counters/carrier-transitions", schema.KindInteger, 0, -3, 0, "", ts},
		{"openconfig-interfaces", base + "enabled", schema.KindBool, 0, 1, 0, "", ts},
		{"openconfig-interfaces", base + "rate", schema.KindFloat, 0, 0, 123.45, "", ts},
		{"openconfig-interfaces", base + "type", schema.KindEnum, 0, 0, 0, "ETHERNET_CSMACD", ts},
	}
	if !reflect.DeepEqual(got, want) || len(rejects) != 0 {
		t.Fatalf("decode:\n got %+v\nwant %+v\nrejects %v", got, want, rejects)
	}
}

// TestDecodeRecordedResponses decodes gNMI responses recorded from real
// IOS-XR and IOS-XE targets (Telegraf's test cases).
func TestDecodeRecordedResponses(t *testing.T) {
	tests := []struct {
		file string
		subs []string
		want []obs
	}{
		{
			file: "../../testdata/gnmi/telegraf-testcases/gnmi_issue_14044_responses.json",
			subs: PlatformPaths(PlatformIOSXR),
			// Without the YANG schema an upper-case identifier reads as an
			// enumeration; the recording redacted the description.
			want: []obs{{"openconfig-interfaces", "interfaces/interface[name=FourHundredGigE0/2/0/3]/state/description", schema.KindEnum, 0, 0, 0, "REDACTED", 1696324083211000000}},
		},
		{
			// IOS-XE puts the module in the first element, not the origin.
			file: "../../testdata/gnmi/telegraf-testcases/gnmi_issue_14833_responses.json",
			subs: PlatformPaths(PlatformIOSXE),
			want: []obs{
				{"Cisco-IOS-XE-interfaces-oper", "interfaces/interface[name=AppGigabitEthernet1/0/1]/statistics/discontinuity-time", schema.KindString, 0, 0, 0, "2023-11-15T05:50:40+00:00", 1708069483623763000},
				{"Cisco-IOS-XE-interfaces-oper", "interfaces/interface[name=FortyGigabitEthernet1/1/1]/statistics/discontinuity-time", schema.KindString, 0, 0, 0, "2023-11-15T05:50:40+00:00", 1708069483623763000},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ns := readResponses(t, tt.file)
			got, rejects := decodeAll(t, tt.subs, ns...)
			if !reflect.DeepEqual(got, tt.want) || len(rejects) != 0 {
				t.Fatalf("decode:\n got %+v\nwant %+v\nrejects %v", got, tt.want, rejects)
			}
		})
	}
}

func readResponses(t *testing.T, file string) []*gpb.Notification {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// The files are arrays of SubscribeResponse in protobuf JSON.
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		t.Fatal(err)
	}
	var ns []*gpb.Notification
	for _, r := range raws {
		resp := &gpb.SubscribeResponse{}
		if err := protojson.Unmarshal(r, resp); err != nil {
			t.Fatal(err)
		}
		ns = append(ns, resp.GetUpdate())
	}
	return ns
}

func TestDecodeJSONIETFTree(t *testing.T) {
	blob := `{"openconfig-interfaces:counters":{"in-octets":"18446744073709551615","in-errors":"0","out-octets":"7"},
	  "oper-status":"UP","mtu":1514,"temp":-4,"ratio":"0.25","empty":[null],"addrs":["a","b"],
	  "subinterfaces":{"subinterface":[{"index":0,"state":{"enabled":true}},{"index":1,"state":{"enabled":false}}]}}`
	n := &gpb.Notification{
		Timestamp: 1700000000, // seconds: scaled to ns
		Update: []*gpb.Update{{
			Path: mustPath(t, "interfaces/interface[name=Hu0/0/0/1]/state"),
			Val:  &gpb.TypedValue{Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: []byte(blob)}},
		}},
	}
	got, rejects := decodeAll(t, PlatformPaths(PlatformIOSXR), n)
	const b = "interfaces/interface[name=Hu0/0/0/1]/state/"
	const o, ts = "openconfig-interfaces", 1700000000 * 1e9
	want := []obs{
		{o, b + "addrs", schema.KindJSON, 0, 0, 0, `["a","b"]`, ts},
		{o, b + "counters/in-errors", schema.KindCounter64, 0, 0, 0, "", ts},
		{o, b + "counters/in-octets", schema.KindCounter64, 18446744073709551615, 0, 0, "", ts},
		{o, b + "counters/out-octets", schema.KindCounter64, 7, 0, 0, "", ts},
		{o, b + "empty", schema.KindNull, 0, 0, 0, "", ts},
		{o, b + "mtu", schema.KindCounter64, 1514, 0, 0, "", ts},
		{o, b + "oper-status", schema.KindEnum, 0, 0, 0, "UP", ts},
		{o, b + "ratio", schema.KindFloat, 0, 0, 0.25, "", ts},
		{o, b + "subinterfaces/subinterface[index=0]/index", schema.KindCounter64, 0, 0, 0, "", ts},
		{o, b + "subinterfaces/subinterface[index=0]/state/enabled", schema.KindBool, 0, 1, 0, "", ts},
		{o, b + "subinterfaces/subinterface[index=1]/index", schema.KindCounter64, 1, 0, 0, "", ts},
		{o, b + "subinterfaces/subinterface[index=1]/state/enabled", schema.KindBool, 0, 0, 0, "", ts},
		{o, b + "temp", schema.KindInteger, 0, -4, 0, "", ts},
	}
	if !reflect.DeepEqual(got, want) || len(rejects) != 0 {
		t.Fatalf("decode:\n got %+v\nwant %+v\nrejects %v", got, want, rejects)
	}
}

func TestDecodeRejects(t *testing.T) {
	subs := PlatformPaths(PlatformIOSXR)
	good := func() *gpb.Notification {
		return &gpb.Notification{Prefix: &gpb.Path{Origin: "openconfig-interfaces"},
			Update: []*gpb.Update{{Path: mustPath(t, "interfaces/interface[name=a]/state/counters/in-octets"), Val: uintVal(1)}}}
	}
	tests := []struct {
		name   string
		mutate func(n *gpb.Notification)
		reason string
	}{
		{"empty element", func(n *gpb.Notification) { n.Update[0].Path.Elem[2] = &gpb.PathElem{} }, reasonBadPath},
		{"empty key name", func(n *gpb.Notification) { n.Update[0].Path.Elem[1].Key = map[string]string{"": "x"} }, reasonBadPath},
		{"no path", func(n *gpb.Notification) { n.Update[0].Path = nil }, reasonBadPath},
		{"no value", func(n *gpb.Notification) { n.Update[0].Val = nil }, reasonBadValue},
		{"bad json", func(n *gpb.Notification) {
			n.Update[0].Val = &gpb.TypedValue{Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: []byte(`{"a":`)}}
		}, reasonBadValue},
		{"unknown origin", func(n *gpb.Notification) { n.Prefix.Origin = "Bogus-Model" }, reasonUnknownOrigin},
		{"type mismatch", func(n *gpb.Notification) {
			n.Update[0].Val = &gpb.TypedValue{Value: &gpb.TypedValue_StringVal{StringVal: "garbage"}}
		}, reasonTypeMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := good()
			tt.mutate(bad)
			got, rejects := decodeAll(t, subs, good(), bad, good())
			if len(got) != 2 {
				t.Fatalf("got %d observations, want the 2 good ones: %+v", len(got), got)
			}
			if !reflect.DeepEqual(rejects, map[string]int{tt.reason: 1}) {
				t.Fatalf("rejects = %v, want %s once", rejects, tt.reason)
			}
		})
	}
}

func TestDeviceTime(t *testing.T) {
	for in, want := range map[int64]int64{
		0: 0, -5: 0, 1700000000: 1700000000e9, 1700000000123: 1700000000123e6,
		1700000000123456: 1700000000123456e3, 1700000000123456789: 1700000000123456789,
	} {
		if got := deviceTime(in); got != want {
			t.Fatalf("deviceTime(%d) = %d, want %d", in, got, want)
		}
	}
}

// TestDecodeSteadyStateAllocs checks that decoding a notification whose
// paths were seen before allocates nothing: paths are interned.
func TestDecodeSteadyStateAllocs(t *testing.T) {
	prefix := mustPath(t, "interfaces/interface[name=Gi0/0/0/0]/state/counters")
	prefix.Origin = "openconfig-interfaces"
	n := &gpb.Notification{Timestamp: 1700000000123456789, Prefix: prefix}
	for _, l := range []string{"in-octets", "out-octets", "in-errors"} {
		n.Update = append(n.Update, &gpb.Update{Path: mustPath(t, l), Val: uintVal(7)})
	}
	d := newDecoder("r1", []*gpb.Path{mustPath(t, "openconfig-interfaces:interfaces")}, func(r string) { t.Fatalf("rejected: %s", r) })
	d.notification(n, 1)
	d.out = d.out[:0]
	if a := testing.AllocsPerRun(100, func() {
		d.notification(n, 1)
		d.out = d.out[:0]
	}); a != 0 {
		t.Fatalf("steady-state decode allocates %v times per notification, want 0", a)
	}
	raw, err := proto.Marshal(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: n}})
	if err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(100, func() {
		d.response(raw, 1)
		d.out = d.out[:0]
	}); a != 0 {
		t.Fatalf("steady-state wire decode allocates %v times per frame, want 0", a)
	}
}

// TestRecordingTypesLikeCollector: a gNMI capture read by the recording
// reader gives the observations the collector emits for the same
// notification, value kinds included (both type with package gnmivalue),
// and a value the collector rejects is one the reader refuses or skips.
func TestRecordingTypesLikeCollector(t *testing.T) {
	anyV, err := anypb.New(&gpb.Decimal64{Digits: 5})
	if err != nil {
		t.Fatal(err)
	}
	vals := []*gpb.TypedValue{
		{Value: &gpb.TypedValue_UintVal{UintVal: 1 << 63}},
		{Value: &gpb.TypedValue_IntVal{IntVal: 7}},
		{Value: &gpb.TypedValue_IntVal{IntVal: -7}},
		{Value: &gpb.TypedValue_StringVal{StringVal: "UP"}},
		{Value: &gpb.TypedValue_StringVal{StringVal: "openconfig-if-types:IF_ETHERNET"}},
		{Value: &gpb.TypedValue_StringVal{StringVal: "to core"}},
		{Value: &gpb.TypedValue_StringVal{StringVal: "12"}},
		{Value: &gpb.TypedValue_AsciiVal{AsciiVal: "UP"}},
		{Value: &gpb.TypedValue_BoolVal{BoolVal: true}},
		{Value: &gpb.TypedValue_DoubleVal{DoubleVal: 2}},
		{Value: &gpb.TypedValue_FloatVal{FloatVal: 0.25}},
		{Value: &gpb.TypedValue_DecimalVal{DecimalVal: &gpb.Decimal64{Digits: 12345, Precision: 2}}},
		{Value: &gpb.TypedValue_BytesVal{BytesVal: []byte{1, 2, 3}}},
		{Value: &gpb.TypedValue_ProtoBytes{ProtoBytes: []byte{9}}},
		{Value: &gpb.TypedValue_AnyVal{AnyVal: anyV}},
		{Value: &gpb.TypedValue_LeaflistVal{LeaflistVal: &gpb.ScalarArray{Element: []*gpb.TypedValue{
			{Value: &gpb.TypedValue_StringVal{StringVal: "a"}}, {Value: &gpb.TypedValue_UintVal{UintVal: 2}}}}}},
		{Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: []byte(`{"openconfig-interfaces:counters":{"in-octets":"12"},"list":[{"name":"x","v":-1}],"s":"UP","e":[null]}`)}},
		{Value: &gpb.TypedValue_JsonVal{JsonVal: []byte(`"42"`)}},
	}
	const ts = int64(1700000000000000000)
	for _, v := range append(vals, &gpb.TypedValue{}, nil) {
		t.Run(v.String(), func(t *testing.T) {
			n := &gpb.Notification{Timestamp: ts, Prefix: &gpb.Path{Origin: "openconfig-interfaces", Elem: []*gpb.PathElem{{Name: "interfaces"}, {Name: "interface", Key: map[string]string{"name": "Gi0/0"}}}},
				Update: []*gpb.Update{{Path: mustPath(t, "state/x"), Val: v}}}
			var rejects int
			d := newDecoder("r1", nil, func(string) { rejects++ })
			d.notification(n, ts)
			capture, err := protojson.Marshal(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: n}})
			if err != nil {
				t.Fatal(err)
			}
			got, skipped, err := recording.ReadGNMICaptureWith(bytes.NewReader(capture), "c", "r1", recording.ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rejects > 0 {
				if len(d.out) != 0 || len(got) != 0 || len(skipped) != 1 || skipped[0].Kind != "value" {
					t.Fatalf("collector emitted %+v with %d rejects; reader %+v skipped %+v: want nothing and one skipped value", d.out, rejects, got, skipped)
				}
				return
			}
			if len(d.out) == 0 || len(skipped) != 0 || !reflect.DeepEqual(got, d.out) {
				t.Fatalf("reader %+v (skipped %+v)\ncollector %+v", got, skipped, d.out)
			}
		})
	}
}
