package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/netfeat/netfeat/schema"
)

// The golden files in testdata/printer are the printers' output for fixed
// inputs; scripts and the integration tests read it, so a change must be
// deliberate: NETFEAT_UPDATE_GOLDEN=1 rewrites them, and the diff is
// reviewed. Tables print values with units (formatQuantity); JSON lines
// keep raw values, with RFC 3339 times for probe and normalize alike.

func printerObsSNMP() []schema.Observation {
	return []schema.Observation{
		{Device: "r1", Protocol: schema.ProtocolSNMP, Path: "1.3.6.1.2.1.1.3.0", Kind: schema.KindTimeTicks, Uint: 12345, RecvTime: 1700000000000000000},
		{Device: "r1", Protocol: schema.ProtocolSNMP, Path: "1.3.6.1.2.1.31.1.1.1.6.1", Kind: schema.KindCounter64, Uint: 1 << 40},
		{Device: "r1", Protocol: schema.ProtocolSNMP, Path: "1.3.6.1.2.1.2.2.1.10.1", Kind: schema.KindCounter32, Uint: 99},
		{Device: "r1", Protocol: schema.ProtocolSNMP, Path: "1.3.6.1.2.1.31.1.1.1.15.1", Kind: schema.KindGauge, Uint: 1000},
		{Device: "r1", Protocol: schema.ProtocolSNMP, Path: "1.3.6.1.4.1.99.1", Kind: schema.KindInteger, Int: -5},
		{Device: "r1", Protocol: schema.ProtocolSNMP, Path: "1.3.6.1.2.1.31.1.1.1.1.1", Kind: schema.KindString, Str: "Gi0/0 \"x\""},
		{Device: "r1", Protocol: schema.ProtocolSNMP, Path: "1.3.6.1.2.1.1.2.0", Kind: schema.KindOID, Str: "1.3.6.1.4.1.9.1.1"},
		{Device: "r1", Protocol: schema.ProtocolSNMP, Path: "1.3.6.1.2.1.2.2.1.6.1", Kind: schema.KindBytes, Str: "\x00\x01\xff"},
		{Device: "r1", Protocol: schema.ProtocolSNMP, Path: "1.3.6.1.4.1.99.2.0", Kind: schema.KindNoSuchObject},
		{Device: "r1", Protocol: schema.ProtocolSNMP, Path: "1.3.6.1.4.1.99.3.0", Kind: schema.KindFloat, Float: 0.25},
	}
}

func printerObsGNMI() []schema.Observation {
	const p = "interfaces/interface[name=Gi0/0/0/0]/state/"
	return []schema.Observation{
		{Device: "g1", Protocol: schema.ProtocolGNMI, Origin: "openconfig-interfaces", Path: p + "counters/in-octets", Kind: schema.KindCounter64, Uint: 480002151, DeviceTime: 1700000000000000000, RecvTime: 1700000000000000001},
		{Device: "g1", Protocol: schema.ProtocolGNMI, Origin: "openconfig-interfaces", Path: p + "oper-status", Kind: schema.KindEnum, Str: "UP"},
		{Device: "g1", Protocol: schema.ProtocolGNMI, Origin: "openconfig-interfaces", Path: p + "mtu", Kind: schema.KindInteger, Int: -1},
		{Device: "g1", Protocol: schema.ProtocolGNMI, Origin: "openconfig-interfaces", Path: p + "enabled", Kind: schema.KindBool, Int: 1},
		{Device: "g1", Protocol: schema.ProtocolGNMI, Origin: "openconfig-platform", Path: "components/component[name=cpu0]/cpu/utilization/state/instant", Kind: schema.KindFloat, Float: 12.5},
		{Device: "g1", Protocol: schema.ProtocolGNMI, Origin: "openconfig-interfaces", Path: p + "description", Kind: schema.KindString, Str: "to \"core\""},
		{Device: "g1", Protocol: schema.ProtocolGNMI, Origin: "Cisco-IOS-XR-x", Path: "a/b", Kind: schema.KindJSON, Str: `["a",1]`},
		{Device: "g1", Protocol: schema.ProtocolGNMI, Origin: "DME", Path: "sys/x/y", Kind: schema.KindBytes, Str: "\x0a\x0b"},
		{Device: "g1", Protocol: schema.ProtocolGNMI, Origin: "", Path: "a/empty", Kind: schema.KindNull},
		{Device: "g1", Protocol: schema.ProtocolGNMI, Origin: "", Path: "a/gauge", Kind: schema.KindGauge, Uint: 7},
	}
}

