package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netfeat/netfeat/internal/sim/gnmitarget"
	"github.com/netfeat/netfeat/internal/sim/snmpagent"
	"github.com/netfeat/netfeat/models"
	"github.com/netfeat/netfeat/schema"
)

// TestDemoConfig checks that the embedded examples/demo.yaml is valid and
// that the demo places the simulators, listen addresses, data directory and
// model file in it.
func TestDemoConfig(t *testing.T) {
	dir := t.TempDir()
	addrs := map[string]string{"nokia-7210": "127.0.0.1:1001", "ericsson-ml": "127.0.0.1:1002", "cisco-xr1": "127.0.0.1:1003"}
	o := demoOptions{httpListen: "127.0.0.1:19464", natsListen: "127.0.0.1:14222"}
	cfg, err := demoConfig(o, dir, addrs)
	if err != nil {
		t.Fatalf("demoConfig: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("demo configuration invalid: %v", err)
	}
	got := map[string]string{}
	for _, tg := range cfg.SNMP.Targets {
		got[tg.Name] = tg.Address
	}
	for _, tg := range cfg.GNMI.Targets {
		got[tg.Name] = tg.Address
	}
	for name, a := range addrs {
		if got[name] != a {
			t.Errorf("target %s at %q, want %q", name, got[name], a)
		}
	}
	if cfg.DataDir != dir || cfg.HTTP.Listen != o.httpListen || cfg.NATS.Listen != o.natsListen {
		t.Errorf("data_dir %q, http %q, nats %q", cfg.DataDir, cfg.HTTP.Listen, cfg.NATS.Listen)
	}
	if len(cfg.Inference.Models) != 1 {
		t.Fatalf("models %+v, want the congestion model", cfg.Inference.Models)
	}
	b, err := os.ReadFile(cfg.Inference.Models[0].File)
	if err != nil || !bytes.Equal(b, models.Congestion) || !strings.HasPrefix(cfg.Inference.Models[0].File, dir) {
		t.Fatalf("model file %s (%v): not the embedded model in the data directory", cfg.Inference.Models[0].File, err)
	}

	delete(addrs, "cisco-xr1")
	addrs["juniper-mx"] = "127.0.0.1:1004"
	if _, err := demoConfig(o, dir, addrs); err == nil || !strings.Contains(err.Error(), "do not match the simulated devices") {
		t.Fatalf("demoConfig with a device the config lacks: %v", err)
	}
}

// TestDemoScenariosFitTheDevices binds each embedded scenario to the device
// that replays it, so that a scenario naming an interface the recording
// lacks fails here rather than when a user runs the demo.
func TestDemoScenariosFitTheDevices(t *testing.T) {
	scenarios, err := demoScenarios("", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(scenarios) != len(demoDevices) {
		t.Fatalf("%d scenarios for %d devices", len(scenarios), len(demoDevices))
	}
	events := 0
	for _, ds := range scenarios {
		events += len(ds.sc.Events)
		t.Run(ds.device.target, func(t *testing.T) {
			if ds.device.recording == "" {
				if _, err := gnmitarget.New(gnmitarget.Options{Listen: "127.0.0.1:0", Platform: "iosxr", Scenario: ds.sc}, nil); err != nil {
					t.Fatal(err)
				}
				return
			}
			mib, err := snmpagent.LoadMIB(filepath.Join("..", "..", "testdata", "snmp", ds.device.recording))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := snmpagent.NewDevice(mib, snmpagent.DeviceOptions{Name: ds.device.target, Community: "public", Scenario: ds.sc}); err != nil {
				t.Fatal(err)
			}
		})
	}
	if events < 3 {
		t.Fatalf("the demo scripts %d events, want a congestion episode, errors and a link fault", events)
	}
	fast, err := demoScenarios("", 4)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := scenarios[0].sc.Events[0].At, fast[0].sc.Events[0].At; b*4 != a {
		t.Fatalf("--speed 4 moved the first event from %v to %v", a, b)
	}
}

func TestSecondsOrDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"60", time.Minute, false},
		{"1.5", 1500 * time.Millisecond, false},
		{"0", 0, false},
		{"2m", 2 * time.Minute, false},
		{"90s", 90 * time.Second, false},
		{"soon", 0, true},
	}
	for _, tc := range tests {
		var d secondsOrDuration
		err := d.Set(tc.in)
		if (err != nil) != tc.wantErr || err == nil && time.Duration(d) != tc.want {
			t.Errorf("Set(%q) = %v, %v; want %v (error %v)", tc.in, time.Duration(d), err, tc.want, tc.wantErr)
		}
	}
}

