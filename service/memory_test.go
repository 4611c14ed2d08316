package service

import (
	"context"
	"log/slog"
	"runtime/debug"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/featurestore"
	"github.com/netfeat/netfeat/schema"
)

func TestPlanMemory(t *testing.T) {
	const (
		mib   = int64(1 << 20)
		limit = 1000 * mib
		full  = 512 * mib
	)
	tests := []struct {
		name             string
		budget, hot      int64
		u                memUsage
		wantBudget       int64
		wantGoLimit      int64
		wantShedsAtLeast int64 // budget below hot by this much
	}{
		{"under the target: nothing changes", full, 300 * mib, memUsage{Used: 900 * mib, GoMapped: 500 * mib}, full, 600 * mib, 0},
		{"over the target: the excess comes off what the tier holds", full, 300 * mib, memUsage{Used: 1100 * mib, GoMapped: 700 * mib}, 300*mib - (1100*mib - 950*mib), 600 * mib, 150 * mib},
		{"far over: down to the floor", full, 100 * mib, memUsage{Used: 2000 * mib, GoMapped: 1800 * mib}, minHotBudget, 800 * mib, 99 * mib},
		{"never raised while over", 50 * mib, 40 * mib, memUsage{Used: 960 * mib, GoMapped: 900 * mib}, 30 * mib, 940 * mib, 10 * mib},
		{"room again: grows back by what is free under 85%", 50 * mib, 50 * mib, memUsage{Used: 800 * mib, GoMapped: 700 * mib}, 100 * mib, 900 * mib, 0},
		{"grows back no further than memory_budget", 500 * mib, 100 * mib, memUsage{Used: 100 * mib, GoMapped: 90 * mib}, full, 990 * mib, 0},
		{"Go's limit never under a quarter", full, 10 * mib, memUsage{Used: 900 * mib, GoMapped: 50 * mib}, full, 250 * mib, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := planMemory(limit, full, tc.budget, tc.hot, tc.u)
			if p.budget != tc.wantBudget || p.goLimit != tc.wantGoLimit {
				t.Errorf("plan = budget %d MiB, Go limit %d MiB; want %d MiB, %d MiB", p.budget/mib, p.goLimit/mib, tc.wantBudget/mib, tc.wantGoLimit/mib)
			}
			if shed := tc.hot - p.budget; tc.wantShedsAtLeast > 0 && shed < tc.wantShedsAtLeast {
				t.Errorf("the tier would shed %d bytes, want at least %d", shed, tc.wantShedsAtLeast)
			}
		})
	}
}

// gathered is the value of the one series of a metric in reg.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not gathered", name)
	return 0
}

// TestMemoryGovernorShedsHotTier drives a real store through the
// governor with measured usage given by the test: over the limit the hot
// tier sheds its oldest data down to the plan's budget and the metric
// counts it; back under, the budget returns to memory_budget.
func TestMemoryGovernorShedsHotTier(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	const limit = 256 << 20
	st, err := featurestore.New(featurestore.Config{SealRows: 2048, MemoryBudget: 64 << 20}, nil, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Stop(context.Background()) })
	now := time.Now().UnixNano()
	batch := make([]schema.Sample, 0, 4096)
	for i := range 50 {
		batch = batch[:0]
		for j := range 4096 {
			batch = append(batch, schema.Sample{TS: now + int64(i*4096+j), Entity: schema.Entity{Device: "r1", Component: "Gi0/" + string(rune('a'+j%16))},
				Metric: "interface.in.octets", Value: float64(j), Source: "test"})
		}
		if err := st.Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	_, held := st.HotUsage()
	if held < 2<<20 {
		t.Fatalf("hot tier holds %d bytes: the test needs a few MiB", held)
	}
	reg := prometheus.NewRegistry()
	g, err := newMemoryGovernor(limit, st, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		used     int64
		wantShed bool
		wantFull bool // budget back at memory_budget
	}{
		{"under the limit", 200 << 20, false, true},
		{"over by more than the tier holds", limit + held, true, false},
		{"back under", 100 << 20, false, true},
	}
	var shedBefore float64
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g.sample = func() memUsage { return memUsage{Used: tc.used, GoMapped: tc.used / 2} }
			_, before := st.HotUsage()
			g.step()
			_, after := st.HotUsage()
			shed := gathered(t, reg, "netfeat_memory_shed_bytes_total")
			if (shed > shedBefore) != tc.wantShed {
				t.Errorf("netfeat_memory_shed_bytes_total went %v → %v; want a shed: %v", shedBefore, shed, tc.wantShed)
			}
			if tc.wantShed {
				if after > st.HotBudget() || st.HotBudget() != minHotBudget {
					t.Errorf("hot tier %d bytes under budget %d, want at most the floor %d", after, st.HotBudget(), minHotBudget)
				}
				if got := shed - shedBefore; got != float64(before-after) {
					t.Errorf("counted %v bytes shed, the tier went from %d to %d", got, before, after)
				}
			}
			if (st.HotBudget() == 64<<20) != tc.wantFull {
				t.Errorf("hot budget %d after the step", st.HotBudget())
			}
			if got := testutil.ToFloat64(g.budget); got != float64(st.HotBudget()) {
				t.Errorf("netfeat_memory_hot_budget_bytes = %v, store budget %d", got, st.HotBudget())
			}
			if got := debug.SetMemoryLimit(-1); got != limit-tc.used/2 && got != limit/4 {
				t.Errorf("Go soft limit %d, want the limit less what is outside Go (%d)", got, limit-tc.used/2)
			}
			shedBefore = shed
		})
	}
}
