package inference

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/inference/onnx"
	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

func TestDecisionsOnNATS(t *testing.T) {
	srv := startNATS(t, -1, t.TempDir())
	nc := connect(t, srv.ClientURL())
	got := collect(t, nc, "netfeat.decisions.>")
	r := newRuntime(t, testConfig(), nc, t.TempDir())

	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r.HandleRow(row("pe1.lab", "HundredGigE0/0/0/0", end, congested))
	r.HandleRow(row("pe1.lab", "HundredGigE0/0/0/1", end, idle))
	ds := got.wait(t, 4) // congestion and the rule, for two interfaces

	byKey := map[string]schema.Decision{}
	for i, d := range ds {
		m := got.msgs[i]
		if id := m.Header.Get("Nats-Msg-Id"); id != d.ID || id == "" {
			t.Fatalf("Nats-Msg-Id %q, decision id %q", id, d.ID)
		}
		if want := schema.DecisionSubject(d.Model, d.Entity.Device); m.Subject != want {
			t.Fatalf("subject %q, want %q", m.Subject, want)
		}
		if d.SchemaVersion != 1 || d.View != "interface_1m" || !d.Window.End.Equal(end) || !d.Window.Start.Equal(end.Add(-time.Minute)) {
			t.Fatalf("decision header wrong: %+v", d)
		}
		if d.IngestToDecisionUS < 0 || d.IngestToDecisionUS > 5e6 {
			t.Fatalf("ingest_to_decision_us %d", d.IngestToDecisionUS)
		}
		byKey[d.Model+" "+d.Entity.Component] = d
	}
	cases := []struct {
		key, action, version string
		score                float64
	}{
		{"congestion HundredGigE0/0/0/0", "reroute", "v1", goldenCongested},
		{"congestion HundredGigE0/0/0/1", "none", "v1", goldenIdle},
		{"out_util_high HundredGigE0/0/0/0", "alert", "", 1},
		{"out_util_high HundredGigE0/0/0/1", "none", "", 0},
	}
	for _, c := range cases {
		d, ok := byKey[c.key]
		if !ok {
			t.Fatalf("no decision for %s in %v", c.key, byKey)
		}
		if math.Abs(d.Score-c.score) > 1e-6 || d.Action != c.action {
			t.Fatalf("%s: score %v action %q, want %v %q", c.key, d.Score, d.Action, c.score, c.action)
		}
		if c.version != "" && d.ModelVersion != c.version {
			t.Fatalf("%s: version %q, want %q", c.key, d.ModelVersion, c.version)
		}
		if d.Fallback != "" {
			t.Fatalf("%s: unexpected fallback %q", c.key, d.Fallback)
		}
	}
	if f := byKey["congestion HundredGigE0/0/0/0"].Features; len(f) != 8 || f["interface_out_discards_ps__max_1m"] != 2000 {
		t.Fatalf("features %v", f)
	}
}

