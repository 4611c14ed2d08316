package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/netfeat/netfeat/cluster"
	"github.com/netfeat/netfeat/internal/sim/snmpagent"
	"github.com/netfeat/netfeat/internal/testkit"
)

// clusterStatus runs `netfeat cluster status --json`.
func clusterStatus(t *testing.T, natsURL string) cluster.Status {
	t.Helper()
	out, err := exec.Command(netfeatBin, "cluster", "status", "--json", "--nats", natsURL).Output()
	if err != nil {
		t.Fatalf("cluster status: %v: %s", err, out)
	}
	var st cluster.Status
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("cluster status output: %v: %s", err, out)
	}
	return st
}

// owners maps every validly owned target to its node.
func owners(st cluster.Status) map[string]string {
	m := map[string]string{}
	for _, ts := range st.Targets {
		if ts.Valid {
			m[ts.Target] = ts.Owner
		}
	}
	return m
}

// TestClusterFailover runs two `netfeat serve` nodes of one site sharing
// a NATS JetStream and ten simulated SNMP devices. It drains one node,
// undrains it, then kills it with SIGKILL, and checks with `netfeat
// cluster status` that every target is owned again within the lease TTL
// and, from the devices' own request counters, that no device went
// unpolled for more than two poll intervals at any point.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two netfeat processes for about 40 s")
	}
	const (
		n        = 10
		interval = 3 * time.Second
		leaseTTL = 3 * time.Second
	)
	ns := testkit.StartNATS(t, server.Options{JetStream: true, StoreDir: t.TempDir()})
	natsURL := ns.ClientURL()

	mib, err := snmpagent.LoadMIB(filepath.Join(snmpRecordings, "timos.snmprec"))
	if err != nil {
		t.Fatal(err)
	}
	sim := snmpagent.NewSimulator(nil)
	var devs []*snmpagent.Device
	for i := range n {
		d, err := snmpagent.NewDevice(mib, snmpagent.DeviceOptions{Name: fmt.Sprintf("pe%02d", i), Community: "public", Rate: 1e6})
		if err != nil {
			t.Fatal(err)
		}
		devs = append(devs, d)
		if err := sim.Add(d, "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Stop(context.Background()) })
	var targets strings.Builder
	for _, ep := range sim.Endpoints() {
		fmt.Fprintf(&targets, "    - {name: %s, address: %q}\n", ep.Device.Name(), ep.Addr)
	}
	config := func(node string) string {
		// startServeHTTP writes "nats:\n  listen: ..." last: the first line
		// here continues that section.
		return fmt.Sprintf(`  url: %s
snmp:
  defaults: {version: v2c, community: public, interval: %s, timeout: 1s}
  targets:
%scluster:
  enabled: true
  node: %s
  lease_ttl: %s
`, natsURL, interval, targets.String(), node, leaseTTL)
	}
	mon := snmpagent.WatchPolls(devs)
	defer mon.Close()

	_, httpA, _, logsA := startServeHTTP(t, "", config("a"))
	cmdB, _, _, logsB := startServeHTTP(t, "", config("b"))
	dump := func() string { return "node a:\n" + logsA.String() + "\nnode b:\n" + logsB.String() }

	waitOwners := func(what string, within time.Duration, ok func(map[string]string) bool) (map[string]string, time.Duration) {
		t.Helper()
		t0 := time.Now()
		for {
			o := owners(clusterStatus(t, natsURL))
			if len(o) == n && ok(o) {
				return o, time.Since(t0)
			}
			if time.Since(t0) > within {
				t.Fatalf("%s: not within %v; owners %v\n%s", what, within, o, dump())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	count := func(o map[string]string, node string) int {
		c := 0
		for _, v := range o {
			if v == node {
				c++
			}
		}
		return c
	}
	o, _ := waitOwners("both nodes own targets", 30*time.Second, func(o map[string]string) bool {
		return count(o, "a") > 0 && count(o, "b") > 0
	})
	t.Logf("shared: a owns %d, b owns %d", count(o, "a"), count(o, "b"))
	settled := time.Now()
	time.Sleep(2 * interval)

	// Drain b: everything moves to a.
	if out, err := exec.Command(netfeatBin, "cluster", "drain", "b", "--nats", natsURL).CombinedOutput(); err != nil {
		t.Fatalf("cluster drain: %v: %s", err, out)
	}
	_, took := waitOwners("drain moves every target to a", 10*time.Second, func(o map[string]string) bool { return count(o, "a") == n })
	t.Logf("drain: all %d targets on a after %v", n, took.Round(time.Millisecond))
	time.Sleep(2 * interval)
	if out, err := exec.Command(netfeatBin, "cluster", "undrain", "b", "--nats", natsURL).CombinedOutput(); err != nil {
		t.Fatalf("cluster undrain: %v: %s", err, out)
	}
	o, took = waitOwners("undrain gives b its share back", 10*time.Second, func(o map[string]string) bool { return count(o, "b") > 0 })
	t.Logf("undrain: b owns targets again after %v", took.Round(time.Millisecond))
	time.Sleep(2 * interval)

	// Kill b just before it polls its devices again, the worst moment: their
	// last samples are then almost an interval old when b dies.
	var bDevs []string
	for target, node := range o {
		if node == "b" {
			bDevs = append(bDevs, target)
		}
	}
	killAt := mon.Times().NextPoll(bDevs, interval).Add(-300 * time.Millisecond)
	if time.Until(killAt) < 0 {
		killAt = killAt.Add(interval)
	}
	time.Sleep(time.Until(killAt))
	if err := cmdB.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	_ = cmdB.Wait()
	waitOwners("a owns every target after b's death", leaseTTL+time.Second, func(o map[string]string) bool { return count(o, "a") == n })
	sinceKill := time.Since(killed)
	t.Logf("SIGKILL: all %d targets on a %v after the kill (lease_ttl %v)", n, sinceKill.Round(time.Millisecond), leaseTTL)
	if sinceKill > leaseTTL+500*time.Millisecond { // the status command's own run time is the slack
		t.Fatalf("targets unowned for %v after the kill, lease_ttl %v", sinceKill, leaseTTL)
	}
	time.Sleep(2 * interval)
	end := time.Now()

	gap, dev := mon.Times().LongestGap(nil, settled, end)
	killGap, killDev := mon.Times().LongestGap(nil, killed.Add(-interval), end)
	t.Logf("longest gap between polls of one device: %v (%s) over the whole run, %v (%s) around the kill; poll interval %v",
		gap.Round(time.Millisecond), dev, killGap.Round(time.Millisecond), killDev, interval)
	if gap > 2*interval {
		t.Fatalf("device %s went unpolled for %v, more than 2 intervals (%v)\n%s", dev, gap, 2*interval, dump())
	}

	// The survivor's devices table shows every device polled by it.
	out, errOut, code := runQuery(t, "--server", "http://"+httpA, "--format", "csv", "SELECT device, state FROM devices ORDER BY device")
	if code != 0 {
		t.Fatalf("query: %s", errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")[1:]
	if len(lines) != n || slices.ContainsFunc(lines, func(l string) bool { return !strings.HasSuffix(l, ",up") }) {
		t.Fatalf("survivor's devices table: %s\n%s", out, dump())
	}
}
