package schema

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// MetricKind says how a metric's values behave over time.
type MetricKind string

// Metric kinds.
const (
	// KindGaugeMetric is an instantaneous level (CPU, temperature, power).
	KindGaugeMetric MetricKind = "gauge"
	// KindCounterMetric is a monotonically increasing count that may wrap or
	// reset; the normalizer derives a rate from it.
	KindCounterMetric MetricKind = "counter"
	// KindStateMetric is an enumerated state (oper-status); values are the
	// enum's numbers.
	KindStateMetric MetricKind = "state"
	// KindRateMetric is derived by the normalizer from a counter (and for
	// utilisation, from a rate and a speed).
	KindRateMetric MetricKind = "rate"
)

// Metric describes one canonical metric: its name, kind, unit and where it
// comes from in OpenConfig and SNMP terms.
type Metric struct {
	// Name is the canonical dotted name, such as "interface.in.octets".
	Name string `yaml:"name" json:"name"`
	// Kind is gauge, counter, state or rate.
	Kind MetricKind `yaml:"kind" json:"kind"`
	// Unit is the unit every value of this metric is expressed in.
	Unit string `yaml:"unit" json:"unit"`
	// Entity is what the metric describes: "interface", "device",
	// "component", "transceiver" or "radio".
	Entity string `yaml:"entity" json:"entity"`
	// Description says what the value means in one sentence.
	Description string `yaml:"description" json:"description"`
	// OpenConfig is the OpenConfig leaf the metric corresponds to, when one
	// exists.
	OpenConfig string `yaml:"openconfig,omitempty" json:"openconfig,omitempty"`
	// SNMP names the MIB objects it is typically read from.
	SNMP string `yaml:"snmp,omitempty" json:"snmp,omitempty"`
	// DerivedFrom names the counter (or rate) a derived metric is computed
	// from; empty for metrics read from devices.
	DerivedFrom string `yaml:"derived_from,omitempty" json:"derived_from,omitempty"`
	// Scale multiplies the per-second rate of DerivedFrom to give this
	// metric (8 turns octets/s into bits/s); 0 means 1.
	Scale float64 `yaml:"scale,omitempty" json:"scale,omitempty"`
}

// Enumerations used by state metrics, from IF-MIB ifOperStatus and
// OpenConfig oper-status (which share the numbering).
var (
	// OperStatus maps IF-MIB/OpenConfig oper-status names to their numbers.
	OperStatus = map[string]int{
		"up": 1, "down": 2, "testing": 3, "unknown": 4, "dormant": 5, "not_present": 6, "lower_layer_down": 7,
	}
	// AdminStatus maps IF-MIB/OpenConfig admin-status names to their numbers.
	AdminStatus = map[string]int{"up": 1, "down": 2, "testing": 3}
)

// StateEnum returns the enumeration of a state metric (name → number), or
// nil when the metric has none.
func StateEnum(metric string) map[string]int {
	switch metric {
	case "interface.oper_status":
		return OperStatus
	case "interface.admin_status":
		return AdminStatus
	}
	return nil
}

