package query

import (
	"bytes"
	"fmt"
	"io"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/netfeat/netfeat/schema"
)

// buildLatest builds a latest_<view> table of devices×components entities.
func buildLatest(tb testing.TB, devices, components int) arrow.RecordBatch {
	tb.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema.FeatureViewSchema(testView))
	defer b.Release()
	end := t0.Add(time.Minute)
	for d := 0; d < devices; d++ {
		for c := 0; c < components; c++ {
			b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(t0.UnixNano()))
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(end.UnixNano()))
			b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("router%04d", d))
			b.Field(3).(*array.StringBuilder).Append(fmt.Sprintf("Gi0/0/0/%d", c))
			b.Field(4).(*array.Float64Builder).Append(float64(d*components + c))
			b.Field(5).(*array.Float64Builder).Append(float64(2 * (d*components + c)))
		}
	}
	return b.NewRecordBatch()
}

// BenchmarkHTTPPointQuery is the online lookup over HTTP: the latest feature
// row of one entity among devices × 48 interfaces, through POST /v1/query
// on a loopback listener. It reports p50 and p99 latency.
func BenchmarkHTTPPointQuery(b *testing.B) {
	for _, devices := range []int{100, 1000} {
		b.Run(fmt.Sprintf("entities=%d", devices*48), func(b *testing.B) { benchHTTPPoint(b, devices) })
	}
}

func benchHTTPPoint(b *testing.B, devices int) {
	mem := &MemSource{}
	defer mem.Close()
	latest := buildLatest(b, devices, 48)
	defer latest.Release()
	if err := mem.Set(TableInfo{Name: "latest_if_traffic", Schema: latest.Schema()}, latest); err != nil {
		b.Fatal(err)
	}
	e := newTestEngine(b, mem, func(o *Options) { o.Threads = 1 })
	srv := httptest.NewServer(NewHandler(e, "", nil))
	defer srv.Close()
	body := []byte(`{"sql":"SELECT * FROM latest_if_traffic WHERE device = 'router0042' AND component = 'Gi0/0/0/7'"}`)
	client := srv.Client()
	do := func() []byte {
		resp, err := client.Post(srv.URL, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		out, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("%d %s %v", resp.StatusCode, out, err)
		}
		return out
	}
	if got := do(); !bytes.Contains(got, []byte(`"router0042","Gi0/0/0/7",2023,4046]]`)) {
		b.Fatalf("wrong answer %s", got)
	}
	var lat []time.Duration
	b.ResetTimer()
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		do()
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// samples10M is built once: 10M samples in 64Ki-row batches, like sealed
// hot-tier batches.
var samples10M []arrow.RecordBatch

// BenchmarkAggregate10M aggregates 10M hot samples through the Engine (no
// HTTP). B/op against the 10M × 28 bytes of the columns shows whether a
// query copies the data on the Go side.
func BenchmarkAggregate10M(b *testing.B) {
	const n = 10_000_000
	if samples10M == nil {
		samples10M = buildSamples(b, n, 1<<16)
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
