package featurestore

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

const operStatus = "interface.oper_status"

func TestStateTracker(t *testing.T) {
	type in struct {
		metric string
		ts     int64
		v      float64
	}
	tests := []struct {
		name string
		recs []in
		want []string // "ts:prev->value"
	}{
		{"first value", []in{{operStatus, 10, 1}}, []string{"10:NaN->1"}},
		{"change", []in{{operStatus, 10, 1}, {operStatus, 20, 2}}, []string{"10:NaN->1", "20:1->2"}},
		{"no change", []in{{operStatus, 10, 1}, {operStatus, 20, 1}, {operStatus, 30, 1}}, []string{"10:NaN->1"}},
		{"out of order: older sample changes nothing", []in{{operStatus, 20, 1}, {operStatus, 10, 2}, {operStatus, 30, 1}}, []string{"20:NaN->1"}},
		{"same time, new value", []in{{operStatus, 20, 1}, {operStatus, 20, 2}}, []string{"20:NaN->1", "20:1->2"}},
		{"not a state metric", []in{{"interface.in.bps", 10, 1}, {"interface.in.bps", 20, 2}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			series := newSeriesTable(0)
			st := newStateTracker(series.def)
			var got []string
			for _, x := range tc.recs {
				r := rec{ts: x.ts, value: x.v, sid: series.intern("r1", "Gi0", x.metric, "")}
				st.observe([]rec{r}, func(_ int32, r *rec, prev float64) {
					got = append(got, fmt.Sprintf("%d:%v->%v", r.ts, prev, r.value))
				})
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("events %v, want %v", got, tc.want)
			}
		})
	}
}

// eventLog is a subscriber of both rows and events that keeps their order.
type eventLog struct {
	mu  sync.Mutex
	log []string
	evs []*schema.StateEvent
}

func (l *eventLog) event(ev *schema.StateEvent) {
	l.mu.Lock()
	l.log = append(l.log, "event")
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

func (l *eventLog) row(*schema.FeatureRow) {
	l.mu.Lock()
	l.log = append(l.log, "row")
	l.mu.Unlock()
}

func (l *eventLog) snapshot() ([]string, []*schema.StateEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.log), slices.Clone(l.evs)
}

// wait waits until at least n events arrived and returns them.
func (l *eventLog) wait(t *testing.T, n int) []*schema.StateEvent {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, evs := l.snapshot(); len(evs) >= n {
			return evs
		}
	}
	_, evs := l.snapshot()
	t.Fatalf("%d events, want %d", len(evs), n)
	return nil
}

func state(ts int64, v float64, ingest int64) schema.Sample {
	return schema.Sample{TS: closeBase + ts, IngestTS: ingest, Entity: schema.Entity{Device: "r1", Component: "Gi0"},
		Metric: operStatus, Value: v}
}

