package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netfeat/netfeat/collectors/snmp"
	"github.com/netfeat/netfeat/recording"
	"github.com/netfeat/netfeat/schema"
)

// These tests pit our SNMP poller and simulator against implementations we
// did not write: net-snmp's snmpd, snmpwalk and snmpbulkwalk, and Debian's
// snmpsim. .ci/install-snmp.sh installs them; without them the tests skip.

const snmpRecordings = "../testdata/snmp"

func needTool(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s not installed (run .ci/install-snmp.sh)", n)
		}
	}
}

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// startProcess runs cmd until the test ends.
func startProcess(t *testing.T, cmd *exec.Cmd) *bytes.Buffer {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return &out
}

// waitAgent waits until an agent answers a GET of sysObjectID.0.
func waitAgent(t *testing.T, addr, community string, log *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if exec.Command("snmpget", "-v2c", "-c", community, "-t", "0.3", "-r", "0", addr, ".1.3.6.1.2.1.1.2.0").Run() == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("agent at %s did not answer within 20 s; its output:\n%s", addr, log)
}

// netsnmpWalk runs snmpbulkwalk (or snmpwalk) and returns OID → value as
// net-snmp prints it with numeric OIDs, enums, timeticks and hex strings.
func netsnmpWalk(t *testing.T, tool string, args ...string) (map[string]string, []string) {
	t.Helper()
	full := append([]string{"-On", "-Oe", "-Ot", "-Ox", "-Oq"}, args...)
	out, err := exec.Command(tool, full...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", tool, full, err, out)
	}
	vals := map[string]string{}
	var order []string
	var cur string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, ".1.") {
			oid, val, _ := strings.Cut(line, " ")
			if strings.HasPrefix(val, "No more variables left") {
				cur = "" // endOfMibView at the end of the walk
				continue
			}
			cur = strings.TrimPrefix(oid, ".")
			vals[cur] = val
			order = append(order, cur)
			continue
		}
		vals[cur] += line // a hex string wrapped onto the next line
	}
	return vals, order
}

// netsnmpValue renders an observation the way netsnmpWalk returns it.
func netsnmpValue(o schema.Observation) string {
	switch o.Kind {
	case schema.KindCounter32, schema.KindCounter64, schema.KindGauge, schema.KindTimeTicks:
		return strconv.FormatUint(o.Uint, 10)
	case schema.KindInteger:
		return strconv.FormatInt(o.Int, 10)
	case schema.KindOID:
		return "." + o.Str
	case schema.KindString, schema.KindBytes:
		return hexString(o.Str)
	}
	return o.Kind.String()
}

