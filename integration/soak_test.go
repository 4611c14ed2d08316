//go:build soak

package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
	"github.com/nats-io/nats.go"

	"github.com/netfeat/netfeat/schema"
)

// make soak runs TestSoak: go test -tags 'duckdb_arrow soak' -run TestSoak ./integration.
var (
	soakDuration = flag.Duration("soak.duration", 10*time.Minute, "how long TestSoak runs")
	soakRSSMiB   = flag.Int64("soak.rss-mib", 1024, "the netfeat process's RSS must stay below this many MiB")
)

// startSimLines runs a simulator and returns the "NAME ADDRESS" lines it
// prints once all its devices listen.
func startSimLines(t *testing.T, n int, args ...string) [][2]string {
	t.Helper()
	cmd := exec.Command(netfeatBin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	var out [][2]string
	for len(out) < n && sc.Scan() {
		line := sc.Text()
		if _, after, ok := strings.Cut(line, " listening on "); ok { // sim gnmi
			out = append(out, [2]string{"gnmi", strings.Fields(after)[0]})
		} else if name, addr, ok := strings.Cut(line, " "); ok { // sim snmp: NAME ADDRESS
			out = append(out, [2]string{name, strings.TrimSpace(addr)})
		}
	}
	if len(out) < n {
		t.Fatalf("simulator %v printed %d addresses, want %d", args, len(out), n)
	}
	go func() {
		for sc.Scan() {
		}
	}()
	return out
}

// TestSoak runs the real binary for -soak.duration against healthy
// simulated devices with hostile ones mixed in: a gNMI target whose clock
// is 175 years ahead, traps with ever new interfaces from a configured
// source (growing names), garbage datagrams and a trap flood from an
// unknown source, and broken model files uploaded through the API. It
// asserts that every healthy device's decisions keep flowing every minute,
// that the process stays up and that its RSS stays below -soak.rss-mib.
func TestSoak(t *testing.T) {
	const healthySNMP = 10
	snmpDevs := startSimLines(t, healthySNMP, "sim", "snmp", "--listen", "127.0.0.1:0", "--devices", strconv.Itoa(healthySNMP),
		"--recording", filepath.Join(snmpRecordings, "timos.snmprec"))
	gnmiOK := startSimLines(t, 1, "sim", "gnmi", "--listen", "127.0.0.1:0", "--target", "xr-ok", "--interval", "2s")
	gnmiBad := startSimLines(t, 1, "sim", "gnmi", "--listen", "127.0.0.1:0", "--target", "xr-badclock", "--interval", "2s",
		"--clock-offset", "1536000h") // 2200 or so

	trapPort := freeUDPPort(t)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `snmp:
  defaults: {version: v2c, community: public, interval: 5s, timeout: 2s}
  trap_listen: 127.0.0.1:%d
  targets:
`, trapPort)
	var healthy []string
	for i, d := range snmpDevs {
		name := fmt.Sprintf("nokia-%02d", i)
		healthy = append(healthy, name)
		fmt.Fprintf(&cfg, "    - {name: %s, address: %q}\n", name, d[1])
	}
	healthy = append(healthy, "xr-ok")
	fmt.Fprintf(&cfg, `gnmi:
  targets:
    - {name: xr-ok, address: %q, platform: iosxr, insecure: true, sample_interval: 2s}
    - {name: xr-badclock, address: %q, platform: iosxr, insecure: true, sample_interval: 2s}
views:
  - name: interface_30s
    entity: component
    metrics: [interface.in.bps, interface.out.bps, interface.in.errors_ps]
    aggregations: [mean, max]
    windows: [30s]
    hop: 5s
    allowed_lateness: 2s
  - name: lg_view
    entity: device
    metrics: [system.cpu.utilization]
    aggregations: [mean]
    windows: [1m]
    hop: 1m
inference:
  publish: all
  rules:
    - {name: in_bps_high, view: interface_30s, feature: interface_in_bps__mean_30s, op: ">", threshold: 1e12}
  event_rules:
    - {name: link_down, metric: interface.oper_status, op: "!=", state: up, action: reroute}
  models:
    - {name: lg, kind: lightgbm, view: lg_view, file: %q}
`, gnmiOK[0][1], gnmiBad[0][1], lgModel(t))
	cmd, httpAddr, natsURL, logs := startServe(t, cfg.String())
	server := "http://" + httpAddr
	pid := cmd.Process.Pid

	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var mu sync.Mutex
	perDevice := map[string]int{}
	if _, err := nc.Subscribe("netfeat.decisions.>", func(m *nats.Msg) {
		var d schema.Decision
		if json.Unmarshal(m.Data, &d) == nil {
			mu.Lock()
			perDevice[d.Entity.Device]++
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var hostile struct {
		sync.Mutex
		garbage, flood, growing, uploads, refused int
	}
	wg.Add(1)
	go func() { // hostile traffic, every second
		defer wg.Done()
		trapAddr := fmt.Sprintf("127.0.0.1:%d", trapPort)
		// Garbage from another address than the growing names below, so
		// that the per-source rate limit sheds one and not the other.
		raddr, _ := net.ResolveUDPAddr("udp", trapAddr)
		garbage, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 3)}, raddr)
		if err != nil {
			t.Error(err)
			return
		}
		defer garbage.Close()
		flood := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: uint16(trapPort), Community: "public", Version: gosnmp.Version2c,
			Timeout: time.Second, LocalAddr: "127.0.0.2:0"}
		grow := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: uint16(trapPort), Community: "public", Version: gosnmp.Version2c, Timeout: time.Second}
		floodOK, growOK := flood.Connect() == nil, grow.Connect() == nil
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		next := 1_000_000
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			b := make([]byte, 200)
			for range 200 {
				for i := range b {
					b[i] = byte(rand.IntN(256))
				}
				_, _ = garbage.Write(b)
			}
			if floodOK {
				for range 500 {
					_, _ = flood.SendTrap(linkDownTrap(1))
				}
			}
			if growOK {
				for range 20 { // 20 new interfaces a second from a configured source
					next++
					_, _ = grow.SendTrap(linkDownTrap(next))
				}
			}
			hostile.Lock()
			hostile.garbage += 200
			if floodOK {
				hostile.flood += 500
			}
			if growOK {
				hostile.growing += 20
			}
			hostile.Unlock()
			if n%30 == 0 { // a broken model every 30 s
				code := uploadBrokenModel(t, server, n/30)
				hostile.Lock()
				hostile.uploads++
				if code == http.StatusBadRequest {
					hostile.refused++
				}
				hostile.Unlock()
			}
		}
	}()

	start := time.Now()
	var maxRSS int64
	var flows []string
	prev := map[string]int{}
	minute := time.NewTicker(time.Minute)
	defer minute.Stop()
	sample := time.NewTicker(5 * time.Second)
	defer sample.Stop()
	deadline := time.After(*soakDuration)
