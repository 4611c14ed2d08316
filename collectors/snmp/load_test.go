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
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/collectors/sim/snmpagent"
	"github.com/netfeat/netfeat/schema"
)

// The load test: 1,000 simulated devices × 50 interfaces, polled every
// 10 s by a poller limited to one core (GOMAXPROCS=1), with the simulator
// in a separate process (this test binary re-executed) so that the
// poller's CPU and memory are measured alone. Run it with
//
//	NETFEAT_SNMP_LOAD=1 go test -run TestLoad -v ./collectors/snmp/
//
// NETFEAT_SNMP_LOAD_DEVICES and NETFEAT_SNMP_LOAD_SECONDS override the
// device count and the measured duration (default 30 s, after one interval
// of warm-up).

const loadRoleEnv = "NETFEAT_SNMP_LOAD_ROLE"

// loadRecording writes an snmprec with the system group and 50 IF-MIB
// interfaces (every column IFMIBPlan polls, plus ifIndex and ifType).
func loadRecording(path string, ifaces int) error {
	var b strings.Builder
	b.WriteString("1.3.6.1.2.1.1.1.0|4|Simulated 50-port router\n")
	b.WriteString("1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.99999.1\n")
	b.WriteString("1.3.6.1.2.1.1.3.0|67|123456\n")
	b.WriteString("1.3.6.1.2.1.1.5.0|4|sim\n")
	type col struct {
		oid string
		tag string
		val func(i int) string
	}
	cols := []col{
		{"1.3.6.1.2.1.2.2.1.1", "2", func(i int) string { return strconv.Itoa(i) }},
		{"1.3.6.1.2.1.2.2.1.2", "4", func(i int) string { return fmt.Sprintf("port 1/1/%d, 10/100/Gig Ethernet", i) }},
		{"1.3.6.1.2.1.2.2.1.3", "2", func(int) string { return "6" }},
		{"1.3.6.1.2.1.2.2.1.7", "2", func(int) string { return "1" }},
		{"1.3.6.1.2.1.2.2.1.8", "2", func(i int) string { return strconv.Itoa(1 + i%2) }},
		{"1.3.6.1.2.1.2.2.1.10", "65", func(i int) string { return strconv.Itoa(i * 1000003) }},
		{"1.3.6.1.2.1.2.2.1.13", "65", func(i int) string { return strconv.Itoa(i) }},
		{"1.3.6.1.2.1.2.2.1.14", "65", func(i int) string { return strconv.Itoa(i) }},
		{"1.3.6.1.2.1.2.2.1.16", "65", func(i int) string { return strconv.Itoa(i * 999983) }},
		{"1.3.6.1.2.1.2.2.1.19", "65", func(i int) string { return strconv.Itoa(i) }},
		{"1.3.6.1.2.1.2.2.1.20", "65", func(i int) string { return strconv.Itoa(i) }},
		{"1.3.6.1.2.1.31.1.1.1.1", "4", func(i int) string { return fmt.Sprintf("1/1/%d", i) }},
		{"1.3.6.1.2.1.31.1.1.1.6", "70", func(i int) string { return strconv.Itoa(i * 1_000_000_007) }},
		{"1.3.6.1.2.1.31.1.1.1.10", "70", func(i int) string { return strconv.Itoa(i * 999_999_937) }},
		{"1.3.6.1.2.1.31.1.1.1.15", "66", func(int) string { return "10000" }},
	}
	for _, c := range cols {
		for i := 1; i <= ifaces; i++ {
			fmt.Fprintf(&b, "%s.%d|%s|%s\n", c.oid, i, c.tag, c.val(i))
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

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

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
	const interval = 10 * time.Second
	file := filepath.Join(t.TempDir(), "if50.snmprec")
	if err := loadRecording(file, 50); err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), loadRoleEnv+"=sim", "NETFEAT_SNMP_LOAD_FILE="+file,
		"NETFEAT_SNMP_LOAD_DEVICES="+strconv.Itoa(devices), "GOMAXPROCS=1")
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
	p, err := New(cfg, IFMIBPlan, sink, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(interval) // warm-up: every device identified once
	cpu0, obs0, wall0 := cpuTime(), obs.Load(), time.Now()
	time.Sleep(measure)
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	n := obs.Load() - obs0
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	goroutines := runtime.NumGoroutine()
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	okPolls, failed, skipped := 0.0, 0.0, 0.0
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "netfeat_snmp_polls_total":
				for _, l := range m.GetLabel() {
					if l.GetName() == "result" {
						if l.GetValue() == "ok" {
							okPolls += m.GetCounter().GetValue()
						} else {
							failed += m.GetCounter().GetValue()
						}
					}
				}
			case "netfeat_snmp_polls_skipped_total":
				skipped += m.GetCounter().GetValue()
			}
		}
	}
	polls := float64(n) / float64(3+50*len(IFMIBPlan.Columns))
	t.Logf("devices=%d interfaces=50 interval=%v measured=%v GOMAXPROCS=1", devices, interval, wall.Round(time.Millisecond))
	t.Logf("observations=%d (%.0f/s) polls≈%.0f (%.1f/s; %d expected per interval)", n, float64(n)/wall.Seconds(), polls, polls/wall.Seconds(), devices)
	t.Logf("poller CPU: %v = %.1f%% of one core; %.2f ms CPU per device poll; %.1f µs per observation",
		cpu.Round(time.Millisecond), 100*cpu.Seconds()/wall.Seconds(), 1000*cpu.Seconds()/polls, 1e6*cpu.Seconds()/float64(n))
	t.Logf("memory: heap in use %.1f MiB (%.1f KiB per device), sys %.1f MiB, goroutines %d",
		float64(ms.HeapInuse)/(1<<20), float64(ms.HeapInuse)/1024/float64(devices), float64(ms.Sys)/(1<<20), goroutines)
	t.Logf("all polls: ok=%.0f failed=%.0f skipped=%.0f", okPolls, failed, skipped)
	if failed > 0 || skipped > 0 {
		t.Fatalf("%v failed and %v skipped polls: the poller did not keep up", failed, skipped)
	}
	if want := float64(devices) * wall.Seconds() / interval.Seconds(); polls < 0.9*want {
		t.Fatalf("%.0f polls in %v, want about %.0f", polls, wall, want)
	}
}
