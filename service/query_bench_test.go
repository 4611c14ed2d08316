package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/netfeat/netfeat/schema"
)

// BenchmarkServePointQuery is the online lookup as users make it: POST
// /v1/query to a running service for one entity's latest features, among
// devices × 48 interfaces whose windows have closed in the real store.
// "point" is SELECT * … WHERE device = … AND component = …, which the
// engine answers without DuckDB (query/point.go); the other
// variants go through DuckDB: "duckdb_lookup" adds LIMIT 10, which keeps
// the entity lookup, and "duckdb_scan" wraps the predicates in
// parentheses, which turns it off, so DuckDB reads all of latest_<view>.
//
//	go test -tags duckdb_arrow -run '^$' -bench ServePointQuery -benchtime 3000x ./service/
func BenchmarkServePointQuery(b *testing.B) {
	for _, devices := range []int{100, 1000} {
		svc := newBenchService(b, devices, 48)
		for _, mode := range []struct{ name, where string }{
			{"point", `device = 'router%04d' AND component = 'Gi0/0/0/7'`},
			{"duckdb_lookup", `device = 'router%04d' AND component = 'Gi0/0/0/7' LIMIT 10`},
			{"duckdb_scan", `(device = 'router%04d') AND (component = 'Gi0/0/0/7')`},
		} {
			b.Run(fmt.Sprintf("entities=%d/%s", devices*48, mode.name), func(b *testing.B) {
				benchPoint(b, svc, mode.where, devices)
			})
		}
	}
}

func newBenchService(b *testing.B, devices, components int) *Service {
	b.Helper()
	cfg, err := ParseConfig("bench.yaml", fmt.Appendf(nil, `
data_dir: %s
http: {listen: "127.0.0.1:0"}
nats: {listen: "127.0.0.1:0", jetstream: false}
query: {threads: 1}
store: {fsync: interval}
views:
  - name: traffic
    entity: component
    metrics: [interface.in.bps]
    aggregations: [mean, max]
    windows: [1s]
    hop: 1s
    allowed_lateness: 0s
`, b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	svc, err := New(cfg, NewRegistry(), nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = svc.Stop() })
	base := time.Now().Truncate(time.Second).Add(-time.Minute).UnixNano()
	batch := make([]schema.Sample, 0, devices*components)
	for step := range 3 { // windows 0 and 1 close when step 2 arrives
		batch = batch[:0]
		ts := base + int64(step)*int64(time.Second)
		for d := range devices {
			for c := range components {
				batch = append(batch, schema.Sample{
					TS: ts, IngestTS: ts, Metric: "interface.in.bps", Value: float64(d*components + c + step),
					Entity: schema.Entity{Device: fmt.Sprintf("router%04d", d), Component: fmt.Sprintf("Gi0/0/0/%d", c)},
				})
			}
		}
		if err := svc.Store().Append(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	// Wait until every entity's last window (step 2, closed by the idle
	// deadline) is in the online view, so that no window closes while the
	// benchmark runs.
	lastEnd := base + 3*int64(time.Second)
	deadline := time.Now().Add(time.Minute)
	for {
		recs, err := svc.Store().SnapshotLatest("traffic")
		if err != nil {
			b.Fatal(err)
		}
		ends := recs[0].Column(1).(*array.Timestamp)
		done := 0
		for i := range ends.Len() {
			if int64(ends.Value(i)) == lastEnd {
				done++
			}
		}
		recs[0].Release()
		if done == devices*components {
			return svc
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d entities have closed their last window", done, devices*components)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func benchPoint(b *testing.B, svc *Service, where string, devices int) {
	url := "http://" + svc.HTTP().Addr() + "/v1/query"
	client := &http.Client{}
	do := func(i int) []byte {
		body, _ := json.Marshal(map[string]string{
			"sql": "SELECT * FROM latest_traffic WHERE " + fmt.Sprintf(where, i%devices),
		})
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		out, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("%d %s %v", resp.StatusCode, out, err)
		}
		return out
	}
	if got := do(42); !bytes.Contains(got, []byte(`"router0042","Gi0/0/0/7"`)) || bytes.Count(got, []byte(`"router`)) != 1 {
		b.Fatalf("wrong answer %s", got)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		start := time.Now()
		do(i)
		lat = append(lat, time.Since(start))
		i++
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
