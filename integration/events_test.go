package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"gopkg.in/yaml.v3"

	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

// startSimSNMP runs `netfeat sim snmp` on a random loopback port and returns
// its address.
func startSimSNMP(t *testing.T, recording string, args ...string) string {
	t.Helper()
	cmd := exec.Command(netfeatBin, append([]string{"sim", "snmp", "--listen", "127.0.0.1:0", "--recording", recording}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatal("simulator printed no address")
	}
	_, addr, _ := strings.Cut(sc.Text(), " ")
	go func() { // keep the pipe drained
		for sc.Scan() {
		}
	}()
	return addr
}

// TestSnmptrapLinkDownIsDecidedAtOnce sends a linkDown trap with net-snmp's
// snmptrap to the real binary and times it to the link_down decision at an
// outside NATS subscriber: the event path, with an independent sender.
func TestSnmptrapLinkDownIsDecidedAtOnce(t *testing.T) {
	snmptrap, err := exec.LookPath("snmptrap")
	if err != nil {
		t.Skip("net-snmp's snmptrap is not installed (make test installs it)")
	}
	sim := startSimSNMP(t, filepath.Join(snmpRecordings, "timos.snmprec"))
	trapPort := freeUDPPort(t)
	_, httpAddr, natsURL, logs := startServe(t, fmt.Sprintf(`
snmp:
  defaults: {version: v2c, community: public, interval: 1s, timeout: 2s}
  trap_listen: 127.0.0.1:%d
  targets:
    - {name: nokia, address: "%s"}
inference:
  event_rules:
    - {name: link_down, metric: interface.oper_status, op: "!=", state: up, action: reroute, resolve_action: restore}
`, trapPort, sim))
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msgs := make(chan *nats.Msg, 64)
	if _, err := nc.ChanSubscribe("netfeat.decisions.link_down.>", msgs); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// The trap names the interface by ifIndex: wait until a poll has
	// named it (ifName 1/1/1 is ifIndex 35684352 in the recording).
	testkit.EventuallyWithin(t, 30*time.Second, "a poll of the simulator", func() bool {
		return len(queryRows(t, "http://"+httpAddr, "SELECT * FROM series WHERE component = '1/1/1' AND metric = 'interface.oper_status'")) > 0
	})
	const idx = "35684352"
	sent := time.Now()
	out, err := exec.Command(snmptrap, "-v", "2c", "-c", "public", fmt.Sprintf("127.0.0.1:%d", trapPort), "",
		"1.3.6.1.6.3.1.1.5.3", // linkDown
		"1.3.6.1.2.1.2.2.1.1."+idx, "i", idx,
		"1.3.6.1.2.1.2.2.1.7."+idx, "i", "1",
		"1.3.6.1.2.1.2.2.1.8."+idx, "i", "2").CombinedOutput()
	if err != nil {
		t.Fatalf("snmptrap: %v: %s", err, out)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-msgs:
			var d schema.Decision
			if err := json.Unmarshal(m.Data, &d); err != nil {
				t.Fatal(err)
			}
			if d.State != schema.StateFiring {
				continue
			}
			took := time.Since(sent)
			if d.Entity.Component != "1/1/1" || d.Action != "reroute" || d.Trigger != schema.TriggerEvent || d.Event == nil || d.Event.State != "down" {
				t.Fatalf("decision %+v", d)
			}
			t.Logf("snmptrap exec → link_down firing at an outside subscriber: %v (service: trigger_to_decision %dµs)", took, d.TriggerToDecisionUS)
			return
		case <-deadline:
			t.Fatalf("no link_down firing within 10s of the trap; logs:\n%s", logs.String())
		}
	}
}

// TestExampleConfigActsOnlyWithItsInputs runs examples/netfeat.yaml, as
// shipped, against `netfeat sim snmp` replaying the Nokia recording (the
// command its comment gives), and checks the shipped congestion model acts
// on no interface without a known speed: those lack utilisation, so their
// decisions say action none and list the missing features.
func TestExampleConfigActsOnlyWithItsInputs(t *testing.T) {
	example, err := os.ReadFile("../examples/netfeat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sim := startSimSNMP(t, filepath.Join(snmpRecordings, "timos.snmprec"))
	// Only what must differ to run here: addresses and the data directory
	// (startServe sets them) and a 2 s poll
	// instead of 10 s so that windows close sooner.
	var doc map[string]any
	if err := yaml.Unmarshal(example, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"data_dir", "shutdown_timeout", "http", "nats"} {
		delete(doc, k)
	}
	snmp := doc["snmp"].(map[string]any)
	snmp["defaults"].(map[string]any)["interval"] = "2s"
	targets := snmp["targets"].([]any)
	targets[0].(map[string]any)["address"] = sim
	snmp["targets"] = targets[:1]
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	_, httpAddr, _, logs := startServe(t, cfg)
	server := "http://" + httpAddr

	// Wait for decisions on the loopback `system`, which has no speed.
	var rows [][]string
	testkit.EventuallyWithin(t, 90*time.Second, "congestion decisions on nokia-7210/system", func() bool {
		rows = queryRows(t, server, "SELECT action, missing_features FROM decisions WHERE model = 'congestion' AND component = 'system'")
		return len(rows) > 0
	})
	for _, r := range rows {
		if r[0] != "none" || !strings.Contains(r[1], "utilization") {
			t.Fatalf("congestion on system (no speed): action %q, missing %q; want none with the utilisation features missing\nlogs:\n%s", r[0], r[1], logs.String())
		}
	}
	speeds := map[string]bool{}
	for _, r := range queryRows(t, server, "SELECT DISTINCT component FROM series WHERE device = 'nokia-7210' AND metric = 'interface.speed'") {
		speeds[r[0]] = true
	}
	for _, r := range queryRows(t, server, "SELECT DISTINCT component, model FROM decisions WHERE action <> 'none'") {
		if !speeds[r[0]] {
			t.Fatalf("%s acted on %s, which has no known speed (interfaces with one: %v)", r[1], r[0], slices.Sorted(mapKeys(speeds)))
		}
	}
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// queryRows runs a query with `netfeat query --format csv` and returns the
// rows without the header.
func queryRows(t *testing.T, server, sql string) [][]string {
	t.Helper()
	out, errOut, code := runQuery(t, "--server", server, "--format", "csv", sql)
	if code != 0 {
		t.Fatalf("query %q: exit %d: %s", sql, code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var rows [][]string
	for _, l := range lines[1:] {
		if l == "" {
			continue
		}
		rows = append(rows, splitCSV(l))
	}
	return rows
}

// splitCSV splits one CSV line, honouring double quotes.
func splitCSV(l string) []string {
	var out []string
	var b strings.Builder
	q := false
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case c == '"' && q && i+1 < len(l) && l[i+1] == '"':
			b.WriteByte('"')
			i++
		case c == '"':
			q = !q
		case c == ',' && !q:
			out = append(out, b.String())
			b.Reset()
		default:
			b.WriteByte(c)
		}
	}
	return append(out, b.String())
}
