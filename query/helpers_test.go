package query

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/netfeat/netfeat/schema"
)

// t0 is the time of the first test sample.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// testView is the feature view the tests query.
var testView = schema.FeatureView{
	Name: "if_traffic", Entity: schema.EntityComponent,
	Metrics:      []string{"interface.in.bps"},
	Aggregations: []schema.Aggregation{schema.AggMean, schema.AggMax},
	Windows:      []time.Duration{time.Minute}, Hop: time.Minute,
}

// sampleRow is the truth the tests compare SQL results with.
type sampleRow struct {
	ts                        int64
	device, component, metric string
	value                     float64
}

var (
	testDevices    = []string{"r1", "r2", "r3", "r4"}
	testComponents = []string{"Gi0/0", "Gi0/1", "Gi0/2"}
	testMetrics    = []string{"interface.in.bps", "interface.out.bps", "system.cpu.utilization"}
)

// sampleAt is the i-th synthetic sample: one per millisecond, cycling
// through devices, components and metrics.
func sampleAt(i int) sampleRow {
	return sampleRow{
		ts:        t0.UnixNano() + int64(i)*int64(time.Millisecond),
		device:    testDevices[i%len(testDevices)],
		component: testComponents[(i/len(testDevices))%len(testComponents)],
		metric:    testMetrics[i%len(testMetrics)],
		value:     float64(i % 1000),
	}
}

// buildSamples builds n samples (from sampleAt) in batches of batch rows,
// shaped like the hot tier's sealed batches.
func buildSamples(tb testing.TB, n, batch int) []arrow.RecordBatch {
	tb.Helper()
	var out []arrow.RecordBatch
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema.SamplesSchema)
	defer b.Release()
	ts := b.Field(0).(*array.TimestampBuilder)
	dev := b.Field(1).(*array.BinaryDictionaryBuilder)
	comp := b.Field(2).(*array.BinaryDictionaryBuilder)
	met := b.Field(3).(*array.BinaryDictionaryBuilder)
	val := b.Field(4).(*array.Float64Builder)
	for i := 0; i < n; i++ {
		s := sampleAt(i)
		ts.Append(arrow.Timestamp(s.ts))
		for _, p := range []struct {
			b *array.BinaryDictionaryBuilder
			v string
		}{{dev, s.device}, {comp, s.component}, {met, s.metric}} {
			if err := p.b.AppendString(p.v); err != nil {
				tb.Fatalf("append: %v", err)
			}
		}
		val.Append(s.value)
		if (i+1)%batch == 0 || i == n-1 {
			out = append(out, b.NewRecordBatch())
		}
	}
	return out
}

// buildView builds feature rows of testView: one per device, component and
// minute for minutes windows, features mean = minute index, max = 10×.
func buildView(tb testing.TB, minutes int) arrow.RecordBatch {
	tb.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema.FeatureViewSchema(testView))
	defer b.Release()
	for m := 0; m < minutes; m++ {
		for _, d := range testDevices {
			for _, c := range testComponents {
				start := t0.Add(time.Duration(m) * time.Minute)
				b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(start.UnixNano()))
				b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(start.Add(time.Minute).UnixNano()))
				b.Field(2).(*array.StringBuilder).Append(d)
				b.Field(3).(*array.StringBuilder).Append(c)
				b.Field(4).(*array.Float64Builder).Append(float64(m))
				if m == 0 {
					b.Field(5).(*array.Float64Builder).AppendNull()
				} else {
					b.Field(5).(*array.Float64Builder).Append(float64(10 * m))
				}
			}
		}
	}
	return b.NewRecordBatch()
}

