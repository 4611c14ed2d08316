//go:build duckdb_arrow

package query

import (
	"bytes"
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/schema"
)

func TestFindPointQuery(t *testing.T) {
	tests := []struct {
		sql  string
		want pointQuery
		ok   bool
	}{
		{`SELECT * FROM latest_v WHERE device = 'r1'`, pointQuery{"latest_v", entityFilter{device: "r1"}}, true},
		{`select * from LATEST_V where component = 'a''b' and DEVICE = 'r1';`, pointQuery{"latest_v", entityFilter{"r1", "a'b"}}, true},
		{`SELECT * FROM v WHERE device='r1' AND component='Gi0/0' -- latest`, pointQuery{"v", entityFilter{"r1", "Gi0/0"}}, true},
		{`SELECT * FROM latest_v WHERE component = 'Gi0/0'`, pointQuery{}, false},
		{`SELECT * FROM latest_v WHERE device = 'r1' AND component = ''`, pointQuery{}, false},
		{`SELECT * FROM latest_v WHERE device = 'r1' AND device = 'r1'`, pointQuery{}, false},
		{`SELECT * FROM latest_v WHERE device = 'r1' AND x = 'y'`, pointQuery{}, false},
		{`SELECT * FROM latest_v WHERE device = 'r1' AND`, pointQuery{}, false},
		{`SELECT * FROM latest_v WHERE device = 'r1' OR component = 'x'`, pointQuery{}, false},
		{`SELECT * FROM latest_v WHERE device = 'r1' ORDER BY 1`, pointQuery{}, false},
		{`SELECT * FROM latest_v WHERE device = 'r1' LIMIT 1`, pointQuery{}, false},
		{`SELECT device FROM latest_v WHERE device = 'r1'`, pointQuery{}, false},
		{`SELECT *, 1 FROM latest_v WHERE device = 'r1'`, pointQuery{}, false},
		{`SELECT * FROM "latest_v" WHERE device = 'r1'`, pointQuery{}, false},
		{`SELECT * FROM latest_v t WHERE device = 'r1'`, pointQuery{}, false},
		{`SELECT * FROM latest_v WHERE device = E'r1'`, pointQuery{}, false},
		{`SELECT * FROM latest_v WHERE device = 'r1'::VARCHAR`, pointQuery{}, false},
		{`SELECT * FROM latest_v WHERE "device" = 'r1'`, pointQuery{}, false},
		{`SELECT * FROM latest_v WHERE device = 'r1'; SELECT 1`, pointQuery{}, false},
		{`SELECT * FROM latest_v`, pointQuery{}, false},
	}
	for _, tc := range tests {
		got, ok := findPointQuery(scanSQL(tc.sql))
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("%s: got %+v %v, want %+v %v", tc.sql, got, ok, tc.want, tc.ok)
		}
	}
}

