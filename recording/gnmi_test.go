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
		{"telegraf-testcases/gnmi_issue_14044_responses.json", "gnmi-protojson", "",
			"interfaces/interface[name=FourHundredGigE0/2/0/3]/state/description", "openconfig-interfaces", schema.KindString, "REDACTED"},
		{"telegraf-testcases/gnmi_issue_14833_responses.json", "gnmi-protojson", "",
			"interfaces/interface[name=AppGigabitEthernet1/0/1]/statistics/discontinuity-time", "Cisco-IOS-XE-interfaces-oper", schema.KindString, "2023-11-15T05:50:40+00:00"},
		{"gnmic-issues/gnmic_issue784_iosxe_c8300_oc_in-octets.jsonl", "gnmic-json", "ce1",
			"interfaces/interface[name=GigabitEthernet0/0/0]/state/counters/in-octets", "", schema.KindString, "119277205"},
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