// TestDemoSummary feeds decisions to the tally and checks what the summary
// says about the scripted incidents and the rest.
func TestDemoSummary(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	scenarios, err := demoScenarios("", 1)
	if err != nil {
		t.Fatal(err)
	}
	tally := newDemoTally(start, start)
	dec := func(model, device, component, action, state string, transition bool) schema.Decision {
		return schema.Decision{Model: model, Action: action, State: state, Transition: transition, Trigger: schema.TriggerWindow,
			Entity: schema.Entity{Device: device, Component: component}}
	}
	tally.observe(dec("congestion", "nokia-7210", "to_bng-a", "reroute", "firing", true), start.Add(27*time.Second))
	tally.observe(dec("congestion", "nokia-7210", "to_bng-a", "reroute", "firing", false), start.Add(57*time.Second))
	tally.observe(dec("congestion", "nokia-7210", "to_bng-a", "reroute", "resolved", true), start.Add(110*time.Second))
	down := dec("link_down", "cisco-xr1", "GigabitEthernet0/0/0/1", "reroute", "firing", true)
	down.Trigger, down.Event = schema.TriggerEvent, &schema.DecisionEvent{Metric: "interface.oper_status", State: "down", Time: start.Add(60 * time.Second)}
	tally.observe(down, start.Add(60*time.Second+3*time.Millisecond))
	up := dec("link_down", "cisco-xr1", "GigabitEthernet0/0/0/1", "restore", "resolved", true)
	up.Trigger, up.Event = schema.TriggerEvent, &schema.DecisionEvent{Metric: "interface.oper_status", State: "up", Time: start.Add(100 * time.Second)}
	tally.observe(up, start.Add(100*time.Second+2*time.Millisecond))
	tally.observe(dec("link_down", "ericsson-ml", "LANXPort:slot=1;port=2", "reroute", "firing", true), start.Add(70*time.Second))
	var out bytes.Buffer
	tally.summary(&out, 2*time.Minute, scenarios)
	text := out.String()
	for _, want := range []string{
		"ran 2m0s; 6 decisions published",
		"congestion  nokia-7210",
		"nokia-7210/to_bng-a: congestion 0:20–1:35",
		"→ congestion reroute: firing at +0:27, 7s after the incident began and 3s before its ramp reached full strength; resolved (reroute) at +1:50, 15s after it ended; 1 firing, 1 resolved, 1 repeats",
		"cisco-xr1/GigabitEthernet0/0/0/1: link-down 1:00–1:40\n",
		"→ link_down reroute: firing at +1:00, 3ms after the incident began (3ms after the device's timestamp of the change); resolved (restore) at +1:40, 2ms after it ended (2ms after the device's timestamp); 1 firing, 1 resolved, 0 repeats",
		"== actions on other interfaces\n   ericsson-ml/LANXPort:slot=1;port=2\n      → link_down reroute: firing at +1:10",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
	// Nothing went wrong anywhere else: the summary says so; the link
	// fault (from 0:45) was reached but not acted on.
	quiet := newDemoTally(start, start)
	quiet.observe(dec("congestion", "nokia-7210", "to_bng-a", "reroute", "firing", true), start.Add(27*time.Second))
	out.Reset()
	quiet.summary(&out, time.Minute, scenarios)
	if !strings.Contains(out.String(), "no action anywhere else") || !strings.Contains(out.String(), "link-down 1:00–1:40\n      → no action") {
		t.Errorf("quiet summary:\n%s", out.String())
	}
	// Stopped before the first incident: the summary does not blame the models.
	out.Reset()
	newDemoTally(start, start).summary(&out, 10*time.Second, scenarios)
	if got := strings.Count(out.String(), "→ not reached: the run ended before it began"); got != 2 {
		t.Errorf("summary of a 10 s run says %d incidents were not reached, want 2:\n%s", got, out.String())
	}
}

// TestDemoRefusesBusyPorts checks that a port in use is reported at once,
// naming the flag that moves it.
func TestDemoRefusesBusyPorts(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, flag := range []string{"--nats-listen", "--http-listen"} {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		args := []string{"demo", "--duration", "1s", "--recordings", filepath.Join("..", "..", "testdata", "snmp"),
			"--nats-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"}
		root.SetArgs(append(args, flag, busy.Addr().String()))
		t0 := time.Now()
		err := root.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), busy.Addr().String()) || !strings.Contains(err.Error(), flag+" chooses another address") {
			t.Fatalf("demo with %s on a busy port: %v", flag, err)
		}
		if d := time.Since(t0); d > 2*time.Second {
			t.Fatalf("the busy port was reported after %v, want at once", d)
		}
	}
}

// TestDemoRefusesBadFlags checks the flags are validated before anything
// starts.
func TestDemoRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"demo", "--speed", "0"},
		{"demo", "--duration", "-5s"},
		{"demo", "--duration", "soon"},
		{"demo", "--recordings", t.TempDir(), "--duration", "1s", "--http-listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0"},
	} {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		if err := root.ExecuteContext(context.Background()); err == nil {
			t.Errorf("netfeat %v succeeded, want an error", args)
		} else if args[1] == "--recordings" && !strings.Contains(err.Error(), "leave it out for the built-in recordings") {
			t.Errorf("netfeat %v: %v, want a hint about the recordings", args, err)
		}
	}
}
