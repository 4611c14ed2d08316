package featurestore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/netfeat/netfeat/schema"
)

// engineRun drives a window engine directly, batch by batch, and checks
// that no entity closes a window twice.
type engineRun struct {
	t      testing.TB
	w      *windowEngine
	series *seriesTable
	rows   []*schema.FeatureRow
	seen   map[closeKey]bool
}

type closeKey struct {
	ent schema.Entity
	end int64
}

func newEngineRun(t testing.TB, v schema.FeatureView, watermarkOnly bool) *engineRun {
	e := &engineRun{t: t, series: newSeriesTable(0), seen: map[closeKey]bool{}}
	e.w = newWindowEngine([]schema.FeatureView{v}, e.series.def)
	e.w.views[0].watermarkOnly = watermarkOnly
	e.w.emit = func(_ *viewEngine, row *schema.FeatureRow, _ closeReason, sup bool) {
		k := closeKey{row.Entity, row.WindowEnd}
		if e.seen[k] {
			t.Fatalf("%s closed window ending %d twice", row.Entity, row.WindowEnd)
		}
		e.seen[k] = true
		if !sup {
			e.rows = append(e.rows, row)
		}
	}
	return e
}

// batch applies one committed batch and returns the rows it closed.
func (e *engineRun) batch(samples ...schema.Sample) []*schema.FeatureRow {
	recs := make([]rec, len(samples))
	for i, x := range samples {
		recs[i] = rec{ts: x.TS, ingest: x.IngestTS, value: x.Value,
			sid: e.series.intern(x.Device, x.Component, x.Metric, "")}
	}
	n := len(e.rows)
	e.w.process(recs, time.Unix(0, testBase))
	return e.rows[n:]
}

const sec = int64(time.Second)

// at is a sample of device's metric at base + s seconds, ingested at
// ingest.
func at(device, metric string, s float64, ingest int64) schema.Sample {
	return schema.Sample{TS: closeBase + int64(s*float64(sec)), IngestTS: ingest,
		Entity: schema.Entity{Device: device}, Metric: metric, Value: s}
}

// closeBase is a whole minute, so that windows end at base + multiples of
// the hop.
var closeBase = testBase / (60 * sec) * 60 * sec

func deviceView(hop, lateness time.Duration, windows ...time.Duration) schema.FeatureView {
	return schema.FeatureView{
		Name: "dev", Entity: schema.EntityDevice, Metrics: []string{"system.cpu.utilization", "system.memory.used"},
		Aggregations: []schema.Aggregation{schema.AggCount, schema.AggLast}, Windows: windows, Hop: hop,
		AllowedLateness: lateness,
	}
}

// closed renders rows as "device@end-in-seconds:reason".
func closed(rows []*schema.FeatureRow) []string {
	out := []string{}
	for _, r := range rows {
		out = append(out, fmt.Sprintf("%s@%d:%s", r.Device, (r.WindowEnd-closeBase)/sec, r.CloseReason))
	}
	return out
}

