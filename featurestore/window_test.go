package featurestore

import (
	"context"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

// collector is a subscriber that keeps every row.
type collector struct {
	mu   sync.Mutex
	rows []*schema.FeatureRow
}

func (c *collector) handle(r *schema.FeatureRow) {
	c.mu.Lock()
	c.rows = append(c.rows, r)
	c.mu.Unlock()
}

func (c *collector) snapshot() []*schema.FeatureRow {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*schema.FeatureRow(nil), c.rows...)
}

// waitWindowsIdle waits until the window engine has processed every batch
// an Append returned for, so subscribers have seen every row those batches
// closed, and the row writer has written every closed row and watermark
// mark. It replaces sleeping "long enough" before checking that no more
// rows came.
func waitWindowsIdle(t testing.TB, s *Store) {
	t.Helper()
	testkit.Eventually(t, "the window engine and the row writer to go idle", func() bool {
		return s.winBusy.Load() == 0 && s.rowsQueued.Load() == 0
	})
}

// waitRows waits until the collector holds at least n rows.
func (c *collector) waitRows(t *testing.T, n int) []*schema.FeatureRow {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if rows := c.snapshot(); len(rows) >= n {
			return rows
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("got %d rows, want at least %d", len(c.snapshot()), n)
	return nil
}

var allAggs = []schema.Aggregation{
	schema.AggCount, schema.AggSum, schema.AggMean, schema.AggMin, schema.AggMax, schema.AggLast,
	schema.AggRate, schema.AggStddev, schema.AggP50, schema.AggP90, schema.AggP99, schema.AggEWMA,
}

func cpuView(windows []time.Duration, hop, lateness time.Duration) schema.FeatureView {
	return schema.FeatureView{
		Name: "cpu", Entity: schema.EntityComponent, Metrics: []string{"system.cpu.utilization"},
		Aggregations: allAggs, Windows: windows, Hop: hop, AllowedLateness: lateness,
	}
}

// brute computes one aggregation over the samples directly.
func brute(samples []schema.Sample, agg schema.Aggregation) float64 {
	if len(samples) == 0 {
		if agg == schema.AggCount {
			return 0
		}
		return math.NaN()
	}
	s := append([]schema.Sample(nil), samples...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].TS < s[j].TS })
	var sum float64
	mn, mx := math.Inf(1), math.Inf(-1)
	for _, x := range s {
		sum += x.Value
		mn, mx = min(mn, x.Value), max(mx, x.Value)
	}
	n := float64(len(s))
	mean := sum / n
	switch agg {
	case schema.AggCount:
		return n
	case schema.AggSum:
		return sum
	case schema.AggMean:
		return mean
	case schema.AggMin:
		return mn
	case schema.AggMax:
		return mx
	case schema.AggLast:
		return s[len(s)-1].Value
	case schema.AggRate:
		first, last := s[0], s[len(s)-1]
		if last.TS == first.TS {
			return math.NaN()
		}
		return (last.Value - first.Value) / (float64(last.TS-first.TS) / 1e9)
	case schema.AggStddev:
		var ss float64
		for _, x := range s {
			ss += (x.Value - mean) * (x.Value - mean)
		}
		return math.Sqrt(ss / n)
	}
	return math.NaN()
}

