package recording

import (
	"strconv"
	"strings"
	"testing"

	"github.com/netfeat/netfeat/schema"
)

func TestReadGNMICaptureFormats(t *testing.T) {
	tests := []struct {
		file, format, device string
		path, origin         string
		kind                 schema.ValueKind
		value                string
	}{
		{"cisco-iosxr-mdt-pipeline/dump.json", "pipeline-json", "uut",
			"infra-statistics/interfaces/interface[interface-name=GigabitEthernet0/0/0/0]/latest/generic-counters/bytes-received", "Cisco-IOS-XR-infra-statsd-oper", schema.KindCounter64, "480002151"},
		{"cisco-iosxr-mdt-pipeline/dump.jsonkv", "gpbkv-json", "uut",
			"infra-statistics/interfaces/interface[interface-name=GigabitEthernet0/0/0/0]/latest/generic-counters/bytes-received", "Cisco-IOS-XR-infra-statsd-oper", schema.KindCounter64, "480002151"},
		{"telegraf-testcases/cisco_telemetry_mdt_NXDME_evenlist_with_dn_packet.json", "gpbkv-json", "NX-PGBL-GX2",
			"sys/intf/phys-[eth1/11]/phys/operSt", "DME", schema.KindString, "up"},
		// GPB-KV fields are typed as the collector types the gNMI value
		// of the same protobuf type: sint64 as int_val.
		{"telegraf-testcases/cisco_telemetry_mdt_NXDME_evenlist_with_dn_packet.json", "gpbkv-json", "NX-PGBL-GX2",
			"sys/intf/phys-[eth1/11]/phys/resetCtr", "DME", schema.KindInteger, "2"},
		// JSON leaves are typed as the collector types them: an
		// all-capitals string reads as an enumeration ...
		{"telegraf-testcases/gnmi_issue_14044_responses.json", "gnmi-protojson", "",
			"interfaces/interface[name=FourHundredGigE0/2/0/3]/state/description", "openconfig-interfaces", schema.KindEnum, "REDACTED"},
		{"telegraf-testcases/gnmi_issue_14833_responses.json", "gnmi-protojson", "",
			"interfaces/interface[name=AppGigabitEthernet1/0/1]/statistics/discontinuity-time", "Cisco-IOS-XE-interfaces-oper", schema.KindString, "2023-11-15T05:50:40+00:00"},
		{"gnmic-issues/gnmic_issue784_iosxe_c8300_oc_in-octets.jsonl", "gnmic-json", "ce1",
			// ... and a uint64 written as a string (RFC 7951) as a number.
			"interfaces/interface[name=GigabitEthernet0/0/0]/state/counters/in-octets", "", schema.KindCounter64, "119277205"},
		{"gnmic-issues/gnmic_issue584_iosxe_interfaces-oper_ipv4.json", "gnmic-json", "coresw",
			"interfaces/interface[name=GigabitEthernet0/0]/ipv4", "Cisco-IOS-XE-interfaces-oper", schema.KindString, "0.0.0.0"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			obs, err := ReadGNMICaptureFile("../testdata/gnmi/"+tc.file, "")
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range obs {
				if o.Path != tc.path {
					continue
				}
				var v string
				switch o.Kind {
				case schema.KindCounter64:
					v = strconv.FormatUint(o.Uint, 10)
				case schema.KindInteger:
					v = strconv.FormatInt(o.Int, 10)
				default:
					v = o.Str
				}
				if o.Origin != tc.origin || o.Kind != tc.kind || v != tc.value || o.Device != tc.device || o.Protocol != schema.ProtocolGNMI || o.DeviceTime == 0 {
					t.Fatalf("observation %+v, want origin %q kind %v value %q device %q", o, tc.origin, tc.kind, tc.value, tc.device)
				}
				return
			}
			t.Fatalf("no observation with path %s among %d", tc.path, len(obs))
		})
	}
}

func TestReadGNMICaptureRejectsUnknown(t *testing.T) {
	for _, in := range []string{"", "not json", `{"foo":1}`, `[]`} {
		if _, err := ReadGNMICapture(strings.NewReader(in), "x", ""); err == nil {
			t.Fatalf("accepted %q", in)
		}
	}
}

