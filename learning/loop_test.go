package learning

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/backtest"
	"github.com/netfeat/netfeat/internal/testkit"
)

// fakeRegistry keeps logistic versions in memory, as the runtime's
// registry would.
type fakeRegistry struct {
	mu       sync.Mutex
	names    []string
	versions map[string]*Logistic
	live     string
	shadow   string
}

func (f *fakeRegistry) Features(string) ([]string, error) { return f.names, nil }
func (f *fakeRegistry) Upload(_ context.Context, _ string, file []byte) (string, error) {
	m, err := LoadLogistic(file)
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v := fmt.Sprintf("v%d", len(f.versions)+1)
	f.versions[v] = m
	return v, nil
}
func (f *fakeRegistry) Shadow(_ context.Context, _, v string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shadow = v
	return nil
}
func (f *fakeRegistry) Promote(_ context.Context, _, v string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.live, f.shadow = v, ""
	return nil
}
func (f *fakeRegistry) Live(context.Context, string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.live, nil
}
func (f *fakeRegistry) Scorer(_ context.Context, _, v string, _ []string) (Scorer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.versions[v]
	if !ok {
		return nil, errors.New("no such version")
	}
	return func(x []float64) (float64, error) { return m.Predict(x), nil }, nil
}
func (f *fakeRegistry) Threshold(string) (float64, error) { return 0.5, nil }

type fakeSource struct{ ds *Dataset }

func (s fakeSource) Labelled(context.Context, string, []string) (*Dataset, error) { return s.ds, nil }

func TestLoopRetrains(t *testing.T) {
	good := synthetic(2000, []float64{2, -1.5, 1}, -0.5, 5)
	// A live version trained on labels that have nothing to do with the
	// features: the retrained candidate beats it.
	noise := synthetic(2000, []float64{0, 0, 0}, 0, 6)
	noise.X = good.X
	liveModel, err := Train(noise, Options{})
	if err != nil {
		t.Fatal(err)
	}
	oneClass := &Dataset{Names: good.Names, X: good.X, Y: make([]float64, good.Len())}
	for _, tc := range []struct {
		name        string
		ds          *Dataset
		autoPromote bool
		minGain     float64
		result      string
		live        string
		reason      string
	}{
		{"promoted", good, true, 0, ResultPromoted, "v2", ""},
		{"shadow only", good, false, 0, ResultShadow, "v1", ""},
		{"gate refuses", good, true, 1, ResultGate, "v1", ""},
		{"too few", &Dataset{Names: good.Names, X: good.X[:30], Y: good.Y[:10]}, true, 0, ResultTooFew, "v1", ""},
		{"one class", oneClass, true, 0, ResultBadInput, "v1", ReasonOneClass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := &fakeRegistry{names: good.Names, versions: map[string]*Logistic{"v1": liveModel}, live: "v1"}
			cfg := DefaultConfig()
			cfg.Enabled, cfg.OnDrift, cfg.AutoPromote, cfg.Gate.MinGain = true, true, tc.autoPromote, tc.minGain
			cfg.MinSamples = 100
			l, err := NewLoop(cfg, []string{"m"}, reg, fakeSource{tc.ds}, nil, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			run := l.Retrain(context.Background(), "m", TriggerManual)
			if run.Result != tc.result || reg.live != tc.live {
				t.Fatalf("run %+v, live %s; want result %s, live %s", run, reg.live, tc.result, tc.live)
			}
			if tc.reason != "" && testutil.ToFloat64(l.rejected.WithLabelValues(tc.reason)) != 1 {
				t.Errorf("rejected_total{reason=%s} not counted", tc.reason)
			}
			if tc.result == ResultShadow && reg.shadow != "v2" {
				t.Errorf("candidate not shadowed: %q", reg.shadow)
			}
			if run.Verdict != nil && (run.Verdict.Candidate == nil || !strings.Contains(run.Verdict.Reason, "held-out")) {
				t.Errorf("verdict %+v", run.Verdict)
			}
			if run.Verdict != nil && run.Verdict.Candidate.F1 <= run.Verdict.Live.F1 {
				t.Errorf("candidate F1 %v not above the noise-trained live version's %v", run.Verdict.Candidate.F1, run.Verdict.Live.F1)
			}
		})
	}
}