func buildDecisions(tb testing.TB, n int) arrow.RecordBatch {
	tb.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema.DecisionsSchema)
	defer b.Release()
	for i := 0; i < n; i++ {
		ts := t0.Add(time.Duration(i) * time.Second).UnixNano()
		b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(ts))
		strs := []string{fmt.Sprintf("id-%d", i), testDevices[i%4], "Gi0/0", "if_traffic", "congestion", "v1"}
		for c, v := range strs {
			b.Field(1 + c).(*array.StringBuilder).Append(v)
		}
		b.Field(7).(*array.BooleanBuilder).Append(i%2 == 1)
		b.Field(8).(*array.Float64Builder).Append(float64(i) / float64(n))
		b.Field(9).(*array.StringBuilder).Append("alert")
		b.Field(10).(*array.StringBuilder).Append("utilisation high")
		b.Field(11).(*array.StringBuilder).Append("")
		b.Field(12).(*array.TimestampBuilder).Append(arrow.Timestamp(ts - int64(time.Minute)))
		b.Field(13).(*array.TimestampBuilder).Append(arrow.Timestamp(ts))
		b.Field(14).(*array.Int64Builder).Append(int64(100 + i))
		b.Field(15).(*array.StringBuilder).Append(`{"interface_in_bps__mean_1m": 1}`)
		b.Field(16).(*array.StringBuilder).Append("firing")
		b.Field(17).(*array.BooleanBuilder).Append(i == 0)
		b.Field(18).(*array.StringBuilder).Append("0123456789abcdef")
		b.Field(19).(*array.StringBuilder).Append("window")
		b.Field(20).(*array.StringBuilder).Append("")
		b.Field(21).(*array.Int64Builder).Append(int64(50 + i))
	}
	return b.NewRecordBatch()
}

func buildSeries(tb testing.TB) arrow.RecordBatch {
	tb.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema.SeriesSchema)
	defer b.Release()
	for _, d := range testDevices {
		b.Field(0).(*array.StringBuilder).Append(d)
		b.Field(1).(*array.StringBuilder).Append("Gi0/0")
		b.Field(2).(*array.StringBuilder).Append("interface.in.bps")
		b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(t0.UnixNano()))
		b.Field(4).(*array.TimestampBuilder).Append(arrow.Timestamp(t0.Add(time.Hour).UnixNano()))
		b.Field(5).(*array.Float64Builder).Append(42)
		b.Field(6).(*array.Int64Builder).Append(3600)
	}
	return b.NewRecordBatch()
}

type staticStates []schema.DeviceState

func (s staticStates) DeviceStates() []schema.DeviceState { return s }

// testSource is a source with every table the service serves: n samples in
// batches of batch rows, 10 minutes of testView, 20 decisions, series,
// devices and metrics.
func testSource(tb testing.TB, n, batch int) Source {
	tb.Helper()
	mem := &MemSource{}
	tb.Cleanup(mem.Close)
	set := func(info TableInfo, recs ...arrow.RecordBatch) {
		if err := mem.Set(info, recs...); err != nil {
			tb.Fatalf("set %s: %v", info.Name, err)
		}
		for _, r := range recs {
			r.Release()
		}
	}
	set(TableInfo{Name: "samples", Schema: schema.SamplesSchema, TimeColumn: "ts"}, buildSamples(tb, n, batch)...)
	vs := schema.FeatureViewSchema(testView)
	set(TableInfo{Name: testView.Name, Schema: vs, TimeColumn: "window_end"}, buildView(tb, 10))
	set(TableInfo{Name: "latest_" + testView.Name, Schema: vs}, buildView(tb, 1))
	set(TableInfo{Name: "decisions", Schema: schema.DecisionsSchema, TimeColumn: "ts"}, buildDecisions(tb, 20))
	set(TableInfo{Name: "series", Schema: schema.SeriesSchema}, buildSeries(tb))
	states := staticStates{
		{Device: "r1", Address: "127.0.0.1:57400", Protocol: "gnmi", State: "up", LastSuccess: t0.UnixNano(), Observations: 10},
		{Device: "r2", Address: "127.0.0.1:1161", Protocol: "snmp", State: "auth_failure", LastError: "authentication failure", LastErrorTS: t0.UnixNano(), Errors: 3},
	}
	return Sources(mem, Catalog(schema.Catalog), DeviceStates(states))
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
	tb.Cleanup(func() { _ = e.Close() })
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
