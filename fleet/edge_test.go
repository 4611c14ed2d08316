package fleet

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/internal/fleettest"
)

// TestEdgeLimits: an edge cut off from its hub keeps publishing into its
// streams; when a stream nears its limits the edge says so, and what the
// limits drop (discard old) or refuse (discard new) is counted.
func TestEdgeLimits(t *testing.T) {
	link := fleettest.NewLink(t, nil) // a WAN that leads nowhere
	link.Cut()
	es := fleettest.StartEdge(t, "lyon", t.TempDir(), link.URL())
	cfg := edgeTestConfig("lyon")
	cfg.CheckInterval = time.Hour // the test calls CheckLimits itself
	cfg.Windows = StreamLimits{MaxMsgs: 20, Discard: DiscardOld}
	cfg.Decisions = StreamLimits{MaxMsgs: 5, Discard: DiscardNew}
	reg := prometheus.NewRegistry()
	e, err := NewEdge(cfg, es.Connect(t), reg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer e.Stop(ctx)

	for i := range 15 {
		if err := e.PublishWindow(ctx, testWindow(i)); err != nil {
			t.Fatal(err)
		}
	}
	e.CheckLimits(ctx)
	win := EdgeStream(KindWindows)
	if got := testutil.ToFloat64(e.m.nearLimit.WithLabelValues(win)); got != 0 {
		t.Fatalf("near_limit after 15 of 20 messages = %v, want 0", got)
	}
	if got := testutil.ToFloat64(e.m.fill.WithLabelValues(win)); got != 0.75 {
		t.Fatalf("fill ratio = %v, want 0.75", got)
	}
	if err := e.PublishWindow(ctx, testWindow(15)); err != nil {
		t.Fatal(err)
	}
	e.CheckLimits(ctx)
	e.CheckLimits(ctx) // still near: counted once
	if got := testutil.ToFloat64(e.m.nearLimit.WithLabelValues(win)); got != 1 {
		t.Fatalf("near_limit after 16 of 20 messages = %v, want 1", got)
	}
	for i := 16; i < 26; i++ {
		if err := e.PublishWindow(ctx, testWindow(i)); err != nil {
			t.Fatal(err)
		}
	}
	e.CheckLimits(ctx)
	if got := testutil.ToFloat64(e.m.dropped.WithLabelValues(win, "limits")); got != 6 {
		t.Fatalf("dropped{limits} = %v, want 6 (26 published into 20)", got)
	}

	for i := range 5 {
		if err := e.PublishDecision(ctx, testDecision(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.PublishDecision(ctx, testDecision(5)); err == nil {
		t.Fatal("a sixth decision was stored in a discard-new stream of 5")
	}
	if got := testutil.ToFloat64(e.m.dropped.WithLabelValues(EdgeStream(KindDecisions), "refused")); got != 1 {
		t.Fatalf("dropped{refused} = %v, want 1", got)
	}
	// The hub is unreachable: registration is pending, not refused.
	rctx, rcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer rcancel()
	if err := e.Registered(rctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("registration without a hub: %v, want it pending", err)
	}
}
