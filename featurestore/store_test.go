package featurestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/netfeat/netfeat/schema"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Badger's and glog's process-wide background goroutines.
		goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*defaultPolicy[...]).processItems"),
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*Cache[...]).processItems"),
		goleak.IgnoreAnyFunction("github.com/dgraph-io/badger/v4/y.(*WaterMark).process"),
		// A failed badger.Open (the missing-table test) leaves these running.
		goleak.IgnoreTopFunction("github.com/dgraph-io/badger/v4.(*DB).monitorCache"),
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2/z.(*AllocatorPool).freeupAllocators"),
	)
}

// openStore opens a store in dir, starts it, and registers Close as cleanup.
func openStore(t testing.TB, dir string, cfg Config, views []schema.FeatureView) (*Store, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(cfg, views, dir, reg, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s, reg
}

// openStarted creates and starts a store, as the old Open and Start did
// together: recovery errors come from Start.
func openStarted(ctx context.Context, cfg Config, views []schema.FeatureView, dir string, reg prometheus.Registerer, log *slog.Logger) (*Store, error) {
	s, err := New(cfg, views, dir, reg, log)
	if err != nil {
		return nil, err
	}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func start(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

type row struct {
	ts                        int64
	device, component, metric string
	value                     float64
}

// readSamples flattens record batches of SamplesSchema and releases them.
func readSamples(t testing.TB, recs []arrow.RecordBatch) []row {
	t.Helper()
	var out []row
	for _, rec := range recs {
		if !rec.Schema().Equal(schema.SamplesSchema) {
			t.Fatalf("schema %v, want %v", rec.Schema(), schema.SamplesSchema)
		}
		ts := rec.Column(0).(*array.Timestamp)
		str := func(c int, i int) string {
			d := rec.Column(c).(*array.Dictionary)
			return d.Dictionary().(*array.String).Value(d.GetValueIndex(i))
		}
		val := rec.Column(4).(*array.Float64)
		for i := range int(rec.NumRows()) {
			out = append(out, row{int64(ts.Value(i)), str(1, i), str(2, i), str(3, i), val.Value(i)})
		}
		rec.Release()
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ts != out[j].ts {
			return out[i].ts < out[j].ts
		}
		return out[i].value < out[j].value
	})
	return out
}

func readAll(t testing.TB, r array.RecordReader) []arrow.RecordBatch {
	t.Helper()
	defer r.Release()
	var out []arrow.RecordBatch
	for r.Next() {
		rec := r.RecordBatch()
		rec.Retain()
		out = append(out, rec)
	}
	if err := r.Err(); err != nil {
		t.Fatalf("reader: %v", err)
	}
	return out
}

// testBase is a recent event time, so that age retention keeps test data.
var testBase = time.Now().Truncate(time.Hour).UnixNano()

func genBatch(n, off int) []schema.Sample {
	b := make([]schema.Sample, n)
	for i := range b {
		k := off + i
		b[i] = schema.Sample{
			TS: testBase + int64(k)*1e6, IngestTS: testBase + int64(k)*1e6 + 5,
			Entity: schema.Entity{Device: fmt.Sprintf("r%d", k%3), Component: fmt.Sprintf("eth%d", k%5)},
			Metric: "interface.in.bps", Value: float64(k), Source: "test/sim",
		}
	}
	return b
}

func wantRows(samples []schema.Sample) []row {
	out := make([]row, len(samples))
	for i, x := range samples {
		out[i] = row{x.TS, x.Device, x.Component, x.Metric, x.Value}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ts < out[j].ts })
	return out
}

func equalRows(t testing.TB, got, want []row) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("row %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestAppendSnapshotAndRecover(t *testing.T) {
	tests := []struct {
		name     string
		sealRows int
		batches  int
		size     int
	}{
		{"all in open chunk", 1000, 3, 100},
		{"sealed chunks and tail", 250, 10, 100},
		{"batch larger than a chunk", 50, 4, 120},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{SealRows: tc.sealRows}
			s, reg := openStore(t, dir, cfg, nil)
			start(t, s)
			var all []schema.Sample
			for b := range tc.batches {
				batch := genBatch(tc.size, b*tc.size)
				if err := s.Append(context.Background(), batch); err != nil {
					t.Fatalf("Append: %v", err)
				}
				all = append(all, batch...)
			}
			equalRows(t, readSamples(t, s.SnapshotSamples()), wantRows(all))
			if got := testutil.ToFloat64(s.m.appended); got != float64(len(all)) {
				t.Fatalf("appended counter %v, want %d", got, len(all))
			}
			_ = reg
			if err := s.Stop(context.Background()); err != nil {
				t.Fatalf("Stop: %v", err)
			}

			s2, _ := openStore(t, dir, cfg, nil)
			start(t, s2)
			equalRows(t, readSamples(t, s2.SnapshotSamples()), wantRows(all))
			hist := readAll(t, mustHistory(t, s2, TableSamples, math.MinInt64, math.MaxInt64))
			equalRows(t, readSamples(t, hist), wantRows(all))
			// A sub-range.
			from, to := all[len(all)/3].TS, all[2*len(all)/3].TS
			var sub []schema.Sample
			for _, x := range all {
				if x.TS >= from && x.TS < to {
					sub = append(sub, x)
				}
			}
			equalRows(t, readSamples(t, readAll(t, mustHistory(t, s2, TableSamples, from, to))), wantRows(sub))
		})
	}
}

