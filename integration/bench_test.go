package integration

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"testing"
)

// benchReport is the part of `netfeat bench --json` the tests check.
type benchReport struct {
	Workload string `json:"workload"`
	Service  string `json:"service"`
	Steps    []struct {
		Observations         int64   `json:"observations"`
		ObsPerSec            float64 `json:"obs_per_s"`
		Samples              int64   `json:"samples"`
		SamplesPerSec        float64 `json:"samples_per_s"`
		ServiceCPUSeconds    float64 `json:"service_cpu_s"`
		CPUPerMillionSamples float64 `json:"cpu_s_per_million_samples"`
		Decisions            struct {
			Received                int  `json:"received"`
			Expected                *int `json:"expected"`
			Missing                 *int `json:"missing"`
			WindowCloseToSubscriber *struct {
				Count int     `json:"count"`
				P50US float64 `json:"p50_us"`
				P99US float64 `json:"p99_us"`
			} `json:"window_close_to_subscriber"`
		} `json:"decisions"`
	} `json:"steps"`
	Queries []struct {
		Kind   string `json:"kind"`
		OK     int    `json:"ok"`
		Errors int    `json:"errors"`
	} `json:"queries"`
	Memory struct {
		PeakRSSBytes      int64   `json:"peak_rss_bytes"`
		HotSamples        int64   `json:"hot_samples"`
		HotBytesPerSample float64 `json:"hot_bytes_per_sample"`
	} `json:"memory"`
	Drops []struct {
		Metric string   `json:"metric"`
		Labels string   `json:"labels"`
		Value  float64  `json:"value"`
		Where  []string `json:"where"`
	} `json:"drops"`
}

func runBench(t *testing.T, args ...string) benchReport {
	t.Helper()
	cmd := exec.Command(netfeatBin, append([]string{"bench", "--json", "--no-progress"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("netfeat bench %v: %v\nstderr:\n%s\nstdout:\n%s", args, err, stderr.String(), stdout.String())
	}
	var rep benchReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("bench output is not the JSON report: %v\n%s", err, stdout.String())
	}
	return rep
}

// TestBenchInject runs a short injection bench against the real service and
// checks that its figures are sane: the offered rate was held, samples
// reached the hot tier at two per counter observation, every closed window
// produced its decision, queries ran, and nothing was dropped.
func TestBenchInject(t *testing.T) {
	rep := runBench(t, "--inject", "--rate", "20000", "--devices", "20", "--interfaces", "10",
		"--duration", "3s", "--warmup", "2s", "--query-rate", "10")
	if rep.Workload != "inject" || rep.Service != "in-process" || len(rep.Steps) != 1 {
		t.Fatalf("report: %+v", rep)
	}
	s := rep.Steps[0]
	if s.ObsPerSec < 0.8*20000 || s.ObsPerSec > 1.1*20000 {
		t.Errorf("obs/s = %.0f, want about 20000", s.ObsPerSec)
	}
	// Every counter observation after the first yields its rate as well.
	if s.Samples < 19*s.Observations/10 || s.Samples > 2*s.Observations {
		t.Errorf("%d samples from %d observations, want about two each", s.Samples, s.Observations)
	}
	if s.ServiceCPUSeconds <= 0 || s.CPUPerMillionSamples <= 0 {
		t.Errorf("CPU figures not positive: %+v", s)
	}
	d := s.Decisions
	if d.Expected == nil || *d.Expected == 0 || d.Received < *d.Expected || *d.Missing != 0 {
		t.Errorf("decisions: received %d, expected %v, missing %v", d.Received, d.Expected, d.Missing)
	}
	if c := d.WindowCloseToSubscriber; c == nil || c.Count == 0 || c.P50US <= 0 || c.P99US < c.P50US {
		t.Errorf("window close → subscriber latency: %+v", c)
	}
	if rep.Memory.PeakRSSBytes <= 0 || rep.Memory.HotSamples <= 0 || rep.Memory.HotBytesPerSample < 8 || rep.Memory.HotBytesPerSample > 200 {
		t.Errorf("memory: %+v", rep.Memory)
	}
	queried := 0
	for _, q := range rep.Queries {
		queried += q.OK
		if q.Errors > 0 {
			t.Errorf("%d %s queries failed", q.Errors, q.Kind)
		}
	}
	if queried == 0 {
		t.Error("no query answered")
	}
	if rep.Drops == nil {
		t.Error("drops missing from the report (want [] when none)")
	}
	for _, dr := range rep.Drops {
		if dr.Metric == "netfeat_normalize_unmapped_total" && dr.Labels == "reason=no_mapping" {
			only := len(dr.Where) > 0
			for _, w := range dr.Where {
				only = only && identification[w]
			}
			if only {
				continue
			}
		}
		t.Errorf("drop reported: %s{%s} = %v at %v", dr.Metric, dr.Labels, dr.Value, dr.Where)
	}
}

// identification is what the poller fetches to pick a device's profile and
// the normalizer counts as unmapped: sysDescr and sysObjectID.
var identification = map[string]bool{"path=1.3.6.1.2.1.1.1.0": true, "path=1.3.6.1.2.1.1.2.0": true}

// TestBenchSNMP polls a few simulated devices through a `netfeat serve`
// child and checks that samples and decisions flow and polls do not fail.
func TestBenchSNMP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a netfeat serve child for ~8s")
	}
	rep := runBench(t, "--snmp", "--devices", "5", "--interfaces", "4", "--interval", "1s", "--duration", "3s", "--warmup", "2s")
	if rep.Service != "child process (netfeat serve)" || len(rep.Steps) != 1 {
		t.Fatalf("report: %+v", rep)
	}
	s := rep.Steps[0]
	if s.Observations == 0 || s.Samples == 0 || s.Decisions.Received == 0 {
		t.Errorf("nothing flowed: %+v", s)
	}
	for _, dr := range rep.Drops {
		if dr.Metric == "netfeat_normalize_unmapped_total" && dr.Labels == "reason=no_mapping" {
			only := len(dr.Where) > 0
			for _, w := range dr.Where {
				only = only && identification[w]
			}
			if only {
				continue
			}
		}
		t.Errorf("drop reported: %s{%s} = %v at %v", dr.Metric, dr.Labels, dr.Value, dr.Where)
	}
}
