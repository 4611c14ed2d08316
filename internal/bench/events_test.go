package bench

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestMain runs this test binary as the outside subscriber when the bench
// starts it as one (OutsideSubscriberEnv set).
func TestMain(m *testing.M) {
	if url := os.Getenv(OutsideSubscriberEnv); url != "" {
		if err := RunOutsideSubscriber(context.Background(), url, os.Stdin, os.Stdout); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestEventsRun runs a short --events bench with the subscriber in another
// process (this test binary again) and checks that link changes were
// matched to their decisions and that every latency field is filled. It
// asserts no latency: CI machines vary.
func TestEventsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a service and simulators for ~10 s")
	}
	o := DefaultOptions()
	o.Events, o.EventRate = true, 20
	o.Devices, o.Interfaces, o.Rate = 4, 2, 4000
	o.Hop, o.Warmup, o.Duration = 500*time.Millisecond, time.Second, 3*time.Second
	o.OutsideSubscriber = []string{os.Args[0], "-test.run=^$"}
	o.Dir = t.TempDir()
	rep, err := Run(t.Context(), o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(rep.Steps) != 1 {
		t.Fatalf("%d steps, want 1", len(rep.Steps))
	}
	d := rep.Steps[0].Decisions
	e := d.EventToSubscriber
	if e == nil || e.Sent < 20 {
		t.Fatalf("event stats %+v: want at least 20 link changes sent", e)
	}
	if e.Matched < e.Sent*9/10 || e.Traps.Count == 0 || e.GNMI.Count == 0 {
		t.Fatalf("matched %d of %d events (traps %d, gNMI %d): want nearly all, both paths", e.Matched, e.Sent, e.Traps.Count, e.GNMI.Count)
	}
	if e.P99US <= 0 || e.P50US > e.P99US || e.P99US > e.P999US {
		t.Errorf("event latency percentiles %+v", e.LatencySummary)
	}
	c := d.CompletingSampleToSubscriber
	if c == nil || c.Count == 0 || c.P99US <= 0 {
		t.Fatalf("completing sample → subscriber %+v: want decisions matched to their completing batches", c)
	}
	f := d.Floor
	if f == nil || f.NATS.Count == 0 || f.UDP.Count == 0 || f.UDPRelayNATS.Count == 0 {
		t.Fatalf("floor %+v: want probes of every kind", f)
	}
}
