package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/netfeat/netfeat/featurestore"
	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/normalize"
	"github.com/netfeat/netfeat/schema"
)

// BenchmarkObserveToHotTier measures the first target of docs/performance.md
// ("Targets": raw observation → hot tier) end to end
// below the collectors: raw gNMI-style counter observations through the
// normalizer (profile lookup, counter → rate) into a real store (series
// interning, WAL group commit in Badger with the default fsync=interval,
// hot-tier append), one Observe call per device batch from one goroutine.
// One op is one batch of ifaces × 8 counters; every counter also yields
// its rate, so a batch appends 2 × ifaces × 8 samples. cpu-ns/sample is the
// CPU of the whole process (Badger's goroutines included) per sample;
// 1e9 / cpu-ns/sample is what one core sustains.
//
//	go test -tags duckdb_arrow ./bench -run '^$' -bench ObserveToHotTier -benchtime 3s
func BenchmarkObserveToHotTier(b *testing.B) {
	for _, ifaces := range []int{10, 50} {
		b.Run(fmt.Sprintf("devices=100/ifaces=%d", ifaces), func(b *testing.B) {
			ctx := context.Background()
			st, err := featurestore.New(featurestore.Config{MemoryBudget: 4 << 30}, nil, b.TempDir(), nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := st.Start(ctx); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				if err := st.Stop(ctx); err != nil {
					b.Error(err)
				}
			})
			var appended int64
			counting := schema.SampleAppenderFunc(func(ctx context.Context, batch []schema.Sample) error {
				appended += int64(len(batch))
				return st.Append(ctx, batch)
			})
			n, err := normalize.New(normalize.Config{}, counting, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			devs := make([]int, 100)
			for i := range devs {
				devs[i] = i
			}
			in := newInjector(n, newWindowBook(time.Second, 0, ifaces), devs, ifaces)
			ts := time.Now().UnixNano()
			step := func(i int) []schema.Observation {
				batch := in.batches[i%len(in.batches)]
				ts += 1000
				prepare(batch, ts)
				return batch
			}
			for i := range 2 * len(in.batches) { // resolve the mappings and take the first counter values
				if err := n.Observe(ctx, step(i)); err != nil {
					b.Fatal(err)
				}
			}
			appended = 0
			b.ReportAllocs()
			cpu0 := testkit.ProcessCPU()
			i := 0
			for b.Loop() {
				if err := n.Observe(ctx, step(i)); err != nil {
					b.Fatal(err)
				}
				i++
			}
			cpu := testkit.ProcessCPU() - cpu0
			b.ReportMetric(float64(appended)/b.Elapsed().Seconds(), "samples/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(appended), "cpu-ns/sample")
			b.ReportMetric(float64(appended)/float64(b.N), "samples/op")
		})
	}
}

// BenchmarkRecorder measures recording one latency and, separately, a
// summary over a million recorded values.
func BenchmarkRecorder(b *testing.B) {
	b.Run("record", func(b *testing.B) {
		var r Recorder
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			r.Record(time.Duration(i))
		}
	})
	b.Run("summary/values=1e6", func(b *testing.B) {
		var r Recorder
		for i := range 1_000_000 {
			r.Record(time.Duration((i * 7919) % 1_000_003))
		}
		for b.Loop() {
			r.mu.Lock()
			r.sorted = false
			r.mu.Unlock()
			sink = r.Summary()
		}
	})
}

// sink keeps the compiler from dropping benchmarked work.
var sink LatencySummary
