package inference

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/schema"
)

// logged reads the decision log's rows in [from, to): time, id, model,
// shadow, features JSON.
type loggedRow struct {
	ts       int64
	id       string
	model    string
	shadow   bool
	features string
}

func history(t *testing.T, r *Runtime, from, to int64) []loggedRow {
	t.Helper()
	recs, err := r.DecisionHistory(context.Background(), from, to)
	if err != nil {
		t.Fatalf("DecisionHistory: %v", err)
	}
	var out []loggedRow
	for _, rec := range recs {
		for i := range int(rec.NumRows()) {
			out = append(out, loggedRow{
				ts:       int64(rec.Column(0).(*array.Timestamp).Value(i)),
				id:       rec.Column(1).(*array.String).Value(i),
				model:    rec.Column(5).(*array.String).Value(i),
				shadow:   rec.Column(7).(*array.Boolean).Value(i),
				features: rec.Column(15).(*array.String).Value(i),
			})
		}
		rec.Release()
	}
	return out
}

// TestDecisionLog checks the history of the SQL decisions table: every
// decision, live and shadow, in time order, cut to the asked range, kept
// across a restart, beyond the in-memory ring; a damaged entry is skipped
// and counted.
func TestDecisionLog(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.History = 3 // the ring keeps three; the log keeps all
	r, err := New(cfg, nil, dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.AddVersion(context.Background(), "congestion", "", variant(t, 5, -1)); err != nil {
		t.Fatal(err)
	}
	if err := r.SetShadow(context.Background(), "congestion", "v2"); err != nil {
		t.Fatal(err)
	}
	end := time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)
	const windows = 10
	for i := range windows {
		r.HandleRow(row("pe1", "Gi0/1", end.Add(time.Duration(i)*5*time.Second), congested))
		time.Sleep(2 * time.Millisecond) // distinct decision times
	}
	// 10 windows × (congestion live + shadow, out_util_high) = 30
	deadline := time.Now().Add(10 * time.Second)
	var all []loggedRow
	for {
		all = history(t, r, 0, math.MaxInt64)
		if len(all) >= 3*windows || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(all) != 3*windows {
		t.Fatalf("%d decisions in the log, want %d", len(all), 3*windows)
	}
	shadows := 0
	for i, d := range all {
		if i > 0 && d.ts < all[i-1].ts {
			t.Fatalf("row %d at %d before row %d at %d", i, d.ts, i-1, all[i-1].ts)
		}
		if d.shadow {
			shadows++
			if d.model != "congestion" {
				t.Errorf("shadow decision of %s", d.model)
			}
		}
		if d.features == "" || d.features == "null" {
			t.Errorf("row %d has no features", i)
		}
	}
	if shadows != windows {
		t.Errorf("%d shadow decisions, want %d", shadows, windows)
	}
	ring := r.DecisionRecords()
	if n := ring[0].NumRows(); n != 3 {
		t.Errorf("ring holds %d, want 3", n)
	}
	ring[0].Release()

	// A range cuts at decision time, half-open.
	mid := all[len(all)/2].ts
	if got := history(t, r, mid, math.MaxInt64); len(got) != len(all)-len(all)/2 || got[0].ts != mid {
		t.Errorf("[mid, ∞): %d rows, want %d starting at mid", len(got), len(all)-len(all)/2)
	}
	if got := history(t, r, 0, mid); len(got) != len(all)/2 {
		t.Errorf("[0, mid): %d rows, want %d", len(got), len(all)/2)
	}
	if got := history(t, r, all[len(all)-1].ts+1, math.MaxInt64); len(got) != 0 {
		t.Errorf("after the last: %d rows", len(got))
	}
	// A range holding more than logReadMax decisions is refused, not read.
	defer func(n int) { logReadMax = n }(logReadMax)
	logReadMax = 10
	if _, err := r.DecisionHistory(context.Background(), 0, math.MaxInt64); !errors.Is(err, errTooMany) {
		t.Errorf("30 decisions with a limit of 10: %v, want errTooMany", err)
	}
	want := 0
	for _, d := range all {
		if d.ts >= all[25].ts {
			want++
		}
	}
	if got := history(t, r, all[25].ts, math.MaxInt64); len(got) != want {
		t.Errorf("%d decisions with a limit of 10: %d rows", want, len(got))
	}
	logReadMax = 1000
	if err := r.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	// A restart: the log is still there.
	r2 := newRuntime(t, cfg, nil, dir)
	got := history(t, r2, 0, math.MaxInt64)
	if len(got) != len(all) {
		t.Fatalf("after restart %d rows, want %d", len(got), len(all))
	}
	for i := range got {
		if got[i] != all[i] {
			t.Fatalf("after restart row %d = %+v, want %+v", i, got[i], all[i])
		}
	}
	if n := testutil.ToFloat64(r2.m.logErrors); n != 0 {
		t.Errorf("damaged blocks counted %v, want 0", n)
	}
}

// TestDecisionLogOff: with decision_retention 0 the history is the ring.
func TestDecisionLogOff(t *testing.T) {
	cfg := testConfig()
	cfg.DecisionRetention = 0
	r := newRuntime(t, cfg, nil, t.TempDir())
	if r.dlog != nil {
		t.Fatal("decision log open with retention 0")
	}
	r.HandleRow(row("pe1", "Gi0/1", time.Now(), idle))
	lastDecision(t, r, "congestion")
	recs, err := r.DecisionHistory(context.Background(), 0, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(0)
	for _, rec := range recs {
		n += rec.NumRows()
		if !rec.Schema().Equal(schema.DecisionsSchema) {
			t.Errorf("schema %v", rec.Schema())
		}
		rec.Release()
	}
	if n != 2 {
		t.Errorf("%d decisions, want 2 (model and rule)", n)
	}
}

// logDoc is decision i of TestDecisionLogBlocks, made at ts.
func logDoc(dst []byte, i int, ts time.Time) []byte {
	d := schema.Decision{SchemaVersion: 1, ID: fmt.Sprintf("d%05d", i), Time: ts,
		Entity: schema.Entity{Device: "pe1", Component: fmt.Sprintf("Gi0/%d", i%48)}, View: "interface_1m",
		Model: "congestion", ModelVersion: "v1", Score: float64(i%100) / 100, Action: "none",
		Reason: strings.Repeat("r", i%300), Features: map[string]float64{"util": float64(i)}}
	return appendDecisionJSON(dst, &d)
}

// readLog reads every decision of l: id → shadow, checking time order
// and that no id comes twice.
func readLog(t *testing.T, l *decisionLog) map[int]bool {
	t.Helper()
	recs, err := l.history(context.Background(), 0, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	var last int64
	for _, rec := range recs {
		for i := range int(rec.NumRows()) {
			ts := int64(rec.Column(0).(*array.Timestamp).Value(i))
			id := rec.Column(1).(*array.String).Value(i)
			var k int
			if _, err := fmt.Sscanf(id, "d%05d", &k); err != nil {
				t.Fatalf("bad id %q", id)
			}
			if _, ok := seen[k]; ok {
				t.Fatalf("%s twice", id)
			}
			seen[k] = rec.Column(7).(*array.Boolean).Value(i)
			if ts < last {
				t.Fatalf("%s at %d after %d", id, ts, last)
			}
			last = ts
		}
		rec.Release()
	}
	return seen
}

// logBlocks walks the block headers of a log file: offset and size of
// each block, header included.
func logBlocks(t *testing.T, path string) [][2]int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]int64
	for off := int64(0); off+logHeader <= int64(len(b)); {
		n := int64(binary.LittleEndian.Uint32(b[off+4:]))
		out = append(out, [2]int64{off, logHeader + n})
		off += logHeader + n
	}
	return out
}

// TestDecisionLogBlocks drives the log directly with more than a batch of
// decisions, so that blocks are written at logBatch and span several zstd
// frames with records straddling them, and checks that every decision
// reads back whole, in time order, with its shadow flag. Then it damages
// the file: garbage between blocks is skipped to the next block, a block
// whose checksum fails is skipped, both counted; a torn block at the end
// is cut off when the log opens the file again, and what follows reads
// back. A decision added after close is dropped and counted.
func TestDecisionLogBlocks(t *testing.T) {
	dir := t.TempDir()
	l, m := testLog(t, dir)
	const n = 2*logBatch + 17
	t0 := time.Now().Add(-time.Minute)
	var doc []byte
	for i := range n {
		// Times run backwards in every 10, so that blocks overlap in time
		// and the read must order them.
		ts := t0.Add(time.Duration(i/10*10+9-i%10) * time.Millisecond)
		doc = logDoc(doc[:0], i, ts)
		l.add(ts.UnixNano(), doc, i%3 == 0)
		if i == logBatch+5 || i == 2*logBatch {
			// At least three blocks, whatever the writer's timing.
			if err := l.sync(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	seen := readLog(t, l)
	if len(seen) != n {
		t.Fatalf("read %d decisions, want %d", len(seen), n)
	}
	for k, shadow := range seen {
		if shadow != (k%3 == 0) {
			t.Errorf("d%05d shadow %v", k, shadow)
		}
	}
	if got := testutil.ToFloat64(m.logWritten); got != n {
		t.Errorf("written %v, want %d", got, n)
	}
	l.close()
	l.add(t0.UnixNano(), doc, false)
	if got := testutil.ToFloat64(m.logDropped); got != 1 {
		t.Errorf("dropped %v after close, want 1", got)
	}
	if err := l.sync(context.Background()); err == nil {
		t.Error("sync after close: no error")
	}

	// Damage: garbage after the first block, a flipped byte in the second,
	// half a header at the end.
	files, err := filepath.Glob(filepath.Join(dir, "*"+logFileSuffix))
	if err != nil || len(files) != 1 {
		t.Fatalf("log files %v, %v", files, err)
	}
	blocks := logBlocks(t, files[0])
	if len(blocks) < 3 {
		t.Fatalf("%d blocks, want at least 3", len(blocks))
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	b1, b2 := blocks[0], blocks[1]
	b[b2[0]+b2[1]-5] ^= 0xff
	damaged := append(append(append([]byte(nil), b[:b1[0]+b1[1]]...), "NF garbage NFD"...), b[b1[0]+b1[1]:]...)
	damaged = append(damaged, logMagic[:]...)
	damaged = append(damaged, 0, 1)
	if err := os.WriteFile(files[0], damaged, 0o644); err != nil {
		t.Fatal(err)
	}
	var lost map[int]bool
	{
		// The decisions of block 2: read it alone.
		one := t.TempDir()
		b[b2[0]+b2[1]-5] ^= 0xff // undo the flip for this copy
		if err := os.WriteFile(filepath.Join(one, filepath.Base(files[0])), b[b2[0]:b2[0]+b2[1]], 0o644); err != nil {
			t.Fatal(err)
		}
		lone, _ := testLog(t, one)
		lost = readLog(t, lone)
		lone.close()
		if len(lost) == 0 {
			t.Fatal("block 2 holds no decisions")
		}
	}

	l3, m3 := testLog(t, dir)
	defer l3.close()
	// Reading before anything is written: the torn tail is still there,
	// in the newest file, and taken for a block being written.
	got := readLog(t, l3)
	if len(got) != n-len(lost) {
		t.Errorf("read %d decisions around the damage, want %d", len(got), n-len(lost))
	}
	for k := range lost {
		if _, ok := got[k]; ok {
			t.Errorf("d%05d of the damaged block read", k)
		}
	}
	if e := testutil.ToFloat64(m3.logErrors); e != 2 {
		t.Errorf("damage counted %v, want 2 (garbage, checksum)", e)
	}
	// A new block: the torn tail is cut off first, so it reads.
	doc = logDoc(doc[:0], n, time.Now())
	l3.add(time.Now().UnixNano(), doc, false)
	got = readLog(t, l3)
	if _, ok := got[n]; !ok || len(got) != n-len(lost)+1 {
		t.Errorf("after the repair: %d decisions, new one read %v", len(got), ok)
	}
}

// TestDecisionLogRetention: files whose hour is past the retention are
// deleted when the log opens; newer ones and other files stay.
func TestDecisionLogRetention(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	old := filepath.Join(dir, now.Add(-50*time.Hour).Format(logHourLayout)+logFileSuffix)
	edge := filepath.Join(dir, now.Add(-47*time.Hour).Truncate(time.Hour).Format(logHourLayout)+logFileSuffix)
	other := filepath.Join(dir, "notes.txt")
	for _, p := range []string{old, edge, other} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, _ := testLog(t, dir)
	defer l.close()
	for p, want := range map[string]bool{old: false, edge: true, other: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}

// TestDecisionLogWriteFails: a block that cannot be written (here the
// hour's file is a directory) is counted, reported and returned to a
// reader's sync; the log goes on.
func TestDecisionLogWriteFails(t *testing.T) {
	dir := t.TempDir()
	hour := time.Now().UTC().Truncate(time.Hour)
	if err := os.Mkdir(filepath.Join(dir, hour.Format(logHourLayout)+logFileSuffix), 0o755); err != nil {
		t.Fatal(err)
	}
	m := logMetrics(t)
	var warned []string
	var mu sync.Mutex
	l, err := newDecisionLog(dir, time.Hour, m, func(msg string, _ ...any) {
		mu.Lock()
		warned = append(warned, msg)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	now := time.Now()
	l.add(now.UnixNano(), logDoc(nil, 1, now), false)
	l.add(now.UnixNano(), logDoc(nil, 2, now), false)
	if err := l.sync(context.Background()); err == nil {
		t.Fatal("sync: no error for a block that could not be written")
	}
	if n := testutil.ToFloat64(m.logErrors); n != 2 {
		t.Errorf("errors counted %v, want 2 (the block's decisions)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(warned) != 1 {
		t.Errorf("warnings %q, want one", warned)
	}
}

// testLog opens a decision log in dir with a retention of two days.
func testLog(t testing.TB, dir string) (*decisionLog, *metrics) {
	t.Helper()
	m := logMetrics(t)
	l, err := newDecisionLog(dir, 48*time.Hour, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l, m
}

// addBlock adds k decisions made now, ids first…first+k-1, and syncs: one
// block.
func addBlock(l *decisionLog, first, k int) error {
	var doc []byte
	for i := first; i < first+k; i++ {
		ts := l.clock()
		doc = logDoc(doc[:0], i, ts)
		l.add(ts.UnixNano(), doc, false)
	}
	return l.sync(context.Background())
}

// hasRange reports how many of ids first…first+k-1 got holds.
func hasRange(got map[int]bool, first, k int) int {
	n := 0
	for i := first; i < first+k; i++ {
		if _, ok := got[i]; ok {
			n++
		}
	}
	return n
}

// TestDecisionLogFailedWrites: a write that fails part way is cut off and
// the next block goes where it started, so reads see no damage; a second
// failure cuts nothing written before it.
func TestDecisionLogFailedWrites(t *testing.T) {
	l, m := testLog(t, t.TempDir())
	defer l.close()
	fail := false
	l.writeAt = func(f *os.File, b []byte, off int64) (int, error) {
		if fail {
			n, _ := f.WriteAt(b[:len(b)/2], off)
			return n, errors.New("no space left on device")
		}
		return f.WriteAt(b, off)
	}
	steps := []struct {
		first int
		fail  bool
	}{{0, false}, {100, true}, {200, false}, {300, true}, {400, false}}
	for _, s := range steps {
		fail = s.fail
		err := addBlock(l, s.first, 50)
		if (err != nil) != s.fail {
			t.Fatalf("block %d: err %v, want failure %v", s.first, err, s.fail)
		}
	}
	written := testutil.ToFloat64(m.logErrors)
	got := readLog(t, l)
	for _, s := range steps {
		want := 50
		if s.fail {
			want = 0
		}
		if n := hasRange(got, s.first, 50); n != want {
			t.Errorf("block %d: %d decisions read, want %d", s.first, n, want)
		}
	}
	if written != 100 {
		t.Errorf("errors counted %v for the failed writes, want 100", written)
	}
	if n := testutil.ToFloat64(m.logErrors) - written; n != 0 {
		t.Errorf("the read counted %v damaged blocks, want 0", n)
	}
}

// TestDecisionLogDamagedHeader: a block header whose length or time range
// is damaged fails its own CRC; readers skip to the next block and count
// it, and the writer, reopening the file, cuts nothing readable (the
// damaged length here points into the middle of the last block).
func TestDecisionLogDamagedHeader(t *testing.T) {
	for _, c := range []struct {
		name   string
		damage func(b []byte, blocks [][2]int64)
	}{
		{"length past the end", func(b []byte, blocks [][2]int64) {
			binary.LittleEndian.PutUint32(b[blocks[0][0]+4:], uint32(2*len(b)))
		}},
		{"length into the last block", func(b []byte, blocks [][2]int64) {
			binary.LittleEndian.PutUint32(b[blocks[0][0]+4:], uint32(blocks[2][0]+20-blocks[0][0]-logHeader))
		}},
		{"time range", func(b []byte, blocks [][2]int64) {
			binary.LittleEndian.PutUint64(b[blocks[0][0]+16:], 1)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			l, _ := testLog(t, dir)
			for i := range 3 {
				if err := addBlock(l, i*100, 60); err != nil {
					t.Fatal(err)
				}
			}
			l.close()
			files, _ := filepath.Glob(filepath.Join(dir, "*"+logFileSuffix))
			if len(files) != 1 {
				t.Fatalf("files %v", files)
			}
			b, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			c.damage(b, logBlocks(t, files[0]))
			if err := os.WriteFile(files[0], b, 0o644); err != nil {
				t.Fatal(err)
			}
			l2, m := testLog(t, dir)
			defer l2.close()
			got := readLog(t, l2)
			if hasRange(got, 0, 60) != 0 || hasRange(got, 100, 60) != 60 || hasRange(got, 200, 60) != 60 {
				t.Errorf("read blocks 0/1/2: %d/%d/%d decisions, want 0/60/60", hasRange(got, 0, 60), hasRange(got, 100, 60), hasRange(got, 200, 60))
			}
			if n := testutil.ToFloat64(m.logErrors); n != 1 {
				t.Errorf("damage counted %v, want 1", n)
			}
			// The writer reopens the file to append: all of it stays.
			if err := addBlock(l2, 900, 10); err != nil {
				t.Fatal(err)
			}
			got = readLog(t, l2)
			if hasRange(got, 100, 60) != 60 || hasRange(got, 200, 60) != 60 || hasRange(got, 900, 10) != 10 {
				t.Errorf("after appending: %d/%d/%d of blocks 1, 2 and the new one", hasRange(got, 100, 60), hasRange(got, 200, 60), hasRange(got, 900, 10))
			}
		})
	}
}

// TestDecisionLogHours: blocks go to the file of the hour they are written
// in, so a query of the hour before finds decisions written just after it
// (within the minute of slack), and a block whose writing stalled for more
// than that slack goes to the file its first decision's time needs.
func TestDecisionLogHours(t *testing.T) {
	dir := t.TempDir()
	l, _ := testLog(t, dir)
	defer l.close()
	h := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	var doc []byte
	put := func(id int, made, written time.Time) {
		l.clock = func() time.Time { return written }
		doc = logDoc(doc[:0], id, made)
		l.add(made.UnixNano(), doc, false)
		if err := l.sync(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	put(1, h.Add(-50*time.Millisecond), h.Add(50*time.Millisecond)) // written in the next hour
	put(2, h.Add(-3*time.Minute), h.Add(30*time.Second))            // stalled past the slack
	put(3, h.Add(20*time.Minute), h.Add(20*time.Minute))
	l.clock = time.Now
	names, _ := filepath.Glob(filepath.Join(dir, "*"+logFileSuffix))
	if len(names) != 2 {
		t.Fatalf("files %v, want the hour before h and h", names)
	}
	for _, c := range []struct {
		from, to time.Time
		want     []int
	}{
		{h.Add(-time.Second), h, []int{1}},
		{h.Add(-4 * time.Minute), h.Add(-2 * time.Minute), []int{2}},
		{h, h.Add(time.Hour), []int{3}},
		{h.Add(-time.Hour), h.Add(time.Hour), []int{1, 2, 3}},
	} {
		recs, err := l.history(context.Background(), c.from.UnixNano(), c.to.UnixNano())
		if err != nil {
			t.Fatal(err)
		}
		var ids []int
		for _, rec := range recs {
			for i := range int(rec.NumRows()) {
				var k int
				fmt.Sscanf(rec.Column(1).(*array.String).Value(i), "d%05d", &k)
				ids = append(ids, k)
			}
			rec.Release()
		}
		slices.Sort(ids)
		if !slices.Equal(ids, c.want) {
			t.Errorf("[%s, %s): %v, want %v", c.from.Format(time.TimeOnly), c.to.Format(time.TimeOnly), ids, c.want)
		}
	}
}

// FuzzDecisionLogRead feeds arbitrary bytes as a log file: opening the log
// (which repairs the file's tail) and reading it must neither panic nor
// hang, the repair must only ever shorten the file and be done at once
// (a second open changes nothing), and every decision read must lie in the
// asked range. Seeds: a file of three blocks, whole and cut. Run longer
// with `go test -tags duckdb_arrow -run '^$' -fuzz FuzzDecisionLogRead -fuzztime 60s ./inference`.
func FuzzDecisionLogRead(f *testing.F) {
	seedDir := f.TempDir()
	l, _ := testLog(f, seedDir)
	for i := range 3 {
		if err := addBlock(l, i*10, 10); err != nil {
			f.Fatal(err)
		}
	}
	l.close()
	names, _ := filepath.Glob(filepath.Join(seedDir, "*"+logFileSuffix))
	seed, err := os.ReadFile(names[0])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)-7])
	f.Add(seed[40:])
	f.Add(append(append([]byte("NFD1"), seed[4:60]...), seed...))
	name := filepath.Base(names[0])
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		l, _ := testLog(t, dir)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > int64(len(data)) {
			t.Fatalf("repair grew the file from %d to %d bytes", len(data), st.Size())
		}
		from, to := seedTime(data)
		recs, err := l.history(context.Background(), from, to)
		if err == nil {
			for _, rec := range recs {
				for i := range int(rec.NumRows()) {
					if ts := int64(rec.Column(0).(*array.Timestamp).Value(i)); ts < from || ts >= to {
						t.Errorf("decision at %d outside [%d, %d)", ts, from, to)
					}
				}
				rec.Release()
			}
		}
		l.close()
		l2, _ := testLog(t, dir)
		l2.close()
		if st2, err := os.Stat(path); err != nil || st2.Size() != st.Size() {
			t.Fatalf("a second open changed the file: %d → %v bytes (%v)", st.Size(), st2, err)
		}
	})
}

// seedTime derives a query range from fuzz data: wide for most inputs,
// narrow for some, so that both the range checks and the skips are run.
func seedTime(data []byte) (int64, int64) {
	if len(data) < 2 || data[0]%3 != 0 {
		return math.MinInt64, math.MaxInt64
	}
	mid := time.Now().Add(-time.Duration(data[1]) * time.Millisecond).UnixNano()
	return mid - int64(time.Second), mid + int64(time.Second)
}

// logMetrics is a fresh set of inference metrics for a decision log under
// test.
func logMetrics(t testing.TB) *metrics {
	t.Helper()
	m, err := newMetrics(prometheus.NewRegistry(), func() float64 { return 0 }, func() float64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	return m
}