func near(a, b, tol float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= tol*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func TestWindowsMatchBruteForce(t *testing.T) {
	const sec = int64(time.Second)
	tests := []struct {
		name    string
		windows []time.Duration
		hop     time.Duration
	}{
		{"tumbling", []time.Duration{10 * time.Second}, 10 * time.Second},
		{"hopping", []time.Duration{10 * time.Second, 30 * time.Second}, 10 * time.Second},
		{"hopping, hop 5s", []time.Duration{20 * time.Second}, 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := cpuView(tc.windows, tc.hop, 0)
			s, _ := openStore(t, t.TempDir(), Config{}, []schema.FeatureView{v})
			var got collector
			s.Subscribe(got.handle)
			start(t, s)
			rng := rand.New(rand.NewPCG(1, 2))
			base := (testBase / (60 * sec)) * 60 * sec
			var all []schema.Sample
			ents := []schema.Entity{{Device: "r1", Component: "0/RP0/CPU0"}, {Device: "r2", Component: "cpu0"}}
			// 12 batches of 2s each: two samples per entity per second.
			for b := range 12 {
				var batch []schema.Sample
				for i := range 8 {
					e := ents[i%2]
					ts := base + int64(b)*2*sec + int64(i/2)*sec/2 + rng.Int64N(sec/4)
					batch = append(batch, schema.Sample{TS: ts, IngestTS: ts + 1000, Entity: e,
						Metric: "system.cpu.utilization", Value: 0.05 + rng.Float64()})
				}
				if err := s.Append(context.Background(), batch); err != nil {
					t.Fatal(err)
				}
				all = append(all, batch...)
			}
			maxTS := base + 24*sec
			hop := int64(tc.hop)
			// Windows end at every hop boundary ≤ maxTS with data in them.
			var wantN int
			for end := (base/hop + 1) * hop; end <= maxTS; end += hop {
				wantN += len(ents)
			}
			got.waitRows(t, wantN)
			waitWindowsIdle(t, s) // every batch processed: no row may follow
			rows := got.snapshot()
			if len(rows) != wantN {
				t.Fatalf("got %d rows, want %d", len(rows), wantN)
			}
			ewma := map[schema.Entity][]float64{}
			for _, r := range rows {
				if r.WindowEnd%hop != 0 || r.WindowEnd-r.WindowStart != int64(v.MaxWindow()) {
					t.Fatalf("row window [%d, %d) not aligned to hop %v and max window %v", r.WindowStart, r.WindowEnd, tc.hop, v.MaxWindow())
				}
				if r.ClosedAt == 0 || r.LastIngestTS == 0 {
					t.Fatalf("row without ClosedAt/LastIngestTS: %+v", r)
				}
				if len(ewma[r.Entity]) == 0 {
					ewma[r.Entity] = make([]float64, len(v.Windows))
					for i := range ewma[r.Entity] {
						ewma[r.Entity][i] = math.NaN()
					}
				}
				for wi, w := range v.Windows {
					var in []schema.Sample
					for _, x := range all {
						if x.Entity == r.Entity && x.TS >= r.WindowEnd-int64(w) && x.TS < r.WindowEnd {
							in = append(in, x)
						}
					}
					if m := brute(in, schema.AggMean); !math.IsNaN(m) {
						if e := &ewma[r.Entity][wi]; math.IsNaN(*e) {
							*e = m
						} else {
							*e = 0.3*m + 0.7**e
						}
					}
					for _, agg := range v.Aggregations {
						name := schema.FeatureName(v.Metrics[0], agg, w)
						gotV, ok := r.Feature(name)
						if !ok {
							t.Fatalf("row has no feature %s", name)
						}
						want := brute(in, agg)
						tol := 1e-9
						if q, ok := agg.Quantile(); ok {
							vals := make([]float64, len(in))
							for i, x := range in {
								vals[i] = x.Value
							}
							sort.Float64s(vals)
							want = vals[int(q*float64(len(vals)-1))]
							tol = 0.03 // sketch accuracy plus rank rounding
						}
						if agg == schema.AggEWMA {
							want = ewma[r.Entity][wi]
						}
						if !near(gotV, want, tol) {
							t.Fatalf("%s %s end=%d: %s = %v, want %v (n=%d)", tc.name, r.Entity, r.WindowEnd, name, gotV, want, len(in))
						}
					}
				}
			}
			// The online view holds the newest row of each entity.
			for _, e := range ents {
				l, ok := s.Latest("cpu", e)
				if !ok || l.WindowEnd != (maxTS/hop)*hop {
					t.Fatalf("Latest(%s) = %+v, %v; want window end %d", e, l, ok, (maxTS/hop)*hop)
				}
			}
			if _, ok := s.Latest("cpu", schema.Entity{Device: "nope"}); ok {
				t.Fatal("Latest of an unknown entity found a row")
			}
		})
	}
}