func TestHandleRowNeverBlocks(t *testing.T) {
	cfg := testConfig()
	cfg.QueueSize = 4
	reg := prometheus.NewRegistry()
	r, err := New(cfg, nil, t.TempDir(), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop(context.Background())
	// Not started: nothing consumes, so all but QueueSize rows must be
	// dropped at once, without blocking.
	done := make(chan struct{})
	go func() {
		for range 100 {
			r.HandleRow(row("d", "i", time.Now(), idle))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("HandleRow blocked")
	}
	if n := testutil.ToFloat64(r.m.rowsDropped.WithLabelValues("interface_1m")); n != 96 {
		t.Fatalf("dropped %v rows, want 96", n)
	}
	// Rows for a view no model watches are ignored.
	other := row("d", "i", time.Now(), idle)
	other.View = "nobody"
	r.HandleRow(other)
	if n := testutil.ToFloat64(r.m.rows.WithLabelValues("nobody")); n != 0 {
		t.Fatalf("rows of an unwatched view counted: %v", n)
	}
}

func TestBadRowCounted(t *testing.T) {
	r := newRuntime(t, testConfig(), nil, t.TempDir())
	bad := row("sw9", "eth0", time.Now(), idle)
	bad.Values = bad.Values[:3]
	r.HandleRow(bad)
	r.HandleRow(row("sw9", "eth1", time.Now(), idle))
	testkit.Eventually(t, "len(r.rec.snapshot()) == 2", func() bool { return len(r.rec.snapshot()) == 2 })
	if n := testutil.ToFloat64(r.m.badRows.WithLabelValues("interface_1m", "sw9")); n != 1 {
		t.Fatalf("bad rows %v, want 1", n)
	}
}

// variant rewrites the congestion model: keep only the first n trees and
// optionally rename feature i, which the view does not have.
func variant(t testing.TB, n int, rename int) []byte {
	t.Helper()
	b, err := os.ReadFile(congestionModel)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	l := m["learner"].(map[string]any)
	gb := l["gradient_booster"].(map[string]any)["model"].(map[string]any)
	gb["trees"] = gb["trees"].([]any)[:n]
	gb["tree_info"] = gb["tree_info"].([]any)[:n]
	if rename >= 0 {
		l["feature_names"].([]any)[rename] = "interface_out_utilization__p99_1m"
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestShadowPromoteRollback(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srv := startNATS(t, -1, t.TempDir())
	nc := connect(t, srv.ClientURL())
	got := collect(t, nc, "netfeat.decisions.congestion.>")
	cfg := testConfig()
	r, err := New(cfg, connOf(nc), dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}

	vi, err := r.AddVersion(ctx, "congestion", "", variant(t, 5, -1))
	if err != nil || vi.Version != "v2" {
		t.Fatalf("AddVersion: %+v, %v", vi, err)
	}
	if err := r.SetShadow(ctx, "congestion", "v2"); err != nil {
		t.Fatal(err)
	}
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r.HandleRow(row("pe1", "Gi0/1", end, congested))
	ds := got.wait(t, 1)
	testkit.Eventually(t, "len(r.rec.snapshot()) == 3", func() bool { return len(r.rec.snapshot()) == 3 }) // live, shadow, rule
	if ds[0].ModelVersion != "v1" {
		t.Fatalf("published version %q, want live v1", ds[0].ModelVersion)
	}
	var shadow *schema.Decision
	for _, x := range r.rec.snapshot() {
		if x.shadow {
			shadow = &x.d
		}
	}
	if shadow == nil || shadow.ModelVersion != "v2" || shadow.Score == ds[0].Score {
		t.Fatalf("shadow decision %+v; live score %v", shadow, ds[0].Score)
	}

	// Promote the shadow: the next window is scored by v2, no restart.
	if err := r.Promote(ctx, "congestion", ""); err != nil {
		t.Fatal(err)
	}
	r.HandleRow(row("pe1", "Gi0/1", end.Add(time.Minute), congested))
	if ds = got.wait(t, 2); ds[1].ModelVersion != "v2" || ds[1].Score != shadow.Score {
		t.Fatalf("after promote: version %q score %v, want v2 %v", ds[1].ModelVersion, ds[1].Score, shadow.Score)
	}
	if err := r.Rollback(ctx, "congestion"); err != nil {
		t.Fatal(err)
	}
	r.HandleRow(row("pe1", "Gi0/1", end.Add(2*time.Minute), congested))
	if ds = got.wait(t, 3); ds[2].ModelVersion != "v1" {
		t.Fatalf("after rollback: version %q, want v1", ds[2].ModelVersion)
	}
	if err := r.Rollback(ctx, "congestion"); !errors.Is(err, ErrNoPrevious) {
		t.Fatalf("second rollback: %v, want ErrNoPrevious", err)
	}
	if err := r.Promote(ctx, "congestion", "v9"); !errors.Is(err, ErrUnknownVersion) {
		t.Fatalf("promote v9: %v", err)
	}
	if err := r.Promote(ctx, "out_util_high", "x"); !errors.Is(err, ErrRuleNotVersioned) {
		t.Fatalf("promote a rule: %v", err)
	}
	if _, err := r.AddVersion(ctx, "congestion", "v2", variant(t, 6, -1)); !errors.Is(err, ErrVersionExists) {
		t.Fatalf("re-adding v2 with other content: %v", err)
	}
	if _, err := r.AddVersion(ctx, "congestion", "", []byte(`{"learner": 1}`)); err == nil {
		t.Fatal("a broken model file was accepted")
	}
	if err := r.Promote(ctx, "congestion", "v2"); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// The registry survives a restart; the configured file is not
	// re-imported because its content is known.
	r2 := newRuntime(t, cfg, nc, dir)
	mi, err := r2.Model(ctx, "congestion")
	if err != nil {
		t.Fatal(err)
	}
	if mi.Live != "v2" || len(mi.Versions) != 2 || len(mi.History) != 1 || mi.History[0] != "v1" {
		t.Fatalf("after restart: %+v", mi)
	}
	for _, v := range mi.Versions {
		if _, err := os.Stat(dir + "/models/" + v.Path); err != nil || len(v.SHA256) != 64 {
			t.Fatalf("version %s: artifact %v, sha %q", v.Version, err, v.SHA256)
		}
	}
}

func TestFallback(t *testing.T) {
	ctx := context.Background()
	t.Run("previous version on error", func(t *testing.T) {
		r := newRuntime(t, testConfig(), nil, t.TempDir())
		// v2 reads a feature the view does not have.
		if _, err := r.AddVersion(ctx, "congestion", "", variant(t, 40, 3)); err != nil {
			t.Fatal(err)
		}
		if err := r.Promote(ctx, "congestion", "v2"); err != nil {
			t.Fatal(err)
		}
		r.HandleRow(row("pe1", "Gi0/1", time.Now(), congested))
		d := lastDecision(t, r, "congestion")
		if d.ModelVersion != "v1" || math.Abs(d.Score-goldenCongested) > 1e-6 ||
			!strings.HasPrefix(d.Fallback, "previous version v1: v2 failed:") || !strings.Contains(d.Fallback, "interface_out_utilization__p99_1m") {
			t.Fatalf("decision %q %v fallback %q", d.ModelVersion, d.Score, d.Fallback)
		}
		if n := testutil.ToFloat64(r.m.fallbacks.WithLabelValues("congestion", "error")); n != 1 {
			t.Fatalf("fallbacks %v", n)
		}
	})
	t.Run("rule on budget overrun", func(t *testing.T) {
		cfg := testConfig()
		cfg.Models[0].LatencyBudget = time.Nanosecond // every score overruns
		r := newRuntime(t, cfg, nil, t.TempDir())
		r.HandleRow(row("pe1", "Gi0/1", time.Now(), congested))
		d := lastDecision(t, r, "congestion")
		if d.ModelVersion != "rule:out_util_high" || d.Action != "reroute" || d.Score != 1 ||
			!strings.HasPrefix(d.Fallback, "rule out_util_high: v1 took") || !strings.Contains(d.Fallback, "over the 1ns budget") {
			t.Fatalf("decision %q action %q fallback %q", d.ModelVersion, d.Action, d.Fallback)
		}
	})
	t.Run("rule that does not fire", func(t *testing.T) {
		cfg := testConfig()
		cfg.Models[0].LatencyBudget = time.Nanosecond
		th := 0.01 // the rule's 0 must not reach a low model threshold
		cfg.Models[0].Threshold = &th
		r := newRuntime(t, cfg, nil, t.TempDir())
		r.HandleRow(row("pe1", "Gi0/1", time.Now(), idle))
		d := lastDecision(t, r, "congestion")
		if d.ModelVersion != "rule:out_util_high" || d.Action != "none" || d.Score != 0 {
			t.Fatalf("decision %q action %q score %v", d.ModelVersion, d.Action, d.Score)
		}
	})
	t.Run("no fallback drops the decision", func(t *testing.T) {
		cfg := testConfig()
		cfg.Models[0].FallbackRule = ""
		cfg.Models[0].LatencyBudget = time.Nanosecond
		r := newRuntime(t, cfg, nil, t.TempDir())
		end := time.Now()
		r.HandleRow(row("pe1", "Gi0/1", end, congested))
		// A second row of the same entity goes through the same worker
		// after the first: once its rule decision is recorded, the first
		// row is done with, whatever it decided.
		r.HandleRow(row("pe1", "Gi0/1", end.Add(time.Minute), congested))
		testkit.Eventually(t, "the rule's own decisions on both rows", func() bool {
			n := 0
			for _, x := range r.rec.snapshot() {
				if x.d.Model == "out_util_high" {
					n++
				}
			}
			return n == 2
		})
		for _, x := range r.rec.snapshot() {
			if x.d.Model == "congestion" {
				t.Fatalf("decision without a fallback: %+v", x.d)
			}
		}
	})
}

func lastDecision(t testing.TB, r *Runtime, model string) schema.Decision {
	t.Helper()
	var d *schema.Decision
	testkit.Eventually(t, "a live decision of "+model, func() bool {
		for _, x := range r.rec.snapshot() {
			if x.d.Model == model && !x.shadow {
				d = &x.d
			}
		}
		return d != nil
	})
	return *d
}

func TestDetectorModel(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Models = []ModelConfig{{
		Name: "drops_anomaly", Kind: KindEWMA, View: "interface_1m",
		Features: []string{"interface_out_discards_ps__mean_1m", "interface_in_errors_ps__mean_1m"},
		Params:   DetectorParams{Alpha: 0.2, Warmup: 10},
	}}
	r := newRuntime(t, cfg, nil, t.TempDir())
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range 30 {
		v := map[string]float64{"interface_out_discards_ps__mean_1m": 1 + 0.1*float64(i%3), "interface_in_errors_ps__mean_1m": 0.5}
		r.HandleRow(row("pe1", "Gi0/1", start.Add(time.Duration(i)*time.Minute), v))
	}
	r.HandleRow(row("pe1", "Gi0/1", start.Add(31*time.Minute), map[string]float64{
		"interface_out_discards_ps__mean_1m": 50, "interface_in_errors_ps__mean_1m": 0.5}))
	testkit.Eventually(t, "len(r.rec.snapshot()) == 31", func() bool { return len(r.rec.snapshot()) == 31 })
	snap := r.rec.snapshot()
	for i, x := range snap[:30] {
		if x.d.Action != "none" {
			t.Fatalf("window %d: action %q score %v: %s", i, x.d.Action, x.d.Score, x.d.Reason)
		}
	}
	last := snap[30].d
	if last.Action != "alert" || last.Score < 10 || !strings.Contains(last.Reason, "interface_out_discards_ps__mean_1m") {
		t.Fatalf("spike: action %q score %v reason %q", last.Action, last.Score, last.Reason)
	}
	// The detector version is the configuration's parameters, in the
	// registry like any model.
	mi, err := r.Model(context.Background(), "drops_anomaly")
	if err != nil || mi.Live != "v1" || mi.Versions[0].Source != "config" {
		t.Fatalf("registry: %+v %v", mi, err)
	}
}

func TestDecisionRecords(t *testing.T) {
	r := newRuntime(t, testConfig(), nil, t.TempDir())
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	nanRow := row("pe2", "Gi0/2", end, congested)
	nanRow.Values[0] = math.NaN()
	r.HandleRow(nanRow)
	testkit.Eventually(t, "len(r.rec.snapshot()) == 2", func() bool { return len(r.rec.snapshot()) == 2 })
	recs := r.DecisionRecords()
	defer func() {
		for _, rec := range recs {
			rec.Release()
		}
	}()
	if len(recs) != 1 || !recs[0].Schema().Equal(schema.DecisionsSchema) || recs[0].NumRows() != 2 {
		t.Fatalf("records: %d, schema %v", len(recs), recs[0].Schema())
	}
	rec := recs[0]
	models := rec.Column(5).(*array.String)
	feats := rec.Column(15).(*array.String)
	for i := range int(rec.NumRows()) {
		if rec.Column(2).(*array.String).Value(i) != "pe2" || rec.Column(7).(*array.Boolean).Value(i) {
			t.Fatalf("row %d: device/shadow wrong", i)
		}
		var f map[string]float64
		if err := json.Unmarshal([]byte(feats.Value(i)), &f); err != nil {
			t.Fatalf("features JSON %q: %v", feats.Value(i), err)
		}
		if models.Value(i) == "congestion" {
			if _, has := f["interface_in_utilization__mean_1m"]; has || len(f) != 7 {
				t.Fatalf("NaN feature not left out: %v", f)
			}
		}
	}
}

// TestTreeKinds scores the same congested window with the shipped XGBoost
// model and its ONNX conversion: both must give python3-xgboost's score.
// The ONNX perceptron (a scikit-learn pipeline, inference/onnx/testdata)
// must give what package onnx computes for the window's features in the
// model's own order, and call the window congested.
func TestTreeKinds(t *testing.T) {
	cases := []struct {
		name string
		kind Kind
		file string
		want float64
	}{
		{"xgboost", KindXGBoost, congestionModel, goldenCongested},
		{"onnx trees", KindONNX, "onnx/testdata/congestion.onnx", goldenCongested},
		{"onnx perceptron", KindONNX, "onnx/testdata/mlp.onnx", onnxScore(t, "onnx/testdata/mlp.onnx", congested)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Models = []ModelConfig{{Name: "congestion", Kind: c.kind, View: "interface_1m", File: c.file, Action: "reroute"}}
			dir := t.TempDir()
			r := newRuntime(t, cfg, nil, dir)
			r.HandleRow(row("pe1", "Gi0/1", time.Now(), congested))
			d := lastDecision(t, r, "congestion")
			if math.Abs(d.Score-c.want) > 1e-5 || d.Action != "reroute" || d.Fallback != "" {
				t.Fatalf("score %v action %q fallback %q", d.Score, d.Action, d.Fallback)
			}
			mi, err := r.Model(context.Background(), "congestion")
			if err != nil || mi.Versions[0].Kind != c.kind {
				t.Fatalf("registry: %+v %v", mi, err)
			}
			if _, err := os.Stat(dir + "/models/" + mi.Versions[0].Path); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestONNXSwapToNetwork registers the ONNX perceptron as a new version of
// a model whose live version is the ONNX tree ensemble, scores it in
// shadow, promotes it without a restart, then rolls back: each window is
// scored by the version that was live, and a bad file is refused.
func TestONNXSwapToNetwork(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Models = []ModelConfig{{Name: "congestion", Kind: KindONNX, View: "interface_1m", File: "onnx/testdata/congestion.onnx", Action: "reroute"}}
	r := newRuntime(t, cfg, nil, t.TempDir())
	mlp, err := os.ReadFile("onnx/testdata/mlp.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.AddVersion(ctx, "congestion", "", mlp[:len(mlp)/2]); err == nil {
		t.Fatal("a truncated ONNX file was accepted")
	}
	vi, err := r.AddVersion(ctx, "congestion", "", mlp)
	if err != nil || vi.Version != "v2" {
		t.Fatalf("AddVersion: %+v, %v", vi, err)
	}
	if err := r.SetShadow(ctx, "congestion", "v2"); err != nil {
		t.Fatal(err)
	}
	net := onnxScore(t, "onnx/testdata/mlp.onnx", congested)
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r.HandleRow(row("pe1", "Gi0/1", end, congested))
	testkit.Eventually(t, "len(r.rec.snapshot()) == 2", func() bool { return len(r.rec.snapshot()) == 2 })
	for _, x := range r.rec.snapshot() {
		want := goldenCongested
		if x.shadow {
			want = net
		}
		if math.Abs(x.d.Score-want) > 1e-5 {
			t.Fatalf("shadow %v: score %v, want %v", x.shadow, x.d.Score, want)
		}
	}
	steps := []struct {
		change  func() error
		version string
		score   float64
	}{
		{func() error { return r.Promote(ctx, "congestion", "") }, "v2", net},
		{func() error { return r.Rollback(ctx, "congestion") }, "v1", goldenCongested},
	}
	for i, st := range steps {
		if err := st.change(); err != nil {
			t.Fatal(err)
		}
		r.HandleRow(row("pe1", "Gi0/1", end.Add(time.Duration(i+1)*time.Minute), congested))
		testkit.Eventually(t, "len(r.rec.snapshot()) == 3+i", func() bool { return len(r.rec.snapshot()) == 3+i })
		d := r.rec.snapshot()[2+i].d
		if d.ModelVersion != st.version || math.Abs(d.Score-st.score) > 1e-5 || d.Action != "reroute" {
			t.Fatalf("step %d: version %s score %v action %s, want %s %v", i, d.ModelVersion, d.Score, d.Action, st.version, st.score)
		}
	}
}

// onnxScore is package onnx's score of vec (absent features 0, as row
// makes them) with the model in file.
func onnxScore(t *testing.T, file string, vec map[string]float64) float64 {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnx.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float64, m.NumFeature())
	for i, f := range m.FeatureNames() {
		x[i] = vec[f]
	}
	return m.Predict(x)
}

// TestHotSwapUnderLoad promotes and rolls back while rows are scored; with
// -race it checks that the swap is safe, and every decision names a
// version that was live.
func TestHotSwapUnderLoad(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	cfg.Workers = 2
	r := newRuntime(t, cfg, nil, t.TempDir())
	if _, err := r.AddVersion(ctx, "congestion", "", variant(t, 5, -1)); err != nil {
		t.Fatal(err)
	}
	if err := r.SetShadow(ctx, "congestion", "v2"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		end := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		for i := range 2000 {
			r.HandleRow(row(fmt.Sprintf("pe%d", i%7), "Gi0/1", end.Add(time.Duration(i)*time.Second), congested))
			if i%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	for i := 0; ; i++ {
		select {
		case <-done:
			for _, x := range r.rec.snapshot() {
				if x.d.Model == "congestion" && x.d.ModelVersion != "v1" && x.d.ModelVersion != "v2" {
					t.Fatalf("decision by %q", x.d.ModelVersion)
				}
			}
			return
		default:
		}
		var err error
		if i%2 == 0 {
			err = r.Promote(ctx, "congestion", "v2")
		} else {
			err = r.Rollback(ctx, "congestion")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestLifecycle(t *testing.T) {
	dir := t.TempDir()
	r, err := New(testConfig(), nil, dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name() != "inference" || r.Ready() == nil {
		t.Fatalf("before Start: name %q ready %v", r.Name(), r.Ready())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Start(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with a cancelled context: %v", err)
	}
	if r.Ready() == nil {
		t.Fatal("ready after a failed start")
	}
	// The failed Start released Badger: a new runtime opens the same directory.
	r2 := newRuntime(t, testConfig(), nil, dir)
	if err := r2.Ready(); err != nil {
		t.Fatal(err)
	}
	if err := r2.Start(context.Background()); err == nil {
		t.Fatal("second Start accepted")
	}
}
