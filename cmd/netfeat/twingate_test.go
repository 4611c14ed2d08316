package main

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/examples"
	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/learning"
	"github.com/netfeat/netfeat/service"
)

// TestConfigCheckTwinGate: config check parses the twin gate's scenarios
// as serve does: every demo device needs its scenario, and each must parse.
func TestConfigCheckTwinGate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string // scenario file → content; "" the built-in one
		want  string
	}{
		{"built-in scenarios", map[string]string{"nokia-7210.yaml": "", "ericsson-ml.yaml": "", "cisco-xr1.yaml": ""}, "OK"},
		{"a device without its scenario", map[string]string{"nokia-7210.yaml": "", "ericsson-ml.yaml": ""}, "learning.gate.twin.scenarios: scenarios"},
		{"a bad scenario", map[string]string{"nokia-7210.yaml": "", "ericsson-ml.yaml": "", "cisco-xr1.yaml": "events: [{kind: meltdown, at: 1s}]\n"}, "cisco-xr1.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			scen := filepath.Join(dir, "scen")
			if err := os.Mkdir(scen, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, content := range tc.files {
				b := []byte(content)
				if content == "" {
					var err error
					if b, err = fs.ReadFile(examples.Demo, "demo-scenarios/"+name); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.WriteFile(filepath.Join(scen, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(dir, "netfeat.yaml")
			text := "data_dir: ./data\nlearning:\n  gate:\n    twin: {scenarios: scen, duration: 3m}\n"
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := runCmd(t, "config", "check", path)
			got := out
			if err != nil {
				got += err.Error()
			}
			if (tc.want == "OK") != (err == nil) || !strings.Contains(got, tc.want) {
				t.Fatalf("config check: %q, %v; want %q", out, err, tc.want)
			}
		})
	}
}

// utilModel is a logistic model of the interface_1m view's mean output
// utilisation: score 1/(1+exp(-(intercept + weight·util))).
func utilModel(t *testing.T, weight, intercept float64) []byte {
	t.Helper()
	m := &learning.Logistic{Format: learning.Format, Version: learning.FormatVersion, Features: []string{"interface_out_utilization__mean_1m"},
		Mean: []float64{0}, Scale: []float64{1}, Weights: []float64{weight}, Intercept: intercept, L2: 1e-4}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTwinGateDemo runs the twin gate serve builds (newTwinGate) on the
// demo's devices and built-in scenarios, for 10 minutes of virtual time
// (the default) as fast as the pipeline goes: the live version of a
// logistic model that fires above 75 % utilisation detects the nokia's
// congestion; a candidate that fires on every interface is refused; both
// results are recorded with their versions.
func TestTwinGateDemo(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "busy.json")
	if err := os.WriteFile(live, utilModel(t, 40, -30), 0o644); err != nil {
		t.Fatal(err)
	}
	demo, err := fs.ReadFile(examples.Demo, "demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(demo), "file: models/congestion.json", "file: builtin:congestion", 1)
	text = strings.Replace(text, "\n  models:\n", "\n  models:\n    - {name: busy, kind: logistic, view: interface_1m, file: "+live+", threshold: 0.5, action: alert}\n", 1)
	text += "\nlearning:\n  gate:\n    twin: {scenarios: " + filepath.Join(dir, "scen") + ", kinds: [congestion]}\n"
	if err := os.Mkdir(filepath.Join(dir, "scen"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"nokia-7210.yaml", "ericsson-ml.yaml", "cisco-xr1.yaml"} {
		b, err := fs.ReadFile(examples.Demo, "demo-scenarios/"+name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "scen", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := service.ParseConfig("demo.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := inference.New(cfg.Inference, nil, filepath.Join(dir, "registry"), prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Stop(context.Background()) })
	liveVer, err := rt.LiveVersion(ctx, "busy")
	if err != nil {
		t.Fatal(err)
	}
	cand, err := rt.InstallVersion(ctx, "busy", "", utilModel(t, 0, 5), "test")
	if err != nil {
		t.Fatal(err)
	}
	g, err := newTwinGate(cfg, rt, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	v, err := g.Evaluate(ctx, learning.Candidate{Model: "busy", Version: cand.Version, Live: liveVer})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("twin gate run on the demo's scenarios, 10m of virtual time at speed 0: %s; %s", time.Since(t0).Round(time.Millisecond), v.Reason)
	if v.Pass || len(v.Backtest) != 2 {
		t.Fatalf("verdict %+v", v)
	}
	c, l := v.Backtest[0], v.Backtest[1]
	// The built-in scenarios congest the nokia's to_bng-a every 3 minutes
	// from +0:20: 4 episodes in 10 minutes, the last of which (from 9:20)
	// ends with the run before the 1-minute mean passes 0.75.
	if l.Episodes != 4 || l.Detected != 3 || l.FalseActions != 0 || c.FalseActions == 0 || c.F1 >= l.F1 {
		t.Fatalf("candidate %+v\nlive %+v", c, l)
	}
	mi, err := rt.Model(ctx, "busy")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, vi := range mi.Versions {
		if vi.Backtest != nil && strings.Contains(vi.Backtest.Run, "scenarios "+filepath.Join(dir, "scen")) {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d versions with the run's backtest recorded, want 2", n)
	}
}
