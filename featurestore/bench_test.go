package featurestore

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

// benchBatch returns a batch of n samples over nSeries series (devices ×
// 50 interfaces), event times starting at ts.
func benchBatch(n, nSeries int, ts int64) []schema.Sample {
	b := make([]schema.Sample, n)
	for i := range b {
		s := i % nSeries
		b[i] = schema.Sample{
			TS: ts + int64(i), IngestTS: ts + int64(i),
			Entity: schema.Entity{Device: "router-" + strconv.Itoa(s/50), Component: "HundredGigE0/0/0/" + strconv.Itoa(s%50)},
			Metric: "interface.in.bps", Value: float64(i) * 1.5, Source: "bench/sim",
		}
	}
	return b
}

func advanceTS(b []schema.Sample, d int64) {
	for i := range b {
		b[i].TS += d
		b[i].IngestTS += d
	}
}

// BenchmarkAppend measures accepted samples per second through Append:
// series interning, WAL encoding, group commit to Badger, hot-tier append.
// One op is one batch.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		fsync     FSyncPolicy
		batch     int
		appenders int
	}{
		{FSyncInterval, 1000, 1},
		{FSyncInterval, 5000, 1},
		{FSyncBatch, 5000, 1},
		{FSyncBatch, 1000, 4},
		{FSyncAlways, 1000, 1},
	} {
		b.Run(fmt.Sprintf("fsync=%s/batch=%d/appenders=%d", bc.fsync, bc.batch, bc.appenders), func(b *testing.B) {
			s, _ := openStore(b, b.TempDir(), Config{FSync: bc.fsync, MemoryBudget: 256 << 20}, nil)
			start(b, s)
			batches := make([][]schema.Sample, bc.appenders)
			for i := range batches {
				batches[i] = benchBatch(bc.batch, 10000, testBase+int64(i)<<40)
			}
			b.ReportAllocs()
			b.ResetTimer()
			begin := time.Now()
			cpu0 := testkit.ProcessCPU()
			var wg sync.WaitGroup
			per := b.N / bc.appenders
			for a := range bc.appenders {
				wg.Go(func() {
					for range per {
						if err := s.Append(context.Background(), batches[a]); err != nil {
							b.Error(err)
							return
						}
						advanceTS(batches[a], int64(bc.batch))
					}
				})
			}
			wg.Wait()
			el := time.Since(begin)
			cpu := testkit.ProcessCPU() - cpu0
			b.StopTimer()
			n := float64(per * bc.appenders * bc.batch)
			b.ReportMetric(n/el.Seconds(), "samples/s")
			// CPU of the whole process (Badger included) per sample; one core
			// sustains 1e9 / cpu-ns/sample samples per second.
			b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/sample")
			b.ReportMetric(n/cpu.Seconds(), "samples/cpu-s")
		})
	}
}

// BenchmarkLatest measures an online-view lookup among 10,000 entities.
func BenchmarkLatest(b *testing.B) {
	v := cpuView([]time.Duration{time.Minute}, time.Minute, 0)
	s, _ := openStore(b, b.TempDir(), Config{}, []schema.FeatureView{v})
	ents := make([]schema.Entity, 10000)
	for i := range ents {
		ents[i] = schema.Entity{Device: "router-" + strconv.Itoa(i/50), Component: "cpu" + strconv.Itoa(i%50)}
		s.online[0].set(&schema.FeatureRow{View: "cpu", Entity: ents[i], Names: v.FeatureNames(),
			Values: make([]float64, len(v.FeatureNames())), WindowEnd: 1})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := s.Latest("cpu", ents[i%len(ents)]); !ok {
			b.Fatal("missing row")
		}
		i++
	}
}

// BenchmarkWindowClose measures, for every window a watermark advance
// closes, the time from the WAL commit of the batch that advanced it to the
// subscriber call. One op is one hop: a batch of one sample per entity and
// metric (2 metrics, 8 aggregations incl. a quantile, windows 1s and 3s)
// that closes the previous window of every entity. With many entities the
// last row of a hop waits for the rows before it.
func BenchmarkWindowClose(b *testing.B) {
	for _, ents := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("entities=%d", ents), func(b *testing.B) { benchWindowClose(b, ents) })
	}
}

