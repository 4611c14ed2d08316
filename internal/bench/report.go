package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// ReportSchemaVersion is the version of the JSON report; it changes when a
// field changes meaning or is removed.
const ReportSchemaVersion = 1

// Report is the outcome of a bench run. Its JSON form is what
// `netfeat bench --json` prints.
type Report struct {
	SchemaVersion int       `json:"schema_version"`
	Workload      Workload  `json:"workload"`
	Started       time.Time `json:"started"`
	Machine       Machine   `json:"machine"`
	// Service says how the service under test ran: "in-process" (inject:
	// CPU and memory are the bench process's, the load generator's CPU
	// estimated and subtracted) or "child process" (its own /proc).
	Service string `json:"service"`
	Load    Load   `json:"load"`
	// Steps are the measured intervals: one for a fixed rate, one per rate
	// for the ceiling search.
	Steps []Step `json:"steps"`
	// Headline is the step the summary reports: the only one, or the one
	// with the highest samples/s into the hot tier.
	Headline int `json:"headline_step"`
	// Queries are the query mix's results over all steps.
	Queries []QueryStats `json:"queries,omitempty"`
	// Memory is measured at the end of the run.
	Memory Memory `json:"memory"`
	// Drops lists every non-zero drop, loss, refusal or failure counter
	// of the service at the end of the run (warm-up included), plus the
	// bench's own (injection errors, decisions missing, subscriber drops).
	Drops []Drop `json:"drops"`
	// Comparison is the side-by-side run with a peer collector.
	Comparison *Comparison `json:"comparison,omitempty"`
	Notes      []string    `json:"notes,omitempty"`
}

// perDevice fills the collector workloads' (snmp, gnmi) figures relative
// to the offered load: peak RSS per device and each step's share of the
// offered values collected.
func (r *Report) perDevice() {
	if r.Workload != WorkloadSNMP && r.Workload != WorkloadGNMI {
		return
	}
	if r.Load.Devices > 0 {
		r.Memory.PeakRSSBytesPerDevice = float64(r.Memory.PeakRSSBytes) / float64(r.Load.Devices)
	}
	if r.Load.OfferedPerSec > 0 {
		for i := range r.Steps {
			r.Steps[i].CollectedRatio = r.Steps[i].ObsPerSec / r.Load.OfferedPerSec
		}
	}
}

// Machine describes where the run happened.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model,omitempty"`
	OS        string `json:"os"`
	GoVersion string `json:"go_version"`
	// LoadAvg is /proc/loadavg's 1-minute figure at the start: other work
	// on the machine shows there.
	LoadAvg string `json:"load_avg_1m,omitempty"`
}

// Load describes the offered load.
type Load struct {
	Devices    int `json:"devices"`
	Interfaces int `json:"interfaces_per_device,omitempty"`
	// Interval is the SNMP poll or gNMI update interval.
	Interval string `json:"interval,omitempty"`
	// LeavesPerTarget is the simulated gNMI target's leaf count; every
	// leaf is republished every interval.
	LeavesPerTarget int `json:"leaves_per_target,omitempty"`
	// OfferedPerSec is the raw values per second the devices offer (gnmi,
	// snmp: every polled value every interval) or the first injected rate.
	OfferedPerSec float64 `json:"offered_values_per_s"`
	// ValuesPerPoll is what one poll of a simulated SNMP device yields
	// (the profile's scalars and every row of its columns).
	ValuesPerPoll int    `json:"values_per_poll,omitempty"`
	Hop           string `json:"decision_view_hop"`
	Injectors     int    `json:"injectors,omitempty"`
	// EventsPerSec is the link changes per second of --events.
	EventsPerSec float64 `json:"events_per_s,omitempty"`
	Warmup       string  `json:"warmup"`
	Duration     string  `json:"duration_per_step"`
}

