package twin

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/internal/sim/scenario"
	"github.com/netfeat/netfeat/learning"
	"github.com/netfeat/netfeat/service"
)

// gateConfig is a service configuration with one logistic model, busy, on
// an interface's mean output utilisation.
const gateConfig = `
data_dir: %DATA%
views:
  - name: interface_1m
    entity: component
    metrics: [interface.out.utilization, interface.out.discards_ps]
    aggregations: [mean, max]
    windows: [1m]
    hop: 5s
    allowed_lateness: 2s
inference:
  models:
    - name: busy
      kind: logistic
      view: interface_1m
      file: %MODEL%
      threshold: 0.5
      action: alert
learning:
  enabled: true
  on_drift: true
  auto_promote: true
  min_samples: 100
`

const utilFeature = "interface_out_utilization__mean_1m"

// utilSource labels windows of random utilisation with label(util).
type utilSource struct{ label func(util float64) bool }

func (s utilSource) Labelled(_ context.Context, _ string, names []string) (*learning.Dataset, error) {
	ds := &learning.Dataset{Names: names}
	r := rand.New(rand.NewPCG(1, 2))
	for range 400 {
		x := make([]float64, len(names))
		for j, n := range names {
			if n == utilFeature {
				x[j] = r.Float64()
			} else {
				x[j] = r.Float64() * 10
			}
		}
		var y float64
		for j, n := range names {
			if n == utilFeature && s.label(x[j]) {
				y = 1
			}
		}
		if err := ds.Add(x, y); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// liveModel is a logistic model that fires above 75 % utilisation: it
// acts on the twin's congestion and on nothing else.
func liveModel(t *testing.T) []byte {
	t.Helper()
	m := &learning.Logistic{Format: learning.Format, Version: learning.FormatVersion, Features: []string{utilFeature},
		Mean: []float64{0}, Scale: []float64{1}, Weights: []float64{40}, Intercept: -30, L2: 1e-4}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gateSetup is a real inference runtime with busy's live version, and the
// service configuration a twin gate runs from.
func gateSetup(t *testing.T) (*service.Config, *inference.Runtime) {
	t.Helper()
	dir := t.TempDir()
	model := filepath.Join(dir, "busy.json")
	if err := os.WriteFile(model, liveModel(t), 0o644); err != nil {
		t.Fatal(err)
	}
	prodData := filepath.Join(dir, "production")
	yml := strings.NewReplacer("%DATA%", prodData, "%MODEL%", model).Replace(gateConfig)
	cfg, err := service.ParseConfig("gate.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := inference.New(cfg.Inference, nil, filepath.Join(dir, "registry"), prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Stop(context.Background()) })
	t.Cleanup(func() {
		// Nothing of the twin runs reached the production data directory.
		if _, err := os.Stat(prodData); !os.IsNotExist(err) {
			t.Errorf("the production data directory %s exists after the gate's runs (%v)", prodData, err)
		}
	})
	return cfg, rt
}

// TestLoopTwinGate retrains busy with the loop, judged by the held-out gate
// and the twin gate on a real twin run: a candidate trained on labels that
// are wrong for the twin (quiet interfaces labelled busy) beats the live
// version on its own held-out windows but acts on no incident on the twin,
// and is refused; one trained on the right labels passes both and is
// promoted. Both versions' backtests are recorded in the registry.
func TestLoopTwinGate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		label   func(util float64) bool
		result  string
		promote bool
	}{
		{"worse on the twin", func(u float64) bool { return u < 0.5 }, learning.ResultGate, false},
		{"as good on the twin", func(u float64) bool { return u > 0.7 }, learning.ResultPromoted, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, rt := gateSetup(t)
			ctx := context.Background()
			live, err := rt.LiveVersion(ctx, "busy")
			if err != nil || live == "" {
				t.Fatalf("live version %q: %v", live, err)
			}
			tg := &Gate{Config: cfg, Models: rt, Source: "a synthetic router",
				Devices: func(start time.Time) ([]Device, error) { return []Device{synthDevice(t, start, 4)}, nil },
				Twin:    learning.TwinGateConfig{Scenarios: "testdata", Duration: 3 * time.Minute, Speed: 0}, Metric: learning.MetricF1}
			reg := service.LearningRegistry(rt)
			loop, err := learning.NewLoop(cfg.Learning, []string{"busy"}, reg, utilSource{tc.label},
				learning.AllGates{cfg.Learning.Gate.Holdout(), tg}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			run := loop.Retrain(ctx, "busy", learning.TriggerManual)
			if run.Err != "" || run.Verdict == nil {
				t.Fatalf("run: %+v", run)
			}
			v := run.Verdict
			t.Logf("verdict: %s", v.Reason)
			if run.Result != tc.result {
				t.Fatalf("result %s, want %s; verdict %s", run.Result, tc.result, v.Reason)
			}
			// The held-out gate passed in both cases: the candidate fits
			// its own labels better than the live version.
			if v.Candidate == nil || v.Live == nil || v.Candidate.F1 < v.Live.F1 || !strings.Contains(v.Reason, "held-out") {
				t.Fatalf("held-out part of the verdict: %+v", v)
			}
			if len(v.Backtest) != 2 || !strings.Contains(v.Reason, "twin backtest") || v.BacktestRun == "" {
				t.Fatalf("twin part of the verdict: %+v", v)
			}
			cand, lv := v.Backtest[0], v.Backtest[1]
			if cand.Version != run.Version || lv.Version != live || lv.F1 != 1 || lv.Episodes != 1 {
				t.Fatalf("backtest results: candidate %+v, live %+v", cand, lv)
			}
			if tc.promote != (cand.F1 >= lv.F1) {
				t.Fatalf("candidate F1 %v against live %v", cand.F1, lv.F1)
			}
			got, err := rt.LiveVersion(ctx, "busy")
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]string{true: run.Version, false: live}[tc.promote]; got != want {
				t.Fatalf("live version %s, want %s", got, want)
			}
			mi, err := rt.Model(ctx, "busy")
			if err != nil {
				t.Fatal(err)
			}
			recorded := map[string]float64{}
			for _, vi := range mi.Versions {
				if vi.Backtest != nil {
					recorded[vi.Version] = vi.Backtest.Metrics["f1"]
				}
			}
			if len(recorded) != 2 || recorded[run.Version] != cand.F1 || recorded[live] != lv.F1 {
				t.Fatalf("recorded backtests %v; want %s: %v, %s: %v", recorded, run.Version, cand.F1, live, lv.F1)
			}
		})
	}
}

// TestTwinGateNoLabels: scenarios that script no incident refuse the
// candidate with that reason, not with zeros.
func TestTwinGateNoLabels(t *testing.T) {
	cfg, rt := gateSetup(t)
	ctx := context.Background()
	live, err := rt.LiveVersion(ctx, "busy")
	if err != nil {
		t.Fatal(err)
	}
	tg := &Gate{Config: cfg, Models: rt, Twin: learning.TwinGateConfig{Scenarios: "quiet/", Duration: 2 * time.Minute},
		Devices: func(start time.Time) ([]Device, error) {
			quiet := &scenario.Scenario{Baseline: &scenario.Baseline{Utilization: 0.25}}
			return []Device{synthDeviceWith(t, start, 2, quiet)}, nil
		}}
	v, err := tg.Evaluate(ctx, learning.Candidate{Model: "busy", Version: live})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("verdict: %s", v.Reason)
	if v.Pass || !strings.Contains(v.Reason, "no labels") || !strings.Contains(v.Reason, "quiet/") || v.Backtest != nil {
		t.Fatalf("verdict %+v", v)
	}
	mi, err := rt.Model(ctx, "busy")
	if err != nil {
		t.Fatal(err)
	}
	for _, vi := range mi.Versions {
		if vi.Backtest != nil {
			t.Fatalf("a run without labels recorded a backtest with %s: %+v", vi.Version, vi.Backtest)
		}
	}
}
