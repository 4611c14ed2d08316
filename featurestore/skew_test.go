package featurestore

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/schema"
)

// waitEnd waits until the collector holds a row of ent whose window ends
// at end.
func (c *collector) waitEnd(t *testing.T, ent schema.Entity, end int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range c.snapshot() {
			if r.Entity == ent && r.WindowEnd == end {
				return
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	var ends []int64
	for _, r := range c.snapshot() {
		if r.Entity == ent {
			ends = append(ends, r.WindowEnd)
		}
	}
	t.Fatalf("no row of %v ending at %d; rows of it end at %v", ent, end, ends)
}

// TestFutureClockDoesNotStopOtherDevices is issue #20's wrong clock: one
// device sends a sample dated 2200-01-01. It must not move the view's
// watermark, so another device's windows keep closing, and a restart
// (replaying that sample from the WAL or from sealed chunks) must not
// bring the problem back.
func TestFutureClockDoesNotStopOtherDevices(t *testing.T) {
	future := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"replayed from the WAL", Config{}},
		{"replayed from sealed chunks", Config{SealRows: 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			v := cpuView([]time.Duration{10 * time.Second}, 10*time.Second, time.Second)
			v.Entity = schema.EntityDevice
			good, bad := schema.Entity{Device: "good"}, schema.Entity{Device: "bad"}
			base := time.Now().Add(-10*time.Minute).Truncate(10*time.Second).UnixNano() + sec/2
			sample := func(e schema.Entity, ts int64) schema.Sample {
				return schema.Sample{TS: ts, IngestTS: time.Now().UnixNano(), Entity: e,
					Metric: "system.cpu.utilization", Value: 0.5}
			}
			feed := func(s *Store, from, to int) {
				t.Helper()
				for i := from; i <= to; i++ {
					batch := []schema.Sample{sample(good, base+int64(i)*sec), sample(bad, base+int64(i)*sec)}
					if i == 15 {
						batch = append(batch, sample(bad, future))
					}
					if err := s.Append(context.Background(), batch); err != nil {
						t.Fatal(err)
					}
				}
			}
			winEnd := func(k int64) int64 { return base - sec/2 + k*10*sec }

			s, reg := openStore(t, dir, tc.cfg, []schema.FeatureView{v})
			var got collector
			s.Subscribe(got.handle)
			start(t, s)
			feed(s, 0, 30)
			got.waitEnd(t, good, winEnd(3)) // closed after the 2200 sample
			if n := testutil.ToFloat64(s.m.ahead.WithLabelValues(v.Name)); n != 1 {
				t.Fatalf("future samples counted %v, want 1", n)
			}
			full(t, &got, good, winEnd(1), winEnd(3))
			_ = reg
			if err := s.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}

			s2, _ := openStore(t, dir, tc.cfg, []schema.FeatureView{v})
			var got2 collector
			s2.Subscribe(got2.handle)
			start(t, s2)
			feed(s2, 31, 50)
			got2.waitEnd(t, good, winEnd(5))
			full(t, &got2, good, winEnd(4), winEnd(5))
		})
	}
}

// full checks that ent has a row with all ten samples (one a second) for
// every 10s window ending from first to last.
func full(t *testing.T, c *collector, ent schema.Entity, first, last int64) {
	t.Helper()
	count := map[int64]float64{}
	for _, r := range c.snapshot() {
		if r.Entity == ent {
			count[r.WindowEnd], _ = r.Feature(schema.FeatureName("system.cpu.utilization", schema.AggCount, 10*time.Second))
		}
	}
	for end := first; end <= last; end += 10 * sec {
		if count[end] != 10 {
			t.Fatalf("window of %v ending %d holds %v samples, want 10 (all: %v)", ent, end, count[end], count)
		}
	}
}
