package snmp

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/internal/sim/snmpagent"
	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

// The load test: 1,000 simulated devices × 50 interfaces, polled every
// 10 s by a poller limited to one core (GOMAXPROCS=1), with the simulator
// in a separate process (this test binary re-executed) so that the
// poller's CPU and memory are measured alone. Each device answers what the
// generic profile polls (loadPlan: 1,306 values per poll). Run it with
//
//	NETFEAT_SNMP_LOAD=1 go test -tags duckdb_arrow -run TestLoad -v ./collectors/snmp/
//
// NETFEAT_SNMP_LOAD_DEVICES and NETFEAT_SNMP_LOAD_SECONDS override the
// device count and the measured duration (default 30 s, after one interval
// of warm-up); NETFEAT_SNMP_LOAD_SIM_CPUS runs the simulator under
// `taskset -c` (pin the test binary itself to another CPU to keep the two
// apart).

const loadRoleEnv = "NETFEAT_SNMP_LOAD_ROLE"

// loadPlan is what the generic profile (normalize/profiles) polls on the
// load recording's sysObjectID: 6 scalars (3 of them the identity) and 27
// columns, all present in loadRecording.
var loadPlan = StaticPlan{
	Profile: "generic",
	Scalars: []string{"1.3.6.1.4.1.2021.4.5.0", "1.3.6.1.4.1.2021.4.6.0", "1.3.6.1.4.1.2021.11.11.0"},
	Columns: []string{
		"1.3.6.1.2.1.2.2.1.2", "1.3.6.1.2.1.2.2.1.5", "1.3.6.1.2.1.2.2.1.7", "1.3.6.1.2.1.2.2.1.8",
		"1.3.6.1.2.1.2.2.1.10", "1.3.6.1.2.1.2.2.1.11", "1.3.6.1.2.1.2.2.1.13", "1.3.6.1.2.1.2.2.1.14",
		"1.3.6.1.2.1.2.2.1.16", "1.3.6.1.2.1.2.2.1.17", "1.3.6.1.2.1.2.2.1.19", "1.3.6.1.2.1.2.2.1.20",
		"1.3.6.1.2.1.25.3.3.1.2",
		"1.3.6.1.2.1.31.1.1.1.1", "1.3.6.1.2.1.31.1.1.1.2", "1.3.6.1.2.1.31.1.1.1.3", "1.3.6.1.2.1.31.1.1.1.4",
		"1.3.6.1.2.1.31.1.1.1.5", "1.3.6.1.2.1.31.1.1.1.6", "1.3.6.1.2.1.31.1.1.1.7", "1.3.6.1.2.1.31.1.1.1.8",
		"1.3.6.1.2.1.31.1.1.1.9", "1.3.6.1.2.1.31.1.1.1.10", "1.3.6.1.2.1.31.1.1.1.11", "1.3.6.1.2.1.31.1.1.1.12",
		"1.3.6.1.2.1.31.1.1.1.13", "1.3.6.1.2.1.31.1.1.1.15",
	},
}

// loadRecording writes the snmprec `netfeat bench --snmp` serves
// (snmpagent.SyntheticRouter).
func loadRecording(path string, ifaces int) error {
	return os.WriteFile(path, []byte(snmpagent.SyntheticRouter(ifaces)), 0o644)
}

// loadValuesPerPoll is what one poll of a loadRecording device yields:
// the 6 scalars, one processor and ifaces rows of 26 interface columns.
func loadValuesPerPoll(ifaces int) int { return 6 + 1 + 26*ifaces }

// runLoadSimulator is the child process: it serves n copies of the
// recording and prints one address per line, then waits for stdin to close.
func runLoadSimulator() {
	n, _ := strconv.Atoi(os.Getenv("NETFEAT_SNMP_LOAD_DEVICES"))
	mib, err := snmpagent.LoadMIB(os.Getenv("NETFEAT_SNMP_LOAD_FILE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sim := snmpagent.NewSimulator(nil)
	for i := range n {
		d, err := snmpagent.NewDevice(mib, snmpagent.DeviceOptions{Name: fmt.Sprintf("sim-%04d", i), Community: "public", Rate: 125_000})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		sim.Add(d, "127.0.0.1:0")
	}
	if err := sim.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	for _, ep := range sim.Endpoints() {
		fmt.Fprintln(w, ep.Addr)
	}
	w.Flush()
	bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
	sim.Stop(context.Background())
	os.Exit(0)
}

// peakRSS returns this process's VmHWM in bytes (0 if unknown).
func peakRSS() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// pollCounts sums netfeat_snmp_polls_total by result and
// netfeat_snmp_polls_skipped_total.
func pollCounts(t *testing.T, reg *prometheus.Registry) (byResult map[string]float64, skipped float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byResult = map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "netfeat_snmp_polls_total":
				for _, l := range m.GetLabel() {
					if l.GetName() == "result" {
						byResult[l.GetValue()] += m.GetCounter().GetValue()
					}
				}
			case "netfeat_snmp_polls_skipped_total":
				skipped += m.GetCounter().GetValue()
			}
		}
	}
	return byResult, skipped
}

