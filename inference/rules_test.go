package inference

import (
	"math"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"testing"
	"time"

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
		want   []float64 // score after each window
	}{
		{"threshold", RuleConfig{Op: ">", Threshold: 0.9},
			[]float64{0.5, 0.95, 0.9, 0.91}, []float64{0, 1, 0, 1}},
		{"for duration", RuleConfig{Op: ">=", Threshold: 0.9, For: 2 * time.Minute},
			[]float64{0.95, 0.95, 0.95, 0.5, 0.95, 0.95}, []float64{0, 0, 1, 0, 0, 0}},
		{"hysteresis", RuleConfig{Op: ">", Threshold: 0.9, Clear: &clear},
			[]float64{0.95, 0.85, 0.81, 0.8, 0.85, 0.92}, []float64{1, 1, 1, 0, 0, 1}},
		{"below", RuleConfig{Op: "<", Threshold: -20, For: time.Minute}, // rx power in dBm
			[]float64{-10, -25, -26, -15}, []float64{0, 0, 1, 0}},
		{"missing data keeps state", RuleConfig{Op: ">", Threshold: 0.9},
			[]float64{0.95, nan, 0.5}, []float64{1, 1, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Name, c.cfg.View, c.cfg.Feature = "r", "interface_1m", feature
			r := newRule(c.cfg)
			end := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			for i, v := range c.values {
				row := row("d", "i", end.Add(time.Duration(i)*time.Minute), map[string]float64{feature: v})
				var res result
				if err := r.score(row, &res); err != nil {
					t.Fatal(err)
				}
				if res.score != c.want[i] {
					t.Fatalf("window %d value %v: score %v, want %v (%s)", i, v, res.score, c.want[i], res.reason)
				}
			}
		})
	}
}

func TestRuleStatePerEntity(t *testing.T) {
	r := newRule(RuleConfig{Name: "r", View: "interface_1m", Feature: "interface_out_utilization__mean_1m", Op: ">", Threshold: 0.9, For: time.Minute})
	end := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var res result
	hot := map[string]float64{"interface_out_utilization__mean_1m": 0.99}
	_ = r.score(row("a", "x", end, hot), &res)
	_ = r.score(row("b", "x", end.Add(time.Minute), hot), &res)
	if res.score != 0 {
		t.Fatal("entity b fired on entity a's history")
	}
	_ = r.score(row("a", "x", end.Add(time.Minute), hot), &res)
	if res.score != 1 {
		t.Fatalf("entity a did not fire after 1m: %s", res.reason)
	}
	if err := r.score(&schema.FeatureRow{View: "interface_1m", Names: []string{"x"}, Values: []float64{1}}, &res); err == nil {
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
	waitFor(t, func() bool { return len(r.rec.snapshot()) == 4 })
	mid := time.Now().UnixNano()
	time.Sleep(time.Millisecond)
	r.HandleRow(row("b", "x", end.Add(time.Minute), idle))
	waitFor(t, func() bool { return len(r.rec.snapshot()) == 6 })
	r.forget(mid) // a is idle since before mid, b is not
	ru := r.slots["r"].rule
	det := r.slots["d"].set.Load().live.sc.(*detectorScorer)
	_, ruleA := ru.state[schema.Entity{Device: "a", Component: "x"}]
	_, ruleB := ru.state[schema.Entity{Device: "b", Component: "x"}]
	_, detA := det.state[schema.Entity{Device: "a", Component: "x"}]
	_, detB := det.state[schema.Entity{Device: "b", Component: "x"}]
	if ruleA || !ruleB || detA || !detB {
		t.Fatalf("after forget: rule a %v b %v, detector a %v b %v", ruleA, ruleB, detA, detB)
	}
	if n := testutil.ToFloat64(r.m.forgotten.WithLabelValues("r")) + testutil.ToFloat64(r.m.forgotten.WithLabelValues("d")); n != 2 {
		t.Fatalf("forgotten %v, want 2", n)
	}
}