loop:
	for {
		select {
		case <-deadline:
			break loop
		case <-sample.C:
			if cmd.ProcessState != nil {
				t.Fatalf("netfeat exited: %v\n%s", cmd.ProcessState, tail(logs.String()))
			}
			rss := processRSS(pid)
			maxRSS = max(maxRSS, rss)
			if rss > *soakRSSMiB<<20 {
				t.Fatalf("RSS %d MiB over the limit of %d MiB after %v", rss>>20, *soakRSSMiB, time.Since(start).Round(time.Second))
			}
		case <-minute.C:
			mu.Lock()
			var slow []string
			var line []string
			for _, d := range healthy {
				got := perDevice[d] - prev[d]
				line = append(line, fmt.Sprintf("%s=%d", d, got))
				if got == 0 && time.Since(start) > 90*time.Second {
					slow = append(slow, d)
				}
				prev[d] = perDevice[d]
			}
			mu.Unlock()
			flows = append(flows, fmt.Sprintf("+%v %s", time.Since(start).Round(time.Minute), strings.Join(line, " ")))
			t.Logf("decisions in the last minute: %s; RSS max %d MiB", strings.Join(line, " "), maxRSS>>20)
			if len(slow) > 0 {
				t.Fatalf("no decision in the last minute for %v\n%s", slow, tail(logs.String()))
			}
		}
	}
	close(stop)
	wg.Wait()
	metrics := scrape(t, server)
	t.Logf("soak: ran %v; healthy devices %d; RSS max %d MiB (limit %d)", time.Since(start).Round(time.Second), len(healthy), maxRSS>>20, *soakRSSMiB)
	t.Logf("hostile input sent: %d garbage datagrams, %d flood traps from an unknown source, %d traps naming new interfaces, %d broken models uploaded (%d refused with 400)",
		hostile.garbage, hostile.flood, hostile.growing, hostile.uploads, hostile.refused)
	for _, f := range flows {
		t.Log(f)
	}
	for _, re := range []string{
		`netfeat_snmp_trap_errors_total\{[^}]*\} .*`,
		`netfeat_normalize_[a-z_]*(skew|restamp|limit|clock|invalid|utf)[a-z_]*\{?[^ ]* .*`,
		`netfeat_store_[a-z_]*(series|late|duplicate|invalid)[a-z_]*\{?[^ ]* .*`,
		`netfeat_inference_score_(errors|panics)_total\{[^}]*\} .*`,
		`process_resident_memory_bytes .*`,
	} {
		for _, m := range regexp.MustCompile(re).FindAllString(metrics, -1) {
			t.Log(m)
		}
	}
	if hostile.uploads > 0 && hostile.refused != hostile.uploads {
		t.Errorf("%d of %d broken models were accepted", hostile.uploads-hostile.refused, hostile.uploads)
	}
}