func TestLoopOnDrift(t *testing.T) {
	good := synthetic(1000, []float64{2, -1.5}, 0, 5)
	reg := &fakeRegistry{names: good.Names, versions: map[string]*Logistic{}}
	cfg := DefaultConfig()
	cfg.Enabled, cfg.OnDrift, cfg.AutoPromote, cfg.MinInterval = true, true, true, time.Hour
	l, err := NewLoop(cfg, []string{"m"}, reg, fakeSource{good}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	l.Drifted("other") // not a model of the loop
	l.Drifted("m")
	testkit.Eventually(t, "one run", func() bool { return len(l.Runs()) == 1 })
	if r := l.Runs()[0]; r.Result != ResultPromoted || r.Trigger != TriggerDrift || reg.live != "v1" {
		t.Fatalf("run %+v, live %q", r, reg.live)
	}
	// Within min_interval a second drift does not retrain.
	if r := l.Retrain(ctx, "m", TriggerDrift); r.Result != "" {
		t.Fatalf("second drift run: %+v", r)
	}
	cancel()
	<-done
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"defaults", func(*Config) {}, ""},
		{"enabled without trigger", func(c *Config) { c.Enabled = true }, "learning.schedule"},
		{"short schedule", func(c *Config) { c.Schedule = time.Second }, "schedule"},
		{"holdout", func(c *Config) { c.Holdout = 1 }, "holdout"},
		{"metric", func(c *Config) { c.Gate.Metric = "auc" }, "gate.metric"},
		{"min_samples", func(c *Config) { c.MinSamples = 1 }, "min_samples"},
		{"psi", func(c *Config) { c.Drift.PSIThreshold = -1 }, "drift.psi_threshold"},
		{"psi clear", func(c *Config) { c.Drift.PSIClear = 0.5 }, "drift.psi_clear"},
		{"every", func(c *Config) { c.Drift.Every = 2000 }, "drift.every"},
		{"twice", func(c *Config) { c.Models = []string{"a", "a"} }, "models[1]"},
		{"twin defaults", func(c *Config) { c.Gate.Twin = &TwinGateConfig{Scenarios: "s"} }, ""},
		{"twin without scenarios", func(c *Config) { c.Gate.Twin = &TwinGateConfig{Duration: time.Hour} }, "gate.twin.scenarios"},
		{"twin short", func(c *Config) { c.Gate.Twin = &TwinGateConfig{Scenarios: "s", Duration: 10 * time.Second} }, "gate.twin.duration"},
		{"twin negative duration", func(c *Config) { c.Gate.Twin = &TwinGateConfig{Scenarios: "s", Duration: -time.Minute} }, "gate.twin.duration"},
		{"twin long", func(c *Config) { c.Gate.Twin = &TwinGateConfig{Scenarios: "s", Duration: 25 * time.Hour} }, "gate.twin.duration"},
		{"twin speed", func(c *Config) { c.Gate.Twin = &TwinGateConfig{Scenarios: "s", Speed: -1} }, "gate.twin.speed"},
		{"twin interval", func(c *Config) {
			c.Gate.Twin = &TwinGateConfig{Scenarios: "s", Duration: time.Minute, Interval: 2 * time.Minute}
		}, "gate.twin.interval"},
		{"twin grace", func(c *Config) { c.Gate.Twin = &TwinGateConfig{Scenarios: "s", Grace: -time.Second} }, "gate.twin.grace"},
		{"twin kind", func(c *Config) { c.Gate.Twin = &TwinGateConfig{Scenarios: "s", Kinds: []string{"congestion", ""}} }, "gate.twin.kinds[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains("learning."+err.Error(), tc.want)) {
				t.Fatalf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
}

// fixedGate answers with v, counting its calls.
type fixedGate struct {
	v     Verdict
	err   error
	calls *int
}

func (g fixedGate) Evaluate(context.Context, Candidate) (Verdict, error) {
	*g.calls++
	return g.v, g.err
}

func TestAllGates(t *testing.T) {
	held := &Metrics{F1: 0.9}
	bt := []backtest.Result{{Version: "v2", F1: 0.5}}
	boom := errors.New("boom")
	for _, tc := range []struct {
		name   string
		gates  []Verdict
		errAt  int // 1-based gate that fails; 0: none
		pass   bool
		reason string
		asked  int
	}{
		{"none", nil, 0, true, "no gate", 0},
		{"both pass", []Verdict{{Pass: true, Reason: "a", Candidate: held}, {Pass: true, Reason: "b", Backtest: bt}}, 0, true, "a; b", 2},
		{"first refuses", []Verdict{{Reason: "a", Candidate: held}, {Pass: true, Reason: "b"}}, 0, false, "a", 1},
		{"second refuses", []Verdict{{Pass: true, Reason: "a", Candidate: held}, {Reason: "b", Backtest: bt}}, 0, false, "a; b", 2},
		{"second fails", []Verdict{{Pass: true, Reason: "a"}, {Pass: true}}, 2, false, "", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			var gs AllGates
			for i, v := range tc.gates {
				g := fixedGate{v: v, calls: &calls}
				if i+1 == tc.errAt {
					g.err = boom
				}
				gs = append(gs, g)
			}
			v, err := gs.Evaluate(context.Background(), Candidate{})
			if tc.errAt > 0 {
				if !errors.Is(err, boom) || calls != tc.asked {
					t.Fatalf("err %v after %d gates", err, calls)
				}
				return
			}
			if err != nil || v.Pass != tc.pass || v.Reason != tc.reason || calls != tc.asked {
				t.Fatalf("verdict %+v, err %v, %d gates asked", v, err, calls)
			}
			if tc.asked == 2 && (v.Candidate != held || len(v.Backtest) != 1) {
				t.Fatalf("figures not kept: %+v", v)
			}
		})
	}
}
