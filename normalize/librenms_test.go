package normalize

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netfeat/netfeat/recording"
	"github.com/netfeat/netfeat/schema"
)

// librenms is the part of a LibreNMS test expectation file the cross-check
// reads.
type librenms struct {
	Ports struct {
		Discovery struct{ Ports []lnPort }
		Poller    json.RawMessage
	}
	Processors struct {
		Discovery struct {
			Processors []struct {
				Index string  `json:"processor_index"`
				Type  string  `json:"processor_type"`
				Usage float64 `json:"processor_usage"`
			}
		}
	}
	Mempools struct {
		Discovery struct {
			Mempools []struct {
				Index string  `json:"mempool_index"`
				Type  string  `json:"mempool_type"`
				Class string  `json:"mempool_class"`
				Descr string  `json:"mempool_descr"`
				Used  float64 `json:"mempool_used"`
				Total float64 `json:"mempool_total"`
			}
		}
	}
	Sensors struct {
		Discovery struct{ Sensors []lnSensor }
	}
	Wireless struct {
		Discovery struct {
			Sensors []lnSensor `json:"wireless_sensors"`
		}
	}
}

type lnPort struct {
	IfIndex       int     `json:"ifIndex"`
	IfName        string  `json:"ifName"`
	IfOperStatus  string  `json:"ifOperStatus"`
	IfAdminStatus string  `json:"ifAdminStatus"`
	IfSpeed       float64 `json:"ifSpeed"`
	IfInOctets    float64 `json:"ifInOctets"`
	IfOutOctets   float64 `json:"ifOutOctets"`
}

type lnSensor struct {
	Class   string  `json:"sensor_class"`
	OID     string  `json:"sensor_oid"`
	OIDs    string  `json:"sensor_oids"`
	Current float64 `json:"sensor_current"`
	Descr   string  `json:"sensor_descr"`
}

// sensorMetrics says which LibreNMS sensors (by OID column prefix) read the
// same object as one of our mappings, and as which metric.
var sensorMetrics = map[string]string{
	"1.3.6.1.4.1.6527.3.1.2.2.1.8.1.18":  "component.temperature", // tmnxHwTemperature
	"1.3.6.1.4.1.6527.3.1.2.2.4.31.1.21": "transceiver.rx_power",  // tmnxDDMRxOpticalPower
	"1.3.6.1.4.1.6527.3.1.2.2.4.31.1.16": "transceiver.tx_power",  // tmnxDDMTxOutputPower
	"1.3.6.1.4.1.193.218.2.4.1.6.1.3":    "component.temperature", // IPOS envmon
	"1.3.6.1.4.1.193.218.2.50.1.2.1.3":   "",                      // IPOS optics: by suffix below
	"1.3.6.1.4.1.193.223.2.7.1.1.1":      "radio.rx_level",
	"1.3.6.1.4.1.193.223.2.7.1.1.2":      "radio.tx_power",
	"1.3.6.1.4.1.193.223.2.7.1.1.43":     "radio.snr",
	"1.3.6.1.4.1.193.81.3.4.3.1.8.1.7":   "radio.rx_level",
	"1.3.6.1.4.1.193.81.3.4.3.1.8.1.3":   "radio.tx_power",
	"1.3.6.1.4.1.193.81.3.4.5.1.3.1.17":  "radio.snr",
	"1.3.6.1.4.1.6527.3.1.2.2.4.31.1.1":  "-", // DDM temperature: not mapped (no transceiver temperature metric)
}