func hexString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%02X ", s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// pollOnce polls one v2c agent with the IF-MIB plan and returns the
// observations by OID.
func pollOnce(t *testing.T, addr string) map[string]schema.Observation {
	t.Helper()
	var mu sync.Mutex
	got := map[string]schema.Observation{}
	sink := schema.ObservationSinkFunc(func(_ context.Context, b []schema.Observation) error {
		mu.Lock()
		defer mu.Unlock()
		for _, o := range b {
			got[o.Path] = o
		}
		return nil
	})
	cfg := snmp.DefaultConfig()
	cfg.Targets = []snmp.Target{{Name: "dut", Address: addr}}
	p, err := snmp.New(cfg, snmp.IFMIBPlan, sink, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.PollOnce(context.Background()); err != nil {
		t.Fatalf("poll %s: %v", addr, err)
	}
	return got
}

func TestSNMPPollerAgainstNetSNMPSnmpd(t *testing.T) {
	needTool(t, "snmpd", "snmpbulkwalk", "snmpget")
	dir := t.TempDir()
	port := freeUDPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	conf := filepath.Join(dir, "snmpd.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("agentAddress udp:%s\nrocommunity public 127.0.0.1\npersistentDir %s\n", addr, dir)), 0o600)
	log := startProcess(t, exec.Command("snmpd", "-f", "-Lo", "-C", "-c", conf, "-p", filepath.Join(dir, "pid")))
	waitAgent(t, addr, "public", log)

	before, _ := netsnmpWalk(t, "snmpbulkwalk", "-v2c", "-c", "public", addr, ".1.3.6.1.2.1.2.2.1")
	beforeX, _ := netsnmpWalk(t, "snmpbulkwalk", "-v2c", "-c", "public", addr, ".1.3.6.1.2.1.31.1.1.1")
	got := pollOnce(t, addr)
	after, _ := netsnmpWalk(t, "snmpbulkwalk", "-v2c", "-c", "public", addr, ".1.3.6.1.2.1.2.2.1")
	afterX, _ := netsnmpWalk(t, "snmpbulkwalk", "-v2c", "-c", "public", addr, ".1.3.6.1.2.1.31.1.1.1")
	for k, v := range beforeX {
		before[k] = v
	}
	for k, v := range afterX {
		after[k] = v
	}
	n := 0
	for _, col := range snmp.IFMIBPlan.Columns {
		for oid, b := range before {
			if !strings.HasPrefix(oid, col+".") {
				continue
			}
			o, ok := got[oid]
			if !ok {
				t.Fatalf("snmpwalk reads %s = %s; the poller did not return it", oid, b)
			}
			g := netsnmpValue(o)
			if o.Kind == schema.KindCounter32 || o.Kind == schema.KindCounter64 {
				// Counters move between the walks: ours must lie between them.
				lo, _ := strconv.ParseUint(b, 10, 64)
				hi, _ := strconv.ParseUint(after[oid], 10, 64)
				if o.Uint < lo || o.Uint > hi {
					t.Fatalf("%s = %d, snmpwalk read %d before and %d after", oid, o.Uint, lo, hi)
				}
			} else if g != b {
				t.Fatalf("%s = %s, snmpwalk reads %s", oid, g, b)
			}
			n++
		}
	}
	for oid := range got {
		if strings.HasPrefix(oid, "1.3.6.1.2.1.2.2.1.") || strings.HasPrefix(oid, "1.3.6.1.2.1.31.1.1.1.") {
			if _, ok := before[oid]; !ok {
				t.Fatalf("the poller returned %s, which snmpwalk does not see", oid)
			}
		}
	}
	if n == 0 {
		t.Fatal("no IF-MIB values compared")
	}
	t.Logf("%d IF-MIB values equal to net-snmp's snmpbulkwalk", n)
}

func TestSNMPPollerAgainstSnmpsim(t *testing.T) {
	needTool(t, "snmpsimd", "snmpget")
	dir, err := os.MkdirTemp("", "netfeat-snmpsim-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// snmpsimd refuses to run as root unless it can drop to an unprivileged
	// user, which must then read the data and write the cache.
	data, cache := filepath.Join(dir, "data"), filepath.Join(dir, "cache")
	os.MkdirAll(data, 0o755)
	os.MkdirAll(cache, 0o777)
	os.Chmod(dir, 0o755)
	os.Chmod(cache, 0o777)
	src, err := os.ReadFile(filepath.Join(snmpRecordings, "ericsson-ml.snmprec"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(data, "public.snmprec"), src, 0o644) // community = file name
	port := freeUDPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{"--data-dir=" + data, "--cache-dir=" + cache, "--agent-udpv4-endpoint=" + addr, "--logging-method=stderr"}
	if os.Geteuid() == 0 {
		args = append(args, "--process-user=nobody", "--process-group=nogroup")
	}
	log := startProcess(t, exec.Command("snmpsimd", args...))
	waitAgent(t, addr, "public", log)

	got := pollOnce(t, addr)
	recs, err := recording.ReadSNMPRecFile(filepath.Join(snmpRecordings, "ericsson-ml.snmprec"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		inPlan := r.OID == "1.3.6.1.2.1.1.1.0" || r.OID == "1.3.6.1.2.1.1.2.0" || r.OID == "1.3.6.1.2.1.1.3.0"
		for _, c := range snmp.IFMIBPlan.Columns {
			inPlan = inPlan || strings.HasPrefix(r.OID, c+".")
		}
		if !inPlan {
			continue
		}
		o, ok := got[r.OID]
		if !ok {
			t.Fatalf("snmpsim serves %s; the poller did not return it", r.OID)
		}
		if want := r.Observation("dut", o.RecvTime); o != want {
			t.Fatalf("%s = %+v, recording has %+v", r.OID, o, want)
		}
		n++
	}
	if len(got) != n {
		t.Fatalf("poller returned %d values, the recording has %d in the plan", len(got), n)
	}
	t.Logf("%d values polled from snmpsim equal the recording", n)
}

func TestNetSNMPWalksOurSimulator(t *testing.T) {
	needTool(t, "snmpwalk", "snmpbulkwalk", "snmpget")
	cmd := exec.Command(netfeatBin, "sim", "snmp", "--listen", "127.0.0.1:0", "--rate", "0",
		"--recording", filepath.Join(snmpRecordings, "ericsson-ml.snmprec"),
		"--recording", filepath.Join(snmpRecordings, "timos_hc.snmprec"),
		"--v3-user", "ops", "--v3-auth", "SHA256", "--v3-auth-key", "authsecret1", "--v3-priv", "AES", "--v3-priv-key", "privsecret1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	addrs := map[string]string{}
	sc := bufio.NewScanner(stdout)
	for len(addrs) < 2 && sc.Scan() {
		name, addr, _ := strings.Cut(sc.Text(), " ")
		addrs[name] = addr
	}
	v3 := []string{"-v3", "-l", "authPriv", "-u", "ops", "-a", "SHA-256", "-A", "authsecret1", "-x", "AES", "-X", "privsecret1"}
	tests := []struct {
		name, recording, tool string
		args                  []string
	}{
		{"snmpwalk v2c", "ericsson-ml", "snmpwalk", []string{"-v2c", "-c", "public"}},
		{"snmpbulkwalk v2c", "timos_hc", "snmpbulkwalk", []string{"-v2c", "-c", "public", "-Cr50"}},
		{"snmpbulkwalk v3 authPriv SHA-256 AES", "ericsson-ml", "snmpbulkwalk", v3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := recording.ReadSNMPRecFile(filepath.Join(snmpRecordings, tc.recording+".snmprec"))
			if err != nil {
				t.Fatal(err)
			}
			args := append(append([]string{}, tc.args...), addrs[tc.recording], ".1.3")
			vals, order := netsnmpWalk(t, tc.tool, args...)
			if len(order) != len(recs) {
				t.Fatalf("%s returned %d varbinds, the recording has %d", tc.tool, len(order), len(recs))
			}
			for i, r := range recs { // the recordings are in OID order, as a walk is
				if order[i] != r.OID {
					t.Fatalf("varbind %d is %s, recording has %s", i, order[i], r.OID)
				}
				if r.OID == "1.3.6.1.2.1.1.3.0" {
					continue // sysUpTime follows the wall clock
				}
				want := netsnmpValue(r.Observation("", 0))
				if r.Tag == recording.TagIPAddress {
					want = string(r.Observation("", 0).Str)
				}
				if r.Tag == recording.TagNull {
					want = `""`
				}
				if got := vals[r.OID]; strings.TrimSpace(got) != strings.TrimSpace(want) {
					t.Fatalf("%s = %s, recording has %s", r.OID, got, want)
				}
			}
		})
	}
	// Exceptions as net-snmp reports them.
	out, _ := exec.Command("snmpget", "-v2c", "-c", "public", "-On", addrs["ericsson-ml"],
		".1.3.6.1.2.1.1.3.0.1", ".1.3.6.1.2.1.1.77.0").CombinedOutput()
	if !strings.Contains(string(out), "No Such Instance") || !strings.Contains(string(out), "No Such Object") {
		t.Fatalf("snmpget of absent objects:\n%s", out)
	}
}