// TestReadGNMICaptureTolerant: what cannot be parsed in a capture is
// skipped and reported once per kind with its first file:line, and the
// rest is read; Strict refuses the capture.
func TestReadGNMICaptureTolerant(t *testing.T) {
	const good = `{"source":"r1","timestamp":1700000000000000000,"updates":[{"Path":"interfaces/interface[name=e0]/state/counters/in-octets","values":{"interfaces/interface/state/counters/in-octets":5}}]}`
	tests := []struct {
		name     string
		capture  string
		obs      int
		kind     string // the one kind reported
		count    int
		first    string
		strictOK bool
	}{
		{name: "broken JSON line", capture: good + "\n{\"source\":\"r1\",\"timestamp\":1,\"upd\n" + good + "\n", obs: 2, kind: "json", count: 1, first: "c:2"},
		{name: "message of the wrong shape", capture: good + "\n" + `{"source":"r1","timestamp":{"x":1},"updates":[]}` + "\n" + good + "\n", obs: 2, kind: "message", count: 1, first: "c:2"},
		{name: "bad json_ietf value", capture: `[
{"update":{"timestamp":"1","update":[{"path":{"elem":[{"name":"a"}]},"val":{"jsonIetfVal":"e30="}}]}},
{"update":{"timestamp":"2","update":[{"path":{"elem":[{"name":"b"}]},"val":{"jsonIetfVal":"eyJh"}},{"path":{"elem":[{"name":"c"}]},"val":{"uintVal":"7"}}]}},
{"update":{"timestamp":"3","update":[{"path":{"elem":[{"name":"d"}]},"val":{"jsonIetfVal":"eyJh"}}]}}
]`, obs: 1, kind: "value", count: 2, first: "c:3"},
		{name: "clean", capture: good + "\n" + good, obs: 2, strictOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs, skipped, err := ReadGNMICaptureWith(strings.NewReader(tt.capture), "c", "", ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(obs) != tt.obs {
				t.Fatalf("%d observations, want %d: %+v", len(obs), tt.obs, obs)
			}
			if tt.kind == "" {
				if len(skipped) != 0 {
					t.Fatalf("skipped %v from a clean capture", skipped)
				}
			} else if len(skipped) != 1 || skipped[0].Kind != tt.kind || skipped[0].Count != tt.count || skipped[0].First != tt.first || skipped[0].Err == nil {
				t.Fatalf("skipped %+v, want one %q ×%d first at %s", skipped, tt.kind, tt.count, tt.first)
			}
			_, err = ReadGNMICapture(strings.NewReader(tt.capture), "c", "")
			if (err == nil) != tt.strictOK {
				t.Fatalf("strict read: err %v, want error %v", err, !tt.strictOK)
			}
		})
	}
}

// TestGPBKVValueTypes: each GPB-KV value field is typed by its protobuf
// type as the collector types that gNMI value (package gnmivalue), and a
// value that does not match its type makes the message malformed.
func TestGPBKVValueTypes(t *testing.T) {
	field := func(name, member, value string) string {
		return `{"name":"` + name + `","` + member + `":` + value + `}`
	}
	fields := []string{
		field("u32", "uint32Value", `5`),
		field("u64", "uint64Value", `"18379759394883829764"`),
		field("s32", "sint32Value", `3`),
		field("s64", "sint64_value", `"-2"`),
		field("s64pos", "sint64Value", `"2"`),
		field("str", "stringValue", `"up"`),
		field("enum", "stringValue", `"UP"`),
		field("dbl", "doubleValue", `2`),
		field("flt", "floatValue", `0.5`),
		field("b", "boolValue", `true`),
		field("raw", "bytesValue", `"AQI="`),
	}
	capture := func(fs []string) string {
		return `{"node_id_str":"r1","encoding_path":"M:a/b","msg_timestamp":1700000000000,"data_gpbkv":[{"timestamp":1700000000000,"fields":[{"name":"keys","fields":[]},{"name":"content","fields":[` + strings.Join(fs, ",") + `]}]}]}`
	}
	obs, err := ReadGNMICapture(strings.NewReader(capture(fields)), "c", "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]schema.Observation{
		"a/b/u32":    {Kind: schema.KindCounter64, Uint: 5},
		"a/b/u64":    {Kind: schema.KindCounter64, Uint: 18379759394883829764},
		"a/b/s32":    {Kind: schema.KindInteger, Int: 3},
		"a/b/s64":    {Kind: schema.KindInteger, Int: -2},
		"a/b/s64pos": {Kind: schema.KindInteger, Int: 2},
		"a/b/str":    {Kind: schema.KindString, Str: "up"},
		"a/b/enum":   {Kind: schema.KindEnum, Str: "UP"},
		"a/b/dbl":    {Kind: schema.KindFloat, Float: 2},
		"a/b/flt":    {Kind: schema.KindFloat, Float: 0.5},
		"a/b/b":      {Kind: schema.KindBool, Int: 1},
		"a/b/raw":    {Kind: schema.KindBytes, Str: "\x01\x02"},
	}
	if len(obs) != len(want) {
		t.Fatalf("%d observations, want %d: %+v", len(obs), len(want), obs)
	}
	for _, o := range obs {
		w, ok := want[o.Path]
		if !ok || o.Kind != w.Kind || o.Uint != w.Uint || o.Int != w.Int || o.Float != w.Float || o.Str != w.Str || o.Origin != "M" || o.Device != "r1" {
			t.Fatalf("observation %+v, want %+v", o, w)
		}
	}
	for _, bad := range []string{field("x", "uint64Value", `"-1"`), field("x", "boolValue", `"yes"`), field("x", "bytesValue", `"!"`), field("x", "fooValue", `1`)} {
		in := capture([]string{fields[0], bad}) + "\n" + capture(fields[:1])
		if _, err := ReadGNMICapture(strings.NewReader(in), "c", ""); err == nil {
			t.Fatalf("strict read accepted %s", bad)
		}
		obs, skipped, err := ReadGNMICaptureWith(strings.NewReader(in), "c", "", ReadOptions{})
		if err != nil || len(obs) != 1 || len(skipped) != 1 || skipped[0].Kind != "message" {
			t.Fatalf("tolerant read of %s: %d observations, skipped %+v, error %v; want 1, the message skipped", bad, len(obs), skipped, err)
		}
	}
}
