// Package bench is netfeat's load generator: it drives a real netfeat
// service through its real entry points and measures what users care about.
//
// Workloads:
//
//   - inject: raw observations fed to the service's normalizer
//     (schema.ObservationSink) at a paced rate, or a rising rate to find the
//     ceiling of normalize + store. The service runs in the bench process.
//   - snmp: N simulated SNMP devices × M interfaces on loopback, served by a
//     `netfeat sim snmp` child process (internal/sim/snmpagent) and polled
//     by a `netfeat serve` child process; either can be pinned to CPUs.
//   - gnmi: K simulated gNMI targets (internal/sim/gnmitarget) streaming
//     at a given interval to a `netfeat serve` child process.
//
// Alongside any workload it can run a query mix (point lookups and
// aggregates over HTTP POST /v1/query), and an outside NATS subscriber
// measures decisions. The Report gives sustained samples/s into the hot
// tier, every drop counter the service exports, decision and query latency
// percentiles, CPU seconds per million samples, peak RSS and bytes per hot
// sample; with a Telegraf binary it runs the same simulated devices through
// Telegraf's snmp/gnmi inputs and NATS output and reports the ratios.
//
// Run is the entry point; `netfeat bench` is its command line.
package bench
