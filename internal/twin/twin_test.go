package twin

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/netfeat/netfeat/internal/sim/scenario"
	"github.com/netfeat/netfeat/internal/sim/snmpagent"
	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/recording"
	"github.com/netfeat/netfeat/schema"
	"github.com/netfeat/netfeat/service"
)

// productionConfig is a service configuration as production would have
// it: an external NATS server, a data directory, collectors.
const productionConfig = `
data_dir: %DATA%
nats:
  url: %NATS%
snmp:
  defaults: {version: v2c, community: public, interval: 5s}
  targets:
    - {name: synth, address: 127.0.0.1:16100}
views:
  - name: interface_1m
    entity: component
    metrics: [interface.out.utilization, interface.out.discards_ps]
    aggregations: [mean, max]
    windows: [1m]
    hop: 5s
    allowed_lateness: 2s
inference:
  publish: all
  rules:
    - {name: out_util_high, view: interface_1m, feature: interface_out_utilization__mean_1m, op: ">", threshold: 0.9, clear: 0.8, action: alert}
`

func synthDevice(t *testing.T, start time.Time, ifaces int) Device {
	t.Helper()
	sc := &scenario.Scenario{Baseline: &scenario.Baseline{Utilization: 0.25}, Events: []scenario.Event{{
		Kind: scenario.Congestion, Interface: "1/1/2", At: 20 * time.Second, Until: 100 * time.Second, Ramp: 5 * time.Second,
	}}}
	return synthDeviceWith(t, start, ifaces, sc)
}

// synthDeviceWith is a synthetic router named synth following sc.
func synthDeviceWith(t *testing.T, start time.Time, ifaces int, sc *scenario.Scenario) Device {
	t.Helper()
	recs, err := recording.ReadSNMPRec(strings.NewReader(snmpagent.SyntheticRouter(ifaces)), "synthetic")
	if err != nil {
		t.Fatal(err)
	}
	mib, err := snmpagent.NewMIB(recs)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	d, err := snmpagent.NewDevice(mib, snmpagent.DeviceOptions{Name: "synth", Community: "public", Scenario: sc, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	return Device{Name: "synth", Scenario: sc, SNMP: d}
}

// TestRunSandboxed runs a twin from a production configuration and checks
// that the congestion is acted on at the right time and place, and that
// nothing reached the production data directory or NATS server.
func TestRunSandboxed(t *testing.T) {
	prod := testkit.StartNATS(t, server.Options{})
	var prodMsgs atomic.Int64
	nc := testkit.ConnectNATS(t, prod.ClientURL())
	if _, err := nc.Subscribe(">", func(*nats.Msg) { prodMsgs.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	prodDir := t.TempDir()
	yaml := strings.NewReplacer("%DATA%", prodDir, "%NATS%", prod.ClientURL()).Replace(productionConfig)
	cfg, err := service.ParseConfig("production.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	d := 3 * time.Minute
	start := Begin(time.Now(), d)
	var mu sync.Mutex
	var firings []schema.Decision
	var windows []*schema.FeatureRow
	sandbox := t.TempDir()
	res, err := Run(context.Background(), Options{
		Config: cfg, DataDir: sandbox, Devices: []Device{synthDevice(t, start, 4)}, Start: start, Duration: d,
		OnDecision: func(dec *schema.Decision) {
			if dec.Transition && dec.State == schema.StateFiring {
				mu.Lock()
				firings = append(firings, *dec)
				mu.Unlock()
			}
		},
		OnWindow: func(row *schema.FeatureRow) {
			mu.Lock()
			windows = append(windows, row)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reads != 36 || res.Decisions == 0 || res.Observations == 0 {
		t.Fatalf("run %+v", res)
	}
	if len(res.Episodes) != 1 || res.Episodes[0].Component != "1/1/2" || !res.Episodes[0].Start.Equal(start.Add(20*time.Second)) {
		t.Fatalf("episodes %+v", res.Episodes)
	}
	if len(firings) != 1 {
		t.Fatalf("firings %+v, want one on synth/1/1/2", firings)
	}
	f := firings[0]
	// OnWindow saw the closed windows, stamped with virtual time, and the
	// congested interface's among them.
	hot := 0
	for _, w := range windows {
		if end := time.Unix(0, w.WindowEnd); w.View != "interface_1m" || end.Before(start) || end.After(start.Add(d+time.Minute)) {
			t.Fatalf("window %s %s ending %s, outside the run", w.View, w.Entity, end)
		}
		if v, ok := w.Feature("interface_out_utilization__max_1m"); ok && v > 0.9 && w.Component == "1/1/2" {
			hot++
		}
	}
	t.Logf("%d windows closed, %d of 1/1/2 above 0.9", len(windows), hot)
	if len(windows) < 4*int(d/(5*time.Second))/2 || hot == 0 {
		t.Fatalf("%d windows, %d of them with 1/1/2 above 0.9", len(windows), hot)
	}
	// The 1-minute mean passes 0.9 about 1:10 after the start (20 s +
	// ramp + most of a minute at 0.98 over a 0.25 baseline).
	if f.Entity.Component != "1/1/2" || f.Since.Before(start.Add(60*time.Second)) || f.Since.After(start.Add(100*time.Second)) {
		t.Fatalf("firing %s at +%s, want 1/1/2 within the episode", f.Entity, f.Since.Sub(start))
	}
	if ents, err := os.ReadDir(prodDir); err != nil || len(ents) != 0 {
		t.Fatalf("production data directory: %v, %d entries", err, len(ents))
	}
	if _, err := os.Stat(filepath.Join(sandbox, "store")); err != nil {
		t.Fatalf("sandbox has no store: %v", err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := prodMsgs.Load(); n != 0 {
		t.Fatalf("%d messages reached the production NATS server", n)
	}
}

func TestRunRefusesFuture(t *testing.T) {
	cfg, err := service.ParseConfig("c.yaml", []byte(strings.NewReplacer("%DATA%", t.TempDir(), "%NATS%", "nats://127.0.0.1:1").Replace(productionConfig)))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = Run(context.Background(), Options{Config: cfg, DataDir: t.TempDir(), Devices: []Device{synthDevice(t, start, 4)}, Start: start, Duration: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "after now") {
		t.Fatalf("err %v", err)
	}
}