// Step is one measured interval.
type Step struct {
	// OfferedObsPerSec is the injection rate asked for (inject).
	OfferedObsPerSec float64 `json:"offered_obs_per_s,omitempty"`
	Seconds          float64 `json:"seconds"`
	// Observations into the normalizer; Samples appended to the hot tier
	// (counter observations also yield their rates).
	Observations  int64   `json:"observations"`
	ObsPerSec     float64 `json:"obs_per_s"`
	Samples       int64   `json:"samples"`
	SamplesPerSec float64 `json:"samples_per_s"`
	// KeptUp is false when the achieved rate fell below 95% of the offered
	// one (inject).
	KeptUp bool `json:"kept_up"`
	// CPUSeconds is the service process's CPU in the step. In-process,
	// GeneratorCPUSeconds (measured per observation, times the
	// observations) is subtracted to give ServiceCPUSeconds.
	CPUSeconds          float64 `json:"cpu_s"`
	GeneratorCPUSeconds float64 `json:"generator_cpu_s,omitempty"`
	ServiceCPUSeconds   float64 `json:"service_cpu_s"`
	// SimulatorCPUSeconds is the SNMP simulator process's CPU in the step
	// (snmp; not part of the service's).
	SimulatorCPUSeconds float64 `json:"simulator_cpu_s,omitempty"`
	// CPUPerMillionSamples is service CPU seconds per million samples into
	// the hot tier; SamplesPerCPUSecond its inverse (what one core
	// sustains).
	// CollectedRatio is ObsPerSec over the offered values/s (snmp, gnmi):
	// the share of what the devices offered that reached the normalizer.
	CollectedRatio       float64       `json:"collected_ratio,omitempty"`
	CPUPerMillionSamples float64       `json:"cpu_s_per_million_samples"`
	SamplesPerCPUSecond  float64       `json:"samples_per_cpu_s"`
	Decisions            DecisionStats `json:"decisions"`
	InjectErrors         int64         `json:"inject_errors,omitempty"`

	start, end time.Time
}