// TestLibreNMSCrossCheck compares our output for every SNMP walk with what
// LibreNMS discovered and polled from the same walk: interface octets,
// status and speed, CPU, memory, and the sensors that read the same MIB
// objects as our profiles. Known differences of definition are asserted
// explicitly, not skipped.
func TestLibreNMSCrossCheck(t *testing.T) {
	walks, _ := filepath.Glob("../testdata/snmp/*.snmprec")
	if len(walks) == 0 {
		t.Fatal("no walks")
	}
	for _, path := range walks {
		name := strings.TrimSuffix(filepath.Base(path), ".snmprec")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(strings.TrimSuffix(path, ".snmprec") + ".librenms.json")
			if err != nil {
				t.Fatal(err)
			}
			var ln librenms
			if err := json.Unmarshal(raw, &ln); err != nil {
				t.Fatalf("decode librenms json: %v", err)
			}
			samples, _ := normalizeRecording(t, path)
			got := map[string]float64{} // component|metric → value
			byMetric := map[string][]schema.Sample{}
			for _, s := range samples {
				got[s.Component+"|"+s.Metric] = s.Value
				byMetric[s.Metric] = append(byMetric[s.Metric], s)
			}
			checked := 0
			check := func(what, comp, metric string, want, tol float64) {
				t.Helper()
				v, ok := got[comp+"|"+metric]
				if !ok {
					t.Fatalf("%s: no %s sample for component %q (LibreNMS has %v)", what, metric, comp, want)
				}
				if math.Abs(v-want) > tol {
					t.Fatalf("%s: %s %q = %v, LibreNMS %v", what, metric, comp, v, want)
				}
				checked++
			}

			// Ports: the component is ifName (ifDescr fallback) from the walk,
			// made unique with #ifIndex when several rows share it.
			ifNames := walkIfNames(t, path)
			ports := ln.Ports.Discovery.Ports
			if len(ln.Ports.Poller) > 0 && ln.Ports.Poller[0] == '{' {
				var p struct{ Ports []lnPort }
				if err := json.Unmarshal(ln.Ports.Poller, &p); err == nil && len(p.Ports) > 0 {
					ports = p.Ports
				}
			}
			for _, p := range ports {
				comp, ok := ifNames[p.IfIndex]
				if !ok {
					continue // LibreNMS-made port (no ifTable row in the walk)
				}
				what := fmt.Sprintf("port ifIndex %d", p.IfIndex)
				if p.IfInOctets > 0 {
					check(what, comp, "interface.in.octets", p.IfInOctets, 0)
					check(what, comp, "interface.out.octets", p.IfOutOctets, 0)
				}
				if v, ok := schema.OperStatus[strings.ReplaceAll(p.IfOperStatus, "lowerLayerDown", "lower_layer_down")]; ok {
					check(what, comp, "interface.oper_status", float64(v), 0)
				}
				if v, ok := schema.AdminStatus[p.IfAdminStatus]; ok {
					check(what, comp, "interface.admin_status", float64(v), 0)
				}
				if p.IfSpeed > 0 {
					check(what, comp, "interface.speed", p.IfSpeed, 0)
				}
			}

			// CPU: LibreNMS stores whole percent.
			for _, p := range ln.Processors.Discovery.Processors {
				comp := ""
				if p.Type == "nokia-isam" {
					comp = "slot" + p.Index
				}
				check("processor "+p.Index, comp, "system.cpu.utilization", p.Usage/100, 0.005)
			}

			// Memory.
			var cachedUCD float64
			for _, m := range ln.Mempools.Discovery.Mempools {
				if m.Type == "ucd" && m.Class == "cached" {
					cachedUCD = m.Used
				}
			}
			for _, m := range ln.Mempools.Discovery.Mempools {
				what := "mempool " + m.Descr
				switch m.Type {
				case "timos":
					// LibreNMS multiplies kB by 1000 and calls
					// sgiKbMemoryPoolAllocated "used"; the MIB says
					// kilobytes (×1024) and our used is sgiKbMemoryUsed.
					// Total is the same sum of objects in both.
					check(what, "", "system.memory.total", m.Total/1000*1024, 0)
				case "ucd":
					if m.Class != "system" {
						continue
					}
					check(what, "", "system.memory.total", m.Total, 0)
					// LibreNMS counts page cache as free; our used is the
					// catalog's memTotalReal − memAvailReal.
					check(what, "", "system.memory.used", m.Used+cachedUCD, 0)
				case "nokia-isam":
					check(what, "slot"+m.Index, "system.memory.used", m.Used, 0)
					check(what, "slot"+m.Index, "system.memory.total", m.Total, 0)
				case "cemp":
					// Ours: "<entPhysicalName> <cempMemPoolName>"; LibreNMS:
					// "Module 0/0/CPU0 - Processor". Same words, other case.
					comp := strings.ReplaceAll(m.Descr, " - ", " ")
					for _, s := range byMetric["system.memory.used"] {
						if strings.EqualFold(s.Component, comp) {
							comp = s.Component
						}
					}
					check(what, comp, "system.memory.used", m.Used, 0)
					check(what, comp, "system.memory.total", m.Total, 0)
				default:
					t.Fatalf("mempool type %q not cross-checked; add it", m.Type)
				}
			}

			// Sensors reading the same objects: the value must appear among
			// our samples of the metric.
			sensors := append(ln.Sensors.Discovery.Sensors, ln.Wireless.Discovery.Sensors...)
			for _, s := range sensors {
				oid := strings.TrimPrefix(s.OID, ".")
				if oid == "" && s.OIDs != "" {
					var l []string
					if json.Unmarshal([]byte(s.OIDs), &l) == nil && len(l) == 1 {
						oid = strings.TrimPrefix(l[0], ".")
					}
				}
				metric, ok := "", false
				for prefix, m := range sensorMetrics {
					if strings.HasPrefix(oid, prefix+".") {
						metric, ok = m, true
						if m == "" { // IPOS optics: param type 2 Rx power, 3 temperature
							switch {
							case strings.HasSuffix(oid, ".2"):
								metric = "transceiver.rx_power"
							case strings.HasSuffix(oid, ".3"):
								metric = "component.temperature"
							}
						}
					}
				}
				if !ok || metric == "-" || metric == "" {
					continue
				}
				found := false
				for _, x := range byMetric[metric] {
					if math.Abs(x.Value-s.Current) < 0.01 {
						found = true
						break
					}
				}
				if !found {
					t.Fatalf("sensor %s (%s, %s) = %v: no %s sample with that value", s.Descr, s.Class, oid, s.Current, metric)
				}
				checked++
			}
			t.Logf("%d values cross-checked against LibreNMS", checked)
		})
	}
}