func mustHistory(t testing.TB, s *Store, table string, from, to int64) array.RecordReader {
	t.Helper()
	r, err := s.History(context.Background(), table, from, to)
	if err != nil {
		t.Fatalf("History(%s): %v", table, err)
	}
	return r
}

func TestSnapshotIsStableWhileAppending(t *testing.T) {
	s, _ := openStore(t, t.TempDir(), Config{SealRows: 64}, nil)
	start(t, s)
	if err := s.Append(context.Background(), genBatch(100, 0)); err != nil {
		t.Fatal(err)
	}
	snap := s.SnapshotSamples()
	for b := 1; b < 5; b++ {
		if err := s.Append(context.Background(), genBatch(100, b*100)); err != nil {
			t.Fatal(err)
		}
	}
	equalRows(t, readSamples(t, snap), wantRows(genBatch(100, 0)))
}

func TestAppendRejectsBadSamplesAndCountsThem(t *testing.T) {
	s, _ := openStore(t, t.TempDir(), Config{}, nil)
	if err := s.Append(context.Background(), genBatch(1, 0)); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Append before Start: %v, want ErrNotRunning", err)
	}
	start(t, s)
	batch := genBatch(3, 0)
	batch[1].Metric = ""
	if err := s.Append(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(s.m.rejected.WithLabelValues("r1", "missing_label")); got != 1 {
		t.Fatalf("rejected{device=r1} = %v, want 1", got)
	}
	if got := len(readSamples(t, s.SnapshotSamples())); got != 2 {
		t.Fatalf("%d samples stored, want 2", got)
	}
}

func TestRetentionByMemoryBudget(t *testing.T) {
	cfg := Config{SealRows: 10000, MemoryBudget: 1 << 20} // 52 chunks of 10k rows ≈ 200KB each
	s, _ := openStore(t, t.TempDir(), cfg, nil)           // not started: the test drives the hot tier itself
	now := time.Now()
	for b := range 12 {
		batch := genBatch(10000, b*10000)
		for i := range batch {
			batch[i].TS = now.UnixNano() + int64(b*10000+i)
		}
		recs := make([]rec, len(batch))
		for i, x := range batch {
			recs[i] = rec{ts: x.TS, sid: s.series.intern(x.Device, x.Component, x.Metric, ""), value: x.Value}
		}
		s.hot.append(recs, uint64(b+1), now)
	}
	dropped := 0
	s.hot.retain(now.Add(-time.Hour).UnixNano(), int64(cfg.MemoryBudget), func(c *chunk, r dropReason) {
		if r != dropMemory {
			t.Fatalf("drop reason %s, want memory", r)
		}
		if c.firstSeq != uint64(dropped+1) {
			t.Fatalf("dropped chunk starting at batch %d, want the oldest (%d)", c.firstSeq, dropped+1)
		}
		dropped++
	})
	_, bytes := s.hot.usage()
	if bytes > int64(cfg.MemoryBudget) || dropped == 0 {
		t.Fatalf("after retention: %d bytes held (budget %d), %d dropped", bytes, cfg.MemoryBudget, dropped)
	}
}

func TestStateBlobs(t *testing.T) {
	dir := t.TempDir()
	s, _ := openStore(t, dir, Config{}, nil)
	start(t, s)
	if _, err := s.GetState("normalize/rates"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetState of a missing key: %v, want ErrNotFound", err)
	}
	if err := s.PutState("normalize/rates", []byte("blob")); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2, _ := openStore(t, dir, Config{}, nil)
	start(t, s2)
	got, err := s2.GetState("normalize/rates")
	if err != nil || string(got) != "blob" {
		t.Fatalf("GetState after reopen = %q, %v", got, err)
	}
}