// Memory is the service's memory at the end of the run.
type Memory struct {
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	RSSBytes     int64 `json:"rss_bytes"`
	// PeakRSSBytesPerDevice is PeakRSSBytes over the devices or targets
	// (snmp, gnmi).
	PeakRSSBytesPerDevice float64 `json:"peak_rss_bytes_per_device,omitempty"`
	// GoHeapInuseBytes and GoSysBytes are the service's Go heap in use
	// and the memory the Go runtime holds from the OS
	// (go_memstats_heap_inuse_bytes, go_memstats_sys_bytes) at the end;
	// RSS above GoSysBytes is outside Go (DuckDB, the hot tier's regions).
	GoHeapInuseBytes int64 `json:"go_heap_inuse_bytes,omitempty"`
	GoSysBytes       int64 `json:"go_sys_bytes,omitempty"`
	// MemoryShedBytes is what the service shed to stay under its memory
	// limit (netfeat_memory_shed_bytes_total).
	MemoryShedBytes int64 `json:"memory_shed_bytes,omitempty"`
	// HotSamples and HotBytes are the store's netfeat_store_hot_samples and
	// netfeat_store_hot_bytes gauges.
	HotSamples int64 `json:"hot_samples"`
	HotBytes   int64 `json:"hot_bytes"`
	// HotBytesPerSample is HotBytes/HotSamples; RSSBytesPerHotSample is
	// the whole process's RSS over the hot samples.
	HotBytesPerSample    float64 `json:"hot_bytes_per_sample"`
	RSSBytesPerHotSample float64 `json:"rss_bytes_per_hot_sample"`
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			m.LoadAvg = f[0]
		}
	}
	return m
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// WriteText writes the readable summary.
func (r *Report) WriteText(w io.Writer) error {
	b := bufio.NewWriter(w)
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("netfeat bench — %s workload, service %s\n", r.Workload, r.Service)
	p("machine: %d CPUs, %s, %s, %s, load average %s at start\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.OS, r.Machine.GoVersion, r.Machine.LoadAvg)
	l := r.Load
	switch r.Workload {
	case WorkloadInject:
		p("load: %d devices × %d interfaces × %d counters, %d injector(s), first rate %s obs/s\n", l.Devices, l.Interfaces, len(injectCounters), l.Injectors, num(l.OfferedPerSec))
	case WorkloadSNMP:
		p("load: %d SNMP devices × %d interfaces polled every %s (%s values per poll, %s values/s offered)\n",
			l.Devices, l.Interfaces, l.Interval, num(float64(l.ValuesPerPoll)), num(l.OfferedPerSec))
	case WorkloadGNMI:
		p("load: %d gNMI targets × %d leaves every %s (%s updates/s offered)\n", l.Devices, l.LeavesPerTarget, l.Interval, num(l.OfferedPerSec))
	}
	p("warm-up %s, measured %s per step, decision view hop %s\n", l.Warmup, l.Duration, l.Hop)

	if len(r.Steps) > 1 {
		p("\nceiling search (each step %s):\n", l.Duration)
		p("  %14s %14s %14s %12s %12s  %s\n", "offered obs/s", "obs/s", "samples/s", "cpu s/M smp", "close→sub p99", "kept up")
		for i, s := range r.Steps {
			mark := ""
			if i == r.Headline {
				mark = "  ← headline"
			}
			p99 := "-"
			if c := s.Decisions.WindowCloseToSubscriber; c != nil {
				p99 = dur(c.P99US)
			}
			p("  %14s %14s %14s %12.3f %12s  %v%s\n", num(s.OfferedObsPerSec), num(s.ObsPerSec), num(s.SamplesPerSec), s.CPUPerMillionSamples, p99, s.KeptUp, mark)
		}
	}
	if r.Headline < len(r.Steps) {
		s := r.Steps[r.Headline]
		p("\nthroughput (%.1f s measured):\n", s.Seconds)
		p("  observations into the normalizer  %14s  %12s/s", num(float64(s.Observations)), num(s.ObsPerSec))
		if s.CollectedRatio > 0 {
			p("   (%.1f%% of the offered values)", 100*s.CollectedRatio)
		}
		p("\n")
		p("  samples into the hot tier         %14s  %12s/s", num(float64(s.Samples)), num(s.SamplesPerSec))
		if s.OfferedObsPerSec > 0 {
			p("   (offered %s obs/s, kept up: %v)", num(s.OfferedObsPerSec), s.KeptUp)
		}
		p("\n\ncpu:\n")
		if s.GeneratorCPUSeconds > 0 {
			p("  process %.2f s − load generator %.2f s (measured per observation) = service %.2f s\n", s.CPUSeconds, s.GeneratorCPUSeconds, s.ServiceCPUSeconds)
		} else {
			p("  service process %.2f s (%.0f%% of one core)\n", s.ServiceCPUSeconds, 100*s.ServiceCPUSeconds/s.Seconds)
		}
		p("  %.3f CPU s per million samples = %s samples per CPU-second\n", s.CPUPerMillionSamples, num(s.SamplesPerCPUSecond))
		if s.Observations > 0 && r.Workload != WorkloadInject {
			p("  %.2f µs CPU per value collected\n", 1e6*s.ServiceCPUSeconds/float64(s.Observations))
		}
		if s.SimulatorCPUSeconds > 0 {
			p("  simulators (own process) %.2f s (%.0f%% of one core), not counted above\n", s.SimulatorCPUSeconds, 100*s.SimulatorCPUSeconds/s.Seconds)
		}

		d := s.Decisions
		p("\ndecisions (outside NATS subscriber on %s):\n", decisionSubject)
		p("  received %d", d.Received)
		if d.Expected != nil {
			p(" of %d expected (one per entity per closed window), missing %d", *d.Expected, *d.Missing)
		}
		p("\n")
		if c := d.WindowCloseToSubscriber; c != nil {
			p("  window close → subscriber      %s\n", latLine(*c))
		}
		if c := d.CompletingSampleToSubscriber; c != nil {
			p("  completing sample → subscriber %s\n", latLine(*c))
			p("  service trigger_to_decision    %s\n", latLine(*d.ServiceTriggerToDecision))
		}
		p("  service ingest_to_decision     %s\n", latLine(d.ServiceIngestToDecision))
		p("  decision time → subscriber     %s\n", latLine(d.PublishToSubscriber))
	}
	if r.Headline < len(r.Steps) {
		d := r.Steps[r.Headline].Decisions
		if e := d.EventToSubscriber; e != nil {
			p("\nlink events → decision at the subscriber (%v changes/s; matched %d of %d sent):\n", l.EventsPerSec, e.Matched, e.Sent)
			p("  all                            %s\n", latLine(e.LatencySummary))
			p("  SNMP trap sent →               %s\n", latLine(e.Traps))
			p("  gNMI notification timestamp →  %s\n", latLine(e.GNMI))
			p("  service trigger_to_decision    %s\n", latLine(e.ServiceTriggerToDecision))
			if e.SendErrors > 0 {
				p("  %d link changes failed to send; last: %s\n", e.SendErrors, e.LastSendError)
			}
		}
		if f := d.Floor; f != nil {
			p("floor, nothing of netfeat in the path (same subscriber, same time):\n")
			p("  NATS publish → subscriber      %s\n", latLine(f.NATS))
			p("  UDP → relay → NATS → subscr.   %s\n", latLine(f.UDPRelayNATS))
			p("  UDP → subscriber process       %s\n", latLine(f.UDP))
			if e := d.EventToSubscriber; e != nil && e.Count > 0 && f.UDPRelayNATS.Count > 0 {
				p("  events / UDP→relay→NATS floor: p50 ×%.1f, p99 ×%.1f\n", e.P50US/f.UDPRelayNATS.P50US, e.P99US/f.UDPRelayNATS.P99US)
			}
			if c := d.CompletingSampleToSubscriber; c != nil && f.NATS.Count > 0 {
				p("  completing sample / NATS floor: p50 ×%.1f, p99 ×%.1f\n", c.P50US/f.NATS.P50US, c.P99US/f.NATS.P99US)
			}
		}
	}
	if len(r.Queries) > 0 {
		p("\nqueries (POST /v1/query, during ingest):\n")
		for _, q := range r.Queries {
			p("  %-9s ok %6d  errors %5d  %s\n", q.Kind, q.OK, q.Errors, latLine(q.Latency))
			for msg, n := range q.ErrorSamples {
				p("            %d× %s\n", n, msg)
			}
		}
	}
	m := r.Memory
	p("\nmemory (end of run):\n")
	p("  peak RSS %s, RSS %s", bytesText(m.PeakRSSBytes), bytesText(m.RSSBytes))
	if m.PeakRSSBytesPerDevice > 0 {
		p(" (peak %.2f MiB per device)", m.PeakRSSBytesPerDevice/(1<<20))
	}
	p("\n")
	if m.GoSysBytes > 0 {
		p("  Go heap in use %s, Go runtime from the OS %s", bytesText(m.GoHeapInuseBytes), bytesText(m.GoSysBytes))
		if m.MemoryShedBytes > 0 {
			p("; shed to stay under memory_limit %s", bytesText(m.MemoryShedBytes))
		}
		p("\n")
	}
	p("  hot tier %s samples in %s = %.2f B/sample; RSS per hot sample %.2f B\n", num(float64(m.HotSamples)), bytesText(m.HotBytes), m.HotBytesPerSample, m.RSSBytesPerHotSample)

	p("\ndrops, losses, refusals, failures (every non-zero counter, whole run):\n")
	if len(r.Drops) == 0 {
		p("  none\n")
	}
	for _, d := range r.Drops {
		lb := ""
		if d.Labels != "" {
			lb = "{" + d.Labels + "}"
		}
		p("  %-60s %14s  (%d series)\n", d.Metric+lb, num(d.Value), d.Series)
		if len(d.Where) > 0 {
			p("      e.g. %s\n", strings.Join(d.Where, "; "))
		}
	}
	if c := r.Comparison; c != nil {
		p("\nside by side with %s on the same simulated devices:\n", c.Peer.Name)
		p("  %-9s %14s %14s %14s %14s %16s\n", "", "values/s", "cpu s", "cpu s/M values", "peak RSS", "RSS per series")
		for _, pr := range []PeerRun{c.Netfeat, c.Peer} {
			p("  %-9s %14s %14.2f %14.3f %14s %14.0f B\n", pr.Name, num(pr.ValuesPerSec), pr.CPUSeconds, pr.CPUPerMillionValues, bytesText(pr.PeakRSSBytes), pr.RSSPerSeries)
		}
		p("  %s / netfeat: CPU per value ×%.2f, RSS per series ×%.2f\n", c.Peer.Name, c.CPURatio, c.RSSRatio)
		for _, n := range c.Notes {
			p("  note: %s\n", n)
		}
	}
	for _, n := range r.Notes {
		p("\nnote: %s", n)
	}
	if len(r.Notes) > 0 {
		p("\n")
	}
	return b.Flush()
}

func latLine(s LatencySummary) string {
	if s.Count == 0 {
		return "n=0"
	}
	return fmt.Sprintf("n=%-7d p50 %-9s p99 %-9s p99.9 %-9s max %s", s.Count, dur(s.P50US), dur(s.P99US), dur(s.P999US), dur(s.MaxUS))
}

// dur renders microseconds compactly: 812µs, 1.24ms, 3.1s.
func dur(us float64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%.0fµs", us)
	case us < 1e6:
		return fmt.Sprintf("%.2fms", us/1e3)
	}
	return fmt.Sprintf("%.2fs", us/1e6)
}

// num renders a count with thousands separators.
func num(v float64) string {
	neg := v < 0
	if neg {
		v = -v
	}
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func bytesText(n int64) string {
	const mib = 1 << 20
	if n >= 10*mib {
		return fmt.Sprintf("%.0f MiB", float64(n)/mib)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/mib)
}