func printerSamples(dev string) []schema.Sample {
	e := func(c string) schema.Entity { return schema.Entity{Device: dev, Component: c} }
	return []schema.Sample{
		{TS: 1700000010000000000, IngestTS: 1700000010000000005, Entity: e("Gi0/0/0/1"), Metric: "interface.in.octets", Value: 1e21, Source: "cisco-iosxr/gnmi"},
		{TS: 1700000010000000000, IngestTS: 1700000010000000005, Entity: e("Gi0/0/0/0"), Metric: "interface.in.bps", Value: 8000, Source: "cisco-iosxr/gnmi"},
		{TS: 1700000000000000000, IngestTS: 1700000000000000005, Entity: e("Gi0/0/0/0"), Metric: "interface.in.octets", Value: 480002151, Source: "cisco-iosxr/gnmi"},
		{TS: 1700000010000000000, IngestTS: 1700000010000000005, Entity: e("Gi0/0/0/0"), Metric: "interface.in.octets", Value: 480012151, Source: "cisco-iosxr/gnmi"},
		{TS: 1700000010000000000, IngestTS: 1700000010000000005, Entity: e(""), Metric: "system.cpu.utilization", Value: 0.1, Source: "generic/snmp"},
		{TS: 1700000010000000000, IngestTS: 1700000010000000005, Entity: e("Gi0/0/0/0"), Metric: "interface.in.utilization", Value: 8e-06, Source: "cisco-iosxr/gnmi"},
	}
}

func TestPrinterOutputUnchanged(t *testing.T) {
	ctx := context.Background()
	probe := func(layout printLayout, obs []schema.Observation, smp []schema.Sample) func(format string) []byte {
		return func(format string) []byte {
			var b bytes.Buffer
			p := newPrinter(&b, format, layout)
			if obs != nil {
				p.observations(ctx, obs)
			}
			if smp != nil {
				// In two batches, as a poll delivers them.
				p.samples(ctx, smp[:3])
				p.samples(ctx, smp[3:])
			}
			if _, err := p.flush(); err != nil {
				t.Fatal(err)
			}
			if n, err := p.flush(); err != nil || n != 0 {
				t.Fatalf("second flush: %d samples, %v; want nothing", n, err)
			}
			return b.Bytes()
		}
	}
	tests := []struct {
		golden string
		run    func(format string) []byte
	}{
		{"probe-snmp-raw", probe(probeSNMPLayout, printerObsSNMP(), nil)},
		{"probe-snmp-samples", probe(probeSNMPLayout, nil, printerSamples("r1"))},
		{"probe-gnmi-raw", probe(probeGNMILayout, printerObsGNMI(), nil)},
		{"probe-gnmi-samples", probe(probeGNMILayout, nil, printerSamples("g1"))},
	}
	for _, tc := range tests {
		for _, format := range []string{formatTable, formatJSONL} {
			t.Run(tc.golden+"-"+format, func(t *testing.T) {
				compareGolden(t, tc.golden+"-"+format+".golden", tc.run(format))
			})
		}
	}
	for name, rec := range map[string]string{
		"iosxe": "model-derived/iosxe-17.12_interfaces-oper.jsonl",
		"iosxr": "cisco-iosxr-mdt-pipeline/dump.json",
		"empty": "gnmic-issues/gnmic_issue584_iosxe_interfaces-oper_ipv4.json",
	} {
		for _, format := range []string{formatTable, formatJSONL} {
			t.Run("normalize-"+name+"-"+format, func(t *testing.T) {
				var out, errb bytes.Buffer
				if err := runNormalize(ctx, &out, &errb, "../../testdata/gnmi/"+rec, "", format, "", true, false); err != nil {
					t.Fatal(err)
				}
				compareGolden(t, "normalize-"+name+"-"+format+".stdout.golden", out.Bytes())
				compareGolden(t, "normalize-"+name+"-"+format+".stderr.golden", errb.Bytes())
			})
		}
	}
}

func compareGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "printer", name)
	if os.Getenv("NETFEAT_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs:\n--- want\n%s\n--- got\n%s", name, want, got)
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestPrinterReportsWriteErrors(t *testing.T) {
	for _, format := range []string{formatTable, formatJSONL} {
		p := newPrinter(failWriter{}, format, recordingLayout)
		p.samples(context.Background(), printerSamples("r1"))
		if _, err := p.flush(); err == nil {
			t.Fatalf("%s: a failed write was not reported", format)
		}
	}
	if err := checkFormat("yaml"); err == nil {
		t.Fatal("checkFormat accepted yaml")
	}
}
