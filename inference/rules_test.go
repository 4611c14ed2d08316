package inference

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"testing"
	"time"

	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

var nan = math.NaN()

func TestRule(t *testing.T) {
	clear := 0.8
	feature := "interface_out_utilization__mean_1m"
	cases := []struct {
		name   string
		cfg    RuleConfig
		values []float64 // one window per minute
		want   []string  // lifecycle state after each window
	}{
		{"threshold", RuleConfig{Op: ">", Threshold: 0.9},
			[]float64{0.5, 0.95, 0.9, 0.91}, []string{"", "firing", "resolved", "firing"}},
		{"for duration", RuleConfig{Op: ">=", Threshold: 0.9, For: 2 * time.Minute},
			[]float64{0.95, 0.95, 0.95, 0.5, 0.95, 0.95}, []string{"pending", "pending", "firing", "resolved", "pending", "pending"}},
		{"hysteresis", RuleConfig{Op: ">", Threshold: 0.9, Clear: &clear},
			[]float64{0.95, 0.85, 0.81, 0.8, 0.85, 0.92}, []string{"firing", "firing", "firing", "resolved", "resolved", "firing"}},
		{"below", RuleConfig{Op: "<", Threshold: -20, For: time.Minute}, // rx power in dBm
			[]float64{-10, -25, -26, -15}, []string{"", "pending", "firing", "resolved"}},
		{"missing data keeps state", RuleConfig{Op: ">", Threshold: 0.9},
			[]float64{0.95, nan, 0.5}, []string{"firing", "firing", "resolved"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Name, c.cfg.View, c.cfg.Feature = "r", "interface_1m", feature
			r := newRule(c.cfg)
			p := newLifeParams(ActionLifecycle{For: c.cfg.For}, DefaultConfig().Lifecycle, "alert")
			var lc lifecycle
			end := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			for i, v := range c.values {
				t0 := end.Add(time.Duration(i) * time.Minute)
				row := row("d", "i", t0, map[string]float64{feature: v})
				var res result
				if err := r.eval(row, lc.state == "firing", &res); err != nil {
					t.Fatal(err)
				}
				if len(res.missing) == 0 {
					lc.step(&p, t0.UnixNano(), res.score >= 1)
				}
				if want := c.want[i]; lc.state != want && !(want == "" && lc.state == "inactive") {
					t.Fatalf("window %d value %v: state %q, want %q (%s)", i, v, lc.state, want, res.reason)
				}
			}
		})
	}
}

func TestRuleLifecyclePerEntity(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Publish = PublishAll
	cfg.Rules = []RuleConfig{{Name: "r", View: "interface_1m", Feature: "interface_out_utilization__mean_1m", Op: ">", Threshold: 0.9, For: time.Minute}}
	r := newRuntime(t, cfg, nil, t.TempDir())
	end := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	hot := map[string]float64{"interface_out_utilization__mean_1m": 0.99}
	r.HandleRow(row("a", "x", end, hot))
	r.HandleRow(row("b", "x", end.Add(time.Minute), hot))
	r.HandleRow(row("a", "x", end.Add(time.Minute), hot))
	testkit.Eventually(t, "len(r.rec.snapshot()) == 3", func() bool { return len(r.rec.snapshot()) == 3 })
	got := map[string]string{}
	for _, x := range r.rec.snapshot() {
		got[x.d.Entity.Device] = x.d.State
	}
	if got["a"] != "firing" || got["b"] != "pending" {
		t.Fatalf("states %v: want a firing after 1m, b pending on its first window", got)
	}
	var res result
	if err := r.slots["r"].rule.eval(&schema.FeatureRow{View: "interface_1m", Names: []string{"x"}, Values: []float64{1}}, false, &res); err == nil {
		t.Fatal("a row without the feature scored")
	}
}

func TestForgetIdleState(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Rules = []RuleConfig{{Name: "r", View: "interface_1m", Feature: "interface_out_utilization__mean_1m", Op: ">", Threshold: 0.9}}
	cfg.Models = []ModelConfig{{Name: "d", Kind: KindEWMA, View: "interface_1m", Features: []string{"interface_out_utilization__mean_1m"}}}
	r := newRuntime(t, cfg, nil, t.TempDir())
	end := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	r.HandleRow(row("a", "x", end, idle))
	r.HandleRow(row("b", "x", end, idle))
	testkit.Eventually(t, "len(r.rec.snapshot()) == 4", func() bool { return len(r.rec.snapshot()) == 4 })
	mid := time.Now().UnixNano()
	time.Sleep(time.Millisecond)
	r.HandleRow(row("b", "x", end.Add(time.Minute), idle))
	testkit.Eventually(t, "len(r.rec.snapshot()) == 6", func() bool { return len(r.rec.snapshot()) == 6 })
	r.forget(mid) // a is idle since before mid, b is not
	ru := &r.slots["r"].lcs
	det := r.slots["d"].set.Load().live.sc.(*detectorScorer)
	ruleA := ru.lookup(schema.Entity{Device: "a", Component: "x"}) != nil
	ruleB := ru.lookup(schema.Entity{Device: "b", Component: "x"}) != nil
	_, detA := det.state[schema.Entity{Device: "a", Component: "x"}]
	_, detB := det.state[schema.Entity{Device: "b", Component: "x"}]
	if ruleA || !ruleB || detA || !detB {
		t.Fatalf("after forget: rule a %v b %v, detector a %v b %v", ruleA, ruleB, detA, detB)
	}
	// Entity a's rule lifecycle, its detector lifecycle and its detector.
	if n := testutil.ToFloat64(r.m.forgotten.WithLabelValues("r")) + testutil.ToFloat64(r.m.forgotten.WithLabelValues("d")); n != 3 {
		t.Fatalf("forgotten %v, want 3", n)
	}
}

// TestObserveTransitions checks that every observer sees the decisions
// that move an action's state, with their features, and none of those that
// only repeat it.
func TestObserveTransitions(t *testing.T) {
	cfg := DefaultConfig()
	feature := "interface_out_utilization__mean_1m"
	cfg.Rules = []RuleConfig{{Name: "r", View: "interface_1m", Feature: feature, Op: ">", Threshold: 0.9, For: time.Minute}}
	r := newRuntime(t, cfg, nil, t.TempDir())
	var mu sync.Mutex
	seen := [2][]string{}
	for i := range seen {
		r.ObserveTransitions(func(d *schema.Decision) {
			mu.Lock()
			defer mu.Unlock()
			seen[i] = append(seen[i], fmt.Sprintf("%s %v", d.State, d.Features[feature]))
		})
	}
	r.ObserveTransitions(nil) // ignored
	end := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i, v := range []float64{0.95, 0.96, 0.97, 0.5, 0.4} {
		r.HandleRow(row("a", "x", end.Add(time.Duration(i)*time.Minute), map[string]float64{feature: v}))
	}
	testkit.Eventually(t, "5 decisions", func() bool { return len(r.rec.snapshot()) == 5 })
	want := []string{"pending 0.95", "firing 0.96", "resolved 0.5"}
	mu.Lock()
	defer mu.Unlock()
	for i, got := range seen {
		if !slices.Equal(got, want) {
			t.Errorf("observer %d saw %q, want %q", i, got, want)
		}
	}
}
