package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/netfeat/netfeat/fleet"
	"github.com/netfeat/netfeat/internal/fleettest"
)

// TestRunFleet runs the fleet bench small (one edge at 5,000 samples/s, a
// 6 s cut) with the real binaries, and checks what its report must say of
// a healthy fleet: every item and sample of the edge at the hub exactly
// once, a catch-up after the cut, compact samples and a hub that kept up.
func TestRunFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a nats-server cluster, a hub and an edge for about 40 s")
	}
	o := DefaultFleetOptions()
	o.NATSServer = fleettest.NATSServer(t)
	o.Binary = buildNetfeat(t)
	o.Dir = t.TempDir()
	o.Edges, o.SamplesPerSec, o.Devices, o.Interfaces, o.Hop = 1, 5000, 10, 16, 2*time.Second
	o.Baseline, o.Warmup, o.Live, o.Cut, o.CatchUpMax = false, 3*time.Second, 5*time.Second, 6*time.Second, time.Minute
	o.Failover = false
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := RunFleet(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Log(text.String())
	if rep.Lost != 0 || rep.Duplicated != 0 {
		t.Errorf("lost %d, duplicated %d", rep.Lost, rep.Duplicated)
	}
	e := rep.Edges[0]
	if len(e.Kinds) != len(fleet.Kinds) {
		t.Fatalf("kinds compared: %+v", e.Kinds)
	}
	for _, k := range e.Kinds {
		n := k.Items
		if k.Kind == string(fleet.KindSamples) {
			n = k.EdgeSamples
		}
		if k.Kind == string(fleet.KindDevices) && o.Ingest == IngestInject {
			// Injected samples come from no collector: no device state.
			if k.Items != 0 || k.HubItems != 0 {
				t.Errorf("%s: %+v: device states without collectors", k.Kind, k)
			}
			continue
		}
		if n == 0 || k.HubOnly != 0 {
			t.Errorf("%s: %+v: nothing compared, or ids only at the hub", k.Kind, k)
		}
	}
	if e.CutSamples == 0 || e.BacklogSamples == 0 || rep.CatchUpRatio <= 0 {
		t.Errorf("no catch-up measured: cut %d, backlog %d, ratio %v", e.CutSamples, e.BacklogSamples, rep.CatchUpRatio)
	}
	if rep.BytesPerSample <= 0 || rep.WireBytesPerSample < rep.BytesPerSample {
		t.Errorf("bytes per sample %v, on the wire %v", rep.BytesPerSample, rep.WireBytesPerSample)
	}
	if e.ForwardDropped != 0 || e.StreamDropped != 0 || e.InjectErrors != 0 {
		t.Errorf("drops: %+v", e)
	}
}
