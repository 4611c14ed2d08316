package inference

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestStreamRecreated deletes the decisions stream while netfeat publishes
// (an operator mistake, or an attacker with netfeat's credentials): netfeat
// recreates it, logs it once, counts it, and the outbox drains into the new
// stream. Before, publishing stopped silently until a restart.
func TestStreamRecreated(t *testing.T) {
	ctx := context.Background()
	srv := startNATS(t, -1, t.TempDir())
	nc := connect(t, srv.ClientURL())
	cfg := testConfig()
	cfg.JetStream.Stream = "NETFEAT_DECISIONS"
	cfg.Outbox.RetryInterval = 20 * time.Millisecond
	cfg.Outbox.AckTimeout = 2 * time.Second

	var logs testkit.SyncBuffer
	r, err := New(cfg, connOf(nc), t.TempDir(), nil, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	produce := func(n int) {
		for range n {
			end = end.Add(10 * time.Second)
			r.HandleRow(row("pe1", "Gi0/0", end, congested))
		}
	}
	produce(5)
	testkit.Eventually(t, "testutil.ToFloat64(r.m.published) == 10", func() bool { return testutil.ToFloat64(r.m.published) == 10 })

	if err := js.DeleteStream(ctx, "NETFEAT_DECISIONS"); err != nil {
		t.Fatal(err)
	}
	produce(5)
	testkit.Eventually(t, "testutil.ToFloat64(r.m.streamRecreated) >= 1", func() bool { return testutil.ToFloat64(r.m.streamRecreated) >= 1 })
	testkit.Eventually(t, "testutil.ToFloat64(r.m.published) == 20 && r.pub.ob.pending.Load() == 0", func() bool { return testutil.ToFloat64(r.m.published) == 20 && r.pub.ob.pending.Load() == 0 })
	s, err := js.Stream(ctx, "NETFEAT_DECISIONS")
	if err != nil {
		t.Fatalf("stream after recreation: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 10 {
		t.Fatalf("recreated stream holds %d decisions, want the 10 made after the delete", info.State.Msgs)
	}
	if n := strings.Count(logs.String(), "was missing and has been recreated"); n != 1 {
		t.Fatalf("recreation logged %d times, want 1:\n%s", n, logs.String())
	}
}
