package featurestore

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/netfeat/netfeat/schema"
)

// TestTap: the tap sees every sample the store accepted, with labels as the
// store keeps them, and none it refused, had already, or replays at Start.
func TestTap(t *testing.T) {
	dir := t.TempDir()
	var (
		mu  sync.Mutex
		got []schema.Sample
	)
	tapTo := func(s *Store) {
		s.SetTap(func(recs []Record) {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range recs {
				e, m, src, err := s.SeriesLabels(r.Series)
				if err != nil {
					t.Errorf("series %d: %v", r.Series, err)
				}
				got = append(got, schema.Sample{TS: r.TS, IngestTS: r.IngestTS, Entity: e, Metric: m, Value: r.Value, Source: src})
			}
		})
	}
	s, _ := openStore(t, dir, Config{}, nil)
	tapTo(s)
	start(t, s)
	batch := genBatch(10, 0)
	batch[3].Metric = ""               // refused: no metric
	batch[4].Component = "eth\xff"     // stored with the invalid byte replaced
	batch[5].Source = "another/source" // a new series keeps its first source
	ctx := context.Background()
	if err := s.Append(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, batch[6:8]); err != nil { // already stored: dropped as duplicates
		t.Fatal(err)
	}
	want := slices.Delete(slices.Clone(batch), 3, 4)
	want[3].Component = "eth\ufffd"
	if _, _, _, err := s.SeriesLabels(int32(s.series.len())); err == nil {
		t.Error("labels of a series that does not exist: no error")
	}
	mu.Lock()
	if !slices.Equal(got, want) {
		t.Errorf("tap got\n%v\nwant\n%v", got, want)
	}
	got = nil
	mu.Unlock()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// Recovery replays the WAL: nothing of it reaches the tap.
	s, _ = openStore(t, dir, Config{}, nil)
	tapTo(s)
	start(t, s)
	if err := s.Append(ctx, genBatch(2, 100)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, genBatch(2, 100)) {
		t.Errorf("after restart the tap got %v, want only the 2 new samples", got)
	}
}
