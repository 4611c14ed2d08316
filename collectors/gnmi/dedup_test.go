package gnmi_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/collectors/gnmi"
	"github.com/netfeat/netfeat/internal/sim/gnmitarget"
	"github.com/netfeat/netfeat/internal/testkit"
)

// TestResubscribeDuplicatesDropped: the simulator publishes once (interval
// 1h) and drops every stream after 40 responses, so each re-subscribe
// replays the same initial state with the same timestamps. Each (path,
// timestamp) reaches the sink once; the repeats are dropped and counted.
func TestResubscribeDuplicatesDropped(t *testing.T) {
	sim := startSim(t, gnmitarget.Options{Interval: 3600e9, Faults: gnmitarget.Faults{DropAfter: 40}})
	rec := &recorder{}
	_, reg := startCollector(t, gnmi.Config{Targets: []gnmi.Target{{
		Name: "xr1", Address: sim.Addr(), Platform: gnmi.PlatformIOSXR, Insecure: true, Encoding: gnmi.EncodingProto,
	}}}, rec)
	testkit.Eventually(t, "three re-subscribes", func() bool {
		return testutil.ToFloat64(mustCounter(t, reg, "netfeat_gnmi_reconnects_total", "xr1")) >= 3
	})
	testkit.Eventually(t, "repeats to be counted", func() bool {
		return testutil.ToFloat64(mustCounter(t, reg, "netfeat_gnmi_duplicates_dropped_total", "xr1")) > 0
	})
	if rec.len() == 0 {
		t.Fatal("nothing delivered")
	}
	type seriesTS struct {
		origin, path string
		ts           int64
	}
	seen := map[seriesTS]bool{}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, o := range rec.all {
		k := seriesTS{o.Origin, o.Path, o.DeviceTime}
		if seen[k] {
			t.Fatalf("%s %s at %d delivered twice", o.Origin, o.Path, o.DeviceTime)
		}
		seen[k] = true
	}
}
