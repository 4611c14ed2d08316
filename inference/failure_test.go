package inference

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

// panicScorer fails the way leaves did on issue #20's files: an index out
// of range in the middle of a prediction.
type panicScorer struct{}

func (panicScorer) score(row *schema.FeatureRow, res *result) error {
	leaves := []float64{0.5}
	res.score = leaves[len(row.Values)/4] // 8 values: index 2
	return nil
}

// slowScorer takes d, then scores with sc.
type slowScorer struct {
	d  time.Duration
	sc scorer
}

func (s slowScorer) score(row *schema.FeatureRow, res *result) error {
	time.Sleep(s.d)
	return s.sc.score(row, res)
}

// inject makes version ver of model score with sc, as if its file had
// loaded into it: the rest of the runtime (registry, live set, fallback,
// persistence) is the real one.
func inject(t *testing.T, r *Runtime, model, ver string, sc scorer) {
	t.Helper()
	r.regM.Lock()
	defer r.regM.Unlock()
	s := r.slots[model]
	v, ok := s.loaded[ver]
	if !ok {
		t.Fatalf("%s %s not loaded", model, ver)
	}
	s.loaded[ver] = &version{info: v.info, sc: sc}
	st, err := r.reg.state(model)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.apply(s, st); err != nil {
		t.Fatal(err)
	}
}

// startAt starts a runtime on dir; stop stops it and fails the test when
// Stop does not return within 5 s.
func startAt(t *testing.T, cfg Config, nc *nats.Conn, dir string) (r *Runtime, stop func()) {
	t.Helper()
	r, err := New(cfg, connOf(nc), dir, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- r.Stop(ctx) }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Stop: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Stop did not return")
		}
	}
	t.Cleanup(stop)
	return r, stop
}

// nextDecision sends a congested row for a new window and returns the
// live congestion decision published on NATS for it.
func nextDecision(t *testing.T, r *Runtime, got *collector, n *int, end time.Time) schema.Decision {
	t.Helper()
	r.HandleRow(row("pe1", "Gi0/1", end, congested))
	*n++
	ds := got.wait(t, *n)
	return ds[*n-1]
}

// TestPanickingVersionIsDisabled is issue #20's crash: a live version
// whose scorer panics. The runtime keeps running, the previous version
// decides, the version is counted and recorded as failed, it is not scored
// again (not after a restart either), Stop works, and an operator can
// promote it again.
func TestPanickingVersionIsDisabled(t *testing.T) {
	ctx := context.Background()
	srv := startNATS(t, -1, t.TempDir())
	nc := connect(t, srv.ClientURL())
	got := collect(t, nc, "netfeat.decisions.congestion.>")
	dir := t.TempDir()
	r, stop := startAt(t, testConfig(), nc, dir)
	if _, err := r.AddVersion(ctx, "congestion", "v2", variant(t, 5, -1)); err != nil {
		t.Fatal(err)
	}
	if err := r.Promote(ctx, "congestion", "v2"); err != nil {
		t.Fatal(err)
	}
	inject(t, r, "congestion", "v2", panicScorer{})

	n := 0
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d := nextDecision(t, r, got, &n, end)
	if d.ModelVersion != "v1" || d.Action != "reroute" ||
		!strings.HasPrefix(d.Fallback, "previous version v1: v2 failed: scorer panicked: runtime error: index out of range [2] with length 1") {
		t.Fatalf("first decision: version %q action %q fallback %q", d.ModelVersion, d.Action, d.Fallback)
	}
	d = nextDecision(t, r, got, &n, end.Add(time.Minute))
	if d.ModelVersion != "v1" || !strings.HasPrefix(d.Fallback, "previous version v1: v2 disabled: ") ||
		!strings.Contains(d.Fallback, "panicked while scoring") {
		t.Fatalf("second decision: version %q fallback %q", d.ModelVersion, d.Fallback)
	}
	if p := testutil.ToFloat64(r.m.scorePanics.WithLabelValues("congestion", "v2")); p != 1 {
		t.Fatalf("score_panics_total %v, want 1 (a failed version is not scored again)", p)
	}
	if f := testutil.ToFloat64(r.m.versionsFailed.WithLabelValues("congestion", "v2", "panic")); f != 1 {
		t.Fatalf("versions_failed_total %v", f)
	}
	if f := testutil.ToFloat64(r.m.fallbacks.WithLabelValues("congestion", "failed")); f != 1 {
		t.Fatalf("fallbacks_total{reason=failed} %v", f)
	}
	mi, err := r.Model(ctx, "congestion")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(mi.Failed["v2"], "panicked while scoring") {
		t.Fatalf("registry failed %v", mi.Failed)
	}
	stop()

	// Restart on the same data directory: v2 is still failed and is not
	// even loaded; v1 decides from the first window.
	r, stop = startAt(t, testConfig(), nc, dir)
	if live := r.slots["congestion"].set.Load().live; !live.failed.Load() || live.sc != nil {
		t.Fatalf("after restart the live set scores %s (failed %v)", live.info.Version, live.failed.Load())
	}
	d = nextDecision(t, r, got, &n, end.Add(2*time.Minute))
	if d.ModelVersion != "v1" || !strings.HasPrefix(d.Fallback, "previous version v1: v2 disabled: ") {
		t.Fatalf("after restart: version %q fallback %q", d.ModelVersion, d.Fallback)
	}
	// The operator promotes it again, by name: it scores (the stored
	// artifact, which is a sound model).
	if err := r.Promote(ctx, "congestion", "v2"); err != nil {
		t.Fatal(err)
	}
	d = nextDecision(t, r, got, &n, end.Add(3*time.Minute))
	if d.ModelVersion != "v2" || d.Fallback != "" {
		t.Fatalf("after promote: version %q fallback %q", d.ModelVersion, d.Fallback)
	}
	if mi, _ := r.Model(ctx, "congestion"); len(mi.Failed) != 0 {
		t.Fatalf("failed after promote: %v", mi.Failed)
	}
	stop()
}

