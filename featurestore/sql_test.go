//go:build duckdb_arrow

package featurestore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/netfeat/netfeat/featurestore"
	"github.com/netfeat/netfeat/query"
	"github.com/netfeat/netfeat/schema"
)

// storeSource is the smallest query.Source over a Store: the samples table
// only.
type storeSource struct{ s *featurestore.Store }

func (src storeSource) Tables() []query.TableInfo {
	return []query.TableInfo{{Name: "samples", Schema: schema.SamplesSchema, TimeColumn: "ts"}}
}

func (src storeSource) Records(_ context.Context, table string) ([]arrow.RecordBatch, error) {
	if table != "samples" {
		return nil, fmt.Errorf("no table %q", table)
	}
	return src.s.SnapshotSamples(), nil
}

func (src storeSource) History(ctx context.Context, table string, from, to int64) (array.RecordReader, error) {
	return src.s.History(ctx, table, from, to)
}

// TestDuckDBReadsTheHotTierLayout checks that DuckDB reads the hot tier's
// zero-copy layout (label columns as dictionaries sharing the series-id
// buffer, dictionaries with repeated values) correctly, for column subsets
// too, from memory and from history.
func TestDuckDBReadsTheHotTierLayout(t *testing.T) {
	s, err := featurestore.New(featurestore.Config{SealRows: 1000}, nil, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Stop(context.Background()) }()
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Truncate(time.Second).UnixNano()
	// 3 devices × 4 components × 2 metrics; value = 1 for r0, 2 for r1, 3 for r2.
	var batch []schema.Sample
	for i := range 2400 {
		d := i % 3
		batch = append(batch, schema.Sample{
			TS: base + int64(i), Entity: schema.Entity{Device: fmt.Sprintf("r%d", d), Component: fmt.Sprintf("c%d", i%4)},
			Metric: []string{"interface.in.bps", "interface.out.bps"}[i%2], Value: float64(d + 1),
		})
	}
	for i := 0; i < len(batch); i += 300 {
		if err := s.Append(context.Background(), batch[i:i+300]); err != nil {
			t.Fatal(err)
		}
	}
	e, err := query.New(storeSource{s}, query.DefaultOptions(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Stop(context.Background()) }()
	tests := []struct {
		name, sql string
		ranged    bool
		want      string
	}{
		{"group by a dictionary column", "SELECT device, count(*), sum(value) FROM samples GROUP BY device ORDER BY device", false,
			"r0 800 800|r1 800 1600|r2 800 2400|"},
		// i ≡ 1 (mod 4): 600 rows, 200 from each device.
		{"column subset", "SELECT count(*), sum(value) FROM samples WHERE metric = 'interface.out.bps' AND component = 'c1'", false,
			"600 1200|"},
		{"one column", "SELECT count(DISTINCT component) FROM samples", false, "4|"},
		{"history", "SELECT device, count(*) FROM samples GROUP BY device ORDER BY device", true,
			"r0 800|r1 800|r2 800|"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := query.Request{SQL: tc.sql}
			if tc.ranged {
				req.From, req.To = time.Unix(0, base), time.Unix(0, base+1e9)
			}
			var got string
			err := e.Query(context.Background(), req, func(r *query.Result) error {
				for r.Next() {
					rec := r.RecordBatch()
					for i := range int(rec.NumRows()) {
						for c := range int(rec.NumCols()) {
							if c > 0 {
								got += " "
							}
							got += rec.Column(c).ValueStr(i)
						}
						got += "|"
					}
				}
				return r.Err()
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("%s\ngot  %s\nwant %s", tc.sql, got, tc.want)
			}
		})
	}
}

// seriesSource adds the series table to storeSource.
type seriesSource struct{ storeSource }

func (src seriesSource) Tables() []query.TableInfo {
	return append(src.storeSource.Tables(), query.TableInfo{Name: "series", Schema: schema.SeriesSchema})
}

func (src seriesSource) Records(ctx context.Context, table string) ([]arrow.RecordBatch, error) {
	if table == "series" {
		return src.s.SnapshotSeries(), nil
	}
	return src.storeSource.Records(ctx, table)
}

// TestSQLJoinsOverInvalidUTF8 is issue #20's corrupted answers: after a
// device sent the ifName \xff\xfe\xfd, self-joins counted 0 rows and
// equi-joins failed in DuckDB. The store replaces invalid bytes, so every
// join counts what it should.
func TestSQLJoinsOverInvalidUTF8(t *testing.T) {
	s, err := featurestore.New(featurestore.Config{}, nil, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Stop(context.Background()) }()
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Truncate(time.Second).UnixNano()
	comps := []string{"eth0", "\xff\xfe\xfd", "eth1", "bad\xc3(name", "eth2"}
	var batch []schema.Sample
	for i := range 40 {
		batch = append(batch, schema.Sample{TS: base + int64(i)*1e6, Entity: schema.Entity{Device: "r1", Component: comps[i%len(comps)]},
			Metric: "interface.in.bps", Value: float64(i)})
	}
	if err := s.Append(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	e, err := query.New(seriesSource{storeSource{s}}, query.DefaultOptions(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Stop(context.Background()) }()
	tests := []struct{ sql, want string }{
		{"SELECT count(*) FROM series a, series b", "25"},
		{"SELECT count(*) FROM samples a, samples b", "1600"},
		{"SELECT count(*) FROM series a JOIN series b ON a.component = b.component", "5"},
		{"SELECT count(*) FROM samples a JOIN samples b ON a.component = b.component AND a.ts = b.ts", "40"},
		{"SELECT count(*) FROM series WHERE component = '\uFFFD'", "1"},
		{"SELECT count(*) FROM series WHERE component = 'bad\uFFFD(name'", "1"},
	}
	for _, tc := range tests {
		var got string
		err := e.Query(context.Background(), query.Request{SQL: tc.sql}, func(r *query.Result) error {
			for r.Next() {
				rec := r.RecordBatch()
				for i := range int(rec.NumRows()) {
					got += rec.Column(0).ValueStr(i)
				}
			}
			return r.Err()
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.sql, err)
		}
		if got != tc.want {
			t.Fatalf("%s = %s, want %s", tc.sql, got, tc.want)
		}
	}
}