func TestLoad1000Devices(t *testing.T) {
	if os.Getenv("NETFEAT_SNMP_LOAD") == "" {
		t.Skip("set NETFEAT_SNMP_LOAD=1 to run the 1,000-device load test")
	}
	devices := 1000
	if v, err := strconv.Atoi(os.Getenv("NETFEAT_SNMP_LOAD_DEVICES")); err == nil {
		devices = v
	}
	measure := 30 * time.Second
	if v, err := strconv.Atoi(os.Getenv("NETFEAT_SNMP_LOAD_SECONDS")); err == nil {
		measure = time.Duration(v) * time.Second
	}
	const interval, ifaces = 10 * time.Second, 50
	file := filepath.Join(t.TempDir(), "if50.snmprec")
	if err := loadRecording(file, ifaces); err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^$")
	if cpus := os.Getenv("NETFEAT_SNMP_LOAD_SIM_CPUS"); cpus != "" {
		child = exec.Command("taskset", "-c", cpus, os.Args[0], "-test.run=^$")
	}
	child.Env = append(os.Environ(), loadRoleEnv+"=sim", "NETFEAT_SNMP_LOAD_FILE="+file,
		"NETFEAT_SNMP_LOAD_DEVICES="+strconv.Itoa(devices))
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); child.Wait() }()
	cfg := DefaultConfig()
	sc := bufio.NewScanner(stdout)
	for len(cfg.Targets) < devices && sc.Scan() {
		cfg.Targets = append(cfg.Targets, Target{Name: fmt.Sprintf("sim-%04d", len(cfg.Targets)), Address: sc.Text()})
	}
	if len(cfg.Targets) != devices {
		t.Fatalf("simulator gave %d addresses, want %d", len(cfg.Targets), devices)
	}
	cfg.Defaults.Interval = interval
	cfg.Defaults.Timeout = 5 * time.Second

	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	var obs atomic.Int64
	sink := schema.ObservationSinkFunc(func(_ context.Context, b []schema.Observation) error {
		obs.Add(int64(len(b)))
		return nil
	})
	reg := prometheus.NewRegistry()
	p, err := New(cfg, loadPlan, sink, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(interval) // warm-up: every device identified once
	res0, _ := pollCounts(t, reg)
	cpu0, obs0, wall0 := testkit.ProcessCPU(), obs.Load(), time.Now()
	time.Sleep(measure)
	cpu, wall := testkit.ProcessCPU()-cpu0, time.Since(wall0)
	n := obs.Load() - obs0
	res1, skipped := pollCounts(t, reg)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	goroutines := runtime.NumGoroutine()
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	polls := res1["ok"] - res0["ok"]
	failed := 0.0
	for r, v := range res1 {
		if r != "ok" {
			failed += v
		}
	}
	offered := float64(devices*loadValuesPerPoll(ifaces)) / interval.Seconds()
	t.Logf("devices=%d interfaces=%d interval=%v measured=%v GOMAXPROCS=1; offered %.0f values/s (%d per poll)",
		devices, ifaces, interval, wall.Round(time.Millisecond), offered, loadValuesPerPoll(ifaces))
	t.Logf("observations=%d (%.0f/s, %.1f%% of offered); ok polls=%.0f (%.1f/s; %d due per interval)",
		n, float64(n)/wall.Seconds(), 100*float64(n)/wall.Seconds()/offered, polls, polls/wall.Seconds(), devices)
	t.Logf("poller CPU: %v = %.1f%% of one core; %.2f ms CPU per device poll; %.2f µs per value",
		cpu.Round(time.Millisecond), 100*cpu.Seconds()/wall.Seconds(), 1000*cpu.Seconds()/polls, 1e6*cpu.Seconds()/float64(n))
	t.Logf("memory: heap in use %.1f MiB (%.1f KiB per device), Go sys %.1f MiB, peak RSS %.1f MiB (%.3f MiB per device), goroutines %d",
		float64(ms.HeapInuse)/(1<<20), float64(ms.HeapInuse)/1024/float64(devices), float64(ms.Sys)/(1<<20),
		float64(peakRSS())/(1<<20), float64(peakRSS())/(1<<20)/float64(devices), goroutines)
	t.Logf("whole run (warm-up included): polls by result %v, slots skipped %.0f", res1, skipped)
	if failed > 0 || skipped > 0 {
		t.Fatalf("%v failed and %v skipped polls: the poller did not keep up", failed, skipped)
	}
	if want := float64(devices) * wall.Seconds() / interval.Seconds(); polls < 0.9*want {
		t.Fatalf("%.0f polls in %v, want about %.0f", polls, wall, want)
	}
}
