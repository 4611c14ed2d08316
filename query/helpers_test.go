//go:build duckdb_arrow

package query

import (
	"context"
	"math"
	"testing"

	"github.com/netfeat/netfeat/query/internal/fixture"
	"github.com/netfeat/netfeat/schema"
)

// t0 is the time of the first test sample.
var t0 = fixture.T0

// testSource is a source with every table the service serves (see
// fixture.Tables): n samples in batches of batch rows, 10 minutes of
// fixture.View, 20 decisions, series, devices and metrics.
func testSource(tb testing.TB, n, batch int) Source {
	tb.Helper()
	mem := &MemSource{}
	tb.Cleanup(mem.Close)
	for _, t := range fixture.Tables(tb, n, batch) {
		err := mem.Set(TableInfo{Name: t.Name, Schema: t.Schema, TimeColumn: t.TimeColumn}, t.Records...)
		for _, r := range t.Records {
			r.Release()
		}
		if err != nil {
			tb.Fatalf("set %s: %v", t.Name, err)
		}
	}
	return Sources(mem, Catalog(schema.Catalog), DeviceStates(fixture.States))
}

// newTestEngine opens an engine over src, closed at the end of the test.
func newTestEngine(tb testing.TB, src Source, mod func(*Options)) *Engine {
	tb.Helper()
	opts := DefaultOptions()
	opts.MemoryLimit = "512MB"
	if mod != nil {
		mod(&opts)
	}
	e, err := New(src, opts, nil, nil)
	if err != nil {
		tb.Fatalf("new engine: %v", err)
	}
	if err := e.Start(context.Background()); err != nil {
		tb.Fatalf("start engine: %v", err)
	}
	tb.Cleanup(func() { _ = e.Stop(context.Background()) })
	return e
}

// queryRows runs q and returns its rows as Go values (via valueAt) and
// whether the result was truncated.
func queryRows(ctx context.Context, e *Engine, req Request) ([][]any, bool, error) {
	var rows [][]any
	var truncated bool
	err := e.Query(ctx, req, func(r *Result) error {
		for r.Next() {
			rec := r.RecordBatch()
			for i := 0; i < int(rec.NumRows()); i++ {
				row := make([]any, rec.NumCols())
				for c := range row {
					row[c] = valueAt(rec.Column(c), i)
				}
				rows = append(rows, row)
			}
		}
		truncated = r.Truncated()
		return nil
	})
	return rows, truncated, err
}

func approx(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// The helpers of the external tests (package query_test, which imports the
// front ends that import this package).
var (
	NewTestEngine = newTestEngine
	NewTestSource = testSource
)