func benchWindowClose(b *testing.B, ents int) {
	v := schema.FeatureView{
		Name: "ifc", Entity: schema.EntityComponent, Metrics: []string{"interface.in.bps", "interface.out.bps"},
		Aggregations: []schema.Aggregation{schema.AggCount, schema.AggMean, schema.AggMax, schema.AggLast,
			schema.AggRate, schema.AggStddev, schema.AggP95, schema.AggEWMA},
		Windows: []time.Duration{time.Second, 3 * time.Second}, Hop: time.Second,
	}
	s, _ := openStore(b, b.TempDir(), Config{FSync: FSyncInterval}, []schema.FeatureView{v})
	var mu sync.Mutex
	var lat []time.Duration
	s.closeHook = func(d time.Duration) { mu.Lock(); lat = append(lat, d); mu.Unlock() }
	var rows sync.WaitGroup
	s.Subscribe(func(*schema.FeatureRow) { rows.Done() })
	start(b, s)
	batch := make([]schema.Sample, 0, 2*ents)
	for e := range ents {
		for _, m := range v.Metrics {
			batch = append(batch, schema.Sample{Entity: schema.Entity{Device: "r" + strconv.Itoa(e/50), Component: "ifc" + strconv.Itoa(e%50)}, Metric: m})
		}
	}
	ts := (testBase/int64(time.Second) + 1) * int64(time.Second)
	send := func(closing int) {
		rows.Add(closing)
		for i := range batch {
			batch[i].TS, batch[i].IngestTS, batch[i].Value = ts+int64(i), time.Now().UnixNano(), float64(ts%1e9+int64(i))
		}
		if err := s.Append(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
		rows.Wait()
		ts += int64(time.Second)
	}
	send(0)
	b.ReportAllocs()
	for b.Loop() {
		send(ents)
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
	}
}

// BenchmarkTenMillion appends 10M samples (10,000 series) through Append
// and reports what they cost in memory, then closes the store and measures
// a restart: Open (recovery) + Start until Append works. Run it alone, in
// its own process (VmHWM is the process's peak), with -benchtime=1x:
//
//	go test -tags duckdb_arrow ./featurestore -run '^$' -bench TenMillion -benchtime 1x -count 5
//
// Memory is read from /proc/self/status and /proc/self/smaps (Linux):
//
//	fixed-MiB          RSS of the running, empty store minus the process before Open
//	rss-B/sample       VmRSS after the appends minus the running empty store, per sample
//	hwm-B/sample       VmHWM (peak) after the appends minus the running empty store, per sample
//	anon-B/sample      the anonymous part of that growth (hot tier, Go heap, Badger memtables)
//	file-B/sample      the part in mapped files (Badger's tables, memtable and value log files)
//	goheap-B/sample    growth of the Go heap's live objects
//	hot-B/sample       the hot tier's own accounting
func BenchmarkTenMillion(b *testing.B) {
	const total, batchN = 10_000_000, 10000
	for b.Loop() {
		dir := b.TempDir()
		cfg := Config{FSync: FSyncInterval, MemoryBudget: 1 << 30, RetentionAge: 24 * time.Hour}
		runtime.GC()
		m0 := readMem()
		s, _ := openStore(b, dir, cfg, nil)
		start(b, s)
		batch := benchBatch(batchN, 10000, testBase)
		runtime.GC()
		m1 := readMem()
		begin := time.Now()
		cpu0 := testkit.ProcessCPU()
		for range total / batchN {
			if err := s.Append(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			advanceTS(batch, batchN)
		}
		appendTime := time.Since(begin)
		appendCPU := testkit.ProcessCPU() - cpu0
		m2 := readMem()
		rows, hotBytes := s.hot.usage()
		if rows != total {
			b.Fatalf("hot tier holds %d rows, want %d", rows, total)
		}
		per := func(v int64) float64 { return float64(v) / total }
		b.ReportMetric(float64(total)/appendTime.Seconds(), "append-samples/s")
		b.ReportMetric(float64(total)/appendCPU.Seconds(), "append-samples/cpu-s")
		b.ReportMetric(float64(m1.rss-m0.rss)/(1<<20), "fixed-MiB")
		b.ReportMetric(per(m2.rss-m1.rss), "rss-B/sample")
		b.ReportMetric(per(m2.hwm-m1.rss), "hwm-B/sample")
		b.ReportMetric(per(m2.anon-m1.anon), "anon-B/sample")
		b.ReportMetric(per(m2.file()-m1.file()), "file-B/sample")
		b.ReportMetric(per(m2.goHeap-m1.goHeap), "goheap-B/sample")
		b.ReportMetric(per(hotBytes), "hot-B/sample")
		b.Logf("before Open: %v", m0)
		b.Logf("running, empty: %v", m1)
		b.Logf("after %d samples: %v", total, m2)
		if err := s.Stop(context.Background()); err != nil {
			b.Fatal(err)
		}

		begin = time.Now()
		s2, _ := openStore(b, dir, cfg, nil)
		start(b, s2)
		if err := s2.Append(context.Background(), batch[:1]); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(begin).Seconds(), "restart-s")
		if rows, _ := s2.hot.usage(); rows != total+1 {
			b.Fatalf("after restart the hot tier holds %d rows, want %d", rows, total+1)
		}
		if err := s2.Stop(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWindowEngineClose drives the window engine alone (no WAL, no
// goroutines): the latency is from the moment the engine receives the batch
// that moves the watermark to each subscriber call. It separates the
// engine's own cost from scheduling on a busy machine, which the
// end-to-end BenchmarkWindowClose includes.
func BenchmarkWindowEngineClose(b *testing.B) {
	for _, ents := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("entities=%d", ents), func(b *testing.B) {
			v := schema.FeatureView{
				Name: "ifc", Entity: schema.EntityComponent, Metrics: []string{"interface.in.bps", "interface.out.bps"},
				Aggregations: []schema.Aggregation{schema.AggCount, schema.AggMean, schema.AggMax, schema.AggLast,
					schema.AggRate, schema.AggStddev, schema.AggP95, schema.AggEWMA},
				Windows: []time.Duration{time.Second, 3 * time.Second}, Hop: time.Second,
			}
			series := newSeriesTable(0)
			w := newWindowEngine([]schema.FeatureView{v}, series.def)
			var begin time.Time
			var lat []time.Duration
			w.emit = func(_ *viewEngine, _ *schema.FeatureRow, _ closeReason, _ bool) {
				lat = append(lat, time.Since(begin))
			}
			recs := make([]rec, 0, 2*ents)
			for e := range ents {
				for _, m := range v.Metrics {
					sid := series.intern("r"+strconv.Itoa(e/50), "ifc"+strconv.Itoa(e%50), m, "")
					recs = append(recs, rec{sid: sid})
				}
			}
			ts := (testBase/int64(time.Second) + 1) * int64(time.Second)
			step := func() {
				for i := range recs {
					recs[i].ts, recs[i].value = ts+int64(i), float64(i)
				}
				begin = time.Now()
				w.process(recs, begin)
				ts += int64(time.Second)
			}
			step()
			b.ReportAllocs()
			for b.Loop() {
				step()
			}
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
			}
		})
	}
}

// interfaceView is the shipped congestion model's view (docs/inference.md).
var interfaceView = schema.FeatureView{
	Name: "interface_1m", Entity: schema.EntityComponent,
	Metrics: []string{"interface.in.utilization", "interface.out.utilization",
		"interface.in.errors_ps", "interface.out.discards_ps"},
	Aggregations: []schema.Aggregation{schema.AggMean, schema.AggMax},
	Windows:      []time.Duration{time.Minute}, Hop: 10 * time.Second,
}

// BenchmarkWindowCloseSteady measures window close → subscriber at a
// steady 100,000 samples/s of interfaceView (4 metrics per interface, 24
// samples per row), event time running faster than the wall clock so that
// windows close at 4,166 rows/s, in two shapes (see the inference
// package's BenchmarkEndToEnd, which drives the same load further):
// rows_per_hop=4 (96 samples every 0.96 ms, each batch closing 4 windows)
// and rows_per_hop=25 (200 samples every 2 ms, every third batch closing
// 25 windows at once). Samples are laid out time first and a hop boundary
// falls in the middle of the batch that crosses it, so that batch holds
// the last samples of every window it closes. Latency runs from the start
// of that batch's Append call to each subscriber call, over every row;
// commit-p50/p99 from the end of its WAL write. One op is one batch; run
// with a fixed count:
//
//	go test -tags duckdb_arrow ./featurestore -run '^$' -bench WindowCloseSteady -benchtime 6000x -count 5
func BenchmarkWindowCloseSteady(b *testing.B) {
	for _, c := range []struct{ ents, perSeries, batchesPerHop int }{
		{4, 6, 1},
		{25, 2, 3},
	} {
		b.Run(fmt.Sprintf("rows_per_hop=%d", c.ents), func(b *testing.B) {
			benchWindowCloseSteady(b, c.ents, c.perSeries, c.batchesPerHop)
		})
	}
}

func benchWindowCloseSteady(b *testing.B, ents, perSeries, batchesPerHop int) {
	const perSec = 100_000
	v := interfaceView
	s, _ := openStore(b, b.TempDir(), Config{}, []schema.FeatureView{v})
	var mu sync.Mutex
	var appendStart int64 // Unix ns of the current Append call
	lat := make([]float64, 0, 1<<17)
	fromCommit := make([]float64, 0, 1<<17)
	s.closeHook = func(d time.Duration) { fromCommit = append(fromCommit, float64(d.Nanoseconds())/1e3) }
	rows := 0
	s.Subscribe(func(*schema.FeatureRow) {
		now := time.Now().UnixNano()
		mu.Lock()
		lat = append(lat, float64(now-appendStart)/1e3)
		rows++
		mu.Unlock()
	})
	start(b, s)
	var series []schema.Sample
	for e := range ents {
		for _, m := range v.Metrics {
			series = append(series, schema.Sample{Entity: schema.Entity{Device: "pe" + strconv.Itoa(e/5), Component: "Gi0/0/0/" + strconv.Itoa(e%5)}, Metric: m})
		}
	}
	batch := make([]schema.Sample, 0, len(series)*perSeries)
	for range perSeries {
		batch = append(batch, series...)
	}
	hop := int64(v.Hop)
	step := hop / int64(batchesPerHop) // event time per batch
	round := step / int64(perSeries)
	ts := (testBase/hop)*hop - step/2 // a hop boundary in the middle of every batchesPerHop-th batch
	interval := time.Second * time.Duration(len(batch)) / perSec
	send := func() {
		now := time.Now().UnixNano()
		for i := range batch {
			r, k := i/len(series), i%len(series)
			batch[i].TS = ts + int64(r)*round + int64(k+1)*round/int64(len(series)+1)
			batch[i].IngestTS, batch[i].Value = now, float64(k%7)/10
		}
		mu.Lock()
		appendStart = time.Now().UnixNano()
		mu.Unlock()
		if err := s.Append(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
		ts += step
	}
	for range 12 * batchesPerHop { // fill a window and close a few
		send()
	}
	mu.Lock()
	lat, rows, fromCommit = lat[:0], 0, fromCommit[:0]
	mu.Unlock()
	cpu0 := testkit.ProcessCPU()
	begin := time.Now()
	n := 0
	b.ResetTimer()
	for b.Loop() {
		if d := time.Until(begin.Add(time.Duration(n) * interval)); d > 0 {
			time.Sleep(d)
		}
		send()
		n++
	}
	b.StopTimer()
	wall := time.Since(begin)
	cpu := testkit.ProcessCPU() - cpu0
	want := n / batchesPerHop * ents
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		mu.Lock()
		got := rows
		mu.Unlock()
		if got >= want || time.Now().After(deadline) {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lat) < want {
		b.Fatalf("%d rows delivered, want at least %d", len(lat), want)
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(q(0.999), "p999-µs")
	b.ReportMetric(lat[len(lat)-1], "max-µs")
	// The window engine's share: from the end of the WAL write.
	slices.Sort(fromCommit)
	b.ReportMetric(fromCommit[len(fromCommit)/2], "commit-p50-µs")
	b.ReportMetric(fromCommit[len(fromCommit)*99/100], "commit-p99-µs")
	b.ReportMetric(float64(n*len(batch))/wall.Seconds(), "samples/s")
	b.ReportMetric(float64(len(lat))/wall.Seconds(), "rows/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n*len(batch)), "cpu-ns/sample")
}