// TestPanickingShadowIsDisabled is issue #20's restart loop: a shadow
// version that panics. Live decisions go on; the shadow stops being scored
// and is still not scored after a restart.
func TestPanickingShadowIsDisabled(t *testing.T) {
	ctx := context.Background()
	srv := startNATS(t, -1, t.TempDir())
	nc := connect(t, srv.ClientURL())
	got := collect(t, nc, "netfeat.decisions.congestion.>")
	dir := t.TempDir()
	r, stop := startAt(t, testConfig(), nc, dir)
	if _, err := r.AddVersion(ctx, "congestion", "v2", variant(t, 5, -1)); err != nil {
		t.Fatal(err)
	}
	if err := r.SetShadow(ctx, "congestion", "v2"); err != nil {
		t.Fatal(err)
	}
	inject(t, r, "congestion", "v2", panicScorer{})
	n := 0
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		if d := nextDecision(t, r, got, &n, end.Add(time.Duration(i)*time.Minute)); d.ModelVersion != "v1" || d.Fallback != "" {
			t.Fatalf("live decision %d: version %q fallback %q", i, d.ModelVersion, d.Fallback)
		}
	}
	if p := testutil.ToFloat64(r.m.scorePanics.WithLabelValues("congestion", "v2")); p != 1 {
		t.Fatalf("score_panics_total %v, want 1", p)
	}
	if err := r.Promote(ctx, "congestion", ""); err == nil || !strings.Contains(err.Error(), "version failed") {
		t.Fatalf("promoting the failed shadow without its name: %v", err)
	}
	stop()

	r, stop = startAt(t, testConfig(), nc, dir)
	if sh := r.slots["congestion"].set.Load().shadow; sh != nil {
		t.Fatalf("failed shadow %s scores after a restart", sh.info.Version)
	}
	d := nextDecision(t, r, got, &n, end.Add(5*time.Minute))
	if d.ModelVersion != "v1" {
		t.Fatalf("after restart: version %q", d.ModelVersion)
	}
	for _, x := range r.rec.snapshot() {
		if x.shadow {
			t.Fatalf("shadow decision after restart: %+v", x.d)
		}
	}
	if mi, _ := r.Model(ctx, "congestion"); mi.Shadow != "v2" || mi.Failed["v2"] == "" {
		t.Fatalf("registry after restart: %+v", mi)
	}
	stop()
}

