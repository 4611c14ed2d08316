package inference

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/dgraph-io/badger/v4"
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

	// A damaged entry among them, then a restart: the log is still there.
	db, err := badger.Open(badger.DefaultOptions(dir + "/inference/badger").WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error {
		return txn.Set(decisionLogKey(mid+1, 1<<62), []byte{logFormat, '{', 'x'})
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
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
	if n := testutil.ToFloat64(r2.m.logErrors); n != 1 {
		t.Errorf("damaged entries counted %v, want 1", n)
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

// TestDecisionLogBlocks drives the log directly with more than a batch of
// decisions, so that blocks are written at logBatch and span several zstd
// frames with records straddling them, and checks that every decision
// reads back whole, in time order, with its shadow flag; a decision added
// after close is dropped and counted.
func TestDecisionLogBlocks(t *testing.T) {
	db, err := badger.Open(badger.DefaultOptions(t.TempDir()).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m, err := newMetrics(prometheus.NewRegistry(), func() float64 { return 0 }, func() float64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	l, err := newDecisionLog(db, time.Hour, m)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3*logBatch + 17
	t0 := time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)
	var doc []byte
	for i := range n {
		// Times run backwards in every 10, so that blocks overlap in time
		// and the read must order them.
		ts := t0.Add(time.Duration(i/10*10+9-i%10) * time.Millisecond)
		d := schema.Decision{SchemaVersion: 1, ID: fmt.Sprintf("d%05d", i), Time: ts,
			Entity: schema.Entity{Device: "pe1", Component: fmt.Sprintf("Gi0/%d", i%48)}, View: "interface_1m",
			Model: "congestion", ModelVersion: "v1", Score: float64(i%100) / 100, Action: "none",
			Reason: strings.Repeat("r", i%300), Features: map[string]float64{"util": float64(i)}}
		doc = appendDecisionJSON(doc[:0], &d)
		l.add(ts.UnixNano(), doc, i%3 == 0)
	}
	if err := l.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs, err := l.history(context.Background(), 0, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var last int64
	for _, rec := range recs {
		for i := range int(rec.NumRows()) {
			ts := int64(rec.Column(0).(*array.Timestamp).Value(i))
			id := rec.Column(1).(*array.String).Value(i)
			var k int
			if _, err := fmt.Sscanf(id, "d%05d", &k); err != nil {
				t.Fatalf("bad id %q", id)
			}
			if seen[id] {
				t.Fatalf("%s twice", id)
			}
			seen[id] = true
			if ts < last {
				t.Fatalf("%s at %d after %d", id, ts, last)
			}
			last = ts
			if shadow := rec.Column(7).(*array.Boolean).Value(i); shadow != (k%3 == 0) {
				t.Errorf("%s shadow %v", id, shadow)
			}
		}
		rec.Release()
	}
	if len(seen) != n {
		t.Fatalf("read %d decisions, want %d", len(seen), n)
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
}
