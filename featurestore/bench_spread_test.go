package featurestore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netfeat/netfeat/schema"
)

// BenchmarkWindowCloseSpread measures, for each entity, the time from the
// start of the Append of the sample that completes its window (its first
// sample at or after the window's end) to the subscriber call with the
// row. 1,000 entities (one series each, hop and window 1s, allowed
// lateness 1s) report once per second of event time, spread over that
// second, each in its own Append, back to back: their completing samples
// arrive within the same second. A window that closes when its entity's
// sample completes it costs that one Append; one that waits for a view
// watermark waits for the lateness and then for every other entity's
// row of the same hop. One op is one round of 1,000 Appends:
//
//	go test -tags duckdb_arrow ./featurestore -run '^$' -bench WindowCloseSpread -benchtime 100x -count 5
func BenchmarkWindowCloseSpread(b *testing.B) {
	for _, ents := range []int{1000} {
		b.Run(fmt.Sprintf("entities=%d", ents), func(b *testing.B) { benchWindowCloseSpread(b, ents) })
	}
}

func benchWindowCloseSpread(b *testing.B, ents int) {
	const rounds = 8 // Append start times kept per entity, by window
	v := schema.FeatureView{
		Name: "spread", Entity: schema.EntityComponent, Metrics: []string{"interface.in.utilization"},
		Aggregations: []schema.Aggregation{schema.AggMean, schema.AggMax},
		Windows:      []time.Duration{time.Second}, Hop: time.Second, AllowedLateness: time.Second,
	}
	s, _ := openStore(b, b.TempDir(), Config{}, []schema.FeatureView{v})
	hop := int64(v.Hop)
	base := (testBase/hop + 1) * hop
	index := map[schema.Entity]int{}
	batches := make([][]schema.Sample, ents)
	for e := range ents {
		ent := schema.Entity{Device: "pe" + strconv.Itoa(e/50), Component: "Gi0/0/0/" + strconv.Itoa(e%50)}
		index[ent] = e
		batches[e] = []schema.Sample{{Entity: ent, Metric: v.Metrics[0]}}
	}
	starts := make([]atomic.Int64, ents*rounds)
	var mu sync.Mutex
	lat := make([]float64, 0, 1<<20)
	s.Subscribe(func(r *schema.FeatureRow) {
		now := time.Now().UnixNano()
		e := index[r.Entity]
		// The sample that completes the window ending at E is the entity's
		// sample of round E/hop.
		st := starts[e*rounds+int((r.WindowEnd-base)/hop)%rounds].Load()
		mu.Lock()
		lat = append(lat, float64(now-st)/1e3)
		mu.Unlock()
	})
	start(b, s)
	round := 0
	send := func() {
		for e := range ents {
			x := &batches[e][0]
			x.TS = base + int64(round)*hop + int64(e)*hop/int64(ents) + 1
			x.IngestTS, x.Value = time.Now().UnixNano(), float64(e%7)/10
			starts[e*rounds+round%rounds].Store(time.Now().UnixNano())
			if err := s.Append(context.Background(), batches[e]); err != nil {
				b.Fatal(err)
			}
		}
		round++
	}
	for range 3 {
		send()
	}
	mu.Lock()
	lat = lat[:0]
	mu.Unlock()
	b.ResetTimer()
	for b.Loop() {
		send()
	}
	b.StopTimer()
	waitWindowsIdle(b, s) // every row the appends closed has been delivered
	mu.Lock()
	defer mu.Unlock()
	if len(lat) == 0 {
		b.Fatal("no rows delivered")
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(q(0.999), "p999-µs")
	b.ReportMetric(lat[len(lat)-1], "max-µs")
	b.ReportMetric(float64(len(lat))/float64(b.N), "rows/op")
}