// TestOverBudgetVersionIsDisabled: a version that overruns its latency
// budget maxOverruns times in a row is disabled like one that panics.
func TestOverBudgetVersionIsDisabled(t *testing.T) {
	ctx := context.Background()
	srv := startNATS(t, -1, t.TempDir())
	nc := connect(t, srv.ClientURL())
	got := collect(t, nc, "netfeat.decisions.congestion.>")
	cfg := testConfig()
	cfg.Models[0].LatencyBudget = 20 * time.Millisecond
	r, _ := startAt(t, cfg, nc, t.TempDir())
	if _, err := r.AddVersion(ctx, "congestion", "v2", variant(t, 5, -1)); err != nil {
		t.Fatal(err)
	}
	if err := r.Promote(ctx, "congestion", "v2"); err != nil {
		t.Fatal(err)
	}
	real := r.slots["congestion"].loaded["v2"].sc
	inject(t, r, "congestion", "v2", slowScorer{d: 60 * time.Millisecond, sc: real})
	n := 0
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range maxOverruns {
		d := nextDecision(t, r, got, &n, end.Add(time.Duration(i)*time.Minute))
		if d.ModelVersion != "v1" || !strings.Contains(d.Fallback, "over the 20ms budget") {
			t.Fatalf("overrun %d: version %q fallback %q", i, d.ModelVersion, d.Fallback)
		}
	}
	d := nextDecision(t, r, got, &n, end.Add(time.Hour))
	if d.ModelVersion != "v1" || !strings.Contains(d.Fallback, "v2 disabled: ") ||
		!strings.Contains(d.Fallback, "3 consecutive scores over the 20ms latency budget") {
		t.Fatalf("after %d overruns: version %q fallback %q", maxOverruns, d.ModelVersion, d.Fallback)
	}
	if f := testutil.ToFloat64(r.m.versionsFailed.WithLabelValues("congestion", "v2", "budget")); f != 1 {
		t.Fatalf("versions_failed_total{reason=budget} %v", f)
	}
}

// hangScorer never returns until release is closed: a loop Go cannot
// pre-empt.
type hangScorer struct{ release chan struct{} }

func (h hangScorer) score(*schema.FeatureRow, *result) error {
	<-h.release
	return nil
}

// TestStopWithHungScore: issue #20's SIGTERM that did not end the
// process. A score that never returns cannot be stopped, but Stop returns
// (ErrScoreStuck) after its context and a grace period, records the
// version as failed, and the next start on the same data directory does
// not score it.
func TestStopWithHungScore(t *testing.T) {
	ctx := context.Background()
	srv := startNATS(t, -1, t.TempDir())
	nc := connect(t, srv.ClientURL())
	dir := t.TempDir()
	r, err := New(testConfig(), connOf(nc), dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.AddVersion(ctx, "congestion", "v2", variant(t, 5, -1)); err != nil {
		t.Fatal(err)
	}
	if err := r.Promote(ctx, "congestion", "v2"); err != nil {
		t.Fatal(err)
	}
	hang := hangScorer{release: make(chan struct{})}
	inject(t, r, "congestion", "v2", hang)
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r.HandleRow(row("pe1", "Gi0/1", end, congested))
	testkit.Eventually(t, `r.slots["congestion"].set.Load().live.inScore.Load() == 1`, func() bool { return r.slots["congestion"].set.Load().live.inScore.Load() == 1 })

	stopCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = r.Stop(stopCtx)
	if !errors.Is(err, ErrScoreStuck) || !strings.Contains(err.Error(), "congestion v2") {
		t.Fatalf("Stop: %v, want ErrScoreStuck naming congestion v2", err)
	}
	if took := time.Since(start); took > stuckGrace+2*time.Second {
		t.Fatalf("Stop took %v", took)
	}
	mi, err := r.Model(ctx, "congestion")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(mi.Failed["v2"], "did not return") {
		t.Fatalf("registry failed %v", mi.Failed)
	}
	// The score returns after all: the shutdown completes.
	close(hang.release)
	select {
	case <-r.released:
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown did not complete after the score returned")
	}

	// The hung row's late decision may still be on its way to the
	// collector: read the new runtime's own record instead.
	r, stop := startAt(t, testConfig(), nc, dir)
	r.HandleRow(row("pe1", "Gi0/1", end.Add(time.Minute), congested))
	d := lastDecision(t, r, "congestion")
	if d.ModelVersion != "v1" || !strings.Contains(d.Fallback, "v2 disabled: ") {
		t.Fatalf("after restart: version %q fallback %q", d.ModelVersion, d.Fallback)
	}
	stop()
}