func TestDamagedDataDirectory(t *testing.T) {
	build := func(t *testing.T) string {
		dir := t.TempDir()
		s, _ := openStore(t, dir, Config{SealRows: 100}, nil)
		start(t, s)
		for b := range 5 {
			if err := s.Append(context.Background(), genBatch(100, b*100)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	// truncateChunk rewrites the first chunk key's value (where the chunk
	// is in the chunk log) with its first half. TestChunkBytesDamaged
	// damages the chunk's bytes themselves.
	truncateChunk := func(t *testing.T, dir string) {
		db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		err = db.Update(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixChunk}})
			it.Rewind()
			k := it.Item().KeyCopy(nil)
			v, _ := it.Item().ValueCopy(nil)
			it.Close()
			return txn.Set(k, v[:len(v)/2])
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Run("truncated chunk fails with a clear error", func(t *testing.T) {
		dir := build(t)
		truncateChunk(t, dir)
		_, err := openStarted(context.Background(), Config{SealRows: 100}, nil, dir, nil, nil)
		if !errors.Is(err, ErrDamaged) {
			t.Fatalf("Open: %v, want ErrDamaged", err)
		}
		t.Logf("error: %v", err)
	})
	t.Run("quarantine opens without the damaged chunk and counts it", func(t *testing.T) {
		dir := build(t)
		truncateChunk(t, dir)
		s, _ := openStore(t, dir, Config{SealRows: 100, Recovery: RecoveryQuarantine}, nil)
		start(t, s)
		if got := testutil.ToFloat64(s.m.damaged.WithLabelValues("chunk")); got != 1 {
			t.Fatalf("damaged{chunk} = %v, want 1", got)
		}
		if got := len(readSamples(t, s.SnapshotSamples())); got != 400 {
			t.Fatalf("%d samples after quarantine, want 400", got)
		}
		var q int
		_ = s.db.View(func(txn *badger.Txn) error {
			return iteratePrefix(txn, []byte{prefixQuarantine}, false, func(k, _ []byte) error { q++; return nil })
		})
		if q != 1 {
			t.Fatalf("%d quarantined entries, want 1", q)
		}
	})
	t.Run("damaged series definition: fail, then quarantine keeps its samples", func(t *testing.T) {
		dir := build(t)
		db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(txn *badger.Txn) error { return txn.Set(seriesKeyBytes(0), []byte{0xff}) }); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := openStarted(context.Background(), Config{SealRows: 100}, nil, dir, nil, nil); !errors.Is(err, ErrDamaged) {
			t.Fatalf("Open: %v, want ErrDamaged", err)
		}
		s, _ := openStore(t, dir, Config{SealRows: 100, Recovery: RecoveryQuarantine}, nil)
		start(t, s)
		rows := readSamples(t, s.SnapshotSamples())
		placeholder := 0
		for _, r := range rows {
			if r.device == "damaged-series-0" {
				placeholder++
			}
		}
		if len(rows) != 500 || placeholder == 0 {
			t.Fatalf("%d samples (%d under the placeholder series), want 500 with some", len(rows), placeholder)
		}
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		s2, _ := openStore(t, dir, Config{SealRows: 100}, nil) // fail mode opens again
		start(t, s2)
		if got := len(readSamples(t, s2.SnapshotSamples())); got != 500 {
			t.Fatalf("%d samples on the next open, want 500", got)
		}
	})
	t.Run("missing MANIFEST is refused, not wiped", func(t *testing.T) {
		dir := build(t)
		if err := os.Remove(filepath.Join(dir, "MANIFEST")); err != nil {
			t.Fatal(err)
		}
		_, err := openStarted(context.Background(), Config{}, nil, dir, nil, nil)
		if !errors.Is(err, ErrDamaged) {
			t.Fatalf("Open: %v, want ErrDamaged", err)
		}
		t.Logf("error: %v", err)
	})
	t.Run("missing table file fails", func(t *testing.T) {
		dir := build(t)
		ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
		if len(ssts) == 0 {
			t.Skip("no .sst file was flushed") // Badger keeps small stores in the memtable
		}
		if err := os.Remove(ssts[0]); err != nil {
			t.Fatal(err)
		}
		_, err := openStarted(context.Background(), Config{}, nil, dir, nil, nil)
		if !errors.Is(err, ErrDamaged) {
			t.Fatalf("Open: %v, want ErrDamaged", err)
		}
		t.Logf("error: %v", err)
	})
}

func TestConcurrentAppendersAndReaders(t *testing.T) {
	v := cpuView([]time.Duration{time.Second}, time.Second, 0)
	v.Metrics = []string{"interface.in.bps"}
	s, _ := openStore(t, t.TempDir(), Config{SealRows: 700, FSync: FSyncBatch}, []schema.FeatureView{v})
	var rows collector
	s.Subscribe(rows.handle)
	start(t, s)
	const appenders, batches, size = 4, 40, 100
	done := make(chan struct{})
	readerErr := make(chan error, 1)
	go func() {
		defer close(readerErr)
		for {
			select {
			case <-done:
				return
			default:
			}
			n := 0
			for _, r := range s.SnapshotSamples() {
				n += int(r.NumRows())
				r.Release()
			}
			if n%size != 0 {
				readerErr <- fmt.Errorf("snapshot holds %d rows: not whole batches", n)
				return
			}
			for _, r := range s.SnapshotSeries() {
				r.Release()
			}
		}
	}()
	errs := make(chan error, appenders)
	for a := range appenders {
		go func() {
			for b := range batches {
				if err := s.Append(context.Background(), genBatch(size, (a*batches+b)*size)); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range appenders {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	if err := <-readerErr; err != nil {
		t.Fatal(err)
	}
	got := readSamples(t, s.SnapshotSamples())
	if len(got) != appenders*batches*size {
		t.Fatalf("%d samples, want %d", len(got), appenders*batches*size)
	}
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			t.Fatalf("sample %+v stored twice", got[i])
		}
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(context.Background(), genBatch(1, 0)); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Append after Stop: %v, want ErrNotRunning", err)
	}
}

func TestSealByAgeAndRetainByAge(t *testing.T) {
	s, _ := openStore(t, t.TempDir(), Config{SealRows: 1000, SealAge: 20 * time.Millisecond}, nil)
	start(t, s)
	if err := s.Append(context.Background(), genBatch(10, 0)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(s.m.chunkPersist.WithLabelValues("ok")) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the open chunk was not sealed and written by age")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := testutil.ToFloat64(s.m.chunksSealed.WithLabelValues("age")); got != 1 {
		t.Fatalf("chunks_sealed{reason=age} = %v, want 1", got)
	}
	// Trimmed to its rows (plus allocator rounding), not the 1000-row capacity.
	if _, bytes := s.hot.usage(); bytes > 16*bytesPerRow {
		t.Fatalf("an age-sealed chunk of 10 rows holds %d bytes, want about %d (trimmed)", bytes, 10*bytesPerRow)
	}
	var dropped []dropReason
	s.hot.retain(testBase+1e12, 1<<30, func(_ *chunk, r dropReason) { dropped = append(dropped, r) })
	if len(dropped) != 1 || dropped[0] != dropAge {
		t.Fatalf("dropped %v, want one chunk by age", dropped)
	}
	// Dropped from memory, still in Badger.
	if got := len(readSamples(t, readAll(t, mustHistory(t, s, TableSamples, math.MinInt64, math.MaxInt64)))); got != 10 {
		t.Fatalf("history holds %d samples after the hot tier dropped them, want 10", got)
	}
}

func TestSnapshotSeriesAndLatest(t *testing.T) {
	v := cpuView([]time.Duration{10 * time.Second}, 10*time.Second, 0)
	v.Aggregations = []schema.Aggregation{schema.AggCount}
	s, _ := openStore(t, t.TempDir(), Config{}, []schema.FeatureView{v})
	var rows collector
	s.Subscribe(rows.handle)
	start(t, s)
	sec := int64(time.Second)
	base := (testBase / (10 * sec)) * 10 * sec
	var batch []schema.Sample
	for i := range 6 {
		batch = append(batch, schema.Sample{TS: base + int64(i)*sec, Entity: schema.Entity{Device: "r1", Component: fmt.Sprintf("cpu%d", i%2)},
			Metric: "system.cpu.utilization", Value: float64(i)})
	}
	batch = append(batch, schema.Sample{TS: base + 12*sec, Entity: schema.Entity{Device: "r1", Component: "cpu0"}, Metric: "system.cpu.utilization", Value: 9})
	if err := s.Append(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	rows.waitRows(t, 2)
	recs := s.SnapshotSeries()
	if len(recs) != 1 || recs[0].NumRows() != 2 {
		t.Fatalf("series snapshot: %d batches, want 1 with 2 rows", len(recs))
	}
	samples := recs[0].Column(6).(*array.Int64)
	last := recs[0].Column(5).(*array.Float64)
	if samples.Value(0) != 4 || last.Value(0) != 9 || samples.Value(1) != 3 || last.Value(1) != 5 {
		t.Fatalf("series stats: samples %v/%v, last %v/%v; want 4/3 and 9/5", samples.Value(0), samples.Value(1), last.Value(0), last.Value(1))
	}
	recs[0].Release()
	lat, err := s.SnapshotLatest("cpu")
	if err != nil {
		t.Fatal(err)
	}
	if !lat[0].Schema().Equal(schema.FeatureViewSchema(v)) || lat[0].NumRows() != 2 {
		t.Fatalf("latest snapshot: schema %v, %d rows; want the view's schema and 2 rows", lat[0].Schema(), lat[0].NumRows())
	}
	lat[0].Release()
	if _, err := s.SnapshotLatest("nope"); !errors.Is(err, ErrUnknownView) {
		t.Fatalf("SnapshotLatest(nope): %v, want ErrUnknownView", err)
	}
}
