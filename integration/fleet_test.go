package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netfeat/netfeat/internal/fleettest"
	"github.com/netfeat/netfeat/internal/testkit"
)

// fleetViews and fleetRules are the edges' (and the hub's) feature view
// and a rule that fires on every interface that carries traffic: the
// simulator's counters advance on those.
const fleetViews = `views:
  - name: if_2s
    entity: component
    metrics: [interface.in.bps]
    aggregations: [mean]
    windows: [2s]
    hop: 2s
    allowed_lateness: 1s
`

// fleetNode is one `netfeat serve` process of the fleet test.
type fleetNode struct {
	t       *testing.T
	name    string
	cfgPath string
	http    string
	cmd     *exec.Cmd
	logs    *testkit.SyncBuffer
}

// startFleetNode writes cfg (which names the node's http.listen as
// %[1]s and its data_dir as %[2]s) and runs `netfeat serve` on it until it
// is ready.
func startFleetNode(t *testing.T, name, cfg string) *fleetNode {
	t.Helper()
	dir := t.TempDir()
	n := &fleetNode{t: t, name: name, cfgPath: filepath.Join(dir, "netfeat.yaml"),
		http: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	full := fmt.Sprintf(cfg, n.http, filepath.Join(dir, "data"))
	if err := os.WriteFile(n.cfgPath, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	n.start()
	t.Cleanup(func() {
		if n.cmd.ProcessState == nil {
			_ = n.cmd.Process.Kill()
			_ = n.cmd.Wait()
		}
	})
	return n
}

func (n *fleetNode) start() {
	n.t.Helper()
	n.logs = &testkit.SyncBuffer{}
	n.cmd = exec.Command(netfeatBin, "serve", "-c", n.cfgPath, "--log-format", "json")
	n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	testkit.EventuallyWithin(n.t, 30*time.Second, n.name+" ready", func() bool {
		if n.cmd.ProcessState != nil {
			n.t.Fatalf("%s exited; logs:\n%s", n.name, n.logs.String())
		}
		resp, err := http.Get("http://" + n.http + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// kill kills the node with SIGKILL and waits for it to exit.
func (n *fleetNode) kill() {
	n.t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		n.t.Fatal(err)
	}
	_ = n.cmd.Wait() // "signal: killed"
}

// rows runs sql with `netfeat query --server` against the node; ok is
// false when the query failed (a node restarting).
func (n *fleetNode) rows(sql string) ([][]string, bool) {
	n.t.Helper()
	out, _, code := runQuery(n.t, "--server", "http://"+n.http, "--format", "csv", sql)
	if code != 0 {
		return nil, false
	}
	var rows [][]string
	for i, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if i > 0 && l != "" {
			rows = append(rows, splitCSV(l))
		}
	}
	return rows, true
}

// keys returns the first column of sql's rows, sorted.
func (n *fleetNode) keys(sql string) ([]string, bool) {
	rows, ok := n.rows(sql)
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = strings.Join(r, "|")
	}
	slices.Sort(out)
	return out, ok
}

// TestFleetEdgesAndHub runs the fleet on loopback with the real binaries: a
// 3-node nats-server cluster, a hub (`netfeat serve`, role hub) on it, and
// two edges (role edge) polling simulated devices, each behind a Link to the
// hub's leafnode ports. The hub answers fleet-wide SQL with each edge's
// site; a cut link leaves its edge deciding alone; after the link returns,
// and again after the hub is killed (SIGKILL) and started again (its tables
// are rebuilt from the streams), the hub holds every window, decision and
// sample of the edge exactly once.
func TestFleetEdgesAndHub(t *testing.T) {
	fleettest.NATSServer(t)
	cluster := fleettest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cluster.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	hub := startFleetNode(t, "hub", `data_dir: %[2]s
shutdown_timeout: 10s
role: hub
http: {listen: "%[1]s"}
nats: {url: "`+cluster.URLs()+`"}
fleet:
  hub: {replicas: 3, retention: 1h}
`+fleetViews)

	sites := []string{"paris", "lyon"}
	edges := map[string]*fleetNode{}
	links := map[string]*fleettest.Link{}
	for _, site := range sites {
		sim := startSimSNMP(t, filepath.Join(snmpRecordings, "timos.snmprec"))
		links[site] = fleettest.NewLink(t, cluster.LeafAddrs())
		edges[site] = startFleetNode(t, site, fmt.Sprintf(`data_dir: %%[2]s
shutdown_timeout: 10s
role: edge
site: %s
http: {listen: "%%[1]s"}
nats:
  listen: 127.0.0.1:%d
  leaf: {remotes: [{urls: ["%s"]}]}
snmp:
  defaults: {version: v2c, community: public, interval: 1s, timeout: 2s}
  targets:
    - {name: %s-nokia, address: "%s"}
fleet:
  edge: {sample_forwarding: {mode: all}}
inference:
  history: 100000
  rules:
    - {name: busy, view: if_2s, feature: interface_in_bps__mean_2s, op: ">", threshold: 0, action: alert}
`, site, freePort(t), links[site].URL(), site, sim)+fleetViews)
	}

	// Fleet-wide SQL on the hub: the firing actions of both sites.
	const firing = "SELECT site, count(*) FROM actions WHERE state = 'firing' GROUP BY site ORDER BY site"
	var rows [][]string
	testkit.EventuallyWithin(t, 45*time.Second, "firing actions of both sites at the hub", func() bool {
		rows, _ = hub.rows(firing)
		return len(rows) == 2
	})
	if rows[0][0] != "lyon" || rows[1][0] != "paris" {
		t.Fatalf("hub: %s: %v", firing, rows)
	}
	t.Logf("hub: %s: %v", firing, rows)

	// The edges forward their collectors' device states: the hub's
	// `devices` shows each site's SNMP device up, beside its data.
	const devs = "SELECT site, device, state, protocol, last_success IS NOT NULL, windows > 0 FROM devices WHERE state IS NOT NULL ORDER BY site"
	testkit.EventuallyWithin(t, 20*time.Second, "the device states of both sites at the hub", func() bool {
		rows, _ = hub.rows(devs)
		return len(rows) == 2 && rows[0][2] == "up" && rows[1][2] == "up" && rows[0][5] == "true" && rows[1][5] == "true"
	})
	for i, site := range []string{"lyon", "paris"} {
		if want := []string{site, site + "-nokia", "up", "snmp", "true", "true"}; !slices.Equal(rows[i], want) {
			t.Errorf("hub: %s: row %d %v, want %v", devs, i, rows[i], want)
		}
	}

	// The hub holds the fleet's model registry, which its model publisher
	// mirrors into the roll-out buckets (fleet's TestModelRollout covers
	// the roll-out itself).
	resp, err := http.Get("http://" + hub.http + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("hub GET /v1/models: %s", resp.Status)
	}

	// Cut paris off: it keeps deciding alone.
	paris := edges["paris"]
	links["paris"].Cut()
	cutAt := time.Now()
	count := func(n *fleetNode, sql string) int {
		t.Helper()
		rows, ok := n.rows(sql)
		if !ok || len(rows) != 1 {
			t.Fatalf("%s: %s: %v", n.name, sql, rows)
		}
		c, err := strconv.Atoi(rows[0][0])
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	before := count(paris, "SELECT count(*) FROM decisions")
	testkit.EventuallyWithin(t, 20*time.Second, "paris deciding during the cut", func() bool {
		return count(paris, "SELECT count(*) FROM decisions") > before
	})
	// Long enough for the hub's sources to go quiet and JetStream's own
	// source health check (10 s) to fail at least once.
	for time.Since(cutAt) < 12*time.Second {
		time.Sleep(200 * time.Millisecond)
	}
	links["paris"].Restore()

	// Everything paris decided and closed until a moment after the link
	// returned reaches the hub, once.
	until := time.Now().Add(2 * time.Second).Unix()
	time.Sleep(3 * time.Second) // let the edge close windows up to `until`
	decisions := fmt.Sprintf("SELECT id FROM decisions WHERE ts < to_timestamp(%d)", until)
	windows := fmt.Sprintf("SELECT device, component, epoch_ns(window_end) FROM if_2s WHERE window_end < to_timestamp(%d)", until)
	wantDec, ok := paris.keys(decisions)
	wantWin, ok2 := paris.keys(windows)
	if !ok || !ok2 || len(wantDec) == 0 || len(wantWin) == 0 {
		t.Fatalf("paris: %d decisions, %d windows (queries ok: %v %v)", len(wantDec), len(wantWin), ok, ok2)
	}
	samples := fmt.Sprintf("SELECT count(*) FROM samples WHERE ts < to_timestamp(%d)", until)
	wantSamples := count(paris, samples)
	sameAtHub := func(what string) {
		t.Helper()
		var gotDec, gotWin []string
		gotSamples := 0
		testkit.EventuallyWithin(t, 30*time.Second, what, func() bool {
			gotDec, _ = hub.keys(decisions + " AND site = 'paris'")
			gotWin, _ = hub.keys(windows + " AND site = 'paris'")
			gotSamples = count(hub, samples+" AND site = 'paris'")
			return slices.Equal(gotDec, wantDec) && slices.Equal(gotWin, wantWin) && gotSamples == wantSamples
		})
		for _, q := range []string{
			"SELECT id FROM decisions GROUP BY id HAVING count(*) > 1",
			"SELECT site, device, component, window_end FROM if_2s GROUP BY ALL HAVING count(*) > 1",
		} {
			if dup, ok := hub.rows(q); !ok || len(dup) > 0 {
				t.Fatalf("%s: hub: %s: %v (ok %v)", what, q, dup, ok)
			}
		}
		t.Logf("%s: hub holds paris's %d decisions, %d windows and %d samples once each", what, len(gotDec), len(gotWin), gotSamples)
	}
	sameAtHub("after the cut")

	// The hub's tables live in memory: a hub killed and started again
	// rebuilds them from its streams.
	hub.kill()
	hub.start()
	sameAtHub("after the hub was killed and restarted")
	testkit.EventuallyWithin(t, 30*time.Second, "firing actions of both sites at the restarted hub", func() bool {
		rows, _ = hub.rows(firing)
		return len(rows) == 2
	})
	if rows, _ := hub.rows("SELECT site, device FROM devices ORDER BY site"); len(rows) != 2 || rows[0][1] != "lyon-nokia" || rows[1][1] != "paris-nokia" {
		t.Fatalf("hub devices: %v", rows)
	}

	// A fleet-wide training set from the hub.
	dir := t.TempDir()
	labels := filepath.Join(dir, "labels.csv")
	ts := time.Unix(until, 0).UTC().Format(time.RFC3339)
	if err := os.WriteFile(labels, []byte("ts,device,label\n"+ts+",paris-nokia,1\n"+ts+",lyon-nokia,0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "train.csv")
	if b, err := exec.Command(netfeatBin, "export", "--server", "http://"+hub.http, "--labels", labels,
		"--view", "if_2s", "--out", out, "-q").CombinedOutput(); err != nil {
		t.Fatalf("export from the hub: %v: %s", err, b)
	}
	csv, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(csv)), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "if_2s__site") || !strings.Contains(string(csv), ",paris") || !strings.Contains(string(csv), ",lyon") {
		t.Fatalf("training set from the hub:\n%s", csv)
	}
}