// StateName returns the enumeration name of a state metric's value ("down"
// for interface.oper_status 2), or the number formatted when it has none.
func StateName(metric string, v float64) string {
	for name, n := range StateEnum(metric) {
		if float64(n) == v {
			return name
		}
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// Catalog is the canonical metric model, as data. Profiles
// may only map to metrics listed here; docs/metrics.md is generated from it.
var Catalog = []Metric{
	// Interface counters.
	{Name: "interface.in.octets", Kind: KindCounterMetric, Unit: "bytes", Entity: "interface",
		Description: "Octets received on the interface, including framing.",
		OpenConfig:  "interfaces/interface/state/counters/in-octets", SNMP: "IF-MIB ifHCInOctets (fallback ifInOctets, 32-bit)"},
	{Name: "interface.out.octets", Kind: KindCounterMetric, Unit: "bytes", Entity: "interface",
		Description: "Octets transmitted on the interface, including framing.",
		OpenConfig:  "interfaces/interface/state/counters/out-octets", SNMP: "IF-MIB ifHCOutOctets (fallback ifOutOctets, 32-bit)"},
	{Name: "interface.in.unicast_pkts", Kind: KindCounterMetric, Unit: "packets", Entity: "interface",
		Description: "Unicast packets received.",
		OpenConfig:  "interfaces/interface/state/counters/in-unicast-pkts", SNMP: "IF-MIB ifHCInUcastPkts (fallback ifInUcastPkts)"},
	{Name: "interface.out.unicast_pkts", Kind: KindCounterMetric, Unit: "packets", Entity: "interface",
		Description: "Unicast packets transmitted.",
		OpenConfig:  "interfaces/interface/state/counters/out-unicast-pkts", SNMP: "IF-MIB ifHCOutUcastPkts (fallback ifOutUcastPkts)"},
	{Name: "interface.in.multicast_pkts", Kind: KindCounterMetric, Unit: "packets", Entity: "interface",
		Description: "Multicast packets received.",
		OpenConfig:  "interfaces/interface/state/counters/in-multicast-pkts", SNMP: "IF-MIB ifHCInMulticastPkts"},
	{Name: "interface.out.multicast_pkts", Kind: KindCounterMetric, Unit: "packets", Entity: "interface",
		Description: "Multicast packets transmitted.",
		OpenConfig:  "interfaces/interface/state/counters/out-multicast-pkts", SNMP: "IF-MIB ifHCOutMulticastPkts"},
	{Name: "interface.in.broadcast_pkts", Kind: KindCounterMetric, Unit: "packets", Entity: "interface",
		Description: "Broadcast packets received.",
		OpenConfig:  "interfaces/interface/state/counters/in-broadcast-pkts", SNMP: "IF-MIB ifHCInBroadcastPkts"},
	{Name: "interface.out.broadcast_pkts", Kind: KindCounterMetric, Unit: "packets", Entity: "interface",
		Description: "Broadcast packets transmitted.",
		OpenConfig:  "interfaces/interface/state/counters/out-broadcast-pkts", SNMP: "IF-MIB ifHCOutBroadcastPkts"},
	{Name: "interface.in.errors", Kind: KindCounterMetric, Unit: "packets", Entity: "interface",
		Description: "Inbound packets that contained errors.",
		OpenConfig:  "interfaces/interface/state/counters/in-errors", SNMP: "IF-MIB ifInErrors; TIMETRA-PORT-MIB tmnxPortInErrors"},
	{Name: "interface.out.errors", Kind: KindCounterMetric, Unit: "packets", Entity: "interface",
		Description: "Outbound packets that could not be transmitted because of errors.",
		OpenConfig:  "interfaces/interface/state/counters/out-errors", SNMP: "IF-MIB ifOutErrors; TIMETRA-PORT-MIB tmnxPortOutErrors"},
	{Name: "interface.in.discards", Kind: KindCounterMetric, Unit: "packets", Entity: "interface",
		Description: "Inbound packets discarded although error-free (buffer or policy drops).",
		OpenConfig:  "interfaces/interface/state/counters/in-discards", SNMP: "IF-MIB ifInDiscards; TIMETRA-PORT-MIB tmnxPortInDiscards"},
	{Name: "interface.out.discards", Kind: KindCounterMetric, Unit: "packets", Entity: "interface",
		Description: "Outbound packets discarded although error-free (queue drops).",
		OpenConfig:  "interfaces/interface/state/counters/out-discards", SNMP: "IF-MIB ifOutDiscards; TIMETRA-PORT-MIB tmnxPortOutDiscards"},

	// Interface state and speed.
	{Name: "interface.oper_status", Kind: KindStateMetric, Unit: "enum", Entity: "interface",
		Description: "Operational state: up=1, down=2, testing=3, unknown=4, dormant=5, not_present=6, lower_layer_down=7.",
		OpenConfig:  "interfaces/interface/state/oper-status", SNMP: "IF-MIB ifOperStatus; TIMETRA-PORT-MIB tmnxPortOperStatus"},
	{Name: "interface.admin_status", Kind: KindStateMetric, Unit: "enum", Entity: "interface",
		Description: "Administrative state: up=1, down=2, testing=3.",
		OpenConfig:  "interfaces/interface/state/admin-status", SNMP: "IF-MIB ifAdminStatus"},
	{Name: "interface.speed", Kind: KindGaugeMetric, Unit: "bits/s", Entity: "interface",
		Description: "Nominal interface speed.",
		OpenConfig:  "interfaces/interface/ethernet/state/port-speed", SNMP: "IF-MIB ifHighSpeed × 10⁶ (fallback ifSpeed)"},

	// Derived interface rates.
	{Name: "interface.in.bps", Kind: KindRateMetric, Unit: "bits/s", Entity: "interface",
		Description: "Inbound traffic rate.", DerivedFrom: "interface.in.octets", Scale: 8},
	{Name: "interface.out.bps", Kind: KindRateMetric, Unit: "bits/s", Entity: "interface",
		Description: "Outbound traffic rate.", DerivedFrom: "interface.out.octets", Scale: 8},
	{Name: "interface.in.unicast_pps", Kind: KindRateMetric, Unit: "packets/s", Entity: "interface",
		Description: "Inbound unicast packet rate.", DerivedFrom: "interface.in.unicast_pkts"},
	{Name: "interface.out.unicast_pps", Kind: KindRateMetric, Unit: "packets/s", Entity: "interface",
		Description: "Outbound unicast packet rate.", DerivedFrom: "interface.out.unicast_pkts"},
	{Name: "interface.in.multicast_pps", Kind: KindRateMetric, Unit: "packets/s", Entity: "interface",
		Description: "Inbound multicast packet rate.", DerivedFrom: "interface.in.multicast_pkts"},
	{Name: "interface.out.multicast_pps", Kind: KindRateMetric, Unit: "packets/s", Entity: "interface",
		Description: "Outbound multicast packet rate.", DerivedFrom: "interface.out.multicast_pkts"},
	{Name: "interface.in.broadcast_pps", Kind: KindRateMetric, Unit: "packets/s", Entity: "interface",
		Description: "Inbound broadcast packet rate.", DerivedFrom: "interface.in.broadcast_pkts"},
	{Name: "interface.out.broadcast_pps", Kind: KindRateMetric, Unit: "packets/s", Entity: "interface",
		Description: "Outbound broadcast packet rate.", DerivedFrom: "interface.out.broadcast_pkts"},
	{Name: "interface.in.errors_ps", Kind: KindRateMetric, Unit: "packets/s", Entity: "interface",
		Description: "Inbound error rate.", DerivedFrom: "interface.in.errors"},
	{Name: "interface.out.errors_ps", Kind: KindRateMetric, Unit: "packets/s", Entity: "interface",
		Description: "Outbound error rate.", DerivedFrom: "interface.out.errors"},
	{Name: "interface.in.discards_ps", Kind: KindRateMetric, Unit: "packets/s", Entity: "interface",
		Description: "Inbound discard rate.", DerivedFrom: "interface.in.discards"},
	{Name: "interface.out.discards_ps", Kind: KindRateMetric, Unit: "packets/s", Entity: "interface",
		Description: "Outbound discard rate.", DerivedFrom: "interface.out.discards"},
	{Name: "interface.in.utilization", Kind: KindRateMetric, Unit: "ratio", Entity: "interface",
		Description: "Inbound rate divided by interface speed (0–1), when the speed is known.", DerivedFrom: "interface.in.bps"},
	{Name: "interface.out.utilization", Kind: KindRateMetric, Unit: "ratio", Entity: "interface",
		Description: "Outbound rate divided by interface speed (0–1), when the speed is known.", DerivedFrom: "interface.out.bps"},

	// System.
	{Name: "system.cpu.utilization", Kind: KindGaugeMetric, Unit: "ratio", Entity: "component",
		Description: "CPU busy share, 0–1, of the device or of one CPU component.",
		OpenConfig:  "components/component/cpu/utilization/state/instant",
		SNMP:        "TIMETRA-SYSTEM-MIB sgiCpuUsage; ERICSSON-ROUTER-CPU-METER-MIB; UCD-SNMP ssCpuIdle; CISCO-PROCESS-MIB cpmCPUTotal5minRev; ASAM-SYSTEM-MIB cpuLoadAverage"},
	{Name: "system.memory.used", Kind: KindGaugeMetric, Unit: "bytes", Entity: "component",
		Description: "Memory in use.",
		OpenConfig:  "system/memory/state/used",
		SNMP:        "TIMETRA-SYSTEM-MIB sgiKbMemoryUsed; UCD-SNMP memTotalReal−memAvailReal; CISCO-ENHANCED-MEMPOOL-MIB cempMemPoolHCUsed; ASAM-SYSTEM-MIB memAbsoluteUsage"},
	{Name: "system.memory.total", Kind: KindGaugeMetric, Unit: "bytes", Entity: "component",
		Description: "Memory installed or available to the system.",
		OpenConfig:  "system/memory/state/physical",
		SNMP:        "UCD-SNMP memTotalReal; CISCO-ENHANCED-MEMPOOL-MIB used+free; ASAM-SYSTEM-MIB totalMemSize; TIMETRA-SYSTEM-MIB used+available"},
	{Name: "system.uptime", Kind: KindGaugeMetric, Unit: "seconds", Entity: "device",
		Description: "Time since the device's management agent (re)started; a decrease marks a counter discontinuity.",
		OpenConfig:  "system/state/boot-time", SNMP: "SNMPv2-MIB sysUpTime"},

	// Components, optics, radio.
	{Name: "component.temperature", Kind: KindGaugeMetric, Unit: "celsius", Entity: "component",
		Description: "Temperature of a hardware component or sensor.",
		OpenConfig:  "components/component/state/temperature/instant",
		SNMP:        "TIMETRA-CHASSIS-MIB tmnxHwTemperature; ERICSSON-ROUTER-ENVMON-MIB; ENTITY-SENSOR-MIB"},
	{Name: "transceiver.rx_power", Kind: KindGaugeMetric, Unit: "dBm", Entity: "transceiver",
		Description: "Optical receive power.",
		OpenConfig:  "components/component/transceiver/physical-channels/channel/state/input-power/instant",
		SNMP:        "TIMETRA-PORT-MIB tmnxDDMRxOpticalPower; Ericsson optical transceiver MIB"},
	{Name: "transceiver.tx_power", Kind: KindGaugeMetric, Unit: "dBm", Entity: "transceiver",
		Description: "Optical transmit power.",
		OpenConfig:  "components/component/transceiver/physical-channels/channel/state/output-power/instant",
		SNMP:        "TIMETRA-PORT-MIB tmnxDDMTxOutputPower; Ericsson optical transceiver MIB"},
	{Name: "radio.rx_level", Kind: KindGaugeMetric, Unit: "dBm", Entity: "radio",
		Description: "Received signal level of a microwave radio link.",
		SNMP:        "Ericsson MINI-LINK PT-RADIOLINK-MIB / XF-RADIOLINK-PTP-TERMINAL-MIB"},
	{Name: "radio.tx_power", Kind: KindGaugeMetric, Unit: "dBm", Entity: "radio",
		Description: "Transmitted output power of a microwave radio link.",
		SNMP:        "Ericsson MINI-LINK PT-RADIOLINK-MIB / XF-RADIOLINK-PTP-TERMINAL-MIB"},
	{Name: "radio.snr", Kind: KindGaugeMetric, Unit: "dB", Entity: "radio",
		Description: "Signal-to-noise ratio (or MSE-derived SNR) of a microwave radio link.",
		SNMP:        "Ericsson MINI-LINK PT-RADIOLINK-MIB / XF-RADIOLINK-PTP-TERMINAL-MIB"},
}

var catalogIndex = func() map[string]int {
	m := make(map[string]int, len(Catalog))
	for i, c := range Catalog {
		if _, dup := m[c.Name]; dup {
			panic("schema: duplicate catalog metric " + c.Name)
		}
		m[c.Name] = i
	}
	return m
}()

// LookupMetric returns the catalog entry for a canonical name.
func LookupMetric(name string) (Metric, bool) {
	i, ok := catalogIndex[name]
	if !ok {
		return Metric{}, false
	}
	return Catalog[i], true
}

// RatesOf returns the derived rate metrics computed from metric name
// (interface.in.octets → interface.in.bps), in catalog order.
func RatesOf(name string) []Metric {
	var out []Metric
	for _, m := range Catalog {
		if m.DerivedFrom == name {
			out = append(out, m)
		}
	}
	return out
}

// WriteCatalogMarkdown writes the catalog as the Markdown document that is
// checked in as docs/metrics.md.
func WriteCatalogMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# Metric catalog\n\n")
	b.WriteString("<!-- Generated from schema/catalog.go by `go test ./schema -run TestMetricsDoc -update`. Do not edit. -->\n\n")
	b.WriteString("Every sample netfeat stores carries one of these canonical metrics, in the unit given here.\n")
	b.WriteString("Vendor profiles (docs/normalization.md) map device paths and OIDs onto them; derived metrics\n")
	b.WriteString("are computed by the normalizer from the counter they name.\n\n")
	groups := map[MetricKind][]Metric{}
	for _, m := range Catalog {
		groups[m.Kind] = append(groups[m.Kind], m)
	}
	kinds := []MetricKind{KindCounterMetric, KindGaugeMetric, KindStateMetric, KindRateMetric}
	titles := map[MetricKind]string{
		KindCounterMetric: "Counters", KindGaugeMetric: "Gauges", KindStateMetric: "States", KindRateMetric: "Derived rates",
	}
	for _, k := range kinds {
		ms := groups[k]
		sort.SliceStable(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
		fmt.Fprintf(&b, "## %s\n\n", titles[k])
		if k == KindRateMetric {
			b.WriteString("| metric | unit | entity | derived from | Prometheus | description |\n|---|---|---|---|---|---|\n")
			for _, m := range ms {
				fmt.Fprintf(&b, "| `%s` | %s | %s | `%s` | `%s` | %s |\n", m.Name, m.Unit, m.Entity, m.DerivedFrom, m.PrometheusSampleName(), m.Description)
			}
		} else {
			b.WriteString("| metric | unit | entity | OpenConfig leaf | SNMP | Prometheus | description |\n|---|---|---|---|---|---|---|\n")
			for _, m := range ms {
				oc := "—"
				if m.OpenConfig != "" {
					oc = "`" + m.OpenConfig + "`"
				}
				sn := m.SNMP
				if sn == "" {
					sn = "—"
				}
				fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | `%s` | %s |\n", m.Name, m.Unit, m.Entity, oc, sn, m.PrometheusSampleName(), m.Description)
			}
		}
		b.WriteString("\n")
	}
	b.WriteString(prometheusDoc)
	_, err := io.WriteString(w, b.String())
	return err
}

// prometheusDoc is docs/metrics.md's section on /metrics/devices; the
// Prometheus column of the tables above comes from Metric.PrometheusName.
const prometheusDoc = `## Prometheus: ` + "`/metrics/devices`" + `

` + "`GET /metrics/devices`" + ` (on ` + "`http.listen`" + `, beside the service's own ` + "`/metrics`" + `) exposes the devices'
latest values for a Prometheus to scrape, as it scrapes snmp_exporter. It needs a token with the
` + "`read`" + ` scope when tokens are configured (as ` + "`/v1/query`" + `); a hub does not serve it. The format is
OpenMetrics 1.0 (` + "`application/openmetrics-text; version=1.0.0`" + `, what Prometheus asks for first),
or the Prometheus text format 0.0.4 when the ` + "`Accept`" + ` header prefers it or is absent; gzip when the
scraper accepts it. The page is streamed: the store is walked in chunks written straight to the
connection, so the handler holds a few bytes per series (their grouping by metric) and the
features' values, never the page.

What the page holds:

| family | type | labels | value, timestamp |
|---|---|---|---|
| every catalog metric, named as in the Prometheus column above | counter for counters (samples end in ` + "`_total`" + `), gauge otherwise | ` + "`device`, `component`" + ` (when the series has one), ` + "`site`, `role`" + ` | the series' newest stored sample, at its event time |
| ` + "`feature_<metric>_<aggregation>[_<unit>]`" + `, e.g. ` + "`feature_interface_in_bps_mean_bits_per_second`" + ` | gauge | the entity's, plus ` + "`view`" + ` and ` + "`window`" + ` (` + "`1m`" + `) | the feature of the entity's latest closed window, at the window's end; a window without data is left out |
| ` + "`device_up`" + ` | gauge | ` + "`device`, `site`, `role`, `protocol`" + ` (snmp, gnmi) | 1 when the collector reaches the device (state ` + "`up`" + `), else 0; no timestamp. A cluster node leaves out the targets another node owns |
| ` + "`device_last_success_timestamp_seconds`" + ` | gauge | as ` + "`device_up`" + ` | Unix time of the last successful poll or update |
| ` + "`action_firing`" + ` | gauge | ` + "`device`, `component`, `site`, `role`, `model`" + ` | 1 while the model's (or rule's) action on the entity fires, 0 while pending or resolved (the SQL ` + "`actions`" + ` table) |

Names: the canonical name with every character outside ` + "`[a-zA-Z0-9_:]`" + ` turned into ` + "`_`" + `, then the
unit as OpenMetrics wants it, a suffix of the name (bytes, packets, bits_per_second,
packets_per_second, ratio, celsius, dbm, db, seconds; an enumeration has none: its value is the
number in the States table). A feature's unit is its metric's, per second for ` + "`rate`" + `, none for
` + "`count`" + `, which is named ` + "`_samples`" + ` (` + "`feature_interface_in_bps_samples`" + `) to keep clear of the ` + "`_count`" + `
suffix of histograms (and a ` + "`sum`" + ` without unit ends in ` + "`_sum_value`" + `). Only catalog metrics are exposed.

Labels: ` + "`site`" + ` and ` + "`role`" + ` come from ` + "`normalize.inventory.<device>`" + `; an edge's devices without a site
get the edge's ` + "`site`" + `; empty labels are left out. Label values are escaped as both formats require
(backslash, double quote and line feed) and invalid UTF-8 is replaced by U+FFFD.

Age: a sample (or a window end) older than 10 minutes is left out, since Prometheus refuses
samples older than its head (about an hour) and no query looks back further than 5 minutes;
` + "`?max_age=30m`" + ` changes it (` + "`0s`" + `: everything, at most ` + "`168h`" + `). The service's ` + "`/metrics`" + ` counts the
pages: ` + "`netfeat_device_metrics_scrape_seconds`" + ` (histogram), ` + "`netfeat_device_metrics_series`" + `,
` + "`netfeat_device_metrics_write_errors_total`" + `.

A scrape configuration (deploy/prometheus/prometheus.yml is the one ` + "`docker compose up`" + ` runs, with
Grafana and deploy/grafana/netfeat.json):

` + "```yaml" + `
scrape_configs:
  - job_name: netfeat                 # the service's own metrics, no token
    static_configs: [{targets: ["netfeat:9464"]}]
  - job_name: netfeat-devices
    metrics_path: /metrics/devices
    scrape_interval: 15s              # samples keep their event time (honor_timestamps)
    authorization: {type: Bearer, credentials_file: /etc/prometheus/netfeat-read-token}
    static_configs: [{targets: ["netfeat:9464"]}]
` + "```" + `

A page of 1,000 devices × 50 interfaces (800,000 series, 150,000 features, 113 MB) is measured in
docs/performance.md ("Prometheus page").
`