func TestLateSamples(t *testing.T) {
	const sec = int64(time.Second)
	v := cpuView([]time.Duration{10 * time.Second}, 10*time.Second, 5*time.Second)
	v.Metrics = append(v.Metrics, "system.memory.used")
	v.Aggregations = []schema.Aggregation{schema.AggCount}
	s, _ := openStore(t, t.TempDir(), Config{}, []schema.FeatureView{v})
	var got collector
	s.Subscribe(got.handle)
	start(t, s)
	base := (testBase / (10 * sec)) * 10 * sec
	e := schema.Entity{Device: "r1", Component: "cpu0"}
	at := func(off int64) schema.Sample {
		return schema.Sample{TS: base + off, IngestTS: 1, Entity: e, Metric: "system.cpu.utilization", Value: 1}
	}
	// The memory series reports into [0,10)'s last pane and then stays
	// silent: it holds that window until the watermark passes its end.
	mem := schema.Sample{TS: base + 9*sec, IngestTS: 1, Entity: e, Metric: "system.memory.used", Value: 1}
	steps := [][]schema.Sample{
		{at(1 * sec), at(2 * sec), mem},
		{at(12 * sec)}, // watermark 7s; memory holds [0,10) open
		{at(3 * sec)},  // late, within 5s lateness: applied
		{at(16 * sec)}, // watermark 11s: closes [0,10) with 3 samples
		{at(4 * sec)},  // beyond lateness: dropped
		{at(26 * sec)}, // completes [10,20): memory did not report into its last pane
	}
	for _, b := range steps {
		if err := s.Append(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	rows := got.waitRows(t, 2)
	if c, _ := rows[0].Feature("system_cpu_utilization__count_10s"); c != 3 {
		t.Fatalf("first window count %v, want 3 (two on time, one late within the bound)", c)
	}
	if c, _ := rows[1].Feature("system_cpu_utilization__count_10s"); c != 2 {
		t.Fatalf("second window count %v, want 2", c)
	}
	if rows[0].CloseReason != schema.CloseWatermark || rows[1].CloseReason != schema.CloseComplete {
		t.Fatalf("close reasons %q, %q; want %q, %q", rows[0].CloseReason, rows[1].CloseReason, schema.CloseWatermark, schema.CloseComplete)
	}
	applied := testutil.ToFloat64(s.m.late.WithLabelValues("cpu", "applied"))
	dropped := testutil.ToFloat64(s.m.late.WithLabelValues("cpu", "dropped"))
	if applied != 1 || dropped != 1 {
		t.Fatalf("late samples applied=%v dropped=%v, want 1 and 1", applied, dropped)
	}
}

func TestIdleEntityClosesOnDeadline(t *testing.T) {
	v := cpuView([]time.Duration{time.Minute}, time.Minute, 0)
	v.Aggregations = []schema.Aggregation{schema.AggCount, schema.AggLast}
	v.IdleTimeout = 50 * time.Millisecond
	s, reg := openStore(t, t.TempDir(), Config{}, []schema.FeatureView{v})
	var got collector
	s.Subscribe(got.handle)
	start(t, s)
	e := schema.Entity{Device: "quiet", Component: "cpu0"}
	if err := s.Append(context.Background(), []schema.Sample{
		{TS: testBase + 1, IngestTS: 7, Entity: e, Metric: "system.cpu.utilization", Value: 0.5},
		{TS: testBase + 2, IngestTS: 9, Entity: e, Metric: "system.cpu.utilization", Value: 0.7},
	}); err != nil {
		t.Fatal(err)
	}
	rows := got.waitRows(t, 1)
	if c, _ := rows[0].Feature("system_cpu_utilization__count_1m"); c != 2 {
		t.Fatalf("idle-closed window count %v, want 2", c)
	}
	if l, _ := rows[0].Feature("system_cpu_utilization__last_1m"); l != 0.7 {
		t.Fatalf("idle-closed window last %v, want 0.7", l)
	}
	if rows[0].LastIngestTS != 9 {
		t.Fatalf("LastIngestTS %d, want 9", rows[0].LastIngestTS)
	}
	if n := testutil.ToFloat64(s.m.windowsClosed.WithLabelValues("cpu", "idle")); n != 1 {
		t.Fatalf("windows_closed{reason=idle} = %v, want 1", n)
	}
	_ = reg
}

func TestRestartRebuildsOpenWindowsWithoutRedelivery(t *testing.T) {
	const sec = int64(time.Second)
	v := cpuView([]time.Duration{10 * time.Second}, 10*time.Second, 0)
	v.Aggregations = []schema.Aggregation{schema.AggCount, schema.AggSum}
	dir := t.TempDir()
	base := (testBase / (10 * sec)) * 10 * sec
	e := schema.Entity{Device: "r1", Component: "cpu0"}
	at := func(off int64, val float64) schema.Sample {
		return schema.Sample{TS: base + off, IngestTS: 1, Entity: e, Metric: "system.cpu.utilization", Value: val}
	}
	s, _ := openStore(t, dir, Config{SealRows: 2}, []schema.FeatureView{v})
	var before collector
	s.Subscribe(before.handle)
	start(t, s)
	for _, b := range [][]schema.Sample{{at(1*sec, 1), at(2*sec, 2)}, {at(11*sec, 10)}, {at(12*sec, 20)}} {
		if err := s.Append(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	before.waitRows(t, 1) // [0,10) closed; [10,20) open with 2 samples
	waitWindowsIdle(t, s)
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	s2, _ := openStore(t, dir, Config{SealRows: 2}, []schema.FeatureView{v})
	var after collector
	s2.Subscribe(after.handle)
	start(t, s2)
	if l, ok := s2.Latest("cpu", e); !ok || l.WindowEnd != base+10*sec {
		t.Fatalf("online view after restart: %+v, %v", l, ok)
	}
	if err := s2.Append(context.Background(), []schema.Sample{at(15*sec, 30), at(21*sec, 0)}); err != nil {
		t.Fatal(err)
	}
	after.waitRows(t, 1)
	waitWindowsIdle(t, s2) // the append processed: no row may follow
	rows := after.snapshot()
	if len(rows) != 1 || rows[0].WindowEnd != base+20*sec {
		t.Fatalf("after restart got %d rows (first ends %d), want only the window ending %d", len(rows), rows[0].WindowEnd, base+20*sec)
	}
	if c, _ := rows[0].Feature("system_cpu_utilization__count_10s"); c != 3 {
		t.Fatalf("rebuilt window count %v, want 3 (two before the restart, one after)", c)
	}
	if sum, _ := rows[0].Feature("system_cpu_utilization__sum_10s"); sum != 60 {
		t.Fatalf("rebuilt window sum %v, want 60", sum)
	}
	recs, err := s2.SnapshotView("cpu")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		n += int(r.NumRows())
		r.Release()
	}
	if n != 1 {
		t.Fatalf("SnapshotView rows %d, want 1", n)
	}
	hist := readAll(t, mustHistory(t, s2, "cpu", 0, math.MaxInt64))
	n = 0
	for _, r := range hist {
		n += int(r.NumRows())
		r.Release()
	}
	if n < 1 {
		t.Fatalf("history of view cpu: %d rows, want at least the one closed before the restart", n)
	}
}