func TestWindowClosesWhenComplete(t *testing.T) {
	const cpu, mem = "system.cpu.utilization", "system.memory.used"
	type step struct {
		batch []schema.Sample
		want  []string // rows the batch closes
	}
	tests := []struct {
		name     string
		lateness time.Duration
		window   time.Duration
		steps    []step
	}{
		{"SNMP polled every 10s with hop 5s: the t=11 poll closes windows 5 and 10", 30 * time.Second, 10 * time.Second, []step{
			{[]schema.Sample{at("r1", cpu, 1, 100)}, nil},
			{[]schema.Sample{at("r1", cpu, 11, 200)}, []string{"r1@5:complete", "r1@10:complete"}},
			{[]schema.Sample{at("r1", cpu, 21, 300)}, []string{"r1@15:complete", "r1@20:complete"}},
		}},
		{"a slow device does not hold back a fast one", 30 * time.Second, 10 * time.Second, []step{
			{[]schema.Sample{at("slow", cpu, 1, 1), at("fast", cpu, 1, 1)}, nil},
			{[]schema.Sample{at("fast", cpu, 3, 1)}, nil},
			{[]schema.Sample{at("fast", cpu, 5, 1)}, []string{"fast@5:complete"}},
			{[]schema.Sample{at("fast", cpu, 7, 1), at("fast", cpu, 9, 1)}, nil},
			{[]schema.Sample{at("fast", cpu, 11, 1)}, []string{"fast@10:complete"}},
			{[]schema.Sample{at("slow", cpu, 11, 1)}, []string{"slow@5:complete", "slow@10:complete"}},
		}},
		{"an ON_CHANGE series holds the window it reported into, not later ones", 10 * time.Second, 10 * time.Second, []step{
			{[]schema.Sample{at("r1", cpu, 1, 1), at("r1", mem, 3, 1)}, nil},
			{[]schema.Sample{at("r1", cpu, 11, 1)}, nil}, // mem holds 5
			{[]schema.Sample{at("r2", cpu, 14, 1)}, nil}, // watermark 4
			// Watermark 5 closes r1's window 5, held by mem; mem does not
			// hold 10 (it did not report into [5,10)), so cpu's t=11
			// completes it at once.
			{[]schema.Sample{at("r2", cpu, 15, 7)}, []string{"r2@15:complete", "r1@5:watermark", "r1@10:complete"}},
		}},
		{"a silent series is bounded by allowed_lateness", 10 * time.Second, 5 * time.Second, []step{
			{[]schema.Sample{at("r1", cpu, 1, 1), at("r1", mem, 4, 1)}, nil},
			{[]schema.Sample{at("r1", cpu, 6, 1)}, nil},
			{[]schema.Sample{at("r1", cpu, 9, 1)}, nil},
			{[]schema.Sample{at("r1", cpu, 14, 1)}, nil},
			{[]schema.Sample{at("r1", cpu, 15, 1)}, []string{"r1@5:watermark", "r1@10:complete", "r1@15:complete"}},
		}},
		{"a window closed by completion is not closed again by the watermark", 5 * time.Second, 5 * time.Second, []step{
			{[]schema.Sample{at("r1", cpu, 1, 1), at("r2", cpu, 1, 1)}, nil},
			{[]schema.Sample{at("r1", cpu, 6, 1)}, []string{"r1@5:complete"}},
			// Completions of the batch's entities first, then the watermark.
			{[]schema.Sample{at("r1", cpu, 10.5, 1)}, []string{"r1@10:complete", "r2@5:watermark"}},
			{[]schema.Sample{at("r2", cpu, 11, 1)}, nil},
			// r1's window 15 completes; the watermark (25) closes r2's, and
			// passes r1's 5 and 10 without closing them again.
			{[]schema.Sample{at("r1", cpu, 30, 1)}, []string{"r1@15:complete", "r2@15:watermark"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngineRun(t, deviceView(5*time.Second, tc.lateness, tc.window), false)
			for i, st := range tc.steps {
				rows := e.batch(st.batch...)
				if got := closed(rows); !slices.Equal(got, append([]string{}, st.want...)) {
					t.Fatalf("step %d closed %v, want %v", i, got, st.want)
				}
			}
		})
	}
}

func TestTriggerIngestTS(t *testing.T) {
	const cpu, mem = "system.cpu.utilization", "system.memory.used"
	e := newEngineRun(t, deviceView(5*time.Second, 10*time.Second, 5*time.Second), false)
	e.batch(at("r1", cpu, 1, 100), at("r1", mem, 2, 100))
	e.batch(at("r1", cpu, 6, 200))
	rows := e.batch(at("r1", mem, 7, 300), at("r1", cpu, 8, 400))
	if len(rows) != 1 || rows[0].TriggerIngestTS != 300 || rows[0].LastIngestTS != 100 {
		t.Fatalf("rows %+v: want window 5 triggered by the mem sample ingested at 300, last ingest 100", rows)
	}
	rows = e.batch(at("r2", cpu, 30, 900))
	if got := closed(rows); !slices.Equal(got, []string{"r1@10:watermark"}) || rows[0].TriggerIngestTS != 900 {
		t.Fatalf("watermark close %v trigger %d, want r1@10 triggered at 900", got, rows[0].TriggerIngestTS)
	}
}

// TestCompleteMatchesWatermarkInOrder feeds the same in-order data
// (series of different cadences, sliding windows, random batches) to the
// engine with and without completion closes: every window gets the same
// values; only when it closes differs.
func TestCompleteMatchesWatermarkInOrder(t *testing.T) {
	v := deviceView(5*time.Second, 15*time.Second, 5*time.Second, 20*time.Second)
	v.Aggregations = []schema.Aggregation{schema.AggCount, schema.AggSum, schema.AggMean, schema.AggLast, schema.AggRate, schema.AggEWMA}
	rng := rand.New(rand.NewPCG(3, 4))
	type src struct {
		dev, metric string
		every, next float64
	}
	srcs := []*src{
		{"r1", "system.cpu.utilization", 1, 0.2}, {"r1", "system.memory.used", 10, 0.5},
		{"r2", "system.cpu.utilization", 3, 1.1}, {"r2", "system.memory.used", 7, 2},
		{"r3", "system.cpu.utilization", 0.5, 0}, {"r3", "system.memory.used", 30, 4},
	}
	var samples []schema.Sample
	for t := 0.0; t < 300; t += 0.1 {
		for _, s := range srcs {
			if s.next <= t {
				samples = append(samples, at(s.dev, s.metric, t, int64(len(samples)+1)))
				samples[len(samples)-1].Value = rng.Float64()
				s.next += s.every
			}
		}
	}
	samples = append(samples, at("flush", "system.cpu.utilization", 10_000, 1)) // closes everything
	run := func(watermarkOnly bool) map[closeKey][]float64 {
		e := newEngineRun(t, v, watermarkOnly)
		for i := 0; i < len(samples); {
			n := min(len(samples)-i, 1+rng.IntN(8))
			e.batch(samples[i : i+n]...)
			i += n
		}
		out := map[closeKey][]float64{}
		for _, r := range e.rows {
			out[closeKey{r.Entity, r.WindowEnd}] = r.Values
		}
		return out
	}
	complete, watermark := run(false), run(true)
	if len(complete) != len(watermark) || len(complete) < 150 {
		t.Fatalf("%d windows with completion, %d by watermark only", len(complete), len(watermark))
	}
	for k, want := range watermark {
		got, ok := complete[k]
		if !ok {
			t.Fatalf("%v closed by the watermark only", k)
		}
		for i := range want {
			if !near(got[i], want[i], 1e-9) {
				t.Fatalf("%s window %d: %s = %v, by watermark %v", k.ent, (k.end-closeBase)/sec, v.FeatureNames()[i], got[i], want[i])
			}
		}
	}
}

// TestRestartReplaysSameRows appends in-order data of mixed cadences, stops
// the store half way and reopens it: every window is delivered, windows at
// or before the persisted mark are not delivered again, and a window
// delivered twice (closed by completion beyond the mark) has the same
// values both times, which are those of an uninterrupted run.
func TestRestartReplaysSameRows(t *testing.T) {
	v := deviceView(5*time.Second, 10*time.Second, 5*time.Second, 10*time.Second)
	// Not ewma: it runs over every window since the entity was first
	// seen, and Start replays only enough to fill the longest window.
	v.Aggregations = []schema.Aggregation{schema.AggCount, schema.AggSum, schema.AggLast, schema.AggRate}
	var batches [][]schema.Sample
	for i := range 120 {
		s := float64(i) * 0.5
		b := []schema.Sample{at("r1", "system.cpu.utilization", s, 1), at("r2", "system.cpu.utilization", s+0.1, 1)}
		if i%7 == 0 {
			b = append(b, at("r1", "system.memory.used", s+0.2, 1))
		}
		batches = append(batches, b)
	}
	collect := func(dir string, from, to int, rows map[closeKey][][]float64) *Store {
		s, _ := openStore(t, dir, Config{SealRows: 16}, []schema.FeatureView{v})
		s.Subscribe(func(r *schema.FeatureRow) {
			k := closeKey{r.Entity, r.WindowEnd}
			rows[k] = append(rows[k], r.Values)
		})
		start(t, s)
		for _, b := range batches[from:to] {
			if err := s.Append(context.Background(), b); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	whole := map[closeKey][][]float64{}
	s := collect(t.TempDir(), 0, len(batches), whole)
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	split := map[closeKey][][]float64{}
	s = collect(dir, 0, 60, split)
	waitWindowsIdle(t, s) // the row writer persists rows and the mark
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := len(split)
	s = collect(dir, 60, len(batches), split)
	defer s.Stop(context.Background())
	again := 0
	for k, vals := range split {
		if len(vals) > 1 {
			again++
			if k.end <= s.win.views[0].mark {
				t.Errorf("%s window %d at or before the mark delivered %d times", k.ent, (k.end-closeBase)/sec, len(vals))
			}
		}
		for _, got := range vals {
			want, ok := whole[k]
			if !ok {
				t.Fatalf("%s window %d not closed in the uninterrupted run", k.ent, (k.end-closeBase)/sec)
			}
			for i := range got {
				if !near(got[i], want[0][i], 1e-9) {
					t.Fatalf("%s window %d: %s = %v after restart, %v uninterrupted", k.ent, (k.end-closeBase)/sec, v.FeatureNames()[i], got[i], want[0][i])
				}
			}
		}
	}
	if len(split) != len(whole) {
		t.Fatalf("%d windows delivered across the restart, %d uninterrupted", len(split), len(whole))
	}
	t.Logf("%d windows before the restart, %d in all, %d delivered again", before, len(split), again)
}
