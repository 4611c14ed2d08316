package frontend

import (
	"bytes"
	"fmt"
	"io"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/netfeat/netfeat/query"
	"github.com/netfeat/netfeat/query/internal/fixture"
)

// BenchmarkHTTPPointQuery is the online lookup over HTTP: the latest feature
// row of one entity among devices × 48 interfaces, through POST /v1/query
// on a loopback listener. It reports p50 and p99 latency.
func BenchmarkHTTPPointQuery(b *testing.B) {
	for _, devices := range []int{100, 1000} {
		b.Run(fmt.Sprintf("entities=%d", devices*48), func(b *testing.B) { benchHTTPPoint(b, devices) })
	}
}

func benchHTTPPoint(b *testing.B, devices int) {
	mem := &query.MemSource{}
	defer mem.Close()
	latest := fixture.Latest(b, devices, 48)
	defer latest.Release()
	if err := mem.Set(query.TableInfo{Name: "latest_if_traffic", Schema: latest.Schema()}, latest); err != nil {
		b.Fatal(err)
	}
	e := newTestEngine(b, mem, func(o *query.Options) { o.Threads = 1 })
	srv := httptest.NewServer(NewHandler("", e, nil))
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