// walkIfNames derives ifIndex → component name from the walk itself, by
// the rule the generic profile states: ifName, else ifDescr; "#ifIndex"
// appended when several rows share a name.
func walkIfNames(t *testing.T, path string) map[int]string {
	t.Helper()
	recs, err := recording.ReadSNMPRecFile(path)
	if err != nil {
		t.Fatal(err)
	}
	names, descr := map[int]string{}, map[int]string{}
	for _, r := range recs {
		var idx int
		if n, _ := fmt.Sscanf(strings.TrimPrefix(r.OID, "1.3.6.1.2.1.31.1.1.1.1."), "%d", &idx); n == 1 && strings.HasPrefix(r.OID, "1.3.6.1.2.1.31.1.1.1.1.") {
			names[idx] = string(r.Bytes)
		}
		if n, _ := fmt.Sscanf(strings.TrimPrefix(r.OID, "1.3.6.1.2.1.2.2.1.2."), "%d", &idx); n == 1 && strings.HasPrefix(r.OID, "1.3.6.1.2.1.2.2.1.2.") {
			descr[idx] = string(r.Bytes)
		}
	}
	eff := map[int]string{}
	for i, d := range descr {
		eff[i] = d
	}
	for i, n := range names {
		if n != "" {
			eff[i] = n
		}
	}
	uses := map[string]int{}
	for _, n := range eff {
		uses[n]++
	}
	for i, n := range eff {
		if uses[n] > 1 {
			eff[i] = fmt.Sprintf("%s#%d", n, i)
		}
	}
	return eff
}
