//go:build duckdb_arrow

package query

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/netfeat/netfeat/query/internal/fixture"
	"github.com/netfeat/netfeat/schema"
)

// samples10M is built once: 10M samples in 64Ki-row batches, like sealed
// hot-tier batches.
var samples10M []arrow.RecordBatch

// BenchmarkAggregate10M aggregates 10M hot samples through the Engine (no
// HTTP). B/op against the 10M × 28 bytes of the columns shows whether a
// query copies the data on the Go side.
func BenchmarkAggregate10M(b *testing.B) {
	const n = 10_000_000
	if samples10M == nil {
		samples10M = fixture.Samples(b, n, 1<<16)
	}
	mem := &MemSource{}
	defer mem.Close()
	if err := mem.Set(TableInfo{Name: "samples", Schema: schema.SamplesSchema, TimeColumn: "ts"}, samples10M...); err != nil {
		b.Fatal(err)
	}
	e := newTestEngine(b, mem, func(o *Options) { o.MemoryLimit = "2GB"; o.MaxConcurrent = 1 })
	for _, q := range []struct{ name, sql string }{
		{"sum", "SELECT sum(value) FROM samples"},
		{"filtered", "SELECT avg(value) FROM samples WHERE device = 'r2' AND metric = 'interface.in.bps'"},
		{"group_by", "SELECT device, metric, count(*), avg(value), max(value) FROM samples GROUP BY ALL"},
		{"per_minute", "SELECT device, time_bucket(INTERVAL 1 minute, ts) AS m, avg(value) FROM samples GROUP BY ALL"},
	} {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := queryRows(b.Context(), e, Request{SQL: q.sql}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
