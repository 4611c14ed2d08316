package featurestore

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/schema"
)

// TestAppendGuards checks the store's last line of defence against bad
// input (issue #20): invalid UTF-8 is replaced and counted, an overlong
// name and a series beyond store.max_series are refused and counted, and
// an exact repeat of a series' newest sample is dropped and counted.
func TestAppendGuards(t *testing.T) {
	smp := func(dev, comp string, ts int64, v float64) schema.Sample {
		return schema.Sample{TS: testBase + ts, IngestTS: testBase + ts, Entity: schema.Entity{Device: dev, Component: comp},
			Metric: "interface.in.bps", Value: v}
	}
	tests := []struct {
		name    string
		cfg     Config
		batches [][]schema.Sample
		want    []row // stored samples, by time
		metric  func(s *Store) float64
		count   float64
	}{
		{
			name:    "invalid UTF-8 replaced",
			batches: [][]schema.Sample{{smp("r1", "\xff\xfe\xfd", 1, 1), smp("r1", "\xff\xfe\xfd", 2, 2)}},
			want: []row{{testBase + 1, "r1", "\uFFFD", "interface.in.bps", 1},
				{testBase + 2, "r1", "\uFFFD", "interface.in.bps", 2}},
			metric: func(s *Store) float64 { return testutil.ToFloat64(s.m.replaced.WithLabelValues("r1")) },
			count:  2,
		},
		{
			name:    "name too long refused",
			batches: [][]schema.Sample{{smp("r1", strings.Repeat("x", 1<<20), 1, 1), smp("r1", "eth0", 2, 2)}},
			want:    []row{{testBase + 2, "r1", "eth0", "interface.in.bps", 2}},
			metric:  func(s *Store) float64 { return testutil.ToFloat64(s.m.rejected.WithLabelValues("r1", "name_too_long")) },
			count:   1,
		},
		{
			name: "series limit",
			cfg:  Config{MaxSeries: 2},
			batches: [][]schema.Sample{{smp("r1", "eth0", 1, 1), smp("r1", "eth1", 1, 1)},
				{smp("r1", "eth2", 2, 2), smp("r1", "eth0", 2, 2), smp("r1", "eth3", 2, 2)}},
			want: []row{{testBase + 1, "r1", "eth0", "interface.in.bps", 1}, {testBase + 1, "r1", "eth1", "interface.in.bps", 1},
				{testBase + 2, "r1", "eth0", "interface.in.bps", 2}},
			metric: func(s *Store) float64 { return testutil.ToFloat64(s.m.rejected.WithLabelValues("r1", "series_limit")) },
			count:  2,
		},
		{
			name: "exact duplicate of the newest sample dropped",
			batches: [][]schema.Sample{{smp("r1", "eth0", 1, 1), smp("r1", "eth0", 2, 2)},
				// re-subscribe: the newest again, an older one, another value at the newest time
				{smp("r1", "eth0", 2, 2)}, {smp("r1", "eth0", 1, 1), smp("r1", "eth0", 2, 3), smp("r1", "eth0", 2, 3)}},
			want: []row{{testBase + 1, "r1", "eth0", "interface.in.bps", 1}, {testBase + 1, "r1", "eth0", "interface.in.bps", 1},
				{testBase + 2, "r1", "eth0", "interface.in.bps", 2}, {testBase + 2, "r1", "eth0", "interface.in.bps", 3}},
			metric: func(s *Store) float64 { return testutil.ToFloat64(s.m.duplicates) },
			count:  2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openStore(t, t.TempDir(), tc.cfg, nil)
			start(t, s)
			for _, b := range tc.batches {
				if err := s.Append(context.Background(), b); err != nil {
					t.Fatal(err)
				}
			}
			equalRows(t, readSamples(t, s.SnapshotSamples()), tc.want)
			if got := tc.metric(s); got != tc.count {
				t.Fatalf("counted %v, want %v", got, tc.count)
			}
		})
	}
}

// TestDuplicateAfterRestart: the newest sample of each series is known
// again after a restart, so a re-subscribe right after it stores nothing.
func TestDuplicateAfterRestart(t *testing.T) {
	dir := t.TempDir()
	x := schema.Sample{TS: testBase + 7, IngestTS: testBase + 7, Entity: schema.Entity{Device: "r1", Component: "eth0"},
		Metric: "interface.in.bps", Value: 7}
	s, _ := openStore(t, dir, Config{}, nil)
	start(t, s)
	if err := s.Append(context.Background(), []schema.Sample{x}); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2, _ := openStore(t, dir, Config{}, nil)
	start(t, s2)
	if err := s2.Append(context.Background(), []schema.Sample{x}); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(s2.m.duplicates); got != 1 {
		t.Fatalf("duplicates %v, want 1", got)
	}
	if got := len(readSamples(t, s2.SnapshotSamples())); got != 1 {
		t.Fatalf("%d samples, want 1", got)
	}
}
