package inference

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/learning"
	"github.com/netfeat/netfeat/schema"
)

// windowGen draws interface_1m feature vectors: utilisations uniform in
// [lo, lo+0.5] (shift moves the outbound one), discards when the outbound
// utilisation is high. The label is whether the window is congested.
type windowGen struct{ rng *rand.Rand }

func (g windowGen) next(shift float64) (map[string]float64, float64) {
	in := g.rng.Float64() * 0.9
	out := math.Min(1, g.rng.Float64()*0.9+shift)
	disc := 0.0
	y := 0.0
	if out > 0.75 {
		disc = g.rng.Float64() * 1000
		if g.rng.Float64() < 0.9 {
			y = 1
		}
	}
	return map[string]float64{
		"interface_in_utilization__mean_1m": in, "interface_in_utilization__max_1m": math.Min(1, in+0.05),
		"interface_out_utilization__mean_1m": out, "interface_out_utilization__max_1m": math.Min(1, out+0.05),
		"interface_out_discards_ps__mean_1m": disc, "interface_out_discards_ps__max_1m": disc * 2,
	}, y
}

// trainLogistic trains a logistic model on n generated windows and writes
// its file into dir.
func trainLogistic(t *testing.T, dir string, n int) (*learning.Logistic, string) {
	t.Helper()
	g := windowGen{rand.New(rand.NewPCG(1, 2))}
	ds := &learning.Dataset{Names: congestionNames}
	for range n {
		v, y := g.next(0)
		r := row("d", "c", time.Now(), v)
		if err := ds.Add(r.Values, y); err != nil {
			t.Fatal(err)
		}
	}
	m, err := learning.Train(ds, learning.Options{L2: 1e-3})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "logistic.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return m, path
}

func TestLogisticKind(t *testing.T) {
	ctx := context.Background()
	m, path := trainLogistic(t, t.TempDir(), 5000)
	cfg := DefaultConfig()
	cfg.Models = []ModelConfig{{Name: "congestion", Kind: KindLogistic, View: "interface_1m", File: path, Action: "reroute"}}
	if err := CheckModelFile(KindLogistic, path, nil, nil); err != nil {
		t.Fatalf("CheckModelFile: %v", err)
	}
	r := newRuntime(t, cfg, nil, t.TempDir())
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, vec := range []map[string]float64{congested, idle} {
		rw := row("pe1", "Gi0/1", end.Add(time.Duration(i)*time.Minute), vec)
		want := m.Predict(rw.Values)
		r.HandleRow(rw)
		testkit.Eventually(t, "decision recorded", func() bool { return len(r.rec.snapshot()) == i+1 })
		d := r.rec.snapshot()[i].d
		if d.Score != want || d.ModelVersion != "v1" {
			t.Fatalf("row %d: score %v version %s, want %v v1", i, d.Score, d.ModelVersion, want)
		}
		if firing := want >= 0.5; (d.State == schema.StateFiring) != firing {
			t.Fatalf("row %d: state %s for score %v", i, d.State, d.Score)
		}
	}
	if goldenCongested := m.Predict(row("", "", end, congested).Values); goldenCongested < 0.5 {
		t.Errorf("the trained model does not call the congested window congested: %v", goldenCongested)
	}
	mi, err := r.Model(ctx, "congestion")
	if err != nil || mi.Kind != KindLogistic || mi.Versions[0].Profile == nil || len(mi.Versions[0].Profile.Features) != len(congestionNames) {
		t.Fatalf("Model: %+v, %v", mi, err)
	}
	// A broken file is refused at upload with ErrInvalidModel (HTTP 400).
	b, _ := os.ReadFile(path)
	bad := strings.Replace(string(b), `"format": "netfeat-logistic"`, `"format": "other"`, 1)
	if _, err := r.AddVersion(ctx, "congestion", "", []byte(bad)); !errors.Is(err, ErrInvalidModel) {
		t.Fatalf("broken logistic file: %v", err)
	}
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/models/congestion/versions", "application/json", strings.NewReader(bad))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("upload of a broken file: HTTP %d", resp.StatusCode)
	}
	// VersionScorer scores like the runtime.
	score, err := r.VersionScorer(ctx, "congestion", "v1", congestionNames)
	if err != nil {
		t.Fatal(err)
	}
	x := row("", "", end, congested).Values
	if got, err := score(x); err != nil || got != m.Predict(x) {
		t.Fatalf("VersionScorer: %v, %v; want %v", got, err, m.Predict(x))
	}
}

