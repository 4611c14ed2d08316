package service

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

// benchInterfaceMetrics are what `netfeat bench --inject` makes of each
// interface: its 8 OpenConfig counters and their 8 rates.
var benchInterfaceMetrics = []string{
	"interface.in.octets", "interface.out.octets", "interface.in.unicast_pkts", "interface.out.unicast_pkts",
	"interface.in.errors", "interface.out.errors", "interface.in.discards", "interface.out.discards",
	"interface.in.bps", "interface.out.bps", "interface.in.unicast_pps", "interface.out.unicast_pps",
	"interface.in.errors_ps", "interface.out.errors_ps", "interface.in.discards_ps", "interface.out.discards_ps",
}

// BenchmarkDeviceMetrics scrapes GET /metrics/devices of a running
// service over loopback, as Prometheus does, for devices × 50 interfaces
// × the 16 series `netfeat bench --inject` gives each interface, plus the
// bench's view (interface.in.bps count/mean/max) with every entity's
// window closed: 1,000 devices are 800,000 series and 150,000 features.
// The body is read to the end (and discarded); B/op is the handler's and
// the client's allocations, which stay far below the page's size.
//
//	go test -tags duckdb_arrow -run '^$' -bench DeviceMetrics -benchtime 5x ./service/
func BenchmarkDeviceMetrics(b *testing.B) {
	const interfaces = 50
	for _, devices := range []int{100, 1000} {
		svc := newDeviceMetricsBenchService(b, devices, interfaces)
		url := "http://" + svc.HTTP().Addr() + DeviceMetricsPath
		for _, mode := range []struct{ name, accept, encoding string }{
			{"openmetrics", acceptOpenMetrics, "identity"},
			{"openmetrics_gzip", acceptOpenMetrics, "gzip"},
			{"text004", acceptText004, "identity"},
		} {
			b.Run(fmt.Sprintf("series=%d/%s", devices*interfaces*len(benchInterfaceMetrics), mode.name), func(b *testing.B) {
				b.ReportAllocs()
				var n int64
				cpu0 := testkit.ProcessCPU()
				for b.Loop() {
					req, _ := http.NewRequest(http.MethodGet, url, nil)
					req.Header.Set("Accept", mode.accept)
					req.Header.Set("Accept-Encoding", mode.encoding)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					n, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != 200 {
						b.Fatalf("%d %v", resp.StatusCode, err)
					}
				}
				b.ReportMetric(float64(testkit.ProcessCPU()-cpu0)/float64(b.N)/1e6, "cpu-ms/page")
				b.ReportMetric(float64(n)/1e6, "MB/page")
			})
		}
		// The handler alone, writing to a sink: what the page costs without
		// the HTTP connection and the reading client.
		b.Run(fmt.Sprintf("series=%d/handler", devices*interfaces*len(benchInterfaceMetrics)), func(b *testing.B) {
			b.ReportAllocs()
			req := httptest.NewRequest(http.MethodGet, DeviceMetricsPath, nil)
			req.Header.Set("Accept", acceptOpenMetrics)
			var w discardResponse
			cpu0 := testkit.ProcessCPU()
			for b.Loop() {
				w = discardResponse{h: http.Header{}}
				svc.http.mux.ServeHTTP(&w, req)
				if w.code != 0 && w.code != 200 {
					b.Fatalf("status %d", w.code)
				}
			}
			b.ReportMetric(float64(testkit.ProcessCPU()-cpu0)/float64(b.N)/1e6, "cpu-ms/page")
			b.ReportMetric(float64(w.n)/1e6, "MB/page")
		})
	}
}

// discardResponse is an http.ResponseWriter that counts and drops the body.
type discardResponse struct {
	h    http.Header
	code int
	n    int64
}

func (d *discardResponse) Header() http.Header  { return d.h }
func (d *discardResponse) WriteHeader(code int) { d.code = code }
func (d *discardResponse) Write(p []byte) (int, error) {
	d.n += int64(len(p))
	return len(p), nil
}

// newDeviceMetricsBenchService starts a service and fills its store: three
// rounds of every series, so that every entity's first two windows close
// (the third stays open: idle_timeout is long).
func newDeviceMetricsBenchService(b *testing.B, devices, interfaces int) *Service {
	b.Helper()
	cfg, err := ParseConfig("bench.yaml", fmt.Appendf(nil, `
data_dir: %s
http: {listen: "127.0.0.1:0"}
nats: {listen: "127.0.0.1:0", jetstream: false}
query: {threads: 1}
store: {fsync: interval, max_series: 2000000}
views:
  - name: bench
    entity: component
    metrics: [interface.in.bps]
    aggregations: [count, mean, max]
    windows: [1s]
    hop: 1s
    allowed_lateness: 0s
    idle_timeout: 1h
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
	batch := make([]schema.Sample, 0, interfaces*len(benchInterfaceMetrics))
	for step := range 3 {
		ts := base + int64(step)*int64(time.Second)
		for d := range devices {
			batch = batch[:0]
			dev := fmt.Sprintf("bench-%04d", d)
			for i := range interfaces {
				comp := fmt.Sprintf("HundredGigE0/0/0/%d", i)
				for m, metric := range benchInterfaceMetrics {
					batch = append(batch, schema.Sample{TS: ts, IngestTS: ts, Metric: metric,
						Value: float64(1_000_000*(i+m+1) + 125_000*step), Entity: schema.Entity{Device: dev, Component: comp}})
				}
			}
			if err := svc.Store().Append(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
		}
	}
	lastEnd := base + 2*int64(time.Second)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rows, _ := svc.Store().LatestRows("bench")
		done := 0
		for _, r := range rows {
			if r.WindowEnd == lastEnd {
				done++
			}
		}
		if done == devices*interfaces {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d windows closed", done, devices*interfaces)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return svc
}