// TestPointQuerySameAnswers runs point queries with the fast path and
// through DuckDB (a source without lookups) and requires the same result:
// schema (types, units, time zone, nullability), rows and the bytes of the
// JSON and CSV responses. The extra table has nanosecond timestamps that
// DuckDB cuts to microseconds, NULLs, and dictionary strings.
func TestPointQuerySameAnswers(t *testing.T) {
	src := Sources(testSource(t, 2000, 512), oddTable(t))
	with := newTestEngine(t, src, nil)
	without := newTestEngine(t, hideLookup{src}, nil)
	queries := []struct {
		sql  string
		fast bool // answered without DuckDB
	}{
		{`SELECT * FROM latest_if_traffic WHERE device = 'r2'`, true},
		{`SELECT * FROM latest_if_traffic WHERE device = 'r2' AND component = 'Gi0/1'`, true},
		{`select * from LATEST_IF_TRAFFIC where component = 'Gi0/1' and device = 'r1';`, true},
		{`SELECT * FROM if_traffic WHERE device = 'r3' AND component = 'Gi0/0'`, true},
		{`SELECT * FROM latest_if_traffic WHERE device = 'nope'`, true},
		{`SELECT * FROM odd WHERE device = 'r1'`, true},
		{`SELECT * FROM odd WHERE device = 'r1' AND component = 'Gi0/0'`, true},
		{`SELECT * FROM odd WHERE device = 'r9'`, true},
		{`SELECT * FROM decisions WHERE device = 'r1'`, true},
		{`SELECT * FROM samples WHERE device = 'r1' AND component = 'Gi0/0'`, false}, // dictionary columns: no lookup
		{`SELECT * FROM devices WHERE device = 'r1'`, false},                         // a source without lookups
		{`SELECT * FROM if_traffic WHERE device = 'r3' ORDER BY window_end DESC, component`, false},
	}
	for _, q := range queries {
		before := testutil.ToFloat64(with.points)
		a, errA := resultOf(with, q.sql)
		b, errB := resultOf(without, q.sql)
		if errA != nil || errB != nil {
			t.Fatalf("%s: %v / %v", q.sql, errA, errB)
		}
		if fast := testutil.ToFloat64(with.points) > before; fast != q.fast {
			t.Errorf("%s: fast path %v, want %v", q.sql, fast, q.fast)
		}
		if !a.schema.Equal(b.schema) {
			t.Errorf("%s: schema\n fast   %v\n duckdb %v", q.sql, a.schema, b.schema)
		}
		if !reflect.DeepEqual(a.rows, b.rows) {
			t.Errorf("%s:\n fast   %v\n duckdb %v", q.sql, a.rows, b.rows)
		}
		for _, f := range []string{FormatJSON, FormatCSV} {
			if ja, jb := resultBody(t, with, q.sql, f), resultBody(t, without, q.sql, f); ja != jb {
				t.Errorf("%s as %s:\n fast   %s\n duckdb %s", q.sql, f, ja, jb)
			}
		}
	}

	// The row limit applies as it does in DuckDB.
	for _, e := range []*Engine{with, without} {
		rows, truncated, err := queryRows(context.Background(), e, Request{SQL: `SELECT * FROM if_traffic WHERE device = 'r1'`, MaxRows: 3})
		if err != nil || len(rows) != 3 || !truncated {
			t.Errorf("limit 3: %d rows, truncated %v, %v", len(rows), truncated, err)
		}
	}
}

type pointResult struct {
	schema *arrow.Schema
	rows   [][]any
}

func resultOf(e *Engine, sql string) (pointResult, error) {
	var out pointResult
	err := e.Query(context.Background(), Request{SQL: sql}, func(r *Result) error {
		out.schema = r.Schema()
		for r.Next() {
			rec := r.RecordBatch()
			for i := range int(rec.NumRows()) {
				row := make([]any, rec.NumCols())
				for c := range row {
					row[c] = valueAt(rec.Column(c), i)
				}
				out.rows = append(out.rows, row)
			}
		}
		return nil
	})
	return out, err
}

// resultBody is what a front end sends for sql in format: the result as
// WriteResult writes it, or the query's error.
func resultBody(t *testing.T, e *Engine, sql, format string) string {
	t.Helper()
	var b bytes.Buffer
	err := e.Query(context.Background(), Request{SQL: sql}, func(r *Result) error {
		return WriteResult(&b, format, r)
	})
	if err != nil {
		return "error: " + err.Error()
	}
	return b.String()
}

// oddTable is a table of the view schema with nanosecond timestamps,
// NULLs and a dictionary column, looked up by MemSource.
func oddTable(t *testing.T) Source {
	t.Helper()
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "ts", Type: schema.TimestampType},
		{Name: "device", Type: arrow.BinaryTypes.String},
		{Name: "component", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "kind", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}},
		{Name: "value", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "up", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	base := time.Date(2026, 11, 27, 3, 0, 0, 123_456_789, time.UTC).UnixNano()
	for i := range 12 {
		b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(base + int64(i)*1_000_001_999))
		b.Field(1).(*array.StringBuilder).Append([]string{"r1", "r2", "r3"}[i%3])
		if i%5 == 4 {
			b.Field(2).AppendNull()
		} else {
			b.Field(2).(*array.StringBuilder).Append([]string{"Gi0/0", "Gi0/1"}[i%2])
		}
		if err := b.Field(3).(*array.BinaryDictionaryBuilder).AppendString([]string{"a", "b", "c", "d"}[i%4]); err != nil {
			t.Fatal(err)
		}
		if i%4 == 1 {
			b.Field(4).AppendNull()
			b.Field(5).AppendNull()
			b.Field(6).AppendNull()
		} else {
			b.Field(4).(*array.Float64Builder).Append(float64(i) / 3)
			b.Field(5).(*array.Int64Builder).Append(int64(i) << 40)
			b.Field(6).(*array.BooleanBuilder).Append(i%2 == 0)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	mem := &MemSource{}
	t.Cleanup(mem.Close)
	if err := mem.Set(TableInfo{Name: "odd", Schema: sc, TimeColumn: "ts"}, rec); err != nil {
		t.Fatal(err)
	}
	return mem
}