// lgModel copies the shipped LightGBM test model.
func lgModel(t *testing.T) string {
	p, err := filepath.Abs("../inference/testdata/lightgbm/lg_dart_breast_cancer.model")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// linkDownTrap is a v2c linkDown for ifIndex idx.
func linkDownTrap(idx int) gosnmp.SnmpTrap {
	i := strconv.Itoa(idx)
	return gosnmp.SnmpTrap{Variables: []gosnmp.SnmpPDU{
		{Name: ".1.3.6.1.6.3.1.1.4.1.0", Type: gosnmp.ObjectIdentifier, Value: ".1.3.6.1.6.3.1.1.5.3"},
		{Name: ".1.3.6.1.2.1.2.2.1.1." + i, Type: gosnmp.Integer, Value: idx},
		{Name: ".1.3.6.1.2.1.2.2.1.7." + i, Type: gosnmp.Integer, Value: 1},
		{Name: ".1.3.6.1.2.1.2.2.1.8." + i, Type: gosnmp.Integer, Value: 2},
	}}
}

// uploadBrokenModel posts a damaged copy of the LightGBM test model (the
// issue's cases in turn) and returns the HTTP status.
func uploadBrokenModel(t *testing.T, server string, n int) int {
	b, err := os.ReadFile("../inference/testdata/lightgbm/lg_dart_breast_cancer.model")
	if err != nil {
		t.Error(err)
		return 0
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		switch {
		case n%3 == 0 && strings.HasPrefix(l, "leaf_value="):
			lines[i] = strings.Fields(l)[0] // one value left
		case n%3 == 1 && strings.HasPrefix(l, "split_feature="):
			lines[i] = "split_feature=99999" + l[strings.IndexByte(l, ' '):]
		case n%3 == 2 && strings.HasPrefix(l, "left_child="):
			lines[i] = "left_child=0" + l[strings.IndexByte(l, ' '):]
		default:
			continue
		}
		break
	}
	resp, err := http.Post(server+"/v1/models/lg/versions", "application/octet-stream", bytes.NewReader([]byte(strings.Join(lines, "\n"))))
	if err != nil {
		t.Error(err)
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// processRSS reads VmRSS of pid in bytes.
func processRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v)
			kb, _ := strconv.ParseInt(f[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func scrape(t *testing.T, server string) string {
	resp, err := http.Get(server + "/metrics")
	if err != nil {
		t.Error(err)
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	lines := strings.Split(string(b), "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func tail(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}
