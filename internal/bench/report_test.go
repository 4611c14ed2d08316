package bench

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func sampleReport() *Report {
	exp, miss := 2000, 0
	r := &Report{
		SchemaVersion: ReportSchemaVersion, Workload: WorkloadInject, Started: time.Unix(1700000000, 0).UTC(),
		Machine: Machine{CPUs: 2, CPUModel: "test cpu", OS: "linux/amd64", GoVersion: "go1.26"},
		Service: "in-process",
		Load:    Load{Devices: 10, Interfaces: 10, OfferedPerSec: 20000, Hop: "1s", Injectors: 1, Warmup: "2s", Duration: "5s"},
		Steps: []Step{{
			OfferedObsPerSec: 20000, Seconds: 5, Observations: 100000, ObsPerSec: 20000, Samples: 200000, SamplesPerSec: 40000,
			KeptUp: true, CPUSeconds: 1.1, GeneratorCPUSeconds: 0.1, ServiceCPUSeconds: 1, CPUPerMillionSamples: 5, SamplesPerCPUSecond: 200000,
			Decisions: DecisionStats{Received: 2000, Expected: &exp, Missing: &miss,
				WindowCloseToSubscriber: &LatencySummary{Count: 2000, P50US: 300, P99US: 1200, P999US: 2500, MaxUS: 2600},
				ServiceIngestToDecision: LatencySummary{Count: 2000, P50US: 5e5}, PublishToSubscriber: LatencySummary{Count: 2000, P50US: 90}},
		}},
		Queries: []QueryStats{{Kind: queryPoint, SQL: "SELECT 1", OK: 10, Latency: LatencySummary{Count: 10, P50US: 800, P99US: 1900}},
			{Kind: queryAggregate, SQL: aggregateSQL, OK: 2, Errors: 1, ErrorSamples: map[string]int{"HTTP 503: busy": 1}}},
		Memory: Memory{PeakRSSBytes: 300 << 20, RSSBytes: 290 << 20, HotSamples: 1e6, HotBytes: 20e6, HotBytesPerSample: 20, RSSBytesPerHotSample: 304},
		Drops:  []Drop{{Metric: "netfeat_store_late_samples_total", Labels: "outcome=dropped", Value: 3, Series: 1}},
	}
	return r
}

// TestReportJSONShape pins the JSON field names machines read.
func TestReportJSONShape(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"schema_version", "workload", "started", "machine", "service", "load", "steps", "headline_step", "queries", "memory", "drops"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("top-level key %q missing", k)
		}
	}
	if _, ok := doc["comparison"]; ok {
		t.Error("comparison present without a peer run")
	}
	step := doc["steps"].([]any)[0].(map[string]any)
	for _, k := range []string{"samples_per_s", "obs_per_s", "cpu_s_per_million_samples", "samples_per_cpu_s", "service_cpu_s", "generator_cpu_s", "kept_up", "decisions"} {
		if _, ok := step[k]; !ok {
			t.Errorf("step key %q missing", k)
		}
	}
	dec := step["decisions"].(map[string]any)
	for _, k := range []string{"received", "expected", "missing", "window_close_to_subscriber", "service_ingest_to_decision", "publish_to_subscriber"} {
		if _, ok := dec[k]; !ok {
			t.Errorf("decisions key %q missing", k)
		}
	}
	lat := dec["window_close_to_subscriber"].(map[string]any)
	var keys []string
	for k := range lat {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"count", "max_us", "mean_us", "min_us", "p50_us", "p90_us", "p999_us", "p99_us"}; !slices.Equal(keys, want) {
		t.Errorf("latency keys %v, want %v", keys, want)
	}
	mem := doc["memory"].(map[string]any)
	for _, k := range []string{"peak_rss_bytes", "hot_bytes_per_sample", "rss_bytes_per_hot_sample"} {
		if _, ok := mem[k]; !ok {
			t.Errorf("memory key %q missing", k)
		}
	}
	// The collector workloads add the per-device figures.
	snmp := sampleReport()
	snmp.Workload, snmp.Load.Devices, snmp.Load.OfferedPerSec = WorkloadSNMP, 200, 25000
	snmp.perDevice()
	buf.Reset()
	if err := snmp.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	doc = nil
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if got := doc["memory"].(map[string]any)["peak_rss_bytes_per_device"]; got != float64(300<<20)/200 {
		t.Errorf("peak_rss_bytes_per_device = %v, want %v", got, float64(300<<20)/200)
	}
	if got := doc["steps"].([]any)[0].(map[string]any)["collected_ratio"]; got != 0.8 {
		t.Errorf("collected_ratio = %v, want 0.8 (20,000 of 25,000 values/s)", got)
	}
	if _, ok := mem["peak_rss_bytes_per_device"]; ok {
		t.Error("inject report has peak_rss_bytes_per_device")
	}
	// An empty drop list is [] (nothing dropped), never null.
	r := sampleReport()
	r.Drops = []Drop{}
	buf.Reset()
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"drops": []`) {
		t.Errorf("empty drops not written as []:\n%s", buf.String())
	}
}

// TestReportText checks that the summary shows the headline figures and
// every drop.
func TestReportText(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"inject workload, service in-process",
		"samples into the hot tier                200,000        40,000/s",
		"received 2000 of 2000 expected",
		"window close → subscriber      n=2000    p50 300µs     p99 1.20ms",
		"5.000 CPU s per million samples = 200,000 samples per CPU-second",
		"netfeat_store_late_samples_total{outcome=dropped}",
		"1× HTTP 503: busy",
		"20.00 B/sample",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	r := sampleReport()
	r.Drops = nil
	buf.Reset()
	_ = r.WriteText(&buf)
	if !strings.Contains(buf.String(), "whole run):\n  none\n") {
		t.Errorf("no drops should print none:\n%s", buf.String())
	}
}

func TestNum(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.4: "1,234,567", -45000: "-45,000"} {
		if got := num(in); got != want {
			t.Errorf("num(%v) = %q, want %q", in, got, want)
		}
	}
}