func TestDriftDecisions(t *testing.T) {
	ns := startNATS(t, -1, t.TempDir())
	nc := connect(t, ns.ClientURL())
	_, path := trainLogistic(t, t.TempDir(), 20000)
	cfg := DefaultConfig()
	cfg.Drift = DriftConfig{Window: 400, Every: 50}
	cfg.Models = []ModelConfig{{Name: "congestion", Kind: KindLogistic, View: "interface_1m", File: path}}
	var (
		mu     sync.Mutex
		drifts []DriftEvent
	)
	events := func() []DriftEvent {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(drifts)
	}
	r, err := New(cfg, connOf(nc), t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.SetDriftHandler(func(ev DriftEvent) {
		mu.Lock()
		drifts = append(drifts, ev)
		mu.Unlock()
	})
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	col := collect(t, nc, schema.DecisionSubject("congestion", ""))
	g := windowGen{rand.New(rand.NewPCG(7, 8))}
	end := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	feed := func(n int, shift float64) {
		for range n {
			v, _ := g.next(shift)
			end = end.Add(5 * time.Second)
			r.HandleRow(row("pe1", "Gi0/1", end, v))
		}
	}
	psi := func(f string) float64 {
		return testutil.ToFloat64(r.m.psi.WithLabelValues("congestion", "v1", f))
	}
	const outMean = "interface_out_utilization__mean_1m"
	// The training distribution: evaluated, nothing drifts.
	feed(800, 0)
	testkit.Eventually(t, "800 windows scored", func() bool { return len(r.Drift()) >= 8*len(congestionNames) })
	for _, p := range r.Drift() {
		if p.Drifting || p.PSI > 0.2 {
			t.Fatalf("drift on the training distribution: %+v", p)
		}
	}
	// Outbound utilisation moves up by 0.5: its features drift, once.
	feed(800, 0.5)
	testkit.Eventually(t, "PSI of the shifted feature > 0.2", func() bool { return psi(outMean) > 0.2 })
	// Back to normal: the drift resolves.
	feed(800, 0)
	testkit.Eventually(t, "drift resolved", func() bool {
		return slices.ContainsFunc(events(), func(ev DriftEvent) bool { return ev.Feature == outMean && !ev.Drifting })
	})
	// Every window is scored before Stop returns; the events are complete
	// once all 2,400 windows were evaluated.
	testkit.Eventually(t, "2400 windows scored", func() bool { return r.Drift()[len(r.Drift())-1].End.Equal(end) })
	evs := events()
	fired, resolved := map[string]int{}, map[string]int{}
	for _, ev := range evs {
		if ev.Drifting {
			fired[ev.Feature]++
		} else {
			resolved[ev.Feature]++
		}
	}
	if fired[outMean] != 1 || resolved[outMean] != 1 {
		t.Fatalf("%s: fired %d, resolved %d times; want 1 and 1 (events %+v)", outMean, fired[outMean], resolved[outMean], evs)
	}
	if fired["interface_in_utilization__mean_1m"] != 0 {
		t.Fatalf("an unshifted feature drifted: %+v", evs)
	}
	ds := col.wait(t, len(evs))
	for _, d := range ds {
		if d.Action != ActionDrift || d.Trigger != schema.TriggerDrift || d.Entity.Device != "" || !d.Transition {
			t.Fatalf("drift decision: %+v", d)
		}
	}
	if ds[0].State != schema.StateFiring || ds[0].Score <= 0.2 || !strings.Contains(ds[0].Reason, "PSI of") {
		t.Fatalf("first drift decision: %+v", ds[0])
	}
	recs := r.DriftRecords()
	defer recs[0].Release()
	if int(recs[0].NumRows()) != len(r.Drift()) || recs[0].Schema() != schema.DriftSchema {
		t.Fatalf("drift records: %d rows", recs[0].NumRows())
	}
}

func TestFeedback(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := testConfig()
	cfg.Models = nil
	r, err := New(cfg, nil, dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, u := range []float64{0.95, 0.97, 0.5} {
		r.HandleRow(row("pe1", "Gi0/1", end.Add(time.Duration(i)*time.Minute), map[string]float64{"interface_out_utilization__mean_1m": u}))
		r.HandleRow(row("pe2", "Gi0/2", end.Add(time.Duration(i)*time.Minute), map[string]float64{"interface_out_utilization__mean_1m": u + 0.01}))
	}
	testkit.Eventually(t, "six decisions", func() bool { return len(r.rec.snapshot()) == 6 })
	acts := r.Actions()
	if len(acts) != 2 {
		t.Fatalf("actions: %+v", acts)
	}
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	post := func(fp, body string) (int, string) {
		resp, err := http.Post(srv.URL+"/v1/actions/"+fp+"/feedback", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		name, fp, body string
		code           int
		want           string
	}{
		{"true positive", acts[0].Fingerprint, `{"label":"true_positive","note":"confirmed by NOC"}`, 201, `"label":"true_positive"`},
		{"false positive", acts[1].Fingerprint, `{"label":"false_positive"}`, 201, `"model":"out_util_high"`},
		{"unknown action", "0123456789abcdef", `{"label":"true_positive"}`, 404, "unknown action"},
		{"bad label", acts[0].Fingerprint, `{"label":"maybe"}`, 400, `maybe`},
		{"unknown field", acts[0].Fingerprint, `{"label":"true_positive","x":1}`, 400, "unknown field"},
		{"not JSON", acts[0].Fingerprint, `label=true_positive`, 400, "body: want"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(tc.fp, tc.body)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Fatalf("HTTP %d %s, want %d and %q", code, body, tc.code, tc.want)
			}
		})
	}
	if n := testutil.ToFloat64(r.m.feedbackRefused); n != 4 {
		t.Errorf("feedback_refused_total = %v, want 4", n)
	}
	ds, err := r.LabelledWindows(ctx, "out_util_high", []string{"interface_out_utilization__mean_1m"})
	if err != nil {
		t.Fatal(err)
	}
	// Each action fired on its first two windows and was resolved by its
	// third: its two firing windows are labelled.
	labels := map[float64]int{}
	for i := range ds.Len() {
		labels[ds.Y[i]]++
	}
	if ds.Len() != 4 || labels[1] != 2 || labels[0] != 2 {
		t.Fatalf("labelled windows: %d rows, labels %v", ds.Len(), labels)
	}
	resp, err := http.Get(srv.URL + "/v1/feedback?format=labels")
	if err != nil {
		t.Fatal(err)
	}
	csvb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if lines := strings.Split(strings.TrimSpace(string(csvb)), "\n"); len(lines) != 5 || lines[0] != "ts,device,component,label,model,fingerprint" {
		t.Fatalf("labels CSV:\n%s", csvb)
	}
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// Stored durably: a new runtime on the same directory reads it back.
	r2 := newRuntime(t, cfg, nil, dir)
	fbs, err := r2.Feedbacks(ctx)
	if err != nil || len(fbs) != 2 || fbs[0].Note != "confirmed by NOC" {
		b, _ := json.Marshal(fbs)
		t.Fatalf("after restart: %s, %v", b, err)
	}
}

// TestDetectorBaseline uploads an ewma version whose spec carries a
// trained baseline: it scores an entity's first window against the
// baseline instead of learning for warmup windows.
func TestDetectorBaseline(t *testing.T) {
	ctx := context.Background()
	const f = "interface_out_utilization__mean_1m"
	cfg := DefaultConfig()
	cfg.Models = []ModelConfig{{Name: "util", Kind: KindEWMA, View: "interface_1m", Features: []string{f}}}
	r := newRuntime(t, cfg, nil, t.TempDir())
	spec := `{"features":["` + f + `"],"params":{"alpha":0.1},"baseline":{"features":[{"name":"` + f + `","mean":0.3,"var":0.01}]}}`
	vi, err := r.AddVersion(ctx, "util", "", []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Promote(ctx, "util", vi.Version); err != nil {
		t.Fatal(err)
	}
	r.HandleRow(row("pe1", "Gi0/1", time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), map[string]float64{f: 0.9}))
	testkit.Eventually(t, "decision", func() bool { return len(r.rec.snapshot()) == 1 })
	// (0.9 − 0.3) / √0.01 = 6σ.
	if d := r.rec.snapshot()[0].d; math.Abs(d.Score-6) > 1e-9 || d.State != schema.StateFiring {
		t.Fatalf("first window: score %v state %s, want 6σ firing", d.Score, d.State)
	}
	for _, bad := range []string{
		`{"features":["` + f + `"],"baseline":{"features":[{"name":"other","mean":0,"var":1}]}}`,
		`{"features":["` + f + `"],"baseline":{"features":[{"name":"` + f + `","mean":0,"var":-1}]}}`,
	} {
		if _, err := r.AddVersion(ctx, "util", "", []byte(bad)); !errors.Is(err, ErrInvalidModel) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