func TestStateEventsWithoutViews(t *testing.T) {
	dir := t.TempDir()
	s, _ := openStore(t, dir, Config{}, nil)
	var l eventLog
	s.SubscribeEvents(l.event)
	start(t, s)
	for _, b := range [][]schema.Sample{{state(1, 1, 11)}, {state(2, 1, 12), state(3, 2, 13)}, {state(1, 1, 14)}} {
		if err := s.Append(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	evs := l.wait(t, 2)
	if len(evs) != 2 || !math.IsNaN(evs[0].Prev) || evs[0].Value != 1 || evs[1].Prev != 1 || evs[1].Value != 2 ||
		evs[1].IngestTS != 13 || evs[1].TS != closeBase+3 || evs[1].Device != "r1" || evs[1].Component != "Gi0" || evs[1].Metric != operStatus {
		t.Fatalf("events %+v, want first value 1 then 1 -> 2 at ts 3", evs)
	}
	if n := testutil.ToFloat64(s.m.stateEvents); n != 2 {
		t.Fatalf("state_events_total %v, want 2", n)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Replay rebuilds the state and emits nothing; the next change has
	// the state before the restart as Prev.
	s2, _ := openStore(t, dir, Config{}, nil)
	var l2 eventLog
	s2.SubscribeEvents(l2.event)
	start(t, s2)
	if err := s2.Append(context.Background(), []schema.Sample{state(4, 2, 15)}); err != nil {
		t.Fatal(err)
	}
	if _, evs := l2.snapshot(); len(evs) != 0 {
		t.Fatalf("after restart: events %+v, want none (replayed samples and an unchanged value)", evs)
	}
	if err := s2.Append(context.Background(), []schema.Sample{state(5, 1, 16)}); err != nil {
		t.Fatal(err)
	}
	if evs := l2.wait(t, 1); len(evs) != 1 || evs[0].Prev != 2 || evs[0].Value != 1 {
		t.Fatalf("after restart: events %+v, want 2 -> 1", evs)
	}
}

func TestStateEventsBeforeRows(t *testing.T) {
	v := schema.FeatureView{
		Name: "ifc", Entity: schema.EntityComponent, Metrics: []string{"interface.in.utilization"},
		Aggregations: []schema.Aggregation{schema.AggMean}, Windows: []time.Duration{5 * time.Second}, Hop: 5 * time.Second,
	}
	s, _ := openStore(t, t.TempDir(), Config{}, []schema.FeatureView{v})
	var l eventLog
	s.Subscribe(l.row)
	s.SubscribeEvents(l.event)
	start(t, s)
	util := func(ts int64) schema.Sample {
		return schema.Sample{TS: closeBase + ts, IngestTS: 1, Entity: schema.Entity{Device: "r1", Component: "Gi0"},
			Metric: "interface.in.utilization", Value: 0.5}
	}
	// The second batch completes window 5 and carries a state change after
	// the completing sample: the event still comes first.
	for _, b := range [][]schema.Sample{{util(1 * sec)}, {util(6 * sec), state(6*sec, 2, 1)}} {
		if err := s.Append(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	l.wait(t, 1)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if log, _ := l.snapshot(); len(log) >= 2 {
			break
		}
	}
	if log, _ := l.snapshot(); !slices.Equal(log, []string{"event", "row"}) {
		t.Fatalf("delivered %v, want the event before the row", log)
	}
}

// BenchmarkAppendStateEvents is BenchmarkAppend's first case (fsync
// interval, batches of 1,000 samples of 1,000 series, no views) with state
// events: state=none has no state metric (the tracker's cost is one
// lookup per sample), state=all makes every series interface.oper_status
// with a tenth of the series changing it at every sample, and a
// subscriber counting the events.
func BenchmarkAppendStateEvents(b *testing.B) {
	for _, metric := range []string{"interface.in.bps", "interface.oper_status"} {
		name := "state=none"
		if metric == "interface.oper_status" {
			name = "state=all"
		}
		b.Run(name, func(b *testing.B) {
			s, _ := openStore(b, b.TempDir(), Config{FSync: FSyncInterval, MemoryBudget: 256 << 20}, nil)
			var events atomic.Int64
			s.SubscribeEvents(func(*schema.StateEvent) { events.Add(1) })
			start(b, s)
			batch := benchBatch(1000, 10000, testBase)
			for i := range batch {
				batch[i].Metric = metric
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := testkit.ProcessCPU()
			n := 0
			for b.Loop() {
				for i := 0; i < len(batch); i += 10 {
					batch[i].Value = float64(n % 2) // every tenth series flips at each sample
				}
				if err := s.Append(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
				advanceTS(batch, int64(len(batch)))
				n++
			}
			cpu := testkit.ProcessCPU() - cpu0
			b.StopTimer()
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(n*len(batch)), "cpu-ns/sample")
			b.ReportMetric(float64(events.Load())/float64(n*len(batch)), "events/sample")
		})
	}
}
